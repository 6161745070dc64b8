"""Buddy allocator: free lists, merging, splitting and migratetype fallback.

Kernel counterparts (mm/page_alloc.c, v6.9+): __free_one_page, expand, __rmqueue_smallest,
__rmqueue_fallback / steal_suitable_fallback, move_freepages_block, split_large_buddy;
alloc_blocks() hands out runs of a split block as rmqueue_bulk() fills a per-cpu list.
At the end, the C side of pagecore.workload: its fill loop over pre-drawn draws
(fill_draws), the scan that finds its blocks again (owned_blocks), its random frees
(free_owned_random, one chunk) and a whole aging free in one call (free_owned_passes,
with numpy's PCG64 stream drawn in pcg64.h).
"""
from libc.stdlib cimport malloc, calloc, realloc, free
from cpython.ref cimport PyObject
from cpython.pycapsule cimport PyCapsule_GetPointer
from numpy.random cimport bitgen_t
from libc.string cimport memset
import numpy as np

cdef extern from "sys/mman.h" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE
    void *MAP_FAILED

from pagecore.kernels.ktypes cimport int32_t, int64_t, uint8_t, uint32_t
from pagecore.kernels.page cimport (page_t, PGTY_BUDDY, PGTY_NONE, PG_head, PG_tail, MIGRATE_TYPES, MIGRATE_ISOLATE,
                             MIGRATE_HIGHATOMIC,
                             MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE,
                             MIGRATETYPE_MASK, PB_migrate_isolate, ZONES_PGSHIFT, NODES_PGSHIFT, FLAGS_MASK)

# fallbacks[] (mm/page_alloc.c): where a migratetype steals from when its lists are empty.
cdef int FALLBACKS[3][2]
FALLBACKS[MIGRATE_UNMOVABLE][0] = MIGRATE_RECLAIMABLE
FALLBACKS[MIGRATE_UNMOVABLE][1] = MIGRATE_MOVABLE
FALLBACKS[MIGRATE_MOVABLE][0] = MIGRATE_RECLAIMABLE
FALLBACKS[MIGRATE_MOVABLE][1] = MIGRATE_UNMOVABLE
FALLBACKS[MIGRATE_RECLAIMABLE][0] = MIGRATE_UNMOVABLE
FALLBACKS[MIGRATE_RECLAIMABLE][1] = MIGRATE_MOVABLE


cdef enum:
    PAGE_ALLOC_COSTLY_ORDER = 3
    MIGRATE_PCPTYPES = 3
    NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
    PCP_BATCH_SCALE_MAX = 5           # CONFIG_PCP_BATCH_SCALE_MAX (Debian 6.1 and 6.12)
    PCPF_PREV_FREE_HIGH_ORDER = 1
    PCPF_FREE_HIGH_BATCH = 2


cdef inline count_t clamp(count_t v, count_t lo, count_t hi) noexcept nogil:
    # the kernel's clamp(): min(max(v, lo), hi)
    return min(max(v, lo), hi)


cdef inline bint mergeable(int mt) noexcept nogil:
    # migratetype_is_mergeable(): only the pcp types merge across pageblocks.
    return mt < MIGRATE_HIGHATOMIC


cdef inline pfn_t slot_get(FreeArea a, int mt, int order, count_t i) noexcept nogil:
    if a.wide:
        return (<uint64_t *> a.slots[mt][order])[i]
    return a.base + (<uint32_t *> a.slots[mt][order])[i]


cdef inline void slot_set(FreeArea a, int mt, int order, count_t i, pfn_t pfn) noexcept nogil:
    # pfn is in the window when narrow (add() widens first otherwise)
    if a.wide:
        (<uint64_t *> a.slots[mt][order])[i] = pfn
    else:
        (<uint32_t *> a.slots[mt][order])[i] = <uint32_t> (pfn - a.base)


cdef inline count_t slot_of(FreeArea a, pfn_t pfn, const page_t *p) noexcept nogil:
    # the list slot of the free head `p` at `pfn` (buddy.pxd: where it is kept)
    if p.order >= a.side_order:
        return a.side[p.order][pfn >> p.order]
    return p.private >> 3


cdef inline void set_slot(FreeArea a, pfn_t pfn, page_t *p, int order, count_t slot,
                          int mt) noexcept nogil:
    if order >= a.side_order:
        a.side[order][pfn >> order] = <uint32_t> slot
        p.private = mt
    else:
        p.private = (<uint64_t> slot << 3) | mt


