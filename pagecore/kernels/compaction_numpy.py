"""Plain-numpy twins of the compaction kernels in pagecore/kernels/compaction.pyx.

Contract (the same as pagecore/kernels/hotplug_numpy.py for _kernels): for every `def` of
`_compaction.pyx` this module has a function with the same name and parameters that
returns the same values and leaves `mem_map`, the pageblock flags and the out arrays in
the same state, for every input the kernel accepts. tests/test_compaction.py holds the
three backends to this.

How the walks are followed:
  * The per-pfn rules are stated once, vectorised, in the kernel's test order
    (`np.select`), as a kind and a step for every pfn of the range.
  * The free scanner and the pre-check are stateless: the free scanner's walk
    (i -> i + step[i]) is found with pointer doubling (`_orbit`), in chunks of
    `CHUNK` pfns so that a TiB-sized range needs no TiB-sized temporaries.
  * The migrate scanner has state along its walk (skip bit, batch limit, putback and
    chunk jumps of async direct compaction) and runs inside one pageblock: its walk is a
    plain loop over the visited pfns, reading the vectorised kinds and steps.
  * compact_zone_run() is the kernel's loop written plainly in Python (a class for
    struct compact_control), one step per batch and per folio; the numba backend runs
    the same loop over its own scanners (FreeArea is a Cython class numba cannot call).
"""
import collections
import sys

import numpy as np

from pagecore.kernels.folio import putback, split_folio, splittable
from pagecore.kernels.page import (FLAGS_MASK, MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE,
                            MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATETYPE_MASK, PAGE_UNION_DTYPE, PB_migrate_isolate,
                            PB_migrate_skip, PG_head, PG_isolated, PG_lru, PG_movable,
                            PG_reserved, PG_tail, PGTY_BUDDY, PGTY_NONE, PGTY_VMEMMAP)

__all__ = ["isolate_migratepages_block", "isolate_migratepages_range",
           "isolate_freepages_block", "suitable_migration_target",
           "suitable_migration_source", "pfn_range_valid_contig", "migrate_folio",
           "compact_zone_run"]

#: pfns per chunk of the chunked scans (a multiple of every pageblock size).
CHUNK = 1 << 20
_ZMASK = ~FLAGS_MASK & 0xFFFFFFFF

# the migrate scanner's kinds of page
COMPACT_CLUSTER_MAX = 32       # SWAP_CLUSTER_MAX (compaction.pxd)
_VMEMMAP, _BUDDY, _FAIL, _LRU, _MOVABLE, _SKIP = range(6)   # _SKIP: a folio passed whole


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def vmemmap_nr_pages(mem_map, pfns):
    """vmemmap_nr_pages() of PGTY_VMEMMAP pages `pfns`: pages of the run left from each
    pfn to its end (the head holds the length, a tail its distance back to the head)."""
    vm = mem_map.view(PAGE_UNION_DTYPE)
    pfns = np.asarray(pfns, dtype=np.int64)
    back = vm["vmemmap_head"][pfns].astype(np.int64)
    is_head = (vm["flags"][pfns] & PG_head) != 0
    head = np.where(is_head, pfns, pfns - back)
    left = vm["vmemmap_pages"][head] - np.where(is_head, 0, back).astype(np.uint32)
    return left.astype(np.int64)


def check_out_dtypes(out_pfns, out_orders):
    """isolate_freepages_block()'s out arrays as the Cython kernel's buffers type them:
    int64 pfns and uint8 orders (ValueError otherwise, as Cython's buffer check)."""
    if out_pfns.dtype != np.int64 or out_orders.dtype != np.uint8:
        raise ValueError(f"isolate_freepages_block: out arrays must be int64 pfns and uint8 "
                         f"orders, not {out_pfns.dtype} and {out_orders.dtype}")


def check_range_out(start_pfn, end_pfn, out):
    """isolate_migratepages_range()'s out array as every backend types it: uint32 offsets
    from start_pfn, room for at least one, a range of at most 2^32 pfns (ValueError
    otherwise, as Cython's buffer check)."""
    if getattr(out, "dtype", np.uint32) != np.uint32:
        raise ValueError("isolate_migratepages_range: out must be uint32 offsets from "
                         f"start_pfn, not {out.dtype}")
    if len(out) < 1:
        raise ValueError("isolate_migratepages_range: out must hold at least one offset")
    if end_pfn - start_pfn > 1 << 32:
        raise ValueError(f"isolate_migratepages_range: [{start_pfn:#x}, {end_pfn:#x}) "
                         "spans more than 2^32 pfns, more than uint32 offsets from "
                         "start_pfn hold")


