"""Hotplug and isolation kernels over the mem_map (Cython backend).

Each function here has a plain-numpy twin with the same signature in
pagecore/reference.py, and a numba twin in pagecore/_numba.py. Arguments: the machine-wide
`mem_map` (page of pfn p at index p, like the kernel's vmemmap), the pageblock flags (one
byte per pageblock), and plain integers; ranges are [start_pfn, end_pfn).
"""
from cython.parallel cimport prange
from libc.string cimport memset

from pagecore._types cimport uint8_t, uint16_t, uint32_t, uint64_t, pfn_t, pbflags_t, count_t
from pagecore._page cimport (page_t, vmemmap_page_t, PG_reserved, PG_lru, PG_head, PG_tail,
                             PG_movable, PG_hwpoison, PGTY_NONE, PGTY_BUDDY, PGTY_OFFLINE,
                             PGTY_VMEMMAP, MIGRATE_MOVABLE, MIGRATE_ISOLATE, MIGRATETYPE_MASK,
                             PB_migrate_isolate, NODES_PGSHIFT, ZONES_PGSHIFT, FLAGS_MASK,
                             ENOENT, EBUSY)
from pagecore._buddy cimport FreeArea


# ---------------------------------------------------------------------------------------
# memmap initialisation and onlining
# ---------------------------------------------------------------------------------------
def mark_vmemmap_pages(page_t[::1] mem_map, pfn_t start_pfn, pfn_t nr_pages,
                       uint32_t nr_sections):
    """mhp_mark_vmemmap_pages() (seed v3 patch 4/5, mm/sparse.c).

    Zero the `nr_pages` struct pages at `start_pfn` and make them one Vmemmap run: page
    type PGTY_VMEMMAP and PG_reserved on every page; the head (PG_head) records the
    sections the range spans and the pages in the run; every tail records its distance
    back to the head. Returns the pages marked.
    """
    cdef pfn_t i
    if nr_pages == 0:                   # start_pfn may be len(mem_map): no page to index
        return 0
    cdef vmemmap_page_t *vm = <vmemmap_page_t *> &mem_map[start_pfn]
    cdef vmemmap_page_t tail
    memset(&tail, 0, sizeof(tail))
    tail.flags = PG_reserved
    tail.page_type = PGTY_VMEMMAP
    with nogil:
        for i in range(nr_pages):           # one 16-byte store per page: zeroed, then typed
            tail.vmemmap_head = <uint32_t> i
            vm[i] = tail
        if nr_pages:
            vm[0].flags = PG_reserved | PG_head
            vm[0].vmemmap_head = nr_sections
            vm[0].vmemmap_pages = <uint32_t> nr_pages
    return nr_pages


cdef inline void init_pages(page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn, uint32_t flags,
                            uint8_t page_type, uint16_t refcount) noexcept nogil:
    # __init_single_page() for a run: zone/node links in flags, refcount, no private.
    cdef page_t tmpl
    tmpl.flags = flags
    tmpl.page_type = page_type
    tmpl.order = 0
    tmpl.refcount = refcount
    tmpl.private = 0
    cdef pfn_t p
    for p in range(start_pfn, end_pfn):
        mem_map[p] = tmpl


cdef inline void link_vmemmap_pages(page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                    uint32_t zone_bits) noexcept nogil:
    # v3: __init_single_page() keeps a PageVmemmap page's state but links it to the zone
    # and sets refcount 1 (seed patch 4/5).
    cdef pfn_t p
    for p in range(start_pfn, end_pfn):
        mem_map[p].flags = (mem_map[p].flags & FLAGS_MASK) | zone_bits
        mem_map[p].refcount = 1


