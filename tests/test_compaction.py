"""Compaction and contiguous allocation: kernel parity and machine-level behaviour.

Part 1 holds the three compaction backends (Cython pagecore.kernels.compaction, numpy
pagecore.kernels.compaction_numpy, numba pagecore.kernels.compaction_numba) to one contract on
random page-state arrays: same return values, same mem_map / pageblock flags / out
arrays afterwards. Part 2 pins the kernel rules on hand-built pageblocks. Part 3 runs
the orchestration (pagecore.compaction, pagecore.workload) on scaled-down x86_64
machines and checks the figures of docs/model.md#gigantic-pages and the state invariants.
"""
import contextlib
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_fails_unchanged, assert_same_pages, lru_pages_with_free_blocks
from conftest import run_all as _run_all
from pagecore import GiB, Machine, MiB
from pagecore.kernels import compaction as _compaction, hotplug as _kernels, compaction_numpy as reference_compaction
from pagecore import compaction as C
from pagecore.kernels.buddy import FreeArea
from pagecore.kernels.page import (FLAGS_MASK, MIGRATE_CMA, MIGRATE_HIGHATOMIC,
                            MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE,
                            MIGRATE_TYPES, MIGRATE_UNMOVABLE, NODES_PGSHIFT, PAGE_DTYPE,
                            PB_migrate_isolate, PB_migrate_skip, PG_head, PG_hwpoison,
                            PG_isolated, PG_lru, PG_movable, PG_reserved, PG_tail,
                            PG_vmemmap_self_hosted, PGTY_BUDDY, PGTY_NONE, PGTY_OFFLINE,
                            PGTY_SLAB, PGTY_TABLE, PGTY_VMEMMAP, ZONES_PGSHIFT)
from pagecore.errors import BusyError, ConfigError, RangeError, StateError
from pagecore.mm.mmzone import present_section_runs
from pagecore.workload import Workload

