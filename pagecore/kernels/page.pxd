# The simulated `struct page` and its flag vocabulary: the contract every kernel reads.
#
# The kernel spends 64 bytes per page (include/linux/mm_types.h); pagecore spends 16 and
# keeps only what hotplug, the buddy allocator, isolation and compaction read. Like the
# kernel, zone and node ids live in the upper bits of `flags` (page_zonenum(),
# page_to_nid() in include/linux/mm.h), and the last 8 bytes are a union whose meaning
# depends on the page's type.
from pagecore.kernels.ktypes cimport uint8_t, uint16_t, uint32_t, uint64_t, pfn_t

cdef packed struct page_t:            # 16 bytes; storage layout, exported as PAGE_DTYPE
    uint32_t flags                    # PG_* bits | nid << NODES_PGSHIFT | zone << ZONES_PGSHIFT
    uint8_t page_type                 # PGTY_*; the kernel keeps it in the _mapcount union
    uint8_t order                     # buddy order of a PageBuddy page; folio order on head/tails
    uint16_t refcount                 # _refcount; a vmemmap page (v3) is pinned at 1 by definition
    uint64_t private                  # union arm "private": free-list slot (buddy) or owner id

cdef packed struct vmemmap_page_t:    # union arm of a PGTY_VMEMMAP page (seed v3, patch 2/5)
    uint32_t flags
    uint8_t page_type
    uint8_t order
    uint16_t refcount
    uint32_t vmemmap_head             # tail: pages back to the head; head (PG_head): nr sections
    uint32_t vmemmap_pages            # head: pages in the run; tails: unused (kernel reads the head)

cpdef enum:
    # Page flag bits (enum pageflags, include/linux/page-flags.h; our own numbering).
    PG_reserved = 1 << 0
    PG_lru = 1 << 1                   # on an LRU list: migratable user memory
    PG_head = 1 << 2                  # first page of a folio, or of a v3 vmemmap run
    PG_movable = 1 << 3               # __PageMovable: non-LRU movable (zsmalloc, balloon)
    PG_hwpoison = 1 << 4
    PG_vmemmap_self_hosted = 1 << 5   # alias of PG_owner_priv_1 (v6.0+, 66361095129b)
    PG_tail = 1 << 6                  # folio tail; the head is at pfn & ~((1 << order) - 1)
    PG_isolated = 1 << 7              # taken off its LRU for migration
    NR_PAGEFLAGS = 8

    NODES_PGSHIFT = 16                # nid in bits 16..23
    NODES_MASK = 0xff
    ZONES_PGSHIFT = 24                # zone in bits 24..27
    ZONES_MASK = 0xf
    FLAGS_MASK = 0xffff               # the PG_* bits proper

cpdef enum:
    # Page types (PGTY_*, include/linux/page-flags.h, v6.12 naming; v3's PG_vmemmap type).
    PGTY_NONE = 0
    PGTY_BUDDY = 1                    # free, on a free list; `order` is valid
    PGTY_OFFLINE = 2                  # PageOffline: not onlined / kept back by a driver (v6.11+)
    PGTY_VMEMMAP = 3                  # seed v3 patch 2/5: backs a self-hosted memmap
    PGTY_TABLE = 4                    # page-table page
    PGTY_SLAB = 5                     # slab: unmovable kernel memory

cpdef enum:
    # Migratetypes (enum migratetype, include/linux/mmzone.h); ISOLATE last as in the kernel.
    MIGRATE_UNMOVABLE = 0
    MIGRATE_MOVABLE = 1
    MIGRATE_RECLAIMABLE = 2
    MIGRATE_HIGHATOMIC = 3
    MIGRATE_CMA = 4
    MIGRATE_ISOLATE = 5
    MIGRATE_TYPES = 6
    MIGRATETYPE_MASK = 0x7
    PB_migrate_skip = 1 << 3          # compaction skip bit (PB_migrate_skip)
    PB_migrate_isolate = 1 << 4       # isolation as a standalone bit (v6.16+, PB_migrate_isolate)

cpdef enum:
    # Zone types (enum zone_type); ZONE_NONE marks a page no zone owns yet.
    ZONE_DMA = 0
    ZONE_DMA32 = 1
    ZONE_NORMAL = 2
    ZONE_MOVABLE = 3
    MAX_NR_ZONES = 4
    ZONE_NONE = 0xf

cpdef enum:
    # Kernel status codes returned by nogil kernels (include/uapi/asm-generic/errno-base.h).
    ENOENT = 2
    ENOMEM = 12
    EBUSY = 16
    EINVAL = 22


cdef inline uint32_t page_zonenum(const page_t *p) noexcept nogil:
    return (p.flags >> ZONES_PGSHIFT) & ZONES_MASK

cdef inline uint32_t page_to_nid(const page_t *p) noexcept nogil:
    return (p.flags >> NODES_PGSHIFT) & NODES_MASK

cdef inline uint32_t page_flags_for(uint32_t nid, uint32_t zone) noexcept nogil:
    return (nid << NODES_PGSHIFT) | (zone << ZONES_PGSHIFT)