def _folio_step(pfns, order):
    """Pages from each pfn to the end of its naturally aligned folio."""
    order = order.astype(np.int64)
    return (((pfns >> order) + 1) << order) - pfns


def _orbit(step):
    """Indices the walk i -> i + step[i] (every step >= 1) visits from i = 0, ascending;
    indices >= len(step) leave the range.

    Pointer doubling: with J = f^(2^k) and S = {f^i(0) : i < 2^k}, S | J(S) holds the
    first 2^(k+1) visits; once J(S) has left the range, so has everything after it.
    """
    n = step.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    jump = np.append(np.minimum(np.arange(n, dtype=np.int64) + step, n), n)
    seen = np.zeros(n + 1, dtype=bool)
    seen[0] = True
    visited = np.zeros(1, dtype=np.int64)
    while True:
        ahead = jump[visited]
        if (ahead == n).all():
            return visited
        seen[ahead] = True
        seen[n] = False
        visited = np.flatnonzero(seen)
        jump = jump[jump]


def _pageblock_migratetype(pageblock_flags, pbs):
    """get_pfnblock_migratetype() of pageblocks `pbs`: the isolate bit reads as ISOLATE."""
    f = pageblock_flags[pbs]
    return np.where((f & PB_migrate_isolate) != 0, MIGRATE_ISOLATE, f & MIGRATETYPE_MASK)


def _movable(mt):
    return (mt == MIGRATE_MOVABLE) | (mt == MIGRATE_CMA)


# ---------------------------------------------------------------------------------------
# the migrate scanner
# ---------------------------------------------------------------------------------------
def _migrate_kinds(mem_map, low, end, pageblock_order, cc_order, alloc_contig, v6_1):
    """Kind and step of every pfn of [low, end), the kernel's tests in order."""
    pages = mem_map[low:end]
    flags, ptype, order = pages["flags"], pages["page_type"], pages["order"].astype(np.int64)
    pfns = np.arange(low, end, dtype=np.int64)
    head = (flags & PG_head) != 0
    tail = (flags & PG_tail) != 0
    folio = _folio_step(pfns, order)
    vm = ptype == PGTY_VMEMMAP
    vm_step = np.zeros(pfns.shape, dtype=np.int64)
    if vm.any():
        # a run that ended before the page (corrupt): pass one, as the kernels do
        vm_step[vm] = np.maximum(vmemmap_nr_pages(mem_map, pfns[vm]), 1)
    too_big = (v6_1 | ((cc_order != -1) & (order >= cc_order))
               | (order >= pageblock_order))
    not_isolated = (flags & PG_isolated) == 0
    conditions = [vm,
                  ptype == PGTY_BUDDY,
                  tail,
                  head & (not alloc_contig) & too_big,
                  ~not_isolated,
                  (flags & PG_lru) != 0,
                  (flags & PG_movable) != 0]
    kind = np.select(conditions, [_VMEMMAP, _BUDDY, _FAIL, _SKIP, _FAIL, _LRU, _MOVABLE],
                     default=_FAIL)
    step = np.select(conditions,
                     [vm_step, np.left_shift(1, order), folio, folio, 1,
                      np.where(head, folio, 1), np.where(head, folio, 1)],
                     default=1)
    return kind.tolist(), step.tolist()


def isolate_migratepages_block(mem_map, pageblock_flags, low_pfn, end_pfn, pageblock_order,
                               ignore_skip_hint, out_pfns, cc_order, alloc_contig,
                               skip_on_failure, v6_1=False):
    """Twin of _compaction.isolate_migratepages_block (isolate_migratepages_block(),
    mm/compaction.c v6.9+, seed v3 vmemmap skip; `v6_1`: v6.1's rules, every
    compound page passed unless alloc_contig, and nr_scanned without the pages jumped
    over from a free block's or a passed folio's head). Returns (next_pfn,
    nr_isolated, nr_scanned); isolated heads in out_pfns[:nr_isolated] carry
    PG_isolated."""
    if out_pfns.shape[0] < 1:
        raise ValueError("isolate_migratepages_block: out_pfns must hold at least one pfn")
    return _isolate_block(mem_map, pageblock_flags, low_pfn, end_pfn, pageblock_order,
                          ignore_skip_hint, out_pfns, 0, cc_order, alloc_contig,
                          skip_on_failure, v6_1)


