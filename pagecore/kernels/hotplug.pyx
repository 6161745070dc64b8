"""Hotplug and isolation kernels over the mem_map (Cython backend).

Each function here has a plain-numpy twin with the same signature in
pagecore/kernels/hotplug_numpy.py, and a numba twin in pagecore/kernels/hotplug_numba.py. Arguments: the machine-wide
`mem_map` (page of pfn p at index p, like the kernel's vmemmap), the pageblock flags (one
byte per pageblock), and plain integers; ranges are [start_pfn, end_pfn).
"""
from cython.parallel cimport prange
from libc.string cimport memset

from pagecore.kernels.ktypes cimport (int64_t, uint8_t, uint16_t, uint32_t, uint64_t, pfn_t, pbflags_t,
                              count_t)
from pagecore.kernels.atomic cimport pc_atomic_load, pc_atomic_min
from pagecore.kernels.page cimport (page_t, vmemmap_page_t, PG_reserved, PG_lru, PG_head, PG_tail,
                             PG_movable, PG_hwpoison, PGTY_NONE, PGTY_BUDDY, PGTY_OFFLINE,
                             PGTY_VMEMMAP, MIGRATE_MOVABLE, MIGRATE_ISOLATE, MIGRATETYPE_MASK,
                             PB_migrate_isolate, NODES_PGSHIFT, ZONES_PGSHIFT, FLAGS_MASK,
                             ENOENT, EBUSY)
from pagecore.kernels.buddy cimport FreeArea

cdef extern from "pageinit.h" nogil:
    # The page stores of mark_vmemmap_pages() and init_pages(), in C: see the header for
    # what the packed-struct assignments compiled to and why these are plain 16-byte
    # stores of a template held in a register.
    const int PC_INIT_SIMD
    const int PC_VMEMMAP_HEAD_OFFSET
    void pc_store_pages(void *dst, int64_t n, const void *tmpl)
    void pc_store_vmemmap_run(void *dst, int64_t n, const void *tmpl)
    void pc_store_pages_scalar(void *dst, int64_t n, const void *tmpl)
    void pc_store_vmemmap_run_scalar(void *dst, int64_t n, const void *tmpl)

cdef vmemmap_page_t _probe
assert <char *> &_probe.vmemmap_head - <char *> &_probe == PC_VMEMMAP_HEAD_OFFSET, \
    "_pageinit.h: vmemmap_head offset out of date"


def _page_store_twins(const uint8_t[::1] tmpl, pfn_t n):
    """The page stores of _pageinit.h (for tests): n records from the 16-byte `tmpl` by
    pc_store_pages() and pc_store_vmemmap_run(), each as built (SSE2 where the compiler
    has it) and as its scalar twin. Returns a dict of (built, scalar) bytes per store,
    and "simd"."""
    if tmpl.shape[0] != 16 or n < 0:
        raise ValueError("_page_store_twins: tmpl must be 16 bytes and n >= 0")
    out = bytearray(64 * n + 16)        # four outputs of 16 * n bytes (+16: never empty)
    cdef unsigned char[::1] o = out
    cdef unsigned char *d = &o[0]
    pc_store_pages(d, n, &tmpl[0])
    pc_store_pages_scalar(d + 16 * n, n, &tmpl[0])
    pc_store_vmemmap_run(d + 32 * n, n, &tmpl[0])
    pc_store_vmemmap_run_scalar(d + 48 * n, n, &tmpl[0])
    b = bytes(out)
    return {"pages": (b[:16 * n], b[16 * n:32 * n]),
            "vmemmap_run": (b[32 * n:48 * n], b[48 * n:64 * n]),
            "simd": bool(PC_INIT_SIMD)}


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
    if nr_pages == 0:                   # start_pfn may be len(mem_map): no page to index
        return 0
    cdef vmemmap_page_t *vm = <vmemmap_page_t *> &mem_map[start_pfn]
    cdef vmemmap_page_t tail
    memset(&tail, 0, sizeof(tail))
    tail.flags = PG_reserved
    tail.page_type = PGTY_VMEMMAP
    with nogil:
        # one 16-byte register store per page, zeroed and typed at once, tail i's
        # vmemmap_head = i (pagecore/kernels/pageinit.h: what `vm[i] = tail` compiled to)
        pc_store_vmemmap_run(vm, nr_pages, &tail)
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
    if end_pfn > start_pfn:             # one 16-byte store per page (pagecore/kernels/pageinit.h)
        pc_store_pages(&mem_map[start_pfn], end_pfn - start_pfn, &tmpl)


