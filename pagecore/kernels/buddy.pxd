# The buddy allocator's free area of one zone (struct free_area[], include/linux/mmzone.h).
#
# The kernel threads free blocks on doubly linked lists through page->lru. A 16-byte page
# has no room for two 34-bit links, so each (migratetype, order) list is a stack of pfns
# (4 or 8 bytes each, `wide`) and a free block's slot is kept for O(1) removal: in the
# head page's `private` (slot << 3 | migratetype) below pageblock_order, and from
# pageblock_order up in a side array of one uint32_t per aligned block (`side`; private
# then holds the migratetype alone). The large blocks are what onlining frees, so their
# struct pages depend on nothing but the block's place in its memory block: that is what
# lets pagecore/mm/memmap_template.py share one image of a freshly onlined memory block
# between all the blocks that look alike. Invariants:
#   * a pfn is on at most one list; its head page is PGTY_BUDDY with `order` = the list's;
#   * it sits on the list of the migratetype of its first pageblock (v6.9+ rule, checked
#     by the kernel's account_freepages()), and a block of pageblocks has one type
#     (v6.10+: freeing splits by type, merging retags the buddy);
#   * nr_free counts exclude MIGRATE_ISOLATE (NR_FREE_PAGES, mm/page_alloc.c).
cimport cython
from cpython.ref cimport PyObject
from pagecore.kernels.ktypes cimport int32_t, uint8_t, uint32_t, uint64_t, pfn_t, pbflags_t, count_t
from pagecore.kernels.page cimport page_t

cdef enum:
    MAX_ORDERS = 16                   # >= NR_PAGE_ORDERS of every preset

# Runs of allocated blocks whose pages are still to be written (prep_run()), so that a
# fill writes them in pfn order (FreeArea.alloc_blocks(), fill_draws()).
cdef struct prep_item:
    pfn_t pfn
    count_t nr_blocks
    uint64_t owner
    uint32_t page_flags
    int order

cdef struct prep_queue:
    page_t *mem_map
    Py_ssize_t n, cap
    prep_item *items

# The per-cpu lists of the CPU pagecore runs on (struct per_cpu_pages, include/linux/
# mmzone.h; mm/page_alloc.c). A list holds blocks of one (order, migratetype); the
# kernel threads them through page->pcp_list, pagecore keeps a ring of runs of
# consecutive blocks (rmqueue_bulk() appends what one split hands out as one run; a free
# adds one block at the head). Invariants: a block on a list is not on a free list; its
# pages are PGTY_NONE with refcount 0 and no PG_* flag (`order` of the head is not kept:
# the list's pindex gives it); count = the pages on all lists.
cdef enum:
    NR_PCP_LISTS = 14                 # MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1) + NR_PCP_THP

cdef struct pcp_run:
    pfn_t pfn
    count_t n                         # blocks at pfn, pfn + 2^order, ...

cdef struct pcp_list:
    pcp_run *runs                     # ring: runs[(head + i) & (cap - 1)], i = 0 the list head; cap 2^k
    count_t head, len, cap

cdef struct per_cpu_pages:
    count_t count, high, high_min, high_max, batch
    count_t free_count                # v6.7+
    int free_factor                   # v6.1
    int alloc_factor, flags           # v6.7+
    pcp_list lists[NR_PCP_LISTS]

