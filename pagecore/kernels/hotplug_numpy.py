"""Plain-numpy twins of the Cython kernels in pagecore/kernels/hotplug.pyx (the "numpy" backend).

Contract (Bottleneck's slow/ rule): for every `def` function of `_kernels.pyx` this module
has a function with the same name and the same parameters that returns the same values and
leaves `mem_map`, the pageblock flags and the FreeArea free lists byte-for-byte in the same
state, for every input the kernel accepts. Inputs the kernel does not write are not written
here either. tests/test_kernel_parity.py holds the three backends to this.

These are the reference: correctness and readability come first, speed second.
  * Page initialisation is vectorised through field views (`mem_map["flags"][a:b] = ...`).
  * Buddy operations go through the FreeArea Python face (py_free_one_page, py_remove), so
    the free lists change exactly as under the Cython kernels, in the same order.
  * The scanners state the kernel's per-page rules once, as an `np.select` in the kernel's
    test order that gives every pfn of the range its step (how far the scan moves on from
    it; 0 where the scan stops), then follow the walk with pointer doubling (`_first_stop`).

Like the kernels, these trust their inputs: the Python layer validates ranges, dtypes and
state first. Out-of-contract inputs (an overlapping batch of blocks, a corrupt vmemmap run)
may behave differently here than in the compiled kernels.
"""
import numpy as np

from pagecore.kernels.page import (EBUSY, ENOENT, FLAGS_MASK, MIGRATE_MOVABLE, NODES_PGSHIFT,
                            PAGE_UNION_DTYPE, PB_migrate_isolate, PG_head, PG_hwpoison,
                            PG_lru, PG_movable, PG_reserved, PG_tail, PGTY_BUDDY, PGTY_NONE,
                            PGTY_OFFLINE, PGTY_VMEMMAP, ZONES_PGSHIFT)

__all__ = ["mark_vmemmap_pages", "online_memory_blocks", "offline_isolated_pages",
           "has_unmovable_pages", "scan_movable_pages", "test_pages_isolated"]


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _init_pages(pages, flags, page_type, refcount):
    """__init_single_page() for a run of pages (a slice of the mem_map): every field."""
    pages["flags"] = flags
    pages["page_type"] = page_type
    pages["order"] = 0
    pages["refcount"] = refcount
    pages["private"] = 0


def vmemmap_nr_pages(mem_map, pfns):
    """vmemmap_nr_pages() of PGTY_VMEMMAP pages `pfns` (absolute): pages of the run left from
    each pfn to the run's end. A head (PG_head) holds the run length; a tail holds its
    distance back to the head, whose length the kernel reads."""
    vm = mem_map.view(PAGE_UNION_DTYPE)
    pfns = np.asarray(pfns, dtype=np.int64)
    back = vm["vmemmap_head"][pfns].astype(np.int64)
    is_head = (vm["flags"][pfns] & PG_head) != 0
    head = np.where(is_head, pfns, pfns - back)
    # uint32 arithmetic as in C; a valid run never wraps.
    left = (vm["vmemmap_pages"][head] - np.where(is_head, 0, back).astype(np.uint32))
    return left.astype(np.int64)


def _vmemmap_steps(mem_map, start_pfn, page_type):
    """Step of every pfn of a range: vmemmap_nr_pages() on PGTY_VMEMMAP pages, 0 elsewhere."""
    step = np.zeros(page_type.shape[0], dtype=np.int64)
    vm = np.flatnonzero(page_type == PGTY_VMEMMAP)
    if vm.size:
        step[vm] = vmemmap_nr_pages(mem_map, start_pfn + vm)
    return step


def _folio_step(pfns, order):
    """Pages from each pfn to the end of its (naturally aligned) folio: folio_end() - pfn."""
    order = order.astype(np.int64)
    return (((pfns >> order) + 1) << order) - pfns


