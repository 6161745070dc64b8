"""numba twins of the compaction kernels in pagecore/kernels/compaction.pyx.

Same functions, parameters, return values and writes as `pagecore.kernels.compaction` (and
`pagecore.kernels.compaction_numpy`); tests/test_compaction.py holds the three to that. Each
public function is a thin wrapper around an `@njit(cache=True, nogil=True)` loop over the
mem_map viewed as PAGE_UNION_DTYPE (numba reads the v3 vmemmap arm directly). The loops
are line-for-line ports of the Cython ones; all arithmetic is int64 (numba turns uint64
mixed with int64 into float64).

Importing this module imports numba; pagecore imports it only when the "numba" backend is
asked for (pagecore.compaction.get_compaction_backend).
"""
import sys

import numpy as np
from numba import njit

from pagecore.kernels.page import (FLAGS_MASK, MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE,
                            MIGRATETYPE_MASK, PAGE_UNION_DTYPE, PB_migrate_isolate,
                            PB_migrate_skip, PG_head, PG_isolated, PG_lru, PG_movable,
                            PG_reserved, PG_tail, PGTY_BUDDY, PGTY_NONE, PGTY_VMEMMAP)

__all__ = ["isolate_migratepages_block", "isolate_migratepages_range",
           "isolate_freepages_block", "suitable_migration_target",
           "suitable_migration_source", "pfn_range_valid_contig", "migrate_folio",
           "compact_zone_run"]

_PG_head, _PG_tail, _PG_folio = int(PG_head), int(PG_tail), int(PG_head | PG_tail)
_PG_lru, _PG_movable, _PG_lru_movable = int(PG_lru), int(PG_movable), int(PG_lru | PG_movable)
_PG_reserved, _PG_isolated = int(PG_reserved), int(PG_isolated)
_PGTY_NONE, _PGTY_BUDDY, _PGTY_VMEMMAP = int(PGTY_NONE), int(PGTY_BUDDY), int(PGTY_VMEMMAP)
_PB_skip, _PB_isolate = int(PB_migrate_skip), int(PB_migrate_isolate)
_MT_MASK, _MT_MOVABLE, _MT_CMA = int(MIGRATETYPE_MASK), int(MIGRATE_MOVABLE), int(MIGRATE_CMA)
_MT_ISOLATE = int(MIGRATE_ISOLATE)
_FLAGS_MASK = int(FLAGS_MASK)
_ZMASK = ~int(FLAGS_MASK) & 0xFFFFFFFF


from pagecore.kernels.hotplug_numba import folio_end, vmemmap_nr_pages  # noqa: E402  (shared with the page kernels)
from pagecore.kernels.compaction_numpy import (  # noqa: E402
    check_out_dtypes, check_range_out, run_compact_zone, target_free_order)


def _union(mem_map):
    return mem_map.view(PAGE_UNION_DTYPE)


@njit(cache=True, nogil=True, inline="always")
def _movable_block(pbf, pfn, pbo):
    f = np.int64(pbf[pfn >> pbo])
    mt = _MT_ISOLATE if f & _PB_isolate else f & _MT_MASK
    return mt == _MT_MOVABLE or mt == _MT_CMA


@njit(cache=True, nogil=True, inline="always")
def _suitable_target(mm, pbf, pfn, pbo, ignore_block_suitable, free_order):
    # free_order: target_free_order() of the request (compaction_numpy.py)
    p = mm[pfn]
    if p.page_type == _PGTY_BUDDY and np.int64(p.order) >= free_order:
        return False
    if ignore_block_suitable:
        return True
    return _movable_block(pbf, pfn, pbo)


@njit(cache=True, nogil=True, inline="always")
def _suitable_source(mm, pbf, pfn, pbo, async_direct):
    p = mm[pfn]
    if (p.flags & _PG_folio) and np.int64(p.order) >= pbo:
        return False
    if not async_direct:
        return True
    return _movable_block(pbf, pfn, pbo)