def online_memory_blocks(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                         FreeArea free_area, pfn_t[::1] start_pfns, pfn_t[::1] nr_vmemmap,
                         pfn_t block_pages, uint32_t nid, uint32_t zone,
                         uint32_t vmemmap_flags, int vmemmap_mt, bint keep_vmemmap_type,
                         int num_threads):
    """memory_block_online() for a batch of blocks of one zone (drivers/base/memory.c).

    Per block [s, s + block_pages) whose first V = nr_vmemmap[b] pages host its memmap:
      * mhp_init_memmap_on_memory(): [s, s+V) joins the zone with `vmemmap_flags`,
        refcount 1, pageblocks `vmemmap_mt` (UNMOVABLE v5.13+; v3: MOVABLE, and with
        `keep_vmemmap_type` the Vmemmap run keeps its type and metadata);
      * online_pages(): move_pfn_range_to_zone() + online_pages_range() +
        undo_isolate_page_range(): [s+V, e) ends up free in the buddy, in the largest
        aligned chunks (__free_pages_core), pageblocks MIGRATE_MOVABLE.
    The isolate/undo pair of online_pages() leaves no trace once onlining succeeds, and
    the caller has validated everything that could fail, so pageblocks are written
    MOVABLE at once. Page init runs in parallel over blocks (it is also the first touch
    of a fresh mem_map, so the host's page zeroing runs on every thread); the buddy is
    serial.
    Returns the pages freed to the buddy (managed_pages delta).
    """
    cdef Py_ssize_t nb = start_pfns.shape[0], b
    cdef page_t *mm = &mem_map[0]
    cdef pbflags_t *pbf = &pageblock_flags[0]
    cdef int pb_order = free_area.pageblock_order, order
    cdef int max_order = free_area.nr_orders - 1
    cdef uint32_t zone_bits = (nid << NODES_PGSHIFT) | (zone << ZONES_PGSHIFT)
    cdef pfn_t s, v, e, p, q
    cdef count_t freed = 0
    # dynamic chunks of 8 blocks (4 MiB of struct pages): on a shared host a thread that
    # loses its core does not hold back half the batch, as it would with a static split
    for b in prange(nb, nogil=True, num_threads=num_threads, schedule="dynamic", chunksize=8):
        s = start_pfns[b]
        v = nr_vmemmap[b]
        e = s + block_pages
        if keep_vmemmap_type:
            link_vmemmap_pages(mm, s, s + v, zone_bits)
        else:
            init_pages(mm, s, s + v, vmemmap_flags | zone_bits, PGTY_NONE, 1)
        init_pages(mm, s + v, e, zone_bits, PGTY_NONE, 0)
        q = s >> pb_order
        while q < (s + v + (1 << pb_order) - 1) >> pb_order:
            pbf[q] = vmemmap_mt
            q = q + 1
        while q < e >> pb_order:
            pbf[q] = MIGRATE_MOVABLE
            q = q + 1
    with nogil:
        for b in range(nb):
            p = start_pfns[b] + nr_vmemmap[b]
            e = start_pfns[b] + block_pages
            while p < e:
                # online_pages_range(): largest order the pfn is aligned to, capped.
                order = max_order
                while order > 0 and ((p & ((<pfn_t> 1 << order) - 1)) or p + (1 << order) > e):
                    order -= 1
                free_area.free_one_page(p, order)
                freed += 1 << order
                p += 1 << order
    return freed


def offline_isolated_pages(page_t[::1] mem_map, FreeArea free_area, pfn_t start_pfn,
                           pfn_t end_pfn):
    """__offline_isolated_pages() (mm/page_alloc.c): take every free block in the range
    off the ISOLATE lists. HWPoison and PageOffline pages are skipped; only PageOffline
    pages count as already offline (HWPoison pages are still managed: the kernel returns
    "the number of managed (non-PageOffline()) pages in the range").
    Returns (pages taken off, already_offline)."""
    cdef pfn_t p = start_pfn
    cdef count_t taken = 0, already = 0
    cdef page_t *page
    with nogil:
        while p < end_pfn:
            page = &mem_map[p]
            if page.page_type == PGTY_BUDDY:
                taken += 1 << page.order
                p += 1 << page.order
                free_area.remove(p - (1 << page.order))
                continue
            if page.page_type == PGTY_OFFLINE:
                already += 1
            p += 1
    return taken, already


# ---------------------------------------------------------------------------------------
# isolation scanners (mm/page_isolation.c, mm/memory_hotplug.c)
# ---------------------------------------------------------------------------------------
cdef pfn_t vmemmap_nr_pages(const page_t *mem_map, pfn_t pfn) noexcept nogil:
    cdef const vmemmap_page_t *vm = <const vmemmap_page_t *> &mem_map[pfn]
    cdef const vmemmap_page_t *head
    if vm.flags & PG_head:
        return vm.vmemmap_pages
    head = vm - vm.vmemmap_head
    return head.vmemmap_pages - vm.vmemmap_head


cdef inline pfn_t folio_end(const page_t *p, pfn_t pfn) noexcept nogil:
    # First pfn after the folio holding `pfn` (folios are naturally aligned).
    return ((pfn >> p.order) + 1) << p.order


cdef pfn_t has_unmovable_pages_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                   bint zone_movable, bint memory_offline) noexcept nogil:
    cdef pfn_t pfn = start_pfn
    cdef const page_t *p
    while pfn < end_pfn:
        p = &mem_map[pfn]
        if p.page_type == PGTY_VMEMMAP:             # v3: vmemmap runs never make it unmovable
            pfn += vmemmap_nr_pages(mem_map, pfn)
            continue
        if p.flags & PG_reserved:
            return pfn
        if zone_movable:                            # ZONE_MOVABLE: trust the rest
            pfn += 1
            continue
        if p.flags & (PG_head | PG_tail):           # folio: movable as a whole or not at all
            if p.flags & (PG_lru | PG_movable):
                pfn = folio_end(p, pfn)
                continue
            return pfn
        if p.refcount == 0:
            if p.page_type == PGTY_BUDDY:
                pfn += 1 << p.order
            else:
                pfn += 1
            continue
        if memory_offline and (p.flags & PG_hwpoison or p.page_type == PGTY_OFFLINE):
            pfn += 1
            continue
        if p.flags & (PG_lru | PG_movable):
            pfn += 1
            continue
        return pfn
    return -1


