"""The buddy free area (pagecore.kernels.buddy.FreeArea) pinned three ways:

1. against its plain-Python twin (pagecore.kernels.buddy_numpy.FreeArea) on the same inputs:
   the same return values and, byte for byte, the same mem_map, pageblock flags and free
   lists in list order (which also pins the slots kept in `private`);
2. known answers worked out by hand from the kernel's arithmetic (the comments show it),
   never recomputed with pagecore;
3. a hypothesis state machine that drives both side by side with random allocations,
   frees, isolations and claims and checks the buddy invariants after every step.

The random machines of the differential tests are those of tests/test_kernel_parity.py
(build(): zones and nodes per unit, vmemmap runs, folios, decorated free blocks,
isolated pageblocks), so FreeArea sees the inputs the kernels see.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

from test_kernel_parity import Machine, assert_same_machine, build, params, zone_bits
from pagecore.kernels import buddy_numpy as reference_buddy
from pagecore.kernels.buddy import FreeArea
from pagecore.kernels.page import (MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE,
                            MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_TYPES,
                            MIGRATE_UNMOVABLE, MIGRATETYPE_MASK, PAGE_DTYPE,
                            PB_migrate_isolate, PG_head, PG_lru, PG_tail, PGTY_BUDDY, PGTY_NONE)

Twin = reference_buddy.FreeArea
PCP_TYPES = [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------
# the pair: the same state under the Cython class and under the twin
# ---------------------------------------------------------------------------------------
def twin_of(m):
    """The state of machine `m` (a test_kernel_parity.Machine) on fresh arrays, its free
    lists rebuilt in the same order under the twin (add() rewrites the same slots)."""
    mm, pbf = m.mem_map.copy(), m.pageblock_flags.copy()
    tw = Twin(mm, pbf, m.nr_orders, m.pageblock_order)
    for mt in range(MIGRATE_TYPES):
        for order in range(m.nr_orders):
            for pfn in m.free_area.blocks(mt, order).tolist():
                tw.add(pfn, order, mt)
    twin = Machine(mm, pbf, tw, m.pageblock_order, m.nr_orders)
    assert_same_machine(m, twin, "twin_of")
    return twin


def both(m, twin, call, label):
    """`call(free_area)` on each side: same result, same machine afterwards."""
    got, want = call(m.free_area), call(twin.free_area)
    assert got == want, f"{label}: FreeArea returned {got!r}, twin {want!r}"
    assert_same_machine(m, twin, label)
    return got


def bare(n, pageblock_order, nr_orders, mt=MIGRATE_MOVABLE, zone=2, area=FreeArea):
    """`n` allocated-looking pages (refcount 1, zone bits) of one zone, every pageblock
    `mt`, and an empty free area of class `area` over them."""
    mm = np.zeros(n, PAGE_DTYPE)
    mm["flags"] = zone_bits(0, zone)
    mm["refcount"] = 1
    pbf = np.full(n >> pageblock_order, mt, np.uint8)
    return Machine(mm, pbf, area(mm, pbf, nr_orders, pageblock_order), pageblock_order,
                   nr_orders)


def free(m, pfn, order):
    """Make [pfn, pfn + 2^order) plain zone pages and free_one_page() them."""
    pages = m.mem_map[pfn:pfn + (1 << order)]
    pages["flags"] &= np.uint32(0xFFFF0000)
    pages["refcount"] = 0
    m.free_area.py_free_one_page(pfn, order)


def lists(m):
    """{(mt, order): [pfns in list order]} of the non-empty lists."""
    return {(mt, o): m.free_area.blocks(mt, o).tolist() for mt in range(MIGRATE_TYPES)
            for o in range(m.nr_orders) if m.free_area.counts()[mt, o]}


# ---------------------------------------------------------------------------------------
# buddy invariants (checked by the state machine after every step, and by hand below)
# ---------------------------------------------------------------------------------------
def free_heads(m):
    return np.flatnonzero(m.mem_map["page_type"] == PGTY_BUDDY)


def check_lists(m):
    """buddy.pxd: each listed pfn is a free head of the list's order whose slot (in
    `private` below pageblock_order, in the side array from it up) and list are right, on the list of its first pageblock's migratetype (isolate bit
    first, get_pfnblock_migratetype()); each free head is listed once; no free block
    overlaps another."""
    fa, pbo = m.free_area, m.pageblock_order
    seen = set()
    for mt in range(MIGRATE_TYPES):
        for o in range(m.nr_orders):
            for slot, pfn in enumerate(fa.blocks(mt, o).tolist()):
                page = m.mem_map[pfn]
                assert pfn not in seen, f"pfn {pfn} listed twice"
                seen.add(pfn)
                assert page["page_type"] == PGTY_BUDDY and page["order"] == o, pfn
                assert pfn % (1 << o) == 0, f"free block {pfn} of order {o} not aligned"
                # below pageblock_order the slot is in private; from it up private is
                # the migratetype and the slot lives in the area's side array
                if o >= pbo:
                    assert int(page["private"]) == mt, f"migratetype of {pfn}"
                else:
                    assert int(page["private"]) == slot << 3 | mt, f"slot of {pfn}"
                assert int(fa.list_slots(np.array([pfn], np.int64))[0]) == slot, pfn
                f = int(m.pageblock_flags[pfn >> pbo])
                block_mt = MIGRATE_ISOLATE if f & PB_migrate_isolate else f & MIGRATETYPE_MASK
                assert block_mt == mt, (f"free block {pfn} (order {o}) on the list of "
                                        f"migratetype {mt}, its pageblock is {block_mt}")
    assert seen == set(free_heads(m).tolist()), "a free head is on no list"
    covered = np.zeros(m.n, np.int64)
    for pfn in seen:
        covered[pfn:pfn + (1 << int(m.mem_map["order"][pfn]))] += 1
    assert covered.max(initial=0) <= 1, "free blocks overlap"
    # listed_block(), read off the lists, against the heads read off the pages: the
    # free block of order >= side_order holding each page, or none
    side = min(pbo, m.nr_orders)
    want = np.full(m.n, -1, np.int64)
    for pfn in seen:
        o = int(m.mem_map["order"][pfn])
        if o >= side:
            want[pfn:pfn + (1 << o)] = pfn
    for pfn in range(m.n):
        got = fa._listed_block(pfn)
        assert (got[0] if got else -1) == want[pfn], f"listed_block({pfn}) = {got}"
        if got:
            assert got[1] == int(m.mem_map["order"][got[0]]), pfn


def unmerged_buddies(m):
    """The free pairs __free_one_page() would have merged: (head, buddy, order) for each
    free head of order k < MAX_PAGE_ORDER whose buddy head ^ 2^k is a free head of order
    k in the same zone and node (page_is_buddy()), where, from pageblock_order on, the
    two migratetypes are equal or both mergeable (migratetype_is_mergeable()).
    Exempt from pageblock_order on: a pair with an isolated side, since isolating a
    second pageblock next to an isolated one moves its free block without freeing it
    (move_freepages_block_isolate()), and undoing isolation merges them
    (unset_migratetype_isolate())."""
    pbo, mm = m.pageblock_order, m.mem_map
    out = []
    for pfn in free_heads(m).tolist():
        k = int(mm["order"][pfn])
        buddy = pfn ^ (1 << k)
        if k >= m.nr_orders - 1 or pfn > buddy or buddy >= m.n:
            continue
        if mm["page_type"][buddy] != PGTY_BUDDY or mm["order"][buddy] != k:
            continue
        if (mm["flags"][pfn] ^ mm["flags"][buddy]) & np.uint32(0xFFFF0000):
            continue
        if k >= pbo:
            a, b = twin_area(m).get_mt(pfn), twin_area(m).get_mt(buddy)
            if MIGRATE_ISOLATE in (a, b):
                continue
            if a != b and not (reference_buddy.migratetype_is_mergeable(a)
                               and reference_buddy.migratetype_is_mergeable(b)):
                continue
        out.append((pfn, buddy, k))
    return out


def twin_area(m):
    """A twin over m's arrays, only to read get_mt() (no lists needed)."""
    return Twin(m.mem_map, m.pageblock_flags, m.nr_orders, m.pageblock_order)