cdef inline void link_vmemmap_pages(page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                    uint32_t zone_bits) noexcept nogil:
    # v3: __init_single_page() keeps a PageVmemmap page's state but links it to the zone
    # and sets refcount 1 (seed patch 4/5).
    cdef pfn_t p
    for p in range(start_pfn, end_pfn):
        mem_map[p].flags = (mem_map[p].flags & FLAGS_MASK) | zone_bits
        mem_map[p].refcount = 1


cdef inline void set_block_pageblocks(pbflags_t *pbf, pfn_t s, pfn_t v, pfn_t e, int pb_order,
                                      int vmemmap_mt) noexcept nogil:
    # the pageblocks of block [s, e) holding its V vmemmap pages take `vmemmap_mt`, the
    # rest MIGRATE_MOVABLE (memmap_init_range() / mhp_init_memmap_on_memory())
    cdef pfn_t q = s >> pb_order
    while q < (s + v + (1 << pb_order) - 1) >> pb_order:
        pbf[q] = vmemmap_mt
        q = q + 1
    while q < e >> pb_order:
        pbf[q] = MIGRATE_MOVABLE
        q = q + 1


cdef inline int online_chunk_order(pfn_t p, pfn_t e, int max_order) noexcept nogil:
    # online_pages_range(): the largest order p is aligned to that fits before e, capped
    cdef int order = max_order
    while order > 0 and ((p & ((<pfn_t> 1 << order) - 1)) or p + (1 << order) > e):
        order -= 1
    return order


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
    cdef pfn_t s, v, e, p
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
        set_block_pageblocks(pbf, s, v, e, pb_order, vmemmap_mt)
    with nogil:
        for b in range(nb):
            p = start_pfns[b] + nr_vmemmap[b]
            e = start_pfns[b] + block_pages
            while p < e:
                order = online_chunk_order(p, e, max_order)
                free_area.free_one_page(p, order)
                freed += 1 << order
                p += 1 << order
    return freed


def online_image_blocks(pbflags_t[::1] pageblock_flags, FreeArea free_area,
                        pfn_t[::1] start_pfns, pfn_t[::1] nr_vmemmap, pfn_t block_pages,
                        int vmemmap_mt):
    """online_memory_blocks() of blocks whose struct pages already read as that call
    leaves them (a memmap image mapped over them, pagecore/host_memmap.py): the
    pageblock types and the free lists only, no store to a struct page.

    The caller guarantees what makes that exact: every block has V = nr_vmemmap[b] a
    multiple of the side order's pages and block_pages a multiple of the max order's,
    so each chunk online_pages_range() frees is of order >= side_order (its slot is not
    in the page) and no chunk merges with a buddy (the greedy chunks of one block are
    maximal; the vmemmap pages are not free), so __free_one_page() would list each
    chunk as it is, under MIGRATE_MOVABLE. Returns the pages listed."""
    cdef Py_ssize_t nb = start_pfns.shape[0], b
    cdef pbflags_t *pbf = &pageblock_flags[0]
    cdef int pb_order = free_area.pageblock_order, order
    cdef int max_order = free_area.nr_orders - 1
    cdef pfn_t s, v, e, p
    cdef count_t listed = 0
    if block_pages % (<pfn_t> 1 << max_order):
        raise ValueError(f"block_pages={block_pages} is not whole max-order blocks")
    for b in range(nb):
        if nr_vmemmap[b] % (<pfn_t> 1 << free_area.side_order):
            raise ValueError(f"nr_vmemmap={nr_vmemmap[b]} leaves chunks below the side order")
    with nogil:
        for b in range(nb):
            s = start_pfns[b]
            v = nr_vmemmap[b]
            e = s + block_pages
            set_block_pageblocks(pbf, s, v, e, pb_order, vmemmap_mt)
            p = s + v
            while p < e:
                order = online_chunk_order(p, e, max_order)
                free_area.add_listed(p, order, MIGRATE_MOVABLE)
                listed += 1 << order
                p += 1 << order
    return listed


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
    # 0 for a tail past its head's run (corrupt metadata): callers must not step by it.
    cdef const vmemmap_page_t *vm = <const vmemmap_page_t *> &mem_map[pfn]
    cdef const vmemmap_page_t *head
    if vm.flags & PG_head:
        return vm.vmemmap_pages
    head = vm - vm.vmemmap_head
    return head.vmemmap_pages - vm.vmemmap_head


