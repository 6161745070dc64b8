"""Compaction and contiguous-allocation scanners over the mem_map (Cython backend).

Each `def` here has a plain-numpy twin with the same signature in
pagecore/kernels/compaction_numpy.py and a numba twin in pagecore/kernels/compaction_numba.py;
pagecore.compaction.get_compaction_backend() picks one. Arguments: the machine-wide
`mem_map` (page of pfn p at index p), the pageblock flags (one byte per pageblock), plain
integers and 1-D output arrays (int64 pfns, but isolate_migratepages_range()'s uint32
offsets from its start_pfn; uint8 orders: a buddy order fits a byte, as in
`page_t.order`); ranges are [start_pfn, end_pfn).

The scanners report, the caller acts: isolate_freepages_block() lists free blocks and
the caller takes them off the free lists; isolate_migratepages_block() lists folio heads
(and marks them PG_isolated) and the caller migrates them. compact_zone_run() is such a
caller, the whole compact_zone() loop in C over the zone's FreeArea; its twins run the
same loop in Python (reference_compaction.run_compact_zone).

Kernel versions modelled: v6.9+ mm/compaction.c (large folios below the target order
and below pageblock order are migrated whole: skip_isolation_on_order(); a pageblock
headed by a free block of the target order or more is no migration target:
suitable_migration_target(), target_free_order() in compaction.pxd), and v6.1's where
they differ, as compact_zone_run(large_folios=False) and isolate_migratepages_block(
v6_1=True), isolate_freepages_block(v6_1=True): every compound page passed, one list of
order-0 free pages (split_map_pages()), and nr_scanned counting only the pages the
kernel's loop visits (v6.12 also counts those it jumps over); plus the seed v3 vmemmap
skip in isolate_migratepages_block() (patch 4/5).
"""
from pagecore.kernels.ktypes cimport uint8_t, uint32_t, uint64_t, pfn_t, pbflags_t, count_t
from pagecore.kernels.atomic cimport pc_atomic_load, pc_atomic_min
from pagecore.kernels.page cimport (page_t, PG_reserved, PG_lru, PG_head, PG_tail, PG_movable,
                             PG_isolated, PGTY_NONE, PGTY_BUDDY, PGTY_VMEMMAP,
                             PB_migrate_skip, FLAGS_MASK)
from pagecore.kernels.page cimport MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE
from pagecore.kernels.hotplug cimport vmemmap_nr_pages
from pagecore.kernels.buddy cimport FreeArea, MAX_ORDERS
from cython.parallel cimport prange
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset
from pagecore.kernels.scanblock cimport (pc_blk_init, pc_blk_align, PC_PG_ISOLATED, pc_cview_t,
                                  pc_cblk_max_level, pc_cblk_select, pc_cblk_level,
                                  pc_cview_at, pc_view_isolatable, pc_popcount64,
                                  pc_mig_run, pc_mig_run32, pc_free_block)
import os
from pagecore.kernels.compaction_numpy import check_range_out

pc_blk_init()           # this module's copy of the block tables (static in the header)
assert PC_PG_ISOLATED == PG_isolated, "scanblock.h flags out of date"


cdef inline pfn_t folio_end(const page_t *p, pfn_t pfn) noexcept nogil:
    # First pfn after the folio holding `pfn` (folios are naturally aligned).
    return ((pfn >> p.order) + 1) << p.order


cdef extern from *:
    """
    static inline int pcc_ctz64(uint64_t x) { return __builtin_ctzll(x); }
    """
    int ctz64 "pcc_ctz64"(uint64_t x) noexcept nogil

cdef enum:
    FBLK = 64                         # pages per block of the scanners' block paths


# The scanners decide whole 64-page blocks from a view of bitmaps (pc_cview_at() in
# scanblock.h), built by scalar code, SSE2 or AVX-512: the best this CPU runs, unless
# PAGECORE_SIMD (scalar, sse2, avx512) asks for less.
SIMD_LEVELS = ("scalar", "sse2", "avx512")


def _simd_level(name=None):
    """The block view's build in use (one of SIMD_LEVELS); with `name`, switch to it
    first (clamped to what this CPU and build run) - for tests and benchmarks."""
    if name is not None:
        if name not in SIMD_LEVELS:
            raise ValueError(f"unknown SIMD level {name!r}: choose from {SIMD_LEVELS}")
        pc_cblk_select(SIMD_LEVELS.index(name))
    return SIMD_LEVELS[pc_cblk_level]


def _simd_levels():
    """The builds of the block view this CPU and build can run."""
    return SIMD_LEVELS[:pc_cblk_max_level() + 1]


_simd_level(os.environ.get("PAGECORE_SIMD", "avx512"))


def _block_view(page_t[::1] mem_map, pfn_t b, uint32_t skip_order, level):
    """The scanners' bitmaps of the aligned 64-page block at `b` as build `level` (one
    of _simd_levels()) computes them: a dict of the view's fields (for tests)."""
    if b < 0 or b + FBLK > mem_map.shape[0] or b % FBLK:
        raise ValueError("_block_view: b must be a 64-aligned block inside mem_map")
    if level not in _simd_levels():
        raise ValueError(f"_block_view: level {level!r} not in {_simd_levels()}")
    cdef pc_cview_t v
    pc_cview_at(SIMD_LEVELS.index(level), &mem_map[b], skip_order, &v)
    out = <dict> v          # the struct's fields by name
    out["od"] = bytes(v.od[:FBLK])
    return out


cdef inline count_t isolate_bits(page_t *mem_map, pfn_t b, uint64_t msk, isolated_t *out,
                                 pfn_t base, count_t n, count_t capacity,
                                 pfn_t *last) noexcept nogil:
    # Isolate the pages of the bits of `msk` (block at b) in pfn order, until the batch
    # holds `capacity`: PG_isolated, recorded at out[n...] as pfn - base. Returns the
    # new n; *last = the last page isolated.
    cdef pfn_t h
    while msk:
        h = b + ctz64(msk)
        msk &= msk - 1
        mem_map[h].flags = mem_map[h].flags | PG_isolated
        out[n] = <isolated_t> (h - base)
        n += 1
        last[0] = h
        if n >= capacity:
            break
    return n


cdef inline pfn_t jump_next(const page_t *p, pfn_t pfn, bint isolatable, bint alloc_contig,
                            uint32_t skip_order) noexcept nogil:
    # Where the block path's walk goes from the jump page at `pfn` (a free block or a
    # compound page of order >= 1), by the kernel's rules: past the free block; past the
    # folio of a tail, of an isolatable head (which the caller isolates; isolatable
    # implies neither free nor a tail) or of a head skip_isolation_on_order() skips;
    # else the page fails alone (nr = 1).
    if p.page_type == PGTY_BUDDY:
        return pfn + (<pfn_t> 1 << p.order)
    if p.flags & PG_tail or isolatable or (not alloc_contig and p.order >= skip_order):
        return folio_end(p, pfn)
    return pfn + 1


cdef inline pfn_t jumped_uncounted(const page_t *p, pfn_t nr, bint isolatable) noexcept nogil:
    # Of the `nr` pages jump_next() passed from the jump page `p`, those v6.1's loop
    # jumps over without counting: a free block's, or a passed folio's from its head;
    # a tail's walk (page by page in v6.1) and an isolated folio are counted whole.
    if p.page_type == PGTY_BUDDY or (p.flags & PG_head and not isolatable):
        return nr - 1
    return 0


