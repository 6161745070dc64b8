"""Machine.check(): the machine's invariants, walked over its arrays.

In the spirit of the kernel's CONFIG_DEBUG_VM checks: check_new_page() / bad_page()
(mm/page_alloc.c) for the page states, the VM_BUG_ON_PAGE()s of the buddy allocator
(page_is_buddy(), __free_one_page(): alignment, one zone, one list), account_freepages()
(v6.9+: a free block sits on the list of its pageblock's migratetype), and the memory
hotplug bookkeeping (sections, memory blocks, zone spans and counters, the vmemmap
backing and its altmap, nr_memmap_pages). Everything is numpy over the page array,
present section runs at a time, so a 64 GiB machine is checked in a fraction of a second.

check_machine() raises InvariantError naming the first broken invariant, the zone, block
or pfn, and the values seen; it changes nothing.
"""
from __future__ import annotations

import numpy as np

from pagecore.kernels import page as P
from pagecore.drivers.base.memory import MEM_OFFLINE, MEM_ONLINE
from pagecore.errors import InvariantError
from pagecore.mm.mmzone import SECTION_IS_EARLY, SECTION_IS_ONLINE, SECTION_MARKED_PRESENT
from pagecore.mm.page_owner import OWNER_VMEMMAP
from pagecore.mm import sparse_vmemmap
from pagecore.util import flat_ranges, runs

_ZMASK = np.uint32(~np.uint32(P.FLAGS_MASK) & np.uint32(0xFFFFFFFF))
_VMEMMAP_FLAGS = np.uint32(P.PG_reserved | P.PG_vmemmap_self_hosted)


def _fail(what, **values):
    detail = ", ".join(f"{k}={v:#x}" if isinstance(v, int) and k.endswith("pfn") else f"{k}={v}"
                       for k, v in values.items())
    raise InvariantError(f"Machine.check(): {what}" + (f" ({detail})" if detail else ""),
                         pfn=values.get("pfn"))


def _zone_key(nid, zid):
    """nid | zone << 8: the node and zone bits of page->flags shifted down by 16."""
    return (zid << 8) | nid