def _isolate_block(mem_map, pageblock_flags, low_pfn, end_pfn, pageblock_order,
                   ignore_skip_hint, out, base, cc_order, alloc_contig, skip_on_failure,
                   v6_1):
    # isolate_migratepages_block(), each isolated head recorded in `out` as pfn - base
    low, end = int(low_pfn), int(end_pfn)
    pbo, cc_order = int(pageblock_order), int(cc_order)
    capacity = out.shape[0]
    skip_on_failure = bool(skip_on_failure) and cc_order >= 0
    kind, step = (_migrate_kinds(mem_map, low, end, pbo, cc_order, bool(alloc_contig),
                                 bool(v6_1))
                  if end > low else ([], []))
    flags = mem_map["flags"]
    isolated = []
    scanned = 0
    valid = -1
    skip_updated = aborted = False
    next_skip = ((low >> cc_order) + 1) << cc_order if skip_on_failure else 0
    pfn = low                                   # the kernel's low_pfn, before its ++
    while pfn < end:
        if skip_on_failure and pfn >= next_skip:
            if isolated:
                break
            next_skip = ((pfn >> cc_order) + 1) << cc_order
        scanned += 1
        k, nr = kind[pfn - low], step[pfn - low]
        if k == _VMEMMAP:
            pfn += nr
            continue
        if valid < 0 and pfn & ((1 << pbo) - 1) == 0:
            if not ignore_skip_hint and pageblock_flags[pfn >> pbo] & PB_migrate_skip:
                pfn, aborted = end, True
                break
            valid = pfn
        if k == _BUDDY:
            if not v6_1:
                scanned += nr - 1
            pfn += nr
            continue
        if k == _LRU and valid >= 0 and not skip_updated:
            skip_updated = True
            if not ignore_skip_hint:
                if pageblock_flags[valid >> pbo] & PB_migrate_skip:
                    pfn, aborted = end, True
                    break
                if not alloc_contig:
                    pageblock_flags[valid >> pbo] |= PB_migrate_skip
        if k in (_LRU, _MOVABLE):
            out[len(isolated)] = pfn - base     # written as found, like the kernel's list
            isolated.append(pfn)
            flags[pfn] |= PG_isolated
            scanned += nr - 1
            pfn += nr
            if len(isolated) >= capacity:
                break
            continue
        if not (v6_1 and k == _SKIP):
            scanned += nr - 1
        pfn += nr - 1
        if skip_on_failure:
            for head in isolated:               # putback_movable_pages()
                flags[head] &= ~np.uint32(PG_isolated)
            isolated = []
            if pfn < next_skip:
                pfn = next_skip - 1
                next_skip += 1 << cc_order
        pfn += 1
    if not aborted:
        pfn = min(pfn, end)
        if pfn == end and not isolated and not alloc_contig and valid >= 0 and not skip_updated:
            pageblock_flags[valid >> pbo] |= PB_migrate_skip
    return pfn, len(isolated), scanned


def isolate_migratepages_range(mem_map, pageblock_flags, start_pfn, end_pfn, pageblock_order,
                               zone_bits, ignore_skip_hint, alloc_contig, out):
    """Twin of _compaction.isolate_migratepages_range (isolate_migratepages_range()):
    the block scanner per pageblock in the zone `zone_bits`, until `out` (uint32
    offsets from start_pfn) is full. Returns (next_pfn, nr_isolated, nr_scanned)."""
    check_range_out(start_pfn, end_pfn, out)
    start, end, pbo = int(start_pfn), int(end_pfn), int(pageblock_order)
    flags = mem_map["flags"]
    total = scanned = 0
    pfn = start
    while pfn < end:
        block_start = max((pfn >> pbo) << pbo, start)
        block_end = min(((pfn >> pbo) + 1) << pbo, end)
        if (int(flags[block_start]) & _ZMASK != zone_bits
                or int(flags[block_end - 1]) & _ZMASK != zone_bits):
            pfn = block_end
            continue
        pfn, n, s = _isolate_block(mem_map, pageblock_flags, pfn, block_end, pbo,
                                   ignore_skip_hint, out[total:], start, -1, alloc_contig,
                                   False, False)
        total += n
        scanned += s
        if total >= out.shape[0]:
            break
        pfn = block_end
    return pfn, total, scanned


# ---------------------------------------------------------------------------------------
# the free scanner
# ---------------------------------------------------------------------------------------
def target_free_order(cc_order, pageblock_order):
    """suitable_migration_target() v6.9+ ("mm: compaction: limit the suitable target
    page order to be less than cc->order"): the order of a free block at a pageblock's
    first page from which the pageblock is no target: cc->order when > 0, else
    pageblock_order (v6.1: pageblock_order always)."""
    return int(cc_order) if cc_order > 0 else int(pageblock_order)