@njit(cache=True, nogil=True)
def _isolate_migratepages_block(mm, pbf, low_pfn, end_pfn, pbo, ignore_skip_hint, out,
                                out_start, base, capacity, cc_order, alloc_contig,
                                skip_on_failure, v6_1):
    # each isolated head is recorded as pfn - base: pfns (base 0) or the range's offsets
    n = 0
    scanned = 0
    valid = np.int64(-1)
    next_skip = np.int64(0)
    pb_mask = (np.int64(1) << pbo) - 1
    skip_updated = False
    aborted = False
    if cc_order < 0:
        skip_on_failure = False
    if skip_on_failure:
        next_skip = ((low_pfn >> cc_order) + 1) << cc_order
    while low_pfn < end_pfn:
        if skip_on_failure and low_pfn >= next_skip:
            if n:
                break
            next_skip = ((low_pfn >> cc_order) + 1) << cc_order
        scanned += 1
        p = mm[low_pfn]
        if p.page_type == _PGTY_VMEMMAP:
            nr = vmemmap_nr_pages(mm, low_pfn)
            low_pfn += nr if nr > 0 else 1          # a run that ended before it: pass one
            continue
        if valid < 0 and (low_pfn & pb_mask) == 0:
            if not ignore_skip_hint and (pbf[low_pfn >> pbo] & _PB_skip):
                low_pfn = end_pfn
                aborted = True
                break
            valid = low_pfn
        order = np.int64(p.order)
        if p.page_type == _PGTY_BUDDY:
            if not v6_1:                            # v6.1 jumps it uncounted
                scanned += (np.int64(1) << order) - 1
            low_pfn += np.int64(1) << order
            continue
        flags = np.int64(p.flags)
        failed = True
        silent = False
        nr = np.int64(1)
        if flags & _PG_tail:
            nr = folio_end(order, low_pfn) - low_pfn
        elif ((flags & _PG_head) and not alloc_contig
              and (v6_1 or (cc_order != -1 and order >= cc_order) or order >= pbo)):
            nr = folio_end(order, low_pfn) - low_pfn
            silent = v6_1                           # v6.1 passes it uncounted
        elif flags & _PG_isolated:
            pass
        elif flags & _PG_lru:
            if valid >= 0 and not skip_updated:
                skip_updated = True
                if not ignore_skip_hint:
                    if pbf[valid >> pbo] & _PB_skip:
                        low_pfn = end_pfn
                        aborted = True
                        break
                    if not alloc_contig:
                        pbf[valid >> pbo] = np.uint8(pbf[valid >> pbo] | _PB_skip)
            failed = False
        elif flags & _PG_movable:
            failed = False
        if not failed:
            nr = folio_end(order, low_pfn) - low_pfn if flags & _PG_head else np.int64(1)
            out[out_start + n] = low_pfn - base
            n += 1
            mm[low_pfn].flags = np.uint32(flags | _PG_isolated)
            scanned += nr - 1
            low_pfn += nr
            if n >= capacity:
                break
            continue
        if not silent:
            scanned += nr - 1
        low_pfn += nr - 1
        if skip_on_failure:
            if n:
                for i in range(n):
                    h = base + np.int64(out[out_start + i])
                    mm[h].flags = np.uint32(np.int64(mm[h].flags) & ~_PG_isolated)
                n = 0
            if low_pfn < next_skip:
                low_pfn = next_skip - 1
                next_skip += np.int64(1) << cc_order
        low_pfn += 1
    if not aborted:
        if low_pfn > end_pfn:
            low_pfn = end_pfn
        if (low_pfn == end_pfn and n == 0 and not alloc_contig and valid >= 0
                and not skip_updated):
            pbf[valid >> pbo] = np.uint8(pbf[valid >> pbo] | _PB_skip)
    return low_pfn, n, scanned


@njit(cache=True, nogil=True)
def _isolate_migratepages_range(mm, pbf, start_pfn, end_pfn, pbo, zone_bits,
                                ignore_skip_hint, alloc_contig, out):
    total = 0
    scanned = 0
    capacity = out.shape[0]
    pfn = start_pfn
    while pfn < end_pfn:
        block_start = max((pfn >> pbo) << pbo, start_pfn)
        block_end = min(((pfn >> pbo) + 1) << pbo, end_pfn)
        if ((np.int64(mm[block_start].flags) & _ZMASK) != zone_bits
                or (np.int64(mm[block_end - 1].flags) & _ZMASK) != zone_bits):
            pfn = block_end
            continue
        pfn, n, s = _isolate_migratepages_block(mm, pbf, pfn, block_end, pbo,
                                                ignore_skip_hint, out, total, start_pfn,
                                                capacity - total, np.int64(-1),
                                                alloc_contig, False, False)
        total += n
        scanned += s
        if total >= capacity:
            break
        pfn = block_end
    return pfn, total, scanned


