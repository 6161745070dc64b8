"""numba twins of the Cython kernels in pagecore/kernels/hotplug.pyx (the "numba" backend).

Same functions, parameters, return values and side effects as `pagecore.kernels.hotplug` (and
`pagecore.kernels.hotplug_numpy`); tests/test_kernel_parity.py holds the three to that. Each public
function is a thin Python wrapper around an `@njit(cache=True, nogil=True)` function that
works on the mem_map viewed as PAGE_UNION_DTYPE (numba reads the overlapping vmemmap arm
directly).

The split with the buddy allocator: compiled code cannot call FreeArea's Cython methods,
so a kernel that changes free lists runs in two parts.
  * online_memory_blocks(): page and pageblock initialisation runs in numba, in parallel
    over blocks (prange); numba also computes the chunks online_pages_range() frees; the
    frees themselves (FreeArea.py_free_one_page) run in Python, serially, in batch order.
  * offline_isolated_pages(): numba scans the range and returns the free-block heads it
    meets and the already-offline count; Python takes the heads off their lists with
    FreeArea.py_remove, in ascending pfn order. Removing a head changes no page type or
    order the scan reads, so scanning first gives the kernel's result.
The Python part costs one call per buddy operation; it is the price of keeping a single
buddy implementation.

Importing this module imports numba (~0.2 s) and loads or compiles the kernels on first
call; pagecore never imports it implicitly (see pagecore.kernels.backends).
"""
import numba
import numpy as np
from numba import njit, prange

from pagecore.kernels.page import (EBUSY, ENOENT, FLAGS_MASK, MIGRATE_MOVABLE, NODES_PGSHIFT,
                            PAGE_UNION_DTYPE, PB_migrate_isolate, PG_head, PG_hwpoison,
                            PG_lru, PG_movable, PG_reserved, PG_tail, PGTY_BUDDY, PGTY_NONE,
                            PGTY_OFFLINE, PGTY_VMEMMAP, ZONES_PGSHIFT)

__all__ = ["mark_vmemmap_pages", "online_memory_blocks", "offline_isolated_pages",
           "has_unmovable_pages", "scan_movable_pages", "test_pages_isolated"]

# Module-level ints are frozen into the compiled code as constants.
_PG_reserved, _PG_head, _PG_tail = int(PG_reserved), int(PG_head), int(PG_tail)
_PG_movable_lru = int(PG_lru | PG_movable)
_PG_hwpoison = int(PG_hwpoison)
_PGTY_NONE, _PGTY_BUDDY = int(PGTY_NONE), int(PGTY_BUDDY)
_PGTY_OFFLINE, _PGTY_VMEMMAP = int(PGTY_OFFLINE), int(PGTY_VMEMMAP)
_FLAGS_MASK, _PB_isolate = int(FLAGS_MASK), int(PB_migrate_isolate)
_MIGRATE_MOVABLE = int(MIGRATE_MOVABLE)
_EBUSY, _ENOENT = int(EBUSY), int(ENOENT)


def _union(mem_map):
    """The mem_map seen through the union dtype (a view: writes reach the caller)."""
    return mem_map.view(PAGE_UNION_DTYPE)