SETTINGS = settings(max_examples=int(os.environ.get("PAGECORE_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SIMD_LEVELS = _compaction._simd_levels()       # the scanners' block view builds to test


@contextlib.contextmanager
def simd(level):
    """Run the Cython scanners' block paths on build `level` of their block view."""
    old = _compaction._simd_level()
    _compaction._simd_level(level)
    try:
        yield
    finally:
        _compaction._simd_level(old)


@pytest.fixture(scope="module")
def backends():
    """name -> compaction kernel module; the numpy reference first."""
    return {"numpy": reference_compaction, "cython": _compaction,
            "numba": C.get_compaction_backend("numba")}


# =======================================================================================
# Part 1: random page-state arrays
# =======================================================================================
class Arr:
    """A bare page array with pageblock flags and one FreeArea (the buddy makes every
    free block valid); `runs` are v3 vmemmap runs made by mark_vmemmap_pages."""

    def __init__(self, mem_map, pbf, pbo, nr_orders, zone_bits):
        self.mem_map, self.pbf, self.pbo, self.nr_orders = mem_map, pbf, pbo, nr_orders
        self.zone_bits = zone_bits
        self.runs = []

    @property
    def n(self):
        return self.mem_map.shape[0]

    def clone(self):
        return Arr(self.mem_map.copy(), self.pbf.copy(), self.pbo, self.nr_orders,
                   self.zone_bits)


def zbits(nid, zone):
    return (nid << NODES_PGSHIFT) | (zone << ZONES_PGSHIFT)


@st.composite
def arrays(draw):
    """A random page array: zones, pageblock types and bits, allocated pages of every
    kind, folios (some hugetlb-like: no LRU), v3 vmemmap runs, valid free blocks, and a
    few stray folio bits that scans must still agree on."""
    pbo = draw(st.integers(3, 9))
    nr_orders = draw(st.integers(4, 11))
    unit = 1 << max(pbo, nr_orders - 1)
    n = unit * draw(st.integers(1, max(1, 4096 // unit)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    free_fraction = draw(st.sampled_from([0.0, 0.3, 0.7, 0.95]))
    mm = np.zeros(n, PAGE_DTYPE)
    nb = n >> pbo
    pbf = rng.choice(np.array([MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_MOVABLE,
                               MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC,
                               MIGRATE_CMA], np.uint8), nb)
    pbf |= np.where(rng.random(nb) < draw(st.sampled_from([0.0, 0.2, 0.6])),
                    PB_migrate_skip, 0).astype(np.uint8)
    pbf |= np.where(rng.random(nb) < 0.1, PB_migrate_isolate, 0).astype(np.uint8)
    # zones per unit, ascending; mostly one zone so that ranges stay in it
    main = zbits(0, 3)
    units = np.full(n // unit, main, np.int64)
    if rng.random() < 0.3:
        units[rng.random(n // unit) < 0.25] = zbits(1, 2)
    bits = np.repeat(units, unit).astype(np.uint32)
    flags = np.zeros(n, np.uint32)
    for bit, prob in ((PG_reserved, 0.05), (PG_lru, 0.4), (PG_movable, 0.1),
                      (PG_hwpoison, 0.02), (PG_isolated, 0.05),
                      (PG_vmemmap_self_hosted, 0.02)):
        flags |= np.where(rng.random(n) < prob, bit, 0).astype(np.uint32)
    stray = rng.random(n) < 0.01
    flags |= np.where(stray, rng.choice(np.array([PG_head, PG_tail], np.uint32), n), 0
                      ).astype(np.uint32)
    mm["flags"] = flags | bits
    mm["page_type"] = rng.choice(np.array([PGTY_NONE, PGTY_OFFLINE, PGTY_TABLE, PGTY_SLAB],
                                          np.uint8), n, p=[0.85, 0.05, 0.05, 0.05])
    mm["order"] = np.where(stray, rng.integers(0, 4, n), 0)
    mm["refcount"] = rng.choice(np.array([1, 1, 2], np.uint16), n)
    mm["private"] = rng.integers(0, 1 << 40, n, dtype=np.uint64)
    a = Arr(mm, pbf, pbo, nr_orders, main)
    occupied = np.zeros(n, bool)
    # v3 vmemmap runs (linked to the zone, as onlining does)
    for _ in range(draw(st.integers(0, 3))):
        start = int(rng.integers(0, n))
        if rng.random() < 0.6:
            start &= ~((1 << pbo) - 1)
        nr = int(rng.integers(1, min(n - start, 3 << pbo) + 1))
        if occupied[start:start + nr].any():
            continue
        zb = int(mm["flags"][start]) & ~FLAGS_MASK & 0xFFFFFFFF
        _kernels.mark_vmemmap_pages(mm, start, nr, 1)
        mm["flags"][start:start + nr] |= np.uint32(zb)
        mm["refcount"][start:start + nr] = 1
        occupied[start:start + nr] = True
        a.runs.append((start, nr))
    # folios: LRU (THP), movable, or neither (hugetlb-like / kernel compound)
    for _ in range(draw(st.integers(0, 16))):
        order = int(rng.integers(1, min(nr_orders, pbo + 2)))
        head = int(rng.integers(0, n >> order)) << order
        if occupied[head:head + (1 << order)].any():
            continue
        kind = int(rng.choice(np.array([PG_lru, PG_lru, PG_movable, 0], np.uint32)))
        if rng.random() < 0.1:
            kind |= PG_isolated
        zb = int(mm["flags"][head]) & ~FLAGS_MASK & 0xFFFFFFFF
        pages = mm[head:head + (1 << order)]
        pages["flags"] = zb | kind | PG_tail
        pages["flags"][0] = zb | kind | PG_head
        pages["page_type"] = PGTY_NONE
        pages["order"] = order
        pages["refcount"] = 1
        occupied[head:head + (1 << order)] = True
    # free blocks through the buddy
    fa = FreeArea(mm, pbf, nr_orders, pbo)

    def region(pfn, order):
        span = occupied[pfn:pfn + (1 << order)]
        zones = mm["flags"][pfn:pfn + (1 << order)] & ~np.uint32(FLAGS_MASK)
        if not span.any() and (zones == zones[0]).all() and rng.random() < free_fraction ** (1 << order) ** 0.3:
            pages = mm[pfn:pfn + (1 << order)]
            pages["flags"] &= ~np.uint32(FLAGS_MASK)
            pages["page_type"] = PGTY_NONE
            pages["order"] = 0
            pages["refcount"] = 0
            pages["private"] = 0
            fa.py_free_one_page(pfn, order)
            occupied[pfn:pfn + (1 << order)] = True
        elif order > 0 and not span.all():
            region(pfn, order - 1)
            region(pfn + (1 << (order - 1)), order - 1)

    if free_fraction:
        for pfn in range(0, n, 1 << (nr_orders - 1)):
            region(pfn, nr_orders - 1)
    a.free_area = fa          # keeps the lists' memory alive with the array
    return a, rng


def same(a, b, label):
    assert_same_pages(a.mem_map, b.mem_map, label)
    np.testing.assert_array_equal(a.pbf, b.pbf, err_msg=f"{label}: pageblock flags differ")


def run_all(backends, a, call):
    return _run_all(backends, a, call, same)


def pick_range(a, rng):
    n, pb = a.n, 1 << a.pbo
    kind = rng.integers(0, 5)
    if kind == 0:
        s = int(rng.integers(0, n // pb)) * pb
        return s, s + pb
    if kind == 1 and a.runs:                          # starts inside or at a vmemmap run
        s, nr = a.runs[int(rng.integers(0, len(a.runs)))]
        s += int(rng.integers(0, nr))
        return s, int(rng.integers(s, n + 1))
    if kind == 2:
        return 0, n
    lo, hi = sorted(rng.integers(0, n + 1, 2).tolist())
    return lo, hi


@SETTINGS
@given(data=arrays(), ignore=st.booleans(), alloc_contig=st.booleans(),
       skip_on_failure=st.booleans(), cc_order=st.integers(-1, 10),
       capacity=st.sampled_from([1, 3, 32, 600]), where=st.integers(0, 2**16),
       v6_1=st.booleans())
def test_isolate_migratepages_block(backends, data, ignore, alloc_contig, skip_on_failure,
                                    cc_order, capacity, where, v6_1):
    a, rng = data
    pb = 1 << a.pbo
    block = (where % (a.n // pb)) * pb
    low = block + (0 if where & 1 else int(rng.integers(0, pb)))
    end = block + pb if where & 2 else int(rng.integers(low, block + pb + 1))

    def call(k, arr):
        out = np.full(capacity, -7, np.int64)
        r = k.isolate_migratepages_block(arr.mem_map, arr.pbf, low, end, arr.pbo, ignore,
                                         out, cc_order, alloc_contig, skip_on_failure,
                                         v6_1)
        return r + (tuple(out.tolist()),)

    (nxt, n, scanned, out), after = run_all(backends, a, call)
    heads = list(out[:n])
    if v6_1 and not alloc_contig:              # v6.1: no compound page isolated
        assert not (a.mem_map["flags"][heads] & PG_head).any()
    assert low <= nxt <= max(end, low)
    assert all(after.mem_map["flags"][h] & PG_isolated for h in heads)
    # nothing vmemmap, free, a tail or already isolated is ever isolated
    pages = a.mem_map[heads] if heads else a.mem_map[:0]
    assert not np.isin(pages["page_type"], [PGTY_BUDDY, PGTY_VMEMMAP]).any()
    assert not (pages["flags"] & (PG_tail | PG_isolated)).any()
    assert ((pages["flags"] & (PG_lru | PG_movable)) != 0).all()


@SETTINGS
@given(data=arrays(), ignore=st.booleans(), alloc_contig=st.booleans(),
       capacity=st.sampled_from([1, 5, 32, 5000]))
def test_isolate_migratepages_range(backends, data, ignore, alloc_contig, capacity):
    a, rng = data
    lo, hi = pick_range(a, rng)
    zone_bits = a.zone_bits if rng.random() < 0.8 else zbits(1, 2)

    def call(k, arr):
        out = np.full(capacity, 0xfffffff9, np.uint32)
        r = k.isolate_migratepages_range(arr.mem_map, arr.pbf, lo, hi, arr.pbo, zone_bits,
                                         ignore, alloc_contig, out)
        return r + (tuple(out.tolist()),)

    run_all(backends, a, call)


@SETTINGS
@given(data=arrays(), strict=st.booleans(), room=st.sampled_from([0, 1, 2, 7, None]),
       v6_1=st.booleans(), stride=st.sampled_from([1, 1, 2, 5, 32]))
def test_isolate_freepages_block(backends, data, strict, room, v6_1, stride):
    a, rng = data
    lo, hi = pick_range(a, rng)
    cap = max(hi - lo, 1)
    max_blocks = cap if room is None else min(room, cap)

    def call(k, arr):
        pfns, orders = np.full(cap, -7, np.int64), np.full(cap, 0xf9, np.uint8)
        r = k.isolate_freepages_block(arr.mem_map, arr.pbf, lo, hi, strict, pfns, orders,
                                      max_blocks, arr.pbo, -1, v6_1, stride)
        return r + (tuple(pfns.tolist()), tuple(orders.tolist()))

    (total, scanned, fail, nb, pfns, orders), after = run_all(backends, a, call)
    same(a, after, "isolate_freepages_block wrote its input")
    heads = np.array(pfns[:nb], np.int64)
    assert nb <= max_blocks
    assert (a.mem_map["page_type"][heads] == PGTY_BUDDY).all()
    np.testing.assert_array_equal(a.mem_map["order"][heads], orders[:nb])
    assert total == sum(1 << o for o in orders[:nb])
    if strict and fail < 0 and hi > lo:
        # a successful strict scan covers the range with free blocks, back to back
        assert nb and heads[0] == lo and heads[-1] + (1 << orders[nb - 1]) >= hi
        assert all(h + (1 << o) == nxt for h, o, nxt in zip(heads, orders, heads[1:]))
    if not strict:
        assert fail == -1
        for h, o in zip(heads.tolist(), orders[:nb]):      # suitable targets only
            pbi = h >> a.pbo
            assert a.pbf[pbi] & 7 in (MIGRATE_MOVABLE, MIGRATE_CMA)
            assert not a.pbf[pbi] & PB_migrate_isolate
            assert o < a.pbo


@SETTINGS
@given(data=arrays())
def test_pfn_range_valid_contig_and_suitability(backends, data):
    a, rng = data
    lo, hi = pick_range(a, rng)
    zone_bits = a.zone_bits if rng.random() < 0.8 else zbits(1, 2)
    r, _ = run_all(backends, a, lambda k, arr: k.pfn_range_valid_contig(arr.mem_map, lo, hi,
                                                                          zone_bits))
    if r >= 0:
        f = int(a.mem_map["flags"][r])
        assert (f & ~FLAGS_MASK & 0xFFFFFFFF) != zone_bits or f & PG_reserved or \
            (f & (PG_head | PG_tail) and not f & (PG_lru | PG_movable))
    for pb in range(0, a.n, 1 << a.pbo):
        for flag in (False, True):
            for cc_order in (-1, 2, a.pbo + 1):
                run_all(backends, a, lambda k, arr: k.suitable_migration_target(
                    arr.mem_map, arr.pbf, pb, arr.pbo, flag, cc_order))
            run_all(backends, a, lambda k, arr: k.suitable_migration_source(
                arr.mem_map, arr.pbf, pb, arr.pbo, flag))


def test_suitable_migration_target_keeps_free_blocks_of_the_request_order(backends):
    # suitable_migration_target() v6.9+ ("mm: compaction: limit the suitable target
    # page order to be less than cc->order"): a pageblock whose first page heads a free
    # block of cc->order or more (pageblock_order for cc->order <= 0) is no target, and
    # isolate_freepages_block() passes it unscanned. x86_64 geometry, one movable
    # pageblock of 512 pages headed by a free order-5 block (the rest allocated): a
    # target for compact_memory (-1, 5 < 9) and order 6, not for orders 3 and 5.
    mm = np.zeros(1024, PAGE_DTYPE)
    mm["refcount"] = 1
    mm["page_type"][0], mm["order"][0], mm["refcount"][0:32] = PGTY_BUDDY, 5, 0
    pbf = np.full(2, MIGRATE_MOVABLE, np.uint8)
    out, orders = np.zeros(8, np.int64), np.zeros(8, np.uint8)
    for name, k in backends.items():
        got = {o: k.suitable_migration_target(mm, pbf, 0, 9, False, o) for o in (-1, 0, 3, 5, 6)}
        assert got == {-1: True, 0: True, 3: False, 5: False, 6: True}, name
        # the free scanner over the pageblock: order 6 records the block, order 3 passes it
        r6 = k.isolate_freepages_block(mm, pbf, 0, 512, False, out, orders, 8, 9, 6)
        r3 = k.isolate_freepages_block(mm, pbf, 0, 512, False, out, orders, 8, 9, 3)
        assert (r6[0], r6[3]) == (32, 1) and r3 == (0, 0, -1, 0), name


def _lru_pageblock_above_a_free_order_9_block():
    """x86_64 geometry, 8 pageblocks of one Movable zone: 512 LRU pages in pageblock 0,
    a free order-9 block (listed) in pageblock 6, every other page allocated (refcount
    1, not LRU)."""
    mm = np.zeros(4096, PAGE_DTYPE)
    mm["flags"] = 3 << ZONES_PGSHIFT
    mm["refcount"] = 1
    mm["flags"][:512] |= PG_lru
    pbf = np.full(8, MIGRATE_MOVABLE, np.uint8)
    fa = FreeArea(mm, pbf, 11, 9)
    mm["refcount"][3072:3584] = 0
    fa.py_free_one_page(3072, 9)
    return mm, pbf, fa


def test_an_order_10_request_migrates_into_a_free_order_9_block(backends):
    # The v6.9+ target rule inside compact_zone_run(), x86_64 geometry (pageblock_order
    # 9, orders 0..10), 8 pageblocks of one Movable zone: pageblock 0 holds 512 LRU
    # pages, 6 a free order-9 block (listed; 7 allocated, so it stays order 9), the
    # rest allocated unmovable pages. For cc->order = 10 the order-9 block is a target
    # (9 < 10; for v6.1, or order -1, it is not: nothing to migrate into). By hand: the
    # free scanner scans pageblock 7 (512 pages, nothing free) and 6 (its block, 512),
    # free_scanned 1024; all 512 LRU pages move, in 16 batches of 32, into it; the
    # migrate scanner passes pageblocks 0-4 (5 * 512 = 2560) and meets the free scanner
    # at 5: "complete"; pageblock 0 is then a free order-9 block.
    for name, k in backends.items():
        mm, pbf, fa = _lru_pageblock_above_a_free_order_9_block()
        assert fa._listed_block(3072 + 100) == (3072, 9)
        r = k.compact_zone_run(fa, mm, pbf, np.ones(8, np.uint8), 0, 4096, 10, 9, False, False)
        assert r == ("complete", 2560, 1024, 512, 512), name
        assert fa.blocks(MIGRATE_MOVABLE, 9).tolist() == [0], name
        assert (mm["refcount"][3072:3584] == 1).all(), name


def _two_lru_pages_below_allocated_pageblocks(free_pfns, free_order):
    """x86_64 geometry, 4 pageblocks of one Movable zone, every page allocated (unmovable:
    refcount 1, not LRU) except LRU pages 0 and 1 (private 0xa, 0xb: which is which
    after migration) and free blocks of `free_order` at `free_pfns` in pageblock 3."""
    mm = np.zeros(2048, PAGE_DTYPE)
    mm["flags"] = 3 << ZONES_PGSHIFT
    mm["refcount"] = 1
    mm["flags"][:2] |= PG_lru
    mm["private"][:2] = [0xa, 0xb]
    pbf = np.full(4, MIGRATE_MOVABLE, np.uint8)
    fa = FreeArea(mm, pbf, 11, 9)
    for pfn in free_pfns:
        mm["refcount"][pfn:pfn + (1 << free_order)] = 0
        fa.py_free_one_page(pfn, free_order)
    return mm, pbf, fa


def test_the_free_scanner_stops_inside_a_pageblock_and_hands_out_in_list_order(backends):
    # isolate_freepages_block() (v6.12 mm/compaction.c) stops right after the block that
    # makes cc->nr_freepages >= cc->nr_migratepages, and compaction_alloc() takes
    # list_first_entry() of cc->freepages[0], where the blocks joined by list_add_tail().
    # By hand, compact_memory (order -1, skip hints ignored): the migrate scanner takes
    # pages 0 and 1 from pageblock 0 (nr_migratepages 2; all 512 pages scanned). The
    # free scanner enters pageblock 3 at 1536: pages 1536-1546 (11 scanned), 1546
    # isolated (1 < 2), 1547-1556 (10 more), 1556 isolated (2 >= 2): it stops at 1557
    # with nr_scanned 21; 1566 is never reached, pageblock 3 was not scanned to its end
    # (no skip bit), free_pfn stays 1557. Page 0 moves to 1546, page 1 to 1556 (FIFO).
    # The migrate scanner then scans pageblocks 1 and 2 (block_end <= free_pfn) and meets
    # the free scanner at pageblock 3: ("complete", 3 * 512, 21, 2, 2).
    for name, k in backends.items():
        mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1546, 1556, 1566], 0)
        r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True, False)
        assert r == ("complete", 1536, 21, 2, 2), name
        assert (mm["private"][1546], mm["private"][1556]) == (0xa, 0xb), name
        assert fa.blocks(MIGRATE_MOVABLE, 0).tolist() == [1566], name
        assert fa.blocks(MIGRATE_MOVABLE, 1).tolist() == [0], name     # 0 and 1 merged
        assert not pbf[3] & PB_migrate_skip, name


@pytest.mark.parametrize("async_mode", [False, True])
def test_the_free_scanner_samples_pageblocks_after_an_empty_one(backends, async_mode):
    # isolate_freepages() (v5.1+, "mm, compaction: sample pageblocks for free pages"; the
    # same in v6.1 and v6.12) visits every stride-th pfn: stride 1 (sync) or
    # COMPACT_CLUSTER_MAX (async) at the start, 1 after a pageblock that yields a free
    # block, doubled (at most 32) after one that yields none. By hand: LRU page 0,
    # pageblocks 1-3 allocated but for free pages at 1025, 1028 and 1056 (pageblock 2).
    #   sync: pageblock 3, stride 1: 512 visits, nothing; pageblock 2, stride 2: 1024,
    #     1026, 1028 (taken, enough): 3 more, 515; 1025 is never visited;
    #   async: stride 32: 16 visits of pageblock 3; pageblock 2 at 1024, 1056 (taken):
    #     18; 1025 and 1028 are never visited.
    # The migrate scanner passes pageblocks 0 and 1 (1024) and meets the free scanner
    # inside pageblock 2: ("complete", 1024, free_scanned, 1, 1).
    free_scanned, target = (18, 1056) if async_mode else (515, 1028)
    for name, k in backends.items():
        mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1025, 1028, 1056], 0)
        mm["flags"][1] &= ~np.uint32(PG_lru)
        r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                               False, True, async_mode)
        assert r == ("complete", 1024, free_scanned, 1, 1), name
        assert mm["private"][target] == 0xa, name
        free = sorted({1025, 1028, 1056} - {target})
        assert [p for p in sorted(fa.blocks(MIGRATE_MOVABLE, 0).tolist()) if p > 1000] == free


def test_the_free_scanner_is_not_run_while_isolated_blocks_are_left(backends):
    # isolate_freepages() (v6.12 mm/compaction.c) starts "if (cc->nr_freepages)
    # return;": since v6.9 the blocks left may all be smaller than the next folio, which
    # then gets no target (compaction_alloc() returns NULL) and is split
    # (try_split_folio()). By hand: LRU page 0 and an LRU order-1 folio at 2 in
    # pageblock 0 (512 scanned, nr_migratepages 3); free order-0 pages 1546, 1556, 1566.
    # The free scanner enters pageblock 3 at 1536 and stops after 1566, the third block
    # (3 >= 3): 31 scanned, free_pfn 1567. Page 0 moves to 1546; the folio finds no
    # order-1 block, isolate_freepages() returns at once (2 pages isolated), the folio
    # is split and its pages move to 1556 and 1566. The migrate scanner then passes
    # pageblocks 1 and 2 and meets the free scanner in pageblock 3:
    # ("complete", 1536, 31, 3, 3). A free scan from 1567 would have scanned pageblock
    # 3 to its end (free_scanned 512, its skip bit set, the scanners met at pageblock 2).
    for name, k in backends.items():
        mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1546, 1556, 1566], 0)
        mm["flags"][1] &= ~np.uint32(PG_lru)
        mm["flags"][2:4] |= PG_lru
        mm["flags"][2] |= PG_head
        mm["flags"][3] |= PG_tail
        mm["order"][2] = 1
        mm["private"][2:4] = 0xc
        r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True, False)
        assert r == ("complete", 1536, 31, 3, 3), name
        assert mm["private"][[1546, 1556, 1566]].tolist() == [0xa, 0xc, 0xc], name
        assert not pbf[3] & PB_migrate_skip, name


@pytest.mark.parametrize("async_mode", [False, True])
def test_the_free_scanner_samples_the_pageblocks_inside_a_free_block(backends, async_mode):
    # A pageblock inside a free block of order > pageblock_order (v6.12
    # suitable_migration_target(): its first page is not PageBuddy, so it is a target by
    # its migratetype) is sampled like any other: every visit is a tail page. By hand:
    # LRU page 0; a free order-10 block at 1024 (pageblocks 2 and 3), the rest allocated.
    # The migrate scanner isolates page 0 and ends pageblock 0 (migrate_pfn 512), so the
    # free scanner's low end is pageblock_end_pfn(512) = 1024: it scans pageblock 3 only
    # (pageblock 2, the block's head of order 10 >= pageblock_order, is no target):
    # sync 512 visits (stride 1), async 16 (stride 32). Page 0 gets no target and the
    # scanners have met: ("complete", 512, free_scanned, 0, 0).
    free_scanned = 16 if async_mode else 512
    for name, k in backends.items():
        mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1024], 10)
        mm["flags"][1] &= ~np.uint32(PG_lru)
        r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                               False, True, async_mode)
        assert r == ("complete", 512, free_scanned, 0, 0), name
        assert fa.blocks(MIGRATE_MOVABLE, 10).tolist() == [1024], name


@pytest.mark.parametrize("large_folios", [False, True])
def test_a_sampled_visit_on_a_tail_steps_on_from_there(backends, large_folios):
    # isolate_freepages_block() jumps a compound page from its head only:
    # compound_order() of a tail is 0 (v6.1 and v6.12 include/linux/mm.h), so a visit a
    # stride lands on a tail counts one page and strides on. By hand, async (stride 32):
    # LRU pages 0-2 (need 3); pageblock 3 allocated but for a free order-1 block at
    # 1536 and a free page at 1665, and an allocated order-6 folio at 1600-1663. Visits
    # 1536 (isolated, 2 counted), 1569 (allocated), 1601 and 1633 (tails), 1665 (taken,
    # 3 >= 3: stop): 6 scanned, the same in v6.1 (it counts a free block's tails too).
    # A jump from the tail at 1601 would pass 1665. The scanners then meet in pageblock
    # 3: ("complete", 1536, 6, 3, 3). v6.12 takes targets smallest order first (page 0
    # to 1665, page 1 to 1536, page 2 to its split-off half 1537); v6.1 from the head
    # of split_map_pages()'s list (1665, 1537, 1536).
    targets = [1665, 1536, 1537] if large_folios else [1665, 1537, 1536]
    for name, k in backends.items():
        mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1536], 1)
        mm["refcount"][1665] = 0
        fa.py_free_one_page(1665, 0)
        mm["flags"][2] |= PG_lru
        mm["private"][2] = 0xc
        mm["flags"][1600] |= PG_head
        mm["flags"][1601:1664] |= PG_tail
        mm["order"][1600:1664] = 6
        r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                               False, large_folios, True)
        assert r == ("complete", 1536, 6, 3, 3), name
        assert mm["private"][targets].tolist() == [0xa, 0xb, 0xc], name