cdef class FreeArea:
    """Free lists of one zone, over the machine-wide mem_map and pageblock flags."""

    def __cinit__(self, mem_map, pageblock_flags, int nr_orders, int pageblock_order):
        cdef page_t[::1] mm = mem_map
        cdef pbflags_t[::1] pb = pageblock_flags
        if not 0 < nr_orders <= MAX_ORDERS:
            raise ValueError(f"nr_orders={nr_orders} outside 1..{MAX_ORDERS}")
        self.mem_map = &mm[0]
        self.pageblock_flags = &pb[0]
        self._owners = (mem_map, pageblock_flags)
        self.nr_orders = nr_orders
        self.pageblock_order = pageblock_order
        self.wide = False
        self.base = -1
        memset(self.slots, 0, sizeof(self.slots))
        memset(self.nr, 0, sizeof(self.nr))
        memset(self.cap, 0, sizeof(self.cap))
        memset(self.side, 0, sizeof(self.side))
        memset(self.side_bytes, 0, sizeof(self.side_bytes))
        self.side_order = min(pageblock_order, nr_orders)
        memset(&self.pcp, 0, sizeof(per_cpu_pages))
        self.pcp.batch = 1                      # per_cpu_pages_init(): BOOT_PAGESET_BATCH
        cdef int o
        cdef void *got
        for o in range(self.side_order, nr_orders):
            self.side_bytes[o] = ((<size_t> mm.shape[0] >> o) + 1) * sizeof(uint32_t)
            got = mmap(NULL, self.side_bytes[o], PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if got == MAP_FAILED:
                self.side_bytes[o] = 0
                raise MemoryError(f"free-list slots of order {o}: cannot reserve address space")
            self.side[o] = <uint32_t *> got

    def __dealloc__(self):
        cdef int mt, o
        for mt in range(MIGRATE_TYPES):
            for o in range(MAX_ORDERS):
                free(self.slots[mt][o])
        for o in range(MAX_ORDERS):
            if self.side[o] != NULL:
                munmap(self.side[o], self.side_bytes[o])
        for o in range(NR_PCP_LISTS):
            free(self.pcp.lists[o].runs)

    # ---- list primitives ------------------------------------------------------------
    cdef count_t push(self, pfn_t pfn, int order, int mt) except -1 nogil:
        # the list half of add(): pfn on top of the (mt, order) stack; returns its slot
        cdef count_t n = self.nr[mt][order]
        cdef void *grown
        if not self.wide:
            if self.base < 0:
                self.base = pfn & ~((<pfn_t> 1 << 32) - 1)
            elif (pfn - self.base) >> 32:           # outside the window (or below it)
                self.widen()
        if n == self.cap[mt][order]:
            grown = realloc(self.slots[mt][order],
                            (2 * n + 64) * (sizeof(uint64_t) if self.wide else sizeof(uint32_t)))
            if grown == NULL:
                with gil:
                    raise MemoryError("free list growth")
            self.slots[mt][order] = grown
            self.cap[mt][order] = 2 * n + 64
        slot_set(self, mt, order, n, pfn)
        self.nr[mt][order] = n + 1
        return n

    cdef int add(self, pfn_t pfn, int order, int mt) except -1 nogil:
        cdef count_t n = self.push(pfn, order, mt)
        cdef page_t *p = &self.mem_map[pfn]
        p.page_type = PGTY_BUDDY
        p.order = order
        p.refcount = 0
        set_slot(self, pfn, p, order, n, mt)        # slot and list, for O(1) removal
        return 0

    cdef int add_listed(self, pfn_t pfn, int order, int mt) except -1 nogil:
        """add() of a block whose head page already reads as add() would leave it
        (PageBuddy, `order`, refcount 0, private = mt): the lists and the side slot only,
        no store to the page, so a memmap image shared copy-on-write stays shared.
        Only for order >= side_order, where the slot is not in the page."""
        cdef count_t n = self.push(pfn, order, mt)
        self.side[order][pfn >> order] = <uint32_t> n
        return 0

    cdef int widen(self) except -1 nogil:
        # Every list to uint64_t pfns in place of the offsets, order kept; all or nothing.
        cdef int mt, o, k
        cdef count_t i
        cdef uint64_t *w[6 * MAX_ORDERS]
        cdef uint32_t *old
        memset(w, 0, sizeof(w))
        for k in range(MIGRATE_TYPES * MAX_ORDERS):
            mt, o = k // MAX_ORDERS, k % MAX_ORDERS
            if self.cap[mt][o]:
                w[k] = <uint64_t *> malloc(self.cap[mt][o] * sizeof(uint64_t))
                if w[k] == NULL:
                    for k in range(MIGRATE_TYPES * MAX_ORDERS):
                        free(w[k])
                    with gil:
                        raise MemoryError("free list growth")
        for k in range(MIGRATE_TYPES * MAX_ORDERS):
            mt, o = k // MAX_ORDERS, k % MAX_ORDERS
            if w[k] != NULL:
                old = <uint32_t *> self.slots[mt][o]
                for i in range(self.nr[mt][o]):
                    w[k][i] = self.base + old[i]
                free(old)
                self.slots[mt][o] = w[k]
        self.wide = True
        return 0

    def _widen(self):
        """widen() now (for tests: a wide area must behave as a narrow one)."""
        if not self.wide:
            self.widen()

    cdef void remove(self, pfn_t pfn) noexcept nogil:
        cdef page_t *p = &self.mem_map[pfn]
        cdef int mt = p.private & 7, order = p.order
        cdef count_t slot = slot_of(self, pfn, p)
        cdef count_t last = self.nr[mt][order] - 1
        cdef pfn_t moved = slot_get(self, mt, order, last)
        slot_set(self, mt, order, slot, moved)
        set_slot(self, moved, &self.mem_map[moved], order, slot, mt)
        self.nr[mt][order] = last
        p.page_type = PGTY_NONE
        p.private = 0

    cdef pfn_t pop(self, int order, int mt) noexcept nogil:
        cdef count_t n = self.nr[mt][order]
        if n == 0:
            return -1
        cdef pfn_t pfn = slot_get(self, mt, order, n - 1)
        self.nr[mt][order] = n - 1
        self.mem_map[pfn].page_type = PGTY_NONE
        self.mem_map[pfn].private = 0
        return pfn

    cdef pfn_t listed_block(self, pfn_t pfn, int *order) noexcept nogil:
        # The head of the free block of order >= side_order on a free list that holds
        # `pfn`, its order in *order; -1 if none. Read off the side slots and the lists,
        # not the page array, so a scan can pass a large free block without touching the
        # struct pages under it (a memmap image stays unread). A stale side slot proves
        # nothing: the list entry it names must be the head itself.
        cdef int o, mt
        cdef pfn_t h
        cdef count_t s
        for o in range(self.nr_orders - 1, self.side_order - 1, -1):
            h = pfn & ~((<pfn_t> 1 << o) - 1)
            s = self.side[o][h >> o]
            for mt in range(MIGRATE_TYPES):
                if s < self.nr[mt][o] and slot_get(self, mt, o, s) == h:
                    order[0] = o
                    return h
        return -1

    def _listed_block(self, pfn_t pfn):
        """listed_block() for tests: (head, order) or None."""
        cdef int o = -1
        cdef pfn_t h
        if pfn < 0 or (self.side_order < self.nr_orders
                       and <size_t> (pfn >> self.side_order) * sizeof(uint32_t)
                       >= self.side_bytes[self.side_order]):
            raise ValueError(f"_listed_block: pfn {pfn} outside the page array")
        h = self.listed_block(pfn, &o)
        return None if h < 0 else (h, o)

    cdef int get_mt(self, pfn_t pfn) noexcept nogil:
        # get_pfnblock_migratetype(): the isolate bit wins over the stored migratetype.
        cdef pbflags_t f = self.pageblock_flags[pfn >> self.pageblock_order]
        if f & PB_migrate_isolate:
            return MIGRATE_ISOLATE
        return f & MIGRATETYPE_MASK

    # ---- buddy algorithms -----------------------------------------------------------
    cdef int free_one_page(self, pfn_t pfn, int order) except -1 nogil:
        """free_one_page() -> split_large_buddy() (v6.10+): a block larger than a
        pageblock is freed pageblock by pageblock, each under its own pageblock's
        migratetype (__free_one_page()), so no free block is listed across pageblocks
        of two types. When all its pageblocks have one type the pieces merge straight
        back, so that case is one __free_one_page() of the whole block (same result)."""
        cdef int pb = self.pageblock_order, mt = self.get_mt(pfn)
        cdef pfn_t q, end = pfn + (<pfn_t> 1 << order)
        if order > pb:
            q = pfn + (<pfn_t> 1 << pb)
            while q < end and self.get_mt(q) == mt:
                q += <pfn_t> 1 << pb
            if q < end:
                q = pfn
                while q < end:
                    self._free_one_page(q, pb, self.get_mt(q))
                    q += <pfn_t> 1 << pb
                return 0
        return self._free_one_page(pfn, order, mt)

    cdef int _free_one_page(self, pfn_t pfn, int order, int mt) except -1 nogil:
        """__free_one_page(): merge with free buddies of the same zone, then list the
        block under `mt`, the migratetype of the freed block's pageblock.

        Across pageblock boundaries, ISOLATE/HIGHATOMIC/CMA do not merge with other types
        (migratetype_is_mergeable()); a buddy of another mergeable type takes the freed
        block's type (change_pageblock_range(), v6.10+), so that a later expand() lists
        every half under its own pageblock's type.
        """
        cdef int buddy_mt
        cdef pfn_t buddy
        cdef uint32_t zone_bits = self.mem_map[pfn].flags & ~(<uint32_t> FLAGS_MASK)
        cdef page_t *b
        while order < self.nr_orders - 1:
            buddy = pfn ^ (1 << order)
            b = &self.mem_map[buddy]
            if b.page_type != PGTY_BUDDY or b.order != order:
                break
            if (b.flags & ~(<uint32_t> FLAGS_MASK)) != zone_bits:
                break                                   # page_is_buddy(): same zone only
            buddy_mt = mt
            if order >= self.pageblock_order:
                buddy_mt = self.get_mt(buddy)
                if buddy_mt != mt and (not mergeable(mt) or not mergeable(buddy_mt)):
                    break
            self.remove(buddy)
            if buddy_mt != mt:
                self.retag_range(buddy, <pfn_t> 1 << order, mt)
            if buddy < pfn:
                pfn = buddy
            order += 1
        self.add(pfn, order, mt)
        return 0

    cdef int expand(self, pfn_t pfn, int low, int high, int mt) except -1 nogil:
        """expand(): give back the upper halves of a split block."""
        while high > low:
            high -= 1
            self.add(pfn + (1 << high), high, mt)
        return 0

    cdef pfn_t rmqueue(self, int order, int mt) except -2 nogil:
        """__rmqueue(): smallest fitting block of `mt`, else steal from the fallbacks.

        Returns the pfn, or -1 when the zone has no block of at least `order`.
        """
        cdef int o, i, fmt
        cdef pfn_t pfn = self.rmqueue_smallest(order, mt)
        if pfn >= 0:
            return pfn
        if mt > MIGRATE_RECLAIMABLE:
            return -1
        for o in range(self.nr_orders - 1, order - 1, -1):   # __rmqueue_fallback(): largest first
            for i in range(2):
                fmt = FALLBACKS[mt][i]
                if self.nr[fmt][o] == 0:
                    continue
                pfn = slot_get(self, fmt, o, self.nr[fmt][o] - 1)
                if o >= self.pageblock_order:
                    # try_to_claim_block(): a free block of whole pageblocks changes
                    # type as one (change_pageblock_range()) and is split from its head.
                    self.remove(pfn)
                    self.retag_range(pfn, 1 << o, mt)
                    self.expand(pfn, order, o, mt)
                    return pfn
                if o >= self.pageblock_order // 2 or mt != MIGRATE_MOVABLE:
                    # can_steal_fallback(): claim the whole pageblock for `mt`.
                    self.claim_blocks(pfn, o, mt)
                    return self.rmqueue_smallest(order, mt)
                else:
                    self.remove(pfn)
                    self.expand(pfn, order, o, fmt)
                return pfn
        return -1

    cdef pfn_t rmqueue_smallest(self, int order, int mt) except -2 nogil:
        """__rmqueue_smallest(): the smallest block of `mt` of at least `order`, split."""
        cdef int o
        cdef pfn_t pfn
        for o in range(order, self.nr_orders):
            pfn = self.pop(o, mt)
            if pfn >= 0:
                self.expand(pfn, order, o, mt)
                return pfn
        return -1

    cdef void retag_range(self, pfn_t pfn, pfn_t nr_pages, int mt) noexcept nogil:
        """change_pageblock_range(): set the migratetype of whole pageblocks."""
        cdef pfn_t b
        for b in range(pfn >> self.pageblock_order, (pfn + nr_pages) >> self.pageblock_order):
            self.pageblock_flags[b] = (self.pageblock_flags[b] & ~(<int> MIGRATETYPE_MASK)) | mt

    cdef int claim_blocks(self, pfn_t pfn, int order, int mt) except -1 nogil:
        cdef pfn_t start = (pfn >> self.pageblock_order) << self.pageblock_order
        cdef pfn_t end = pfn + (1 << order)
        if end - start < (1 << self.pageblock_order):
            end = start + (1 << self.pageblock_order)
        while start < end:
            self.move_freepages_block(start, mt)
            start += 1 << self.pageblock_order
        return 0

    cdef int split_large_buddy_at(self, pfn_t pfn) except -1 nogil:
        """find_large_buddy() + split_large_buddy(): a free block larger than a pageblock
        covering `pfn` is cut into pageblock-sized blocks, each freed again with
        __free_one_page() under its own pageblock's migratetype, in ascending order, so
        the pieces that may merge merge again (with MAX_PAGE_ORDER >= pageblock_order + 2,
        isolating one pageblock of a free block leaves the others merged as far as the
        isolated one allows). The caller sets the pageblock's type first, as
        move_freepages_block_isolate() does."""
        cdef int o
        cdef pfn_t head, q
        for o in range(self.pageblock_order + 1, self.nr_orders):
            head = (pfn >> o) << o
            if self.mem_map[head].page_type == PGTY_BUDDY and self.mem_map[head].order == o:
                self.remove(head)
                q = head
                while q < head + (1 << o):
                    self.free_one_page(q, self.pageblock_order)
                    q += 1 << self.pageblock_order
                return 1
        return 0

    cdef int claim_range(self, pfn_t start, pfn_t nr_pages) except -1 nogil:
        """Take [start, start + nr_pages) off the free lists: the free block holding it
        is removed and the parts outside the range go back in aligned chunks (the
        inverse of freeing the range; used to undo a migration). Returns 1, changing
        nothing, when no single free block holds the range."""
        cdef int o, k
        cdef pfn_t head, q, lo, hi, end = start + nr_pages
        for o in range(self.nr_orders - 1, -1, -1):
            head = (start >> o) << o
            if (self.mem_map[head].page_type == PGTY_BUDDY and self.mem_map[head].order == o
                    and head + (<pfn_t> 1 << o) >= end):
                self.remove(head)
                self.free_aligned(head, start, o)
                self.free_aligned(end, head + (<pfn_t> 1 << o), o)
                return 0
        return 1

    cdef int free_aligned(self, pfn_t lo, pfn_t hi, int max_order) except -1 nogil:
        # [lo, hi) back to the lists in the largest aligned chunks (below max_order).
        cdef int k
        while lo < hi:
            k = 0
            while k < max_order and (lo & ((<pfn_t> 2 << k) - 1)) == 0 and lo + (<pfn_t> 2 << k) <= hi:
                k += 1
            self.free_one_page(lo, k)
            lo += <pfn_t> 1 << k
        return 0

    def claim_ranges(self, pfn_t[::1] starts, pfn_t nr_pages):
        """claim_range() of [starts[i], starts[i] + nr_pages) for every i, in order.
        Returns the index of the first range no free block holds (the ranges before it
        are claimed), or -1."""
        cdef Py_ssize_t i
        cdef int rc = 0
        with nogil:
            for i in range(starts.shape[0]):
                rc = self.claim_range(starts[i], nr_pages)
                if rc:
                    break
        return i if rc else -1

    cdef count_t unset_migratetype_isolate(self, pfn_t pfn) except -1 nogil:
        """unset_migratetype_isolate(): clear the isolate bit, free blocks back to the
        lists of the stored migratetype."""
        cdef pbflags_t f = self.pageblock_flags[pfn >> self.pageblock_order]
        cdef int pb = self.pageblock_order
        cdef pfn_t start = (pfn >> pb) << pb
        cdef count_t moved = self.move_freepages_block(pfn, f & MIGRATETYPE_MASK)
        # Isolation split free blocks larger than a pageblock (split_large_buddy()); the
        # kernel merges them again through __putback_isolated_page() -> __free_one_page().
        if self.mem_map[start].page_type == PGTY_BUDDY and self.mem_map[start].order == pb:
            self.remove(start)
            self.free_one_page(start, pb)
        return moved

    cdef count_t move_freepages_block(self, pfn_t pfn, int mt) except -1 nogil:
        """set_pageblock_migratetype() + move_freepages_block(): retag one pageblock and
        move its free blocks to the lists of `mt`. Returns the free pages moved.

        MIGRATE_ISOLATE sets the standalone isolate bit and keeps the stored type;
        any other `mt` clears the bit and stores `mt` (v6.16+ "page isolation as a
        standalone bit", so undo_isolate_page_range() restores the old type exactly).
        """
        cdef int pb = self.pageblock_order
        cdef pfn_t start = (pfn >> pb) << pb, end = start + (1 << pb), p = start
        cdef count_t moved = 0
        cdef int o
        cdef page_t *page
        cdef pbflags_t f = self.pageblock_flags[start >> pb]
        if mt == MIGRATE_ISOLATE:
            f = f | PB_migrate_isolate
        else:
            f = (f & ~(<int> (MIGRATETYPE_MASK | PB_migrate_isolate))) | mt
        # the type first, then the split: the piece of this pageblock is freed under `mt`
        self.pageblock_flags[start >> pb] = f
        self.split_large_buddy_at(start)
        while p < end:
            page = &self.mem_map[p]
            if page.page_type == PGTY_BUDDY:
                o = page.order
                if (page.private & 7) != <uint64_t> mt:
                    self.remove(p)
                    self.add(p, o, mt)
                moved += 1 << o
                p += 1 << o
            else:
                p += 1
        return moved

    # ---- bulk allocation (alloc_pages_bulk / free_pages in a loop) ------------------
    cdef count_t alloc_blocks(self, int order, int mt, count_t count, uint32_t page_flags,
                              uint64_t owner, count_t keep_free, pfn_t *out,
                              prep_queue *queue) except -1 nogil:
        """Allocate up to `count` blocks of `order` for migratetype `mt` (__rmqueue), while
        the zone keeps more than `keep_free` free pages afterwards (__zone_watermark_ok():
        free - 2^order + 1 > min + lowmem_reserve, the caller passes min + reserve).

        Allocated pages get refcount 1, `page_flags` (zone/node bits are kept) and
        `owner` in private; a block of order > 0 becomes a folio (PG_head on the first page,
        PG_tail on the rest, `order` on all). Head pfns go to `out` unless it is NULL (a
        caller that finds its pages on the page array later needs no list). Returns how many.

        The blocks come in runs, as rmqueue_bulk() fills a per-cpu list under one hold of
        the zone lock: the state is that of one __rmqueue() per block (buddy_numpy's
        alloc_blocks() is that loop, and tests/test_buddy.py holds the two together), but
        a block taken off the lists is handed out as a run of consecutive blocks at once
        (rmqueue_split_run()). Only the fallback path goes block by block.

        With a `queue`, the pages of the runs are written later, in pfn order
        (prep_flush()): a fill takes blocks from the top of the zone down, and pages
        written in that order stream at half the speed. Nothing here reads an allocated
        page but the fallback path (move_freepages_block() reads the pageblock), so the
        queue is written out before it; the caller writes out the rest.
        """
        if self.pcp_allowed_order(order) and mt < MIGRATE_PCPTYPES:
            # (a request for another migratetype is pagecore's own: the kernel asks the
            # pcp lists for the pcp types only, gfp_migratetype())
            return self.rmqueue_pcplist(order, mt, count, page_flags, owner, keep_free, out,
                                        queue)
        cdef count_t n = 0, free_now = self.nr_free(False), take
        cdef pfn_t pfn
        while n < count and free_now - (1 << order) + 1 > keep_free:
            # blocks the watermark still allows: k more while free - k * 2^order >=
            # keep_free (the loop's test, block by block); at least 1 here
            take = (free_now - keep_free) >> order
            take = self.rmqueue_run(order, mt, take if take < count - n else count - n,
                                    &pfn, queue)
            if not take:
                break
            self.hand_out(pfn, order, take, page_flags, owner, out, n, queue)
            n += take
            free_now -= take << order
        return n

    cdef count_t rmqueue_run(self, int order, int mt, count_t limit, pfn_t *pfn,
                             prep_queue *queue) except -1 nogil:
        """Up to `limit` (>= 1) __rmqueue() in a row that take consecutive blocks: the
        pieces of one block off the smallest non-empty list (rmqueue_split_run()), or one
        block by the fallback path, which reads pages (move_freepages_block()), so the
        queued pages are written out first. The first block at *pfn; returns how many
        (0: the zone has no block of `order` for `mt`)."""
        cdef int o = self.smallest_listed(order, mt)
        cdef count_t take
        if o >= 0:
            take = limit
            if take > (<count_t> 1) << (o - order):
                take = (<count_t> 1) << (o - order)
            pfn[0] = self.pop(o, mt)
            self.rmqueue_split_run(pfn[0], order, o, take, mt)
            return take
        if queue != NULL:
            prep_flush(queue)
        pfn[0] = self.rmqueue(order, mt)               # __rmqueue_fallback() and friends
        return 1 if pfn[0] >= 0 else 0

    cdef int hand_out(self, pfn_t pfn, int order, count_t k, uint32_t page_flags,
                      uint64_t owner, pfn_t *out, count_t n, prep_queue *queue) except -1 nogil:
        # prep_new_page() of k consecutive blocks from pfn, now or queued (a long run), and
        # their heads to out[n:] unless out is NULL
        cdef count_t i
        if queue != NULL and (k << order) >= PREP_LATER_PAGES:
            prep_later(queue, pfn, order, k, page_flags, owner)
        else:
            prep_run(self.mem_map, pfn, order, k, page_flags, owner)
        if out != NULL:
            for i in range(k):
                out[n + i] = pfn + (i << order)
        return 0

    cdef int smallest_listed(self, int order, int mt) noexcept nogil:
        # the order __rmqueue_smallest() would take from: the first non-empty list of
        # `mt` at `order` or above, or -1
        cdef int o
        for o in range(order, self.nr_orders):
            if self.nr[mt][o]:
                return o
        return -1

    cdef int rmqueue_split_run(self, pfn_t pfn, int low, int high, count_t take,
                               int mt) except -1 nogil:
        """`take` (1 .. 2^(high - low)) __rmqueue_smallest(low, mt) in a row, of which the
        first found the block of order `high` at `pfn` (already popped) on the smallest
        non-empty list: the lists of `mt` from `low` up to `high` are empty (or `high`
        would not be the smallest), so each of the following calls takes the lowest piece
        that expand() left of this block, and the run hands out pfn, pfn + 2^low, ...,
        pfn + (take - 1) * 2^low. What is left on the lists is what expand() left of the
        rest: [pfn + take * 2^low, pfn + 2^high) in aligned pieces, one per set bit of
        the blocks left, each alone on its (mt, order) list (the lists were empty), so it
        takes the slot the block-by-block calls give it. Pieces are added largest first,
        as expand() does."""
        cdef count_t left = ((<count_t> 1) << (high - low)) - take
        cdef pfn_t end = pfn + ((<pfn_t> 1) << high), size
        cdef int o = high
        while o > low:
            o -= 1
            if (left >> (o - low)) & 1:
                size = (<pfn_t> 1) << o
                end -= size
                self.add(end, o, mt)
        return 0

    def alloc_bulk(self, int order, int mt, count_t count, uint32_t page_flags,
                   uint64_t owner, count_t keep_free, pfn_t[::1] out):
        """alloc_blocks() into `out` (at least `count` long); returns how many."""
        cdef count_t n = 0
        if not 0 <= order < self.nr_orders:
            raise ValueError(f"order={order} outside 0..{self.nr_orders - 1}")
        if not 0 <= mt < MIGRATE_ISOLATE:
            raise ValueError(f"migratetype {mt} cannot be allocated from")
        if count > out.shape[0]:
            raise ValueError(f"count={count} > len(out)={out.shape[0]}")
        if count <= 0:
            return 0
        with nogil:
            n = self.alloc_blocks(order, mt, count, page_flags, owner, keep_free, &out[0],
                                  NULL)
        return n

    cdef count_t free_pages(self, pfn_t pfn) except -1 nogil:
        """__free_pages() of the allocated block headed at `pfn` (order read from the
        page): its pages lose their flags, refcount and owner, then the block merges."""
        cdef int order = self.mem_map[pfn].order
        cdef pfn_t q
        cdef page_t *p
        for q in range(pfn, pfn + (1 << order)):
            p = &self.mem_map[q]
            p.flags = p.flags & ~(<uint32_t> FLAGS_MASK)
            p.refcount = 0
            p.private = 0
            p.order = 0
        cdef int mt
        if self.pcp_allowed_order(order):
            # free_unref_page(): MIGRATE_ISOLATE straight to the buddy (free_one_page()),
            # HIGHATOMIC and CMA on the movable list, the pcp types on their own
            mt = self.get_mt(pfn)
            if mt != MIGRATE_ISOLATE:
                self.mem_map[pfn].order = order
                self.free_unref_page_commit(pfn, mt if mt < MIGRATE_PCPTYPES else MIGRATE_MOVABLE,
                                            order)
                return <count_t> 1 << order
        if order <= self.pageblock_order:
            # free_one_page() of a block within one pageblock: no split_large_buddy()
            self._free_one_page(pfn, order, self.get_mt(pfn))
        else:
            self.free_one_page(pfn, order)
        return <count_t> 1 << order

    def free_bulk(self, pfn_t[::1] pfns):
        """free_pages() of each allocated block at `pfns` (head pfns; the order is read
        from the page). Pages return to the buddy of the zone they belong to."""
        cdef Py_ssize_t i
        cdef count_t freed = 0
        with nogil:
            for i in range(pfns.shape[0]):
                freed += self.free_pages(pfns[i])
        return freed

    # ---- the per-cpu lists (mm/page_alloc.c) ----------------------------------------
    # One CPU's lists: pagecore runs every allocation and free on one CPU. v6.1 and
    # v6.12 are modelled (pcp_autotune: the v6.7+ rules, "mm: add framework for PCP high
    # auto-tuning" and the series after it). Not modelled: the vmstat worker's
    # decay_pcp_high() and drain_zone_pages() (no clock), ZONE_RECLAIM_ACTIVE (no
    # reclaim), the trylock failing (one CPU, no interrupts).
    cdef bint pcp_allowed_order(self, int order) noexcept nogil:
        # pcp_allowed_order(): up to PAGE_ALLOC_COSTLY_ORDER, and pageblock_order
        # (CONFIG_TRANSPARENT_HUGEPAGE, set in every distro kernel)
        return order <= PAGE_ALLOC_COSTLY_ORDER or order == self.pageblock_order

    cdef int order_to_pindex(self, int mt, int order) noexcept nogil:
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS + (mt == MIGRATE_MOVABLE)
        return MIGRATE_PCPTYPES * order + mt

    cdef int pindex_to_order(self, int pindex) noexcept nogil:
        if pindex >= NR_LOWORDER_PCP_LISTS:
            return self.pageblock_order
        return pindex // MIGRATE_PCPTYPES

    cdef int pcp_grow(self, pcp_list *l) except -1 nogil:
        cdef count_t cap = 2 * l.cap if l.cap else 16, i      # a power of two: & masks
        cdef pcp_run *runs = <pcp_run *> malloc(cap * sizeof(pcp_run))
        if runs == NULL:
            with gil:
                raise MemoryError("pcp list growth")
        for i in range(l.len):
            runs[i] = l.runs[(l.head + i) & (l.cap - 1)]
        free(l.runs)
        l.runs, l.head, l.cap = runs, 0, cap
        return 0

    cdef int pcp_add(self, int pindex, pfn_t pfn, int order) except -1 nogil:
        # list_add(): the block goes to the head (joining the head run when it is the
        # block just below it)
        cdef pcp_list *l = &self.pcp.lists[pindex]
        cdef pcp_run *r
        if l.len and l.runs[l.head].pfn == pfn + (<pfn_t> 1 << order):
            r = &l.runs[l.head]
            r.pfn = pfn
            r.n += 1
            return 0
        if l.len == l.cap:
            self.pcp_grow(l)
        l.head = (l.head + l.cap - 1) & (l.cap - 1)
        l.runs[l.head].pfn = pfn
        l.runs[l.head].n = 1
        l.len += 1
        return 0

    cdef int pcp_add_tail(self, int pindex, pfn_t pfn, count_t n, int order) except -1 nogil:
        # list_add_tail() of n consecutive blocks (rmqueue_bulk())
        cdef pcp_list *l = &self.pcp.lists[pindex]
        cdef pcp_run *r
        if l.len:
            r = &l.runs[(l.head + l.len - 1) & (l.cap - 1)]
            if r.pfn + ((<pfn_t> r.n) << order) == pfn:
                r.n += n
                return 0
        if l.len == l.cap:
            self.pcp_grow(l)
        r = &l.runs[(l.head + l.len) & (l.cap - 1)]
        r.pfn, r.n = pfn, n
        l.len += 1
        return 0

    cdef count_t pcp_take_head(self, int pindex, int order, count_t want,
                               pfn_t *pfn) noexcept nogil:
        # list_first_entry() + list_del(), up to `want` times from the head run: the
        # blocks are pfn[0], pfn[0] + 2^order, ...; returns how many (0: list empty)
        cdef pcp_list *l = &self.pcp.lists[pindex]
        cdef pcp_run *r
        cdef count_t k
        if not l.len:
            return 0
        r = &l.runs[l.head]
        k = want if want < r.n else r.n
        pfn[0] = r.pfn
        r.pfn += (<pfn_t> k) << order
        r.n -= k
        if not r.n:
            l.head = (l.head + 1) & (l.cap - 1)
            l.len -= 1
        return k

    cdef pfn_t pcp_take_tail(self, int pindex, int order) noexcept nogil:
        # list_last_entry() + list_del(); -1 when empty
        cdef pcp_list *l = &self.pcp.lists[pindex]
        cdef pcp_run *r
        if not l.len:
            return -1
        r = &l.runs[(l.head + l.len - 1) & (l.cap - 1)]
        r.n -= 1
        if not r.n:
            l.len -= 1
        return r.pfn + ((<pfn_t> r.n) << order)

    cdef count_t rmqueue_bulk(self, int order, count_t count, int mt, int pindex,
                              prep_queue *queue) except -1 nogil:
        """rmqueue_bulk(): up to `count` __rmqueue() to the tail of the list, under no
        watermark; returns how many. NR_FREE_PAGES loses them (nr_free() reads the
        lists). A block handed out of a split goes as one run, as alloc_blocks(). No page
        is written: the blocks left the free lists unreferenced, untyped and with no
        slot in `private` (pop(), remove(), the untouched inside of a split block), and
        `order` of such a page is not state (buddy_order() needs PageBuddy): the list
        says it. A block handed out is prepared then, as alloc_blocks() does."""
        cdef count_t n = 0, take
        cdef pfn_t pfn
        while n < count:
            take = self.rmqueue_run(order, mt, count - n, &pfn, queue)
            if not take:
                break
            self.pcp_add_tail(pindex, pfn, take, order)
            n += take
        return n

    cdef count_t nr_pcp_alloc(self, int order) noexcept nogil:
        """The blocks one refill asks for. v6.1 (__rmqueue_pcplist()): batch, scaled down
        by the order, at least 2 (1 for a pageset of batch 1). v6.7+ nr_pcp_alloc(): 1
        while high < batch (disabled or boot pageset); order 0 doubles it on every refill
        with no free between (alloc_factor, up to CONFIG_PCP_BATCH_SCALE_MAX), within
        high - count - batch; each refill raises pcp->high by batch towards high_max
        unless the zone is below its high watermark."""
        cdef per_cpu_pages *pcp = &self.pcp
        cdef count_t batch = pcp.batch, base_batch = pcp.batch, high, max_nr_alloc
        if not self.pcp_autotune:
            if batch > 1:
                batch = max(batch >> order, <count_t> 2)
            return batch
        high = pcp.high = clamp(pcp.high, pcp.high_min, pcp.high_max)
        if high < base_batch:
            return 1
        if order:
            batch = base_batch
        else:
            batch = base_batch << pcp.alloc_factor
        if pcp.high_min != pcp.high_max and not self.below_high:
            high = pcp.high = min(high + batch, pcp.high_max)
        if not order:
            max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
            if batch <= max_nr_alloc and pcp.alloc_factor < PCP_BATCH_SCALE_MAX:
                pcp.alloc_factor += 1
            batch = min(batch, max_nr_alloc)
        if batch > 1:
            batch = max(batch >> order, <count_t> 2)
        return batch

    cdef count_t rmqueue_pcplist(self, int order, int mt, count_t count, uint32_t page_flags,
                                 uint64_t owner, count_t keep_free, pfn_t *out,
                                 prep_queue *queue) except -1 nogil:
        """`count` get_page_from_freelist() -> rmqueue_pcplist() of one zone: each call
        passes the zone's watermark test on NR_FREE_PAGES (the pcp pages are not in it)
        or gets nothing here, then takes the head of its list, refilling an empty list
        first (__rmqueue_pcplist()). NR_FREE_PAGES changes only at refills: the call
        that refills was tested before it, the calls after it see the refill, and those
        between two refills all see the same and go as one run. So a refill that takes
        the zone to its watermark leaves the rest of the list to the slow path's drain
        (page_alloc.__alloc_pages()). v6.7+: a call that finds the zone at or below its
        high watermark sets ZONE_BELOW_HIGH (get_page_from_freelist()). Returns the
        blocks handed out, prepared as alloc_blocks() prepares them."""
        cdef per_cpu_pages *pcp = &self.pcp
        cdef int pindex = self.order_to_pindex(mt, order)
        cdef count_t n = 0, k, got
        cdef count_t free_now = self.nr_free(False)
        # high_wmark_pages() + lowmem_reserve[highest_zoneidx]: the caller's min + reserve
        cdef count_t keep_high = keep_free - self.wmark_min + self.wmark_high
        cdef pfn_t pfn
        while n < count and free_now - (1 << order) + 1 > keep_free:
            if self.pcp_autotune and not self.below_high \
                    and free_now - (1 << order) + 1 <= keep_high:
                self.below_high = True
            if not self.pcp.lists[pindex].len:
                got = self.rmqueue_bulk(order, self.nr_pcp_alloc(order), mt, pindex, queue)
                pcp.count += got << order
                free_now -= got << order
                if not got:
                    # the call failed after rmqueue_pcplist()'s halving
                    if self.pcp_autotune:
                        pcp.free_count >>= 1
                    else:
                        pcp.free_factor >>= 1
                    break
                k = self.pcp_take_head(pindex, order, 1, &pfn)      # this call's block
            else:
                k = self.pcp_take_head(pindex, order, count - n, &pfn)
            pcp.count -= k << order
            # every call: v6.1 pcp->free_factor >>= 1, v6.7+ pcp->free_count >>= 1
            if self.pcp_autotune:
                pcp.free_count = pcp.free_count >> k if k < 64 else 0
            else:
                pcp.free_factor = pcp.free_factor >> k if k < 32 else 0
            self.hand_out(pfn, order, k, page_flags, owner, out, n, queue)
            n += k
        return n

    cdef int free_pcppages_bulk(self, count_t count, int pindex) except -1 nogil:
        """free_pcppages_bulk(): `count` pages back to the buddy, from the tail of each
        list in turn, the list at `pindex` first, each block under its pageblock's
        migratetype (v6.12 reads it there; v6.1 reads the one recorded at free time
        unless the zone has isolated pageblocks, which pagecore's v6.9+ free lists
        cannot hold apart: both follow the pageblock)."""
        cdef per_cpu_pages *pcp = &self.pcp
        cdef int order
        cdef pfn_t pfn
        if count > pcp.count:
            count = pcp.count
        pindex -= 1
        while count > 0:
            while True:
                pindex += 1
                if pindex > NR_PCP_LISTS - 1:
                    pindex = 0
                if pcp.lists[pindex].len:
                    break
            order = self.pindex_to_order(pindex)
            while True:
                pfn = self.pcp_take_tail(pindex, order)
                count -= 1 << order
                pcp.count -= 1 << order
                if order <= self.pageblock_order:
                    self._free_one_page(pfn, order, self.get_mt(pfn))
                else:
                    # only on a test arch with pageblock_order < 3: split_large_buddy()'s
                    # rule, no free block across pageblocks of two types
                    self.free_one_page(pfn, order)
                if count <= 0 or not pcp.lists[pindex].len:
                    break
        return 0

    cdef count_t nr_pcp_high(self, count_t batch, bint free_high) noexcept nogil:
        cdef per_cpu_pages *pcp = &self.pcp
        cdef count_t high, fc
        if not self.pcp_autotune:
            # v6.1 nr_pcp_high()
            if not pcp.high or free_high:
                return 0
            return pcp.high
        # v6.7+ nr_pcp_high()
        high = pcp.high = clamp(pcp.high, pcp.high_min, pcp.high_max)
        if not high:
            return 0
        if free_high:
            pcp.high = max(high - (batch << PCP_BATCH_SCALE_MAX), pcp.high_min)
            return 0
        if pcp.high_min == pcp.high_max:
            return high
        if self.below_high:
            fc = max(pcp.free_count, batch)
            pcp.high = max(high - fc, pcp.high_min)
            high = max(pcp.count, pcp.high_min)
        elif pcp.count >= high:
            if pcp.high < pcp.free_count + batch:
                pcp.high = clamp(pcp.free_count + batch, pcp.high_min, pcp.high_max)
        return high

    cdef count_t nr_pcp_free(self, count_t batch, count_t high, bint free_high) noexcept nogil:
        cdef per_cpu_pages *pcp = &self.pcp
        cdef count_t min_nr_free, max_nr_free
        if free_high:
            # v6.1: everything; v6.7+: at most batch << CONFIG_PCP_BATCH_SCALE_MAX
            if not self.pcp_autotune:
                return pcp.count
            return min(pcp.count, batch << PCP_BATCH_SCALE_MAX)
        if high < batch:                        # disabled or boot pageset
            return 1
        min_nr_free = batch
        max_nr_free = high - batch
        if self.pcp_autotune:
            return clamp(pcp.free_count, min_nr_free, max_nr_free)
        # v6.1: double the pages freed on each free with no allocation between
        batch <<= pcp.free_factor
        if batch < max_nr_free and pcp.free_factor < PCP_BATCH_SCALE_MAX:
            pcp.free_factor += 1
        return clamp(batch, min_nr_free, max_nr_free)

    cdef int free_unref_page_commit(self, pfn_t pfn, int mt, int order) except -1 nogil:
        """free_unref_page_commit(): the block to the head of its list; at pcp->high
        (nr_pcp_high()) free_pcppages_bulk() of nr_pcp_free() pages. free_high: v6.1
        frees every page when orders 1..3 come while frees outnumber allocations
        (free_factor); v6.7+ when they come in a row past batch pages (free_count,
        PCPF_PREV_FREE_HIGH_ORDER; PCPF_FREE_HIGH_BATCH, set when the CPU's cache slice
        exceeds 3 * batch pages, setup_pcp_cacheinfo(), is taken as set), and on
        v6.7+ a free that leaves the zone above its high watermark clears
        ZONE_BELOW_HIGH."""
        cdef per_cpu_pages *pcp = &self.pcp
        cdef int pindex = self.order_to_pindex(mt, order)
        cdef bint free_high = False
        cdef count_t high, batch = pcp.batch
        if self.pcp_autotune:
            pcp.alloc_factor >>= 1
        self.pcp_add(pindex, pfn, order)
        pcp.count += 1 << order
        if not self.pcp_autotune:
            free_high = pcp.free_factor and order and order <= PAGE_ALLOC_COSTLY_ORDER
        else:
            if order and order <= PAGE_ALLOC_COSTLY_ORDER:
                free_high = (pcp.free_count >= batch and (pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
                             and pcp.count >= batch)
                pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
            else:
                pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
            if pcp.free_count < (batch << PCP_BATCH_SCALE_MAX):
                pcp.free_count += 1 << order
        high = self.nr_pcp_high(batch, free_high)
        if pcp.count >= high:
            self.free_pcppages_bulk(self.nr_pcp_free(batch, high, free_high), pindex)
            if self.pcp_autotune and self.below_high \
                    and self.nr_free(False) > self.wmark_high + self.reserve_movable:
                self.below_high = False         # zone_watermark_ok(high, ZONE_MOVABLE)
        return 0

    cdef int drain_pages_zone(self) except -1 nogil:
        """drain_pages_zone() of the running CPU: every page back to the buddy (v6.12
        in rounds of batch << CONFIG_PCP_BATCH_SCALE_MAX, each from list 0: the same
        order of frees)."""
        self.free_pcppages_bulk(self.pcp.count, 0)
        return 0

    cdef bint decay_pcp_high(self) except -1 nogil:
        """decay_pcp_high() (v6.7+, from the vmstat worker's refresh_cpu_vm_stats()):
        pcp->high down by an eighth (no further than count - batch << 5, nor below
        high_min), then the pages above it back in batches. True while there is more to
        do (the worker runs again). v6.1 has no such step: False."""
        cdef per_cpu_pages *pcp = &self.pcp
        cdef bint todo = False
        cdef count_t to_drain, k
        if not self.pcp_autotune:
            return False
        if pcp.high > pcp.high_min:
            pcp.high = max(max(pcp.count - (pcp.batch << PCP_BATCH_SCALE_MAX),
                               pcp.high - (pcp.high >> 3)), pcp.high_min)
            if pcp.high > pcp.high_min:
                todo = True
        to_drain = pcp.count - pcp.high
        while to_drain > 0:
            k = min(to_drain, pcp.batch)
            self.free_pcppages_bulk(k, 0)
            todo = True
            to_drain -= k
        return todo

    def py_decay_pcp_high(self):
        cdef bint todo
        with nogil:
            todo = self.decay_pcp_high()
        return todo

    def drain_pages(self):
        """drain_pages_zone() (drain_all_pages() and __drain_all_pages() of this zone:
        the other CPUs' lists are empty). Returns the pages drained."""
        cdef count_t n = self.pcp.count
        with nogil:
            self.drain_pages_zone()
        return n

    def drain_zone_pages(self):
        """drain_zone_pages() (mm/page_alloc.c, CONFIG_NUMA, v6.1 and v6.12: the vmstat
        worker's drain of a remote zone): free_pcppages_bulk() of min(count, batch)
        pages, from list 0 on. Returns the pages given back (a block of a higher order
        counts whole)."""
        cdef count_t n = self.pcp.count
        if min(n, self.pcp.batch) > 0:
            with nogil:
                self.free_pcppages_bulk(min(n, self.pcp.batch), 0)
        return n - self.pcp.count

    def pageset_update(self, count_t high_min, count_t high_max, count_t batch):
        """pageset_update() of the running CPU's pageset: v6.1 writes pcp->high
        (high_min), v6.7+ high_min and high_max (pcp->high is clamped into them when
        next read)."""
        if batch < 1:
            raise ValueError(f"pcp batch {batch} < 1")
        self.pcp.batch = batch
        self.pcp.high_min, self.pcp.high_max = high_min, high_max
        if not self.pcp_autotune:
            self.pcp.high = high_min

    def per_cpu_pages_init(self):
        """per_cpu_pages_init(): fresh pageset, high 0 and batch 1 (BOOT_PAGESET_*), no
        tuning state. The lists must be empty (a zone gets new pagesets only while it
        has none: setup_zone_pageset(), zone_pcp_reset() after a drain)."""
        if self.pcp.count:
            raise ValueError(f"per_cpu_pages_init: {self.pcp.count} pages on the lists")
        self.pcp.high = self.pcp.high_min = self.pcp.high_max = 0
        self.pcp.batch = 1
        self.pcp.free_count = self.pcp.free_factor = self.pcp.alloc_factor = 0
        self.pcp.flags = 0
        self.below_high = False

    def pcp_state(self):
        """(count, high, high_min, high_max, batch, free_count, free_factor,
        alloc_factor, flags) of the running CPU's pageset."""
        p = self.pcp
        return (p.count, p.high, p.high_min, p.high_max, p.batch, p.free_count,
                p.free_factor, p.alloc_factor, p.flags)

    @property
    def pcp_count(self):
        """pcp->count: pages on the running CPU's lists."""
        return self.pcp.count

    def pcp_lists(self):
        """The blocks on each list, head first: {pindex: int64 array of pfns} of the
        non-empty lists; the order of list `pindex` is pindex_to_order()."""
        out = {}
        cdef int pindex, order
        cdef count_t i, j, k
        cdef pcp_list *l
        cdef pcp_run *r
        for pindex in range(NR_PCP_LISTS):
            l = &self.pcp.lists[pindex]
            if not l.len:
                continue
            order = self.pindex_to_order(pindex)
            pf = []
            for i in range(l.len):
                r = &l.runs[(l.head + i) & (l.cap - 1)]
                pf.append(r.pfn + (np.arange(r.n, dtype=np.int64) << order))
            out[pindex] = np.concatenate(pf)
        return out

    def pcp_list_order(self, int pindex):
        return self.pindex_to_order(pindex)

    # ---- Python face (used by the numpy twins, accounting and tests) ----------------
    def counts(self):
        """Free blocks per (migratetype, order): the rows of /proc/pagetypeinfo."""
        out = np.zeros((MIGRATE_TYPES, self.nr_orders), dtype=np.int64)
        cdef int mt, o
        for mt in range(MIGRATE_TYPES):
            for o in range(self.nr_orders):
                out[mt, o] = self.nr[mt][o]
        return out

    cpdef count_t nr_free_pages(self, bint include_isolated=False) noexcept:
        """NR_FREE_PAGES of the zone: free pages outside isolated pageblocks."""
        return self.nr_free(include_isolated)

    cdef count_t nr_free(self, bint include_isolated) noexcept nogil:
        cdef count_t total = 0
        cdef int mt, o
        for mt in range(MIGRATE_TYPES):
            if mt == MIGRATE_ISOLATE and not include_isolated:
                continue
            for o in range(self.nr_orders):
                total += self.nr[mt][o] << o
        return total

    def blocks(self, int mt, int order):
        """The pfns on one list, in list order."""
        if not 0 <= mt < MIGRATE_TYPES or not 0 <= order < self.nr_orders:
            raise ValueError(f"no free list ({mt}, {order})")
        cdef count_t n = self.nr[mt][order], i
        out = np.empty(n, dtype=np.int64)
        cdef pfn_t[::1] o = out
        for i in range(n):
            o[i] = slot_get(self, mt, order, i)
        return out

    def list_slots(self, pfn_t[::1] pfns):
        """The list slot recorded for each free head in `pfns` (read where buddy.pxd
        says it is kept; for pagecore.invariants)."""
        out = np.empty(pfns.shape[0], dtype=np.int64)
        cdef int64_t[::1] o = out
        cdef Py_ssize_t i
        for i in range(pfns.shape[0]):
            o[i] = slot_of(self, pfns[i], &self.mem_map[pfns[i]])
        return out

    def snapshot(self):
        """A comparable image of every list (as sorted pfn arrays)."""
        return {(mt, o): np.sort(self.blocks(mt, o)).tobytes()
                for mt in range(MIGRATE_TYPES) for o in range(self.nr_orders)
                if self.nr[mt][o]}

    def py_add(self, pfn_t pfn, int order, int mt):
        self.add(pfn, order, mt)

    def py_add_listed(self, pfn_t pfn, int order, int mt):
        if not self.side_order <= order < self.nr_orders:
            raise ValueError(f"add_listed: order {order} below the side order")
        self.add_listed(pfn, order, mt)

    def py_remove(self, pfn_t pfn):
        self.remove(pfn)

    def py_free_one_page(self, pfn_t pfn, int order):
        self.free_one_page(pfn, order)

    def py_rmqueue(self, int order, int mt):
        return self.rmqueue(order, mt)

    def py_move_freepages_block(self, pfn_t pfn, int mt):
        return self.move_freepages_block(pfn, mt)

    def py_unset_migratetype_isolate(self, pfn_t pfn):
        return self.unset_migratetype_isolate(pfn)


# ---- prep_new_page() of a run (FreeArea.alloc_blocks()) ------------------------------
cdef extern from *:
    """
    #include <string.h>
    /* prep_run()'s stores: each 16-byte page as two 8-byte words, word k becoming
     * (old & keep[k]) | (head or tail)[k]; a 16-byte page with its fields set one by one
     * is 5 stores and a load the stores may not forward to (pageinit.h has the story). */
    static inline void pc_prep_run(void *pages, int64_t n, int order, const void *keep_rec,
                                   const void *head_rec, const void *tail_rec) {
        unsigned char *p = (unsigned char *)pages;
        int64_t i, m = ((int64_t)1 << order) - 1;
        uint64_t w0, w1, keep[2], head[2], tail[2];
        memcpy(keep, keep_rec, 16);
        memcpy(head, head_rec, 16);
        memcpy(tail, tail_rec, 16);
        for (i = 0; i < n; i++, p += 16) {
            const uint64_t *t = (i & m) ? tail : head;
            memcpy(&w0, p, 8);
            memcpy(&w1, p + 8, 8);
            w0 = (w0 & keep[0]) | t[0];
            w1 = (w1 & keep[1]) | t[1];
            memcpy(p, &w0, 8);
            memcpy(p + 8, &w1, 8);
        }
    }
    """
    void pc_prep_run(void *pages, count_t n, int order, const void *keep_rec,
                     const void *head_rec, const void *tail_rec) noexcept nogil


cdef inline void prep_run(page_t *mem_map, pfn_t pfn, int order, count_t nr_blocks,
                          uint32_t page_flags, uint64_t owner) noexcept nogil:
    # prep_new_page() of `nr_blocks` consecutive blocks of `order` from `pfn`: each page
    # keeps its zone/node bits and gets `page_flags` (PG_head / PG_tail above order 0),
    # refcount 1, `owner` in private and the block's order. The words are made from page
    # records, so no field offset is assumed (page_t is 16 bytes: page.pxd).
    cdef page_t head, tail, keep
    memset(&keep, 0, sizeof(page_t))
    keep.flags = ~(<uint32_t> FLAGS_MASK)
    head.flags = page_flags | (PG_head if order else 0)
    head.page_type = PGTY_NONE
    head.order = order
    head.refcount = 1
    head.private = owner
    tail = head
    tail.flags = page_flags | PG_tail
    pc_prep_run(&mem_map[pfn], nr_blocks << order, order, &keep, &head, &tail)


cdef extern from "stdlib.h" nogil:
    void qsort(void *base, size_t nmemb, size_t size,
               int (*compar)(const void *, const void *) noexcept nogil)


cdef int prep_cmp(const void *a, const void *b) noexcept nogil:
    cdef pfn_t x = (<const prep_item *> a).pfn, y = (<const prep_item *> b).pfn
    return (x > y) - (x < y)


cdef enum:
    # runs of fewer pages are written at once: a fragmented zone hands out short runs
    # all over it, which sorting would not make a stream of
    PREP_LATER_PAGES = 64


cdef void prep_flush(prep_queue *q) noexcept nogil:
    # prep_run() of the queued runs, in pfn order (they do not overlap: each is blocks
    # just taken off the free lists). A fill from the top down queues them in falling
    # order: then the queue is read backwards, unsorted.
    cdef Py_ssize_t i
    cdef bint falling = True
    cdef prep_item *r
    for i in range(1, q.n):
        if q.items[i].pfn > q.items[i - 1].pfn:
            falling = False
            break
    if not falling:
        qsort(q.items, q.n, sizeof(prep_item), prep_cmp)
    for i in range(q.n):
        r = &q.items[q.n - 1 - i if falling else i]
        prep_run(q.mem_map, r.pfn, r.order, r.nr_blocks, r.page_flags, r.owner)
    q.n = 0


cdef inline void prep_later(prep_queue *q, pfn_t pfn, int order, count_t nr_blocks,
                            uint32_t page_flags, uint64_t owner) noexcept nogil:
    cdef prep_item *r
    if q.n == q.cap:
        prep_flush(q)
    r = &q.items[q.n]
    r.pfn, r.order, r.nr_blocks, r.page_flags, r.owner = pfn, order, nr_blocks, page_flags, owner
    q.n += 1


# ---- a workload's fills and frees (pagecore.workload) ----------------------------------
cdef count_t fill_draws(PyObject **areas, const count_t[::1] keep, const count_t[::1] first,
                        const int32_t[::1] mt, const uint32_t[::1] page_flags,
                        const uint64_t[::1] owner, const uint8_t[::1] kinds,
                        const uint8_t[::1] orders, count_t chunk, count_t used, count_t target,
                        uint8_t[::1] exhausted, count_t[::1] allocated,
                        prep_queue *queue, PyObject **drain, Py_ssize_t nr_drain) except -1 nogil:
    """Allocate for the pre-drawn (kind, order) draws in turn until `used` reaches `target`
    or every (kind, order) is exhausted; returns the new `used`.

    Kind k allocates with migratetype mt[k], page_flags[k] and owner[k] from
    areas[first[k]:first[k+1]], a zonelist already cut down to the target zones; a zone
    gives pages while it keeps more than keep[z] free (__alloc_pages() ->
    get_page_from_freelist(): zone_watermark_ok() against min + lowmem_reserve, next zone
    when it fails). A draw asks for max(1, chunk >> order) blocks, never more than the
    pages still missing; falling short marks its (kind, order) exhausted, and later draws
    of it are skipped (they still use up their place in the sequence). `exhausted`
    (kind-major, nr_orders per kind) and `allocated` (pages per kind) carry over between
    batches; `used` is tracked here as the pages allocated, since a successful __rmqueue
    takes exactly 2^order pages off NR_FREE_PAGES of non-isolated lists. The pages of
    the blocks may be left in `queue` (alloc_blocks()); the caller writes them out.
    A draw that falls short takes the slow path's remedy before giving up
    (__alloc_pages_direct_reclaim()): the pcp lists of the `drain` areas (every populated
    zone: drain_all_pages(NULL)) go back to the buddy and the zonelist is tried again,
    as long as a drain finds pages and the retry gets some (page_alloc.__alloc_pages()).
    """
    cdef Py_ssize_t i, z
    cdef int k, o, nr_orders = exhausted.shape[0] // mt.shape[0]
    cdef count_t left = 0, want, got, more, pending
    for i in range(exhausted.shape[0]):
        left += exhausted[i] == 0
    for i in range(kinds.shape[0]):
        if used >= target or left == 0:
            break
        k = kinds[i]
        o = orders[i]
        if exhausted[k * nr_orders + o]:
            continue
        want = (target - used + ((<count_t> 1) << o) - 1) >> o
        if want > (chunk >> o):
            want = max(<count_t> 1, chunk >> o)
        got = 0
        for z in range(first[k], first[k + 1]):
            got += (<FreeArea> areas[z]).alloc_blocks(o, mt[k], want - got, page_flags[k],
                                                      owner[k], keep[z], NULL, queue)
            if got == want:
                break
        while got < want:
            pending = 0
            for z in range(nr_drain):
                pending += (<FreeArea> drain[z]).pcp.count
            if not pending:
                break
            if queue != NULL:
                prep_flush(queue)
            for z in range(nr_drain):
                (<FreeArea> drain[z]).drain_pages_zone()
            more = 0
            for z in range(first[k], first[k + 1]):
                more += (<FreeArea> areas[z]).alloc_blocks(o, mt[k], want - got - more,
                                                           page_flags[k], owner[k], keep[z],
                                                           NULL, queue)
                if got + more == want:
                    break
            if not more:
                break
            got += more
        used += got << o
        allocated[k] += got << o
        if got < want:
            exhausted[k * nr_orders + o] = 1
            left -= 1
    return used


def fill_zones(areas, const count_t[::1] keep, const count_t[::1] first,
               const int32_t[::1] mt, const uint32_t[::1] page_flags, const uint64_t[::1] owner,
               const uint8_t[::1] kinds, const uint8_t[::1] orders, count_t chunk,
               count_t used, count_t target, uint8_t[::1] exhausted, count_t[::1] allocated,
               drain=()):
    """fill_draws() over the FreeAreas `areas` (sequence), `drain` the FreeAreas of every
    populated zone (the slow path's drain_all_pages()), after checking that every index
    the kernel follows is in range. Returns the new `used`."""
    cdef Py_ssize_t nk = mt.shape[0], na, i
    cdef int nr_orders
    cdef PyObject **ptrs
    cdef count_t out
    areas = tuple(areas)                        # holds the references fill_draws borrows
    na = len(areas)
    if nk == 0 or na == 0:
        raise ValueError("fill_zones: no kinds or no free areas")
    if not all(isinstance(a, FreeArea) for a in areas):
        raise TypeError("fill_zones: areas must be FreeArea objects")
    nr_orders = (<FreeArea> areas[0]).nr_orders
    if any((<FreeArea> a).nr_orders != nr_orders for a in areas):
        raise ValueError("fill_zones: free areas disagree on nr_orders")
    if (first.shape[0] != nk + 1 or page_flags.shape[0] != nk or owner.shape[0] != nk
            or allocated.shape[0] != nk or keep.shape[0] != na
            or exhausted.shape[0] != nk * nr_orders or kinds.shape[0] != orders.shape[0]):
        raise ValueError("fill_zones: array lengths disagree")
    if first[0] != 0 or first[nk] != na or any(first[i] > first[i + 1] for i in range(nk)):
        raise ValueError("fill_zones: `first` must rise from 0 to len(areas)")
    if any(not 0 <= mt[i] < MIGRATE_ISOLATE for i in range(nk)):
        raise ValueError("fill_zones: migratetype cannot be allocated from")
    for i in range(kinds.shape[0]):
        if kinds[i] >= nk or orders[i] >= nr_orders:
            raise ValueError(f"fill_zones: draw {i} = (kind {kinds[i]}, order {orders[i]}) "
                             "out of range")
    cdef prep_queue queue
    cdef prep_queue *q = &queue
    queue.mem_map = (<FreeArea> areas[0]).mem_map       # the machine's, shared by all
    queue.n = 0
    queue.cap = 4096                            # runs: about 32 MiB of pages at 512 a run
    queue.items = <prep_item *> malloc(queue.cap * sizeof(prep_item))
    drain = tuple(drain)                        # held, like areas
    if not all(isinstance(a, FreeArea) for a in drain):
        raise TypeError("fill_zones: drain must be FreeArea objects")
    cdef Py_ssize_t nd = len(drain)
    cdef PyObject **dptrs = <PyObject **> malloc((nd + 1) * sizeof(PyObject *))
    ptrs = <PyObject **> malloc(na * sizeof(PyObject *))
    if ptrs == NULL or queue.items == NULL or dptrs == NULL:
        free(ptrs)
        free(dptrs)
        free(queue.items)
        raise MemoryError("fill_zones")
    try:
        for i in range(na):
            ptrs[i] = <PyObject *> areas[i]
            if (<FreeArea> areas[i]).mem_map != queue.mem_map:
                q = NULL                        # not one page array: write pages at once
        for i in range(nd):
            dptrs[i] = <PyObject *> drain[i]
        with nogil:
            out = fill_draws(ptrs, keep, first, mt, page_flags, owner, kinds, orders, chunk,
                             used, target, exhausted, allocated, q, dptrs, nd)
    finally:
        prep_flush(&queue)                      # also when a free list could not grow
        free(queue.items)
        free(ptrs)
        free(dptrs)
    return out


cdef inline count_t owned_size(const page_t *p, uint32_t zone_bits, uint64_t owner,
                               uint64_t nr_owners) noexcept nogil:
    # Pages of the allocated block headed at p if a page of the zone `zone_bits` whose
    # private is in owner .. owner + nr_owners - 1 (folio_nr_pages(): 2^order with
    # PG_head, else 1), else 0. A head is what __free_pages() accepts: refcount > 0, no
    # page type, no PG_tail (which joins the node/zone bits in one compare: zone_bits has
    # no PG_tail).
    if (p.refcount == 0 or p.page_type != PGTY_NONE
            or (p.flags & (~(<uint32_t> FLAGS_MASK) | PG_tail)) != zone_bits
            or p.private - owner >= nr_owners):           # unsigned: wraps below owner
        return 0
    return (<count_t> 1) << p.order if p.flags & PG_head else 1


cdef count_t owned_blocks(const page_t[::1] pages, uint32_t zone_bits, uint64_t owner,
                          uint64_t nr_owners, pfn_t[::1] idx, count_t[::1] sizes) noexcept nogil:
    """The allocated blocks of `pages` owned as owned_size() says: offsets into `idx`
    (rising) and pages per block into `sizes`. Returns how many. One pass, so a workload
    reads its allocations back at memory speed."""
    cdef Py_ssize_t i
    cdef count_t n = 0, k
    for i in range(pages.shape[0]):
        k = owned_size(&pages[i], zone_bits, owner, nr_owners)
        if k:
            idx[n] = i
            sizes[n] = k
            n += 1
    return n


def _check_zone_bits(uint32_t zone_bits):
    if zone_bits & FLAGS_MASK:
        raise ValueError(f"zone_bits={zone_bits:#x} has PG_* bits")


def owned_heads(const page_t[::1] pages, uint32_t zone_bits, uint64_t owner,
                uint64_t nr_owners):
    """owned_blocks() into fresh arrays: (offsets, sizes), int64."""
    _check_zone_bits(zone_bits)
    cdef Py_ssize_t n = pages.shape[0]
    idx = np.empty(n, dtype=np.int64)
    sizes = np.empty(n, dtype=np.int64)
    cdef pfn_t[::1] iv = idx
    cdef count_t[::1] sv = sizes
    with nogil:
        n = owned_blocks(pages, zone_bits, owner, nr_owners, iv, sv)
    return idx[:n], sizes[:n]


def owned_pages(const page_t[::1] pages, uint32_t zone_bits, uint64_t owner,
                uint64_t nr_owners):
    """The pages of the blocks owned_blocks() would list (their sizes summed)."""
    _check_zone_bits(zone_bits)
    cdef Py_ssize_t i
    cdef count_t total = 0
    with nogil:
        for i in range(pages.shape[0]):
            total += owned_size(&pages[i], zone_bits, owner, nr_owners)
    return total


def free_owned_random(FreeArea area, page_t[::1] pages, pfn_t base, uint32_t zone_bits,
                      uint64_t owner, uint64_t nr_owners, double p, count_t excess, rng):
    """One chunk of a workload's random frees: each block owned_blocks() lists in
    `pages` (the run of the page array from pfn `base`, in area's zone) is freed with
    probability `p` (one rng.random() draw per listed block, in pfn order), until the
    pages freed reach `excess`; the blocks after that still take their draw, so the
    random stream is that of one rng.random(number of blocks) per chunk. Returns the pages
    freed. Its twin, the same steps in numpy, is Workload._free_chunk_numpy()."""
    _check_zone_bits(zone_bits)
    cdef bitgen_t *bg
    cdef Py_ssize_t i
    cdef count_t freed = 0, k
    cdef bint done = excess <= 0
    bit_generator = rng.bit_generator
    capsule = bit_generator.capsule
    bg = <bitgen_t *> PyCapsule_GetPointer(capsule, "BitGenerator")
    with bit_generator.lock, nogil:
        for i in range(pages.shape[0]):
            k = owned_size(&pages[i], zone_bits, owner, nr_owners)
            # the draw first, as rng.random(n) makes it, whether or not it is used
            if k and bg.next_double(bg.state) < p and not done:
                freed += area.free_pages(base + i)
                done = freed >= excess
    return freed


# ---- a workload's whole aging free (pagecore.workload.Workload._free_down_to) ------------
cdef extern from *:
    """
    static inline int pc_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int pc_popcount64(unsigned long long x) { return __builtin_popcountll(x); }
    static inline void pc_prefetch_w(const void *p) { __builtin_prefetch(p, 1, 3); }
    """
    int pc_ctz64(uint64_t x) noexcept nogil
    int pc_popcount64(uint64_t x) noexcept nogil
    void pc_prefetch_w(const void *p) noexcept nogil


cdef extern from "pcg64.h" nogil:
    ctypedef struct pc_pcg64:
        pass
    void pc_pcg64_init(pc_pcg64 *g, uint64_t state_hi, uint64_t state_lo, uint64_t inc_hi,
                       uint64_t inc_lo)
    void pc_pcg64_set_p(pc_pcg64 *g, double p)
    int pc_pcg64_next_hit(pc_pcg64 *g)
    uint64_t pc_pcg64_take(pc_pcg64 *g, int n)
    uint64_t pc_pcg64_state_hi(const pc_pcg64 *g)
    uint64_t pc_pcg64_state_lo(const pc_pcg64 *g)
    int pc_pcg64_use_ifma(pc_pcg64 *g, int wide)
    int pc_pcg64_ifma_ok()
    void pc_pcg64_next_batch(pc_pcg64 *g)
    const uint64_t *pc_pcg64_outputs(const pc_pcg64 *g)


# The PCG64 draws' steps: scalar (four chains) or AVX-512 IFMA (eight), the best this
# CPU runs unless PAGECORE_SIMD (scalar, sse2, avx512: as for the compaction scanners)
# asks for less; sse2 has no steps of its own and means scalar.
cdef bint _pcg_wide = pc_pcg64_ifma_ok()


def _pcg64_level(name=None):
    """The PCG64 steps in use, "scalar" or "avx512"; with `name` (one of the
    PAGECORE_SIMD names), switch first (clamped to what this CPU runs)."""
    global _pcg_wide
    if name is not None:
        if name not in ("scalar", "sse2", "avx512"):
            raise ValueError(f"unknown SIMD level {name!r}")
        _pcg_wide = name == "avx512" and pc_pcg64_ifma_ok()
    return "avx512" if _pcg_wide else "scalar"


import os as _os
_pcg64_level(_os.environ.get("PAGECORE_SIMD", "avx512"))


def _pcg64_batches(uint64_t state_hi, uint64_t state_lo, uint64_t inc_hi, uint64_t inc_lo,
                   double p, int nr_batches, level):
    """The first `nr_batches` batches of 64 draws from a PCG64 state as the `level` steps
    make them (for tests): (outputs >> 11, uint64; hit masks against p, uint64; the
    state after all of them, as an int)."""
    if level not in ("scalar", "avx512") or (level == "avx512" and not pc_pcg64_ifma_ok()):
        raise ValueError(f"_pcg64_batches: level {level!r} not available")
    out = np.empty(64 * nr_batches, dtype=np.uint64)
    hits = np.empty(nr_batches, dtype=np.uint64)
    cdef uint64_t[::1] o = out, h = hits
    cdef pc_pcg64 *g = <pc_pcg64 *> malloc(sizeof(pc_pcg64))
    cdef int b, i
    if g == NULL:
        raise MemoryError("_pcg64_batches")
    pc_pcg64_init(g, state_hi, state_lo, inc_hi, inc_lo)
    pc_pcg64_use_ifma(g, level == "avx512")
    pc_pcg64_set_p(g, p)
    for b in range(nr_batches):
        h[b] = pc_pcg64_take(g, 64)
        for i in range(64):
            o[64 * b + i] = pc_pcg64_outputs(g)[i]
    state = (<object> pc_pcg64_state_hi(g)) << 64 | pc_pcg64_state_lo(g)
    free(g)
    return out, hits, state


cdef struct draws:
    # where the frees' Generator.random() draws come from: numpy's PCG64 stream four
    # steps at a time (pcg64.h), or any BitGenerator through its next_double
    pc_pcg64 *pcg
    bitgen_t *bg


cdef struct owned_map:
    # one target zone of the frees: its span, node/zone bits, and one bit per pfn of the
    # span, set on the heads owned_size() counts (scan_owned())
    pfn_t start
    pfn_t end
    uint32_t bits
    uint64_t *words


cdef count_t scan_owned(FreeArea fa, const page_t *mem_map, owned_map *z, uint64_t owner,
                        uint64_t nr_owners, bint *nested) noexcept nogil:
    """The one read of the page array: set z's bits, return the pages of the blocks.
    `nested` is set when a block's free (free_pages(): 2^order pages from its head) would
    reach past the zone or take another owned head (of any zone) with it, which no
    consistent page array has: then only a block-by-block walk of the bits (which
    re-reads them after each free) frees as a scan of the page array would.
    The words of 64 pages inside a free block of order >= pageblock_order on the
    zone's lists (FreeArea.listed_block(), one look per pageblock) hold no owned head
    and are not read: a mostly free 16 TiB zone leaves its memmap images unread."""
    cdef pfn_t n = z.end - z.start, w, j, lim, i, cover = 0, lo
    cdef pfn_t free_lo = 0, free_hi = 0, looked = -1, h
    cdef count_t total = 0, k
    cdef uint64_t acc
    cdef const page_t *p = mem_map + z.start
    cdef const page_t *q
    cdef bint inside = False
    cdef bint sided = fa.side_order < fa.nr_orders
    cdef int o
    for w in range((n + 63) >> 6):
        acc = 0
        lim = n - (w << 6)
        if lim > 64:
            lim = 64
        lo = z.start + (w << 6)
        if sided:
            if lo >= free_hi and (lo >> fa.side_order) != looked:
                looked = lo >> fa.side_order
                h = fa.listed_block(lo, &o)
                if h >= 0:
                    free_lo, free_hi = h, h + ((<pfn_t> 1) << o)
            if free_lo <= lo and lo + lim <= free_hi:
                z.words[w] = 0
                continue
        for j in range(lim):
            i = (w << 6) + j
            q = &p[i]
            k = owned_size(q, z.bits, owner, nr_owners)
            if k:
                acc |= (<uint64_t> 1) << j
                total += k
                if i < cover:
                    inside = True               # inside the pages a block's free takes
                if q.order and i + ((<pfn_t> 1) << q.order) > cover:
                    cover = i + ((<pfn_t> 1) << q.order)
            elif i < cover:
                # owned_size() in another zone, inside the pages a block's free takes
                if (q.refcount != 0 and q.page_type == PGTY_NONE and not (q.flags & PG_tail)
                        and q.private - owner < nr_owners):
                    inside = True
        z.words[w] = acc
    if inside or cover > n:
        nested[0] = True
    return total


cdef inline void clear_bits(uint64_t *words, pfn_t lo, pfn_t hi) noexcept nogil:
    # bits [lo, hi) to 0
    while lo < hi and (lo & 63):
        words[lo >> 6] &= ~((<uint64_t> 1) << (lo & 63))
        lo += 1
    while lo + 64 <= hi:
        words[lo >> 6] = 0
        lo += 64
    while lo < hi:
        words[lo >> 6] &= ~((<uint64_t> 1) << (lo & 63))
        lo += 1


cdef count_t free_owned_chunk(FreeArea area, owned_map *z, pfn_t c, pfn_t e, double p,
                              count_t excess, draws *src) except -1 nogil:
    """free_owned_random() of the pfns [c, e) of `z`, its blocks read off z's bits in
    place of the page array: one draw per block in pfn order, a block freed when its
    draw is below `p` until `excess` pages are. A freed block's pages leave the bits
    (free_pages() clears their refcount, which is what a scan would read), and the word
    is read again after each free."""
    cdef pfn_t lo = c - z.start, hi = e - z.start, w = lo >> 6, last = (hi - 1) >> 6
    cdef pfn_t span = z.end - z.start, b, top
    cdef uint64_t cur = z.words[w] & (~(<uint64_t> 0) << (lo & 63))
    cdef count_t freed = 0, k
    cdef bint done = excess <= 0, hit
    cdef int t
    while True:
        if w == last and (hi & 63):
            cur &= ((<uint64_t> 1) << (hi & 63)) - 1
        while cur:
            t = pc_ctz64(cur)
            cur &= cur - 1
            # the draw first, whether or not it is used (free_owned_random())
            if src.pcg != NULL:
                hit = pc_pcg64_next_hit(src.pcg)
            else:
                hit = src.bg.next_double(src.bg.state) < p
            if hit and not done:
                b = (w << 6) + t
                k = area.free_pages(z.start + b)
                freed += k
                top = b + k
                clear_bits(z.words, b, top if top < span else span)
                cur &= z.words[w]
                done = freed >= excess
        w += 1
        if w > last:
            return freed
        cur = z.words[w]


cdef inline uint64_t word_hits(owned_map *z, pfn_t w, pfn_t lo, pfn_t hi, pc_pcg64 *g,
                               bint spread) noexcept nogil:
    # the draws of the owned blocks of word w of the chunk [lo, hi) (bit offsets), one
    # each in bit order (pc_pcg64_take()), as the word's bits of the blocks drawn below p
    # (only counted when not `spread`)
    cdef uint64_t cur = z.words[w], got, hits = 0
    cdef int t
    if w == lo >> 6:
        cur &= ~(<uint64_t> 0) << (lo & 63)
    if w == (hi - 1) >> 6 and (hi & 63):
        cur &= ((<uint64_t> 1) << (hi & 63)) - 1
    if cur == 0:
        return 0
    got = pc_pcg64_take(g, pc_popcount64(cur))
    if got == 0 or not spread:
        return 0
    while cur:
        t = pc_ctz64(cur)
        cur &= cur - 1
        hits |= (got & 1) << t
        got >>= 1
    return hits


cdef count_t free_owned_words(FreeArea area, owned_map *z, pfn_t c, pfn_t e,
                              count_t excess, pc_pcg64 *g) except -1 nogil:
    """free_owned_chunk() a word of bits at a time, for a page array without nested
    blocks (scan_owned()), where a free clears no bit but its own: the draws of a word's
    blocks are taken at once (pc_pcg64_take(): bit i for the word's i-th block) and
    spread over the word's bits, so the frees go down the hits and no branch waits on a
    draw. The next word's draws are taken before this word's frees (the stream's order
    is the same) so that the pages it frees are prefetched: a sparse pass frees pages
    nothing has read for a while (a dense one streams on its own: no prefetch above 16
    frees a word). Same draws, same frees, same order."""
    cdef pfn_t lo = c - z.start, hi = e - z.start, w = lo >> 6, last = (hi - 1) >> 6
    cdef const page_t *base = area.mem_map + z.start
    cdef uint64_t hits, nxt, x
    cdef count_t freed = 0
    cdef bint done = excess <= 0
    cdef int t
    hits = word_hits(z, w, lo, hi, g, not done)
    while True:
        nxt = word_hits(z, w + 1, lo, hi, g, not done) if w < last else 0
        # dense frees stream past the hardware prefetcher on their own
        x = nxt if pc_popcount64(nxt) <= 16 else 0
        while x:
            t = pc_ctz64(x)
            x &= x - 1
            pc_prefetch_w(&base[((w + 1) << 6) + t])
        while hits and not done:
            t = pc_ctz64(hits)
            hits &= hits - 1
            freed += area.free_pages(z.start + (w << 6) + t)
            z.words[w] &= ~((<uint64_t> 1) << t)
            done = freed >= excess
        w += 1
        if w > last:
            return freed
        hits = nxt


def free_owned_passes(zones, const page_t[::1] mem_map, uint64_t owner, uint64_t nr_owners,
                      count_t excess, pfn_t chunk, rng):
    """Workload._free_down_to()'s frees in one call: the passes of free_owned_random()
    over chunks of `chunk` pfns of each zone, in zone order, until `excess` pages are
    freed or no owned block is left. `zones` is a sequence of (FreeArea, start pfn, end
    pfn, node/zone bits). Each pass frees with p = min(1, excess / owned pages) (both as
    they stand when the pass starts); a pass ends early after the chunk in which the
    excess is met. Returns the pages freed.

    Same draws and frees as those calls, chunk for chunk (tests/test_workload.py holds it
    to them and to the numpy twin, Workload._free_chunk_numpy()), but the page array is
    read once: the owned heads go to a bitmap (one bit per pfn, 1/128 of the page array)
    that the passes read, and the frees clear. Nothing else changes the pages during the
    call, so the bitmap reads as a scan of the page array would. With numpy's PCG64
    (what default_rng() makes) the draws come from pcg64.h, 64 at a time, four or (AVX-512
    IFMA: _pcg64_level()) eight chains (free_owned_words()); with another BitGenerator
    through its next_double."""
    zones = tuple(zones)                        # holds the FreeArea references
    cdef Py_ssize_t nz = len(zones), i
    cdef owned_map *maps = NULL
    cdef PyObject **areas = NULL
    cdef count_t total = 0, freed = 0, got
    cdef pfn_t c, e
    cdef double p
    cdef draws src
    cdef bint nested = False
    cdef uint64_t m64 = 0xFFFFFFFFFFFFFFFF
    if chunk <= 0:
        raise ValueError(f"free_owned_passes: chunk={chunk}")
    for z in zones:
        if not isinstance(z[0], FreeArea):
            raise TypeError("free_owned_passes: zones must start with a FreeArea")
        _check_zone_bits(z[3])
        if not 0 <= z[1] <= z[2] <= mem_map.shape[0]:
            raise ValueError(f"free_owned_passes: span [{z[1]}, {z[2]}) outside mem_map")
    if excess <= 0 or nz == 0:
        return 0
    bit_generator = rng.bit_generator
    src.pcg = NULL
    src.bg = <bitgen_t *> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    try:
        maps = <owned_map *> calloc(nz, sizeof(owned_map))
        areas = <PyObject **> calloc(nz, sizeof(PyObject *))
        if maps == NULL or areas == NULL:
            raise MemoryError("free_owned_passes")
        for i in range(nz):
            areas[i] = <PyObject *> zones[i][0]
            maps[i].start, maps[i].end, maps[i].bits = zones[i][1], zones[i][2], zones[i][3]
            maps[i].words = <uint64_t *> malloc(((maps[i].end - maps[i].start + 63) >> 6)
                                                * sizeof(uint64_t) + 8)
            if maps[i].words == NULL:
                raise MemoryError("free_owned_passes: bitmap")
        with bit_generator.lock:
            if type(bit_generator) is np.random.PCG64:
                st = bit_generator.state
                src.pcg = <pc_pcg64 *> malloc(sizeof(pc_pcg64))
                if src.pcg == NULL:
                    raise MemoryError("free_owned_passes")
                s, inc = st["state"]["state"], st["state"]["inc"]
                pc_pcg64_init(src.pcg, s >> 64, s & m64, inc >> 64, inc & m64)
                pc_pcg64_use_ifma(src.pcg, _pcg_wide)
            try:
                with nogil:
                    for i in range(nz):
                        total += scan_owned(<FreeArea> areas[i], &mem_map[0], &maps[i], owner,
                                             nr_owners, &nested)
                    while excess > 0 and total > 0:
                        p = <double> excess / <double> total
                        if p > 1.0:
                            p = 1.0
                        if src.pcg != NULL:
                            pc_pcg64_set_p(src.pcg, p)
                        for i in range(nz):
                            c = maps[i].start
                            while c < maps[i].end:
                                e = c + chunk if c + chunk < maps[i].end else maps[i].end
                                if src.pcg != NULL and not nested:
                                    got = free_owned_words(<FreeArea> areas[i], &maps[i], c,
                                                           e, excess, src.pcg)
                                else:
                                    got = free_owned_chunk(<FreeArea> areas[i], &maps[i], c,
                                                           e, p, excess, &src)
                                freed += got
                                excess -= got
                                total -= got
                                if excess <= 0:
                                    break
                                c = e
                            if excess <= 0:
                                break
            finally:
                if src.pcg != NULL:     # the stream goes on after the draws made
                    st["state"]["state"] = ((<object> pc_pcg64_state_hi(src.pcg)) << 64
                                            | pc_pcg64_state_lo(src.pcg))
                    bit_generator.state = st
    finally:
        if maps != NULL:
            for i in range(nz):
                free(maps[i].words)
        free(maps)
        free(areas)
        free(src.pcg)
    return freed