cdef inline pfn_t folio_end(const page_t *p, pfn_t pfn) noexcept nogil:
    # First pfn after the folio holding `pfn` (folios are naturally aligned).
    return ((pfn >> p.order) + 1) << p.order


# Isolation scans: the original per-page step (hup_step(), smp_step(), tpi_step()) behind
# a 64-page block test (pagecore/kernels/scanblock.pxd); long scans go to two threads in chunks
# (scan_parallel()).
#
# Each scan walks pfn -> pfn + step. The driver (hup_range(), smp_range(), tpi_range())
# takes the aligned block of BLK pages the scan is in and asks its block test whether the
# scan, entering there, meets no offender and leaves exactly at the block's end; if so it
# moves there in one step. Otherwise the original step runs page by page to the block's
# end (or, for a free block or folio that reaches past it, one step beyond). The answer
# is the original loop's for any page contents: the block tests only say yes where every
# entry point leads to the block's end (tests/test_kernel_parity.py: whole scans against
# the numpy twins, and each SIMD test against its scalar twin on random blocks).
#
# The memory side (measured on the 64G bench zone, one thread): the scan is a stream,
# and what costs is breaking it. A jump of a few hundred pages (a folio, a free block
# larger than a block) cost ~1 us - the hardware prefetcher restarts, latency bound -
# more than reading the pages jumped over (~0.5 ns each), so while the scan is
# streaming such a stretch is prefetched (after_walk()). Fresh memory is the opposite
# case, one MAX_ORDER free block after another: there the scan reads one page per free
# block, so after a jump the page it lands on is checked first (leaves_block()) and a
# further jump taken without reading its block. That check is made only after a jump:
# made before every block it cost ~18 % of the streaming rate.
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from pagecore.kernels.scanblock cimport (PC_BLK_SIMD, pc_blk_fit, pc_blk_init, pc_blk_hup,
                                  pc_blk_hup_movable, pc_blk_smp, pc_blk_tpi,
                                  pc_blk_hup_scalar, pc_blk_hup_movable_scalar,
                                  pc_blk_smp_scalar, pc_blk_tpi_scalar, pc_blk_stream,
                                  PC_PG_RESERVED, PC_PG_LRU, PC_PG_HEAD, PC_PG_MOVABLE,
                                  PC_PG_TAIL, PC_PGTY_BUDDY, PC_PGTY_OFFLINE,
                                  PC_PGTY_VMEMMAP)

pc_blk_init()
assert (PC_PG_RESERVED, PC_PG_LRU, PC_PG_HEAD, PC_PG_MOVABLE, PC_PG_TAIL) == (
    PG_reserved, PG_lru, PG_head, PG_movable, PG_tail), "scanblock.h flags out of date"
assert (PC_PGTY_BUDDY, PC_PGTY_OFFLINE, PC_PGTY_VMEMMAP) == (
    PGTY_BUDDY, PGTY_OFFLINE, PGTY_VMEMMAP), "scanblock.h page types out of date"


cdef enum:
    SCAN_HUP = 0                    # has_unmovable_pages
    SCAN_SMP = 1                    # scan_movable_pages
    SCAN_TPI = 2                    # test_pages_isolated (page loop)
    BLK = 64                        # pages per block test (PC_BLK)
    # A stretch jumped over while streaming is prefetched up to this many pages (16 KiB
    # of struct pages, one MAX_ORDER free block; a restart costs about the read of ~2000
    # pages, so beyond that a jump wins).
    STREAM_MAX = 1024