cdef pfn_t isolate_migratepages_block_impl(
        page_t *mem_map, pbflags_t *pageblock_flags, pfn_t low_pfn, pfn_t end_pfn,
        int pageblock_order, bint ignore_skip_hint, isolated_t *out, pfn_t base,
        count_t capacity, int cc_order, bint alloc_contig, bint skip_on_failure, bint v6_1,
        count_t *nr_isolated, count_t *nr_scanned) noexcept nogil:
    # `v6_1`: v6.1's rules. Every compound page is passed unless alloc_contig
    # ("PageCompound(page) && !cc->alloc_contig"), in place of skip_isolation_on_order(),
    # and nr_scanned counts the pages the loop visits: a free block's or a passed
    # folio's other pages are jumped uncounted (v6.12 adds them: "nr_scanned +=
    # (1UL << order) - 1"). The block decision (pc_mig_run()) does not tell those
    # apart, so v6.1 takes the walk from jump page to jump page, which does.
    #
    # Control flow is the kernel's: `low_pfn` is the last pfn an iteration dealt with and
    # the loop increment moves past it; `valid` plays valid_page (the pageblock's first
    # pfn, once its skip bit was checked); alloc_contig implies no_set_skip_hint.
    # Isolated heads go to out[] as pfn - base.
    #
    # Block path: once the pageblock's skip bit is settled (skip_updated, or the scan
    # did not start at the pageblock: valid < 0), and without skip_on_failure, aligned
    # blocks of FBLK pages are done from their view (pc_cview_at()): pc_mig_decide()
    # gives the pages the walk isolates, with bit operations, when the block's free
    # blocks and folios are aligned inside it; they are isolated at once and the scan
    # leaves at the block's end, nr_scanned grown by the pages passed; pc_mig_run()
    # does so block after block. Otherwise, or when they would fill the batch, the walk
    # is followed from jump page to jump page (free blocks, compound pages), each given
    # the kernel's rule (pass the free block, pass the folio, isolate the head, or fail
    # alone); the scan leaves where that walk leaves the block (its end, or beyond it
    # after a jump), or just past the folio that filled the batch. A block holding
    # vmemmap pages is walked page by page with the kernel's loop, to its end.
    cdef count_t n = 0, scanned = 0, nr, i
    cdef pfn_t unc                          # v6.1: pages of a block's walk jumped uncounted
    cdef pfn_t valid = -1, next_skip = 0, slow_until = -1, b, h, q, stop, nblk, k
    cdef pfn_t pb_mask = (<pfn_t> 1 << pageblock_order) - 1
    cdef bint skip_updated = False, aborted = False, failed, full = False, silent
    cdef bint fast_ok = not skip_on_failure and pageblock_order >= 6
    cdef uint32_t skip_order = 256          # none: alloc_contig skips no order
    cdef uint64_t msk, iso, jumps, take
    cdef int cnt
    cdef pc_cview_t v
    cdef page_t *p
    if cc_order < 0:
        skip_on_failure = False
    if not alloc_contig:
        skip_order = pageblock_order if cc_order < 0 or cc_order > pageblock_order else cc_order
        if v6_1:
            skip_order = 1                  # every head: a compound page has order >= 1
    if skip_on_failure:
        next_skip = block_end_pfn(low_pfn, cc_order)
    while low_pfn < end_pfn:
        if (fast_ok and low_pfn >= slow_until and (skip_updated or valid < 0)
                and not (valid < 0 and (low_pfn & pb_mask) == 0)):
            b = low_pfn & ~(<pfn_t> FBLK - 1)
            if b + FBLK <= end_pfn:
                if v6_1:
                    pc_cview_at(pc_cblk_level, &mem_map[b], skip_order, &v)
                    cnt = -1
                else:
                    # the blocks up to end_pfn (before a valid page, up to the
                    # pageblock's end: the next pageblock starts with its check), as
                    # far as each is decided and fits
                    q = end_pfn
                    if valid < 0 and ((b >> pageblock_order) + 1) << pageblock_order < q:
                        q = ((b >> pageblock_order) + 1) << pageblock_order
                    nblk = (q - b) // FBLK
                    if isolated_t is uint32_t:
                        k = pc_mig_run32(&mem_map[b], b, base, nblk, <int> (low_pfn - b),
                                         skip_order, capacity - n, &out[n], &nr, &cnt,
                                         &take, &v)
                    else:
                        k = pc_mig_run(&mem_map[b], b, nblk, <int> (low_pfn - b),
                                       skip_order, capacity - n, &out[n], &nr, &cnt,
                                       &take, &v)
                    n += nr
                    if k:
                        scanned += b + FBLK * k - low_pfn
                        low_pfn = b + FBLK * k
                        b = low_pfn
                    if k == nblk:
                        continue
                if not v.vmm:
                    iso = pc_view_isolatable(&v)
                    jumps = (v.buddy | v.head | v.tail) & v.nz
                    # the walk's trajectory first, its isolations gathered in one bitmap
                    # (one count-trailing-zeros loop per block instead of one per stretch
                    # between jumps); if they would fill the batch, the walk below stops
                    # where the kernel's does
                    q = low_pfn
                    take = 0
                    unc = 0
                    while q < b + FBLK:
                        msk = (jumps >> (q - b)) << (q - b)
                        if not msk:
                            take |= iso & ((~(<uint64_t> 0)) << (q - b))
                            q = b + FBLK
                            break
                        stop = b + ctz64(msk)
                        take |= (iso & ((~(<uint64_t> 0)) << (q - b))
                                 & (((<uint64_t> 1) << (stop - b)) - 1))
                        take |= iso & ((<uint64_t> 1) << (stop - b))
                        q = jump_next(&mem_map[stop], stop, (iso >> (stop - b)) & 1,
                                      alloc_contig, skip_order)
                        if v6_1:
                            unc += jumped_uncounted(&mem_map[stop], q - stop,
                                                    (iso >> (stop - b)) & 1)
                    if pc_popcount64(take) < capacity - n:
                        n = isolate_bits(mem_map, b, take, out, base, n, capacity, &h)
                        scanned += q - low_pfn - unc
                        low_pfn = q
                        continue
                    # the walk that fills the batch
                    q = low_pfn
                    unc = 0
                    while q < b + FBLK:
                        # pages [q, stop) are visited one by one: isolate their bits
                        msk = (jumps >> (q - b)) << (q - b)
                        stop = b + ctz64(msk) if msk else b + FBLK
                        msk = iso & ((~(<uint64_t> 0)) << (q - b))
                        if stop < b + FBLK:
                            msk &= ((<uint64_t> 1) << (stop - b)) - 1
                        n = isolate_bits(mem_map, b, msk, out, base, n, capacity, &h)
                        if n >= capacity:
                            q = h + 1
                            full = True
                        if full or stop == b + FBLK:
                            q = q if full else stop
                            break
                        p = &mem_map[stop]
                        q = jump_next(p, stop, (iso >> (stop - b)) & 1, alloc_contig,
                                      skip_order)
                        if v6_1:
                            unc += jumped_uncounted(p, q - stop, (iso >> (stop - b)) & 1)
                        if (iso >> (stop - b)) & 1:             # an isolatable head
                            p.flags = p.flags | PG_isolated
                            out[n] = <isolated_t> (stop - base)
                            n += 1
                            if n >= capacity:
                                full = True
                                break
                    scanned += q - low_pfn - unc
                    low_pfn = q
                    if full:
                        break
                    continue
            slow_until = b + FBLK
        if skip_on_failure and low_pfn >= next_skip:
            if n:                       # the previous order-aligned chunk is all isolated
                break
            next_skip = block_end_pfn(low_pfn, cc_order)
        scanned += 1
        p = &mem_map[low_pfn]
        if p.page_type == PGTY_VMEMMAP:             # seed v3: pass the run, silently
            nr = vmemmap_nr_pages(mem_map, low_pfn)
            low_pfn += nr if nr > 0 else 1          # a run that ended before it: pass one
            continue
        if valid < 0 and (low_pfn & pb_mask) == 0:  # isolation_suitable()
            if not ignore_skip_hint and pageblock_flags[low_pfn >> pageblock_order] & PB_migrate_skip:
                low_pfn = end_pfn
                aborted = True
                break
            valid = low_pfn
        if p.page_type == PGTY_BUDDY:               # free: skip the whole block
            if not v6_1:                            # v6.1 jumps it uncounted
                scanned += (1 << p.order) - 1
            low_pfn += 1 << p.order
            continue
        failed = True
        silent = False
        nr = 1
        if p.flags & PG_tail:                       # folio_get_nontail_page() fails
            nr = folio_end(p, low_pfn) - low_pfn
        elif (p.flags & PG_head and not alloc_contig
              and (v6_1
                   or skip_isolation_on_order(p.order, cc_order, pageblock_order))):
            nr = folio_end(p, low_pfn) - low_pfn
            silent = v6_1                           # v6.1 passes it uncounted
        elif p.flags & PG_isolated:                 # already off its LRU / isolated
            pass
        elif p.flags & PG_lru:
            if valid >= 0 and not skip_updated:     # test_and_set_skip()
                skip_updated = True
                if not ignore_skip_hint:
                    if pageblock_flags[valid >> pageblock_order] & PB_migrate_skip:
                        low_pfn = end_pfn
                        aborted = True
                        break
                    if not alloc_contig:
                        pageblock_flags[valid >> pageblock_order] |= PB_migrate_skip
            failed = False
        elif p.flags & PG_movable:                  # isolate_movable_page()
            failed = False
        # else: reserved, slab, page tables, kernel memory, v5.13+ vmemmap: isolate_fail
        if not failed:
            nr = folio_end(p, low_pfn) - low_pfn if p.flags & PG_head else 1
            out[n] = <isolated_t> (low_pfn - base)
            n += 1
            p.flags = p.flags | PG_isolated
            scanned += nr - 1
            low_pfn += nr
            if n >= capacity:                       # the batch is full
                break
            continue
        if not silent:
            scanned += nr - 1
        low_pfn += nr - 1
        if skip_on_failure:
            if n:                                   # putback_movable_pages()
                for i in range(n):
                    h = base + out[i]
                    mem_map[h].flags = mem_map[h].flags & ~(<uint32_t> PG_isolated)
                n = 0
            if low_pfn < next_skip:
                low_pfn = next_skip - 1
                next_skip += <pfn_t> 1 << cc_order
        low_pfn += 1
    if not aborted:
        if low_pfn > end_pfn:
            low_pfn = end_pfn
        if low_pfn == end_pfn and n == 0 and not alloc_contig and valid >= 0 and not skip_updated:
            pageblock_flags[valid >> pageblock_order] |= PB_migrate_skip
    nr_isolated[0] = n
    nr_scanned[0] = scanned
    return low_pfn