def test_compaction_gives_back_what_it_isolated_through_the_pcp_lists(backends):
    # release_free_list() (v6.12) frees each block left on cc->freepages with
    # __free_pages(), so an order-0 one lands on the pcp list, like the migrated source
    # page. By hand: one LRU page (0); the free scanner isolates the order-1 block at
    # 1546 (2 >= 1: it stops at 1548, nr_scanned 1548 - 1536 = 12); compaction_alloc()
    # splits it, page 0 moves to 1546 and the half 1547 goes to the head of
    # cc->freepages[0]; at the end 1547 is released. Pageset high 100, batch 10: both
    # 0 and 1547 stay on the lists.
    for name, k in backends.items():
        mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1546], 1)
        mm["flags"][1] &= ~np.uint32(PG_lru)
        fa.pcp_autotune = False
        fa.pageset_update(100, 100, 10)
        r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True, False)
        assert r == ("complete", 1536, 12, 1, 1), name
        assert mm["private"][1546] == 0xa, name
        on_pcp = sorted(int(x) for h in fa.pcp_lists().values() for x in h)
        assert on_pcp == [0, 1547] and fa.pcp_count == 2, name


# ---- compact_zone() before v6.9 (v6.1 mm/compaction.c: large_folios=False) -------------
def test_v6_1_hands_out_the_split_pages_from_the_last_one(backends):
    # v6.1 isolate_freepages() ends in split_map_pages(): each isolated block becomes
    # order-0 pages, list_add() one after the other, so cc->freepages starts at the last
    # page of the last block; v6.12 keeps the block on cc->freepages[1] and splits it
    # for the first folio, its half going to the head of cc->freepages[0]. By hand, one
    # order-1 block at 1546 and order-0 ones at 1556, 1566: the migrate scanner isolates
    # pages 0 and 1 (every page of pageblock 0 visited: 512); the free scanner visits
    # 1536-1546 (11), isolates the block (nr_scanned += 2 - 1) and holds 2 >= 2: it stops
    # at 1548, nr_scanned 12 in both versions. v6.1: page 0 -> 1547, page 1 -> 1546;
    # v6.12: page 0 -> 1546, page 1 -> 1547. Pageblocks 1 and 2 are scanned, the
    # scanners meet: ("complete", 1536, 12, 2, 2); 1556 and 1566 stay free.
    for name, k in backends.items():
        for large_folios, where in ((False, (0xb, 0xa)), (True, (0xa, 0xb))):
            mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1546], 1)
            for pfn in (1556, 1566):
                mm["refcount"][pfn] = 0
                fa.py_free_one_page(pfn, 0)
            r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                                   False, large_folios)
            assert r == ("complete", 1536, 12, 2, 2), (name, large_folios)
            assert (mm["private"][1546], mm["private"][1547]) == where, (name, large_folios)
            assert sorted(fa.blocks(MIGRATE_MOVABLE, 0).tolist()) == [1556, 1566], name


def test_v6_1_refills_for_the_whole_batch(backends):
    # v6.1 compaction_alloc() does not lower cc->nr_migratepages, so a free scan in the
    # middle of a batch stops only once it holds the whole batch's pages; v6.12 counts
    # what is left (v6.9: "mm: compaction: add support for >0 order folio memory
    # compaction"). By hand: LRU pages 0, 1 (pageblock 0) and 512, 513, 514 (pageblock
    # 1); free: an order-2 block at 1544 and order-0 pages at 1560, 1570, 1580.
    #   batch 1 (0, 1): the free scan from 1536 isolates 1544 (4 >= 2), stops at 1548:
    #     12 scanned. v6.1: 0 -> 1547, 1 -> 1546, left 1545, 1544 (in list order).
    #     v6.12: 0 -> 1544 (halves 1546 to [1], 1545 to [0]), 1 -> 1545, left 1546 (o1).
    #   batch 2 (512-514): v6.1: 512 -> 1545, 513 -> 1544, then a scan from 1548 that
    #     needs the batch's 3: 1560, 1570, 1580, stops at 1581 (33 scanned); 514 -> 1580,
    #     1570 and 1560 go back. v6.12: 512 -> 1546, 513 -> 1547, a scan needing 1:
    #     1560, stops at 1561 (13 scanned); 514 -> 1560.
    # The migrate scanner passes pageblocks 0-2 (1536) and meets the free scanner in 3.
    # Freed sources: 0+1 and 512+513 merge to order 1, 514 stays order 0 (515 is in use).
    want = {False: (45, [1547, 1546, 1545, 1544], 1580, [514, 1560, 1570]),
            True: (25, [1544, 1545, 1546, 1547], 1560, [514, 1570, 1580])}
    for name, k in backends.items():
        for large_folios, (free_scanned, targets, at514, free0) in want.items():
            mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1544], 2)
            mm["flags"][512:515] |= PG_lru
            mm["private"][512:515] = [0x512, 0x513, 0x514]
            for pfn in (1560, 1570, 1580):
                mm["refcount"][pfn] = 0
                fa.py_free_one_page(pfn, 0)
            r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                                   False, large_folios)
            assert r == ("complete", 1536, free_scanned, 5, 5), (name, large_folios)
            # the targets of 0, 1, 512, 513 in turn, then 514's
            assert mm["private"][targets].tolist() == [0xa, 0xb, 0x512, 0x513], (name, large_folios)
            assert mm["private"][at514] == 0x514, (name, large_folios)
            assert sorted(fa.blocks(MIGRATE_MOVABLE, 0).tolist()) == free0, (name, large_folios)


def test_v6_1_passes_every_compound_page(backends):
    # v6.1 isolate_migratepages_block(): "PageCompound(page) && !cc->alloc_contig" passes
    # the folio, whatever its order; v6.12 migrates one below pageblock order
    # (skip_isolation_on_order(), order -1). By hand: an order-2 LRU folio at 0 and a free
    # order-2 block at 1544. v6.12: the folio is isolated (need 4), the free scan visits
    # 1536-1544 and isolates the block: stop 1548, 12 scanned; the folio moves whole:
    # ("complete", 1536, 12, 4, 1). v6.1: nothing is isolated, no free scan, nothing
    # moves, and its nr_scanned does not count the three tails it jumps: 509 for
    # pageblock 0, ("complete", 1533, 0, 0, 0).
    for name, k in backends.items():
        for large_folios in (False, True):
            mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1544], 2)
            mm["flags"][0:4] |= PG_lru | PG_tail
            mm["flags"][0] = (mm["flags"][0] & ~np.uint32(PG_tail)) | PG_head
            mm["order"][0] = 2
            r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                                   False, large_folios)
            if large_folios:
                assert r == ("complete", 1536, 12, 4, 1), name
                assert mm["flags"][1544] & PG_head and mm["order"][1544] == 2, name
            else:
                assert r == ("complete", 1533, 0, 0, 0), name
                assert fa.blocks(MIGRATE_MOVABLE, 2).tolist() == [1544], name
                assert mm["flags"][0] & PG_head and not mm["flags"][0] & PG_isolated, name