# Scans of at least PAR_MIN_PAGES go to PAR_THREADS threads in chunks of PAR_CHUNK pfns.
cdef int PAR_THREADS = 2
cdef pfn_t PAR_MIN_PAGES = 1 << 20
cdef pfn_t PAR_CHUNK = 1 << 16


def _set_scan_threads(int num_threads):
    """Threads of has_unmovable_pages / scan_movable_pages / test_pages_isolated for
    scans of 2^20 pages or more (default 2; 1 = always serial). Returns the old value."""
    global PAR_THREADS
    old = PAR_THREADS
    PAR_THREADS = max(1, num_threads)
    return old


def _block_tests(page_t[::1] mem_map, pfn_t b, int entry):
    """The block tests of the aligned 64-page block at `b` (for tests): a dict of
    (SIMD answer, scalar answer) per scan; entry = where test_pages_isolated() enters."""
    if b < 0 or b + BLK > mem_map.shape[0] or b % BLK or not 0 <= entry < BLK:
        raise ValueError("_block_tests: b must be a 64-aligned block inside mem_map")
    cdef const page_t *p = &mem_map[b]
    return {"has_unmovable_pages": (pc_blk_hup(p), pc_blk_hup_scalar(p)),
            "has_unmovable_pages_movable": (pc_blk_hup_movable(p),
                                            pc_blk_hup_movable_scalar(p)),
            "scan_movable_pages": (pc_blk_smp(p), pc_blk_smp_scalar(p)),
            "test_pages_isolated": (pc_blk_tpi(p, entry), pc_blk_tpi_scalar(p, entry)),
            "simd": bool(PC_BLK_SIMD)}


cdef inline bint leaves_block(const page_t *mem_map, pfn_t pfn) noexcept nogil:
    # The page the scan is at heads a free block or folio that reaches past its block
    # (fresh memory: MAX_ORDER free blocks): step it at once instead of reading a block
    # that cannot pass. Asked only when the scan is not streaming (see above).
    cdef const page_t *p = &mem_map[pfn]
    return ((p.page_type == PGTY_BUDDY) | ((p.flags & PG_head) != 0)) & \
        (p.order > pc_blk_fit[pfn & (BLK - 1)])


cdef inline bint after_walk(const page_t *mem_map, pfn_t be, pfn_t pfn, pfn_t end_pfn,
                            bint streaming) noexcept nogil:
    # The per-page walk of the block ending at `be` left it at `pfn`; returns whether the
    # scan is streaming now. At `be`: it read the block, yes. Past it (a jump over a
    # folio or free block): no; if it was streaming, the stretch jumped over is
    # prefetched when short, so that the stream goes on at `pfn`.
    if pfn <= be:
        return True
    if streaming and pfn - be <= STREAM_MAX and pfn < end_pfn:
        pc_blk_stream(&mem_map[be], pfn - be)
    return False


cdef inline pfn_t hup_step(const page_t *mem_map, pfn_t pfn, bint zone_movable,
                           bint memory_offline, bint *bad) noexcept nogil:
    # One iteration of the original has_unmovable_pages() loop at `pfn`.
    cdef const page_t *p = &mem_map[pfn]
    cdef pfn_t k
    if p.page_type == PGTY_VMEMMAP:                 # v3: vmemmap runs never make it unmovable
        k = vmemmap_nr_pages(mem_map, pfn)
        if k == 0:                                  # a run that ended before it: corrupt
            bad[0] = True                           # metadata, a step that never ends;
            return pfn                              # the twins' stop
        return pfn + k
    if p.flags & PG_reserved:
        bad[0] = True
        return pfn
    if zone_movable:                                # ZONE_MOVABLE: trust the rest
        return pfn + 1
    if p.flags & (PG_head | PG_tail):               # folio: movable as a whole or not at all
        if p.flags & (PG_lru | PG_movable):
            return folio_end(p, pfn)
        bad[0] = True
        return pfn
    if p.refcount == 0:
        if p.page_type == PGTY_BUDDY:
            return pfn + (1 << p.order)
        return pfn + 1
    if memory_offline and (p.flags & PG_hwpoison or p.page_type == PGTY_OFFLINE):
        return pfn + 1
    if p.flags & (PG_lru | PG_movable):
        return pfn + 1
    bad[0] = True
    return pfn