def _first_stop(step):
    """Walk i -> i + step[i] from i = 0 over a range of n = len(step) pfns; return the
    index of the first pfn the walk stops at (step 0), or -1 when it leaves the range.

    Pointer doubling: `jump[i]` is where 2**k steps from i end; stops and "left the range"
    (index n) are fixed points. After k rounds jump[0] is 2**k steps ahead, so at most
    log2(n) + 1 rounds reach the answer.
    """
    n = step.shape[0]
    idx = np.arange(n, dtype=np.int64)
    jump = np.where(step == 0, idx, np.minimum(idx + step, n))
    jump = np.append(jump, n)
    while True:
        at = int(jump[0])
        if at == n or step[at] == 0:
            return -1 if at == n else at
        jump = jump[jump]


def _fields(mem_map, start_pfn, end_pfn):
    """Field arrays (flags, page_type, order, refcount) of the pages in [start_pfn, end_pfn)."""
    pages = mem_map[start_pfn:end_pfn]
    return pages["flags"], pages["page_type"], pages["order"], pages["refcount"]


# ---------------------------------------------------------------------------------------
# memmap initialisation and onlining
# ---------------------------------------------------------------------------------------
def mark_vmemmap_pages(mem_map, start_pfn, nr_pages, nr_sections):
    """Twin of _kernels.mark_vmemmap_pages (mhp_mark_vmemmap_pages(), seed v3 patch 4/5).

    Make [start_pfn, start_pfn + nr_pages) one Vmemmap run: every page zeroed, then
    PGTY_VMEMMAP and PG_reserved; the head (PG_head) records `nr_sections` and the run
    length, each tail its distance back to the head. Returns `nr_pages`.
    """
    start_pfn, nr_pages = int(start_pfn), int(nr_pages)
    run = mem_map[start_pfn:start_pfn + nr_pages].view(PAGE_UNION_DTYPE)
    # The run's fields cover all 16 bytes of each page, so this is the memset + writes.
    run["flags"] = PG_reserved
    run["page_type"] = PGTY_VMEMMAP
    run["order"] = 0
    run["refcount"] = 0
    run["vmemmap_head"] = np.arange(nr_pages, dtype=np.uint32)
    run["vmemmap_pages"] = 0
    if nr_pages:
        run["flags"][0] = PG_reserved | PG_head
        run["vmemmap_head"][0] = nr_sections
        run["vmemmap_pages"][0] = nr_pages & 0xFFFFFFFF
    return nr_pages


def _online_chunks(start_pfn, end_pfn, max_order):
    """online_pages_range(): (pfn, order) of the largest aligned chunks tiling the range,
    in ascending pfn order."""
    p = start_pfn
    while p < end_pfn:
        order = max_order
        while order > 0 and ((p & ((1 << order) - 1)) or p + (1 << order) > end_pfn):
            order -= 1
        yield p, order
        p += 1 << order


def online_memory_blocks(mem_map, pageblock_flags, free_area, start_pfns, nr_vmemmap,
                         block_pages, nid, zone, vmemmap_flags, vmemmap_mt,
                         keep_vmemmap_type, num_threads):
    """Twin of _kernels.online_memory_blocks (memory_block_online() for a batch of blocks).

    Per block [s, s + block_pages) whose first V = nr_vmemmap[b] pages host its memmap:
    [s, s+V) joins the zone (refcount 1, `vmemmap_flags`, or with `keep_vmemmap_type` its
    Vmemmap state kept), [s+V, e) is initialised and freed to the buddy in the largest
    aligned chunks; pageblocks holding vmemmap pages become `vmemmap_mt`, the rest MOVABLE.
    `num_threads` is accepted for signature parity and ignored: this twin is serial.
    Returns the pages freed to the buddy.
    """
    pb_order = free_area.pageblock_order
    max_order = free_area.nr_orders - 1
    zone_bits = ((nid << NODES_PGSHIFT) | (zone << ZONES_PGSHIFT)) & 0xFFFFFFFF
    blocks = [(int(s), int(v)) for s, v in zip(start_pfns, nr_vmemmap)]
    for s, v in blocks:                          # page init: the kernel's parallel part
        e = s + block_pages
        vmemmap = mem_map[s:s + v]
        if keep_vmemmap_type:
            vmemmap["flags"] = (vmemmap["flags"] & FLAGS_MASK) | zone_bits
            vmemmap["refcount"] = 1
        else:
            _init_pages(vmemmap, vmemmap_flags | zone_bits, PGTY_NONE, 1)
        _init_pages(mem_map[s + v:e], zone_bits, PGTY_NONE, 0)
        first_pb = s >> pb_order
        first_movable_pb = max(first_pb, (s + v + (1 << pb_order) - 1) >> pb_order)
        pageblock_flags[first_pb:first_movable_pb] = vmemmap_mt & 0xFF
        pageblock_flags[first_movable_pb:e >> pb_order] = MIGRATE_MOVABLE
    freed = 0
    for s, v in blocks:                          # the buddy: serial, in batch order
        for pfn, order in _online_chunks(s + v, s + block_pages, max_order):
            free_area.py_free_one_page(pfn, order)
            freed += 1 << order
    return freed


