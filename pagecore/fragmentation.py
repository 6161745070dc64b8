"""Fragmentation figures exactly as the Linux kernel computes and prints them.

Every function here is a pure function over numpy arrays of free-block
counts, and follows ``mm/vmstat.c`` (torvalds/linux, the NR_PAGE_ORDERS /
MAX_PAGE_ORDER era) line by line, including its integer arithmetic:

* ``fill_contig_page_info``       -> :func:`contig_info`
* ``__fragmentation_index`` and
  ``fragmentation_index``         -> :func:`fragmentation_index`,
                                     :func:`extfrag_index`
* ``extfrag_for_order``           -> :func:`extfrag_for_order`
* ``unusable_free_index``         -> :func:`unusable_index`,
                                     :func:`unusable_indices`
* ``frag_show_print``             -> :func:`format_buddyinfo`  (/proc/buddyinfo)
* ``extfrag_show_print``          -> :func:`format_extfrag`
                                     (/sys/kernel/debug/extfrag/extfrag_index)
* ``unusable_show_print``         -> :func:`format_unusable`
                                     (/sys/kernel/debug/extfrag/unusable_index)
* ``pagetypeinfo_show`` and its
  helpers                         -> :func:`format_pagetypeinfo` (/proc/pagetypeinfo)

Arithmetic model (64-bit kernel, ``BITS_PER_LONG == 64``):

* ``unsigned long`` and ``u64`` values wrap modulo 2**64;
* ``div_u64(u64 dividend, u32 divisor)`` (include/linux/math64.h) takes a
  *32-bit* divisor, so the ``unsigned long`` divisor the kernel passes
  (``free_blocks_total``, ``free_pages``, ``1UL << order``) is silently
  truncated to its low 32 bits.  A divisor that truncates to 0 is a divide
  error in the kernel; here it raises :class:`ZeroDivisionError`;
* the ``u64`` result is converted to the ``int`` return type (two's
  complement, 32 bits); that is how ``1000 - div_u64(...)`` becomes negative;
* the text uses C ``/`` and ``%`` on ``int`` (truncation toward zero), so an
  index of -500 prints as ``" 0.-500"``, not ``"-0.500"``.

Only numpy is imported, so this module works without the compiled parts of
:mod:`pagecore`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MIGRATE_UNMOVABLE",
    "MIGRATE_MOVABLE",
    "MIGRATE_RECLAIMABLE",
    "MIGRATE_HIGHATOMIC",
    "MIGRATE_CMA",
    "MIGRATE_ISOLATE",
    "NR_MIGRATETYPE_ROWS",
    "MIGRATETYPE_NAMES",
    "FREECOUNT_CAP",
    "ContigPageInfo",
    "ZoneFreeInfo",
    "contig_info",
    "fragmentation_index",
    "extfrag_index",
    "extfrag_for_order",
    "unusable_index",
    "unusable_indices",
    "zone_nr_free",
    "printed_migratetypes",
    "format_buddyinfo",
    "format_extfrag",
    "format_unusable",
    "format_pagetypeinfo",
]

# Rows of ``free_counts`` / ``pageblock_counts``: enum migratetype
# (include/linux/mmzone.h) with CONFIG_CMA and CONFIG_MEMORY_ISOLATION both on.
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_HIGHATOMIC = 3  # == MIGRATE_PCPTYPES
MIGRATE_CMA = 4  # only with CONFIG_CMA
MIGRATE_ISOLATE = 5  # only with CONFIG_MEMORY_ISOLATION
NR_MIGRATETYPE_ROWS = 6

#: ``migratetype_names[]`` (mm/page_alloc.c), full table; the kernel drops
#: "CMA" without CONFIG_CMA and "Isolate" without CONFIG_MEMORY_ISOLATION.
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")

#: ``pagetypeinfo_showfree_print`` stops walking a free list at this many
#: entries and prints ``">100000"``.
FREECOUNT_CAP = 100000

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


# --------------------------------------------------------------------------
# C integer helpers
# --------------------------------------------------------------------------


def _div_u64(dividend: int, divisor: int) -> int:
    """``div_u64(u64 dividend, u32 divisor)`` from include/linux/math64.h.

    The divisor is truncated to 32 bits as the C implicit conversion does.
    """
    d = divisor & _U32
    if d == 0:
        raise ZeroDivisionError(
            f"div_u64 divisor {divisor} truncates to 0 as u32 (a divide error in the kernel)"
        )
    return (dividend & _U64) // d


def _to_c_int(value: int) -> int:
    """Implicit conversion of an integer to a 32-bit C ``int`` (two's complement)."""
    value &= _U32
    return value - (1 << 32) if value >= (1 << 31) else value


def _c_div(a: int, b: int) -> int:
    """C ``a / b`` on ``int``: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _c_mod(a: int, b: int) -> int:
    """C ``a % b`` on ``int``: the sign follows the dividend."""
    return a - b * _c_div(a, b)


def _free_blocks(free_blocks_per_order: Any) -> list[int]:
    """Validate a 1-D array of ``free_area[order].nr_free`` and return Python ints."""
    arr = np.asarray(free_blocks_per_order)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(
            f"free_blocks_per_order must be a non-empty 1-D array (one count per order), "
            f"got shape {arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise TypeError(f"free block counts must be integers, got dtype {arr.dtype}")
    counts = [int(x) for x in arr.tolist()]
    if any(c < 0 for c in counts):
        raise ValueError("free block counts are unsigned long in the kernel: negative count given")
    return counts


def _check_order(order: int) -> int:
    order = int(order)
    if order < 0:
        raise ValueError(f"order is unsigned in the kernel, got {order}")
    return order


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------


class ContigPageInfo(NamedTuple):
    """``struct contig_page_info`` (mm/vmstat.c)."""

    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def contig_info(free_blocks_per_order: Any, suitable_order: int) -> ContigPageInfo:
    """Free pages, free blocks, and blocks of at least ``suitable_order``.

    Kernel: ``fill_contig_page_info()`` in mm/vmstat.c.  For every order::

        blocks = zone->free_area[order].nr_free;
        info->free_blocks_total += blocks;
        info->free_pages += blocks << order;
        if (order >= suitable_order)
            info->free_blocks_suitable += blocks << (order - suitable_order);

    So ``free_blocks_suitable`` counts how many ``2**suitable_order`` blocks
    the larger free blocks could be split into, not the number of larger free
    blocks.  ``free_blocks_per_order[k]`` is ``nr_free`` at order ``k`` (summed
    over migratetypes; see :func:`zone_nr_free`) and the array length plays
    the part of NR_PAGE_ORDERS.  Sums wrap modulo 2**64 like ``unsigned long``.
    """
    counts = _free_blocks(free_blocks_per_order)
    suitable_order = _check_order(suitable_order)
    free_pages = total = suitable = 0
    for order, blocks in enumerate(counts):
        total = (total + blocks) & _U64
        free_pages = (free_pages + (blocks << order)) & _U64
        if order >= suitable_order:
            suitable = (suitable + (blocks << (order - suitable_order))) & _U64
    return ContigPageInfo(free_pages, total, suitable)


def _fragmentation_index_info(order: int, info: ContigPageInfo, max_page_order: int) -> int:
    """``__fragmentation_index()`` (mm/vmstat.c) on a filled contig_page_info."""
    requested = 1 << order  # unsigned long requested = 1UL << order;
    if order > max_page_order:  # WARN_ON_ONCE(order > MAX_PAGE_ORDER)
        warnings.warn(
            f"fragmentation index for order {order} > MAX_PAGE_ORDER {max_page_order}: "
            "the kernel WARNs and returns 0",
            RuntimeWarning,
            stacklevel=3,
        )
        return 0
    if not info.free_blocks_total:
        return 0
    if info.free_blocks_suitable:  # a request would succeed
        return -1000
    # return 1000 - div_u64((1000 + div_u64(free_pages * 1000ULL, requested)),
    #                       free_blocks_total);
    inner = _div_u64((info.free_pages * 1000) & _U64, requested)
    outer = _div_u64((1000 + inner) & _U64, info.free_blocks_total)
    return _to_c_int((1000 - outer) & _U64)


def fragmentation_index(free_blocks_per_order: Any, order: int) -> int:
    """Fragmentation index of a zone for ``order``, in thousandths.

    Kernel: ``fragmentation_index()`` -> ``fill_contig_page_info()`` +
    ``__fragmentation_index()`` in mm/vmstat.c::

        if (WARN_ON_ONCE(order > MAX_PAGE_ORDER)) return 0;
        if (!info->free_blocks_total)             return 0;
        if (info->free_blocks_suitable)           return -1000;
        return 1000 - div_u64((1000 + div_u64(info->free_pages * 1000ULL,
                                              requested)),
                              info->free_blocks_total);

    with ``requested = 1UL << order``.  -1000 means "a block of this order is
    free, an allocation would not fail"; otherwise values near 0 mean lack of
    memory and values near 1000 mean external fragmentation.

    Contrary to the kernel comment ("Index is between 0 and 1") the result is
    negative when the zone holds exactly one free block and it is smaller than
    the request: one order-0 page at order 1 gives 1000 - (1000 + 500) / 1 =
    -500.  Nor does it stay below 1: with very many small blocks the inner quotient
    truncates to 0 and the index is 1000 (42667 free order-1 blocks at order 11:
    85334000 // 2048 = 41666, (1000 + 41666) // 42667 = 0).  The results are -1000
    or in [-500, 1000].

    ``order`` beyond the last order of the array (MAX_PAGE_ORDER) returns 0
    with a :class:`RuntimeWarning`, as the kernel's WARN_ON_ONCE does.
    """
    counts = _free_blocks(free_blocks_per_order)
    order = _check_order(order)
    info = contig_info(counts, order)
    return _fragmentation_index_info(order, info, len(counts) - 1)


def extfrag_index(free_blocks_per_order: Any) -> list[int]:
    """Fragmentation index for every order, as the extfrag_index debugfs file.

    Kernel: the loop of ``extfrag_show_print()`` in mm/vmstat.c
    (``fill_contig_page_info`` + ``__fragmentation_index`` per order).
    """
    counts = _free_blocks(free_blocks_per_order)
    return [
        _fragmentation_index_info(order, contig_info(counts, order), len(counts) - 1)
        for order in range(len(counts))
    ]


def extfrag_for_order(free_blocks_per_order: Any, order: int) -> int:
    """Percentage (0..100) of free pages in blocks smaller than ``order``.

    Kernel: ``extfrag_for_order()`` in mm/vmstat.c (used by kcompactd's
    proactive compaction)::

        if (info.free_pages == 0) return 0;
        return div_u64((info.free_pages -
                        (info.free_blocks_suitable << order)) * 100,
                       info.free_pages);
    """
    counts = _free_blocks(free_blocks_per_order)
    order = _check_order(order)
    info = contig_info(counts, order)
    if info.free_pages == 0:
        return 0
    unusable_pages = (info.free_pages - (info.free_blocks_suitable << order)) & _U64
    return _to_c_int(_div_u64((unusable_pages * 100) & _U64, info.free_pages))


def unusable_index(free_blocks_per_order: Any, order: int) -> int:
    """Unusable free space index for ``order``, in thousandths (0..1000).

    Kernel: ``unusable_free_index()`` in mm/vmstat.c::

        if (info->free_pages == 0) return 1000;
        return div_u64((info->free_pages -
                        (info->free_blocks_suitable << order)) * 1000ULL,
                       info->free_pages);

    i.e. the share of free pages sitting in blocks smaller than ``order``,
    rounded down; no free memory counts as fully unusable (1000).  The kernel
    only calls it for 0 <= order < NR_PAGE_ORDERS, so other orders raise
    :class:`ValueError`.
    """
    counts = _free_blocks(free_blocks_per_order)
    order = _check_order(order)
    if order >= len(counts):
        raise ValueError(f"order {order} out of range for {len(counts)} orders")
    return _unusable_index_info(order, contig_info(counts, order))


def _unusable_index_info(order: int, info: ContigPageInfo) -> int:
    if info.free_pages == 0:
        return 1000
    unusable_pages = (info.free_pages - (info.free_blocks_suitable << order)) & _U64
    return _to_c_int(_div_u64((unusable_pages * 1000) & _U64, info.free_pages))


def unusable_indices(free_blocks_per_order: Any) -> list[int]:
    """Unusable free space index for every order, as the unusable_index debugfs file.

    Kernel: the loop of ``unusable_show_print()`` in mm/vmstat.c.
    """
    counts = _free_blocks(free_blocks_per_order)
    return [_unusable_index_info(order, contig_info(counts, order)) for order in range(len(counts))]


# --------------------------------------------------------------------------
# Zone records and text formats
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneFreeInfo:
    """A convenient zone record for the formatters (any object with these
    attributes works).

    ``free_counts``: int array (6, nr_orders), free blocks per migratetype
    (rows in MIGRATE_* order) and order.  ``pageblock_counts``: int array (6,),
    pageblocks per migratetype.  ``populated``: ``populated_zone()``, i.e.
    present_pages != 0.  ``mixed_counts``: optional int array (6,), only read
    by :func:`format_pagetypeinfo` with ``page_owner=True``.
    """

    nid: int
    name: str
    free_counts: np.ndarray
    pageblock_counts: np.ndarray
    populated: bool = True
    mixed_counts: np.ndarray | None = None


def zone_nr_free(free_counts: Any) -> np.ndarray:
    """``zone->free_area[order].nr_free`` for every order.

    ``nr_free`` counts the blocks on all free lists of that order, whatever
    their migratetype (including Isolate and CMA), so it is the sum over the
    migratetype rows of ``free_counts`` (shape (6, nr_orders)).
    """
    arr = _matrix(free_counts)
    return arr.sum(axis=0)


def _matrix(free_counts: Any) -> np.ndarray:
    arr = np.asarray(free_counts)
    if arr.ndim != 2 or arr.shape[0] != NR_MIGRATETYPE_ROWS or arr.shape[1] == 0:
        raise ValueError(
            f"free_counts must have shape ({NR_MIGRATETYPE_ROWS}, nr_orders), got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"free_counts must be integers, got dtype {arr.dtype}")
    if (arr < 0).any():
        raise ValueError("free_counts must be non-negative")
    return arr


def printed_migratetypes(config_cma: bool = False, config_memory_isolation: bool = True) -> list[int]:
    """Row indices that exist as migratetypes (0..MIGRATE_TYPES-1) in a kernel
    built with the given options, in ``enum migratetype`` order.

    Kernel: ``enum migratetype`` (include/linux/mmzone.h) and
    ``migratetype_names[]`` (mm/page_alloc.c): MIGRATE_CMA exists only with
    CONFIG_CMA, MIGRATE_ISOLATE only with CONFIG_MEMORY_ISOLATION.
    """
    rows = [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC]
    if config_cma:
        rows.append(MIGRATE_CMA)
    if config_memory_isolation:
        rows.append(MIGRATE_ISOLATE)
    return rows


def _nodes(zones: Iterable[Any]) -> list[tuple[int, list[Any]]]:
    """Group zones per node, in order of first appearance.

    The seq_file walks online nodes (``frag_start``/``frag_next``) and, in each
    node, its zones in zone-index order (``walk_zones_in_node``); pass zones in
    that order.
    """
    nodes: dict[int, list[Any]] = {}
    for zone in zones:
        nodes.setdefault(int(zone.nid), []).append(zone)
    return list(nodes.items())


def _populated(zone: Any) -> bool:
    return bool(getattr(zone, "populated", True))


def _populated_zones(zones: Iterable[Any]) -> list[Any]:
    """``walk_zones_in_node(..., assert_populated=true, ...)`` over every node."""
    return [z for _, node_zones in _nodes(zones) for z in node_zones if _populated(z)]


def format_buddyinfo(zones: Iterable[Any]) -> str:
    """Text of /proc/buddyinfo.

    Kernel: ``frag_show()`` -> ``walk_zones_in_node(m, pgdat, true, false,
    frag_show_print)`` in mm/vmstat.c; unpopulated zones are skipped and each
    populated zone prints::

        seq_printf(m, "Node %d, zone %8s ", pgdat->node_id, zone->name);
        for (order = 0; order < NR_PAGE_ORDERS; ++order)
            seq_printf(m, "%6lu ", zone->free_area[order].nr_free);
        seq_putc(m, '\\n');

    ``nr_free`` is the sum of ``free_counts`` over all migratetype rows.
    """
    out = []
    for zone in _populated_zones(zones):
        nr_free = zone_nr_free(zone.free_counts).tolist()
        out.append("Node %d, zone %8s " % (int(zone.nid), zone.name))
        out.append("".join("%6d " % int(n) for n in nr_free))
        out.append("\n")
    return "".join(out)


def format_extfrag(zones: Iterable[Any]) -> str:
    """Text of /sys/kernel/debug/extfrag/extfrag_index.

    Kernel: ``extfrag_show()`` -> ``extfrag_show_print()`` in mm/vmstat.c
    (populated zones only)::

        seq_printf(m, "Node %d, zone %8s ", pgdat->node_id, zone->name);
        ... index = __fragmentation_index(order, &info);
            seq_printf(m, "%2d.%03d ", index / 1000, index % 1000);

    C division truncates toward zero: -1000 prints ``-1.000``, -500 prints
    `` 0.-500``.
    """
    out = []
    for zone in _populated_zones(zones):
        out.append("Node %d, zone %8s " % (int(zone.nid), zone.name))
        for index in extfrag_index(zone_nr_free(zone.free_counts)):
            out.append("%2d.%03d " % (_c_div(index, 1000), _c_mod(index, 1000)))
        out.append("\n")
    return "".join(out)


def format_unusable(zones: Iterable[Any]) -> str:
    """Text of /sys/kernel/debug/extfrag/unusable_index.

    Kernel: ``unusable_show()`` -> ``unusable_show_print()`` in mm/vmstat.c.
    ``unusable_show`` returns early for nodes without N_MEMORY and walks
    populated zones only, each printing::

        seq_printf(m, "Node %d, zone %8s ", pgdat->node_id, zone->name);
        ... index = unusable_free_index(order, &info);
            seq_printf(m, "%d.%03d ", index / 1000, index % 1000);
    """
    out = []
    for zone in _populated_zones(zones):
        out.append("Node %d, zone %8s " % (int(zone.nid), zone.name))
        for index in unusable_indices(zone_nr_free(zone.free_counts)):
            out.append("%d.%03d " % (_c_div(index, 1000), _c_mod(index, 1000)))
        out.append("\n")
    return "".join(out)


def _freecount_cell(count: int) -> str:
    # list_for_each(...) { if (++freecount >= 100000) { overflow = true; break; } }
    # seq_printf(m, "%s%6lu ", overflow ? ">" : "", freecount);
    if count >= FREECOUNT_CAP:
        return ">%6d " % FREECOUNT_CAP
    return "%6d " % count


def _per_type_row(label: str, rows: Sequence[int], values: Any, what: str) -> str:
    arr = np.asarray(values)
    if arr.shape != (NR_MIGRATETYPE_ROWS,):
        raise ValueError(f"{what} must have shape ({NR_MIGRATETYPE_ROWS},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must be integers, got dtype {arr.dtype}")
    if (arr < 0).any():
        raise ValueError(f"{what} must be non-negative")
    _check_absent_rows(arr, rows, what)
    return label + "".join("%12d " % int(arr[mt]) for mt in rows) + "\n"


def _check_absent_rows(arr: np.ndarray, rows: Sequence[int], what: str) -> None:
    """Reject counts for migratetypes the configured kernel does not have."""
    for mt in range(NR_MIGRATETYPE_ROWS):
        if mt not in rows and np.any(arr[mt]):
            raise ValueError(
                f"{what}: migratetype {MIGRATETYPE_NAMES[mt]} is not configured "
                "(config_cma / config_memory_isolation) but has non-zero counts"
            )


def format_pagetypeinfo(
    zones: Iterable[Any],
    pageblock_order: int,
    *,
    config_cma: bool = False,
    config_memory_isolation: bool = True,
    page_owner: bool = False,
) -> str:
    """Text of /proc/pagetypeinfo.

    Kernel: ``pagetypeinfo_show()`` in mm/vmstat.c, once per online node.  A
    node without memory (``!node_state(nid, N_MEMORY)``, here: no populated
    zone) prints nothing at all; otherwise::

        seq_printf(m, "Page block order: %d\\n", pageblock_order);
        seq_printf(m, "Pages per block:  %lu\\n", pageblock_nr_pages);
        seq_putc(m, '\\n');
        pagetypeinfo_showfree(m, pgdat);
        pagetypeinfo_showblockcount(m, pgdat);
        pagetypeinfo_showmixedcount(m, pgdat);

    so the header is repeated for every node.  ``pagetypeinfo_showfree``
    prints ``"%-43s "`` "Free pages count per migrate type at order" and
    ``"%6d "`` per order, then per populated zone and migratetype
    ``"Node %4d, zone %8s, type %12s "`` and ``"%s%6lu "`` per order, where
    the free list walk stops at 100000 entries and prefixes ``">"``
    (``pagetypeinfo_showfree_print``).  ``pagetypeinfo_showblockcount`` prints
    ``"\\n%-23s"`` "Number of blocks type " and ``"%12s "`` per migratetype
    name, then per populated zone ``"Node %d, zone %8s "`` and ``"%12lu "``
    per migratetype (``pagetypeinfo_showblockcount_print``).
    ``pagetypeinfo_showmixedcount`` exists only with CONFIG_PAGE_OWNER and
    page_owner enabled (``page_owner=True`` here; each zone then needs
    ``mixed_counts``); it prints "Number of mixed blocks " the same way, rows
    from ``pagetypeinfo_showmixedcount_print`` (mm/page_owner.c).

    Migratetypes printed are those of ``migratetype_names[]``: CMA only with
    ``config_cma``, Isolate only with ``config_memory_isolation``.  Non-zero
    counts in a row that the configuration does not have raise ValueError.
    """
    pageblock_order = int(pageblock_order)
    if pageblock_order < 0:
        raise ValueError(f"pageblock_order must be >= 0, got {pageblock_order}")
    rows = printed_migratetypes(config_cma, config_memory_isolation)
    names_header = "".join("%12s " % MIGRATETYPE_NAMES[mt] for mt in rows) + "\n"

    out = []
    for _nid, node_zones in _nodes(zones):
        populated = [z for z in node_zones if _populated(z)]
        if not populated:  # memoryless node: pagetypeinfo_show returns 0
            continue
        matrices = [_matrix(z.free_counts) for z in populated]
        nr_orders = {m.shape[1] for m in matrices}
        if len(nr_orders) != 1:
            raise ValueError(f"zones disagree on the number of orders: {sorted(nr_orders)}")
        (nr_page_orders,) = nr_orders
        for z, m in zip(populated, matrices):
            _check_absent_rows(m, rows, f"free_counts of zone {z.name}")

        out.append("Page block order: %d\n" % pageblock_order)
        out.append("Pages per block:  %d\n" % (1 << pageblock_order))
        out.append("\n")

        # pagetypeinfo_showfree
        out.append("%-43s " % "Free pages count per migrate type at order")
        out.append("".join("%6d " % order for order in range(nr_page_orders)))
        out.append("\n")
        for z, m in zip(populated, matrices):
            for mt in rows:
                out.append("Node %4d, zone %8s, type %12s " % (int(z.nid), z.name, MIGRATETYPE_NAMES[mt]))
                out.append("".join(_freecount_cell(int(c)) for c in m[mt].tolist()))
                out.append("\n")

        # pagetypeinfo_showblockcount
        out.append("\n%-23s" % "Number of blocks type ")
        out.append(names_header)
        for z in populated:
            label = "Node %d, zone %8s " % (int(z.nid), z.name)
            out.append(_per_type_row(label, rows, z.pageblock_counts, f"pageblock_counts of zone {z.name}"))

        # pagetypeinfo_showmixedcount (CONFIG_PAGE_OWNER, page_owner=on)
        if page_owner:
            out.append("\n%-23s" % "Number of mixed blocks ")
            out.append(names_header)
            for z in populated:
                mixed = getattr(z, "mixed_counts", None)
                if mixed is None:
                    raise ValueError(f"page_owner=True needs mixed_counts on zone {z.name}")
                label = "Node %d, zone %8s " % (int(z.nid), z.name)
                out.append(_per_type_row(label, rows, mixed, f"mixed_counts of zone {z.name}"))
    return "".join(out)