@njit(cache=True, nogil=True)
def _isolate_freepages_block(mm, pbf, start_pfn, end_pfn, strict, out_pfns, out_orders,
                             max_blocks, pbo, free_order, v6_1, stride):
    blockpfn = start_pfn
    pb_end = np.int64(-1)
    n = 0
    scanned = 0
    total = 0
    fail = np.int64(-1)
    while blockpfn < end_pfn:
        if not strict and blockpfn >= pb_end:
            pb_end = ((blockpfn >> pbo) + 1) << pbo
            if not _suitable_target(mm, pbf, pb_end - (np.int64(1) << pbo), pbo, False,
                                    free_order):
                blockpfn = pb_end
                continue
        scanned += 1
        here = blockpfn
        p = mm[blockpfn]
        order = np.int64(p.order)
        if p.flags & _PG_folio:
            if p.flags & _PG_head:                  # a tail: compound_order() 0
                k = folio_end(order, blockpfn) - blockpfn
                if v6_1:                            # v6.1: the head alone counts
                    blockpfn += k - 1
                elif blockpfn + k <= end_pfn:       # v6.12: a folio within end_pfn
                    scanned += k - 1
                    blockpfn += k - 1
        elif p.page_type == _PGTY_BUDDY:
            if n >= max_blocks:
                if strict:
                    fail = blockpfn
                break
            out_pfns[n] = blockpfn
            out_orders[n] = order
            n += 1
            total += np.int64(1) << order
            scanned += (np.int64(1) << order) - 1
            if not strict and n >= max_blocks:
                blockpfn += np.int64(1) << order
                break
            blockpfn += (np.int64(1) << order) - 1 + stride
            continue
        if strict:
            fail = here
            break
        blockpfn += stride
    return total, scanned, fail, n


@njit(cache=True, nogil=True)
def _pfn_range_valid_contig(mm, start_pfn, end_pfn, zone_bits):
    for pfn in range(start_pfn, end_pfn):
        f = np.int64(mm[pfn].flags)
        if (f & _ZMASK) != zone_bits:
            return pfn
        if f & _PG_reserved:
            return pfn
        if (f & _PG_folio) and not (f & _PG_lru_movable):
            return pfn
    return np.int64(-1)


@njit(cache=True, nogil=True)
def _migrate_folio(mm, src, dst):
    head = mm[src]
    nr = (np.int64(1) << np.int64(head.order)) if head.flags & _PG_head else np.int64(1)
    for i in range(nr):
        s = mm[src + i]
        d = mm[dst + i]
        d.flags = np.uint32((np.int64(d.flags) & _ZMASK)
                            | (np.int64(s.flags) & _FLAGS_MASK & ~_PG_isolated))
        d.page_type = _PGTY_NONE
        d.order = s.order
        d.refcount = s.refcount
        d.private = s.private
    return nr


# ---------------------------------------------------------------------------------------
# the backend's functions: signatures of pagecore.kernels.compaction
# ---------------------------------------------------------------------------------------
def isolate_migratepages_block(mem_map, pageblock_flags, low_pfn, end_pfn, pageblock_order,
                               ignore_skip_hint, out_pfns, cc_order, alloc_contig,
                               skip_on_failure, v6_1=False):
    """numba twin of _compaction.isolate_migratepages_block. Returns (next_pfn,
    nr_isolated, nr_scanned)."""
    if out_pfns.shape[0] < 1:
        raise ValueError("isolate_migratepages_block: out_pfns must hold at least one pfn")
    r = _isolate_migratepages_block(_union(mem_map), pageblock_flags, np.int64(low_pfn),
                                    np.int64(end_pfn), np.int64(pageblock_order),
                                    bool(ignore_skip_hint), out_pfns, np.int64(0),
                                    np.int64(0), np.int64(out_pfns.shape[0]),
                                    np.int64(cc_order),
                                    bool(alloc_contig), bool(skip_on_failure),
                                    bool(v6_1))
    return tuple(int(x) for x in r)