def isolate_migratepages_block(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                               pfn_t low_pfn, pfn_t end_pfn, int pageblock_order,
                               bint ignore_skip_hint, pfn_t[::1] out_pfns, int cc_order,
                               bint alloc_contig, bint skip_on_failure,
                               bint v6_1=False):
    """isolate_migratepages_block() (mm/compaction.c, v6.9+; seed v3 vmemmap skip;
    `v6_1`: v6.1's rules, before v6.9).

    Migrate scanner over [low_pfn, end_pfn), inside one pageblock. Per pfn, in the
    kernel's order:
      * PGTY_VMEMMAP (seed v3): pass the rest of the run (vmemmap_nr_pages());
      * at the pageblock's first pfn, the skip bit (unless `ignore_skip_hint`) aborts;
      * PageBuddy: pass 2^order;
      * a tail page, or (unless `alloc_contig`) a folio of order >= `cc_order` (when
        `cc_order` != -1) or >= pageblock_order (skip_isolation_on_order(), v6.9+; with
        `v6_1`, v6.1, a folio of any order): pass the folio, isolation fails;
      * an LRU page or folio, or a __PageMovable one, not PG_isolated: isolated whole -
        its head goes to `out_pfns` and gets PG_isolated; the first LRU isolation of a
        pageblock scanned from its start sets the skip bit (test_and_set_skip());
      * anything else (reserved, slab, page tables, kernel memory) fails silently.
    Stops when `out_pfns` is full. With `skip_on_failure` (async direct compaction) a
    failure puts back what this call isolated and jumps to the next 2^cc_order chunk.
    A pageblock scanned from its start to `end_pfn` with nothing isolated gets its skip
    bit (set_pageblock_skip()); `alloc_contig` also means no_set_skip_hint.

    Returns (next_pfn, nr_isolated, nr_scanned): where the scan stopped (cc->migrate_pfn),
    the folio heads in out_pfns[:nr_isolated], and the kernel's nr_scanned (v6.1: the
    pages passed with a free block or a folio after its head are not counted).
    """
    if out_pfns.shape[0] < 1:
        raise ValueError("isolate_migratepages_block: out_pfns must hold at least one pfn")
    cdef count_t nr_isolated = 0, nr_scanned = 0
    cdef pfn_t next_pfn
    with nogil:
        next_pfn = isolate_migratepages_block_impl(
            &mem_map[0], &pageblock_flags[0], low_pfn, end_pfn, pageblock_order,
            ignore_skip_hint, &out_pfns[0], 0, out_pfns.shape[0], cc_order, alloc_contig,
            skip_on_failure, v6_1, &nr_isolated, &nr_scanned)
    return next_pfn, nr_isolated, nr_scanned


def isolate_migratepages_range(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                               pfn_t start_pfn, pfn_t end_pfn, int pageblock_order,
                               uint32_t zone_bits, bint ignore_skip_hint, bint alloc_contig,
                               uint32_t[::1] out):
    """isolate_migratepages_range() (mm/compaction.c): isolate_migratepages_block() per
    pageblock of [start_pfn, end_pfn) (target order -1, no skip_on_failure), passing a
    pageblock whose first or last page is outside the zone `zone_bits` (nid/zone bits of
    page->flags; pageblock_pfn_to_page()), until `out` is full.

    The isolated folio heads go to `out` as offsets from start_pfn (uint32: the range
    may span at most 2^32 pfns), in pfn order: their pfns are start_pfn + out[:nr].
    Returns (next_pfn, nr_isolated, nr_scanned) like isolate_migratepages_block().
    """
    check_range_out(start_pfn, end_pfn, out)
    cdef count_t total = 0, scanned = 0, n, s
    cdef count_t capacity = out.shape[0]
    cdef pfn_t pfn = start_pfn, block_start, block_end
    cdef page_t *mm = &mem_map[0]
    cdef uint32_t zmask = ~(<uint32_t> FLAGS_MASK)
    with nogil:
        while pfn < end_pfn:
            block_start = (pfn >> pageblock_order) << pageblock_order
            if block_start < start_pfn:
                block_start = start_pfn
            block_end = pageblock_end_in(pfn, pageblock_order, end_pfn)
            if ((mm[block_start].flags & zmask) != zone_bits
                    or (mm[block_end - 1].flags & zmask) != zone_bits):
                pfn = block_end
                continue
            n = 0
            s = 0
            pfn = isolate_migratepages_block_impl(
                mm, &pageblock_flags[0], pfn, block_end, pageblock_order, ignore_skip_hint,
                &out[total], start_pfn, capacity - total, -1, alloc_contig, False, False,
                &n, &s)
            total += n
            scanned += s
            if total >= capacity:
                break
            pfn = block_end
    return pfn, total, scanned


cdef inline pfn_t pageblock_end_in(pfn_t pfn, int pageblock_order, pfn_t end_pfn) noexcept nogil:
    cdef pfn_t e = ((pfn >> pageblock_order) + 1) << pageblock_order
    return e if e < end_pfn else end_pfn