def online_image_blocks(pageblock_flags, free_area, start_pfns, nr_vmemmap, block_pages,
                        vmemmap_mt):
    """Twin of _kernels.online_image_blocks: online_memory_blocks() of blocks whose
    struct pages already hold the image of an onlined block, so only the pageblock types
    and the free lists change (FreeArea.py_add_listed: no store to a page)."""
    pb_order = free_area.pageblock_order
    max_order = free_area.nr_orders - 1
    if block_pages % (1 << max_order):
        raise ValueError(f"block_pages={block_pages} is not whole max-order blocks")
    if any(int(v) % (1 << free_area.side_order) for v in nr_vmemmap):
        raise ValueError("nr_vmemmap leaves chunks below the side order")
    listed = 0
    for s, v in zip(start_pfns.tolist(), nr_vmemmap.tolist()):
        e = s + block_pages
        first_pb = s >> pb_order
        first_movable_pb = max(first_pb, (s + v + (1 << pb_order) - 1) >> pb_order)
        pageblock_flags[first_pb:first_movable_pb] = vmemmap_mt & 0xFF
        pageblock_flags[first_movable_pb:e >> pb_order] = MIGRATE_MOVABLE
        for pfn, order in _online_chunks(s + v, e, max_order):
            free_area.py_add_listed(pfn, order, MIGRATE_MOVABLE)
            listed += 1 << order
    return listed


def offline_isolated_pages(mem_map, free_area, start_pfn, end_pfn):
    """Twin of _kernels.offline_isolated_pages (__offline_isolated_pages()).

    Take every free block the scan of [start_pfn, end_pfn) meets off its free list (the
    scan skips a whole block at its head, even past end_pfn); count the PageOffline pages
    it meets as already offline (HWPoison pages are skipped but still managed).
    Returns (pages taken off, already_offline).
    """
    start_pfn, end_pfn = int(start_pfn), int(end_pfn)
    if end_pfn <= start_pfn:
        return 0, 0
    _, page_type, order, _ = _fields(mem_map, start_pfn, end_pfn)
    offline = page_type == PGTY_OFFLINE
    # offline_before[i]: offline pages among the first i pages of the range.
    offline_before = np.concatenate(([0], np.cumsum(offline, dtype=np.int64)))
    buddies = np.flatnonzero(page_type == PGTY_BUDDY)
    orders = order[buddies].astype(np.int64)
    taken = already = 0
    i, n = 0, end_pfn - start_pfn
    k = 0                                        # next candidate in `buddies`
    while i < n:
        k += int(np.searchsorted(buddies[k:], i))
        nxt = int(buddies[k]) if k < buddies.size else n
        already += int(offline_before[nxt] - offline_before[i])   # plain pages up to it
        if nxt == n:
            break
        taken += 1 << int(orders[k])
        # Removing the head touches only it and the page moved into its slot; no page
        # type or order the rest of the scan reads changes.
        free_area.py_remove(start_pfn + nxt)
        i = nxt + (1 << int(orders[k]))
    return taken, already