# ---------------------------------------------------------------------------------------
# 1. FreeArea against its twin on the random machines of the kernel-parity tests
# ---------------------------------------------------------------------------------------
def test_twin_has_the_python_face_of_freearea():
    """Every public method of the Cython class exists on the twin (the tests need them)."""
    face = [n for n in dir(FreeArea) if not n.startswith("__")]
    # `base` is the window of the Cython class's 4-byte lists: no state of the buddy
    twin = bare(16, 2, 3, area=Twin).free_area
    missing = [n for n in face if not hasattr(twin, n) and n != "base"]
    assert missing == [], missing


@SETTINGS
@given(p=params(), ops=st.lists(st.tuples(st.sampled_from(
    ["alloc", "free", "isolate", "unisolate", "claim", "rmqueue"]),
    st.integers(0, 2**32 - 1)), min_size=1, max_size=12))
def test_random_machines_against_twin(p, ops):
    m, rng = build(p)
    twin = twin_of(m)
    held = []                           # allocated heads (same on both sides)
    nb = m.n >> m.pageblock_order
    for i, (op, seed) in enumerate(ops):
        r = np.random.default_rng(seed)
        label = f"step {i} {op}"
        if op in ("alloc", "rmqueue"):
            order = int(r.integers(0, m.nr_orders))
            mt = int(r.choice(PCP_TYPES + [MIGRATE_HIGHATOMIC, MIGRATE_CMA]))
            if op == "rmqueue":
                # the bare __rmqueue(): the head of the block, nothing written into it
                # (the machine is left with a block that is neither free nor allocated,
                # so it is not freed later)
                both(m, twin, lambda fa: fa.py_rmqueue(order, mt), label)
                continue
            count = int(r.integers(1, 5))
            keep = int(r.integers(0, 64))

            def alloc(fa):
                out = np.full(count, -1, np.int64)
                n = fa.alloc_bulk(order, mt, count, PG_lru, 7, keep, out)
                return n, out[:n].tolist()
            n, heads = both(m, twin, alloc, label)
            held += heads
        elif op == "free" and held:
            k = int(r.integers(1, len(held) + 1))
            picked = [held.pop(int(r.integers(0, len(held)))) for _ in range(k)]
            arr = np.array(picked, np.int64)
            both(m, twin, lambda fa: fa.free_bulk(arr), label)
        elif op == "isolate":
            pb = int(r.integers(0, nb))
            both(m, twin, lambda fa: fa.py_move_freepages_block(pb << m.pageblock_order,
                                                                MIGRATE_ISOLATE), label)
        elif op == "unisolate":
            isolated = np.flatnonzero(m.pageblock_flags & PB_migrate_isolate)
            if isolated.size:
                pb = int(isolated[r.integers(0, isolated.size)])
                both(m, twin, lambda fa: fa.py_unset_migratetype_isolate(
                    pb << m.pageblock_order), label)
        elif op == "claim":
            heads = free_heads(m)
            if heads.size:
                h = int(heads[r.integers(0, heads.size)])
                size = 1 << int(m.mem_map["order"][h])
                nr = 1 << int(r.integers(0, int(m.mem_map["order"][h]) + 1))
                starts = [h + nr * int(j) for j in
                          r.choice(size // nr, min(3, size // nr), replace=False)]
                if r.random() < 0.3:
                    starts.append(int(r.integers(0, m.n - nr + 1)))   # may not be free
                arr = np.array(starts, np.int64)
                both(m, twin, lambda fa: fa.claim_ranges(arr, nr), label)
        for fa in (m.free_area, twin.free_area):
            assert fa.nr_free_pages(True) == sum(
                1 << int(m.mem_map["order"][h]) for h in free_heads(m))


# ---------------------------------------------------------------------------------------
# 2. known answers
# ---------------------------------------------------------------------------------------
@pytest.fixture(params=["cython", "twin"])
def area(request):
    """Both implementations answer every known-answer test."""
    return FreeArea if request.param == "cython" else Twin


def test_two_order0_buddies_merge(area):
    # x86_64 geometry: pageblock_order 9, MAX_PAGE_ORDER 10 (11 lists).
    # __find_buddy_pfn(0x1000, 0) = 0x1000 ^ 1 = 0x1001, so freeing 0x1001 then 0x1000
    # merges them into the order-1 block at 0x1000 & 0x1001 = 0x1000. Its order-1 buddy,
    # 0x1000 ^ 2 = 0x1002, is allocated: merging stops there.
    m = bare(0x2000, 9, 11, area=area)
    free(m, 0x1001, 0)
    assert lists(m) == {(MIGRATE_MOVABLE, 0): [0x1001]}
    free(m, 0x1000, 0)
    assert lists(m) == {(MIGRATE_MOVABLE, 1): [0x1000]}
    assert m.mem_map["order"][0x1000] == 1 and m.mem_map["page_type"][0x1001] == PGTY_NONE
    assert m.free_area.nr_free_pages() == 2


def test_pageblock_freed_page_by_page_is_one_order9_block(area):
    # 512 pages = 2^9 = one pageblock at 0x200. Freeing pfn p merges while p's buddy at
    # each order is free: the last page freed, 0x3ff, completes the order-0 pair
    # (0x3fe, 0x3ff), then the order-1 pair (0x3fc, 0x3fe), ... up to order 9 at 0x200.
    # Its order-9 buddy 0x200 ^ 0x200 = 0 is allocated, so it stays at order 9.
    m = bare(0x800, 9, 11, area=area)
    for pfn in range(0x200, 0x400):
        free(m, pfn, 0)
    assert lists(m) == {(MIGRATE_MOVABLE, 9): [0x200]}
    # freeing the other pageblock of the order-10 pair [0, 0x400) merges up to order 10,
    # which is MAX_PAGE_ORDER: [0x400, 0x800) freed too stays a second order-10 block
    free(m, 0, 9)
    free(m, 0x400, 10)
    assert lists(m) == {(MIGRATE_MOVABLE, 10): [0, 0x400]}
    assert m.free_area.nr_free_pages() == 0x800


def test_merge_rules_across_pageblocks(area):
    # pageblock_order 3 (8 pages), MAX_PAGE_ORDER 5. Two free pageblocks [0, 8) and
    # [8, 16) are order-3 buddies (0 ^ 8 = 8); they merge into order 4 at 0 when their
    # types are equal or both mergeable (UNMOVABLE/MOVABLE/RECLAIMABLE), never with a
    # HIGHATOMIC, CMA or isolated one (__free_one_page(), migratetype_is_mergeable()).
    for other, merges in ((MIGRATE_MOVABLE, True), (MIGRATE_UNMOVABLE, True),
                          (MIGRATE_RECLAIMABLE, True), (MIGRATE_HIGHATOMIC, False),
                          (MIGRATE_CMA, False), (MIGRATE_ISOLATE, False)):
        m = bare(32, 3, 6, area=area)
        if other == MIGRATE_ISOLATE:
            m.pageblock_flags[1] |= PB_migrate_isolate
        else:
            m.pageblock_flags[1] = other
        free(m, 8, 3)
        free(m, 0, 3)
        if merges:
            # the buddy [8, 16) takes the freed block's type (change_pageblock_range())
            assert lists(m) == {(MIGRATE_MOVABLE, 4): [0]}, other
            assert m.pageblock_flags[:2].tolist() == [MIGRATE_MOVABLE] * 2
        else:
            assert lists(m) == {(MIGRATE_MOVABLE, 3): [0], (other, 3): [8]}, other
        # inside one pageblock the type never matters: 0 ^ 1 = 1, one order-1 block
        m = bare(32, 3, 6, area=area, mt=MIGRATE_CMA)
        free(m, 17, 0)
        free(m, 16, 0)
        assert lists(m) == {(MIGRATE_CMA, 1): [16]}


def test_merging_retags_the_buddy_so_expand_lists_halves_right(area):
    # Regression (__free_one_page(): change_pageblock_range(buddy, order, migratetype),
    # v6.10+). pageblock_order 3: [0, 8) MOVABLE is freed after [8, 16) UNMOVABLE; they
    # merge (both mergeable) into order 4 at 0, and pageblock 1 becomes MOVABLE. An
    # order-0 MOVABLE allocation then splits it: 8 (order 3), 4, 2, 1 go to the MOVABLE
    # lists, and pageblock 1 is MOVABLE, so the order-3 block at 8 is on its own
    # pageblock's list (without the retag it sat on MOVABLE in an UNMOVABLE pageblock).
    m = bare(32, 3, 6, area=area)
    m.pageblock_flags[1] = MIGRATE_UNMOVABLE
    free(m, 8, 3)
    free(m, 0, 3)
    assert m.pageblock_flags[:2].tolist() == [MIGRATE_MOVABLE] * 2
    assert m.free_area.py_rmqueue(0, MIGRATE_MOVABLE) == 0
    assert lists(m) == {(MIGRATE_MOVABLE, o): [1 << o] for o in range(4)}
    # the other way round the freed block's type wins again: [0, 8) MOVABLE first,
    # then [8, 16) UNMOVABLE -> order 4 at 0, both pageblocks UNMOVABLE, UNMOVABLE list
    m = bare(32, 3, 6, area=area)
    m.pageblock_flags[1] = MIGRATE_UNMOVABLE
    free(m, 0, 3)
    free(m, 8, 3)
    assert m.pageblock_flags[:2].tolist() == [MIGRATE_UNMOVABLE] * 2
    assert lists(m) == {(MIGRATE_UNMOVABLE, 4): [0]}


def test_freeing_a_block_of_pageblocks_splits_it_by_type(area):
    # Regression (free_one_page() -> split_large_buddy(), v6.10+). An order-4 block at 0
    # = pageblocks [0, 8) HIGHATOMIC and [8, 16) MOVABLE, freed at once: each pageblock
    # is freed under its own type; HIGHATOMIC does not merge with MOVABLE, so two order-3
    # blocks on two lists (not one order-4 block on the HIGHATOMIC list).
    m = bare(32, 3, 6, area=area)
    m.pageblock_flags[0] = MIGRATE_HIGHATOMIC
    free(m, 0, 4)
    assert lists(m) == {(MIGRATE_HIGHATOMIC, 3): [0], (MIGRATE_MOVABLE, 3): [8]}
    # UNMOVABLE + MOVABLE: the pieces merge again, the later piece's type (MOVABLE) wins
    m = bare(32, 3, 6, area=area)
    m.pageblock_flags[0] = MIGRATE_UNMOVABLE
    free(m, 0, 4)
    assert m.pageblock_flags[:2].tolist() == [MIGRATE_MOVABLE] * 2
    assert lists(m) == {(MIGRATE_MOVABLE, 4): [0]}


def test_buddies_in_different_zones_do_not_merge(area):
    # page_is_buddy(): same zone only. Zone boundary at pfn 8 (a pageblock boundary):
    # [0, 8) and [8, 16) are order-3 buddies but live in two zones, each with its area.
    m = bare(16, 3, 6, area=area)
    m.mem_map["flags"][8:] = zone_bits(0, 3)
    other = Machine(m.mem_map, m.pageblock_flags,
                    area(m.mem_map, m.pageblock_flags, 6, 3), 3, 6)
    free(other, 8, 3)
    free(m, 0, 3)
    assert lists(m) == {(MIGRATE_MOVABLE, 3): [0]}
    assert lists(other) == {(MIGRATE_MOVABLE, 3): [8]}
    # the same with the node bits: node 1, zone 2 at [8, 16)
    m = bare(16, 3, 6, area=area)
    m.mem_map["flags"][8:] = zone_bits(1, 2)
    free(m, 8, 3)
    free(m, 0, 3)
    assert m.free_area.counts()[MIGRATE_MOVABLE, 3] == 2


def test_expand_hands_out_the_lower_half(area):
    # One free order-3 block at 0 (pages 0..7). An order-0 allocation splits it
    # (expand(low=0, high=3)): upper halves go back largest first, 0 + 4 at order 2,
    # 0 + 2 at order 1, 0 + 1 at order 0, and pfn 0 is handed out.
    m = bare(64, 4, 6, area=area)
    free(m, 0, 3)
    assert m.free_area.py_rmqueue(0, MIGRATE_MOVABLE) == 0
    assert lists(m) == {(MIGRATE_MOVABLE, 0): [1], (MIGRATE_MOVABLE, 1): [2],
                        (MIGRATE_MOVABLE, 2): [4]}
    # __rmqueue_smallest() takes the smallest fitting block: order 1 now comes from 2
    assert m.free_area.py_rmqueue(1, MIGRATE_MOVABLE) == 2
    # nothing of order 3 left, no other type to fall back to
    assert m.free_area.py_rmqueue(3, MIGRATE_MOVABLE) == -1


def test_free_list_order_is_a_stack(area):
    # pagecore's lists: add pushes, the list head is the last pushed, remove() moves the
    # last entry into the hole (so list order after a removal is pinned here).
    m = bare(64, 4, 6, area=area)
    for pfn in (0, 8, 16, 24, 32):          # order-0 buddies 1, 9, ... stay allocated
        free(m, pfn, 0)
    assert m.free_area.blocks(MIGRATE_MOVABLE, 0).tolist() == [0, 8, 16, 24, 32]
    m.free_area.py_remove(8)
    assert m.free_area.blocks(MIGRATE_MOVABLE, 0).tolist() == [0, 32, 16, 24]
    assert int(m.mem_map["private"][32]) == 1 << 3 | MIGRATE_MOVABLE      # slot 1
    assert m.free_area.py_rmqueue(0, MIGRATE_MOVABLE) == 24                 # the head


def test_fallback_takes_a_whole_free_pageblock_range(area):
    # pageblock_order 3, MAX_PAGE_ORDER 5. The only free memory: an order-4 UNMOVABLE
    # block at 16 (pageblocks 2 and 3). A MOVABLE order-0 allocation falls back; the
    # block is >= pageblock_order, so both its pageblocks become MOVABLE
    # (change_pageblock_range()) and it is split from its head on the MOVABLE lists:
    # 16 handed out, 16+8 at order 3, 16+4 at 2, 16+2 at 1, 16+1 at 0.
    m = bare(64, 3, 6, mt=MIGRATE_UNMOVABLE, area=area)
    free(m, 16, 4)
    assert m.free_area.py_rmqueue(0, MIGRATE_MOVABLE) == 16
    assert m.pageblock_flags.tolist() == [MIGRATE_UNMOVABLE] * 2 + [MIGRATE_MOVABLE] * 2 \
        + [MIGRATE_UNMOVABLE] * 4
    assert lists(m) == {(MIGRATE_MOVABLE, o): [16 + (1 << o)] for o in range(4)}


def test_fallback_claims_the_pageblock_below_pageblock_order(area):
    # pageblock_order 4 (16 pages). Pageblock 1 [16, 32) is MOVABLE with free blocks
    # 16 (order 2) and 24 (order 3); everything else is allocated. An UNMOVABLE order-0
    # allocation falls back to MOVABLE at the largest order first (order 3, pfn 24);
    # UNMOVABLE may claim (can_steal_fallback()), so the pageblock becomes UNMOVABLE with
    # both free blocks (move_freepages_block()), then __rmqueue_smallest(UNMOVABLE) takes
    # the smallest: order 2 at 16 -> 16 handed out, 18 (order 1), 17 (order 0) back.
    m = bare(64, 4, 6, area=area)
    free(m, 16, 2)
    free(m, 24, 3)
    assert m.free_area.py_rmqueue(0, MIGRATE_UNMOVABLE) == 16
    assert m.pageblock_flags[1] == MIGRATE_UNMOVABLE
    assert lists(m) == {(MIGRATE_UNMOVABLE, 0): [17], (MIGRATE_UNMOVABLE, 1): [18],
                        (MIGRATE_UNMOVABLE, 3): [24]}


def test_movable_fallback_from_half_a_pageblock_claims_it(area):
    # pageblock_order 4: pageblock_order / 2 = 2. Pageblock 1 [16, 32) is UNMOVABLE with
    # free blocks 16 (order 2) and 24 (order 3). A MOVABLE order-0 allocation falls back
    # at the largest order first: 24, order 3 >= 2, so MOVABLE may claim too
    # (can_steal_fallback()): the pageblock becomes MOVABLE with both blocks, and
    # __rmqueue_smallest(MOVABLE) splits the smallest, 16: 16 out, 18 (order 1), 17 back.
    m = bare(64, 4, 6, mt=MIGRATE_UNMOVABLE, area=area)
    free(m, 16, 2)
    free(m, 24, 3)
    assert m.free_area.py_rmqueue(0, MIGRATE_MOVABLE) == 16
    assert m.pageblock_flags[1] == MIGRATE_MOVABLE
    assert lists(m) == {(MIGRATE_MOVABLE, 0): [17], (MIGRATE_MOVABLE, 1): [18],
                        (MIGRATE_MOVABLE, 3): [24]}


def test_movable_fallback_below_half_a_pageblock_steals_without_claiming(area):
    # pageblock_order 4: pageblock_order / 2 = 2. A MOVABLE allocation that finds only
    # an order-1 UNMOVABLE block (1 < 2) cannot claim (can_steal_fallback()): it takes
    # the block and leaves the rest on the UNMOVABLE lists; the pageblock stays UNMOVABLE.
    m = bare(64, 4, 6, mt=MIGRATE_UNMOVABLE, area=area)
    free(m, 20, 1)
    assert m.free_area.py_rmqueue(0, MIGRATE_MOVABLE) == 20
    assert m.pageblock_flags[1] == MIGRATE_UNMOVABLE
    assert lists(m) == {(MIGRATE_UNMOVABLE, 0): [21]}
    # HIGHATOMIC and CMA have no fallbacks
    m = bare(64, 4, 6, area=area)
    free(m, 0, 4)
    assert m.free_area.py_rmqueue(0, MIGRATE_HIGHATOMIC) == -1
    assert m.free_area.py_rmqueue(0, MIGRATE_CMA) == -1


def test_isolation_splits_and_undoing_it_merges(area):
    # x86-like: MAX_PAGE_ORDER = pageblock_order + 1 (here 4 and 5). One free order-5
    # block at 0 = pageblocks 0 and 1. Isolating pageblock 1 splits it into its two
    # pageblocks (split_large_buddy()); pageblock 1's block goes to the ISOLATE list and
    # leaves NR_FREE_PAGES (32 - 16 = 16). Undoing it merges them back (order 5 at 0).
    m = bare(64, 4, 6, area=area)
    free(m, 0, 5)
    assert m.free_area.py_move_freepages_block(16, MIGRATE_ISOLATE) == 16
    assert lists(m) == {(MIGRATE_MOVABLE, 4): [0], (MIGRATE_ISOLATE, 4): [16]}
    assert m.pageblock_flags[1] == MIGRATE_MOVABLE | PB_migrate_isolate
    assert m.free_area.nr_free_pages() == 16 and m.free_area.nr_free_pages(True) == 32
    # a page freed into the isolated pageblock stays there: its order-4 buddy 0 is
    # MOVABLE, the isolated block does not merge (nothing to free here: pages are free)
    assert m.free_area.py_unset_migratetype_isolate(16) == 16
    assert m.pageblock_flags[1] == MIGRATE_MOVABLE
    assert lists(m) == {(MIGRATE_MOVABLE, 5): [0]}


def test_isolation_of_a_block_of_four_pageblocks_keeps_the_rest_merged(area):
    # Regression (split_large_buddy(): the pieces go through __free_one_page()). With
    # MAX_PAGE_ORDER >= pageblock_order + 2 (ppc64-64k: 5 and 8, s390x: 8 and 10; here 2
    # and 4) one free order-4 block at 0 is pageblocks 0, 4, 8, 12. Isolating pageblock 0
    # frees the pieces in turn: 0 (ISOLATE) alone; 4: its order-2 buddy 0 is isolated,
    # no merge; 8: buddy 12 not free yet; 12: buddy 8 free and MOVABLE -> order 3 at 8,
    # whose order-3 buddy 8 ^ 8 = 0 is an order-2 block: stop.
    m = bare(16, 2, 5, area=area)
    free(m, 0, 4)
    m.free_area.py_move_freepages_block(0, MIGRATE_ISOLATE)
    assert lists(m) == {(MIGRATE_ISOLATE, 2): [0], (MIGRATE_MOVABLE, 2): [4],
                        (MIGRATE_MOVABLE, 3): [8]}
    # undoing it frees 0 again (__putback_isolated_page()): 0 + 4 -> order 3 at 0, then
    # 0 + 8 -> order 4 at 0: the block as it was, not [0-7, 8-11, 12-15]
    m.free_area.py_unset_migratetype_isolate(0)
    assert lists(m) == {(MIGRATE_MOVABLE, 4): [0]}


def test_isolation_keeps_the_stored_type(area):
    # v6.16+: isolation is a bit next to the stored type, so undoing it restores the
    # pageblock's own type (RECLAIMABLE here), not a type passed by the caller.
    m = bare(64, 4, 6, mt=MIGRATE_RECLAIMABLE, area=area)
    free(m, 16, 3)
    m.free_area.py_move_freepages_block(16, MIGRATE_ISOLATE)
    assert lists(m) == {(MIGRATE_ISOLATE, 3): [16]}
    m.free_area.py_unset_migratetype_isolate(16)
    assert m.pageblock_flags[1] == MIGRATE_RECLAIMABLE
    assert lists(m) == {(MIGRATE_RECLAIMABLE, 3): [16]}


def test_claim_range_gives_back_the_rest_in_aligned_chunks(area):
    # A free order-4 block at 0 (pages 0..15); claim [5, 7). The block is removed and
    # [0, 5) and [7, 16) go back in the largest aligned chunks below order 4:
    # [0, 5) = 0 (order 2) + 4 (order 0); [7, 16) = 7 (order 0) + 8 (order 3).
    m = bare(64, 4, 6, area=area)
    free(m, 0, 4)
    assert m.free_area.claim_ranges(np.array([5], np.int64), 2) == -1
    assert lists(m) == {(MIGRATE_MOVABLE, 0): [4, 7], (MIGRATE_MOVABLE, 2): [0],
                        (MIGRATE_MOVABLE, 3): [8]}
    # [5, 7) is no longer free: the second range fails (index 1), the first is claimed
    assert m.free_area.claim_ranges(np.array([8, 5], np.int64), 2) == 1
    assert lists(m) == {(MIGRATE_MOVABLE, 0): [4, 7], (MIGRATE_MOVABLE, 1): [10],
                        (MIGRATE_MOVABLE, 2): [0, 12]}


def test_alloc_bulk_watermark_above_the_pcp_orders(area):
    # Order 4 goes to the buddy directly (pcp_allowed_order(): above
    # PAGE_ALLOC_COSTLY_ORDER and not pageblock_order 7). 64 free pages, keep_free 32:
    # 64 - 16 + 1 = 49 > 32, 48 - 15 = 33 > 32 (by one), 32 - 15 = 17: two blocks.
    m = bare(256, 7, 8, area=area)
    free(m, 0, 6)
    out = np.full(4, -1, np.int64)
    assert m.free_area.alloc_bulk(4, MIGRATE_MOVABLE, 4, 0, 1, 32, out) == 2
    assert out[:2].tolist() == [0, 16] and m.free_area.pcp_count == 0
    # keep_free 48: 64 - 16 + 1 = 49 > 48 passes by the + 1 alone: one block
    m = bare(256, 7, 8, area=area)
    free(m, 0, 6)
    assert m.free_area.alloc_bulk(4, MIGRATE_MOVABLE, 4, 0, 1, 48, out) == 1


def test_alloc_bulk_watermark_and_folios(area):
    # 16 free pages (one order-4 block at 0). Order-2 blocks while the zone keeps more
    # than keep_free = 8 afterwards: __zone_watermark_ok() is free - 2^2 + 1 > 8, so
    # 16 - 3 = 13 > 8 (yes), 12 - 3 = 9 > 8 (yes, by one: without the + 1 it is 8 > 8),
    # 8 - 3 = 5 > 8 (no): two blocks.
    m = bare(64, 4, 6, area=area)
    free(m, 0, 4)
    out = np.full(4, -1, np.int64)
    assert m.free_area.alloc_bulk(2, MIGRATE_MOVABLE, 4, PG_lru, 42, 8, out) == 2
    assert out[:2].tolist() == [0, 4]
    folio = m.mem_map[0:4]
    assert folio["flags"].tolist() == [zone_bits(0, 2) | PG_lru | PG_head] + \
        [zone_bits(0, 2) | PG_lru | PG_tail] * 3
    assert folio["order"].tolist() == [2] * 4 and folio["refcount"].tolist() == [1] * 4
    assert folio["private"].tolist() == [42] * 4
    assert m.free_area.nr_free_pages() == 8
    # freeing both folios merges everything back into the order-4 block
    assert m.free_area.free_bulk(np.array([4, 0], np.int64)) == 8
    assert lists(m) == {(MIGRATE_MOVABLE, 4): [0]}
    assert m.mem_map[0:16]["flags"].tolist() == [zone_bits(0, 2)] * 16
    with pytest.raises(ValueError):
        m.free_area.alloc_bulk(0, MIGRATE_ISOLATE, 1, 0, 0, 0, out)
    with pytest.raises(ValueError):
        m.free_area.alloc_bulk(6, MIGRATE_MOVABLE, 1, 0, 0, 0, out)
    with pytest.raises(ValueError):
        m.free_area.alloc_bulk(0, MIGRATE_MOVABLE, 5, 0, 0, 0, out)


def _pcp_zone(area, kernel, high_min, high_max, batch, n=4096):
    """x86_64 geometry, one free order-10 block per 1024 pages, the running CPU's
    pageset given limits by `kernel`'s rules."""
    m = bare(n, 9, 11, area=area)
    for pfn in reversed(range(0, n, 1024)):          # a stack: the block at 0 on top
        free(m, pfn, 10)
    fa = m.free_area
    fa.pcp_autotune = kernel >= (6, 7)
    fa.pageset_update(high_min, high_max, batch)
    return m, fa


def _alloc(fa, order, count, keep=0, mt=MIGRATE_MOVABLE):
    out = np.full(count, -1, np.int64)
    n = fa.alloc_bulk(order, mt, count, 0, 7, keep, out)
    return out[:n].tolist()


def test_pcp_refill_of_6_1_is_batch_scaled_by_the_order(area):
    # v6.1 __rmqueue_pcplist(): a refill takes batch blocks, batch > 1 scaled down to
    # max(batch >> order, 2). batch 7: 7 order-0 pages (one handed out, 6 wait: count 6,
    # NR_FREE_PAGES 4096 - 7), the next 6 come off the list with no refill, the 8th
    # refills; order 2: max(7 >> 2, 2) = 2 blocks = 8 pages, one block waits (count +4);
    # order 9: max(7 >> 9, 2) = 2 blocks, one waits (+512): the order-9 half at 512 that
    # the first split left, then 1024, the lower half of the next order-10 block.
    m, fa = _pcp_zone(area, (6, 1), 20, 20, 7)
    assert _alloc(fa, 0, 1) == [0] and fa.pcp_count == 6
    assert fa.nr_free_pages() == 4096 - 7
    assert _alloc(fa, 0, 6) == [1, 2, 3, 4, 5, 6] and fa.pcp_count == 0
    assert fa.nr_free_pages() == 4096 - 7
    assert _alloc(fa, 0, 1) == [7] and fa.pcp_count == 6
    assert _alloc(fa, 2, 1) == [16] and fa.pcp_count == 6 + 4
    assert _alloc(fa, 9, 1) == [512] and fa.pcp_count == 6 + 4 + 512
    # the pages on the lists: unreferenced, not PageBuddy
    assert {i: h.tolist() for i, h in fa.pcp_lists().items()} == {
        1: list(range(8, 14)), 7: [20], 13: [1024]}     # pindex 3 * order + mt; THP movable
    assert m.mem_map["page_type"][20] == PGTY_NONE
    assert m.mem_map["refcount"][8:14].tolist() == [0] * 6


def test_pcp_frees_of_6_1_double_while_nothing_is_allocated(area):
    # v6.1 free_unref_page_commit(): at count >= high (20), free_pcppages_bulk() of
    # nr_pcp_free(): batch << free_factor clamped to [batch, high - batch] = [7, 13],
    # free_factor rising by one while batch << free_factor < high - batch, up to 5.
    # 42 pages allocated (6 refills of 7, count 0), then freed one by one: the 20th free
    # gives back 7 << 0 = 7 (free_factor -> 1): count 13; 7 more reach 20 and give back
    # clamp(14, 7, 13) = 13: count 7 (free_factor stays 1: 14 < 13 is false); 13 more
    # reach 20 again: 13 back, count 7. 40 frees in all (the 20th, 27th and 40th flush).
    m, fa = _pcp_zone(area, (6, 1), 20, 20, 7)
    heads = _alloc(fa, 0, 42)
    assert fa.pcp_count == 0 and fa.nr_free_pages() == 4096 - 42
    counts = []
    for pfn in heads[:40]:
        fa.free_bulk(np.array([pfn], np.int64))
        counts.append(fa.pcp_count)
    assert counts[18:21] == [19, 13, 14] and counts[25:27] == [19, 7]
    assert counts[39] == 7 and fa.pcp_state()[6] == 1            # free_factor
    # the pages given back are the oldest (the tail): the first 20 - 7 freed, merged
    assert fa.nr_free_pages() == 4096 - 42 + 33
    # an allocation halves free_factor (rmqueue_pcplist()) and takes the newest page
    assert _alloc(fa, 0, 1) == [heads[39]] and fa.pcp_state()[6] == 0
    # a drain gives everything back
    assert fa.drain_pages() == 6 and fa.pcp_count == 0


def test_drain_zone_pages_gives_back_a_batch_from_the_tail(area):
    # drain_zone_pages(): free_pcppages_bulk() of min(count, batch = 7). 14 pages
    # allocated (two refills of 7, count 0) and freed onto the list (under high 20):
    # the list is head first [13, 12, ..., 0]; the first drain gives back the tail,
    # the 7 freed first (0..6), then 7..13, then nothing.
    m, fa = _pcp_zone(area, (6, 1), 20, 20, 7)
    heads = _alloc(fa, 0, 14)
    assert heads == list(range(14)) and fa.pcp_count == 0
    for pfn in heads:
        fa.free_bulk(np.array([pfn], np.int64))
    assert fa.pcp_count == 14
    assert fa.drain_zone_pages() == 7
    assert fa.pcp_lists() and sorted(np.concatenate(list(fa.pcp_lists().values())).tolist()) == list(range(7, 14))
    assert fa.drain_zone_pages() == 7 and fa.pcp_count == 0
    assert fa.drain_zone_pages() == 0
    assert fa.nr_free_pages() == 4096


def test_pcp_free_high_gives_back_every_page(area):
    # free_unref_page_commit()'s free_high. v6.1: an order 1..3 block freed while
    # free_factor > 0 (frees have outrun allocations): nr_pcp_high() 0 and nr_pcp_free()
    # every page on the lists. v6.7+: such a block right after another
    # (PCPF_PREV_FREE_HIGH_ORDER) with free_count >= batch and count >= batch:
    # min(count, batch << 5) pages back. high 20 = high_min = high_max, batch 7; three
    # order-1 blocks come in one refill of max(7 >> 1, 2) = 3.
    m, fa = _pcp_zone(area, (6, 1), 20, 20, 7)
    pairs = _alloc(fa, 1, 3)
    singles = _alloc(fa, 0, 21)                   # 3 refills of 7: the list empty
    fa.free_bulk(np.array(singles[:12], np.int64))
    fa.free_bulk(np.array(pairs[:1], np.int64))   # free_factor 0: the block waits
    assert fa.pcp_count == 12 + 2 and fa.pcp_state()[6] == 0
    fa.free_bulk(np.array(singles[12:], np.int64))
    # the 6th of those reached 20: 7 back (free_factor -> 1), count 13, +3 = 16
    assert fa.pcp_count == 16 and fa.pcp_state()[6] == 1
    fa.free_bulk(np.array(pairs[1:2], np.int64))  # free_factor 1: everything back
    assert fa.pcp_count == 0
    # v6.12: refills of 7, then min(14, max(20 - 0 - 7, 7)) = 13 (alloc_factor 1 -> stays)
    m, fa = _pcp_zone(area, (6, 12), 20, 20, 7)
    pairs = _alloc(fa, 1, 3)
    singles = _alloc(fa, 0, 14)                   # 7 + 13 = 20 taken: 6 wait
    assert fa.pcp_count == 6
    fa.free_bulk(np.array(singles[:6], np.int64))          # count 12, free_count 6
    fa.free_bulk(np.array(pairs[:1], np.int64))   # 6 < batch: kept; free_count 8
    assert fa.pcp_count == 14
    fa.free_bulk(np.array(pairs[1:2], np.int64))  # in a row, 8 >= 7, 16 >= 7: all 16 back
    assert fa.pcp_count == 0


def test_pcp_refills_of_6_12_double_and_raise_high(area):
    # v6.7+ nr_pcp_alloc(), batch 7, high_min 40, high_max 400: each order-0 refill with
    # no free between asks for batch << alloc_factor (alloc_factor +1 per refill up to
    # CONFIG_PCP_BATCH_SCALE_MAX = 5) within max(high - count - batch, batch), after
    # raising pcp->high by that batch (the zone is above its high watermark):
    #   high 40 -> 47,  refill 7;   47 -> 61, 14;   61 -> 89, 28;   89 -> 145, 56;
    #   145 -> 257, 112;   257 -> min(481, 400) = 400, 224 (alloc_factor stays 5).
    m, fa = _pcp_zone(area, (6, 12), 40, 400, 7)
    assert len(_alloc(fa, 0, 7 + 14 + 28 + 56 + 112)) == 217
    assert fa.pcp_count == 0 and fa.nr_free_pages() == 4096 - 217
    st = fa.pcp_state()
    assert (st[1], st[7]) == (257, 5)                              # high, alloc_factor
    assert len(_alloc(fa, 0, 1)) == 1 and fa.pcp_count == 223 and fa.pcp_state()[1] == 400
    # a free halves alloc_factor (free_unref_page_commit()) and counts itself
    fa.free_bulk(np.array([0], np.int64))
    st = fa.pcp_state()
    assert (st[0], st[5], st[7]) == (224, 1, 2)                    # count, free_count


def test_decay_pcp_high_brings_a_quiet_pcp_back_to_high_min(area):
    # decay_pcp_high() (v6.7+, each vmstat pass): high = max(count - batch << 5,
    # high - high / 8, high_min), then the pages above high go back. After the 217-page
    # fill above, high is 257 with nothing listed; 100 frees (none reaches 257) leave
    # count 100. Passes: high 257 -> 225 -> 197 -> 173 -> 152 -> 133 -> 117 -> 103 -> 91
    # (9 pages drained: count 91) ... down to high_min 40 and count 40.
    m, fa = _pcp_zone(area, (6, 12), 40, 400, 7)
    heads = _alloc(fa, 0, 217)
    for pfn in heads[:100]:
        fa.free_bulk(np.array([pfn], np.int64))
    assert fa.pcp_state()[:2] == (100, 257)
    highs = []
    while fa.py_decay_pcp_high():
        highs.append(fa.pcp_state()[:2])
    assert highs[:8] == [(100, 225), (100, 197), (100, 173), (100, 152), (100, 133),
                         (100, 117), (100, 103), (91, 91)]
    assert fa.pcp_state()[:2] == (40, 40)
    # v6.1 has no such step
    m, fa = _pcp_zone(area, (6, 1), 20, 20, 7)
    _alloc(fa, 0, 1)
    assert not fa.py_decay_pcp_high() and fa.pcp_count == 6


def test_pcp_of_6_12_below_the_high_watermark(area):
    # get_page_from_freelist(): a zone at or below its high watermark (4096 free, high
    # 4096, min 0: 4096 - 2^0 + 1 > 4096 fails) gets ZONE_BELOW_HIGH, and nr_pcp_alloc() then
    # leaves pcp->high where it is (40), the refill still 7. A free that leaves the zone
    # above the high mark plus lowmem_reserve[MOVABLE] clears it, once it gives pages back.
    m, fa = _pcp_zone(area, (6, 12), 40, 400, 7)
    fa.wmark_min, fa.wmark_high = 0, 4096
    assert len(_alloc(fa, 0, 1)) == 1
    assert fa.below_high and fa.pcp_state()[1] == 40 and fa.pcp_count == 6
    fa.wmark_high = 100
    fa.free_bulk(np.array(_alloc(fa, 0, 6), np.int64))      # count 6 of high 40: no flush
    assert fa.below_high
    fa.drain_pages()
    assert fa.below_high                                     # a drain is not a free


def test_pcp_passes_isolated_pageblocks_by(area):
    # free_unref_page(): a block whose pageblock is MIGRATE_ISOLATE goes straight to the
    # buddy (free_one_page()), onto the ISOLATE list; others wait on the pcp list.
    m, fa = _pcp_zone(area, (6, 1), 20, 20, 7)
    heads = _alloc(fa, 0, 7)
    fa.py_move_freepages_block(0, MIGRATE_ISOLATE)
    fa.free_bulk(np.array(heads[:2], np.int64))        # pfns 0 and 1: they merge there
    assert fa.pcp_count == 0 and fa.blocks(MIGRATE_ISOLATE, 1).tolist() == [0]
    fa.free_bulk(np.array(heads[2:3], np.int64))        # its pageblock too
    # (7, the free rest of the split 8-page block, was isolated with the pageblock)
    assert fa.pcp_count == 0 and fa.blocks(MIGRATE_ISOLATE, 0).tolist() == [7, 2]


def test_boot_pageset_keeps_nothing(area):
    # per_cpu_pages_init()'s high 0, batch 1: a refill is one block, handed out; a free
    # reaches high at once and nr_pcp_free() (high < batch) gives back one: the lists stay
    # empty, and the buddy is what it would be without them.
    m, fa = _pcp_zone(area, (6, 1), 0, 0, 1)
    heads = _alloc(fa, 0, 5)
    assert fa.pcp_count == 0 and fa.nr_free_pages() == 4096 - 5
    fa.free_bulk(np.array(heads, np.int64))
    assert fa.pcp_count == 0 and fa.nr_free_pages() == 4096
    assert fa.counts()[MIGRATE_MOVABLE, 10] == 4


# ---------------------------------------------------------------------------------------
# 3. the state machine
# ---------------------------------------------------------------------------------------
class BuddyMachine(RuleBasedStateMachine):
    """FreeArea and its twin, each over its own copy of one small zone, driven by the
    same random steps. Pages are either free (on a list) or held by the test (allocated
    blocks, by head and order) or on the running CPU's pcp lists; nothing else, so free +
    pcp + held = every page."""

    @initialize(pbo=st.integers(1, 5), above=st.integers(0, 3), units=st.integers(1, 3),
                split_zone=st.booleans(), types=st.randoms(use_true_random=False),
                pcp=st.sampled_from([None, "6.1", "6.12"]), batch=st.integers(1, 7),
                high=st.integers(0, 48), spread=st.sampled_from([0, 0, 16, 200]),
                wmarks=st.sampled_from([(0, 0), (2, 20), (5, 300)]))
    def setup(self, pbo, above, units, split_zone, types, pcp, batch, high, spread, wmarks):
        nr_orders = pbo + above + 1
        n = units << (nr_orders - 1)
        mm = np.zeros(n, PAGE_DTYPE)
        mm["flags"] = zone_bits(0, 2)
        if split_zone and n >> pbo > 1:
            # a second zone from a pageblock boundary: page_is_buddy() must refuse
            # the buddies that straddle it (one area over both is a test shortcut)
            mm["flags"][(n >> pbo) // 2 << pbo:] = zone_bits(0, 3)
        mm["refcount"] = 1
        pbf = np.array([types.choice(PCP_TYPES * 3 + [MIGRATE_HIGHATOMIC, MIGRATE_CMA])
                        for _ in range(n >> pbo)], np.uint8)
        self.m = Machine(mm, pbf, FreeArea(mm, pbf, nr_orders, pbo), pbo, nr_orders)
        self.t = Machine(mm.copy(), pbf.copy(), None, pbo, nr_orders)
        self.t.free_area = Twin(self.t.mem_map, self.t.pageblock_flags, nr_orders, pbo)
        # the running CPU's pcp lists: none (boot pageset: high 0, batch 1), or limits by
        # the v6.1 or the v6.7+ rules (high_min..high_max, ZONE_BELOW_HIGH against the
        # watermarks), set before the first frees so that they go through the lists too
        for fa in (self.m.free_area, self.t.free_area):
            if pcp is not None:
                fa.pcp_autotune = pcp == "6.12"
                fa.wmark_min, fa.wmark_high = wmarks
                fa.pageset_update(high, high + (spread if pcp == "6.12" else 0), batch)
        # every page starts allocated at order 0; then, per MAX_PAGE_ORDER unit, whole
        # aligned blocks are freed, others split in two and the halves drawn again, so
        # that large free blocks (several pageblocks) are there from the first step
        self.held = list(range(n))
        self.n = n
        freed = []

        def region(pfn, order):
            x = types.random()
            zones = mm["flags"][pfn:pfn + (1 << order)]
            if x < 0.45 and (zones == zones[0]).all():        # never across two zones
                freed.append((pfn, order))
            elif order and x < 0.9 or x < 0.45:
                region(pfn, order - 1)
                region(pfn + (1 << (order - 1)), order - 1)
        for pfn in range(0, n, 1 << (nr_orders - 1)):
            region(pfn, nr_orders - 1)
        for pfn, order in freed:
            for side in (self.m, self.t):
                side.mem_map["order"][pfn:pfn + (1 << order)] = order
        gone = {q for pfn, order in freed for q in range(pfn, pfn + (1 << order))}
        self.held = [q for q in self.held if q not in gone]
        arr = np.array([pfn for pfn, _ in freed], np.int64)
        self.both(lambda fa: fa.free_bulk(arr), "initial frees")

    def both(self, call, label):
        return both(self.m, self.t, call, label)

    @rule(data=st.data())
    def free_some(self, data):
        """free_bulk() of up to 8 held blocks (merging on free)."""
        if not self.held:
            return
        k = data.draw(st.integers(1, min(8, len(self.held))))
        idx = data.draw(st.lists(st.integers(0, len(self.held) - 1), min_size=k,
                                 max_size=k, unique=True))
        picked = [self.held[i] for i in idx]
        self.held = [h for i, h in enumerate(self.held) if i not in set(idx)]
        arr = np.array(picked, np.int64)
        self.both(lambda fa: fa.free_bulk(arr), f"free {picked}")

    @rule(order=st.integers(0, 8), mt=st.sampled_from(PCP_TYPES + [MIGRATE_HIGHATOMIC]),
          count=st.integers(1, 6), keep=st.sampled_from([0, 0, 3, 40]))
    def alloc(self, order, mt, count, keep):
        """alloc_bulk(): __rmqueue() with fallback stealing, while above keep_free."""
        order = min(order, self.m.nr_orders - 1)

        def call(fa):
            out = np.full(count, -1, np.int64)
            n = fa.alloc_bulk(order, mt, count, 0, 1, keep, out)
            return out[:n].tolist()
        self.held += self.both(call, f"alloc order {order} mt {mt} x{count}")

    @rule()
    def drain(self):
        """drain_pages_zone(): the pcp lists back to the buddy."""
        self.both(lambda fa: fa.drain_pages(), "drain")

    @rule()
    def drain_zone(self):
        """drain_zone_pages(): a batch of the pcp lists back to the buddy (the vmstat
        worker's drain of a remote zone)."""
        self.both(lambda fa: fa.drain_zone_pages(), "drain_zone")

    @rule(high=st.integers(0, 48), spread=st.sampled_from([0, 16, 200]),
          batch=st.integers(1, 7))
    def pageset(self, high, spread, batch):
        """pageset_update() with new limits (zone_pcp_update(), or high 0 and batch 1 as
        zone_pcp_disable() sets them)."""
        hi_max = high + (spread if self.m.free_area.pcp_autotune else 0)
        self.both(lambda fa: fa.pageset_update(high, hi_max, batch),
                  f"pageset {high}..{hi_max} batch {batch}")

    @rule(data=st.data())
    def isolate(self, data):
        """move_freepages_block(MIGRATE_ISOLATE) of one pageblock."""
        pb = data.draw(st.integers(0, (self.n >> self.m.pageblock_order) - 1))
        self.both(lambda fa: fa.py_move_freepages_block(pb << self.m.pageblock_order,
                                                        MIGRATE_ISOLATE), f"isolate {pb}")

    @precondition(lambda self: (self.m.pageblock_flags & PB_migrate_isolate).any())
    @rule(data=st.data())
    def unisolate(self, data):
        """unset_migratetype_isolate() of one isolated pageblock."""
        isolated = np.flatnonzero(self.m.pageblock_flags & PB_migrate_isolate).tolist()
        pb = data.draw(st.sampled_from(isolated))
        self.both(lambda fa: fa.py_unset_migratetype_isolate(pb << self.m.pageblock_order),
                  f"unisolate {pb}")

    @rule(data=st.data())
    def claim(self, data):
        """claim_ranges() of an aligned run inside a free block: the pages become held
        order-0 blocks (as a rolled-back migration leaves them: allocated)."""
        heads = free_heads(self.m).tolist()
        if not heads:
            return
        h = data.draw(st.sampled_from(heads))
        o = int(self.m.mem_map["order"][h])
        nr = 1 << data.draw(st.integers(0, o))
        start = h + nr * data.draw(st.integers(0, (1 << o) // nr - 1))
        arr = np.array([start], np.int64)
        assert self.both(lambda fa: fa.claim_ranges(arr, nr), f"claim {start}+{nr}") == -1
        for side in (self.m, self.t):
            pages = side.mem_map[start:start + nr]
            pages["refcount"], pages["order"] = 1, 0
        self.held += range(start, start + nr)

    @invariant()
    def same_state(self):
        if hasattr(self, "m"):
            assert_same_machine(self.m, self.t, "invariant")

    @invariant()
    def lists_are_consistent(self):
        if hasattr(self, "m"):
            check_lists(self.m)
            check_lists(self.t)

    @invariant()
    def no_unmerged_buddies(self):
        if hasattr(self, "m"):
            assert unmerged_buddies(self.m) == []

    @invariant()
    def counts_add_up(self):
        """Free pages on the lists + pages held = every page; NR_FREE_PAGES leaves out
        exactly the pages on the ISOLATE lists."""
        if not hasattr(self, "m"):
            return
        held = sum(1 << int(self.m.mem_map["order"][h]) for h in self.held)
        fa = self.m.free_area
        on_lists = sum(len(fa.blocks(mt, o)) << o for mt in range(MIGRATE_TYPES)
                       for o in range(self.m.nr_orders))
        assert fa.nr_free_pages(True) == on_lists
        pcp = sum(len(h) << fa.pcp_list_order(i) for i, h in fa.pcp_lists().items())
        assert pcp == fa.pcp_count
        assert on_lists + pcp + held == self.n
        isolated = sum(len(fa.blocks(MIGRATE_ISOLATE, o)) << o
                       for o in range(self.m.nr_orders))
        assert fa.nr_free_pages() == on_lists - isolated


TestBuddyMachine = BuddyMachine.TestCase
TestBuddyMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow_fuzz
def test_buddy_machine_long():
    """The same machine for longer: pytest -m slow_fuzz."""
    from hypothesis.stateful import run_state_machine_as_test
    run_state_machine_as_test(BuddyMachine, settings=settings(
        max_examples=1000, stateful_step_count=60, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