# ---------------------------------------------------------------------------------------
# the free scanner
# ---------------------------------------------------------------------------------------
cdef count_t isolate_freepages_block_impl(
        const page_t *mem_map, const pbflags_t *pageblock_flags, pfn_t start_pfn,
        pfn_t end_pfn, bint strict, pfn_t *out_pfns, uint8_t *out_orders, count_t max_blocks,
        int pageblock_order, count_t *nr_blocks, count_t *nr_scanned,
        pfn_t *fail_pfn, int cc_order, bint v6_1, pfn_t stride) noexcept nogil:
    # A strict failure reports the pfn of the page that failed (for a compound page its
    # head side, where the kernel would already have moved to the folio's last page).
    # `v6_1`: v6.1's nr_scanned, which does not count the pages of a compound page it
    # jumps from the head (v6.12: "nr_scanned += (1UL << order) - 1"). Compound pages
    # are only ever passed by the per-page loop, so only it tells the two apart.
    #
    # `stride`: isolate_freepages()'s sampling (v5.1+: grown while pageblocks yield
    # nothing, COMPACT_CLUSTER_MAX from the start when async): the loop visits
    # blockpfn, blockpfn + stride, ...,
    # a free block or a folio's head moving it to its last page first; each visit
    # counts as at stride 1. Strict mode forces 1, as the kernel does. Sparse visits
    # are not what the block path decides: a stride > 1 takes the per-page loop.
    #
    # Block path (non-strict): an aligned block of FBLK pages inside the pageblock with
    # no compound page and only naturally aligned free block heads is done from its
    # view (pc_cview_at(), pc_free_decide()): the scan, entering at `blockpfn`, records
    # exactly the heads at or after it outside the blocks of the heads at or after it
    # (aligned blocks are nested or disjoint), and leaves exactly at the block's end;
    # nr_scanned grows by the pages it passed. When the heads would fill `max_blocks`
    # they are taken one by one up to the last one that fits, and the scan stops past
    # its block. Any other block is walked page by page with the original loop, to its
    # end.
    cdef pfn_t blockpfn = start_pfn, pb_end = -1, k, here, b, slow_until = -1, h
    cdef count_t n = 0, scanned = 0, total = 0
    cdef const page_t *p
    cdef uint64_t msk
    cdef uint32_t o
    cdef count_t pages
    cdef int pos, cnt
    cdef pc_cview_t v
    if strict or stride < 1:
        stride = 1
    cdef bint fast_ok = not strict and pageblock_order >= 6 and stride == 1
    fail_pfn[0] = -1
    while blockpfn < end_pfn:
        if not strict and blockpfn >= pb_end:       # the caller's per-pageblock test
            pb_end = block_end_pfn(blockpfn, pageblock_order)
            if not suitable_migration_target_impl(mem_map, pageblock_flags,
                                                  pb_end - (1 << pageblock_order),
                                                  pageblock_order, False, cc_order):
                blockpfn = pb_end
                continue
        if fast_ok and blockpfn >= slow_until and n < max_blocks:
            b = blockpfn & ~(<pfn_t> FBLK - 1)
            p = &mem_map[blockpfn]
            if b + FBLK <= end_pfn and not (         # a large free block or folio: step it
                    (p.page_type == PGTY_BUDDY or p.flags & (PG_head | PG_tail))
                    and p.order > pc_blk_align[blockpfn - b]):
                pos = <int> (blockpfn - b)
                cnt = pc_free_block(&mem_map[b], b, pos, max_blocks - n, &out_pfns[n],
                                    &out_orders[n], &pages, &msk, &v)
                if cnt >= 0:
                    total += pages
                    n += cnt
                    scanned += b + FBLK - blockpfn
                    blockpfn = b + FBLK
                    continue
                if cnt == -2:
                    while msk:                      # the heads that fill max_blocks
                        h = ctz64(msk)
                        msk &= msk - 1
                        o = v.od[h]
                        out_pfns[n] = b + h
                        out_orders[n] = <uint8_t> o
                        n += 1
                        total += <count_t> 1 << o
                        if n >= max_blocks:             # enough free pages
                            pos = <int> (h + (1 << o))
                            break
                    scanned += b + pos - blockpfn   # n == max_blocks
                    blockpfn = b + pos
                    break
            slow_until = b + FBLK
        scanned += 1
        here = blockpfn
        p = &mem_map[blockpfn]
        if p.flags & (PG_head | PG_tail):           # PageCompound: pass the folio
            # from its head only: compound_order() of a tail is 0, so a visit that
            # lands on a tail (a start inside the folio, or a stride) steps on from
            # there; v6.12 jumps only a folio that ends within end_pfn
            if p.flags & PG_head:
                k = folio_end(p, blockpfn) - blockpfn
                if v6_1:
                    blockpfn += k - 1
                elif blockpfn + k <= end_pfn:
                    scanned += k - 1
                    blockpfn += k - 1
        elif p.page_type == PGTY_BUDDY:
            if n >= max_blocks:                     # no room left to record it
                if strict:
                    fail_pfn[0] = blockpfn
                break
            out_pfns[n] = blockpfn
            out_orders[n] = p.order
            n += 1
            total += 1 << p.order
            scanned += (1 << p.order) - 1
            if not strict and n >= max_blocks:      # enough free pages
                blockpfn += 1 << p.order
                break
            blockpfn += (1 << p.order) - 1 + stride
            continue
        if strict:                                  # isolate_fail in strict mode
            fail_pfn[0] = here
            break
        blockpfn += stride
    nr_blocks[0] = n
    nr_scanned[0] = scanned
    return total


def isolate_freepages_block(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                            pfn_t start_pfn, pfn_t end_pfn, bint strict,
                            pfn_t[::1] out_pfns, uint8_t[::1] out_orders, count_t max_blocks,
                            int pageblock_order, int cc_order=-1, bint v6_1=False,
                            pfn_t stride=1):
    """isolate_freepages_block() (mm/compaction.c, v6.9+: free blocks keep their order;
    `v6_1`: v6.1's nr_scanned, a compound page counted by its head alone; `stride`:
    isolate_freepages()'s sampling, every stride-th pfn visited after each jump,
    non-strict only).

    Free scanner over [start_pfn, end_pfn): compound pages are passed from their head
    (v6.12: when they end within the range; a tail is one page); PageBuddy blocks are
    recorded (head pfn in out_pfns, int64; order in out_orders, uint8: 9 bytes
    per block instead of 16, the scanner's output stream is ~1/3 of what it reads),
    nothing else is taken.
      * non-strict (compaction for a request of `cc_order`): each pageblock entered must
        pass suitable_migration_target() - MOVABLE/CMA, not isolated, its first page not
        a free block of cc_order or more (pageblock_order when cc_order <= 0) - else it
        is passed unscanned; the scan stops
        after `max_blocks` blocks (enough free pages);
      * strict (isolate_freepages_range(), alloc_contig_range()): no pageblock test; the
        scan fails at the first pfn that is not free, or when a free block finds no room
        among `max_blocks`.
    The pages stay on their free lists: the caller takes the recorded blocks off.

    Returns (nr_isolated_pages, nr_scanned, fail_pfn, nr_blocks): pages in the recorded
    blocks, the kernel's nr_scanned, the strict failure pfn (-1: none; always -1 when not
    strict) and how many entries of the out arrays are valid.
    """
    if max_blocks < 0 or max_blocks > out_pfns.shape[0] or max_blocks > out_orders.shape[0]:
        raise ValueError(f"isolate_freepages_block: max_blocks={max_blocks} does not fit "
                         f"out arrays of {out_pfns.shape[0]} and {out_orders.shape[0]}")
    cdef count_t nr_blocks = 0, nr_scanned = 0, total
    cdef pfn_t fail_pfn = -1
    cdef pfn_t dummy = 0
    cdef uint8_t dummy_order = 0
    cdef pfn_t *op = &out_pfns[0] if out_pfns.shape[0] else &dummy
    cdef uint8_t *oo = &out_orders[0] if out_orders.shape[0] else &dummy_order
    with nogil:
        total = isolate_freepages_block_impl(&mem_map[0], &pageblock_flags[0], start_pfn,
                                             end_pfn, strict, op, oo, max_blocks,
                                             pageblock_order, &nr_blocks, &nr_scanned,
                                             &fail_pfn, cc_order, v6_1, stride)
    return total, nr_scanned, fail_pfn, nr_blocks


# ---------------------------------------------------------------------------------------
# per-pageblock rules
# ---------------------------------------------------------------------------------------
def suitable_migration_target(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                              pfn_t pfn, int pageblock_order, bint ignore_block_suitable,
                              int cc_order=-1):
    """suitable_migration_target() (mm/compaction.c, v6.9+) of the pageblock starting at
    `pfn` for a request of `cc_order`: never one whose first page is a free block of
    cc_order or more (pageblock_order when cc_order <= 0: compact_memory, order -1);
    otherwise any with `ignore_block_suitable`, else MOVABLE or CMA (an isolated one is
    neither)."""
    return bool(suitable_migration_target_impl(&mem_map[0], &pageblock_flags[0], pfn,
                                               pageblock_order, ignore_block_suitable,
                                               cc_order))