def test_v6_1_free_scan_stops_with_the_count_of_the_pages_it_visited(backends):
    # Where the free scanner stops inside a pageblock, its count is of what it visited:
    # v6.12 every pfn from the start to the stop, v6.1 less the tails of a compound page
    # it jumped. By hand: LRU pages 0, 1; in pageblock 3 an allocated order-2 compound
    # page at 1540 and free pages at 1546 and 1556. The scan from 1536 isolates 1546,
    # then 1556 (2 >= 2) and stops at 1557: v6.12 21 scanned, v6.1 21 - 3 = 18.
    # Targets: v6.12 0 -> 1546, 1 -> 1556; v6.1 (the list's head is 1556) the reverse.
    want = {True: (21, (0xa, 0xb)), False: (18, (0xb, 0xa))}
    for name, k in backends.items():
        for large_folios, (free_scanned, where) in want.items():
            mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1546, 1556], 0)
            mm["flags"][1541:1544] |= PG_tail
            mm["flags"][1540] |= PG_head
            mm["order"][1540:1544] = 2
            r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                                   False, large_folios)
            assert r == ("complete", 1536, free_scanned, 2, 2), (name, large_folios)
            assert (mm["private"][1546], mm["private"][1556]) == where, (name, large_folios)


def test_v6_1_migrate_scanner_passes_a_free_pageblock_for_one_page(backends):
    # A pageblock that is one free order-9 block: the migrate scanner reads its head,
    # PageBuddy, and jumps the block: v6.12 counts 512, v6.1 the head alone (1). By
    # hand: LRU page 0 (pageblock 0), a free order-9 block at 512, pageblock 2
    # allocated, a free page at 1546. Pageblock 0: 512 scanned, 0 isolated; the free
    # scan visits 1536-1546 (11) and takes 1546; pageblock 1, then 2 (512): 1536 or
    # 1025 in all, and the scanners meet in pageblock 3.
    want = {True: 1536, False: 1025}
    for name, k in backends.items():
        for large_folios, migrate_scanned in want.items():
            mm, pbf, fa = _two_lru_pages_below_allocated_pageblocks([1546], 0)
            mm["flags"][1] &= ~np.uint32(PG_lru)
            mm["refcount"][512:1024] = 0
            fa.py_free_one_page(512, 9)
            r = k.compact_zone_run(fa, mm, pbf, np.ones(4, np.uint8), 0, 2048, -1, 9, True,
                                   False, large_folios)
            assert r == ("complete", migrate_scanned, 11, 1, 1), (name, large_folios)
            assert mm["private"][1546] == 0xa, name


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_v6_1_counts_the_pages_it_visits(backends, level):
    # v6.1's scanners count a page per loop iteration: the pages of a free block or a
    # passed compound page after its head are jumped uncounted; v6.12 adds them
    # ("nr_scanned += (1UL << order) - 1"). By hand, one pageblock of allocated pages
    # (refcount 1, not LRU) with an LRU page at 0, free order-3 blocks at 8 and 200 and
    # an order-2 LRU folio at 300:
    #   migrate scanner (order -1): v6.12 isolates 0 and the folio, 512 scanned; v6.1
    #     passes the folio (3 uncounted) and both free blocks (7 each): 0 alone, 495;
    #   free scanner: both count 8 + 8 for the free blocks they record; the folio is
    #     512 - 3 = 509 scanned in v6.1, 512 in v6.12.
    mm0 = np.zeros(512, PAGE_DTYPE)
    mm0["flags"] = 3 << ZONES_PGSHIFT
    mm0["refcount"] = 1
    mm0["flags"][0] |= PG_lru
    for pfn in (8, 200):
        mm0[pfn:pfn + 8]["refcount"] = 0
        mm0["page_type"][pfn], mm0["order"][pfn] = PGTY_BUDDY, 3
    mm0["flags"][300:304] |= PG_lru | PG_tail
    mm0["flags"][300] = (mm0["flags"][300] & ~np.uint32(PG_tail)) | PG_head
    mm0["order"][300] = 2
    want = {False: ((512, 2, 512), [0, 300], (16, 512, -1, 2)),
            True: ((512, 1, 495), [0], (16, 509, -1, 2))}
    for name, k in backends.items():
        for v6_1, (mig, heads, free) in want.items():
            mm, pbf = mm0.copy(), np.full(1, MIGRATE_MOVABLE, np.uint8)
            out = np.full(600, -1, np.int64)
            with simd(level):
                r = k.isolate_migratepages_block(mm, pbf, 0, 512, 9, True, out, -1, False,
                                                 False, v6_1)
                assert (tuple(int(x) for x in r), out[:r[1]].tolist()) == (mig, heads), \
                    (name, v6_1)
                fo, oo = np.zeros(8, np.int64), np.zeros(8, np.uint8)
                r = k.isolate_freepages_block(mm0.copy(), pbf, 0, 512, False, fo, oo, 8, 9,
                                              -1, v6_1)
                assert tuple(int(x) for x in r) == free, (name, v6_1)


def test_v6_1_targets_a_free_block_below_pageblock_order_only(backends):
    # v6.1 suitable_migration_target(): a pageblock headed by a free block of
    # pageblock_order or more is no target, whatever cc->order (v6.9+: cc->order when
    # > 0; test_an_order_10_request_migrates_into_a_free_order_9_block). Same zone as
    # there, order 10, v6.1 rules: pageblock 6 is passed; the first batch (pages 0-31,
    # 32 scanned) gets no target: the free scan visits pageblock 7 (512), then 5..1
    # with the stride doubling after each empty one (2, 4, 8, 16, 32: 256 + 128 + 64 +
    # 32 + 16; the pageblock it passes leaves the stride alone), 1008 in all, and
    # isolates nothing; free_pfn ends at 0, the scanners have met: "complete" with
    # nothing migrated, and the order-9 block is still free.
    for name, k in backends.items():
        mm, pbf, fa = _lru_pageblock_above_a_free_order_9_block()
        r = k.compact_zone_run(fa, mm, pbf, np.ones(8, np.uint8), 0, 4096, 10, 9, False, False,
                               False)
        assert r == ("complete", 32, 1008, 0, 0), name
        assert fa.blocks(MIGRATE_MOVABLE, 9).tolist() == [3072], name
        assert not (mm["flags"] & PG_isolated).any(), name


@pytest.mark.parametrize("kernel", [(6, 1), (6, 12)])
def test_compact_zone_follows_the_machines_kernel(kernel):
    # compact_zone() takes the rules of MachineConfig.kernel: a v6.1 machine moves no
    # folio larger than a page (every compound page passed), a v6.12 one moves the
    # workload's order-3 folios whole.
    m = machine("block", add=256 * MiB, kernel=kernel)
    Workload(fill=0.6, movable_fraction=1.0, orders={0: 0.8, 3: 0.2}, age_rounds=1,
             free_fraction=0.3, seed=5).apply(m, 0, "Movable")
    rep = C.compact_zone(m, m.zone(0, 3), -1)
    assert rep["migrated_folios"] > 0
    if kernel < (6, 9):
        assert rep["migrated_pages"] == rep["migrated_folios"]
    else:
        assert rep["migrated_pages"] > rep["migrated_folios"]


@SETTINGS
@given(data=arrays(), seed=st.integers(0, 2**16))
def test_migrate_folio(backends, data, seed):
    a, _ = data
    rng = np.random.default_rng(seed)
    folio_heads = np.flatnonzero((a.mem_map["flags"] & PG_head) != 0)
    pick = folio_heads if folio_heads.size and rng.random() < 0.7 else np.arange(a.n)
    src = int(rng.choice(pick))
    nr = 1 << int(a.mem_map["order"][src]) if a.mem_map["flags"][src] & PG_head else 1
    if src + nr > a.n or nr > a.n // 2:
        return
    dst = int(rng.integers(0, a.n - nr + 1))
    if dst < src + nr and src < dst + nr:
        dst = (src + nr) % (a.n - nr + 1)
        if dst < src + nr and src < dst + nr:
            return
    got, after = run_all(backends, a, lambda k, arr: k.migrate_folio(arr.mem_map, src, dst))
    assert got == nr
    s, d = a.mem_map[src:src + nr], after.mem_map[dst:dst + nr]
    np.testing.assert_array_equal(d["private"], s["private"])
    np.testing.assert_array_equal(d["flags"] & FLAGS_MASK, s["flags"] & np.uint32(FLAGS_MASK & ~PG_isolated))


def test_every_kernel_has_twins_with_the_same_signature(backends):
    mine = sorted(name for name, obj in vars(_compaction).items()
                  if callable(obj) and not name.startswith("_")
                  and getattr(obj, "__module__", None) == "pagecore.kernels.compaction")
    assert mine == sorted(C.KERNELS)
    for name in C.KERNELS:
        want = list(inspect.signature(getattr(_compaction, name)).parameters)
        for backend, k in backends.items():
            assert list(inspect.signature(getattr(k, name)).parameters) == want, (backend, name)
        for backend in ("numpy", "numba"):
            assert f"_compaction.{name}" in getattr(backends[backend], name).__doc__


def test_bad_out_arrays_raise_alike(backends):
    mm, pbf = np.zeros(64, PAGE_DTYPE), np.zeros(8, np.uint8)
    for name, k in backends.items():
        with pytest.raises(ValueError):
            k.isolate_migratepages_block(mm, pbf, 0, 8, 3, False, np.zeros(0, np.int64), -1,
                                         False, False)
        with pytest.raises(ValueError):
            k.isolate_freepages_block(mm, pbf, 0, 8, True, np.zeros(2, np.int64),
                                      np.zeros(1, np.uint8), 2, 3)
        with pytest.raises(ValueError, match="dtype|uint8"):      # orders are bytes
            k.isolate_freepages_block(mm, pbf, 0, 8, True, np.zeros(2, np.int64),
                                      np.zeros(2, np.int64), 2, 3)
        # the range's records are uint32 offsets from start_pfn, so at most 2^32 pfns
        with pytest.raises(ValueError, match="dtype|uint32"):
            k.isolate_migratepages_range(mm, pbf, 0, 8, 3, 0, False, False,
                                         np.zeros(2, np.int64))
        with pytest.raises(ValueError, match="at least one"):
            k.isolate_migratepages_range(mm, pbf, 0, 8, 3, 0, False, False,
                                         np.zeros(0, np.uint32))
        with pytest.raises(ValueError, match="2\\^32"):
            k.isolate_migratepages_range(mm, pbf, 0, (1 << 32) + 1, 3, 0, False, False,
                                         np.zeros(2, np.uint32))


def test_get_compaction_backend(monkeypatch, backends):
    monkeypatch.delenv("PAGECORE_BACKEND", raising=False)
    assert C.get_compaction_backend() is _compaction
    assert C.get_compaction_backend("numpy") is reference_compaction
    monkeypatch.setenv("PAGECORE_BACKEND", "numpy")
    assert C.get_compaction_backend() is reference_compaction
    assert C.get_compaction_backend("numba") is backends["numba"]
    monkeypatch.setenv("PAGECORE_BACKEND", "fortran")
    with pytest.raises(ConfigError, match="fortran.*PAGECORE_BACKEND"):
        C.get_compaction_backend()