def _unsuitable_blocks(mem_map, pageblock_flags, first_pb, last_pb, pbo, cc_order):
    """suitable_migration_target() is False, per pageblock first_pb..last_pb."""
    pbs = np.arange(first_pb, last_pb + 1, dtype=np.int64)
    heads = mem_map[pbs << pbo]
    big_free = ((heads["page_type"] == PGTY_BUDDY)
                & (heads["order"] >= target_free_order(cc_order, pbo)))
    return big_free | ~_movable(_pageblock_migratetype(pageblock_flags, pbs))


def isolate_freepages_block(mem_map, pageblock_flags, start_pfn, end_pfn, strict, out_pfns,
                            out_orders, max_blocks, pageblock_order, cc_order=-1, v6_1=False,
                            stride=1):
    """Twin of _compaction.isolate_freepages_block (isolate_freepages_block(), v6.9+;
    `v6_1`: v6.1's nr_scanned, a compound page counted by its head alone; `stride`:
    isolate_freepages()'s sampling, every stride-th pfn visited after each jump,
    non-strict only).

    Returns (nr_isolated_pages, nr_scanned, fail_pfn, nr_blocks); the free blocks found
    are in out_pfns/out_orders[:nr_blocks]. The scan follows the walk chunk by chunk: in
    each chunk the visited pfns come from `_orbit`, then the first event that ends the
    scan (a strict failure, a full out array) cuts them.
    """
    check_out_dtypes(out_pfns, out_orders)
    max_blocks = int(max_blocks)
    if max_blocks < 0 or max_blocks > out_pfns.shape[0] or max_blocks > out_orders.shape[0]:
        raise ValueError(f"isolate_freepages_block: max_blocks={max_blocks} does not fit "
                         f"out arrays of {out_pfns.shape[0]} and {out_orders.shape[0]}")
    start, end, pbo = int(start_pfn), int(end_pfn), int(pageblock_order)
    strict = bool(strict)
    stride = 1 if strict else max(1, int(stride))
    n = total = scanned = 0
    fail = -1
    pfn = start
    while pfn < end:
        # chunk [pfn, stop): whole pageblocks after the first, so unsuitable jumps stay in
        stop = min(end, (((pfn >> pbo) << pbo) + CHUNK))
        pages = mem_map[pfn:stop]
        flags, ptype = pages["flags"], pages["page_type"]
        order = pages["order"].astype(np.int64)
        pfns = np.arange(pfn, stop, dtype=np.int64)
        compound = (flags & (PG_head | PG_tail)) != 0
        buddy = ~compound & (ptype == PGTY_BUDDY)
        # a folio is jumped from its head only (compound_order() of a tail is 0), in
        # v6.12 only when it ends within end_pfn ("blockpfn + (1UL << order) <= end_pfn")
        head = compound & ((flags & PG_head) != 0)
        folio = _folio_step(pfns, order)
        jump = head if v6_1 else head & (pfns + folio <= end)
        step = np.select([jump, buddy], [folio, np.left_shift(1, order)], default=1)
        # what each visit counts: v6.1 jumps from a compound head uncounted
        count = np.where(jump, 1, step) if v6_1 else step
        if stride > 1:                  # past the jump's last page, then stride on
            step = step - 1 + stride
        skipped = np.zeros(pfns.shape, dtype=bool)
        if not strict:
            bad = _unsuitable_blocks(mem_map, pageblock_flags, pfn >> pbo, (stop - 1) >> pbo, pbo,
                                     cc_order)
            skipped = bad[(pfns >> pbo) - (pfn >> pbo)]
            step = np.where(skipped, (((pfns >> pbo) + 1) << pbo) - pfns, step)
        at = _orbit(step)
        # events along the walk: where it records a block, where it would fail
        is_buddy = buddy[at] & ~skipped[at]
        rank = n + np.cumsum(is_buddy) - 1              # index of each block in out_pfns
        if strict:
            failing = (~buddy[at]) | (is_buddy & (rank >= max_blocks))
        else:
            failing = is_buddy & (rank >= max_blocks)   # no room: stop, fail_pfn stays -1
        fails = np.flatnonzero(failing)
        enough = (np.flatnonzero(is_buddy & (rank == max_blocks - 1)) if not strict
                  else fails[:0])
        cut, stopped = at.size, False
        if enough.size and (not fails.size or enough[0] < fails[0]):
            cut, stopped = int(enough[0]) + 1, True         # non-strict: enough blocks
        elif fails.size:
            cut, stopped = int(fails[0]), True
            # the failing pfn counts as scanned: a compound page whole, else one page
            here = int(at[cut])
            scanned += int(count[here]) if compound[here] else 1
            if strict:
                fail = pfn + here
        taken = at[:cut]
        counted = taken[~skipped[taken]]
        scanned += int(count[counted].sum())
        heads = taken[buddy[taken] & ~skipped[taken]]
        k = heads.size
        out_pfns[n:n + k] = pfn + heads
        out_orders[n:n + k] = order[heads]
        total += int((np.int64(1) << order[heads]).sum())
        n += k
        if stopped:
            break
        pfn += int(at[-1] + step[at[-1]])
    return total, scanned, fail, n