def suitable_migration_source(page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                              pfn_t pfn, int pageblock_order, bint async_direct):
    """suitable_migration_source() (mm/compaction.c) for a MOVABLE request, pageblock
    starting at `pfn`: never one held by a folio of pageblock order or more
    (pageblock_skip_persistent()); async direct compaction scans MOVABLE/CMA only."""
    return bool(suitable_migration_source_impl(&mem_map[0], &pageblock_flags[0], pfn,
                                               pageblock_order, async_direct))


# ---------------------------------------------------------------------------------------
# contiguous allocation
# ---------------------------------------------------------------------------------------
cdef inline pfn_t prvc_first(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                             uint32_t zone_bits) noexcept nogil:
    # The original per-page loop.
    cdef pfn_t pfn
    cdef uint32_t f
    cdef uint32_t zmask = ~(<uint32_t> FLAGS_MASK)
    for pfn in range(start_pfn, end_pfn):
        f = mem_map[pfn].flags
        if (f & zmask) != zone_bits:
            return pfn
        if f & PG_reserved:
            return pfn
        if f & (PG_head | PG_tail) and not f & (PG_lru | PG_movable):
            return pfn
    return -1


cdef enum:
    PRVC_BLK = 64                     # pages per branch of the block test
    PRVC_CHUNK = 1 << 16              # pfns per parallel chunk (1 MiB of struct pages)
    PRVC_PAR_MIN = 1 << 20            # fewer pages than this: one thread

cdef int PRVC_THREADS = 2


def _set_contig_threads(int num_threads):
    """Threads of pfn_range_valid_contig() for ranges of 2^20 pages or more (default 2).
    Returns the old value."""
    global PRVC_THREADS
    old = PRVC_THREADS
    PRVC_THREADS = max(1, num_threads)
    return old


cdef pfn_t pfn_range_valid_contig_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                       uint32_t zone_bits) noexcept nogil:
    # The rules of prvc_first() folded into one flag per block of PRVC_BLK pages (no
    # branch per page: the loop is three mask tests per page and one branch per block);
    # a block that has an offender is searched with prvc_first().
    cdef pfn_t pfn = start_pfn
    cdef uint32_t f, bad
    cdef uint32_t zmask = ~(<uint32_t> FLAGS_MASK)
    cdef int r
    while pfn + PRVC_BLK <= end_pfn:
        bad = 0
        for r in range(PRVC_BLK):
            f = mem_map[pfn + r].flags
            bad |= (((f & zmask) ^ zone_bits) | (f & PG_reserved) |
                    ((f & (PG_head | PG_tail)) & -(<uint32_t> ((f & (PG_lru | PG_movable)) == 0))))
        if bad:
            return prvc_first(mem_map, pfn, pfn + PRVC_BLK, zone_bits)
        pfn += PRVC_BLK
    return prvc_first(mem_map, pfn, end_pfn, zone_bits)