def test_numba_is_not_imported_by_compaction():
    code = ("import sys, pagecore.compaction as c, pagecore.workload;"
            "c.get_compaction_backend(); c.get_compaction_backend('numpy');"
            "assert 'numba' not in sys.modules, 'numba imported'")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("PAGECORE_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# =======================================================================================
# Part 2: the kernel rules, on hand-built pageblocks (pageblock_order 3: 8 pages)
# =======================================================================================
PBO = 3
Z = zbits(0, 3)


def blank(n=32, mt=MIGRATE_MOVABLE):
    mm = np.zeros(n, PAGE_DTYPE)
    mm["flags"] = Z
    mm["refcount"] = 1
    return mm, np.full(n >> PBO, mt, np.uint8)


def scan(k, mm, pbf, low, end, ignore=False, cap=32, cc_order=-1, alloc_contig=False,
         sof=False):
    out = np.zeros(cap, np.int64)
    nxt, n, s = k.isolate_migratepages_block(mm, pbf, low, end, PBO, ignore, out, cc_order,
                                             alloc_contig, sof)
    return nxt, out[:n].tolist(), s


@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_migrate_scanner_rules(backends, name):
    k = backends[name]
    # a skip-marked pageblock is aborted at its first pfn: nothing isolated, scanned 1
    mm, pbf = blank()
    mm["flags"][0:8] |= PG_lru
    pbf[0] |= PB_migrate_skip
    assert scan(k, mm, pbf, 0, 8) == (8, [], 1)
    assert scan(k, mm, pbf, 0, 8, ignore=True)[1] == list(range(8))
    # LRU pages: isolated, PG_isolated, skip bit set at the first one (test_and_set_skip);
    # a second scan finds nothing left to take
    mm, pbf = blank()
    mm["flags"][8:16] |= PG_lru
    assert scan(k, mm, pbf, 8, 16) == (16, list(range(8, 16)), 8)
    assert (mm["flags"][8:16] & PG_isolated).all() and pbf[1] & PB_migrate_skip
    pbf[1] &= ~np.uint8(PB_migrate_skip)
    assert scan(k, mm, pbf, 8, 16)[1] == []
    # only unmovable pages: fail silently, the block gets its skip bit
    mm, pbf = blank()
    mm["page_type"][0:8] = PGTY_SLAB
    mm["flags"][3] |= PG_reserved
    assert scan(k, mm, pbf, 0, 8) == (8, [], 8) and pbf[0] & PB_migrate_skip
    # alloc_contig (no_set_skip_hint) never sets it
    mm, pbf = blank()
    scan(k, mm, pbf, 0, 8, ignore=True, alloc_contig=True)
    assert not pbf[0] & PB_migrate_skip
    # __PageMovable pages do not touch the skip bit; the batch limit stops the scan
    mm, pbf = blank()
    mm["flags"][0:8] |= PG_movable
    assert scan(k, mm, pbf, 0, 8, cap=3) == (3, [0, 1, 2], 3)
    assert not pbf[0] & PB_migrate_skip


@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_migrate_scanner_folios_buddies_and_vmemmap(backends, name):
    k = backends[name]
    mm, pbf = blank(64, MIGRATE_MOVABLE)
    fa = FreeArea(mm, pbf, 5, PBO)
    mm["flags"][0:4] |= PG_lru | PG_tail                 # order-2 THP at 0
    mm["flags"][0] = Z | PG_lru | PG_head
    mm["order"][0:4] = 2
    mm["flags"][4:8] |= PG_lru
    mm[8:16]["refcount"] = 0
    fa.py_free_one_page(8, 3)                             # a free pageblock
    # target order 2 (or pageblock order): the THP is passed whole and fails
    assert scan(k, mm, pbf, 0, 8, cc_order=2)[1] == [4, 5, 6, 7]
    for h in (4, 5, 6, 7):
        mm["flags"][h] &= ~np.uint32(PG_isolated)
    pbf[0] = MIGRATE_MOVABLE
    # compact_memory (-1): folios below pageblock order move whole
    nxt, heads, scanned = scan(k, mm, pbf, 0, 16, cc_order=-1)
    assert heads[:1] == [0] and nxt == 16 and scanned == 16
    # a v3 vmemmap run at a pageblock start is passed in one step; the skip bit is never
    # checked there, so a skip-marked vmemmap pageblock is still passed, not aborted
    mm2, pbf2 = blank(32)
    _kernels.mark_vmemmap_pages(mm2, 16, 12, 1)
    mm2["flags"][16:28] |= np.uint32(Z)
    mm2["flags"][28:32] |= PG_lru
    pbf2[2] |= PB_migrate_skip
    assert scan(k, mm2, pbf2, 16, 24) == (24, [], 1)
    assert scan(k, mm2, pbf2, 24, 32) == (32, [28, 29, 30, 31], 5)


@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_migrate_scanner_skip_on_failure(backends, name):
    """Async direct compaction: a failure puts back the chunk's isolations and jumps to
    the next 2^order-aligned chunk; a fully isolated chunk ends the scan."""
    k = backends[name]
    mm, pbf = blank(16)
    mm["flags"][0:8] |= PG_lru
    mm["page_type"][2] = PGTY_SLAB                        # fails in chunk [0, 4)
    mm["flags"][2] = Z
    nxt, heads, _ = scan(k, mm, pbf, 0, 8, cc_order=2, sof=True)
    assert heads == [4, 5, 6, 7] and nxt == 8
    assert not (mm["flags"][0:2] & PG_isolated).any()    # put back


@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_migrate_scanner_range_records_offsets_from_its_start(backends, name, level):
    """isolate_migratepages_range() over [512, 1800) of four order-9 pageblocks (the
    block paths run: pageblock_order >= 6), alloc_contig, skip hints ignored. By the
    kernel's loop: LRU pages 600..639 are isolated one by one, the order-4 THP at 1024
    whole (its head), the free order-5 block at 1600 passed, LRU 1700 and 1701
    isolated; every other page fails alone. Offsets from 512: 88..127, 512, 1188,
    1189. v6.12 counts every page it passes: nr_scanned = 1800 - 512 = 1288. With room
    for 10, the scan stops just past the 10th, pfn 609: next 610, scanned 610 - 512."""
    k = backends[name]
    mm = np.zeros(2048, PAGE_DTYPE)
    mm["flags"] = Z
    mm["refcount"] = 1
    pbf = np.full(4, MIGRATE_MOVABLE, np.uint8)
    mm["flags"][600:640] |= PG_lru
    mm["flags"][1024] |= PG_lru | PG_head
    mm["flags"][1025:1040] |= PG_lru | PG_tail
    mm["order"][1024:1040] = 4
    mm["flags"][1700:1702] |= PG_lru
    mm["refcount"][1600:1632] = 0
    FreeArea(mm, pbf, 11, 9).py_free_one_page(1600, 5)
    want = list(range(88, 128)) + [512, 1188, 1189]
    with simd(level):
        out = np.full(64, 0xfffffff9, np.uint32)
        assert k.isolate_migratepages_range(mm, pbf, 512, 1800, 9, Z, True, True,
                                            out) == (1800, 43, 1288)
        assert out[:43].tolist() == want and (out[43:] == 0xfffffff9).all()
        assert (mm["flags"][512 + out[:43]] & PG_isolated).all()
        assert np.count_nonzero(mm["flags"] & PG_isolated) == 43
        mm["flags"] &= ~np.uint32(PG_isolated)
        out = np.zeros(10, np.uint32)
        assert k.isolate_migratepages_range(mm, pbf, 512, 1800, 9, Z, True, True,
                                            out) == (610, 10, 98)
        assert out.tolist() == want[:10]


@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_migrate_scanner_range_records_full_blocks(backends, name, level):
    """A 64-page block of 64 LRU pages and one of 50: the block paths record 64 and 50
    offsets from one view each (the AVX-512 build in four stores of 16). Range [64,
    1024) of an order-9 pageblock pair, alloc_contig: LRU pages 64..127 and 128..177,
    nothing else; offsets from 64: 0..113; every page counted, 1024 - 64."""
    k = backends[name]
    mm = np.zeros(1024, PAGE_DTYPE)
    mm["flags"] = Z
    mm["refcount"] = 1
    mm["flags"][64:178] |= PG_lru
    pbf = np.full(2, MIGRATE_MOVABLE, np.uint8)
    out = np.full(200, 0xfffffff9, np.uint32)
    with simd(level):
        assert k.isolate_migratepages_range(mm, pbf, 64, 1024, 9, Z, True, True,
                                            out) == (1024, 114, 960)
    assert out[:114].tolist() == list(range(114)) and (out[114:] == 0xfffffff9).all()


@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_free_scanner_rules(backends, name):
    k = backends[name]
    mm, pbf = blank(64)
    fa = FreeArea(mm, pbf, 5, PBO)
    for pfn, order in ((0, 1), (4, 2), (8, 3), (24, 0), (32, 4)):
        mm[pfn:pfn + (1 << order)]["refcount"] = 0
        fa.py_free_one_page(pfn, order)
    pbf[2] = MIGRATE_UNMOVABLE
    out, orders = np.zeros(64, np.int64), np.zeros(64, np.uint8)
    # non-strict: pageblock 1 is one free block of pageblock order (never broken up),
    # pageblock 2 is UNMOVABLE, and the order-4 block at 32 is too large as well
    total, scanned, fail, nb = k.isolate_freepages_block(mm, pbf, 0, 64, False, out, orders,
                                                         64, PBO)
    assert (out[:nb].tolist(), orders[:nb].tolist(), fail) == ([0, 4, 24], [1, 2, 0], -1)
    # strict: fails at the first page that is not free
    total, scanned, fail, nb = k.isolate_freepages_block(mm, pbf, 0, 64, True, out, orders,
                                                         64, PBO)
    assert fail == 2 and out[:nb].tolist() == [0]
    total, scanned, fail, nb = k.isolate_freepages_block(mm, pbf, 4, 16, True, out, orders,
                                                         64, PBO)
    assert (total, fail, out[:nb].tolist()) == (12, -1, [4, 8])


@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_free_scanner_jumps_a_folio_from_its_head_only(backends, name):
    # isolate_freepages_block(): "if (PageCompound(page))" jumps from compound_order(),
    # which is 0 for a tail; v6.12 only when "blockpfn + (1UL << order) <= end_pfn",
    # v6.1 whenever the order is below MAX_ORDER, its jump uncounted. An allocated
    # order-4 folio at 16-31 (the order on every page, as pagecore keeps it), by hand:
    #   [16, 32): v6.12 the head and its jump, 16; v6.1 the head, 1;
    #   [16, 24): the folio ends past end_pfn: v6.12 the head and 7 tails one by one,
    #     8; v6.1 jumps anyway, 1;
    #   [20, 32): 12 tails one by one in both; at stride 4: 20, 24, 28, 3.
    k = backends[name]
    mm, pbf = blank(64)
    mm["flags"][16] |= PG_head
    mm["flags"][17:32] |= PG_tail
    mm["order"][16:32] = 4
    out, orders = np.zeros(64, np.int64), np.zeros(64, np.uint8)
    for lo, hi, stride, want in ((16, 32, 1, (16, 1)), (16, 24, 1, (8, 1)),
                                 (20, 32, 1, (12, 12)), (20, 32, 4, (3, 3))):
        for v6_1, expected in zip((False, True), want):
            r = k.isolate_freepages_block(mm, pbf, lo, hi, False, out, orders, 64, PBO, -1,
                                          v6_1, stride)
            assert r == (0, expected, -1, 0), (lo, hi, stride, v6_1)


@pytest.mark.parametrize("name", ["cython", "numpy", "numba"])
def test_pfn_range_valid_contig_rules(backends, name):
    k = backends[name]
    mm, _ = blank(32)
    assert k.pfn_range_valid_contig(mm, 0, 32, Z) == -1
    mm["flags"][20] |= PG_reserved
    assert k.pfn_range_valid_contig(mm, 0, 32, Z) == 20
    assert k.pfn_range_valid_contig(mm, 0, 32, zbits(0, 2)) == 0       # other zone
    mm["flags"][8:12] |= PG_tail | PG_lru                               # THP: fine
    mm["flags"][8] = Z | PG_head | PG_lru
    assert k.pfn_range_valid_contig(mm, 0, 20, Z) == -1
    mm["flags"][8:12] &= ~np.uint32(PG_lru)                             # hugetlb-like
    assert k.pfn_range_valid_contig(mm, 0, 20, Z) == 8


# =======================================================================================
# Part 3: machines (scaled-down x86_64: 128 MiB blocks, 2 MiB pageblocks)
# =======================================================================================
def machine(strategy, add=8 * GiB, at=8 * GiB, online="online_movable", **kw):
    m = Machine(strategy=strategy, phys_bits=36, **kw)
    m.add_memory(0, at, add, online=online)
    return m


def check_invariants(m, managed):
    """Every free-list entry is a PGTY_BUDDY head of the list's order, every PGTY_BUDDY
    page is on a list, nothing is left PG_isolated, Σ managed did not move."""
    listed = 0
    for z in m.zones():
        fa = z.free_area
        for mt in range(MIGRATE_TYPES):
            for o in range(m.arch.nr_page_orders):
                pfns = fa.blocks(mt, o)
                listed += pfns.size
                assert (m.mem_map["page_type"][pfns] == PGTY_BUDDY).all()
                assert (m.mem_map["order"][pfns] == o).all()
    present = np.flatnonzero(m.sections)
    pps = m.arch.pages_per_section
    buddies = sum(int((m.mem_map["page_type"][s * pps:(s + 1) * pps] == PGTY_BUDDY).sum())
                  for s in present.tolist())
    isolated = sum(int((m.mem_map["flags"][s * pps:(s + 1) * pps] & PG_isolated).any())
                   for s in present.tolist())
    assert buddies == listed and isolated == 0
    assert m.mem_total_pages == managed


@pytest.mark.parametrize("strategy,block_size,movable", [
    ("block", None, 0),        # a memmap at every 128 MiB block start: no 1 GiB window
    ("range", None, 7),        # seed v3 whole-range memmap: only the first GiB is lost
    ("boot", None, 8),         # memmap from boot memory: every window
    ("block", 2 * GiB, 4),     # 2 GiB blocks: the second GiB of each block
])
def test_gigantic_pages_per_strategy(strategy, block_size, movable):
    m = machine(strategy, block_size=block_size)
    before, managed = m.snapshot(), m.mem_total_pages
    counts = C.count_gigantic_pages(m, 18)
    assert counts[(0, "Movable")] == movable
    assert counts[(0, "DMA")] == 0 and counts[(0, "DMA32")] == 0      # boot memory reserved
    assert m.snapshot()["hash"] == before["hash"]                      # nothing moved
    check_invariants(m, managed)


@pytest.mark.parametrize("strategy,expected", [("block", 63), ("range", 63), ("boot", 64)])
def test_2mib_pages_per_128mib_block(strategy, expected):
    m = machine(strategy, add=128 * MiB)
    assert C.count_gigantic_pages(m, 9)[(0, "Movable")] == expected


def test_alloc_contig_pages_and_free_contig_range():
    m = machine("range", add=2 * GiB)
    free0, managed = m.mem_free_pages, m.mem_total_pages
    movable = m.zone(0, 3)
    pfn = C.alloc_contig_pages(m, 1 << 18, zone=movable)
    assert pfn == (9 * GiB) >> 12                         # the first GiB holds the memmap
    pages = m.mem_map[pfn:pfn + (1 << 18)]
    assert (pages["refcount"] == 1).all() and (pages["private"] == C.CONTIG_OWNER).all()
    assert m.mem_free_pages == free0 - (1 << 18)
    assert C.alloc_contig_pages(m, 1 << 18, zone=movable) is None      # none left
    with pytest.raises(StateError):
        C.free_contig_range(m, pfn - 1, 2)                # a vmemmap page is not ours
    C.free_contig_range(m, pfn, 1 << 18)
    assert m.mem_free_pages == free0
    check_invariants(m, managed)
    with pytest.raises(ConfigError):
        C.alloc_contig_pages(m, 3)


def test_alloc_contig_range_migrates_and_rolls_back():
    """v6.12 "block": the vmemmap pages are not PageReserved, so the pre-check passes and
    in ZONE_MOVABLE so does isolation; the movable pages are migrated out, then
    test_pages_isolated() meets the vmemmap: -EBUSY, and everything is undone."""
    m = machine("block", add=1 * GiB)
    Workload(fill=0.5, movable_fraction=1.0, orders={0: 1.0}, age_rounds=1,
             seed=3).apply(m, 0, "Movable")
    start = (8 * GiB) >> 12
    assert C.get_compaction_backend().pfn_range_valid_contig(
        m.mem_map, start, start + 1024, C._zone_bits(m.zone(0, 3))) == -1
    managed = m.mem_total_pages
    # migrated out and back: the targets' refills and frees go through the pcp lists
    # (alloc_contig_range() drains them once the range is isolated, it does not disable
    # them), so the check compares the machine with its lists drained
    e = assert_fails_unchanged(m, BusyError, C.alloc_contig_range, m, start, start + 1024)
    assert e.pfn == start                                 # the first vmemmap page
    check_invariants(m, managed)
    # the next 2 MiB has movable pages only: they are migrated and the range is taken
    got = C.alloc_contig_range(m, start + 512, start + 1024)
    assert got["migrated_pages"] > 0
    assert (m.mem_map["refcount"][start + 512:start + 1024] == 1).all()
    C.free_contig_range(m, start + 512, 512)
    check_invariants(m, managed)


def test_alloc_contig_range_refuses_unmovable_in_normal():
    m = machine("boot", add=1 * GiB, online="online_kernel")
    Workload(fill=0.5, movable_fraction=0.5, seed=4, age_rounds=0).apply(m, 0, "Normal")
    _, unmovable = Workload(seed=4).heads(m, [m.zone(0, 2)])
    pfn = int(unmovable[0]) & ~511
    e = assert_fails_unchanged(m, BusyError, C.alloc_contig_range, m, pfn, pfn + 512)
    assert "unmovable" in str(e)
    with pytest.raises(RangeError):
        C.alloc_contig_range(m, (1 * GiB) >> 12, (3 * GiB) >> 12)          # not online


def fragmented(zone_name="Movable", online="online_movable", movable_fraction=1.0, seed=7):
    m = machine("block", add=512 * MiB, online=online)
    Workload(fill=0.6, movable_fraction=movable_fraction, orders={0: 0.85, 3: 0.1, 9: 0.05},
             age_rounds=3, free_fraction=0.5, seed=seed).apply(m, 0, zone_name)
    return m


def vmemmap_bytes(m):
    blocks = np.flatnonzero(m.blocks["nr_vmemmap"] > 0)
    return b"".join(m.mem_map[b * m.block_pages:b * m.block_pages + int(m.blocks["nr_vmemmap"][b])]
                    .tobytes() for b in blocks.tolist())


@pytest.mark.parametrize("zone_name,online,movable_fraction", [
    ("Movable", "online_movable", 1.0), ("Normal", "online_kernel", 0.7)])
def test_compaction_makes_order9_and_moves_only_movable(zone_name, online, movable_fraction):
    m = fragmented(zone_name, online, movable_fraction)
    zone = m.zone(0, 3 if zone_name == "Movable" else 2)
    managed = m.mem_total_pages
    w = Workload()
    movable0, unmovable0 = w.heads(m, [zone])
    pages = lambda heads: int(np.where(m.mem_map["flags"][heads] & PG_head,
                                       1 << m.mem_map["order"][heads].astype(np.int64), 1).sum())
    movable_pages0 = pages(movable0)
    unmovable_pages0 = m.mem_map[unmovable0].tobytes()
    vm0 = vmemmap_bytes(m)
    report = C.compact_zone(m, zone, -1)
    assert report["result"] == "complete" and report["migrated_pages"] > 0
    assert report["migrate_scanned"] > 0 and report["free_scanned"] > 0
    assert sum(report["free_blocks_after"][9:]) > sum(report["free_blocks_before"][9:])
    movable1, unmovable1 = w.heads(m, [zone])
    np.testing.assert_array_equal(unmovable1, unmovable0)            # never moved
    assert m.mem_map[unmovable1].tobytes() == unmovable_pages0
    assert vmemmap_bytes(m) == vm0                                   # nor vmemmap pages
    assert pages(movable1) == movable_pages0                         # moved (or split), kept
    check_invariants(m, managed)
    if unmovable0.size == 0:
        assert zone_name == "Movable"


def test_compaction_stops_when_the_order_is_there():
    m = fragmented()
    zone = m.zone(0, 3)
    C.compact_zone(m, zone, -1)
    C.reset_isolation_suitable(m, zone)
    assert C.free_blocks_per_order(zone)[9] + C.free_blocks_per_order(zone)[10] > 0
    report = C.compact_zone(m, zone, 9)
    assert report["result"] == "success" and report["migrated_pages"] == 0


def test_async_direct_skips_unmovable_source_pageblocks():
    """docs/model.md#gigantic-pages (zone compaction): the UNMOVABLE vmemmap pageblocks are skipped by async
    direct compaction and scanned (found empty: skip bit) by sync compaction."""
    pbo = 9
    for mode, direct, marked in (("async", True, False), ("sync", False, True)):
        m = fragmented(seed=11)
        zone = m.zone(0, 3)
        vm_blocks = [b * m.block_pages >> pbo for b in np.flatnonzero(m.blocks["nr_vmemmap"] > 0).tolist()
                     if m.blocks["zone"][b] == 3]
        assert all(m.pageblock_flags[p] & 7 == MIGRATE_UNMOVABLE for p in vm_blocks)
        C.compact_zone(m, zone, 10, mode, direct=direct)
        skipped = [bool(m.pageblock_flags[p] & PB_migrate_skip) for p in vm_blocks]
        # the scanners meet before the last blocks: look at the first one
        assert skipped[0] is marked, (mode, skipped)
        check_invariants(m, m.mem_total_pages)


def _interleaved():
    """A machine whose Normal and Movable spans interleave: 16 blocks of 128 MiB
    onlined kernel and movable by turns (memmap from boot memory, so a Movable
    block's first pageblock is free and the one below it is a Normal block's), then
    the Normal zone aged."""
    m = Machine(strategy="boot", phys_bits=36)
    m.add_memory(0, 8 * GiB, 2 * GiB, online=None)
    first = (8 * GiB >> m.arch.page_shift) // m.block_pages
    for b in range(16):
        m.online_memory_block(first + b, "online_kernel" if b % 2 else "online_movable")
    Workload(fill=0.5, movable_fraction=0.7, orders={0: 0.9, 9: 0.1}, age_rounds=1,
             free_fraction=0.4, seed=2).apply(m, 0, "Normal")
    return m


@pytest.mark.parametrize("build", ["fragmented", "fresh", "interleaved", "full"])
def test_valid_pageblocks_from_the_lists_match_the_pages(build):
    """_valid_pageblocks() passes a pageblock inside a listed free block of order >=
    pageblock_order without reading it; on every zone it gives what the first and last
    page of each pageblock give (_valid_pageblocks_read()), on an aged zone, a freshly
    onlined one (256 MiB, 128 pageblocks of 2 MiB: all valid, all listed but the
    vmemmap's pageblock at the start of each of the two blocks, 126), zones
    that interleave (a Normal block's pages fail in the Movable span and the other way
    round) and a full zone (nothing listed)."""
    if build == "fragmented":
        m = fragmented(seed=11)
    elif build == "fresh":
        m = machine("block", add=256 * MiB)
    elif build == "interleaved":
        m = _interleaved()
    else:
        m = machine("block", add=256 * MiB)
        Workload(fill=1.0, orders={0: 1.0}, age_rounds=0, seed=1).apply(m, 0, "Movable")
    listed_somewhere = False
    for z in m.zones():
        if not z.spanned_pages:
            continue
        first, ok = C._valid_pageblocks(m, z)
        first_read, ok_read = C._valid_pageblocks_read(m, z)
        assert first == first_read
        np.testing.assert_array_equal(ok, ok_read)
        listed = C._listed_pageblocks(m, z)
        listed_somewhere |= bool(listed.any())
        if build == "fresh" and z.zid == 3:
            assert ok.sum() == 128 and listed.sum() == 126
        if build == "full" and z.zid == 3:
            assert not listed.any()
    if build == "interleaved":
        z = m.zone(0, 3)
        assert not C._valid_pageblocks(m, z)[1].all()        # the Normal blocks fail
    assert listed_somewhere                     # boot memory keeps large free blocks


def test_listed_block_finds_the_free_block_from_the_lists():
    """FreeArea.listed_block(): a pfn inside a free block of order >= pageblock_order
    gives its head and order, read off the lists; once the block is split, the part
    still listed. By hand: x86_64, one 128 MiB block at 8 GiB (pfn 0x200000) with its
    memmap on it (strategy "block": 2 MiB, the first pageblock), so the free blocks
    are the order-9 upper half of the first 4 MiB and order-10 blocks (1024 pages)
    from 0x200400. An order-0 allocation (its pcp refill takes fewer than 512 pages)
    splits the smallest block that fits, the order-9 one: none of its pages is in a
    listed block of order >= pageblock_order any more, the order-10 blocks still are."""
    m = machine("block", add=128 * MiB)
    z = m.zone(0, 3)
    fa = z.free_area
    assert fa._listed_block(0x200000 + 5) is None             # the vmemmap
    assert fa._listed_block(0x200000 + 512) == (0x200000 + 512, 9)
    assert fa._listed_block(0x200000 + 1023) == (0x200000 + 512, 9)
    assert fa._listed_block(0x200400 + 700) == (0x200400, 10)
    assert fa._listed_block(0x1000) is None                   # not in this zone
    pfn = int(m.alloc_pages(0, 0, "movable")[0])
    assert 0x200200 <= pfn < 0x200400
    assert fa._listed_block(pfn) is None
    assert fa._listed_block(0x200200 + 511) is None
    assert fa._listed_block(0x200400) == (0x200400, 10)
    with pytest.raises(ValueError, match="outside the page array"):
        fa._listed_block(-1)


def test_async_direct_compaction_passes_an_unmovable_free_block_alike():
    """suitable_migration_source() of a free page (the Cython loop decides it from the
    lists, not the page): async direct compaction takes only MOVABLE pageblocks, so a
    free order-10 block whose pageblocks an unmovable allocation claimed is passed
    whole, without a skip bit, as the twin that reads the pages passes it (a loop
    that took it as a source would pass it too, but set the skip bit of its first
    pageblock)."""
    out = {}
    for name in ("cython", "numpy"):
        m = machine("block", add=256 * MiB, online="online_kernel")
        zone = m.zone(0, 2)
        Workload(fill=0.5, orders={0: 1.0}, age_rounds=1, free_fraction=0.5,
                 seed=4).apply(m, 0, "Normal")
        pfn = int(m.alloc_pages(0, 10, "kernel")[0])
        m.free_pages([pfn])
        pbo = m.arch.pageblock_order
        assert int(m.pageblock_flags[pfn >> pbo]) & 7 == MIGRATE_UNMOVABLE
        assert zone.free_area._listed_block(pfn + 700) == (pfn, 10)
        # order -1 (no early success), ignore_skip_hint False (the bits are read)
        report = C.compact_zone(m, zone, -1, "async", direct=True, ignore_skip_hint=False,
                                backend=name)
        out[name] = (report, m.pageblock_flags.tobytes(), m.snapshot()["hash"])
        assert report["result"] == "complete" and report["migrate_scanned"] > 0
        assert not m.pageblock_flags[pfn >> pbo] & PB_migrate_skip
        assert not m.pageblock_flags[(pfn >> pbo) + 1] & PB_migrate_skip
    assert out["cython"] == out["numpy"]


def test_compaction_backends_agree():
    """The whole run is the same machine, byte for byte, with every backend."""
    hashes = {}
    for name in ("cython", "numpy", "numba"):
        m = fragmented(seed=5)
        report = C.compact_zone(m, m.zone(0, 3), -1, backend=name)
        hashes[name] = (m.snapshot()["hash"], report["migrate_scanned"], report["free_scanned"])
    assert hashes["numpy"] == hashes["cython"] == hashes["numba"]


def _free_lists(m):
    return [(z.nid, z.zid, mt, o, z.free_area.blocks(mt, o).tobytes())
            for z in m.zones() for mt in range(MIGRATE_TYPES) for o in range(m.arch.nr_page_orders)]


_COMPACT_RUNS = dict(
    seed=st.integers(0, 2**16), fill=st.sampled_from([0.3, 0.6, 0.9, 0.98]),
    big=st.sampled_from([0.0, 0.1, 0.4]), order=st.sampled_from([-1, 2, 5, 9, 10]),
    how=st.sampled_from([("sync", False), ("async", True), ("async", False)]),
    ignore=st.sampled_from([None, True, False]), normal=st.booleans(), twice=st.booleans(),
    kernel=st.sampled_from([(6, 1), (6, 12)]))


@settings(SETTINGS, max_examples=8)
@given(**_COMPACT_RUNS)
def test_compact_zone_run_matches_the_twin(seed, fill, big, order, how, ignore, normal, twice,
                                           kernel):
    """The Cython compact_zone_run() and the Python twin loop leave the same machine:
    page array, pageblock flags and every free list in list order (the order later
    allocations see), with the same report; full zones run out of targets ("contended",
    large folios split), `order` >= 0 stops early ("success"), a second run meets the
    skip bits of the first; v6.1 and v6.12 rules. Eight draws here; the `big` run takes
    SETTINGS' forty."""
    _compact_zone_run_matches_the_twin(seed, fill, big, order, how, ignore, normal, twice,
                                       kernel)


@pytest.mark.big
@SETTINGS
@given(**_COMPACT_RUNS)
def test_compact_zone_run_matches_the_twin_big(seed, fill, big, order, how, ignore, normal, twice,
                                               kernel):
    _compact_zone_run_matches_the_twin(seed, fill, big, order, how, ignore, normal, twice,
                                       kernel)


def _compact_zone_run_matches_the_twin(seed, fill, big, order, how, ignore, normal, twice,
                                       kernel):
    out = {}
    for name in ("cython", "numpy"):
        m = machine("block", add=256 * MiB, online="online_kernel" if normal else "online_movable",
                    kernel=kernel)
        zone = m.zone(0, 2 if normal else 3)
        Workload(fill=fill, movable_fraction=0.7 if normal else 1.0,
                 orders={0: 1 - big, 3: big / 2, 9: big / 2}, age_rounds=1,
                 free_fraction=0.3, seed=seed).apply(m, 0, zone.name)
        reports = [C.compact_zone(m, zone, order, how[0], direct=how[1], ignore_skip_hint=ignore,
                                  backend=name) for _ in range(1 + twice)]
        # the present pages only: the whole 64 GiB mem_map would be 256 MB per copy
        pages = b"".join(m.mem_map[lo:hi].tobytes()
                         for lo, hi in present_section_runs(m, 0, m.max_pfn))
        out[name] = (reports, pages, m.pageblock_flags.tobytes(), _free_lists(m))
    assert out["cython"][0] == out["numpy"][0]
    assert out["cython"][1] == out["numpy"][1]
    assert out["cython"][2] == out["numpy"][2]
    assert out["cython"][3] == out["numpy"][3]


def test_compact_zone_run_rejects_bad_zones_alike(backends):
    m = fragmented(seed=3)
    zone = m.zone(0, 3)
    pbo = m.arch.pageblock_order
    _, valid = C._valid_pageblocks(m, zone)
    valid = valid.view(np.uint8)
    before = m.snapshot()
    for name, k in backends.items():
        args = (zone.free_area, m.mem_map, m.pageblock_flags)
        with pytest.raises(ValueError, match="order=12"):
            k.compact_zone_run(*args, valid, zone.zone_start_pfn, zone.zone_end_pfn, 12, pbo,
                               True, False)
        with pytest.raises(ValueError, match="does not match"):
            k.compact_zone_run(*args, valid[1:], zone.zone_start_pfn, zone.zone_end_pfn, -1,
                               pbo, True, False)
        with pytest.raises(ValueError, match="does not match"):
            k.compact_zone_run(*args, valid, zone.zone_end_pfn, zone.zone_start_pfn, -1, pbo,
                               True, False)
    assert m.snapshot() == before


def test_workload_is_deterministic_and_fragments():
    a, b, c = (machine("boot", add=256 * MiB) for _ in range(3))
    w = dict(fill=0.6, movable_fraction=1.0, orders={0: 0.8, 9: 0.2}, age_rounds=2,
             free_fraction=0.4)
    ra = Workload(seed=1, **w).apply(a, 0, "Movable")
    Workload(seed=1, **w).apply(b, 0, "Movable")
    Workload(seed=2, **w).apply(c, 0, "Movable")
    assert a.snapshot()["hash"] == b.snapshot()["hash"] != c.snapshot()["hash"]
    zone = a.zone(0, 3)
    assert abs(ra["used_pages"] - 0.6 * zone.managed_pages) <= 512
    assert ra["freed_pages"] > 0 and ra["rounds"] == 2
    # fragmented: free memory is there but mostly in blocks below order 9
    blocks = C.free_blocks_per_order(zone)
    small = sum(n << o for o, n in enumerate(blocks[:9]))
    assert small > 0.3 * zone.free_pages
    with pytest.raises(ConfigError):
        Workload(fill=1.5)


# ---------------------------------------------------------------------------------------
# the chunked two-thread pfn_range_valid_contig (_compaction._pfn_range_valid_contig_mt)
# and the free scanner's block fast path on large ranges
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [[], [70], [200], [130, 1500], [64], [3000, 4095], [5]])
@pytest.mark.parametrize("kind", ["zone", "reserved", "huge"])
@pytest.mark.parametrize("chunk", [64, 100, 1024])
@pytest.mark.parametrize("threads", [1, 2])
def test_parallel_pfn_range_valid_contig_matches_reference(bad, kind, chunk, threads):
    from pagecore.kernels import page as _page
    zb = (0 << _page.NODES_PGSHIFT) | (_page.ZONE_MOVABLE << _page.ZONES_PGSHIFT)
    mm = np.zeros(4096, _page.PAGE_DTYPE)
    mm["flags"] = zb | int(_page.PG_lru)
    mm["flags"][96:112] |= int(_page.PG_tail)               # an LRU folio: fine
    mm["flags"][96] = zb | int(_page.PG_lru | _page.PG_head)
    for pfn in bad:
        if kind == "zone":
            mm["flags"][pfn] = int(_page.PG_lru) | (_page.ZONE_NORMAL << _page.ZONES_PGSHIFT)
        elif kind == "reserved":
            mm["flags"][pfn] |= int(_page.PG_reserved)
        else:
            mm["flags"][pfn] = zb | int(_page.PG_head)      # compound, neither LRU nor movable
    for start, end in [(0, 4096), (5, 4093), (129, 2049), (64, 128)]:
        want = reference_compaction.pfn_range_valid_contig(mm, start, end, zb)
        got = _compaction._pfn_range_valid_contig_mt(mm, start, end, zb, threads, chunk)
        assert got == want, (start, end, got, want)


