"""Zone compaction and contiguous allocation on a Machine (mm/compaction.c, mm/page_alloc.c).

    compact_zone(m, zone, order, mode="sync")    both scanners toward each other
    alloc_contig_range(m, start_pfn, end_pfn)    isolate, migrate out, take the range
    alloc_contig_pages(m, nr_pages, nid, zone)   naturally aligned search + the above
    free_contig_range(m, start_pfn, nr_pages)    give a range back
    count_gigantic_pages(m, order)               aligned 2^order blocks formable now, per zone
    get_compaction_backend(name=None)            the scanner kernels: cython, numpy, numba

The work runs in the backend's kernels (pagecore.kernels.compaction and its twins): the scanners,
and compact_zone_run(), the whole compaction loop, which changes the free lists through
the zone's FreeArea (one buddy allocator for every backend). This module validates,
prepares (which pageblocks are valid) and reports; for contiguous allocation it
isolates the range in one pass and moves its folios in bulk (numpy). Simplifications
against the kernel, all deliberate: no compaction caches or deferral (every compact_zone() is a whole-zone run), no
fast_find_migrateblock()/fast_isolate_freepages(), migration
fails only for want of a target (a large LRU folio is then split and its pages retried,
as trysplit_folio() does), and __isolate_free_page() skips its watermark check. The
free scanner stops inside a pageblock once it has enough, and samples every stride-th
pfn after pageblocks that yielded nothing (isolate_freepages(), v5.1+), as the kernel's
does. A split
is not undone when alloc_contig_range() rolls back. compact_zone() follows the machine's
kernel version (LARGE_FOLIO_COMPACTION_SINCE: v6.9's large-folio compaction, or v6.1's
order-0 rules and nr_scanned of the pages visited).
"""
from __future__ import annotations


import numpy as np

from pagecore.kernels import page as P
from pagecore.kernels import backends as _backends
from pagecore.arch import ZONE_NAMES
from pagecore.errors import (BusyError, ConfigError, OutOfMemoryError, PagecoreError,
                             RangeError, StateError, pfn_range, raise_for)
from pagecore.mm import migrate, mmzone, page_alloc, page_isolation
from pagecore.mm.mmzone import SECTION_IS_ONLINE
from pagecore.mm.page_alloc import GFP
from pagecore.util import int_arg as _int_arg, is_int as _is_int
from pagecore.kernels.folio import putback, split_folio, splittable

#: The compaction kernels every backend has (pagecore.kernels.backends).
KERNELS = _backends.COMPACTION_KERNELS
#: Owner id (page->private) given to pages taken by alloc_contig_range().
CONTIG_OWNER = 0xC0
_ZMASK = np.uint32(~P.FLAGS_MASK & 0xFFFFFFFF)


get_compaction_backend = _backends.get_compaction_backend

#: compact_zone() follows v6.9's "mm: compaction: add support for >0 order folio memory
#: compaction" (Zi Yan) from here: large folios below the target order and below
#: pageblock order are migrated whole (skip_isolation_on_order()), cc->freepages[] is a
#: list per order (compaction_alloc() splits a block for the folio), compaction_alloc()
#: lowers cc->nr_migratepages, and a pageblock headed by a free block of cc->order or
#: more is no target. Before (v6.1): every compound page is passed, the isolated free
#: blocks are split to one list of order-0 pages (split_map_pages()), the free scanner
#: stops once it holds the whole batch, the target rule reads pageblock_order, and
#: nr_scanned leaves out the pages jumped from a free block's or compound page's head.
LARGE_FOLIO_COMPACTION_SINCE = (6, 9)


def _kernels_of(m, backend):
    """The compaction kernels of backend `backend`, else those of the machine's backend."""
    return get_compaction_backend(backend) if backend is not None else m.compaction_kernels


def _zone_bits(zone):
    return (zone.nid << P.NODES_PGSHIFT) | (zone.zid << P.ZONES_PGSHIFT)