# ---------------------------------------------------------------------------------------
# compiled parts (all integer arithmetic is done in int64: numba turns uint64 mixed
# with int64 into float64)
# ---------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _mark_vmemmap_pages(vm, start_pfn, nr_pages, nr_sections):
    for i in range(nr_pages):
        p = vm[start_pfn + i]
        p.flags = _PG_reserved
        p.page_type = _PGTY_VMEMMAP
        p.order = 0
        p.refcount = 0
        p.vmemmap_head = np.uint32(i)
        p.vmemmap_pages = 0
    if nr_pages:
        vm[start_pfn].flags = _PG_reserved | _PG_head
        vm[start_pfn].vmemmap_head = nr_sections
        vm[start_pfn].vmemmap_pages = np.uint32(nr_pages & 0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _init_pages(mm, start_pfn, end_pfn, flags, page_type, refcount):
    for p in range(start_pfn, end_pfn):
        mm[p].flags = flags
        mm[p].page_type = page_type
        mm[p].order = 0
        mm[p].refcount = refcount
        mm[p].private = 0


@njit(cache=True, nogil=True, parallel=True)
def _online_init(mm, pbf, start_pfns, nr_vmemmap, block_pages, zone_bits, vmemmap_flags,
                 vmemmap_mt, keep_vmemmap_type, pb_order):
    for b in prange(start_pfns.shape[0]):
        s = np.int64(start_pfns[b])
        v = np.int64(nr_vmemmap[b])
        e = s + block_pages
        if keep_vmemmap_type:
            for p in range(s, s + v):
                mm[p].flags = (mm[p].flags & _FLAGS_MASK) | zone_bits
                mm[p].refcount = 1
        else:
            _init_pages(mm, s, s + v, vmemmap_flags | zone_bits, _PGTY_NONE, 1)
        _init_pages(mm, s + v, e, zone_bits, _PGTY_NONE, 0)
        first_pb = s >> pb_order
        first_movable_pb = max(first_pb, (s + v + (1 << pb_order) - 1) >> pb_order)
        for q in range(first_pb, first_movable_pb):
            pbf[q] = vmemmap_mt
        for q in range(first_movable_pb, e >> pb_order):
            pbf[q] = _MIGRATE_MOVABLE


@njit(cache=True, nogil=True)
def _online_chunks(start_pfns, nr_vmemmap, block_pages, max_order):
    """online_pages_range() chunks of every block, in batch order: (pfns, orders)."""
    n = 0
    cap = 16
    pfns = np.empty(cap, dtype=np.int64)
    orders = np.empty(cap, dtype=np.int64)
    for b in range(start_pfns.shape[0]):
        p = np.int64(start_pfns[b]) + np.int64(nr_vmemmap[b])
        e = np.int64(start_pfns[b]) + block_pages
        while p < e:
            order = max_order
            while order > 0 and ((p & ((np.int64(1) << order) - 1)) != 0
                                 or p + (np.int64(1) << order) > e):
                order -= 1
            if n == cap:
                cap *= 2
                grown = np.empty(cap, dtype=np.int64)
                grown[:n] = pfns[:n]
                pfns = grown
                grown = np.empty(cap, dtype=np.int64)
                grown[:n] = orders[:n]
                orders = grown
            pfns[n] = p
            orders[n] = order
            n += 1
            p += np.int64(1) << order
    return pfns[:n], orders[:n]


@njit(cache=True, nogil=True)
def _offline_scan(mm, start_pfn, end_pfn):
    """Free-block heads the __offline_isolated_pages() scan meets, pages they hold, and
    the PageOffline pages it counts as already offline."""
    heads = np.empty(max(end_pfn - start_pfn, 0), dtype=np.int64)
    n = 0
    taken = 0
    already = 0
    pfn = start_pfn
    while pfn < end_pfn:
        p = mm[pfn]
        if p.page_type == _PGTY_BUDDY:
            heads[n] = pfn
            n += 1
            taken += np.int64(1) << np.int64(p.order)
            pfn += np.int64(1) << np.int64(p.order)
            continue
        if p.page_type == _PGTY_OFFLINE:
            already += 1
        pfn += 1
    return heads[:n], taken, already


@njit(cache=True, nogil=True, inline="always")
def vmemmap_nr_pages(mm, pfn):
    p = mm[pfn]
    if p.flags & _PG_head:
        return np.int64(p.vmemmap_pages)
    back = np.int64(p.vmemmap_head)
    # uint32 arithmetic as in C; a valid run never wraps.
    return np.int64(np.uint32(mm[pfn - back].vmemmap_pages - np.uint32(back)))


@njit(cache=True, nogil=True, inline="always")
def folio_end(order, pfn):
    o = np.int64(order)
    return ((pfn >> o) + 1) << o


@njit(cache=True, nogil=True)
def _has_unmovable_pages(mm, start_pfn, end_pfn, zone_movable, memory_offline):
    pfn = start_pfn
    while pfn < end_pfn:
        p = mm[pfn]
        if p.page_type == _PGTY_VMEMMAP:
            k = vmemmap_nr_pages(mm, pfn)
            if k == 0:                      # a run that ended before it: an offender
                return pfn
            pfn += k
            continue
        if p.flags & _PG_reserved:
            return pfn
        if zone_movable:
            pfn += 1
            continue
        if p.flags & (_PG_head | _PG_tail):
            if p.flags & _PG_movable_lru:
                pfn = folio_end(p.order, pfn)
                continue
            return pfn
        if p.refcount == 0:
            if p.page_type == _PGTY_BUDDY:
                pfn += np.int64(1) << np.int64(p.order)
            else:
                pfn += 1
            continue
        if memory_offline and ((p.flags & _PG_hwpoison) or p.page_type == _PGTY_OFFLINE):
            pfn += 1
            continue
        if p.flags & _PG_movable_lru:
            pfn += 1
            continue
        return pfn
    return np.int64(-1)


@njit(cache=True, nogil=True)
def _scan_movable_pages(mm, start_pfn, end_pfn):
    pfn = start_pfn
    while pfn < end_pfn:
        p = mm[pfn]
        if p.page_type == _PGTY_VMEMMAP:
            k = vmemmap_nr_pages(mm, pfn)
            if k == 0:                      # a run that ended before it: -EBUSY
                return -_EBUSY, pfn
            pfn += k
            continue
        if p.flags & _PG_movable_lru:
            return 0, pfn
        if p.page_type == _PGTY_OFFLINE and p.refcount > 0:
            return -_EBUSY, pfn
        if p.page_type == _PGTY_BUDDY:
            pfn += np.int64(1) << np.int64(p.order)
        elif p.flags & (_PG_head | _PG_tail):
            pfn = folio_end(p.order, pfn)
        else:
            pfn += 1
    return -_ENOENT, end_pfn


@njit(cache=True, nogil=True)
def _test_pages_isolated(mm, pbf, start_pfn, end_pfn, pageblock_order):
    pfn = start_pfn
    while pfn < end_pfn:
        if not (pbf[pfn >> pageblock_order] & _PB_isolate):
            return -_EBUSY, pfn
        pfn = ((pfn >> pageblock_order) + 1) << pageblock_order
    pfn = start_pfn
    while pfn < end_pfn:
        p = mm[pfn]
        if p.page_type == _PGTY_BUDDY:
            pfn += np.int64(1) << np.int64(p.order)
        elif p.page_type == _PGTY_VMEMMAP and vmemmap_nr_pages(mm, pfn):
            pfn += vmemmap_nr_pages(mm, pfn)   # (a run that ended before it: offender)
        elif (p.flags & _PG_hwpoison) or (p.page_type == _PGTY_OFFLINE and p.refcount == 0):
            pfn += 1
        else:
            return -_EBUSY, pfn
    return 0, end_pfn


# ---------------------------------------------------------------------------------------
# the backend's functions: signatures of pagecore.kernels.hotplug
# ---------------------------------------------------------------------------------------
def mark_vmemmap_pages(mem_map, start_pfn, nr_pages, nr_sections):
    """numba twin of _kernels.mark_vmemmap_pages (mhp_mark_vmemmap_pages(), seed v3)."""
    _mark_vmemmap_pages(_union(mem_map), np.int64(start_pfn), np.int64(nr_pages),
                        np.uint32(nr_sections))
    return int(nr_pages)


def online_memory_blocks(mem_map, pageblock_flags, free_area, start_pfns, nr_vmemmap,
                         block_pages, nid, zone, vmemmap_flags, vmemmap_mt,
                         keep_vmemmap_type, num_threads):
    """numba twin of _kernels.online_memory_blocks (memory_block_online() for a batch).

    Page and pageblock init in numba, in parallel over blocks with up to `num_threads`
    threads; the frees to the buddy in Python through FreeArea.py_free_one_page, serially
    and in batch order (see the module docstring). Returns the pages freed.
    """
    start_pfns = np.ascontiguousarray(start_pfns, dtype=np.int64)
    nr_vmemmap = np.ascontiguousarray(nr_vmemmap, dtype=np.int64)
    zone_bits = ((nid << NODES_PGSHIFT) | (zone << ZONES_PGSHIFT)) & 0xFFFFFFFF
    threads = numba.get_num_threads()
    if num_threads > 0:
        numba.set_num_threads(min(num_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        _online_init(_union(mem_map), pageblock_flags, start_pfns, nr_vmemmap,
                     np.int64(block_pages), np.uint32(zone_bits),
                     np.uint32(vmemmap_flags | zone_bits), np.uint8(vmemmap_mt & 0xFF),
                     bool(keep_vmemmap_type), np.int64(free_area.pageblock_order))
    finally:
        numba.set_num_threads(threads)
    pfns, orders = _online_chunks(start_pfns, nr_vmemmap, np.int64(block_pages),
                                  np.int64(free_area.nr_orders - 1))
    freed = 0
    for pfn, order in zip(pfns.tolist(), orders.tolist()):
        free_area.py_free_one_page(pfn, order)
        freed += 1 << order
    return freed


def offline_isolated_pages(mem_map, free_area, start_pfn, end_pfn):
    """numba twin of _kernels.offline_isolated_pages (__offline_isolated_pages()).

    The scan in numba; the free-list removals in Python through FreeArea.py_remove.
    Returns (pages taken off, already_offline).
    """
    heads, taken, already = _offline_scan(_union(mem_map), np.int64(start_pfn),
                                          np.int64(end_pfn))
    for pfn in heads.tolist():
        free_area.py_remove(pfn)
    return int(taken), int(already)


def has_unmovable_pages(mem_map, start_pfn, end_pfn, zone_movable, memory_offline):
    """numba twin of _kernels.has_unmovable_pages. Returns the first unmovable pfn or -1."""
    return int(_has_unmovable_pages(_union(mem_map), np.int64(start_pfn), np.int64(end_pfn),
                                    bool(zone_movable), bool(memory_offline)))


def scan_movable_pages(mem_map, start_pfn, end_pfn):
    """numba twin of _kernels.scan_movable_pages. Returns (0 | -EBUSY | -ENOENT, pfn)."""
    rc, pfn = _scan_movable_pages(_union(mem_map), np.int64(start_pfn), np.int64(end_pfn))
    return int(rc), int(pfn)


def test_pages_isolated(mem_map, pageblock_flags, start_pfn, end_pfn, pageblock_order):
    """numba twin of _kernels.test_pages_isolated. Returns (0 | -EBUSY, pfn)."""
    rc, pfn = _test_pages_isolated(_union(mem_map), pageblock_flags, np.int64(start_pfn),
                                   np.int64(end_pfn), np.int64(pageblock_order))
    return int(rc), int(pfn)


#: The image path touches no struct page (pageblock bytes and free lists only): the
#: numpy twin is already what a numba version would be.
from pagecore.kernels.hotplug_numpy import online_image_blocks  # noqa: F401