# final: nothing subclasses the buddy, so cdef calls bind directly and inline (a fill
# runs rmqueue -> rmqueue_smallest -> pop/expand once per block).
@cython.final
cdef class FreeArea:
    cdef page_t *mem_map              # vmemmap: page of pfn p is mem_map[p]
    cdef pbflags_t *pageblock_flags   # flags of pageblock b at pageblock_flags[b]
    cdef object _owners               # keeps the two buffers above alive
    cdef public int nr_orders         # NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
    cdef public int pageblock_order
    # the pfns of each list: uint32_t offsets from `base` while every pfn listed so far
    # lies in one aligned window of 2^32 pfns (16 TiB of 4 KiB pages; half the host memory
    # of a zone's free lists), uint64_t pfns once one does not (widen())
    cdef void *slots[6][MAX_ORDERS]
    cdef readonly bint wide
    cdef readonly pfn_t base          # the window's first pfn; -1 until the first add()
    cdef count_t nr[6][MAX_ORDERS]    # blocks on each list
    cdef count_t cap[6][MAX_ORDERS]
    # slots of the free blocks of order >= side_order, indexed by pfn >> order; reserved
    # address space (MAP_NORESERVE), host memory only where a zone has such blocks
    cdef readonly int side_order
    cdef uint32_t *side[MAX_ORDERS]
    cdef size_t side_bytes[MAX_ORDERS]
    # the running CPU's pageset of this zone; the v6.7+ rules (auto-tuned pcp->high);
    # ZONE_BELOW_HIGH; the min and high watermarks and lowmem_reserve[ZONE_MOVABLE]
    # (page_alloc.py keeps them in step with struct zone)
    cdef per_cpu_pages pcp
    cdef public bint pcp_autotune
    cdef public bint below_high
    cdef public count_t wmark_min, wmark_high, reserve_movable

    cdef count_t push(self, pfn_t pfn, int order, int mt) except -1 nogil
    cdef int add(self, pfn_t pfn, int order, int mt) except -1 nogil
    cdef int add_listed(self, pfn_t pfn, int order, int mt) except -1 nogil
    cdef int widen(self) except -1 nogil
    cdef void remove(self, pfn_t pfn) noexcept nogil
    cdef pfn_t pop(self, int order, int mt) noexcept nogil
    cdef int get_mt(self, pfn_t pfn) noexcept nogil
    cdef pfn_t listed_block(self, pfn_t pfn, int *order) noexcept nogil
    cdef int free_one_page(self, pfn_t pfn, int order) except -1 nogil
    cdef int _free_one_page(self, pfn_t pfn, int order, int mt) except -1 nogil
    cdef count_t free_pages(self, pfn_t pfn) except -1 nogil
    cdef pfn_t rmqueue(self, int order, int mt) except -2 nogil
    cdef int expand(self, pfn_t pfn, int low, int high, int mt) except -1 nogil
    cdef count_t move_freepages_block(self, pfn_t pfn, int mt) except -1 nogil
    cdef count_t unset_migratetype_isolate(self, pfn_t pfn) except -1 nogil
    cdef int claim_range(self, pfn_t start, pfn_t nr_pages) except -1 nogil
    cdef int free_aligned(self, pfn_t lo, pfn_t hi, int max_order) except -1 nogil
    cdef int split_large_buddy_at(self, pfn_t pfn) except -1 nogil
    cpdef count_t nr_free_pages(self, bint include_isolated=*) noexcept
    cdef count_t nr_free(self, bint include_isolated) noexcept nogil
    cdef count_t alloc_blocks(self, int order, int mt, count_t count, uint32_t page_flags,
                              uint64_t owner, count_t keep_free, pfn_t *out,
                              prep_queue *queue) except -1 nogil
    cdef int smallest_listed(self, int order, int mt) noexcept nogil
    cdef int rmqueue_split_run(self, pfn_t pfn, int low, int high, count_t take,
                               int mt) except -1 nogil
    cdef pfn_t rmqueue_smallest(self, int order, int mt) except -2 nogil
    cdef void retag_range(self, pfn_t pfn, pfn_t nr_pages, int mt) noexcept nogil
    cdef int claim_blocks(self, pfn_t pfn, int order, int mt) except -1 nogil
    cdef bint pcp_allowed_order(self, int order) noexcept nogil
    cdef int order_to_pindex(self, int mt, int order) noexcept nogil
    cdef int pindex_to_order(self, int pindex) noexcept nogil
    cdef int pcp_grow(self, pcp_list *l) except -1 nogil
    cdef int pcp_add(self, int pindex, pfn_t pfn, int order) except -1 nogil
    cdef int pcp_add_tail(self, int pindex, pfn_t pfn, count_t n, int order) except -1 nogil
    cdef count_t pcp_take_head(self, int pindex, int order, count_t want, pfn_t *pfn) noexcept nogil
    cdef pfn_t pcp_take_tail(self, int pindex, int order) noexcept nogil
    cdef count_t rmqueue_bulk(self, int order, count_t count, int mt, int pindex,
                              prep_queue *queue) except -1 nogil
    cdef count_t rmqueue_run(self, int order, int mt, count_t limit, pfn_t *pfn,
                             prep_queue *queue) except -1 nogil
    cdef int hand_out(self, pfn_t pfn, int order, count_t k, uint32_t page_flags,
                      uint64_t owner, pfn_t *out, count_t n, prep_queue *queue) except -1 nogil
    cdef count_t nr_pcp_alloc(self, int order) noexcept nogil
    cdef count_t rmqueue_pcplist(self, int order, int mt, count_t count, uint32_t page_flags,
                                 uint64_t owner, count_t keep_free, pfn_t *out,
                                 prep_queue *queue) except -1 nogil
    cdef int free_pcppages_bulk(self, count_t count, int pindex) except -1 nogil
    cdef count_t nr_pcp_high(self, count_t batch, bint free_high) noexcept nogil
    cdef count_t nr_pcp_free(self, count_t batch, count_t high, bint free_high) noexcept nogil
    cdef int free_unref_page_commit(self, pfn_t pfn, int mt, int order) except -1 nogil
    cdef int drain_pages_zone(self) except -1 nogil
    cdef bint decay_pcp_high(self) except -1 nogil

# A workload's fill loop over pre-drawn (kind, order) draws; `areas` are borrowed FreeArea
# references (the caller holds them). except -1: a free list may fail to grow (MemoryError).
cdef count_t fill_draws(PyObject **areas, const count_t[::1] keep, const count_t[::1] first,
                        const int32_t[::1] mt, const uint32_t[::1] page_flags,
                        const uint64_t[::1] owner, const uint8_t[::1] kinds,
                        const uint8_t[::1] orders, count_t chunk, count_t used, count_t target,
                        uint8_t[::1] exhausted, count_t[::1] allocated,
                        prep_queue *queue, PyObject **drain, Py_ssize_t nr_drain) except -1 nogil

# The blocks a workload owns in a run of pages (owner id in private), for its frees.
cdef count_t owned_blocks(const page_t[::1] pages, uint32_t zone_bits, uint64_t owner,
                          uint64_t nr_owners, pfn_t[::1] idx, count_t[::1] sizes) noexcept nogil