cdef pfn_t hup_range(const page_t *mem_map, pfn_t pfn, pfn_t end_pfn, bint zone_movable,
                     bint memory_offline, pfn_t *stop) noexcept nogil:
    # has_unmovable_pages() from `pfn`: the offender or -1; *stop = where the scan left
    # [pfn, end_pfn) (>= end_pfn) when there is none. Block tests: pc_blk_hup() (the
    # rules of hup_step() for pages that are a step of one, or a free block inside the
    # block), pc_blk_hup_movable() in ZONE_MOVABLE.
    cdef bint bad = False, passes, streaming = False
    cdef pfn_t be, lim
    while pfn < end_pfn:
        be = (pfn & ~(<pfn_t> BLK - 1)) + BLK
        if be <= end_pfn and (streaming or not leaves_block(mem_map, pfn)):
            if zone_movable:
                passes = pc_blk_hup_movable(&mem_map[be - BLK])
            else:
                passes = pc_blk_hup(&mem_map[be - BLK])
            if passes:
                pfn = be
                streaming = True
                continue
        lim = be if be < end_pfn else end_pfn
        while pfn < lim:
            pfn = hup_step(mem_map, pfn, zone_movable, memory_offline, &bad)
            if bad:
                return pfn
        streaming = after_walk(mem_map, be, pfn, end_pfn, streaming)
    stop[0] = pfn
    return -1


cdef pfn_t has_unmovable_pages_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                   bint zone_movable, bint memory_offline) noexcept nogil:
    cdef pfn_t stop
    return hup_range(mem_map, start_pfn, end_pfn, zone_movable, memory_offline, &stop)


cdef inline int smp_step(const page_t *mem_map, pfn_t *pfn) noexcept nogil:
    # One iteration of the original scan_movable_pages() loop: 1 found (0), 2 -EBUSY, else
    # *pfn advanced.
    cdef const page_t *p = &mem_map[pfn[0]]
    cdef pfn_t k
    if p.page_type == PGTY_VMEMMAP:
        k = vmemmap_nr_pages(mem_map, pfn[0])
        if k == 0:                                  # a run that ended before it: -EBUSY
            return 2
        pfn[0] += k
        return 0
    if p.flags & (PG_lru | PG_movable):
        return 1
    if p.page_type == PGTY_OFFLINE and p.refcount > 0:
        return 2
    if p.page_type == PGTY_BUDDY:
        pfn[0] += 1 << p.order
    elif p.flags & (PG_head | PG_tail):
        pfn[0] = folio_end(p, pfn[0])
    else:
        pfn[0] += 1
    return 0


cdef pfn_t smp_range(const page_t *mem_map, pfn_t pfn, pfn_t end_pfn, int *rc,
                     pfn_t *stop) noexcept nogil:
    # scan_movable_pages() from `pfn`: the first hit (rc 0 or -EBUSY) or -1 (*stop set).
    # Block test: pc_blk_smp() (the rules of smp_step()).
    cdef int r
    cdef bint streaming = False
    cdef pfn_t be, lim
    while pfn < end_pfn:
        be = (pfn & ~(<pfn_t> BLK - 1)) + BLK
        if be <= end_pfn and (streaming or not leaves_block(mem_map, pfn)) and pc_blk_smp(
                &mem_map[be - BLK]):
            pfn = be
            streaming = True
            continue
        lim = be if be < end_pfn else end_pfn
        while pfn < lim:
            r = smp_step(mem_map, &pfn)
            if r:
                rc[0] = 0 if r == 1 else -EBUSY
                return pfn
        streaming = after_walk(mem_map, be, pfn, end_pfn, streaming)
    stop[0] = pfn
    return -1