def _check_pcp_lists(m, zones, free_heads, free_ends):
    """Every block on a pcp list is aligned, in online memory of its zone, unreferenced,
    untyped (not PageBuddy: rmqueue_bulk() took it off the free lists) and unflagged,
    listed once, overlapping no free block; pcp->count is their pages."""
    mm = m.mem_map
    pps = m.arch.pages_per_section
    online = (m.sections & SECTION_IS_ONLINE) != 0
    heads, ends = [free_heads], [free_ends]
    for z in zones:
        fa = z.free_area
        zkey = _zone_key(z.nid, z.zid)
        name = f"node {z.nid} {z.name}"
        pages = 0
        for pindex, h in fa.pcp_lists().items():
            o = fa.pcp_list_order(pindex)
            pages += len(h) << o
            if (h < 0).any() or (h + (1 << o) > m.max_pfn).any() or (h & ((1 << o) - 1)).any():
                _fail("pcp block outside the address space or not aligned to its order",
                      zone=name, order=o, pfn=int(h[0]))
            pfns = (h[:, None] + np.arange(1 << o)).ravel()
            pg = mm[pfns]
            bad = ((pg["refcount"] != 0) | (pg["page_type"] != P.PGTY_NONE)
                   | ((pg["flags"] & np.uint32(P.FLAGS_MASK)) != 0)
                   | ((pg["flags"] >> np.uint32(16)) != zkey) | ~online[pfns // pps])
            if bad.any():
                _fail("pcp page is referenced, typed, flagged, offline or of another zone",
                      zone=name, order=o, pfn=int(pfns[np.argmax(bad)]))
            heads.append(h)
            ends.append(h + (1 << o))
        if pages != fa.pcp_count:
            _fail("pcp->count disagrees with the pages on the lists", zone=name,
                  count=fa.pcp_count, listed=pages)
    h, e = np.concatenate(heads), np.concatenate(ends)
    srt = np.argsort(h, kind="stable")
    h, e = h[srt], e[srt]
    if len(h) > 1 and (e[:-1] > h[1:]).any():
        i = int(np.argmax(e[:-1] > h[1:]))
        _fail("pcp block overlaps a free block or another pcp block (listed twice?)",
              pfn=int(h[i + 1]), other_pfn=int(h[i]))


def check_machine(m):
    a = m.arch
    pps, nb, pbo = a.pages_per_section, m.block_pages, a.pageblock_order
    max_order = a.max_page_order
    mm = m.mem_map
    secs = m.sections
    present_sec = (secs & SECTION_MARKED_PRESENT) != 0
    online_sec = (secs & SECTION_IS_ONLINE) != 0

    # ---- isolation is only ever held inside a call ----------------------------------
    iso = np.flatnonzero(m.pageblock_flags & np.uint8(P.PB_migrate_isolate))
    if len(iso):
        _fail("pageblock left isolated after the call (PB_migrate_isolate)",
              pfn=int(iso[0]) << pbo)

    # ---- sections and memory blocks -------------------------------------------------
    if (online_sec & ~present_sec).any():
        _fail("section online but not present", section=int(np.argmax(online_sec & ~present_sec)))
    spb = m.sections_per_block
    nblk = len(m.blocks)
    bsec_present = present_sec[:nblk * spb].reshape(nblk, spb)
    bsec_online = online_sec[:nblk * spb].reshape(nblk, spb)
    st = m.blocks["state"]
    boot = m.blocks["boot"]
    has = st != 0
    # a block exists iff its sections are present (boot blocks may have holes at the ends)
    bad = has & ~boot & ~bsec_present.all(axis=1)
    bad |= has & boot & ~bsec_present.any(axis=1)
    bad |= ~has & bsec_present.any(axis=1)
    if bad.any():
        b = int(np.argmax(bad))
        _fail("memory block state disagrees with its sections' presence", block=b,
              state=int(st[b]), present=bsec_present[b].tolist())
    if ((st != 0) & (st != MEM_ONLINE) & (st != MEM_OFFLINE)).any():
        b = int(np.argmax((st != 0) & (st != MEM_ONLINE) & (st != MEM_OFFLINE)))
        _fail("memory block left in a transient state (going offline)", block=b)
    on = st == MEM_ONLINE
    off = st == MEM_OFFLINE
    bad = (on & ~(bsec_online | ~bsec_present).all(axis=1)) | (off & bsec_online.any(axis=1))
    bad |= on & ~bsec_online.any(axis=1)
    if bad.any():
        b = int(np.argmax(bad))
        _fail("memory block state disagrees with SECTION_IS_ONLINE", block=b, state=int(st[b]),
              online=bsec_online[b].tolist())
    bad = on & (m.blocks["zone"] < 0) & ~boot
    bad |= off & (m.blocks["zone"] >= 0)
    if bad.any():
        b = int(np.argmax(bad))
        _fail("memory block zone disagrees with its state", block=b, state=int(st[b]),
              zone=int(m.blocks["zone"][b]))
    snid = m.section_nid[:nblk * spb].reshape(nblk, spb)
    bad = has & ((snid != m.blocks["nid"][:, None]) & bsec_present).any(axis=1)
    if bad.any():
        b = int(np.argmax(bad))
        _fail("memory block node disagrees with its sections' node", block=b,
              nid=int(m.blocks["nid"][b]))
    # ranges: each names present blocks of its node, each hot-added block names a range
    hot = np.flatnonzero(has & ~boot)
    rids = m.blocks["range_id"][hot]
    for rid in np.unique(rids).tolist():
        rng = m.ranges.get(rid)
        if rng is None:
            _fail("hot-added memory block names no recorded add_memory() range",
                  block=int(hot[np.argmax(rids == rid)]), range_id=rid)
        sel = hot[rids == rid]
        if (sel < rng.start_pfn // nb).any() or (sel >= (rng.start_pfn + rng.nr_pages) // nb).any() \
                or (m.blocks["nid"][sel] != rng.nid).any():
            _fail("memory block outside the range (or node) it was added with", range_id=rid)
    for rid, rng in m.ranges.items():
        if not (m.blocks["range_id"][hot] == rid).any():
            _fail("add_memory() range recorded with no present block left", range_id=rid)

    # ---- the vmemmap: every present section's memmap backed exactly once ------------
    gb = m.arch.vmemmap_granule_bytes
    gp = gb >> a.page_shift
    psec = np.flatnonzero(present_sec).astype(np.int64)
    want_g = np.unique(sparse_vmemmap.section_vmemmap(a, psec)[0][0])
    have_g = np.fromiter(m.vmemmap_granules.keys(), dtype=np.int64, count=len(m.vmemmap_granules))
    have_g.sort()
    if len(want_g) != len(have_g) or (want_g != have_g).any():
        missing = np.setdiff1d(want_g, have_g)
        extra = np.setdiff1d(have_g, want_g)
        _fail("vmemmap leaves disagree with the present sections",
              missing=missing[:4].tolist(), unused=extra[:4].tolist())
    backing, owners, alt_pages = [], [], []
    for g, (kind, pfn, order, owner) in m.vmemmap_granules.items():
        if kind == "altmap":
            backing.append((pfn, 1 << order, 3))
            owners.append(owner)
            alt_pages.append(1 << order)
        elif kind == "memblock":
            backing.append((pfn, gp, 0))
        elif kind == "buddy":
            backing.append((pfn, 1 << order, 1))
        elif kind == "buddy-base":
            backing.extend((p, 1, 1) for p in pfn)
        else:
            _fail("vmemmap leaf of unknown kind", granule=g, kind=kind)
    for t, pfn in m.vmemmap_tables.items():
        if pfn >= 0:
            backing.append((pfn, 1, 2))
    bk = np.array(backing, dtype=np.int64).reshape(-1, 3)
    order_ = np.argsort(bk[:, 0], kind="stable")
    bk = bk[order_]
    if len(bk) > 1 and (bk[:-1, 0] + bk[:-1, 1] > bk[1:, 0]).any():
        i = int(np.argmax(bk[:-1, 0] + bk[:-1, 1] > bk[1:, 0]))
        _fail("a page backs two vmemmap leaves or page tables", pfn=int(bk[i + 1, 0]))
    # buddy-backed leaves and tables: allocated heads tagged OWNER_VMEMMAP
    bud = bk[bk[:, 2] >= 1]
    bud = bud[bud[:, 2] <= 2]
    if len(bud):
        pg = mm[bud[:, 0]]
        bad = (pg["refcount"] == 0) | (pg["private"] != OWNER_VMEMMAP) | \
            ((pg["flags"] & P.PG_tail) != 0)
        bad |= (bud[:, 2] == 2) & (pg["page_type"] != P.PGTY_TABLE)
        bad |= (bud[:, 2] == 1) & (pg["page_type"] != P.PGTY_NONE)
        if bad.any():
            i = int(np.argmax(bad))
            _fail("buddy page backing the vmemmap is not an allocated vmemmap page",
                  pfn=int(bud[i, 0]), refcount=int(pg["refcount"][i]),
                  page_type=int(pg["page_type"][i]))
    if int((bk[:, 2] == 2).sum()) != m.pagetable_pages:
        _fail("pagetable_pages disagrees with the vmemmap page tables",
              pagetable_pages=m.pagetable_pages, tables=int((bk[:, 2] == 2).sum()))
    # altmap accounting: vmem_altmap.alloc of each block = its altmap leaves' pages
    owners = np.asarray(owners, dtype=np.int64)
    owed = np.bincount(owners, weights=np.asarray(alt_pages, dtype=np.int64),
                       minlength=nblk).astype(np.int64)[:nblk]
    if len(owners) and owners.max() >= nblk:
        _fail("altmap leaf owned by a block beyond the block table")
    diff = owed != m.blocks["altmap_alloc"]
    if diff.any():
        b = int(np.argmax(diff))
        _fail("altmap accounting: altmap_alloc differs from the block's altmap leaves",
              block=b, altmap_alloc=int(m.blocks["altmap_alloc"][b]), leaves=int(owed[b]))
    alt = bk[bk[:, 2] == 3]
    if len(alt):
        # self-hosted pages lie in present memory of a hot-added block
        bl = alt[:, 0] // nb
        bad = (st[bl] == 0) | boot[bl] | ((alt[:, 0] + alt[:, 1] - 1) // nb >= nblk)
        if bad.any():
            _fail("altmap leaf backed by pages outside present hot-added memory",
                  pfn=int(alt[np.argmax(bad), 0]))
    # the altmap leaves of a unit lie in its self-hosted pages: from the owner block on,
    # within the V pages (nr_vmemmap) of the owner and the blocks of its range after it up
    # to the next unit's owner (one unit per block v6.6+, per range for seed v3)
    if len(owners):
        apfn = np.array([v[1] for v in m.vmemmap_granules.values() if v[0] == "altmap"],
                        dtype=np.int64)
        asz = np.asarray(alt_pages, dtype=np.int64)
        rid = m.blocks["range_id"]
        vv = m.blocks["nr_vmemmap"].astype(np.int64)
        uo = np.unique(owners)
        v_unit = np.empty(len(uo), dtype=np.int64)
        for i, o in enumerate(uo.tolist()):
            b = o + 1
            while (b < nblk and rid[b] == rid[o] and st[b] != 0 and vv[b - 1] == nb
                   and m.blocks["altmap_alloc"][b] == 0):
                b += 1
            v_unit[i] = vv[o:b].sum()
        lo_ = owners * nb
        hi_v = lo_ + v_unit[np.searchsorted(uo, owners)]
        bad = (apfn < lo_) | (apfn + asz > hi_v)
        if bad.any():
            i = int(np.argmax(bad))
            _fail("altmap leaf outside the self-hosted memmap pages of its block",
                  block=int(owners[i]), pfn=int(apfn[i]), nr_vmemmap=int(hi_v[i] - lo_[i]))
    # online self-hosted blocks: their V memmap pages are held as vmemmap pages
    ovb = np.flatnonzero(on & (m.blocks["nr_vmemmap"] > 0))
    if len(ovb):
        vs = m.blocks["nr_vmemmap"][ovb].astype(np.int64)
        vp = flat_ranges(ovb.astype(np.int64) * nb, ovb.astype(np.int64) * nb + vs)[0]
        pg = mm[vp]
        bad = (pg["refcount"] == 0) | (((pg["flags"] & _VMEMMAP_FLAGS) == 0) &
                                       (pg["page_type"] != P.PGTY_VMEMMAP))
        if bad.any():
            _fail("self-hosted memmap page of an online block is not a held vmemmap page",
                  pfn=int(vp[np.argmax(bad)]))
    # nr_memmap_pages (v6.11+, memmap_pages_add()): per present section, by where it came from
    early = present_sec & ((secs & SECTION_IS_EARLY) != 0)
    per = a.memmap_pages(pps)
    if m.nr_memmap_pages != per * int((present_sec & ~early).sum()):
        _fail("nr_memmap_pages disagrees with the present hot-added sections",
              nr_memmap_pages=m.nr_memmap_pages, expected=per * int((present_sec & ~early).sum()))
    if m.nr_memmap_boot_pages != per * int(early.sum()):
        _fail("nr_memmap_boot_pages disagrees with the present boot sections",
              nr_memmap_boot_pages=m.nr_memmap_boot_pages, expected=per * int(early.sum()))

    # ---- the free lists ---------------------------------------------------------------
    zones = m.zones()
    heads, horders, hkeys = [], [], []
    nfree = 0
    for z in zones:
        fa = z.free_area
        zkey = _zone_key(z.nid, z.zid)
        zone_free = 0
        for mt in range(P.MIGRATE_TYPES):
            for o in range(fa.nr_orders):
                h = fa.blocks(mt, o)
                if not len(h):
                    continue
                if mt == P.MIGRATE_ISOLATE:
                    _fail("free block left on the MIGRATE_ISOLATE list", zone=z.name,
                          nid=z.nid, pfn=int(h[0]))
                if (h < 0).any() or (h + (1 << o) > m.max_pfn).any():
                    _fail("free block outside the address space", zone=z.name, order=o)
                if (h & ((1 << o) - 1)).any():
                    _fail("free block not aligned to its order", zone=z.name, order=o,
                          pfn=int(h[np.argmax(h & ((1 << o) - 1))]))
                pg = mm[h]
                bad = (pg["page_type"] != P.PGTY_BUDDY) | (pg["order"] != o)
                if bad.any():
                    i = int(np.argmax(bad))
                    _fail("free-list entry is not a PageBuddy head of the list's order",
                          zone=z.name, order=o, pfn=int(h[i]), page_type=int(pg["page_type"][i]),
                          page_order=int(pg["order"][i]))
                slot = fa.list_slots(np.ascontiguousarray(h, dtype=np.int64))
                bad = (slot != np.arange(len(h))) | (pg["private"] != (
                    mt if o >= fa.side_order else (slot << 3).astype(np.uint64) | np.uint64(mt)))
                if bad.any():
                    _fail("free block's list slot (page->private) disagrees with its list",
                          zone=z.name, order=o, migratetype=mt, pfn=int(h[np.argmax(bad)]))
                if ((pg["flags"] >> np.uint32(16)) != zkey).any():
                    _fail("free block on the list of another zone (page_zone() differs)",
                          zone=z.name, nid=z.nid, pfn=int(h[np.argmax((pg["flags"] >> np.uint32(16)) != zkey)]))
                # account_freepages() (v6.9+): the list is the pageblock's migratetype; a
                # block of several pageblocks has them all of that type
                npb = max(1, 1 << (o - pbo)) if o >= pbo else 1
                pbs = (h >> pbo)[:, None] + np.arange(npb)
                f = m.pageblock_flags[pbs]
                eff = np.where(f & np.uint8(P.PB_migrate_isolate), P.MIGRATE_ISOLATE,
                               f & np.uint8(P.MIGRATETYPE_MASK))
                if (eff != mt).any():
                    r = int(np.argmax((eff != mt).any(axis=1)))
                    _fail("free block on the list of another migratetype than its pageblock",
                          zone=z.name, order=o, list_migratetype=mt,
                          pageblock_migratetype=eff[r].tolist(), pfn=int(h[r]))
                heads.append(h)
                horders.append(np.full(len(h), o, dtype=np.int64))
                hkeys.append(np.full(len(h), zkey, dtype=np.int64))
                zone_free += len(h) << o
        if zone_free != z.free_pages:
            _fail("zone NR_FREE_PAGES disagrees with its free lists", zone=z.name, nid=z.nid,
                  free_pages=z.free_pages, listed=zone_free)
        nfree += zone_free
    if nfree != m.mem_free_pages:
        _fail("MemFree disagrees with the free lists", mem_free=m.mem_free_pages, listed=nfree)
    heads = np.concatenate(heads) if heads else np.zeros(0, dtype=np.int64)
    horders = np.concatenate(horders) if horders else np.zeros(0, dtype=np.int64)
    hkeys = np.concatenate(hkeys) if hkeys else np.zeros(0, dtype=np.int64)
    srt = np.argsort(heads)                 # distinct unless corrupt (checked next)
    heads, horders, hkeys = heads[srt], horders[srt], hkeys[srt]
    ends = heads + (np.int64(1) << horders)
    if len(heads) > 1 and (ends[:-1] > heads[1:]).any():
        i = int(np.argmax(ends[:-1] > heads[1:]))
        _fail("free blocks overlap (or one is listed twice)", pfn=int(heads[i + 1]),
              other_pfn=int(heads[i]))
    # ---- the per-cpu lists: blocks taken off the free lists, not handed out -------------
    _check_pcp_lists(m, zones, heads, ends)
    # __free_one_page() merges every free buddy pair it can: none may be left unmerged
    if len(heads):
        cand = horders < max_order
        bud = heads ^ (np.int64(1) << horders)
        j = np.searchsorted(heads, bud)
        j = np.minimum(j, len(heads) - 1)
        pair = cand & (heads[j] == bud) & (horders[j] == horders) & (hkeys[j] == hkeys)
        if pair.any():
            i = np.flatnonzero(pair)
            f = m.pageblock_flags
            mt_i = np.where(f[heads[i] >> pbo] & np.uint8(P.PB_migrate_isolate), P.MIGRATE_ISOLATE,
                            f[heads[i] >> pbo] & np.uint8(P.MIGRATETYPE_MASK))
            mt_j = np.where(f[bud[i] >> pbo] & np.uint8(P.PB_migrate_isolate), P.MIGRATE_ISOLATE,
                            f[bud[i] >> pbo] & np.uint8(P.MIGRATETYPE_MASK))
            mergeable = lambda t: t < P.MIGRATE_HIGHATOMIC      # migratetype_is_mergeable()
            would = (horders[i] < pbo) | (mt_i == mt_j) | (mergeable(mt_i) & mergeable(mt_j))
            if would.any():
                k = int(i[np.argmax(would)])
                _fail("two free buddies of one order left unmerged (__free_one_page())",
                      pfn=int(heads[k]), buddy_pfn=int(bud[k]), order=int(horders[k]))

    # ---- the page array, one run of present sections at a time ---------------------
    present_cnt = {}
    managed_cnt = {}
    zone_lo, zone_hi = {}, {}
    hi_ = 0          # free blocks seen so far: heads[:hi_] lie in earlier runs
    holes = m.boot_holes
    for s0, s1 in runs(present_sec):
        lo, hi = s0 * pps, s1 * pps
        n = hi - lo
        # the first 8 bytes of each struct page: flags | page_type << 32 | order << 40 |
        # refcount << 48 (pagecore/kernels/page.pxd), read once
        w0 = mm[lo:hi].view(np.uint64).reshape(n, 2)[:, 0].copy()
        flags = (w0 & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        ptype = ((w0 >> np.uint64(32)) & np.uint64(0xFF)).astype(np.uint8)
        key = (flags >> np.uint32(16)).astype(np.uint16)
        live = np.repeat(online_sec[s0:s1], pps)     # present pages of online sections
        for hs, he in holes:
            if hs < hi and he > lo:
                live[max(hs, lo) - lo:min(he, hi) - lo] = False
        all_live = bool(live.all())
        # free blocks of this run: their pages online, unreferenced, untyped but the head,
        # in one zone (one pass per property over the blocks' pages, by reduceat)
        a0 = int(np.searchsorted(heads, lo))
        a1 = int(np.searchsorted(heads, hi))
        if a0 != hi_:
            _fail("free block outside present memory", pfn=int(heads[hi_]))
        hi_ = a1
        h, e = heads[a0:a1] - lo, ends[a0:a1] - lo
        if len(h) and e[-1] > n:
            _fail("free block runs past present memory", pfn=int(heads[a1 - 1]))
        if len(h):
            # coverage of the run by free blocks (they are sorted and disjoint: checked
            # above), as a 0/1 mask from a difference array
            cov = np.zeros(n + 1, dtype=np.int8)
            cov[h] = 1
            cov[e] -= 1
            free = np.cumsum(cov[:n], dtype=np.int8).view(np.bool_)
            del cov
            bad = free & ((w0 >> np.uint64(48)) != 0)
            if bad.any():
                p = int(np.argmax(bad))
                _fail("free page with a nonzero refcount (allocated and free at once)",
                      pfn=lo + p, refcount=int(w0[p] >> np.uint64(48)))
            typed = int(np.count_nonzero(free & (ptype != P.PGTY_NONE)))
            if typed != len(h):             # the heads are PageBuddy (the list check)
                inner = free & (ptype != P.PGTY_NONE)
                inner[h] = False
                _fail("page inside a free block has a page type (a second buddy head?)",
                      pfn=lo + int(np.argmax(inner)))
            if not all_live and (free & ~live).any():
                _fail("free page in memory that is not online",
                      pfn=lo + int(np.argmax(free & ~live)))
            # one zone per block: where the node/zone bits change inside the run, the
            # page after the change must not be inside a free block (a head may start there)
            chg = np.flatnonzero(key[1:] != key[:-1]) + 1
            inside = chg[free[chg] & free[chg - 1]]
            if len(inside):                     # h is sorted: a head there is allowed
                at = np.minimum(np.searchsorted(h, inside), len(h) - 1)
                inside = inside[h[at] != inside]
            if len(inside):
                _fail("free block crosses a zone boundary (page_is_buddy(): one zone)",
                      pfn=lo + int(inside[0]))
            if (key[h] != hkeys[a0:a1]).any():
                _fail("free block's pages are not of the zone whose list holds it",
                      pfn=int(heads[a0 + int(np.argmax(key[h] != hkeys[a0:a1]))]))
            del free
        nb_here = int(np.count_nonzero(ptype == P.PGTY_BUDDY))
        if nb_here != a1 - a0:
            stray = np.flatnonzero(ptype == P.PGTY_BUDDY)
            stray = stray[~np.isin(stray, h)]
            _fail("PageBuddy page on no free list", pfn=lo + int(stray[0]) if len(stray) else lo,
                  buddy_pages=nb_here, listed=a1 - a0)
        # compound pages: every tail has its head (PG_head, same order) at the aligned pfn
        tails = np.flatnonzero(flags & np.uint32(P.PG_tail))
        if len(tails):
            tord = ((w0[tails] >> np.uint64(40)) & np.uint64(0xFF)).astype(np.int64)
            th = tails & ~((np.int64(1) << tord) - 1)
            hord = ((w0[th] >> np.uint64(40)) & np.uint64(0xFF)).astype(np.int64)
            bad = ((flags[th] & np.uint32(P.PG_head)) == 0) | (hord != tord) | \
                ((w0[tails] >> np.uint64(48)) == 0)
            if bad.any():
                _fail("folio tail without its head", pfn=lo + int(tails[np.argmax(bad)]))
        del w0
        # online memory blocks: their present pages carry the block's node and zone
        blo, bhi = lo // nb, -(-hi // nb)
        rows = m.blocks[blo:bhi]
        sel = np.flatnonzero((rows["state"] == MEM_ONLINE) & (rows["zone"] >= 0))
        if len(sel):
            starts = np.maximum(np.arange(blo, bhi, dtype=np.int64) * nb, lo) - lo
            if all_live:
                kmin = np.minimum.reduceat(key, starts)[sel]
                kmax = np.maximum.reduceat(key, starts)[sel]
            else:
                kmin = np.minimum.reduceat(np.where(live, key, np.uint16(0xFFFF)), starts)[sel]
                kmax = np.maximum.reduceat(np.where(live, key.astype(np.int32), -1), starts)[sel]
            exp = _zone_key(rows["nid"][sel].astype(np.int64), rows["zone"][sel].astype(np.int64))
            bad = ((kmin != exp) & (kmin != 0xFFFF)) | ((kmax != exp) & (kmax != -1))
            if bad.any():
                i = int(np.argmax(bad))
                _fail("page of an online memory block is not in the block's zone",
                      block=int(blo + sel[i]), zone=int(rows["zone"][sel[i]]))
        # counters: present = live pages per zone; managed = those not reserved and not
        # hosting a memmap (PG_reserved, PG_vmemmap_self_hosted, the v3 PageVmemmap type)
        unmanaged = ((flags & _VMEMMAP_FLAGS) != 0) | (ptype == P.PGTY_VMEMMAP)
        kl = key if all_live else key[live]
        um = unmanaged if all_live else unmanaged[live]
        cnt = np.bincount(kl, minlength=1 << 16)
        ucnt = np.bincount(kl[um], minlength=1 << 16)       # few: reserved and memmap
        for k_ in np.flatnonzero(cnt).tolist():
            present_cnt[k_] = present_cnt.get(k_, 0) + int(cnt[k_])
            managed_cnt[k_] = managed_cnt.get(k_, 0) + int(cnt[k_]) - int(ucnt[k_])
            hit = kl == k_
            pos = np.flatnonzero(live) if not all_live else None
            f_, l_ = int(np.argmax(hit)), len(hit) - 1 - int(np.argmax(hit[::-1]))
            if pos is not None:
                f_, l_ = int(pos[f_]), int(pos[l_])
            zone_lo[k_] = min(zone_lo.get(k_, lo + f_), lo + f_)
            zone_hi[k_] = max(zone_hi.get(k_, lo + l_ + 1), lo + l_ + 1)
    if hi_ != len(heads):
        _fail("free block outside present memory", pfn=int(heads[hi_]))

    # ---- zones ------------------------------------------------------------------------
    total = 0
    for z in zones:
        k_ = _zone_key(z.nid, z.zid)
        present = present_cnt.pop(k_, 0)
        managed = managed_cnt.pop(k_, 0)
        name = f"node {z.nid} {z.name}"
        if not 0 <= z.free_pages <= z.managed_pages <= z.present_pages <= z.spanned_pages:
            _fail("zone counters out of order: expected free <= managed <= present <= spanned",
                  zone=name, free=z.free_pages, managed=z.managed_pages,
                  present=z.present_pages, spanned=z.spanned_pages)
        if z.present_pages != present:
            _fail("zone present_pages disagrees with the online pages of the zone",
                  zone=name, present_pages=z.present_pages, pages=present)
        if z.managed_pages != managed:
            _fail("zone managed_pages disagrees with its online pages that are neither "
                  "reserved nor memmap", zone=name, managed_pages=z.managed_pages, pages=managed)
        total += managed
        if present:
            lo, hi = zone_lo[k_], zone_hi[k_]
            if lo < z.zone_start_pfn or hi > z.zone_end_pfn:
                _fail("zone span does not cover the zone's online pages", zone=name,
                      start_pfn=z.zone_start_pfn, end_pfn=z.zone_end_pfn,
                      pages_start_pfn=lo, pages_end_pfn=hi)
        # shrink_zone_span() moves an edge to online memory of the zone: both ends are
        # online pages of the zone (or the zone is empty and spans nothing)
        if z.spanned_pages:
            for pfn in (z.zone_start_pfn, z.zone_end_pfn - 1):
                if not (0 <= pfn < m.max_pfn) or not online_sec[pfn // pps] or \
                        int(mm["flags"][pfn]) >> 16 != k_:
                    _fail("zone span ends outside the zone's online memory "
                          "(shrink_zone_span())", zone=name, pfn=pfn,
                          start_pfn=z.zone_start_pfn, end_pfn=z.zone_end_pfn)
        elif present:
            _fail("zone has online pages but spans nothing", zone=name, present=present)
        # pagesets: a populated zone has its own (setup_zone_pageset() at its first
        # online), outside an offline they hold the zone's last computed limits
        # (zone_pcp_enable() on every path), the running CPU's lists (the FreeArea) have
        # the same, and a zone on boot_pageset lists no page.
        # Exception: a fresh pageset keeps per_cpu_pages_init()'s (0, 0, 1) while the
        # limits stay what they were for the empty zone, which needs batch 1 (a zone
        # under 12288 managed pages).
        pcp = z.per_cpu_pageset
        if z.populated and pcp is m.boot_pageset:
            _fail("populated zone still on boot_pageset (setup_zone_pageset() missed)",
                  zone=name)
        limits = (z.pageset_high_min, z.pageset_high_max, z.pageset_batch)
        if z.populated and (pcp.high_min, pcp.high_max, pcp.batch) != limits and not (
                (pcp.high_min, pcp.high_max, pcp.batch) == (0, 0, 1) and limits[2] == 1):
            _fail("zone pagesets hold neither the zone's limits nor per_cpu_pages_init()'s "
                  "(zone_pcp_disable() without zone_pcp_enable()?)", zone=name,
                  pcp=(pcp.high_min, pcp.high_max, pcp.batch), limits=limits)
        st = z.free_area.pcp_state()
        if pcp is not m.boot_pageset and (st[2], st[3], st[4]) != (pcp.high_min, pcp.high_max,
                                                                  pcp.batch):
            _fail("the running CPU's pcp limits differ from the zone's pagesets", zone=name,
                  cpu0=(st[2], st[3], st[4]), pagesets=(pcp.high_min, pcp.high_max, pcp.batch))
        if pcp is m.boot_pageset and z.free_area.pcp_count:
            _fail("pages on the per-cpu lists of a zone on boot_pageset", zone=name,
                  count=z.free_area.pcp_count)
    if present_cnt:
        k_ = next(iter(present_cnt))
        _fail("online pages carry a node/zone of no zone", nid=k_ & 0xFF, zone=k_ >> 8)
    if total != m.mem_total_pages:
        _fail("MemTotal disagrees with the managed pages", mem_total=m.mem_total_pages,
              pages=total)