# ---------------------------------------------------------------------------------------
# per-pageblock rules
# ---------------------------------------------------------------------------------------
def suitable_migration_target(mem_map, pageblock_flags, pfn, pageblock_order,
                              ignore_block_suitable, cc_order=-1):
    """Twin of _compaction.suitable_migration_target (suitable_migration_target())."""
    pfn, pbo = int(pfn), int(pageblock_order)
    page = mem_map[pfn]
    if page["page_type"] == PGTY_BUDDY and page["order"] >= target_free_order(cc_order, pbo):
        return False
    if ignore_block_suitable:
        return True
    return bool(_movable(_pageblock_migratetype(pageblock_flags, pfn >> pbo)))


def suitable_migration_source(mem_map, pageblock_flags, pfn, pageblock_order, async_direct):
    """Twin of _compaction.suitable_migration_source (suitable_migration_source(),
    pageblock_skip_persistent())."""
    pfn, pbo = int(pfn), int(pageblock_order)
    page = mem_map[pfn]
    if page["flags"] & (PG_head | PG_tail) and page["order"] >= pbo:
        return False
    if not async_direct:
        return True
    return bool(_movable(_pageblock_migratetype(pageblock_flags, pfn >> pbo)))


# ---------------------------------------------------------------------------------------
# contiguous allocation
# ---------------------------------------------------------------------------------------
def pfn_range_valid_contig(mem_map, start_pfn, end_pfn, zone_bits):
    """Twin of _compaction.pfn_range_valid_contig (pfn_range_valid_contig()): the first
    pfn in another zone, PageReserved, or a compound page on neither the LRU nor
    __PageMovable (PageHuge); -1 when there is none. Chunked."""
    start, end = int(start_pfn), int(end_pfn)
    for a in range(start, end, CHUNK):
        f = mem_map["flags"][a:min(end, a + CHUNK)]
        bad = (((f & _ZMASK) != zone_bits) | ((f & PG_reserved) != 0)
               | (((f & (PG_head | PG_tail)) != 0) & ((f & (PG_lru | PG_movable)) == 0)))
        if bad.any():
            return a + int(np.argmax(bad))
    return -1


# ---------------------------------------------------------------------------------------
# migration
# ---------------------------------------------------------------------------------------
def migrate_folio(mem_map, src, dst):
    """Twin of _compaction.migrate_folio (migrate_folio()): the folio at `src` moves its
    flags (without PG_isolated), order, refcount and owner to `dst`. Returns its pages."""
    src, dst = int(src), int(dst)
    head = mem_map[src]
    nr = 1 << int(head["order"]) if head["flags"] & PG_head else 1
    s, d = mem_map[src:src + nr], mem_map[dst:dst + nr]
    d["flags"] = (d["flags"] & np.uint32(_ZMASK)) | (s["flags"] & np.uint32(FLAGS_MASK & ~PG_isolated))
    d["page_type"] = PGTY_NONE
    d["order"] = s["order"]
    d["refcount"] = s["refcount"]
    d["private"] = s["private"]
    return nr


# ---------------------------------------------------------------------------------------
# compact_zone(): the whole run
# ---------------------------------------------------------------------------------------
def folio_order(mem_map, head):
    """The order of the folio headed at `head` (0 for a page that is not compound)."""
    page = mem_map[head]
    return int(page["order"]) if page["flags"] & PG_head else 0