def _resolve_zone(m, zone):
    """A Zone, or (nid, zone index or name)."""
    if hasattr(zone, "free_area"):
        return m.own_zone(zone)
    try:
        nid, z = zone
    except (TypeError, ValueError):
        raise ConfigError(f"zone {zone!r}: expected a Zone or (nid, zone name)") from None
    m.check_nid(nid)
    if isinstance(z, str):
        if z not in ZONE_NAMES:
            raise ConfigError(f"unknown zone {z!r}; expected one of {', '.join(ZONE_NAMES)}")
        z = ZONE_NAMES.index(z)
    return m.zone(nid, int(z))


def _online(m, start_pfn, end_pfn):
    """pfn_to_online_page() for every pfn: all sections of the range online."""
    pps = m.arch.pages_per_section
    secs = m.sections[start_pfn // pps:(end_pfn - 1) // pps + 1]
    return bool(secs.size) and bool((secs & SECTION_IS_ONLINE).all())


def _valid_pageblocks(m, zone):
    """pageblock_pfn_to_page() for every pageblock of the zone span: first and last page
    online and in the zone. Returns (first pageblock index, bool mask).

    A pageblock inside a free block of order >= pageblock_order on the zone's lists
    passes without a page read (so a mostly free zone's memmap images stay unread): a
    page on a zone's free lists is online and of that zone, and so is every page of its
    block, since online_pages() frees whole blocks of one zone and
    page_is_buddy() merges only within a zone. _valid_pageblocks_read() is the twin
    that reads every first and last page."""
    return _valid_pageblocks_read(m, zone, ~_listed_pageblocks(m, zone))


def _listed_pageblocks(m, zone):
    """The pageblocks of the zone span inside a free block of order >= pageblock_order
    on the zone's free lists (any migratetype), as a bool mask from the lists alone."""
    pbo = m.arch.pageblock_order
    first = zone.zone_start_pfn >> pbo
    mask = np.zeros(((zone.zone_end_pfn - 1) >> pbo) - first + 1, dtype=bool)
    fa = zone.free_area
    for o in range(pbo, fa.nr_orders):
        heads = np.concatenate([fa.blocks(mt, o) for mt in range(P.MIGRATE_TYPES)])
        idx = (heads >> pbo) - first
        for k in range(1 << (o - pbo)):
            mask[idx + k] = True
    return mask


def _valid_pageblocks_read(m, zone, where=None):
    """_valid_pageblocks() from the first and last page of every pageblock (of those
    `where` selects; the others are given as valid)."""
    pbo = m.arch.pageblock_order
    first = zone.zone_start_pfn >> pbo
    last = (zone.zone_end_pfn - 1) >> pbo
    ok = np.ones(last - first + 1, dtype=bool)
    pbs = np.arange(first, last + 1, dtype=np.int64)
    if where is not None:
        pbs = pbs[where]
    lo = np.maximum(pbs << pbo, zone.zone_start_pfn)
    hi = np.minimum((pbs + 1) << pbo, zone.zone_end_pfn) - 1
    pps = m.arch.pages_per_section
    online = ((m.sections[lo // pps] & SECTION_IS_ONLINE) != 0) & \
             ((m.sections[hi // pps] & SECTION_IS_ONLINE) != 0)
    zb = np.uint32(_zone_bits(zone))
    flags = m.mem_map["flags"]
    ok[pbs - first] = online & ((flags[lo] & _ZMASK) == zb) & ((flags[hi] & _ZMASK) == zb)
    return first, ok


def free_blocks_per_order(zone, include_isolated=True):
    """Free blocks per order of a zone, over all migratetypes (/proc/buddyinfo)."""
    counts = zone.free_area.counts()
    if not include_isolated:
        counts = counts[:P.MIGRATE_ISOLATE]
    return counts.sum(axis=0).tolist()


# ======================================================================================
# compact_zone()
# ======================================================================================
def compact_zone(m, zone, order, mode="sync", *, direct=False, ignore_skip_hint=None,
                 backend=None):
    """compact_zone() (mm/compaction.c) of one zone, whole zone, for a MOVABLE request.

    The migrate scanner walks pageblocks up from the zone start, the free scanner down
    from the zone end; isolated folios move into isolated free blocks above the migrate
    scanner, until a free block of `order` (or more) is there (not checked for
    order=-1, /proc/sys/vm/compact_memory) or the scanners meet (compact_scanners_met()).
    `mode` "sync" or "async" (MIGRATE_ASYNC: each free scan starts at a stride of
    COMPACT_CLUSTER_MAX, sync at 1); async `direct` compaction scans only MOVABLE source
    pageblocks and gives up an order-aligned chunk at its first failure. Skip bits are
    honoured unless `ignore_skip_hint` (default: only for order=-1, as compact_node()).

    The rules are those of the machine's kernel version (LARGE_FOLIO_COMPACTION_SINCE).
    Returns a report: result ("success", "complete" or "contended": out of targets),
    migrate_scanned / free_scanned (the kernel's nr_scanned sums), migrated_pages,
    migrated_folios, and free blocks per order (all migratetypes) before and after.
    """
    if mode not in ("sync", "async"):
        raise ConfigError(f"compact_zone: mode {mode!r}; expected 'sync' or 'async'")
    zone = _resolve_zone(m, zone)
    if not _is_int(order) or not -1 <= order < m.arch.nr_page_orders:
        raise ConfigError(f"compact_zone: order={order!r} outside -1..{m.arch.max_page_order}")
    if ignore_skip_hint is None:
        ignore_skip_hint = order == -1
    report = {"zone": f"node{zone.nid}/{zone.name}", "order": order, "mode": mode,
              "free_blocks_before": free_blocks_per_order(zone)}
    result, counts = "complete", (0, 0, 0, 0)
    if zone.spanned_pages and zone.managed_pages:
        _, valid = _valid_pageblocks(m, zone)
        result, *counts = _kernels_of(m, backend).compact_zone_run(
            zone.free_area, m.mem_map, m.pageblock_flags, valid.view(np.uint8),
            zone.zone_start_pfn, zone.zone_end_pfn, order, m.arch.pageblock_order,
            bool(ignore_skip_hint), mode == "async" and direct,
            m.kernel >= LARGE_FOLIO_COMPACTION_SINCE, mode == "async")
    report["result"] = result
    report.update(zip(("migrate_scanned", "free_scanned", "migrated_pages", "migrated_folios"),
                      counts))
    report["free_blocks_after"] = free_blocks_per_order(zone)
    return report


def reset_isolation_suitable(m, zone):
    """__reset_isolation_suitable(): clear the compaction skip bit of every pageblock of
    the zone (the kernel samples each block first; pagecore clears them all)."""
    zone = _resolve_zone(m, zone)
    pbo = m.arch.pageblock_order
    lo, hi = zone.zone_start_pfn >> pbo, ((zone.zone_end_pfn - 1) >> pbo) + 1
    if zone.spanned_pages:
        m.pageblock_flags[lo:hi] &= ~np.uint8(P.PB_migrate_skip)


# ======================================================================================
# contiguous allocation
# ======================================================================================
def _alloc_contig_migrate_range(m, k, zone, start_pfn, end_pfn, migrated, report):
    """__alloc_contig_migrate_range(): isolate (alloc_contig: folios whole, no skip
    hints) and migrate to alloc_migration_target() of the zone's node, GFP_USER |
    __GFP_MOVABLE; a target that cannot be allocated is -ENOMEM, after a large LRU
    folio was split and its pages tried (trysplit_folio()).

    Batched like offline's migrate.do_migrate_range(): nothing else runs, so one
    isolate_migratepages_range() pass over the whole range isolates what the kernel's
    batches of COMPACT_CLUSTER_MAX (32) would, and the targets are allocated per order,
    largest first, before any folio moves; on -ENOMEM the targets are given back and the
    folios put back, so nothing has moved."""
    mm, pbf = m.mem_map, m.pageblock_flags
    out = np.empty(max(1, end_pfn - start_pfn), dtype=np.uint32)
    _, n, scanned = k.isolate_migratepages_range(mm, pbf, start_pfn, end_pfn,
                                                 m.arch.pageblock_order, _zone_bits(zone),
                                                 True, True, out)
    report["migrate_scanned"] += scanned
    heads = start_pfn + out[:n].astype(np.int64)
    is_head = (mm["flags"][heads] & P.PG_head) != 0
    orders = np.where(is_head, mm["order"][heads], 0).astype(np.int64)
    plan, split = [], []
    try:
        for order in sorted(set(orders.tolist()) | {0}, reverse=True):
            src = heads[orders == order]
            if order == 0 and split:
                src = np.sort(np.concatenate([src] + split))
            if not len(src):
                continue
            dst = m.alloc_pages(zone.nid, order, "movable", len(src), owner=0)
            plan.append((src[:len(dst)], dst, order))
            for head in src[len(dst):].tolist():
                if not splittable(mm, head, order):
                    raise OutOfMemoryError(
                        f"alloc_contig_range {pfn_range(start_pfn, end_pfn)} failed: no "
                        f"memory to migrate the order-{order} folio at pfn {head:#x} "
                        "(migrate_pages(): -ENOMEM)", pfn=head, reason="not enough free memory")
                split.append(np.asarray(split_folio(mm, head, order), dtype=np.int64))
    except OutOfMemoryError:
        for _, dst, _ in plan:
            m.free_pages(dst)
        putback(mm, heads)
        if split:
            putback(mm, np.concatenate(split))
        raise
    for src, dst, order in plan:
        putback(mm, src)                           # the move ends the isolation
        migrate.migrate_folios(m, src, dst, order)
        migrated.append((src, dst, order))
        report["migrated_pages"] += len(src) << order


def alloc_contig_range(m, start_pfn, end_pfn, *, owner=CONTIG_OWNER, backend=None):
    """alloc_contig_range(start, end, MIGRATE_MOVABLE) (mm/page_alloc.c).

    Isolate every pageblock of [start_pfn, end_pfn) (start_isolate_page_range(): -EBUSY
    on an unmovable page or an isolated pageblock), migrate the movable folios out, check
    that every page is free (test_pages_isolated()), take the range off the free lists
    (isolate_freepages_range(), strict), give back what the outer free blocks held beyond
    the range, and undo the isolation. The pages end up allocated: refcount 1, not
    compound, `owner` in private (free them with free_contig_range()).

    On failure raises BusyError / OutOfMemoryError and rolls back in reverse order:
    migrated folios move back, the isolation is undone. Returns a report dict.
    """
    start_pfn = _int_arg(start_pfn, "alloc_contig_range: start_pfn")
    end_pfn = _int_arg(end_pfn, "alloc_contig_range: end_pfn")
    if not 0 <= start_pfn < end_pfn <= m.max_pfn:
        raise RangeError(f"alloc_contig_range: bad range {pfn_range(start_pfn, end_pfn)}")
    if not _online(m, start_pfn, end_pfn):
        raise RangeError(f"alloc_contig_range: {pfn_range(start_pfn, end_pfn)} is not all online")
    k = _kernels_of(m, backend)
    zone = mmzone.page_zone(m, start_pfn)
    zb = np.uint32(_zone_bits(zone))
    other = np.flatnonzero((m.mem_map["flags"][start_pfn:end_pfn] & _ZMASK) != zb)
    if other.size:
        raise RangeError(f"alloc_contig_range: {pfn_range(start_pfn, end_pfn)} is not in one "
                         f"zone (pfn {start_pfn + int(other[0]):#x} is not in {zone.name})")
    mm, pbf, pbo = m.mem_map, m.pageblock_flags, m.arch.pageblock_order
    report = {"start_pfn": start_pfn, "nr_pages": end_pfn - start_pfn, "migrated_pages": 0,
              "migrate_scanned": 0}
    isolated = m.start_isolate_page_range(start_pfn, end_pfn, zone, memory_offline=False)
    # drain_all_pages(cc.zone) once the range is isolated (v6.1, v6.12): pages of the
    # range on pcp lists go to its isolated free lists, where test_pages_isolated() and
    # isolate_freepages_range() find them
    page_alloc.drain_all_pages(m, zone)
    migrated = []
    try:
        _alloc_contig_migrate_range(m, k, zone, start_pfn, end_pfn, migrated, report)
        # outer_start: the head of a free block the range starts inside
        outer_start = start_pfn
        for order in range(0 if mm[start_pfn]["page_type"] == P.PGTY_BUDDY else 1,
                           m.arch.nr_page_orders):
            head = start_pfn & ~((1 << order) - 1)
            page = mm[head]
            if page["page_type"] == P.PGTY_BUDDY:
                if head + (1 << int(page["order"])) > start_pfn:
                    outer_start = head
                break
        rc, bad = m.kernels.test_pages_isolated(mm, pbf, outer_start, end_pfn, pbo)
        raise_for(rc, f"alloc_contig_range {pfn_range(start_pfn, end_pfn)} failed: page at "
                  f"pfn {bad:#x} is not free (test_pages_isolated(): -EBUSY)",
                  pfn=bad, reason="page busy")
        cap = end_pfn - outer_start
        blocks = np.empty(cap, dtype=np.int64)
        orders = np.empty(cap, dtype=np.uint8)
        _, _, fail, nb = k.isolate_freepages_block(mm, pbf, outer_start, end_pfn, True, blocks,
                                                   orders, cap, pbo)
        if fail >= 0:
            raise BusyError(f"alloc_contig_range {pfn_range(start_pfn, end_pfn)} failed: pfn "
                            f"{fail:#x} is not free (isolate_freepages_range(): -EBUSY)",
                            pfn=fail, reason="page busy")
    except PagecoreError:
        migrate.undo_migrate_folios(m, migrated)
        page_isolation.undo_isolate_page_range(m, isolated)
        raise
    fa = zone.free_area
    for pfn in blocks[:nb].tolist():
        fa.py_remove(pfn)
    outer_end = int(blocks[nb - 1] + (1 << int(orders[nb - 1])))
    taken = mm[outer_start:outer_end]
    taken["flags"] &= _ZMASK
    taken["page_type"] = P.PGTY_NONE
    taken["order"] = 0
    taken["refcount"] = 1
    taken["private"] = owner
    page_alloc.free_pages_core(m, zone, outer_start, start_pfn)
    page_alloc.free_pages_core(m, zone, end_pfn, outer_end)
    page_isolation.undo_isolate_page_range(m, isolated)
    return report


def free_contig_range(m, start_pfn, nr_pages):
    """free_contig_range() (mm/page_alloc.c): free every page of the range. Each must be
    an allocated, non-compound page (refcount 1, as alloc_contig_range() leaves them);
    otherwise nothing is freed and StateError names the first offender."""
    start_pfn = _int_arg(start_pfn, "free_contig_range: start_pfn")
    nr_pages = _int_arg(nr_pages, "free_contig_range: nr_pages")
    end_pfn = start_pfn + nr_pages
    if nr_pages <= 0 or start_pfn < 0 or end_pfn > m.max_pfn:
        raise RangeError(f"free_contig_range: bad range start={start_pfn:#x} nr={nr_pages}")
    pages = m.mem_map[start_pfn:end_pfn]
    bad = np.flatnonzero((pages["refcount"] != 1) | (pages["page_type"] != P.PGTY_NONE)
                         | ((pages["flags"] & (P.PG_head | P.PG_tail)) != 0))
    if bad.size:
        raise StateError(f"free_contig_range: pfn {start_pfn + int(bad[0]):#x} is not an "
                         "allocated order-0 page (\"pages are still in use\")",
                         pfn=start_pfn + int(bad[0]))
    page_alloc.free_pages_core(m, mmzone.page_zone(m, start_pfn), start_pfn, end_pfn)


def _windows(zone, nr_pages):
    """alloc_contig_pages()'s candidates: naturally aligned, last pfn in the zone span."""
    pfn = -(-zone.zone_start_pfn // nr_pages) * nr_pages
    while pfn + nr_pages - 1 < zone.zone_end_pfn:          # zone_spans_last_pfn()
        yield pfn
        pfn += nr_pages


def _try_window(m, k, zone, pfn, nr_pages, owner, backend):
    if not _online(m, pfn, pfn + nr_pages):
        return False
    if k.pfn_range_valid_contig(m.mem_map, pfn, pfn + nr_pages, _zone_bits(zone)) >= 0:
        return False
    try:
        alloc_contig_range(m, pfn, pfn + nr_pages, owner=owner, backend=backend)
    except (BusyError, OutOfMemoryError):
        return False
    return True


def alloc_contig_pages(m, nr_pages, nid=None, zone=None, *, gfp="movable", owner=CONTIG_OWNER,
                       backend=None):
    """alloc_contig_pages() (mm/page_alloc.c): the first naturally aligned range of
    `nr_pages` (a power of two) that passes pfn_range_valid_contig() and then
    alloc_contig_range(), over `zone` alone or the zonelist of `nid` (default node 0)
    for `gfp` ("movable" reaches ZONE_MOVABLE; hugetlb's gigantic pages use GFP_HIGHUSER,
    i.e. "user", unless movable_gigantic_pages). Returns the first pfn, or None."""
    if not _is_int(nr_pages) or nr_pages <= 0 or nr_pages & (nr_pages - 1):
        raise ConfigError(f"alloc_contig_pages: nr_pages={nr_pages} is not a power of two")
    k = _kernels_of(m, backend)
    if zone is not None:
        zones = [_resolve_zone(m, zone)]
    else:
        nid = 0 if nid is None else nid
        m.check_nid(nid)
        if gfp not in GFP:
            raise ConfigError(f"unknown gfp {gfp!r}; expected one of {', '.join(GFP)}")
        zones = m.zonelist(nid, GFP[gfp][0])
    for z in zones:
        for pfn in _windows(z, nr_pages):
            if _try_window(m, k, z, pfn, nr_pages, owner, backend):
                return pfn
    return None


def count_gigantic_pages(m, order, *, backend=None):
    """How many naturally aligned blocks of 2^order pages could be allocated right now,
    per populated zone: {(nid, zone name): count}.

    Every candidate window goes through alloc_contig_pages()'s two stages: the
    pfn_range_valid_contig() pre-check, then a real alloc_contig_range(). Successful
    windows stay allocated while the count goes on (as `echo N > nr_hugepages` would keep
    them), then all are freed with free_contig_range(). Side effect: folios migrated out
    of windows stay where migration put them. x86_64: order 18 = 1 GiB, 9 = 2 MiB.

    This counts what alloc_contig_range() can take in each zone. hugetlb asks for its
    gigantic pages with htlb_alloc_mask() = GFP_HIGHUSER, because
    hugepage_movable_supported() is false for gigantic hstates (include/linux/hugetlb.h;
    the movable_gigantic_pages sysctl proposed in 2025 lifts that): ZONE_MOVABLE counts
    are reachable through alloc_contig_pages(gfp="movable") only.
    """
    if not _is_int(order) or not 0 <= order <= 40:
        raise ConfigError(f"count_gigantic_pages: order={order} out of range")
    nr_pages = 1 << order
    k = _kernels_of(m, backend)
    counts, taken = {}, []
    try:
        for z in m.zones():
            if not z.spanned_pages or not z.present_pages:
                continue
            n = 0
            for pfn in _windows(z, nr_pages):
                if _try_window(m, k, z, pfn, nr_pages, CONTIG_OWNER, backend):
                    taken.append(pfn)
                    n += 1
            counts[(z.nid, z.name)] = n
    finally:
        for pfn in taken:
            free_contig_range(m, pfn, nr_pages)
    return counts