def isolate_migratepages_range(mem_map, pageblock_flags, start_pfn, end_pfn, pageblock_order,
                               zone_bits, ignore_skip_hint, alloc_contig, out):
    """numba twin of _compaction.isolate_migratepages_range (`out`: uint32 offsets from
    start_pfn). Returns (next_pfn, nr_isolated, nr_scanned)."""
    check_range_out(start_pfn, end_pfn, out)
    r = _isolate_migratepages_range(_union(mem_map), pageblock_flags, np.int64(start_pfn),
                                    np.int64(end_pfn), np.int64(pageblock_order),
                                    np.int64(zone_bits), bool(ignore_skip_hint),
                                    bool(alloc_contig), out)
    return tuple(int(x) for x in r)


def isolate_freepages_block(mem_map, pageblock_flags, start_pfn, end_pfn, strict, out_pfns,
                            out_orders, max_blocks, pageblock_order, cc_order=-1, v6_1=False,
                            stride=1):
    """numba twin of _compaction.isolate_freepages_block. Returns (nr_isolated_pages,
    nr_scanned, fail_pfn, nr_blocks)."""
    check_out_dtypes(out_pfns, out_orders)
    if max_blocks < 0 or max_blocks > out_pfns.shape[0] or max_blocks > out_orders.shape[0]:
        raise ValueError(f"isolate_freepages_block: max_blocks={max_blocks} does not fit "
                         f"out arrays of {out_pfns.shape[0]} and {out_orders.shape[0]}")
    r = _isolate_freepages_block(_union(mem_map), pageblock_flags, np.int64(start_pfn),
                                 np.int64(end_pfn), bool(strict), out_pfns, out_orders,
                                 np.int64(max_blocks), np.int64(pageblock_order),
                                 np.int64(target_free_order(cc_order, pageblock_order)),
                                 bool(v6_1), np.int64(1 if strict else max(1, int(stride))))
    return tuple(int(x) for x in r)


def suitable_migration_target(mem_map, pageblock_flags, pfn, pageblock_order,
                              ignore_block_suitable, cc_order=-1):
    """numba twin of _compaction.suitable_migration_target."""
    return bool(_suitable_target(_union(mem_map), pageblock_flags, np.int64(pfn),
                                 np.int64(pageblock_order), bool(ignore_block_suitable),
                                 np.int64(target_free_order(cc_order, pageblock_order))))


def suitable_migration_source(mem_map, pageblock_flags, pfn, pageblock_order, async_direct):
    """numba twin of _compaction.suitable_migration_source."""
    return bool(_suitable_source(_union(mem_map), pageblock_flags, np.int64(pfn),
                                 np.int64(pageblock_order), bool(async_direct)))


def pfn_range_valid_contig(mem_map, start_pfn, end_pfn, zone_bits):
    """numba twin of _compaction.pfn_range_valid_contig. Returns the first offending pfn
    or -1."""
    return int(_pfn_range_valid_contig(_union(mem_map), np.int64(start_pfn),
                                       np.int64(end_pfn), np.int64(zone_bits)))


def migrate_folio(mem_map, src, dst):
    """numba twin of _compaction.migrate_folio. Returns the pages moved."""
    return int(_migrate_folio(_union(mem_map), np.int64(src), np.int64(dst)))


def compact_zone_run(free_area, mem_map, pageblock_flags, valid, zone_start_pfn, zone_end_pfn,
                     order, pageblock_order, ignore_skip_hint, async_direct,
                     large_folios=True, async_mode=False):
    """numba twin of _compaction.compact_zone_run: the twin's Python loop
    (reference_compaction.run_compact_zone) over this module's jitted scanners - the
    buddy allocator is a Cython class that jitted code cannot call."""
    return run_compact_zone(sys.modules[__name__], free_area, mem_map, pageblock_flags, valid,
                            zone_start_pfn, zone_end_pfn, order, pageblock_order,
                            ignore_skip_hint, async_direct, large_folios, async_mode)
