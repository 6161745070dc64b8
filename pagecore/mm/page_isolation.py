"""mm/page_isolation.c: isolating pageblocks for offline (and compaction's rollback).

Modelled: start_isolate_page_range() (all or nothing, has_unmovable_pages()),
undo_isolate_page_range() with the re-merge of what isolation split
(__putback_isolated_page()). Also pagecore's own rollback of pageblock migratetypes
(save_pageblocks() / restore_pageblocks()): the kernel keeps what a failed operation's
allocations claimed (__rmqueue_fallback()); pagecore promises a failed call changes
nothing, so it puts the types back. Not modelled: isolating a range that starts or ends
inside a free block larger than a pageblock (isolate_single_pageblock(), v6.0+): offline
ranges are whole memory blocks.
"""
from __future__ import annotations

import numpy as np

from pagecore.kernels import page as P
from pagecore.errors import BusyError, pfn_range
from pagecore.mm import mmzone


def start_isolate_page_range(m, start_pfn, end_pfn, zone, memory_offline=True):
    """start_isolate_page_range(): isolate every pageblock or none. Returns the
    isolated pageblock start pfns (for undo_isolate_page_range())."""
    a = m.arch
    pb = a.pageblock_nr_pages
    done = []
    movable = zone.zid == P.ZONE_MOVABLE
    for p in range(start_pfn - start_pfn % pb, end_pfn, pb):
        f = m.pageblock_flags[p >> a.pageblock_order]
        s, e = max(p, start_pfn), min(p + pb, end_pfn)
        bad = -1 if not f & P.PB_migrate_isolate else s
        if bad < 0:
            bad = m.kernels.has_unmovable_pages(m.mem_map, s, e, movable, memory_offline)
        if bad >= 0:
            undo_isolate_page_range(m, done)
            why = ("pageblock already isolated" if f & P.PB_migrate_isolate
                   else "unmovable page")
            raise BusyError(f"failure to isolate range {pfn_range(start_pfn, end_pfn)}: {why} at "
                            f"pfn {bad:#x} (has_unmovable_pages(): -EBUSY)", pfn=bad, reason=why)
        zone.free_area.py_move_freepages_block(p, P.MIGRATE_ISOLATE)
        done.append(p)
    return done


def undo_isolate_page_range(m, isolated):
    """undo_isolate_page_range(): restore each pageblock's own migratetype, in
    ascending order like the kernel; FreeArea.unset_migratetype_isolate() re-merges
    what isolation split (__putback_isolated_page(), mm/page_isolation.c)."""
    for p in isolated:
        mmzone.page_zone(m, p).free_area.py_unset_migratetype_isolate(p)


def save_pageblocks(m):
    """Pageblock flags of every populated zone, for rollback. Allocations an operation
    makes on the way (memmap at hot-add, migration targets) may claim whole pageblocks
    for their migratetype (__rmqueue_fallback()); freeing the pages back does not give
    them back. A failed call must leave the machine as it was, so the failure paths
    restore the saved types with restore_pageblocks()."""
    pb = m.arch.pageblock_order
    saved = []
    for z in m.zones():
        if z.spanned_pages:
            lo, hi = z.zone_start_pfn >> pb, -(-z.zone_end_pfn >> pb)
            saved.append((lo, m.pageblock_flags[lo:hi].copy()))
    return saved


def restore_pageblocks(m, saved):
    """Give every pageblock that changed type its saved type back (moving its free
    pages to the matching lists), then re-merge the free blocks the move split."""
    pb = m.arch.pageblock_order
    for lo, old in saved:
        cur = m.pageblock_flags[lo:lo + len(old)]
        for i in np.nonzero(cur != old)[0].tolist():
            p = (lo + i) << pb
            zone = mmzone.page_zone(m, p)
            zone.free_area.py_move_freepages_block(p, int(old[i]) & P.MIGRATETYPE_MASK)
            m.pageblock_flags[lo + i] = old[i]
            remerge(m, p)


def remerge(m, pfn):
    """Free every free block of the MAX_PAGE_ORDER-aligned region around `pfn` again
    (__free_one_page()), so that pieces split apart merge back."""
    mo = m.arch.max_page_order
    lo = pfn >> mo << mo
    mm = m.mem_map
    q = lo
    while q < lo + (1 << mo):
        if mm[q]["page_type"] != P.PGTY_BUDDY:
            q += 1
            continue
        o = int(mm[q]["order"])
        fa = mmzone.page_zone(m, q).free_area
        fa.py_remove(q)
        fa.py_free_one_page(q, o)
        nxt = q + (1 << o)
        for k in range(o, mo + 1):          # skip to the end of the merged block
            h = q >> k << k
            if mm[h]["page_type"] == P.PGTY_BUDDY and mm[h]["order"] == k:
                nxt = h + (1 << k)
                break
        q = nxt