def has_unmovable_pages(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn,
                        bint zone_movable, bint memory_offline):
    """has_unmovable_pages() (mm/page_isolation.c, v6.x; seed v3 vmemmap skip).

    Returns the first pfn in [start_pfn, end_pfn) that is definitely unmovable, or -1.
    Order of the tests is the kernel's: PageReserved is unmovable even in ZONE_MOVABLE;
    in ZONE_MOVABLE everything else is trusted; folios go whole; free pages skip their
    order; with MEMORY_OFFLINE, HWPoison and PageOffline pages are tolerated.
    """
    cdef pfn_t r
    with nogil:
        r = has_unmovable_pages_impl(&mem_map[0], start_pfn, end_pfn, zone_movable,
                                     memory_offline)
    return r


cdef int scan_movable_pages_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                 pfn_t *out_pfn) noexcept nogil:
    cdef pfn_t pfn = start_pfn
    cdef const page_t *p
    while pfn < end_pfn:
        p = &mem_map[pfn]
        if p.page_type == PGTY_VMEMMAP:
            pfn += vmemmap_nr_pages(mem_map, pfn)
            continue
        if p.flags & (PG_lru | PG_movable):
            out_pfn[0] = pfn
            return 0
        if p.page_type == PGTY_OFFLINE and p.refcount > 0:
            out_pfn[0] = pfn
            return -EBUSY
        if p.page_type == PGTY_BUDDY:
            pfn += 1 << p.order
        elif p.flags & (PG_head | PG_tail):
            pfn = folio_end(p, pfn)
        else:
            pfn += 1
    out_pfn[0] = end_pfn
    return -ENOENT


def scan_movable_pages(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn):
    """scan_movable_pages() (mm/memory_hotplug.c).

    Returns (0, pfn) for the first LRU or non-LRU-movable page, (-EBUSY, pfn) for a
    PageOffline page still referenced, (-ENOENT, end_pfn) when none is left. Reserved,
    slab and other kernel pages are skipped silently: they stop offlining later, in
    test_pages_isolated().
    """
    cdef pfn_t out = -1
    cdef int rc
    with nogil:
        rc = scan_movable_pages_impl(&mem_map[0], start_pfn, end_pfn, &out)
    return rc, out


cdef int test_pages_isolated_impl(const page_t *mem_map, const pbflags_t *pageblock_flags,
                                  pfn_t start_pfn, pfn_t end_pfn, int pageblock_order,
                                  pfn_t *out_pfn) noexcept nogil:
    cdef pfn_t pfn = start_pfn
    cdef const page_t *p
    while pfn < end_pfn:                            # every pageblock must be isolated
        if not pageblock_flags[pfn >> pageblock_order] & PB_migrate_isolate:
            out_pfn[0] = pfn
            return -EBUSY
        pfn = ((pfn >> pageblock_order) + 1) << pageblock_order
    pfn = start_pfn
    while pfn < end_pfn:                            # __test_page_isolated_in_pageblock()
        p = &mem_map[pfn]
        if p.page_type == PGTY_BUDDY:
            pfn += 1 << p.order
        elif p.page_type == PGTY_VMEMMAP:
            pfn += vmemmap_nr_pages(mem_map, pfn)
        elif p.flags & PG_hwpoison or (p.page_type == PGTY_OFFLINE and p.refcount == 0):
            pfn += 1
        else:
            out_pfn[0] = pfn
            return -EBUSY
    out_pfn[0] = end_pfn
    return 0


def test_pages_isolated(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags, pfn_t start_pfn,
                        pfn_t end_pfn, int pageblock_order):
    """test_pages_isolated(..., MEMORY_OFFLINE) (mm/page_isolation.c).

    Returns (0, end_pfn) when every pageblock is isolated and every page is free (buddy),
    HWPoison, an unreferenced PageOffline page or (v3) a vmemmap page; else (-EBUSY, pfn)
    at the first offender.
    """
    cdef pfn_t out = -1
    cdef int rc
    with nogil:
        rc = test_pages_isolated_impl(&mem_map[0], &pageblock_flags[0], start_pfn, end_pfn,
                                      pageblock_order, &out)
    return rc, out
