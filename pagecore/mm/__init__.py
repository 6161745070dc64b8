"""The model, one module per kernel file of mm/ (as drgn's helpers are one module per
kernel header): every function is named after the kernel function it mirrors, takes the
machine state (a pagecore.Machine) as its first argument `m`, and says in its docstring
which kernel versions it follows. Machine (pagecore/machine.py) owns the state and
forwards the public verbs here.

    mmzone          include/linux/mmzone.h   struct zone, struct pglist_data, struct
                                             per_cpu_pages, section flags
    mm_init         mm/mm_init.c             boot: memblock, sparse_init(), memblock_free_all()
    page_alloc      mm/page_alloc.c          alloc/free, __free_pages_core(), watermarks,
                                             pcp high/batch
    vmstat          mm/vmstat.c              the per-cpu vmstat thresholds
    show_mem        mm/show_mem.c            si_meminfo(), si_mem_available(): /proc/meminfo
    page_owner      mm/page_owner.c          owner tags that follow migration
    huge_memory     mm/huge_memory.c         hugepage_init()
    khugepaged      mm/khugepaged.c          set_recommended_min_free_kbytes()
    sparse          mm/sparse.c              sections added and removed
    sparse_vmemmap  mm/sparse-vmemmap.c      vmemmap leaves, page tables, the vmem_altmap
    memory_hotplug  mm/memory_hotplug.c      add/online/offline/remove
    page_isolation  mm/page_isolation.c      pageblock isolation
    migrate         mm/migrate.c             moving folios
    compaction      mm/compaction.c          (pagecore/compaction.py)

drivers/base/memory.c is pagecore/drivers/base/memory.py.
"""