cdef pfn_t pfn_range_valid_contig_par(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                      uint32_t zone_bits, int num_threads,
                                      pfn_t chunk) noexcept nogil:
    # Chunks at multiples of `chunk` on `num_threads` threads; the answer is the smallest
    # offender over the chunks (each chunk's first one); chunks above an offender already
    # found are not scanned.
    cdef pfn_t first = (start_pfn // chunk + 1) * chunk
    cdef pfn_t nch, k, lo, hi, r
    cdef pfn_t found = end_pfn
    cdef pfn_t *foundp = &found
    if num_threads <= 1 or chunk <= 0 or first >= end_pfn:
        return pfn_range_valid_contig_impl(mem_map, start_pfn, end_pfn, zone_bits)
    r = pfn_range_valid_contig_impl(mem_map, start_pfn, first, zone_bits)
    if r >= 0:
        return r
    nch = (end_pfn - first + chunk - 1) // chunk
    for k in prange(nch, num_threads=num_threads, schedule="dynamic", chunksize=1):
        lo = first + k * chunk
        hi = lo + chunk
        if hi > end_pfn:
            hi = end_pfn
        if pc_atomic_load(foundp) > lo:
            r = pfn_range_valid_contig_impl(mem_map, lo, hi, zone_bits)
            if r >= 0:
                pc_atomic_min(foundp, r)
    return found if found < end_pfn else -1


def pfn_range_valid_contig(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn,
                           uint32_t zone_bits):
    """pfn_range_valid_contig() (mm/page_alloc.c): the cheap pre-check of
    alloc_contig_pages(), no isolation. Returns the first pfn of [start_pfn, end_pfn) that
    rules the range out, or -1. A page rules it out when it is in another zone (its
    nid/zone bits differ from `zone_bits`), PageReserved (boot memory, the v3 and <=v6.10
    vmemmap pages), or PageHuge: pagecore has no hugetlb flag, and a compound page that is
    neither on the LRU nor __PageMovable stands for one (hugetlb folios are on neither).
    Whether the pages are online is the caller's check (pfn_to_online_page()).
    Ranges of 2^20 pages or more run on _set_contig_threads() threads (default 2)."""
    cdef int nt = PRVC_THREADS if end_pfn - start_pfn >= PRVC_PAR_MIN else 1
    return _pfn_range_valid_contig_mt(mem_map, start_pfn, end_pfn, zone_bits, nt, PRVC_CHUNK)


def _pfn_range_valid_contig_mt(page_t[::1] mem_map, pfn_t start_pfn, pfn_t end_pfn,
                               uint32_t zone_bits, int num_threads, pfn_t chunk_pages):
    """pfn_range_valid_contig() on `num_threads` threads in chunks of `chunk_pages`."""
    cdef pfn_t r = -1
    if end_pfn > start_pfn:
        with nogil:
            r = pfn_range_valid_contig_par(&mem_map[0], start_pfn, end_pfn, zone_bits,
                                           num_threads, chunk_pages)
    return r


# ---------------------------------------------------------------------------------------
# migration
# ---------------------------------------------------------------------------------------
cdef count_t migrate_folio_impl(page_t *mem_map, pfn_t src, pfn_t dst) noexcept nogil:
    cdef page_t *s = &mem_map[src]
    cdef page_t *d
    cdef count_t nr = (<count_t> 1 << s.order) if s.flags & PG_head else 1
    cdef count_t i
    cdef uint32_t zmask = ~(<uint32_t> FLAGS_MASK)
    for i in range(nr):
        s = &mem_map[src + i]
        d = &mem_map[dst + i]
        d.flags = (d.flags & zmask) | (s.flags & FLAGS_MASK & ~(<uint32_t> PG_isolated))
        d.page_type = PGTY_NONE
        d.order = s.order
        d.refcount = s.refcount
        d.private = s.private
    return nr


def migrate_folio(page_t[::1] mem_map, pfn_t src, pfn_t dst):
    """migrate_folio() (mm/migrate.c) of the folio headed at `src` into the pages at
    `dst` (taken off the free lists by the caller): flags (without PG_isolated, which
    the move ends), folio order, refcount and owner move; each page keeps its own
    nid/zone bits. The source is left for the caller to free. Returns the pages moved."""
    cdef count_t nr
    with nogil:
        nr = migrate_folio_impl(&mem_map[0], src, dst)
    return nr


# ---------------------------------------------------------------------------------------
# compact_zone(): the whole run
# ---------------------------------------------------------------------------------------
cdef struct pfn_stack:
    # A stack (push, pop at n) or a queue (push at n, take at lo): pfns[lo:n] are held.
    pfn_t *pfns
    count_t lo
    count_t n
    count_t cap


cdef int stack_push(pfn_stack *s, pfn_t pfn) except -1 nogil:
    cdef pfn_t *grown
    if s.lo == s.n:                   # empty: reuse the buffer from its start
        s.lo = s.n = 0
    if s.n == s.cap:
        grown = <pfn_t *> realloc(s.pfns, (2 * s.cap + 64) * sizeof(pfn_t))
        if grown == NULL:
            with gil:
                raise MemoryError("compact_zone: free page list growth")
        s.pfns = grown
        s.cap = 2 * s.cap + 64
    s.pfns[s.n] = pfn
    s.n += 1
    return 0


cdef struct compact_control:
    # struct compact_control (mm/internal.h) of one whole-zone run. Invariants:
    #   * the isolated folio heads still to migrate are migratepages[mig_lo:mig_hi]; a
    #     batch lands at mig_base = the buffer's last COMPACT_CLUSTER_MAX slots, so a
    #     split at the front (lo -= 2^order - 1) always has room below it;
    #   * cc->freepages[o], read from its head, is halves[o] (the halves
    #     compaction_alloc() split off, list_add() at the head: a stack) then
    #     isolated[o] (the blocks isolate_freepages_block() took, list_add_tail(): a
    #     queue), as the twin's lists; nr_freepages is the pages in them;
    #   * free_pfn may lie inside a pageblock: where the free scanner stopped once it
    #     had enough (isolate_start_pfn), and where it goes on;
    #   * the run ends when free_pfn and migrate_pfn meet (compact_scanners_met());
    #   * before v6.9 (not large_folios) only order-0 pages are isolated, and
    #     cc->freepages is one list of order-0 pages, `pages` (a stack: its top is the
    #     list's head), refilled only when empty; batch_pages is that kernel's
    #     cc->nr_migratepages, the pages of the whole batch, not only those left.
    page_t *mm
    pbflags_t *pbf
    const uint8_t *valid              # pageblock_pfn_to_page() per pageblock of the span
    pfn_t pb0                         # pageblock index of valid[0]
    pfn_t start, end, pb
    pfn_t migrate_pfn, free_pfn
    int order, pbo, nr_orders
    bint ignore_skip_hint, async_direct, large_folios, async_mode
    pfn_t *migratepages
    count_t mig_lo, mig_hi, mig_base
    pfn_stack halves[MAX_ORDERS]
    pfn_stack isolated[MAX_ORDERS]
    pfn_stack pages
    count_t batch_pages
    count_t nr_freepages
    pfn_t *free_out
    uint8_t *free_orders
    count_t migrate_scanned, free_scanned, migrated_pages, migrated_folios


cdef inline bint cc_scanners_met(const compact_control *cc) noexcept nogil:
    return (cc.free_pfn >> cc.pbo) <= (cc.migrate_pfn >> cc.pbo)


cdef inline bint cc_block_valid(const compact_control *cc, pfn_t pfn) noexcept nogil:
    return cc.valid[(pfn >> cc.pbo) - cc.pb0] != 0


cdef inline int folio_order(const page_t *mem_map, pfn_t head) noexcept nogil:
    return mem_map[head].order if mem_map[head].flags & PG_head else 0


cdef int cc_finished(const compact_control *cc, FreeArea fa) noexcept nogil:
    # __compact_finished(): COMPLETE when the scanners met, SUCCESS when a free block of
    # the requested order is there for a MOVABLE allocation, else CONTINUE.
    cdef int o
    if cc_scanners_met(cc):
        return COMPACT_COMPLETE
    if cc.order < 0 or cc.migrate_pfn % cc.pb:
        return COMPACT_CONTINUE
    for o in range(cc.order, cc.nr_orders):
        if fa.nr[MIGRATE_MOVABLE][o] or fa.nr[MIGRATE_CMA][o]:
            return COMPACT_SUCCESS
        # find_suitable_fallback(): MOVABLE steals from UNMOVABLE/RECLAIMABLE blocks of
        # at least pageblock_order / 2 (can_steal_fallback())
        if o >= cc.pbo // 2 and (fa.nr[MIGRATE_UNMOVABLE][o] or fa.nr[MIGRATE_RECLAIMABLE][o]):
            return COMPACT_SUCCESS
    return COMPACT_CONTINUE


cdef void cc_isolate_migratepages(compact_control *cc, FreeArea fa) noexcept nogil:
    # isolate_migratepages(): the first pageblock above migrate_pfn that is valid, not
    # skipped (a pageblock entered at its start: isolation_suitable()) and a suitable
    # source gets one isolate_migratepages_block() batch.
    #
    # A pageblock entered at its start that lies in a free block of order >=
    # pageblock_order on the lists (FreeArea.listed_block(), no page read) has a known
    # outcome, so its pages are not read (a memmap image stays unread): the kernel's
    # loop reads the head, PageBuddy, and passes the block (nr_scanned += 2^order), or,
    # in a later pageblock of the block, fails every page alone (nr_scanned +=
    # pageblock_nr_pages; a free page's tail is neither LRU nor movable); nothing is
    # isolated, so the pageblock gets its skip bit (valid_page, !skip_updated). Not under
    # skip_on_failure, whose order-aligned jumps scan fewer pages: that walk runs.
    cdef pfn_t low = cc.migrate_pfn, head = -1
    cdef int o
    cdef bint src
    cdef pfn_t block_start = (low >> cc.pbo) << cc.pbo
    cdef pfn_t block_end = ((low >> cc.pbo) + 1) << cc.pbo
    cdef count_t n = 0, scanned = 0
    if block_start < cc.start:
        block_start = cc.start
    while block_end <= cc.free_pfn:
        src = False
        if (cc_block_valid(cc, block_start)
                and not (low % cc.pb == 0 and not cc.ignore_skip_hint
                         and cc.pbf[low >> cc.pbo] & PB_migrate_skip)):
            head = fa.listed_block(low, &o) if low & (cc.pb - 1) == 0 else -1
            if head >= 0:
                # suitable_migration_source() of a free page, which is not compound
                src = not cc.async_direct or is_migrate_movable(
                    pageblock_migratetype(cc.pbf, block_start, cc.pbo))
            else:
                src = suitable_migration_source_impl(cc.mm, cc.pbf, block_start, cc.pbo,
                                                     cc.async_direct)
        if src:
            if head >= 0 and not (cc.async_direct and cc.order >= 0):
                # the head passes the block (v6.1: uncounted but the head), a later
                # pageblock of it is failed page by page
                cc.migrate_scanned += (((<count_t> 1 << o) if cc.large_folios else 1)
                                       if head == low else cc.pb)
                cc.pbf[low >> cc.pbo] |= PB_migrate_skip
                cc.migrate_pfn = block_end
                cc.mig_lo = cc.mig_hi = cc.mig_base
                return
            cc.migrate_pfn = isolate_migratepages_block_impl(
                cc.mm, cc.pbf, low, block_end, cc.pbo, cc.ignore_skip_hint,
                &cc.migratepages[cc.mig_base], 0, COMPACT_CLUSTER_MAX, cc.order, False,
                cc.async_direct, not cc.large_folios, &n, &scanned)
            cc.migrate_scanned += scanned
            cc.mig_lo = cc.mig_base
            cc.mig_hi = cc.mig_base + n
            cc.batch_pages = n                      # order-0 pages alone before v6.9
            return
        low = block_start = block_end
        cc.migrate_pfn = low
        block_end += cc.pb


cdef inline count_t max_blocks_for(count_t need, count_t have, count_t pb) noexcept nogil:
    # How many free blocks the free scanner can take before it has `need` pages.
    if need - have > pb:
        return pb
    return need - have if need > have else 1


cdef int cc_isolate_freepages(compact_control *cc, FreeArea fa) except -1 nogil:
    # isolate_freepages(): pageblocks down from free_pfn (inside a pageblock when the
    # last call stopped there), above the migrate scanner's pageblock, until the
    # isolated free pages cover the folios still to migrate. isolate_freepages_block()
    # stops right after the free block that makes them enough ("cc->nr_migratepages <=
    # cc->nr_freepages"): its nr_scanned ends there (every pfn passed counts once in a
    # suitable pageblock), free_pfn stays there, and only a pageblock scanned to its end
    # gets its skip bit (update_pageblock_skip()).
    #
    # A pageblock in a free block of order >= pageblock_order on the lists
    # (FreeArea.listed_block()) is decided without a page read: the block's first
    # pageblock fails suitable_migration_target() when the block's order is at least
    # target_free_order() (it is then not broken up; an order-9 block under an order-10
    # request is a target and is scanned as any other); a later pageblock passes it by
    # its migratetype alone, and isolate_freepages_block() then finds neither a free
    # head nor a compound page in it: every page scanned, nothing isolated. So a mostly
    # free zone's memmap images stay unread here too.
    #
    # The free scanner samples ("mm, compaction: sample pageblocks for free pages",
    # v5.1): it visits every stride-th pfn of a pageblock, stride 1 (sync) or
    # COMPACT_CLUSTER_MAX (async) at each call's start, back to 1 after a pageblock that
    # yields a free block, doubled (at most COMPACT_CLUSTER_MAX) after one that yields
    # none; a pageblock passed unscanned leaves it as it is. With a stride the count is
    # not the pfns passed either: one block per scanner call, as for v6.1 below.
    #
    # Before v6.9 the stop compares with the whole batch (cc->nr_migratepages was not
    # lowered by compaction_alloc() then), the target rule is suitable_migration_target()
    # v6.1 (a free block of pageblock_order or more at the pageblock's start, whatever
    # cc->order), and the blocks isolated by one call become order-0 pages in
    # split_map_pages()'s order: list_add() of each page, block after block, so the
    # list's head is the last page of the last block.
    cdef count_t need = 0, i, nb, scanned, n1, s1, got
    cdef pfn_t low = ((cc.migrate_pfn >> cc.pbo) + 1) << cc.pbo
    cdef pfn_t isolate_start = cc.free_pfn
    cdef pfn_t block_start = (isolate_start >> cc.pbo) << cc.pbo, block_end, fail, head
    cdef pfn_t stop, pos, stride = COMPACT_CLUSTER_MAX if cc.async_mode else 1
    cdef int o, tfo_order = cc.order if cc.large_folios else -1
    cdef bint target, interior
    cdef pfn_t q
    if cc.nr_freepages:
        # "if (cc->nr_freepages) return;" (v6.12; v6.1 "goto splitmap"), meant for what
        # fast_isolate_freepages() found: since v6.9 also blocks on the lists too small
        # for the folio, which then gets no target from this call
        return 0
    if cc.large_folios:
        for i in range(cc.mig_lo, cc.mig_hi):
            need += <count_t> 1 << folio_order(cc.mm, cc.migratepages[i])
    else:
        need = cc.batch_pages
    while block_start >= low:
        head, interior = -1, False
        if cc_block_valid(cc, block_start):
            head = fa.listed_block(block_start, &o)
            interior = head >= 0 and head != block_start
            if head >= 0:
                target = ((interior or o < target_free_order(tfo_order, cc.pbo))
                          and is_migrate_movable(
                              pageblock_migratetype(cc.pbf, block_start, cc.pbo)))
            else:
                target = suitable_migration_target_impl(cc.mm, cc.pbf, block_start, cc.pbo,
                                                        False, tfo_order)
        else:
            target = False
        if target and (cc.ignore_skip_hint
                       or not cc.pbf[block_start >> cc.pbo] & PB_migrate_skip):
            block_end = block_start + cc.pb
            if block_end > cc.end:
                block_end = cc.end
            nb = scanned = 0
            if interior:                            # every visit fails
                scanned = (block_end - isolate_start + stride - 1) // stride
            elif cc.large_folios and stride == 1:
                # every block holds a page, so the kernel's stop comes within the first
                # need - nr_freepages blocks (within the first one when there are enough)
                isolate_freepages_block_impl(cc.mm, cc.pbf, isolate_start, block_end, False,
                                             cc.free_out, cc.free_orders,
                                             max_blocks_for(need, cc.nr_freepages, cc.pb),
                                             cc.pbo, &nb, &scanned, &fail, tfo_order, False,
                                             1)
            else:
                # v6.1 and a stride count visited pages, not the pfns passed: one block
                # per call, so that the count of the call that finds the last block
                # needed ends there; the next visit is stride after the block's last page
                pos = isolate_start
                got = cc.nr_freepages
                # (enough is tested after each block isolated, as the kernel does)
                while pos < block_end:
                    n1 = s1 = 0
                    isolate_freepages_block_impl(cc.mm, cc.pbf, pos, block_end, False,
                                                 &cc.free_out[nb], &cc.free_orders[nb], 1,
                                                 cc.pbo, &n1, &s1, &fail, tfo_order,
                                                 not cc.large_folios, stride)
                    scanned += s1
                    if not n1:
                        break
                    got += <count_t> 1 << cc.free_orders[nb]
                    pos = cc.free_out[nb] + (<pfn_t> 1 << cc.free_orders[nb]) - 1 + stride
                    nb += 1
                    if got >= need:
                        break
            stop = block_end
            for i in range(nb):                     # __isolate_free_page()
                fa.remove(cc.free_out[i])
                if cc.large_folios:
                    stack_push(&cc.isolated[cc.free_orders[i]], cc.free_out[i])
                else:                               # split_map_pages()
                    for q in range(cc.free_out[i], cc.free_out[i] + (<pfn_t> 1 << cc.free_orders[i])):
                        stack_push(&cc.pages, q)
                cc.nr_freepages += <count_t> 1 << cc.free_orders[i]
                if cc.nr_freepages >= need:         # the kernel's scan ends here
                    stop = cc.free_out[i] + (<pfn_t> 1 << cc.free_orders[i])
                    if cc.large_folios and stride == 1:     # every pfn passed counted once
                        scanned = stop - isolate_start
                    break
            cc.free_scanned += scanned
            if stop >= block_end:
                cc.pbf[block_start >> cc.pbo] |= PB_migrate_skip
            if cc.nr_freepages >= need:
                cc.free_pfn = block_start - cc.pb if stop >= block_end else stop
                return 0
            stride = 1 if nb else min(<pfn_t> COMPACT_CLUSTER_MAX, 2 * stride)
        block_start -= cc.pb
        isolate_start = block_start
    cc.free_pfn = block_start
    return 0


cdef pfn_t cc_compaction_alloc(compact_control *cc, FreeArea fa, int order) except -2 nogil:
    # compaction_alloc() (v6.9+): the first block of the smallest nonempty
    # cc->freepages[] list of at least `order`, its upper halves put at the heads of the
    # lists below; one free scan per call when none is there.
    cdef int attempt, o
    cdef pfn_stack *h
    cdef pfn_stack *q
    cdef pfn_t pfn
    if not cc.large_folios:
        # v6.1: the head of the one list of order-0 pages (order is 0: nothing larger
        # is isolated), refilled by a free scan when empty
        if cc.pages.n == cc.pages.lo:
            cc_isolate_freepages(cc, fa)
        if cc.pages.n == cc.pages.lo:
            return -1
        cc.pages.n -= 1
        cc.nr_freepages -= 1
        return cc.pages.pfns[cc.pages.n]
    for attempt in range(2):
        for o in range(order, cc.nr_orders):
            h, q = &cc.halves[o], &cc.isolated[o]
            if h.n > h.lo or q.n > q.lo:            # list_first_entry()
                if h.n > h.lo:
                    h.n -= 1
                    pfn = h.pfns[h.n]
                else:
                    pfn = q.pfns[q.lo]
                    q.lo += 1
                while o > order:                    # split, the halves at the head
                    o -= 1
                    stack_push(&cc.halves[o], pfn + (<pfn_t> 1 << o))
                cc.nr_freepages -= <count_t> 1 << order
                return pfn
        if attempt == 0:
            cc_isolate_freepages(cc, fa)
    return -1


cdef void cc_putback(compact_control *cc) noexcept nogil:
    # putback_movable_pages(): what is still isolated goes back.
    cdef count_t i
    for i in range(cc.mig_lo, cc.mig_hi):
        cc.mm[cc.migratepages[i]].flags &= ~(<uint32_t> PG_isolated)
    cc.mig_lo = cc.mig_hi = cc.mig_base


cdef int cc_migrate_pages(compact_control *cc, FreeArea fa) except -1 nogil:
    # migrate_pages() of the isolated batch into compaction_alloc() targets; returns 0 on
    # -ENOMEM (no target left). A large LRU folio without a target is split and its pages
    # retried (try_split_folio()).
    cdef pfn_t head, dst, i, nr
    cdef int order
    cdef page_t first
    while cc.mig_lo < cc.mig_hi:
        head = cc.migratepages[cc.mig_lo]
        order = folio_order(cc.mm, head)
        dst = cc_compaction_alloc(cc, fa, order)
        if dst < 0 and order > 0 and cc.mm[head].flags & PG_lru:
            nr = <pfn_t> 1 << order                 # split_folio(): isolated order-0 pages
            first = cc.mm[head]
            cc.mig_lo -= nr - 1
            for i in range(nr):
                cc.mm[head + i].flags = ((cc.mm[head + i].flags & ~(<uint32_t> (PG_head | PG_tail)))
                                         | PG_isolated)
                cc.mm[head + i].order = 0
                cc.mm[head + i].refcount = first.refcount
                cc.mm[head + i].private = first.private
                cc.migratepages[cc.mig_lo + i] = head + i
            continue
        if dst < 0:
            cc_putback(cc)
            return 0
        cc.mig_lo += 1
        migrate_folio_impl(cc.mm, head, dst)
        fa.free_pages(head)
        cc.migrated_pages += <count_t> 1 << order
        cc.migrated_folios += 1
    return 1


cdef int cc_run(compact_control *cc, FreeArea fa) except -1 nogil:
    # compact_zone()'s loop: one isolated batch, then its migration, until finished.
    cdef int result = cc_finished(cc, fa)
    while result == COMPACT_CONTINUE:
        cc_isolate_migratepages(cc, fa)
        if cc.mig_lo < cc.mig_hi:
            if not cc_migrate_pages(cc, fa) and not cc_scanners_met(cc):
                return COMPACT_CONTENDED            # -ENOMEM: no target left
        result = cc_finished(cc, fa)
    return result


cdef int cc_release(compact_control *cc, FreeArea fa) except -1 nogil:
    # release_free_list() and putback: isolated folios and free blocks go back, order by
    # order in list order (halves from the head, then the isolated blocks), through
    # __free_pages() (v6.9+: mark_allocated(), then the pcp lists for their orders), as
    # the twin does.
    cdef int o
    cdef count_t i
    cdef pfn_t pfn
    cc_putback(cc)
    i = cc.pages.n
    while i > cc.pages.lo:                          # v6.1 release_freepages(): __free_page()
        i -= 1
        pfn = cc.pages.pfns[i]
        cc.mm[pfn].order = 0                        # split_page(): a free block's tail
        fa.free_pages(pfn)                          # may hold the order it had as a head
    cc.pages.lo = cc.pages.n = 0
    for o in range(cc.nr_orders):
        i = cc.halves[o].n
        while i > cc.halves[o].lo:
            i -= 1
            pfn = cc.halves[o].pfns[i]
            cc.mm[pfn].order = o                    # set_page_private()
            fa.free_pages(pfn)
        for i in range(cc.isolated[o].lo, cc.isolated[o].n):
            pfn = cc.isolated[o].pfns[i]
            cc.mm[pfn].order = o
            fa.free_pages(pfn)
        cc.halves[o].lo = cc.halves[o].n = 0
        cc.isolated[o].lo = cc.isolated[o].n = 0
    cc.nr_freepages = 0
    return 0


_RESULT_NAMES = {COMPACT_COMPLETE: "complete", COMPACT_SUCCESS: "success",
                 COMPACT_CONTENDED: "contended"}


def compact_zone_run(FreeArea free_area, page_t[::1] mem_map, pbflags_t[::1] pageblock_flags,
                     uint8_t[::1] valid, pfn_t zone_start_pfn, pfn_t zone_end_pfn, int order,
                     int pageblock_order, bint ignore_skip_hint, bint async_direct,
                     bint large_folios=True, bint async_mode=False):
    """compact_zone() (mm/compaction.c, v6.9+; v6.1 unless `large_folios`) of the zone
    [zone_start_pfn, zone_end_pfn)
    whose buddy is `free_area`, for a MOVABLE request of `order` (-1: compact_memory,
    never "success"). `valid[i]` says whether pageblock (zone_start_pfn >> pageblock_order)
    + i passes pageblock_pfn_to_page() (first and last page online and in the zone).

    The migrate scanner walks pageblocks up from the zone start, isolating batches of
    COMPACT_CLUSTER_MAX folios (isolate_migratepages_block()); the free scanner walks
    down from the zone end isolating free blocks (isolate_freepages_block(), taken off
    the free lists) until they cover the batch, stopping inside a pageblock if need be,
    sampling every stride-th pfn after pageblocks that yielded nothing;
    each folio moves into the first block of the smallest list of isolated blocks that
    fits (compaction_alloc()) and its old pages are freed. Ends when a free block of `order`
    is there, the scanners meet, or no target is left (then "contended"); what is still
    isolated goes back (putback, release_free_list()).

    `large_folios` False: v6.1's rules, before "mm: compaction: add support for >0 order
    folio memory compaction" (v6.9): compound pages are passed, each free scan's blocks
    are split into one list of order-0 pages handed out from its head (the last page of
    the last block), a scan stops once it holds the whole batch, a pageblock headed by
    a free block of pageblock_order or more is no target whatever `order`, and
    nr_scanned counts the pages the scanners' loops visit, not those they jump over.

    `async_mode` (implied by `async_direct`): MIGRATE_ASYNC, whose free scanner starts
    each call at stride COMPACT_CLUSTER_MAX (isolate_freepages()), not 1.

    Returns (result, migrate_scanned, free_scanned, migrated_pages, migrated_folios):
    result "complete", "success" or "contended", and the kernel's nr_scanned sums.
    """
    cdef compact_control cc
    cdef int o, result = COMPACT_COMPLETE
    memset(&cc, 0, sizeof(cc))
    cc.pbo = pageblock_order
    cc.pb = <pfn_t> 1 << pageblock_order
    cc.nr_orders = free_area.nr_orders
    if not 0 < cc.nr_orders <= MAX_ORDERS or not -1 <= order < cc.nr_orders:
        raise ValueError(f"compact_zone_run: order={order} outside -1..{cc.nr_orders - 1}")
    cc.pb0 = zone_start_pfn >> pageblock_order
    if (zone_end_pfn <= zone_start_pfn or zone_end_pfn > mem_map.shape[0]
            or valid.shape[0] != ((zone_end_pfn - 1) >> pageblock_order) - cc.pb0 + 1):
        raise ValueError(f"compact_zone_run: zone [{zone_start_pfn:#x}, {zone_end_pfn:#x}) "
                         f"does not match mem_map ({mem_map.shape[0]} pages) and valid "
                         f"({valid.shape[0]} pageblocks)")
    cc.mm = &mem_map[0]
    cc.pbf = &pageblock_flags[0]
    cc.valid = &valid[0]
    cc.start, cc.end = zone_start_pfn, zone_end_pfn
    cc.migrate_pfn = zone_start_pfn
    cc.free_pfn = ((zone_end_pfn - 1) >> pageblock_order) << pageblock_order
    cc.order = order
    cc.ignore_skip_hint, cc.async_direct = ignore_skip_hint, async_direct
    cc.large_folios = large_folios
    cc.async_mode = async_mode or async_direct
    cc.mig_base = <count_t> 1 << (cc.nr_orders - 1)
    cc.mig_lo = cc.mig_hi = cc.mig_base
    cc.migratepages = <pfn_t *> malloc((cc.mig_base + COMPACT_CLUSTER_MAX) * sizeof(pfn_t))
    cc.free_out = <pfn_t *> malloc(cc.pb * sizeof(pfn_t))
    cc.free_orders = <uint8_t *> malloc(cc.pb * sizeof(uint8_t))
    try:
        if cc.migratepages == NULL or cc.free_out == NULL or cc.free_orders == NULL:
            raise MemoryError("compact_zone_run: scanner buffers")
        try:
            with nogil:
                result = cc_run(&cc, free_area)
        finally:
            with nogil:
                cc_release(&cc, free_area)
    finally:
        free(cc.migratepages)
        free(cc.free_out)
        free(cc.free_orders)
        free(cc.pages.pfns)
        for o in range(MAX_ORDERS):
            free(cc.halves[o].pfns)
            free(cc.isolated[o].pfns)
    return (_RESULT_NAMES[result], cc.migrate_scanned, cc.free_scanned, cc.migrated_pages,
            cc.migrated_folios)