@pytest.mark.parametrize("v6_1", [False, True])
@pytest.mark.parametrize("level", SIMD_LEVELS)
@pytest.mark.parametrize("max_blocks", [1, 3, 50, 4096])
def test_free_scanner_block_path_matches_reference(max_blocks, level, v6_1):
    from pagecore.kernels import page as _page
    rng = np.random.default_rng(7)
    n, pbo = 4096, 9
    mm = lru_pages_with_free_blocks(rng, n)
    mm[1024:1040] = 0                                      # an LRU folio, order 4
    mm["flags"][1024:1040] = int(_page.PG_lru | _page.PG_tail)
    mm["flags"][1024] = int(_page.PG_lru | _page.PG_head)
    mm["order"][1024:1040] = 4
    mm[190:200] = 0                                        # a misaligned free block
    mm["page_type"][190], mm["order"][190] = int(_page.PGTY_BUDDY), 3
    pbf = np.full(n >> pbo, int(_page.MIGRATE_MOVABLE), np.uint8)
    for start, end in [(0, n), (3, n - 5), (700, 3000)]:
        got, want = [], []
        for k, res in ((_compaction, got), (reference_compaction, want)):
            out, orders = np.zeros(n, np.int64), np.zeros(n, np.uint8)
            with simd(level):
                r = k.isolate_freepages_block(mm, pbf, start, end, False, out, orders,
                                              max_blocks, pbo, -1, v6_1)
            res.append((tuple(int(x) for x in r), out[:r[3]].tolist(),
                        orders[:r[3]].tolist()))
        assert got == want