# ---------------------------------------------------------------------------------------
# isolation scanners
# ---------------------------------------------------------------------------------------
def has_unmovable_pages(mem_map, start_pfn, end_pfn, zone_movable, memory_offline):
    """Twin of _kernels.has_unmovable_pages (has_unmovable_pages(), v3 vmemmap skip).

    Returns the first pfn in [start_pfn, end_pfn) that is definitely unmovable, or -1.
    """
    start_pfn, end_pfn = int(start_pfn), int(end_pfn)
    if end_pfn <= start_pfn:
        return -1
    flags, page_type, order, refcount = _fields(mem_map, start_pfn, end_pfn)
    pfns = np.arange(start_pfn, end_pfn, dtype=np.int64)
    movable = (flags & (PG_lru | PG_movable)) != 0
    folio = (flags & (PG_head | PG_tail)) != 0
    free = refcount == 0
    tolerated = bool(memory_offline) & (((flags & PG_hwpoison) != 0)
                                        | (page_type == PGTY_OFFLINE))
    # The kernel's tests, first match wins; step 0 = "unmovable, stop here".
    step = np.select(
        [page_type == PGTY_VMEMMAP,
         (flags & PG_reserved) != 0,
         np.full(pfns.shape, bool(zone_movable)),
         folio & movable,
         folio,
         free & (page_type == PGTY_BUDDY),
         free,
         tolerated,
         movable],
        [_vmemmap_steps(mem_map, start_pfn, page_type),
         0,
         1,
         _folio_step(pfns, order),
         0,
         np.left_shift(1, order.astype(np.int64)),
         1,
         1,
         1],
        default=0)
    i = _first_stop(step)
    return -1 if i < 0 else start_pfn + i


def scan_movable_pages(mem_map, start_pfn, end_pfn):
    """Twin of _kernels.scan_movable_pages (scan_movable_pages(), mm/memory_hotplug.c).

    Returns (0, pfn) at the first LRU or non-LRU-movable page, (-EBUSY, pfn) at a
    referenced PageOffline page, (-ENOENT, end_pfn) when there is none.
    """
    start_pfn, end_pfn = int(start_pfn), int(end_pfn)
    if end_pfn <= start_pfn:
        return -ENOENT, end_pfn
    flags, page_type, order, refcount = _fields(mem_map, start_pfn, end_pfn)
    pfns = np.arange(start_pfn, end_pfn, dtype=np.int64)
    vmemmap = page_type == PGTY_VMEMMAP
    movable = ~vmemmap & ((flags & (PG_lru | PG_movable)) != 0)
    busy = (page_type == PGTY_OFFLINE) & (refcount > 0)
    step = np.select(
        [vmemmap, movable, busy,
         page_type == PGTY_BUDDY,
         (flags & (PG_head | PG_tail)) != 0],
        [_vmemmap_steps(mem_map, start_pfn, page_type), 0, 0,
         np.left_shift(1, order.astype(np.int64)),
         _folio_step(pfns, order)],
        default=1)
    i = _first_stop(step)
    if i < 0:
        return -ENOENT, end_pfn
    return (0 if movable[i] else -EBUSY), start_pfn + i


def test_pages_isolated(mem_map, pageblock_flags, start_pfn, end_pfn, pageblock_order):
    """Twin of _kernels.test_pages_isolated (test_pages_isolated(..., MEMORY_OFFLINE)).

    Returns (0, end_pfn) when every pageblock of the range is isolated and every page is
    free, HWPoison, an unreferenced PageOffline page or a vmemmap page; else
    (-EBUSY, pfn) at the first offender (a pageblock's first pfn in the range, or a page).
    """
    start_pfn, end_pfn = int(start_pfn), int(end_pfn)
    if end_pfn <= start_pfn:
        return 0, end_pfn
    first_pb, last_pb = start_pfn >> pageblock_order, (end_pfn - 1) >> pageblock_order
    not_isolated = np.flatnonzero(
        (pageblock_flags[first_pb:last_pb + 1] & PB_migrate_isolate) == 0)
    if not_isolated.size:
        return -EBUSY, max(start_pfn, int(first_pb + not_isolated[0]) << pageblock_order)
    flags, page_type, order, refcount = _fields(mem_map, start_pfn, end_pfn)
    step = np.select(
        [page_type == PGTY_BUDDY,
         page_type == PGTY_VMEMMAP,
         ((flags & PG_hwpoison) != 0) | ((page_type == PGTY_OFFLINE) & (refcount == 0))],
        [np.left_shift(1, order.astype(np.int64)),
         _vmemmap_steps(mem_map, start_pfn, page_type),
         1],
        default=0)
    i = _first_stop(step)
    return (0, end_pfn) if i < 0 else (-EBUSY, start_pfn + i)