class _CompactControl:
    """struct compact_control (mm/internal.h) for one whole-zone run, over the scanner
    functions of a backend module `k`. Invariant: the run ends when the free scanner
    meets the migrate scanner (compact_scanners_met()). `large_folios`: v6.9+ ("mm:
    compaction: add support for >0 order folio memory compaction"); else v6.1's rules
    (only order-0 pages isolated, one list of order-0 free pages, the target rule
    without cc->order)."""

    def __init__(self, k, free_area, mem_map, pageblock_flags, valid, start, end, order,
                 pbo, ignore_skip_hint, async_direct, large_folios=True, async_mode=False):
        self.k, self.fa, self.mm, self.pbf, self.valid = k, free_area, mem_map, pageblock_flags, valid
        self.order, self.pbo, self.pb = order, pbo, 1 << pbo
        self.nr_orders = free_area.nr_orders
        self.ignore_skip_hint, self.async_direct = bool(ignore_skip_hint), bool(async_direct)
        self.start, self.end = start, end
        self.pb0 = start >> pbo
        self.migrate_pfn = start
        self.free_pfn = ((end - 1) >> pbo) << pbo
        # cc->freepages[order], a list the kernel reads from its head: the blocks the free
        # scanner isolated join at the tail (list_add_tail() in isolate_freepages_block()),
        # the halves compaction_alloc() splits off at the head (list_add()). Kept as the
        # head's stack of halves, then the queue of isolated blocks.
        self.halves = [[] for _ in range(self.nr_orders)]
        self.isolated = [collections.deque() for _ in range(self.nr_orders)]
        # v6.1: cc->freepages is one list of order-0 pages, its head at the end here;
        # batch_pages is its cc->nr_migratepages, the pages of the whole batch
        self.large_folios = bool(large_folios)
        self.async_mode = bool(async_mode or async_direct)     # MIGRATE_ASYNC
        self.pages = []
        self.batch_pages = 0
        self.nr_freepages = 0
        self.migratepages = []
        self.migrate_scanned = self.free_scanned = 0
        self.migrated_pages = self.migrated_folios = 0
        self.out = np.empty(COMPACT_CLUSTER_MAX, dtype=np.int64)
        self.free_out = np.empty(self.pb, dtype=np.int64)
        self.free_orders = np.empty(self.pb, dtype=np.uint8)

    def scanners_met(self):
        return (self.free_pfn >> self.pbo) <= (self.migrate_pfn >> self.pbo)

    def finished(self):
        """__compact_finished(): "complete" when the scanners met, "success" when a free
        block of the requested order is there for a MOVABLE allocation, else None."""
        if self.scanners_met():
            return "complete"
        if self.order < 0 or self.migrate_pfn % self.pb:
            return None
        counts = self.fa.counts()
        for o in range(self.order, self.nr_orders):
            if counts[MIGRATE_MOVABLE][o] or counts[MIGRATE_CMA][o]:
                return "success"
            # find_suitable_fallback(): MOVABLE steals from UNMOVABLE/RECLAIMABLE blocks
            # of at least pageblock_order / 2 (can_steal_fallback())
            if o >= self.pbo // 2 and (counts[MIGRATE_UNMOVABLE][o]
                                       or counts[MIGRATE_RECLAIMABLE][o]):
                return "success"
        return None

    def block_valid(self, pfn):
        return bool(self.valid[(pfn >> self.pbo) - self.pb0])

    def isolate_migratepages(self):
        """isolate_migratepages(): one batch from the first suitable pageblock."""
        low = self.migrate_pfn
        block_start = max((low >> self.pbo) << self.pbo, self.start)
        block_end = ((low >> self.pbo) + 1) << self.pbo
        while block_end <= self.free_pfn:
            if (self.block_valid(block_start)
                    and not (low % self.pb == 0 and not self.ignore_skip_hint
                             and self.pbf[low >> self.pbo] & PB_migrate_skip)
                    and self.k.suitable_migration_source(self.mm, self.pbf, block_start,
                                                         self.pbo, self.async_direct)):
                nxt, n, scanned = self.k.isolate_migratepages_block(
                    self.mm, self.pbf, low, block_end, self.pbo, self.ignore_skip_hint,
                    self.out, self.order, False, self.async_direct, not self.large_folios)
                self.migrate_scanned += scanned
                self.migratepages = self.out[:n].tolist()
                self.batch_pages = n                    # order-0 pages alone before v6.9
                self.migrate_pfn = nxt
                return
            low = self.migrate_pfn = block_start = block_end
            block_end += self.pb

    def isolate_freepages(self):
        """isolate_freepages(): free blocks of pageblocks down from free_pfn, which may
        lie inside a pageblock (where the last call stopped). isolate_freepages_block()
        stops right after the block that makes nr_freepages cover the folios still to
        migrate ("cc->nr_migratepages <= cc->nr_freepages"): the scan's count ends there,
        the next call starts there, and the pageblock gets its skip bit only once it was
        scanned to its end (update_pageblock_skip()).

        Before v6.9: the stop compares with the whole batch, the target rule ignores
        cc->order, and the isolated blocks become order-0 pages (split_map_pages():
        list_add() of each page, block after block).

        Sampling (v5.1+): every stride-th pfn is visited, stride 1 (COMPACT_CLUSTER_MAX
        when async) at the start, 1 after a pageblock that yields a block, doubled (at
        most COMPACT_CLUSTER_MAX) after one that yields none."""
        if self.nr_freepages:
            # "if (cc->nr_freepages) return;" (v6.12; v6.1 "goto splitmap"), meant for
            # what fast_isolate_freepages() found: since v6.9 also blocks on the lists
            # too small for the folio, which then gets no target from this call
            return
        if self.large_folios:
            need = sum(1 << folio_order(self.mm, h) for h in self.migratepages)
        else:
            need = self.batch_pages
        tfo_order = self.order if self.large_folios else -1
        stride = COMPACT_CLUSTER_MAX if self.async_mode else 1
        low = ((self.migrate_pfn >> self.pbo) + 1) << self.pbo
        isolate_start = self.free_pfn
        block_start = (isolate_start >> self.pbo) << self.pbo
        while block_start >= low:
            pb_index = block_start >> self.pbo
            if (self.block_valid(block_start)
                    and self.k.suitable_migration_target(self.mm, self.pbf, block_start,
                                                         self.pbo, False, tfo_order)
                    and (self.ignore_skip_hint
                         or not self.pbf[pb_index] & PB_migrate_skip)):
                block_end = min(block_start + self.pb, self.end)
                # every block holds a page: the stop comes within need - nr_freepages
                # blocks (within the first one when there are enough already)
                if self.large_folios and stride == 1:
                    room = min(self.pb, max(1, need - self.nr_freepages))
                    _, scanned, _, nb = self.k.isolate_freepages_block(
                        self.mm, self.pbf, isolate_start, block_end, False, self.free_out,
                        self.free_orders, room, self.pbo, tfo_order)
                    found = list(zip(self.free_out[:nb].tolist(), self.free_orders[:nb].tolist()))
                else:
                    scanned, found = self._scan_block_by_block(isolate_start, block_end, need,
                                                               stride, tfo_order)
                stop = block_end
                for pfn, o in found:
                    self.fa.py_remove(pfn)                      # __isolate_free_page()
                    if self.large_folios:
                        self.isolated[o].append(pfn)
                    else:                                       # split_map_pages()
                        self.pages.extend(range(pfn, pfn + (1 << o)))
                    self.nr_freepages += 1 << o
                    if self.nr_freepages >= need:               # the kernel's scan ends here
                        stop = pfn + (1 << o)
                        if self.large_folios and stride == 1:   # every pfn passed counted once
                            scanned = stop - isolate_start
                        break
                self.free_scanned += scanned
                if stop >= block_end:
                    self.pbf[pb_index] |= PB_migrate_skip      # update_pageblock_skip()
                if self.nr_freepages >= need:
                    self.free_pfn = block_start - self.pb if stop >= block_end else stop
                    return
                stride = 1 if found else min(COMPACT_CLUSTER_MAX, 2 * stride)
            block_start -= self.pb
            isolate_start = block_start
        self.free_pfn = block_start

    def _scan_block_by_block(self, pos, end, need, stride, tfo_order):
        """v6.1's count, and a stride's, are of the pages visited, not the pfns passed:
        one block per scanner call, so that the count of the call that finds the last
        block needed ends there; the next visit is `stride` after the block's last page.
        Returns (nr_scanned, [(pfn, order) of the blocks found])."""
        scanned, found, got = 0, [], self.nr_freepages
        # enough is tested after each block isolated, as the kernel does
        while pos < end:
            _, s, _, n = self.k.isolate_freepages_block(
                self.mm, self.pbf, pos, end, False, self.free_out, self.free_orders, 1,
                self.pbo, tfo_order, not self.large_folios, stride)
            scanned += s
            if not n:
                break
            pfn, o = int(self.free_out[0]), int(self.free_orders[0])
            found.append((pfn, o))
            got += 1 << o
            if got >= need:
                break
            pos = pfn + (1 << o) - 1 + stride
        return scanned, found

    def compaction_alloc(self, order):
        """compaction_alloc() (v6.9+): the first block of the smallest nonempty
        cc->freepages[] list of at least `order` (list_first_entry()), its upper halves
        put at the heads of the lists below; one free scan per call when none is there.
        v6.1: the head of the one list of order-0 pages, refilled when empty."""
        if not self.large_folios:
            if not self.pages:
                self.isolate_freepages()
            if not self.pages:
                return None
            self.nr_freepages -= 1
            return self.pages.pop()
        for attempt in range(2):
            for o in range(order, self.nr_orders):
                if self.halves[o] or self.isolated[o]:          # list_first_entry()
                    pfn = self.halves[o].pop() if self.halves[o] else self.isolated[o].popleft()
                    while o > order:                            # split, halves at the head
                        o -= 1
                        self.halves[o].append(pfn + (1 << o))
                    self.nr_freepages -= 1 << order
                    return pfn
            if attempt == 0:
                self.isolate_freepages()
        return None

    def putback(self):
        putback(self.mm, self.migratepages)
        self.migratepages = []

    def migrate_pages(self):
        """migrate_pages() of the isolated batch into compaction_alloc() targets. Returns
        False on -ENOMEM (no target left); a large LRU folio without a target is split
        and its pages retried (try_split_folio())."""
        while self.migratepages:
            head = self.migratepages[0]
            order = folio_order(self.mm, head)
            dst = self.compaction_alloc(order)
            if dst is None and splittable(self.mm, head, order):
                self.migratepages[0:1] = split_folio(self.mm, head, order)
                continue
            if dst is None:
                self.putback()
                return False
            self.migratepages.pop(0)
            self.k.migrate_folio(self.mm, head, dst)
            self.fa.free_bulk(np.array([head], dtype=np.int64))
            self.migrated_pages += 1 << order
            self.migrated_folios += 1
        return True

    def release(self):
        """release_free_list() and putback: what is still isolated goes back, order by
        order in list order, through __free_pages() (the pcp lists for their orders)."""
        self.putback()
        for pfn in self.pages[::-1]:                # v6.1 release_freepages(): __free_page()
            self.mm[pfn]["order"] = 0               # split_page(): a tail may hold an old order
            self.fa.free_bulk(np.array([pfn], dtype=np.int64))
        self.pages.clear()
        for o in range(self.nr_orders):
            pfns = self.halves[o][::-1] + list(self.isolated[o])
            for pfn in pfns:
                self.mm[pfn]["order"] = o                       # set_page_private()
                self.fa.free_bulk(np.array([pfn], dtype=np.int64))
            self.halves[o].clear()
            self.isolated[o].clear()
        self.nr_freepages = 0

    def run(self):
        """compact_zone()'s loop: one isolated batch, then its migration, until finished."""
        try:
            while (result := self.finished()) is None:
                self.isolate_migratepages()
                if self.migratepages and not self.migrate_pages() and not self.scanners_met():
                    result = "contended"                       # -ENOMEM: no target left
                    break
        finally:
            self.release()
        return (result, self.migrate_scanned, self.free_scanned, self.migrated_pages,
                self.migrated_folios)