cdef int scan_movable_pages_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                 pfn_t *out_pfn) noexcept nogil:
    cdef pfn_t stop, r
    cdef int rc = 0
    r = smp_range(mem_map, start_pfn, end_pfn, &rc, &stop)
    if r >= 0:
        out_pfn[0] = r
        return rc
    out_pfn[0] = end_pfn
    return -ENOENT


cdef inline bint tpi_step(const page_t *mem_map, pfn_t *pfn) noexcept nogil:
    # One iteration of __test_page_isolated_in_pageblock() (MEMORY_OFFLINE): False at an
    # offender, else *pfn advanced.
    cdef const page_t *p = &mem_map[pfn[0]]
    if p.page_type == PGTY_BUDDY:
        pfn[0] += 1 << p.order
    elif p.page_type == PGTY_VMEMMAP and vmemmap_nr_pages(mem_map, pfn[0]):
        pfn[0] += vmemmap_nr_pages(mem_map, pfn[0])  # (a run that ended before it: offender)
    elif p.flags & PG_hwpoison or (p.page_type == PGTY_OFFLINE and p.refcount == 0):
        pfn[0] += 1
    else:
        return False
    return True


cdef pfn_t tpi_range(const page_t *mem_map, pfn_t pfn, pfn_t end_pfn,
                     pfn_t *stop) noexcept nogil:
    # __test_page_isolated_in_pageblock() from `pfn`: the first offender or -1 (*stop
    # set). Block test: pc_blk_tpi(), which follows the trajectory from the entry offset
    # (interior pages of a free block are offenders if visited).
    cdef bint streaming = False
    cdef pfn_t be, lim
    while pfn < end_pfn:
        be = (pfn & ~(<pfn_t> BLK - 1)) + BLK
        if be <= end_pfn and (streaming or not leaves_block(mem_map, pfn)) and pc_blk_tpi(
                &mem_map[be - BLK], <int> (pfn & (BLK - 1))):
            pfn = be
            streaming = True
            continue
        lim = be if be < end_pfn else end_pfn
        while pfn < lim:
            if not tpi_step(mem_map, &pfn):
                return pfn
        streaming = after_walk(mem_map, be, pfn, end_pfn, streaming)
    stop[0] = pfn
    return -1


cdef pfn_t scan_range(int kind, const page_t *mem_map, pfn_t pfn, pfn_t end_pfn, bint a,
                      bint b, int *rc, pfn_t *stop) noexcept nogil:
    if kind == SCAN_HUP:
        return hup_range(mem_map, pfn, end_pfn, a, b, stop)
    if kind == SCAN_SMP:
        return smp_range(mem_map, pfn, end_pfn, rc, stop)
    return tpi_range(mem_map, pfn, end_pfn, stop)