def _scanner_pages(seed, n=4096, garbage=True):
    """Pages as a fragmented zone has them, plus what only random input has: free-block
    interiors and folio pages with stray LRU bits, stale free-block heads nested inside
    free blocks, misaligned free blocks, heads whose tails are missing."""
    from pagecore.kernels import page as _page
    rng = np.random.default_rng(seed)
    mm = np.zeros(n, _page.PAGE_DTYPE)
    kinds = [(int(_page.PG_lru), 1), (int(_page.PG_movable), 1),
             (int(_page.PG_lru | _page.PG_isolated), 2), (int(_page.PG_reserved), 1), (0, 1)]
    p = 0
    while p < n:
        u = rng.random()
        o = int(rng.integers(1, 8)) if rng.random() < 0.3 else 0
        if p % (1 << o) or p + (1 << o) > n:
            o = 0
        if u < 0.45:                                         # a free block
            mm[p:p + (1 << o)] = 0
            mm["page_type"][p], mm["order"][p] = int(_page.PGTY_BUDDY), o
            if garbage and o and rng.random() < 0.3:
                mm["flags"][p + 1:p + (1 << o)] = int(_page.PG_lru)
            if garbage and o >= 2 and rng.random() < 0.3:      # a stale head inside
                inner = int(rng.integers(0, o))
                q = p + (int(rng.integers(1, 1 << (o - inner))) << inner)
                mm["page_type"][q], mm["order"][q] = int(_page.PGTY_BUDDY), inner
        elif u < 0.55 and o:                                 # a folio (LRU, isolated, slab)
            head = [int(_page.PG_lru), int(_page.PG_lru | _page.PG_isolated), 0][int(rng.integers(3))]
            mm["flags"][p:p + (1 << o)] = head | int(_page.PG_tail)
            mm["flags"][p] = head | int(_page.PG_head)
            mm["order"][p:p + (1 << o)] = o
            mm["refcount"][p] = 1
            if garbage and rng.random() < 0.2:               # tails without PG_tail
                mm["flags"][p + 1:p + (1 << o)] = int(_page.PG_lru)
        else:
            o = 0
            f, r = kinds[int(rng.integers(len(kinds)))]
            mm["flags"][p], mm["refcount"][p] = f, r
        p += 1 << o
    if garbage:
        q = int(rng.integers(8, n - 16)) | 1                 # a misaligned free block
        mm["page_type"][q], mm["order"][q] = int(_page.PGTY_BUDDY), 3
    return mm


