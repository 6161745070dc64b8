"""mm/migrate.c: moving folios out of a range (offline's do_migrate_range(), and
compaction's migration).

Modelled: which folios move (LRU and __PageMovable heads), where they go (the zonelist of
the node with the node masked out for offline), that a folio's state (flags, owner tag,
refcount, order) moves with it, and the undo of a batch for pagecore's rollback. Not
modelled: page contents, mappings and rmap, retries (where the kernel would retry
forever pagecore fails with -ENOMEM), hugetlb migration.
"""
from __future__ import annotations

import numpy as np

from pagecore.kernels import page as P
from pagecore.errors import BusyError, OutOfMemoryError, StateError, pfn_range
from pagecore.mm import page_alloc


def do_migrate_range(m, start, end, zone, report, migrated):
    """The scan_movable_pages() / do_migrate_range() loop of offline_pages(), batched.

    Nothing else runs on the simulated machine, so one pass finds every movable folio
    the kernel's loop would find before scan_movable_pages() says -ENOENT: the LRU or
    __PageMovable pages that are not folio tails, in pfn order. A PageOffline page
    still referenced fails the whole offline (-EBUSY), as it would when the scan
    reaches it. Targets are GFP_USER|__GFP_MOVABLE allocations from the zonelist of the
    block's node with that node masked out (do_migrate_range(): nmask = N_MEMORY
    minus nid, unless nid is the only memory node), taken for every folio before any
    moves, largest folios first. Where the kernel would retry forever for lack of
    memory we stop with -ENOMEM ("not enough free memory"), and since nothing has
    moved yet, giving the targets back is the whole rollback.
    """
    report["scanned"] = end - start
    rc, pfn = m.kernels.scan_movable_pages(m.mem_map, start, end)
    if rc == -P.ENOENT:
        return
    mm = m.mem_map[start:end]
    busy = np.flatnonzero((mm["page_type"] == P.PGTY_OFFLINE) & (mm["refcount"] > 0))
    if len(busy):
        pfn = start + int(busy[0])
        raise BusyError(f"offline_pages: PageOffline page at pfn {pfn:#x} still in use "
                        "(scan_movable_pages(): -EBUSY)", pfn=pfn, reason="unmovable page")
    flags = mm["flags"]
    heads = np.flatnonzero((flags & (P.PG_lru | P.PG_movable)) != 0)
    heads = heads[(flags[heads] & P.PG_tail) == 0]
    orders = np.where(flags[heads] & P.PG_head, mm["order"][heads], 0).astype(np.int64)
    heads += start
    nid = zone.nid
    masked = any(n.nid != nid and n.has_memory for n in m.nodes)
    exclude = (lambda z: z.nid == nid) if masked else None
    plan = []
    for order in sorted(set(orders.tolist()), reverse=True):
        src = heads[orders == order]
        dst = page_alloc.__alloc_pages(m, nid, order, "movable", len(src), 0, exclude=exclude)
        plan.append((order, src, dst))
        if len(dst) < len(src):
            for _, _, d in plan:
                page_alloc.free_pages_ok(m, d)
            head = int(src[len(dst)])
            raise OutOfMemoryError(
                f"offline_pages {pfn_range(start, end)} failed: not enough free memory to "
                f"migrate the order-{order} folio at pfn {head:#x} (do_migrate_range())",
                pfn=head, reason="not enough free memory")
    for order, src, dst in plan:
        migrate_folios(m, src, dst, order)
        migrated.append((src, dst, order))
        report["migrated"] += len(src) << order


def migrate_folios(m, src, dst, order):
    """migrate_pages() of folios of one order: page state (flags, owner, refcount)
    moves from src[i] to dst[i]; the sources are freed (into the isolated lists when
    their pageblocks are isolated)."""
    k = np.arange(1 << order, dtype=np.int64)
    s, d = (src[:, None] + k).ravel(), (dst[:, None] + k).ravel()
    mm = m.mem_map
    fm = np.uint32(P.FLAGS_MASK)
    mm["flags"][d] = (mm["flags"][d] & ~fm) | (mm["flags"][s] & fm)
    mm["private"][d] = mm["private"][s]
    mm["refcount"][d] = mm["refcount"][s]
    mm["order"][d] = mm["order"][s]
    page_alloc.free_pages_ok(m, src)


def undo_migrate_folios(m, migrated):
    """Undo migrations, last batch first: `migrated` holds (src pfns, dst pfns, order)
    batches of migrate_folios(). Each folio's old pages come back off the free lists
    (FreeArea.claim_ranges(): the free block holding them is split around them), its
    state moves back, and its new pages are freed. Sources lie in isolated
    pageblocks, targets outside them, so claims and frees do not interact."""
    for src, dst, order in reversed(migrated):
        src = np.ascontiguousarray(src[::-1], dtype=np.int64)
        zids = (m.mem_map["flags"][src] >> P.ZONES_PGSHIFT) & P.ZONES_MASK
        nids = (m.mem_map["flags"][src] >> P.NODES_PGSHIFT) & P.NODES_MASK
        for nid, zid in set(zip(nids.tolist(), zids.tolist())):
            part = np.ascontiguousarray(src[(nids == nid) & (zids == zid)])
            bad = m.zone(nid, zid).free_area.claim_ranges(part, 1 << order)
            if bad >= 0:
                raise StateError(f"pfn {int(part[bad]):#x} is not free: cannot undo its "
                                 "migration")
        migrate_folios(m, np.asarray(dst[::-1]), src, order)