cdef pfn_t scan_parallel(int kind, const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                         bint a, bint b, int *rc, int num_threads,
                         pfn_t chunk) noexcept nogil:
    # scan_range() over [start_pfn, end_pfn) in chunks of `chunk` pfns (boundaries at
    # multiples of `chunk`) on `num_threads` threads; the result is the serial one.
    # Each chunk is scanned from its first pfn; the serial scan is then replayed over the
    # chunk results: a chunk counts only when the previous chunk's scan left exactly at
    # its first pfn (free blocks and folios are naturally aligned, so it nearly always
    # does); otherwise that stretch is rescanned serially from where the scan really is.
    # The first offender is the first one met in this replay; chunks above an offender
    # already found are not scanned (early exit), and rescanned serially if needed.
    cdef pfn_t first = (start_pfn // chunk + 1) * chunk
    cdef Py_ssize_t nch = 1 + (end_pfn - first + chunk - 1) // chunk if first < end_pfn else 1
    cdef Py_ssize_t k
    cdef pfn_t lo, hi, r, cur, st
    cdef int64_t found = end_pfn
    cdef int64_t *foundp = &found
    cdef pfn_t *res = <pfn_t *> malloc(nch * sizeof(pfn_t))
    cdef pfn_t *stops = <pfn_t *> malloc(nch * sizeof(pfn_t))
    cdef int *rcs = <int *> malloc(nch * sizeof(int))
    cdef int rck = 0
    if res == NULL or stops == NULL or rcs == NULL:
        free(res)
        free(stops)
        free(rcs)
        return scan_range(kind, mem_map, start_pfn, end_pfn, a, b, rc, &st)
    # the first chunk serially: a scan that stops early (scan_movable_pages() in an offline
    # loop) costs no thread start-up
    r = scan_range(kind, mem_map, start_pfn, first if first < end_pfn else end_pfn, a, b,
                   &rck, &stops[0])
    if r >= 0:
        rc[0] = rck
        free(res)
        free(stops)
        free(rcs)
        return r
    res[0] = -1
    for k in prange(1, nch, num_threads=num_threads, schedule="dynamic", chunksize=1):
        lo = start_pfn if k == 0 else first + (k - 1) * chunk
        hi = first + k * chunk
        if hi > end_pfn:
            hi = end_pfn
        if pc_atomic_load(foundp) < lo:
            res[k] = -2                             # not scanned
        else:
            rck = 0
            r = scan_range(kind, mem_map, lo, hi, a, b, &rck, &stops[k])
            res[k] = r
            rcs[k] = rck
            if r >= 0:
                pc_atomic_min(foundp, r)
    cur = start_pfn
    r = -1
    for k in range(nch):
        lo = start_pfn if k == 0 else first + (k - 1) * chunk
        hi = first + k * chunk
        if hi > end_pfn:
            hi = end_pfn
        if cur >= hi:
            continue
        if cur == lo and res[k] != -2:
            if res[k] >= 0:
                r = res[k]
                rc[0] = rcs[k]
                break
            cur = stops[k]
        else:
            r = scan_range(kind, mem_map, cur, hi, a, b, rc, &st)
            if r >= 0:
                break
            cur = st
    free(res)
    free(stops)
    free(rcs)
    return r


cdef pfn_t scan_dispatch(int kind, const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                         bint a, bint b, int *rc, int num_threads, pfn_t chunk) noexcept nogil:
    cdef pfn_t st
    if num_threads > 1 and chunk > 0 and end_pfn - start_pfn > chunk:
        return scan_parallel(kind, mem_map, start_pfn, end_pfn, a, b, rc, num_threads, chunk)
    return scan_range(kind, mem_map, start_pfn, end_pfn, a, b, rc, &st)


cdef inline int auto_threads(pfn_t start_pfn, pfn_t end_pfn) noexcept nogil:
    return PAR_THREADS if end_pfn - start_pfn >= PAR_MIN_PAGES else 1


def has_unmovable_pages(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn,
                        bint zone_movable, bint memory_offline):
    """has_unmovable_pages() (mm/page_isolation.c, v6.x; seed v3 vmemmap skip).

    Returns the first pfn in [start_pfn, end_pfn) that is definitely unmovable, or -1.
    Order of the tests is the kernel's: PageReserved is unmovable even in ZONE_MOVABLE;
    in ZONE_MOVABLE everything else is trusted; folios go whole; free pages skip their
    order; with MEMORY_OFFLINE, HWPoison and PageOffline pages are tolerated.
    Scans of 2^20 pages or more run on _set_scan_threads() threads (default 2).
    """
    cdef pfn_t r
    cdef int rc = 0
    if end_pfn <= start_pfn:
        return -1
    with nogil:
        r = scan_dispatch(SCAN_HUP, &mem_map[0], start_pfn, end_pfn, zone_movable,
                          memory_offline, &rc, auto_threads(start_pfn, end_pfn), PAR_CHUNK)
    return r


def _has_unmovable_pages_mt(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn,
                           bint zone_movable, bint memory_offline, int num_threads,
                           pfn_t chunk_pages):
    """has_unmovable_pages() on `num_threads` threads in chunks of `chunk_pages` pfns
    (same result as the serial scan; for tests and benchmarks)."""
    cdef pfn_t r
    cdef int rc = 0
    if end_pfn <= start_pfn:
        return -1
    with nogil:
        r = scan_dispatch(SCAN_HUP, &mem_map[0], start_pfn, end_pfn, zone_movable,
                          memory_offline, &rc, num_threads, chunk_pages)
    return r


def scan_movable_pages(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn):
    """scan_movable_pages() (mm/memory_hotplug.c).

    Returns (0, pfn) for the first LRU or non-LRU-movable page, (-EBUSY, pfn) for a
    PageOffline page still referenced, (-ENOENT, end_pfn) when none is left. Reserved,
    slab and other kernel pages are skipped silently: they stop offlining later, in
    test_pages_isolated(). Scans of 2^20 pages or more run on _set_scan_threads() threads.
    """
    return _scan_movable_pages_mt(mem_map, start_pfn, end_pfn,
                                 auto_threads(start_pfn, end_pfn), PAR_CHUNK)


def _scan_movable_pages_mt(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn,
                          int num_threads, pfn_t chunk_pages):
    """scan_movable_pages() on `num_threads` threads in chunks of `chunk_pages` pfns."""
    cdef pfn_t r = -1
    cdef int rc = 0
    if end_pfn > start_pfn:
        with nogil:
            r = scan_dispatch(SCAN_SMP, &mem_map[0], start_pfn, end_pfn, False, False, &rc,
                              num_threads, chunk_pages)
    if r >= 0:
        return rc, r
    return -ENOENT, end_pfn


cdef int test_pages_isolated_impl(const page_t *mem_map, const pbflags_t *pageblock_flags,
                                  pfn_t start_pfn, pfn_t end_pfn, int pageblock_order,
                                  pfn_t *out_pfn) noexcept nogil:
    return tpi_dispatch(mem_map, pageblock_flags, start_pfn, end_pfn, pageblock_order,
                        out_pfn, 1, 0)


cdef int tpi_dispatch(const page_t *mem_map, const pbflags_t *pageblock_flags,
                      pfn_t start_pfn, pfn_t end_pfn, int pageblock_order,
                      pfn_t *out_pfn, int num_threads, pfn_t chunk) noexcept nogil:
    cdef pfn_t pfn = start_pfn, r
    cdef int rc = 0
    while pfn < end_pfn:                            # every pageblock must be isolated
        if not pageblock_flags[pfn >> pageblock_order] & PB_migrate_isolate:
            out_pfn[0] = pfn
            return -EBUSY
        pfn = ((pfn >> pageblock_order) + 1) << pageblock_order
    if end_pfn > start_pfn:                         # __test_page_isolated_in_pageblock()
        r = scan_dispatch(SCAN_TPI, mem_map, start_pfn, end_pfn, False, False, &rc,
                          num_threads, chunk)
        if r >= 0:
            out_pfn[0] = r
            return -EBUSY
    out_pfn[0] = end_pfn
    return 0


def test_pages_isolated(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags, pfn_t start_pfn,
                        pfn_t end_pfn, int pageblock_order):
    """test_pages_isolated(..., MEMORY_OFFLINE) (mm/page_isolation.c).

    Returns (0, end_pfn) when every pageblock is isolated and every page is free (buddy),
    HWPoison, an unreferenced PageOffline page or (v3) a vmemmap page; else (-EBUSY, pfn)
    at the first offender. Page scans of 2^20 pages or more run on _set_scan_threads()
    threads.
    """
    return _test_pages_isolated_mt(mem_map, pageblock_flags, start_pfn, end_pfn,
                                  pageblock_order, auto_threads(start_pfn, end_pfn),
                                  PAR_CHUNK)


def _test_pages_isolated_mt(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                           pfn_t start_pfn, pfn_t end_pfn, int pageblock_order,
                           int num_threads, pfn_t chunk_pages):
    """test_pages_isolated() on `num_threads` threads in chunks of `chunk_pages` pfns."""
    cdef pfn_t out = -1
    cdef int rc
    with nogil:
        rc = tpi_dispatch(&mem_map[0], &pageblock_flags[0], start_pfn, end_pfn,
                          pageblock_order, &out, num_threads, chunk_pages)
    return rc, out