@SETTINGS
@given(seed=st.integers(0, 2**20), capacity=st.sampled_from([1, 3, 32, 4096]),
       alloc_contig=st.booleans(), cc_order=st.sampled_from([-1, 0, 2, 5, 9]),
       ignore=st.booleans(), garbage=st.booleans(), skip_bits=st.booleans(),
       offset=st.integers(0, 511), level=st.sampled_from(SIMD_LEVELS),
       v6_1=st.booleans())
def test_migrate_scanner_block_path_matches_reference(seed, capacity, alloc_contig, cc_order,
                                                      ignore, garbage, skip_bits, offset,
                                                      level, v6_1):
    """The migrate scanner's 64-page block path (pc_mig_decide(), or the walk from
    jump to jump) walks like the kernel's loop, on every build of the block view: same
    isolated heads, PG_isolated bits, skip bits, stop pfn and nr_scanned as the numpy
    twin, entering pageblocks at their start or anywhere; v6.9+ and v6.1 (`v6_1`)
    rules."""
    from pagecore.kernels import page as _page
    n, pbo = 4096, 9
    mm0 = _scanner_pages(seed, n, garbage)
    rng = np.random.default_rng(seed + 1)
    pbf0 = np.full(n >> pbo, int(_page.MIGRATE_MOVABLE), np.uint8)
    if skip_bits:
        pbf0[rng.random(n >> pbo) < 0.3] |= int(PB_migrate_skip)
    results = {}
    for name, k in (("cython", _compaction), ("numpy", reference_compaction)):
        mm, pbf = mm0.copy(), pbf0.copy()
        got = []
        with simd(level):
            _run_scanner_blocks(k, mm, pbf, n, pbo, offset, capacity, ignore, cc_order,
                                alloc_contig, got, v6_1)
        results[name] = (got, mm.tobytes(), pbf.tobytes())
    assert results["cython"] == results["numpy"]


def _run_scanner_blocks(k, mm, pbf, n, pbo, offset, capacity, ignore, cc_order,
                        alloc_contig, got, v6_1=False):
    """Backend k's migrate scanner over each pageblock of mm (every other one entered at
    `offset`), then over the range from `offset`: results appended to `got`."""
    for pb in range(n >> pbo):
        lo = (pb << pbo) + (offset if pb % 2 else 0)
        out = np.full(capacity, -7, np.int64)
        r = k.isolate_migratepages_block(mm, pbf, lo, (pb + 1) << pbo, pbo, ignore, out,
                                         cc_order, alloc_contig, False, v6_1)
        got.append((tuple(int(x) for x in r), out.tolist()))
    out = np.full(capacity, 0xfffffff9, np.uint32)
    r = k.isolate_migratepages_range(mm, pbf, offset, n, pbo, 0, ignore, alloc_contig, out)
    got.append((tuple(int(x) for x in r), out.tolist()))


def _random_scanner_block(rng):
    """A 64-page block for the scanners' block bitmaps: mostly pages of the kinds the
    rules tell apart (types NONE..SLAB including PGTY_VMEMMAP, orders 0..10, the flags
    LRU/movable/isolated/head/tail/reserved in any mix), sometimes every byte of the
    first 8 random (refcounts, orders >= 128, flags the rules never read)."""
    mm = np.zeros(64, PAGE_DTYPE)
    raw = mm.view(np.uint8).reshape(64, 16)
    u = rng.random()
    if u < 0.1:
        raw[:, :8] = rng.integers(0, 256, (64, 8))
        return mm
    bits = np.array([PG_lru, PG_movable, PG_isolated, PG_head, PG_tail, PG_reserved,
                     PG_hwpoison], np.uint32)
    p_bit = rng.random(len(bits)) * (0.05 if u < 0.6 else 0.5)
    flags = (rng.random((64, len(bits))) < p_bit) @ bits
    mm["flags"] = flags.astype(np.uint32) | (rng.random(64) < 0.7) * int(PG_lru)
    mm["page_type"] = rng.choice([PGTY_NONE, PGTY_BUDDY, PGTY_OFFLINE, PGTY_VMEMMAP,
                                  PGTY_TABLE, PGTY_SLAB], 64,
                                 p=[0.5, 0.4, 0.03, 0.01 if u < 0.8 else 0.0, 0.03,
                                    0.03 if u < 0.8 else 0.04])
    order = np.minimum(rng.integers(0, 11, 64), rng.integers(0, 11, 64))
    if u < 0.5:                       # mostly naturally aligned, as real free lists are
        align = [6] + [min((r & -r).bit_length() - 1, 6) for r in range(1, 64)]
        order = np.minimum(order, np.where(rng.random(64) < 0.9, align, 10))
    mm["order"] = order
    mm["refcount"] = rng.integers(0, 3, 64)
    return mm


def test_block_view_builds_agree():
    """Every build of the scanners' block view this CPU runs (SSE2, AVX-512: pc_cview_*
    in kernels/scanblock.h) equals the scalar one on random 64-page blocks and on blocks of
    _scanner_pages(), for every kind of skip_order."""
    rng = np.random.default_rng(20241126)
    levels = _compaction._simd_levels()
    seen = {}
    blocks = [_random_scanner_block(rng) for _ in range(6000)]
    blocks += [b for s in range(40) for b in _scanner_pages(s, 1024).reshape(16, 64)]
    for i, mm in enumerate(blocks):
        mm = np.ascontiguousarray(mm)
        skip = [0, 1, 2, 5, 9, 10, 255, 256, 2**31][i % 9]
        want = _compaction._block_view(mm, 0, skip, "scalar")
        assert want["od"] == mm["order"].tobytes()
        for level in levels[1:]:
            got = _compaction._block_view(mm, 0, skip, level)
            assert got == want, f"{level} != scalar (skip_order {skip}): " + ", ".join(
                f"{k} {got[k]:#x} != {want[k]:#x}" for k in want if got[k] != want[k]
                and k != "od")
        for name, bits in want.items():
            if name != "od":
                seen[(name, 0 < bits < 2**64 - 1)] = seen.get((name, 0 < bits < 2**64 - 1), 0) + 1
    for name in ("buddy", "head", "tail", "cand", "nz", "o0", "o1", "o2", "fit", "ge"):
        assert seen.get((name, True), 0) > 1000, seen             # mixed bitmaps, often
    assert seen.get(("vmm", True), 0) > 100, seen


@SETTINGS
@given(seed=st.integers(0, 2**20), max_blocks=st.sampled_from([1, 5, 64, 4096]),
       garbage=st.booleans(), offset=st.integers(0, 511), strict=st.booleans(),
       level=st.sampled_from(SIMD_LEVELS))
def test_free_scanner_walk_matches_reference(seed, max_blocks, garbage, offset, strict, level):
    """The free scanner's 64-page block path records the heads the kernel's walk would
    (nested stale heads included: aligned blocks nest), stops at the same pfn with the
    same nr_scanned, entering anywhere; strict mode walks page by page."""
    from pagecore.kernels import page as _page
    n, pbo = 4096, 9
    mm = _scanner_pages(seed, n, garbage)
    pbf = np.full(n >> pbo, int(_page.MIGRATE_MOVABLE), np.uint8)
    got = {}
    for name, k in (("cython", _compaction), ("numpy", reference_compaction)):
        res = []
        for lo, hi in ((offset, n), (0, n - offset), (offset, offset + 700)):
            out, orders = np.full(n, -7, np.int64), np.full(n, 0xf9, np.uint8)
            with simd(level):
                r = k.isolate_freepages_block(mm, pbf, lo, hi, strict, out, orders,
                                              max_blocks, pbo)
            res.append((tuple(int(x) for x in r), out.tolist(), orders.tolist()))
        got[name] = res
    assert got["cython"] == got["numpy"]