def _check_compact_args(free_area, mem_map, valid, zone_start_pfn, zone_end_pfn, order,
                        pageblock_order):
    nr_orders = free_area.nr_orders
    if not -1 <= order < nr_orders:
        raise ValueError(f"compact_zone_run: order={order} outside -1..{nr_orders - 1}")
    pb0 = zone_start_pfn >> pageblock_order
    if (zone_end_pfn <= zone_start_pfn or zone_end_pfn > mem_map.shape[0]
            or valid.shape[0] != ((zone_end_pfn - 1) >> pageblock_order) - pb0 + 1):
        raise ValueError(f"compact_zone_run: zone [{zone_start_pfn:#x}, {zone_end_pfn:#x}) "
                         f"does not match mem_map ({mem_map.shape[0]} pages) and valid "
                         f"({valid.shape[0]} pageblocks)")


def run_compact_zone(k, free_area, mem_map, pageblock_flags, valid, zone_start_pfn,
                     zone_end_pfn, order, pageblock_order, ignore_skip_hint, async_direct,
                     large_folios=True, async_mode=False):
    """compact_zone_run() over the scanner functions of backend module `k`."""
    _check_compact_args(free_area, mem_map, valid, zone_start_pfn, zone_end_pfn, order,
                        pageblock_order)
    return _CompactControl(k, free_area, mem_map, pageblock_flags, valid, int(zone_start_pfn),
                           int(zone_end_pfn), int(order), int(pageblock_order),
                           ignore_skip_hint, async_direct, large_folios, async_mode).run()


def compact_zone_run(free_area, mem_map, pageblock_flags, valid, zone_start_pfn, zone_end_pfn,
                     order, pageblock_order, ignore_skip_hint, async_direct, large_folios=True,
                     async_mode=False):
    """Twin of _compaction.compact_zone_run (compact_zone()): the same run, one Python
    step per batch and per folio over this module's scanners, the free lists changed
    through the FreeArea's Python face. Returns (result, migrate_scanned, free_scanned,
    migrated_pages, migrated_folios)."""
    return run_compact_zone(sys.modules[__name__], free_area, mem_map, pageblock_flags, valid,
                            zone_start_pfn, zone_end_pfn, order, pageblock_order,
                            ignore_skip_hint, async_direct, large_folios, async_mode)
