"""Tests for pagecore.fragmentation against hand-worked mm/vmstat.c arithmetic.

Notation in the comments: n_k = free blocks of order k, F = free pages
(sum n_k * 2**k), T = free blocks (sum n_k), S(o) = suitable blocks for
order o (sum over k >= o of n_k * 2**(k - o)), R = 2**o requested pages,
"/" = integer (div_u64) division.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagecore.fragmentation import (
    FREECOUNT_CAP,
    MIGRATE_CMA,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATETYPE_NAMES,
    ContigPageInfo,
    ZoneFreeInfo,
    contig_info,
    extfrag_for_order,
    extfrag_index,
    format_buddyinfo,
    format_extfrag,
    format_pagetypeinfo,
    format_unusable,
    fragmentation_index,
    printed_migratetypes,
    unusable_index,
    unusable_indices,
    zone_nr_free,
)


def a(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def zone(nid, name, per_order_movable=None, *, free=None, blocks=None, populated=True, mixed=None):
    """Zone whose free blocks all sit on the Movable lists unless ``free`` is given."""
    if free is None:
        per_order = np.asarray(per_order_movable, dtype=np.int64)
        free = np.zeros((6, per_order.shape[0]), dtype=np.int64)
        free[MIGRATE_MOVABLE] = per_order
    if blocks is None:
        blocks = np.zeros(6, dtype=np.int64)
    return ZoneFreeInfo(
        nid=nid,
        name=name,
        free_counts=np.asarray(free, dtype=np.int64),
        pageblock_counts=np.asarray(blocks, dtype=np.int64),
        populated=populated,
        mixed_counts=None if mixed is None else np.asarray(mixed, dtype=np.int64),
    )


# ---------------------------------------------------------------------------
# Hand-computed values
# ---------------------------------------------------------------------------

# Example A: n = [4, 2, 1, 0] (orders 0..3)
#   F = 4*1 + 2*2 + 1*4 + 0*8 = 12,  T = 4 + 2 + 1 + 0 = 7
#   S(0) = 4 + 2*2 + 1*4 = 12, S(1) = 2 + 1*2 = 4, S(2) = 1, S(3) = 0
EX_A = a(4, 2, 1, 0)


def test_contig_info_example_a():
    assert contig_info(EX_A, 0) == ContigPageInfo(12, 7, 12)
    assert contig_info(EX_A, 1) == (12, 7, 4)
    assert contig_info(EX_A, 2) == (12, 7, 1)
    assert contig_info(EX_A, 3) == (12, 7, 0)
    # suitable_order beyond the last order: nothing is suitable
    assert contig_info(EX_A, 7) == (12, 7, 0)


def test_fragmentation_index_example_a():
    # orders 0, 1, 2: S > 0 -> -1000 (the allocation would succeed)
    assert [fragmentation_index(EX_A, o) for o in range(3)] == [-1000, -1000, -1000]
    # order 3: R = 8, S = 0
    #   div_u64(F * 1000, R)      = 12000 / 8    = 1500
    #   div_u64(1000 + 1500, T)   = 2500 / 7     = 357   (357.14...)
    #   1000 - 357                = 643
    assert fragmentation_index(EX_A, 3) == 643
    assert extfrag_index(EX_A) == [-1000, -1000, -1000, 643]


def test_unusable_index_example_a():
    # (F - (S(o) << o)) * 1000 / F
    #   order 0: (12 - 12) * 1000 / 12 = 0
    #   order 1: (12 - 4*2) * 1000 / 12 = 4000 / 12 = 333  (333.3)
    #   order 2: (12 - 1*4) * 1000 / 12 = 8000 / 12 = 666  (666.6, truncated not rounded)
    #   order 3: (12 - 0) * 1000 / 12 = 1000
    assert [unusable_index(EX_A, o) for o in range(4)] == [0, 333, 666, 1000]
    assert unusable_indices(EX_A) == [0, 333, 666, 1000]


def test_extfrag_for_order_example_a():
    # (F - (S(o) << o)) * 100 / F
    #   order 1: 4 * 100 / 12 = 33;  order 2: 800 / 12 = 66;  order 3: 1200 / 12 = 100
    assert [extfrag_for_order(EX_A, o) for o in range(4)] == [0, 33, 66, 100]
    # no free pages: extfrag_for_order returns 0 (unusable_free_index returns 1000)
    assert extfrag_for_order(a(0, 0, 0), 2) == 0


def test_example_b_rounding():
    # n = [5, 3, 0, 0]: F = 5 + 3*2 = 11, T = 8
    ex = a(5, 3, 0, 0)
    # order 2: R = 4: 11000 / 4 = 2750; (1000 + 2750) / 8 = 3750 / 8 = 468 (468.75); 1000 - 468 = 532
    assert fragmentation_index(ex, 2) == 532
    # order 3: R = 8: 11000 / 8 = 1375; 2375 / 8 = 296 (296.875); 1000 - 296 = 704
    assert fragmentation_index(ex, 3) == 704
    # unusable order 1: S(1) = 3, (11 - 6) * 1000 / 11 = 5000 / 11 = 454 (454.5)
    assert unusable_index(ex, 1) == 454


def test_negative_index_single_small_block():
    # n = [1, 0, 0]: F = 1, T = 1, a single order-0 page.
    ex = a(1, 0, 0)
    # order 1: R = 2: 1000 / 2 = 500; (1000 + 500) / 1 = 1500; 1000 - 1500 = -500
    assert fragmentation_index(ex, 1) == -500
    # order 2: R = 4: 1000 / 4 = 250; 1250 / 1 = 1250; 1000 - 1250 = -250
    assert fragmentation_index(ex, 2) == -250
    assert extfrag_index(ex) == [-1000, -500, -250]
    # unusable: order 0 -> 0, orders 1, 2: (1 - 0) * 1000 / 1 = 1000
    assert unusable_indices(ex) == [0, 1000, 1000]


def test_negative_index_small_magnitudes():
    # one order-0 page, 11 orders (0..10).
    ex = a(1, *([0] * 10))
    # order 7: 1000 / 128 = 7; 1000 - 1007 = -7
    assert fragmentation_index(ex, 7) == -7
    # order 10: 1000 / 1024 = 0; 1000 - 1000 = 0
    assert fragmentation_index(ex, 10) == 0


def test_empty_zone():
    # F = T = 0: __fragmentation_index returns 0, unusable_free_index returns 1000
    ex = a(0, 0, 0, 0)
    assert extfrag_index(ex) == [0, 0, 0, 0]
    assert unusable_indices(ex) == [1000, 1000, 1000, 1000]


def test_order_above_max_page_order_warns_and_returns_zero():
    # WARN_ON_ONCE(order > MAX_PAGE_ORDER) -> 0; MAX_PAGE_ORDER = len - 1 = 3,
    # even though a smaller block exists and order 3 itself gives 643
    with pytest.warns(RuntimeWarning, match="MAX_PAGE_ORDER"):
        assert fragmentation_index(EX_A, 4) == 0


def test_u32_divisor_truncation():
    # div_u64 takes a u32 divisor. n = [2**32 + 1, 0]: F = T = 2**32 + 1, order 1, R = 2
    #   F * 1000 / 2                 = 500 * 2**32 + 500
    #   (1000 + that) / (T as u32=1) = 500 * 2**32 + 1500
    #   1000 - that                  = -(500 * 2**32) - 500  -> as 32-bit int: -500
    # (with a 64-bit divisor the answer would be 1000 - 500 = 500)
    ex = a(2**32 + 1, 0)
    assert fragmentation_index(ex, 1) == -500
    # T = 2**32 truncates to 0: a divide error in the kernel
    with pytest.raises(ZeroDivisionError):
        fragmentation_index(a(2**32, 0), 1)
    # unusable_free_index divides by free_pages, likewise truncated
    with pytest.raises(ZeroDivisionError):
        unusable_index(a(2**32, 0), 0)
    # ... and a non-zero truncated divisor: n = [2**32 + 3, 0], order 1, S(1) = 0
    #   (F - 0) * 1000 / (F as u32 = 3) = 4294967299000 / 3 = 1431655766333
    #   = 333 * 2**32 + 1431656765  -> as 32-bit int: 1431656765
    assert unusable_index(a(2**32 + 3, 0), 1) == 1431656765


def test_input_validation():
    with pytest.raises(ValueError):
        contig_info(a(1, -1), 0)
    with pytest.raises(TypeError):
        contig_info(np.array([1.0, 2.0]), 0)
    with pytest.raises(ValueError):
        contig_info(np.zeros((2, 2), dtype=np.int64), 0)
    with pytest.raises(ValueError):
        fragmentation_index(EX_A, -1)
    with pytest.raises(ValueError):
        unusable_index(EX_A, 4)


def test_zone_nr_free_sums_migratetypes():
    free = np.zeros((6, 3), dtype=np.int64)
    free[0] = [1, 0, 2]
    free[MIGRATE_MOVABLE] = [3, 4, 0]
    free[MIGRATE_ISOLATE] = [0, 5, 0]  # isolated free pages are on a free list too
    assert zone_nr_free(free).tolist() == [4, 9, 2]
    with pytest.raises(ValueError):
        zone_nr_free(np.zeros((5, 3), dtype=np.int64))


def test_printed_migratetypes():
    assert printed_migratetypes() == [0, 1, 2, 3, MIGRATE_ISOLATE]
    assert printed_migratetypes(config_cma=True) == [0, 1, 2, 3, MIGRATE_CMA, MIGRATE_ISOLATE]
    assert printed_migratetypes(config_cma=True, config_memory_isolation=False) == [0, 1, 2, 3, 4]
    assert [MIGRATETYPE_NAMES[i] for i in printed_migratetypes(False, False)] == [
        "Unmovable", "Movable", "Reclaimable", "HighAtomic",
    ]


# ---------------------------------------------------------------------------
# Exact text
# ---------------------------------------------------------------------------

TEXT_ZONES = [
    zone(0, "DMA32", [4, 2, 1, 0]),          # example A
    zone(0, "Normal", [1, 0, 0, 0]),         # single order-0 page
    zone(0, "Movable", [0, 0, 0, 0], populated=False),   # skipped
    zone(1, "Normal", [0, 0, 0, 0]),         # populated but nothing free
]


def test_format_buddyinfo_exact():
    free = np.zeros((6, 4), dtype=np.int64)
    free[0] = [12, 0, 1, 0]
    free[MIGRATE_MOVABLE] = [1000, 35, 0, 123456]
    free[MIGRATE_ISOLATE] = [2, 0, 0, 0]
    zones = [zone(0, "DMA32", free=free), *TEXT_ZONES[2:]]
    # "Node %d, zone %8s " then "%6lu " of nr_free = column sums: 1014, 35, 1, 123456
    expected = (
        "Node 0, zone    DMA32   1014     35      1 123456 \n"
        "Node 1, zone   Normal      0      0      0      0 \n"
    )
    assert format_buddyinfo(zones) == expected


def test_format_extfrag_exact():
    # "%2d.%03d " with C int division: -1000 -> "-1.000", 643 -> " 0.643",
    # -500 -> 0 and -500 -> " 0.-500", 0 -> " 0.000"
    expected = (
        "Node 0, zone    DMA32 -1.000 -1.000 -1.000  0.643 \n"
        "Node 0, zone   Normal -1.000  0.-500  0.-250  0.-125 \n"
        "Node 1, zone   Normal  0.000  0.000  0.000  0.000 \n"
    )
    assert format_extfrag(TEXT_ZONES) == expected


def test_format_extfrag_small_negative_zero_padded():
    # -7 / 1000 = 0, -7 % 1000 = -7, "%03d" of -7 is "-07"
    z = zone(3, "HighMem", [1, 0, 0, 0, 0, 0, 0, 0])
    assert format_extfrag([z]) == (
        "Node 3, zone  HighMem -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15  0.-07 \n"
    )


def test_format_unusable_exact():
    # "%d.%03d ": 333 -> "0.333", 1000 -> "1.000"
    expected = (
        "Node 0, zone    DMA32 0.000 0.333 0.666 1.000 \n"
        "Node 0, zone   Normal 0.000 1.000 1.000 1.000 \n"
        "Node 1, zone   Normal 1.000 1.000 1.000 1.000 \n"
    )
    assert format_unusable(TEXT_ZONES) == expected


def _ptinfo_zones():
    free = np.zeros((6, 3), dtype=np.int64)
    free[0] = [1, 0, 0]
    free[MIGRATE_MOVABLE] = [FREECOUNT_CAP - 1, FREECOUNT_CAP, 250000]
    free[2] = [0, 2, 0]
    free[3] = [0, 0, 1]
    free[MIGRATE_ISOLATE] = [3, 0, 0]
    return [
        zone(0, "DMA32", free=free, blocks=[1, 6, 0, 1, 0, 2], mixed=[0, 1, 0, 0, 0, 0]),
        zone(0, "Movable", [0, 0, 0], populated=False),
        zone(1, "Normal", [0, 0, 0], populated=False),  # memoryless node: nothing at all
        zone(2, "Normal", [0, 0, 4], blocks=[0, 3, 0, 0, 0, 0], mixed=[0, 0, 0, 0, 0, 0]),
    ]


def test_format_pagetypeinfo_exact():
    # Freecount: 99999 -> " 99999"; 100000 -> ">100000" (the walk stops when
    # ++freecount >= 100000, so exactly 100000 also gets ">"); 250000 -> ">100000".
    # "%-43s " pads the 42-character title to 43, then one space.
    # "\n%-23s" pads the 22-character "Number of blocks type " to 23.
    expected = "".join([
        "Page block order: 2\n",
        "Pages per block:  4\n",
        "\n",
        "Free pages count per migrate type at order       0      1      2 \n",
        "Node    0, zone    DMA32, type    Unmovable      1      0      0 \n",
        "Node    0, zone    DMA32, type      Movable  99999 >100000 >100000 \n",
        "Node    0, zone    DMA32, type  Reclaimable      0      2      0 \n",
        "Node    0, zone    DMA32, type   HighAtomic      0      0      1 \n",
        "Node    0, zone    DMA32, type      Isolate      3      0      0 \n",
        "\n",
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n",
        "Node 0, zone    DMA32            1            6            0            1            2 \n",
        # node 1 has no populated zone: pagetypeinfo_show returns early
        "Page block order: 2\n",
        "Pages per block:  4\n",
        "\n",
        "Free pages count per migrate type at order       0      1      2 \n",
        "Node    2, zone   Normal, type    Unmovable      0      0      0 \n",
        "Node    2, zone   Normal, type      Movable      0      0      4 \n",
        "Node    2, zone   Normal, type  Reclaimable      0      0      0 \n",
        "Node    2, zone   Normal, type   HighAtomic      0      0      0 \n",
        "Node    2, zone   Normal, type      Isolate      0      0      0 \n",
        "\n",
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n",
        "Node 2, zone   Normal            0            3            0            0            0 \n",
    ])
    assert format_pagetypeinfo(_ptinfo_zones(), pageblock_order=2) == expected


def test_format_pagetypeinfo_cma_no_isolation_page_owner():
    z = zone(0, "Normal", free=np.zeros((6, 2), dtype=np.int64), blocks=[2, 5, 1, 0, 4, 0], mixed=[1, 0, 0, 0, 0, 0])
    z.free_counts[MIGRATE_CMA] = [7, 1]
    # "Number of mixed blocks " is exactly 23 characters, so no padding.
    expected = "".join([
        "Page block order: 9\n",
        "Pages per block:  512\n",
        "\n",
        "Free pages count per migrate type at order       0      1 \n",
        "Node    0, zone   Normal, type    Unmovable      0      0 \n",
        "Node    0, zone   Normal, type      Movable      0      0 \n",
        "Node    0, zone   Normal, type  Reclaimable      0      0 \n",
        "Node    0, zone   Normal, type   HighAtomic      0      0 \n",
        "Node    0, zone   Normal, type          CMA      7      1 \n",
        "\n",
        "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA \n",
        "Node 0, zone   Normal            2            5            1            0            4 \n",
        "\n",
        "Number of mixed blocks    Unmovable      Movable  Reclaimable   HighAtomic          CMA \n",
        "Node 0, zone   Normal            1            0            0            0            0 \n",
    ])
    out = format_pagetypeinfo(
        [z], 9, config_cma=True, config_memory_isolation=False, page_owner=True
    )
    assert out == expected


def test_format_pagetypeinfo_rejects_unconfigured_counts():
    # CMA counts without CONFIG_CMA cannot come from a real kernel
    z = zone(0, "Normal", free=np.zeros((6, 2), dtype=np.int64))
    z.free_counts[MIGRATE_CMA] = [1, 0]
    with pytest.raises(ValueError, match="CMA"):
        format_pagetypeinfo([z], 9)
    # ... and Isolate pageblocks without CONFIG_MEMORY_ISOLATION
    z2 = zone(0, "Normal", [0, 0], blocks=[0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="Isolate"):
        format_pagetypeinfo([z2], 9, config_memory_isolation=False)
    with pytest.raises(ValueError, match="mixed_counts"):
        format_pagetypeinfo([zone(0, "Normal", [1, 0])], 9, page_owner=True)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

# Keep F < 2**32 pages so that the u32 divisor truncation of div_u64 (tested
# above) does not kick in: at most 12 orders of at most 2**20 blocks.
counts_st = st.lists(
    st.one_of(st.just(0), st.integers(0, 4), st.integers(0, 2**20)),
    min_size=1,
    max_size=12,
).map(lambda xs: np.array(xs, dtype=np.int64))


@st.composite
def counts_and_order(draw):
    counts = draw(counts_st)
    return counts, draw(st.integers(0, len(counts) - 1))


def _pages(counts):
    return sum(int(c) << k for k, c in enumerate(counts))


@given(counts_and_order())
def test_contig_info_matches_direct_sums(co):
    counts, order = co
    info = contig_info(counts, order)
    assert info.free_pages == _pages(counts)
    assert info.free_blocks_total == int(counts.sum())
    assert info.free_blocks_suitable == sum(int(counts[k]) * 2 ** (k - order) for k in range(order, len(counts)))
    assert info.free_blocks_suitable << order <= info.free_pages


@given(counts_st)
def test_unusable_in_range_and_monotonic(counts):
    u = unusable_indices(counts)
    assert all(0 <= x <= 1000 for x in u)
    assert all(x <= y for x, y in zip(u, u[1:]))
    # order 0: every free page is usable
    assert u[0] == (0 if counts.any() else 1000)


@given(counts_and_order())
def test_unusable_is_truncated_share_of_pages_in_smaller_blocks(co):
    counts, order = co
    free = _pages(counts)
    small = sum(int(counts[k]) << k for k in range(order))
    expected = 1000 if free == 0 else small * 1000 // free
    assert unusable_index(counts, order) == expected
    if free:
        # floor(floor(1000 x) / 10) == floor(100 x)
        assert extfrag_for_order(counts, order) == expected // 10


@given(counts_and_order())
def test_minus_1000_iff_suitable_block_exists(co):
    counts, order = co
    idx = fragmentation_index(counts, order)
    assert (idx == -1000) == bool(counts[order:].any())


def test_fragmentation_index_reaches_1000():
    # __fragmentation_index() with 42667 free order-1 blocks (85334 pages) and a request
    # of order 11 (2048 pages): 85334 * 1000 // 2048 = 41666, (1000 + 41666) // 42667
    # = 0, so 1000 - 0 = 1000, past the "between 0 and 1" of the kernel's comment.
    counts = np.zeros(12, np.int64)
    counts[1] = 42667
    assert fragmentation_index(counts, 11) == 1000
    counts[1] = 42666                   # 85332000 // 2048 = 41666, 42666 // 42666 = 1
    assert fragmentation_index(counts, 11) == 999
    counts[1] = 4000                    # 8000000 // 2048 = 3906; 4906 // 4000 = 1
    assert fragmentation_index(counts, 11) == 999


@given(counts_and_order())
def test_fragmentation_index_against_exact_formula(co):
    counts, order = co
    idx = fragmentation_index(counts, order)
    total = int(counts.sum())
    if total == 0:
        assert idx == 0
        return
    if counts[order:].any():
        return
    # 1 - (1 + F/R) / T in thousandths, exact; the two truncations can only
    # raise the kernel's value, by less than 1 + 1/T <= 2
    ref = 1000 - (1000 + Fraction(1000 * _pages(counts), 2**order)) / total
    assert 0 <= idx - ref < 2
    assert -500 <= idx <= 1000
    # negative only with a single free block smaller than the request
    assert (idx < 0) == (total == 1 and 1000 * _pages(counts) // 2**order > 0)


def _c_value(token: str) -> int:
    # undo "%d.%03d" of (index / 1000, index % 1000) with C semantics
    m = re.fullmatch(r"(-?\d+)\.(-?\d+)", token)
    assert m, token
    q, r = int(m.group(1)), int(m.group(2))
    assert len(m.group(2)) >= 3 or r < 0
    return q * 1000 + r


zone_counts_st = st.lists(
    st.lists(st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 10**5)), min_size=6, max_size=6),
    min_size=1,
    max_size=11,
).map(lambda cols: np.array(cols, dtype=np.int64).T.copy())


@settings(max_examples=50)
@given(st.lists(st.tuples(zone_counts_st, st.booleans()), min_size=1, max_size=4))
def test_text_round_trips(spec):
    zones = [
        ZoneFreeInfo(nid=i // 2, name=f"Z{i}", free_counts=fc, pageblock_counts=np.zeros(6, dtype=np.int64), populated=pop)
        for i, (fc, pop) in enumerate(spec)
    ]
    shown = [z for z in zones if z.populated]
    for text, fn in ((format_buddyinfo(zones), None), (format_extfrag(zones), extfrag_index),
                     (format_unusable(zones), unusable_indices)):
        lines = text.splitlines(keepends=True)
        assert len(lines) == len(shown)
        for z, line in zip(shown, lines):
            prefix = "Node %d, zone %8s " % (z.nid, z.name)
            assert line.startswith(prefix) and line.endswith(" \n")
            tokens = line[len(prefix):].split()
            nr_free = z.free_counts.sum(axis=0)
            if fn is None:
                assert [int(t) for t in tokens] == nr_free.tolist()
            else:
                assert [_c_value(t) for t in tokens] == fn(nr_free)
