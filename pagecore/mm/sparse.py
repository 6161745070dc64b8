"""mm/sparse.c (with arch_add_memory() / __add_pages() of arch/x86/mm/init_64.c and
mm/memory_hotplug.c): sections coming and going.

Modelled: sparse_add_section() of every section of a hot-added range (its vmemmap page
tables, then its vmemmap leaves, from the buddy or an altmap, SECTION_USE_VMEMMAP for the
seed v3 range), the unwinding when population fails part-way, and the host side of the
simulation (which runs of sections are present; giving host memory back when sections go).
Not modelled: subsection maps (sections are added whole: memory blocks are whole
sections), ZONE_DEVICE.
"""
from __future__ import annotations

from itertools import repeat

import numpy as np

from pagecore.kernels import page as P
from pagecore.drivers.base import memory
from pagecore.errors import GranularityError, OutOfMemoryError, StateError
from pagecore.mm import page_alloc, sparse_vmemmap
from pagecore.mm.mmzone import (SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_MARKED_PRESENT,
                                SECTION_USE_VMEMMAP)
from pagecore.mm.page_owner import OWNER_VMEMMAP
from pagecore.util import flat_ranges


def sparse_add_section(m, nid, units, rng, done):
    """arch_add_memory() -> __add_pages() -> sparse_add_section() for a run of units
    (one AddUnit, or a list of units of one kind: all with an altmap or all without),
    then create_memory_block_devices() for each unit.

    The sections of the run form one stream of events in the kernel's order: per
    section, its new vmemmap page tables, then its new vmemmap leaves. The stream is
    batched: the geometry comes from numpy
    (sparse_vmemmap.section_vmemmap()), altmap leaves from the bump allocator's
    arithmetic (after the first, aligned, leaf a unit's leaves are consecutive), and
    the bookkeeping (dicts, section words, block rows) in bulk. Buddy leaves and page
    tables (one per 64 GiB on x86) are allocated one alloc_pages() call at a time, in
    stream order, as the kernel does. At the first allocation that falls short (an
    exhausted altmap, a failed buddy allocation), the section-by-section loop takes
    over at that section and repeats it as before, so fallbacks ("buddy-base"),
    errors and the undo log `done` (one entry per section) come out the same.
    """
    if not isinstance(units, (list, tuple)):
        units = [units]
    if len({bool(u.altmap_free) for u in units}) > 1:
        for u in units:
            sparse_add_section(m, nid, u, rng, done)
        return
    a = m.arch
    pps, nb = a.pages_per_section, m.block_pages
    gb = m.arch.vmemmap_granule_bytes
    gp = gb >> a.page_shift
    gorder = gp.bit_length() - 1
    seed = rng.strategy.seed_v3
    granules, tables = m.vmemmap_granules, m.vmemmap_tables

    def fresh(ids, known):
        """The loop's `if x not in known`: first occurrences not yet populated."""
        mask = np.zeros(len(ids), dtype=bool)
        if len(ids):
            mask[np.unique(ids, return_index=True)[1]] = True
            if known:
                mask[mask] = [x not in known for x in ids[mask].tolist()]
        return mask

    while units:
        with_alt = bool(units[0].altmap_free)
        n = len(units)
        ustart = np.array([u.start_pfn for u in units], dtype=np.int64)
        uend = ustart + np.array([u.nr_pages for u in units], dtype=np.int64)
        ufree = np.array([u.altmap_free or 0 for u in units], dtype=np.int64)
        secs, sec_unit = flat_ranges(ustart // pps, uend // pps)
        nsec = len(secs)
        (g_ids, g_sec), (t_ids, t_sec) = sparse_vmemmap.section_vmemmap(a, secs)
        ng = np.flatnonzero(fresh(g_ids, granules))         # new leaves, in stream order
        ng_ids, ng_sec = g_ids[ng], g_sec[ng]
        ng_unit = sec_unit[ng_sec]
        nt = np.flatnonzero(fresh(t_ids, tables))           # new page tables
        nt_ids, nt_sec = t_ids[nt], t_sec[nt]
        ucnt = np.bincount(ng_unit, minlength=n)            # new leaves per unit
        if with_alt:
            # altmap_alloc_block_buf(): the first leaf pads to its natural alignment, the
            # rest follow it; leaf k of a unit fails when (k + 1) * gp + pad > free.
            k = np.arange(len(ng)) - (np.cumsum(ucnt) - ucnt)[ng_unit]
            pad0 = (-ustart) % (gp & -gp)
            g_pfn = ustart[ng_unit] + pad0[ng_unit] + k * gp
            g_fail = (k + 1) * gp + pad0[ng_unit] > ufree[ng_unit]
            g_owner = ustart[ng_unit] // nb
        g_nid = np.full(len(ng), -1, dtype=np.int64)
        stop = nsec              # section index where the one-by-one loop takes over
        gi = 0                   # new leaves populated: a prefix of ng
        new_t = {}               # section index -> the page tables it allocated
        opens = sorted(set(nt_sec.tolist()) | {0}) if nsec else []
        for j, lo in enumerate(opens):
            hi = opens[j + 1] if j + 1 < len(opens) else nsec
            for t in nt_ids[nt_sec == lo].tolist():
                got = page_alloc.__alloc_pages(m, nid, 0, "kernel", 1, OWNER_VMEMMAP)
                if not len(got):
                    stop = lo
                    break
                m.mem_map[got[0]]["page_type"] = P.PGTY_TABLE
                tables[t] = int(got[0])
                m.pagetable_pages += 1
                new_t.setdefault(lo, []).append(t)
            if stop < nsec:
                break
            gj = int(np.searchsorted(ng_sec, hi))
            if with_alt:
                bad = np.flatnonzero(g_fail[gi:gj])
                ok = gi + int(bad[0]) if len(bad) else gj
                vals = zip(repeat("altmap"), g_pfn[gi:ok].tolist(),
                           repeat(gorder), g_owner[gi:ok].tolist())
            else:
                # vmemmap_populate() allocates one leaf at a time; a bulk call takes
                # the same pages (same zonelist, same watermark, same rmqueue order)
                got = page_alloc.__alloc_pages(m, nid, gorder, "kernel", gj - gi, OWNER_VMEMMAP)
                ok = gi + len(got)
                g_nid[gi:ok] = (m.mem_map["flags"][got] >> P.NODES_PGSHIFT) & P.NODES_MASK
                vals = zip(repeat("buddy"), got.tolist(), repeat(gorder),
                           g_nid[gi:ok].tolist())
            granules.update(zip(ng_ids[gi:ok].tolist(), vals))
            gi = ok
            if ok < gj:
                stop = int(ng_sec[ok])
                break
        # sections [0, stop) are complete; `stop` may be part-way (the loop resumes it)
        flag = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
        if seed and with_alt:
            flag |= SECTION_USE_VMEMMAP
        m.sections[secs[:stop]] = flag
        m.section_nid[secs[:stop]] = nid
        m.nr_memmap_pages += a.memmap_pages(pps) * stop
        ns = min(stop + 1, nsec)
        cut = np.searchsorted(ng_sec[:gi], np.arange(ns + 1)).tolist()
        gl = ng_ids[:gi].tolist()
        done.extend((s, gl[cut[i]:cut[i + 1]], new_t.get(i, []))
                    for i, s in enumerate(secs[:ns].tolist()))
        # create_memory_block_devices() for the units whose sections are all complete
        nu = int(sec_unit[stop]) if stop < nsec else n
        if nu:
            alloc = ucnt[:nu] * gp if with_alt else np.zeros(nu, dtype=np.int64)
            v = np.zeros(nu, dtype=np.int64)
            if with_alt:
                v = alloc if seed or rng.strategy.kernel < (6, 6) else ufree[:nu]
                rng.alloc += int(alloc.sum())
            bl, bu = flat_ranges(ustart[:nu] // nb, uend[:nu] // nb)
            off = bl * nb - ustart[bu]
            rows = m.blocks
            rows["state"][bl] = memory.MEM_OFFLINE
            rows["nid"][bl] = nid
            rows["zone"][bl] = -1
            rows["range_id"][bl] = rng.range_id
            # a unit's V pages sit at its start: each block holds its share of them
            rows["nr_vmemmap"][bl] = np.clip(v[bu] - off, 0, nb)
            rows["altmap_alloc"][bl] = np.where(off == 0, alloc[bu], 0)
            rows["waste"][bl] = np.array([u.waste for u in units[:nu]], dtype=np.int64)[bu]
            rows["memmap_pages"][bl] = 0
            rows["memmap_nid"][bl] = -1
            if not with_alt:
                # attribute the buddy pages to the blocks, and the node they came from
                sel = slice(0, int(np.searchsorted(ng_unit, nu)))
                sp = secs[ng_sec[sel]] * pps
                inside = (ustart[ng_unit[sel]] <= sp) & (sp < uend[ng_unit[sel]])
                b = sp[inside] // nb
                np.add.at(rows["memmap_pages"], b, 1 << gorder)
                last_b, last = np.unique(b[::-1], return_index=True)
                rows["memmap_nid"][last_b] = g_nid[sel][inside][::-1][last]
        if stop == nsec:
            return
        # the one-by-one loop, from section `stop` of unit `nu` on
        unit = units[nu]
        alt = None
        if unit.altmap_free:
            alt = sparse_vmemmap.VmemAltmap(base_pfn=unit.start_pfn, end_pfn=unit.start_pfn + unit.nr_pages - 1,
                             free=unit.altmap_free)
            k_done = int(np.count_nonzero(ng_unit[:gi] == nu))
            if k_done:
                alt.alloc, alt.align = k_done * gp, int(pad0[nu])
        resume = True
        for sec in range(int(secs[stop]), (unit.start_pfn + unit.nr_pages) // pps):
            if resume:
                _, new_g, new_tl = done[-1]
                resume = False
            else:
                new_g, new_tl = [], []
                done.append((sec, new_g, new_tl))
            for t in sparse_vmemmap.tables_of_section(m, sec):
                if t not in tables:
                    got = page_alloc.__alloc_pages(m, nid, 0, "kernel", 1, OWNER_VMEMMAP)
                    if not len(got):
                        raise OutOfMemoryError(f"add_memory: no page for a vmemmap page table "
                                               f"(section {sec}): -ENOMEM")
                    m.mem_map[got[0]]["page_type"] = P.PGTY_TABLE
                    tables[t] = int(got[0])
                    m.pagetable_pages += 1
                    new_tl.append(t)
            for g in sparse_vmemmap.granules_of_section(m, sec):
                if g in granules:
                    continue
                granules[g] = sparse_vmemmap.vmemmap_populate(m, nid, alt, sec)
                new_g.append(g)
            m.sections[sec] = flag
            m.section_nid[sec] = nid
            m.nr_memmap_pages += a.memmap_pages(pps)
        v = 0 if alt is None else (alt.alloc if seed or rng.strategy.kernel < (6, 6) else alt.free)
        rng.alloc += 0 if alt is None else alt.alloc
        for b in range(unit.start_pfn // nb, (unit.start_pfn + unit.nr_pages) // nb):
            row = m.blocks[b]
            row["state"], row["nid"], row["zone"], row["range_id"] = memory.MEM_OFFLINE, nid, -1, rng.range_id
            off = b * nb - unit.start_pfn
            row["nr_vmemmap"] = min(max(v - off, 0), nb)
            row["altmap_alloc"] = 0 if alt is None else (alt.alloc if off == 0 else 0)
            row["waste"] = unit.waste
            row["memmap_pages"] = 0
            row["memmap_nid"] = -1
        if alt is None:
            for sec, new_g, _ in done:
                if unit.start_pfn <= sec * pps < unit.start_pfn + unit.nr_pages:
                    b = sec * pps // nb
                    for g in new_g:
                        kind, pfn, order, gnid = granules[g]
                        m.blocks[b]["memmap_pages"] += sparse_vmemmap.granule_buddy_pages(kind, order, gp)
                        m.blocks[b]["memmap_nid"] = gnid
        units = units[nu + 1:]


def undo_sparse_add_section(m, done):
    for sec, new_g, new_t in reversed(done):
        for g in reversed(new_g):
            sparse_vmemmap.vmemmap_free(m, g)
        for t in reversed(new_t):
            sparse_vmemmap.free_pagetable(m, t)
        if m.sections[sec] & SECTION_MARKED_PRESENT and not m.sections[sec] & SECTION_IS_EARLY:
            m.nr_memmap_pages -= m.arch.memmap_pages(m.arch.pages_per_section)
        m.sections[sec] = 0
        m.section_nid[sec] = -1
    if done:
        pps = m.arch.pages_per_section
        lo, hi = done[0][0] * pps, (done[-1][0] + 1) * pps
        blk = m.blocks[lo // m.block_pages:-(-hi // m.block_pages)]
        blk[blk["state"] == memory.MEM_OFFLINE] = memory.empty_block()


def sparse_remove_section(m, start_pfn, nr_pages):
    """arch_remove_memory() -> __remove_pages() -> sparse_remove_section() of every section
    of [start_pfn, +nr_pages), batched: section_deactivate() clears the section words,
    then the vmemmap leaves and page tables no present section uses any more are found
    with numpy (section_vmemmap(); granule_in_use() / table_in_use() vectorised) and torn
    down in the kernel's loop order (per section: leaves, then tables), their buddy pages
    in one free_pages_ok() call, altmap pages by vmem_altmap_free().

    The teardown is planned with the sections cleared and checked before anything is
    freed: if it would leave an altmap owing pages (remove_memory_blocks_and_altmaps():
    WARN "Altmap not fully unmapped") or free a page that is not an allocated block, the
    words come back and the call fails with the machine as it was."""
    a = m.arch
    pps, sps = a.pages_per_section, a.struct_page_size
    gb = m.arch.vmemmap_granule_bytes
    granules, tables = m.vmemmap_granules, m.vmemmap_tables
    s0, s1 = start_pfn // pps, (start_pfn + nr_pages) // pps
    saved_secs = (m.sections[s0:s1].copy(), m.section_nid[s0:s1].copy(),
                  m.nr_memmap_pages, m.nr_memmap_boot_pages)
    # section_deactivate(): memmap_pages_add(-...), clear the word
    early = (m.sections[s0:s1] & SECTION_IS_EARLY) != 0
    m.nr_memmap_pages -= a.memmap_pages(pps) * int((~early).sum())
    m.nr_memmap_boot_pages -= a.memmap_pages(pps) * int(early.sum())
    m.sections[s0:s1] = 0
    m.section_nid[s0:s1] = -1

    def refuse(cls, msg):
        m.sections[s0:s1], m.section_nid[s0:s1] = saved_secs[0], saved_secs[1]
        m.nr_memmap_pages, m.nr_memmap_boot_pages = saved_secs[2], saved_secs[3]
        raise cls(msg)

    def present_in(first, last):
        """Any present section in [first[i], last[i]] (cumulative counts)."""
        if not len(first):
            return np.zeros(0, dtype=bool)
        lo, hi = int(first.min()), int(last.max()) + 1
        cs = np.concatenate(([0], np.cumsum((m.sections[lo:hi] & SECTION_MARKED_PRESENT) != 0)))
        return cs[last + 1 - lo] > cs[first - lo]

    def first_known(ids, known):
        mask = np.zeros(len(ids), dtype=bool)
        if len(ids) and known:
            mask[np.unique(ids, return_index=True)[1]] = True
            mask[mask] = [x in known for x in ids[mask].tolist()]
        return mask

    (g_ids, g_sec), (t_ids, t_sec) = sparse_vmemmap.section_vmemmap(
        a, np.arange(s0, s1, dtype=np.int64))
    pud_shift = a.pmd_shift + (a.page_shift - 3)
    # leaves: populated, and no present section left in the memmap they map
    gm = first_known(g_ids, granules)
    gm[gm] = ~present_in(g_ids[gm] * gb // sps // pps, ((g_ids[gm] + 1) * gb - 1) // sps // pps)
    # tables: populated, and no leaf in their VA that is populated and in use
    tm = first_known(t_ids, tables)
    pmd_t = t_ids < sparse_vmemmap.PTE_TABLE_TAG
    tva0 = np.where(pmd_t, t_ids << pud_shift, (t_ids - sparse_vmemmap.PTE_TABLE_TAG) << a.pmd_shift)
    tva1 = np.where(pmd_t, (t_ids + 1) << pud_shift, (t_ids - sparse_vmemmap.PTE_TABLE_TAG + 1) << a.pmd_shift)
    glo, ghi = -(-tva0 // gb), -(-tva1 // gb)          # leaves g with va0 <= g*gb < va1
    maybe = tm & (ghi > glo)
    maybe[maybe] = present_in(glo[maybe] * gb // sps // pps, (ghi[maybe] * gb - 1) // sps // pps)
    for i in np.flatnonzero(maybe).tolist():          # rare: tables shared with a neighbour
        tm[i] = not any(sparse_vmemmap.granule_in_use(m, g) for g in range(int(glo[i]), int(ghi[i]))
                        if g in granules)
    # the teardown, in the loop's order
    order = np.lexsort((np.r_[np.flatnonzero(gm), np.flatnonzero(tm)],
                        np.r_[np.zeros(int(gm.sum()), dtype=np.int64), np.ones(int(tm.sum()), dtype=np.int64)],
                        np.r_[g_sec[gm], t_sec[tm]]))
    events = [("g", g) for g in g_ids[gm].tolist()] + [("t", t) for t in t_ids[tm].tolist()]
    events = [events[i] for i in order.tolist()]
    pfns, tpfns, alt_owner, alt_pages = [], [], [], []
    for kind, x in events:
        if kind == "t":
            pfn = tables[x]
            if pfn >= 0:
                pfns.append(pfn)
                tpfns.append(pfn)
            continue
        gkind, pfn, gorder, owner = granules[x]
        if gkind == "altmap":
            alt_owner.append(owner)
            alt_pages.append(1 << gorder)
        elif gkind == "buddy":
            pfns.append(pfn)
        elif gkind == "buddy-base":
            pfns.extend(pfn)
    pfns = np.asarray(pfns, dtype=np.int64)
    mm = m.mem_map[pfns]
    if ((mm["refcount"] == 0) | ((mm["flags"] & P.PG_tail) != 0)).any() or \
            len(np.unique(pfns)) != len(pfns):
        refuse(StateError, f"remove_memory: {m.fmt_range(start_pfn, nr_pages)}: a vmemmap "
               "page or page table to free is not an allocated block (corrupt memmap "
               "bookkeeping; Machine.check() names it)")
    alt_owner = np.asarray(alt_owner, dtype=np.int64)
    alt_pages = np.asarray(alt_pages, dtype=np.int64)
    b0, b1 = start_pfn // m.block_pages, (start_pfn + nr_pages) // m.block_pages
    owed = m.blocks["altmap_alloc"].astype(np.int64)
    outside = (alt_owner < b0) | (alt_owner >= b1)
    left = owed[b0:b1] - np.bincount(alt_owner[~outside] - b0, weights=alt_pages[~outside],
                                     minlength=b1 - b0).astype(np.int64)
    if outside.any() or left.any():
        # remove_memory_blocks_and_altmaps(): WARN "Altmap not fully unmapped"
        refuse(GranularityError,
               f"remove_memory: {m.fmt_range(start_pfn, nr_pages)} would leave an altmap "
               f"not fully unmapped ({int(left.sum())} pages still owed, "
               f"{int(alt_pages[outside].sum())} owed to blocks outside the range): the "
               "removal must cover whole self-hosted memmaps")
    for kind, x in events:
        (tables if kind == "t" else granules).pop(x)
    np.subtract.at(m.blocks["altmap_alloc"], alt_owner, alt_pages)   # vmem_altmap_free()
    m.mem_map["page_type"][np.asarray(tpfns, dtype=np.int64)] = P.PGTY_NONE
    m.pagetable_pages -= len(tpfns)
    page_alloc.free_pages_ok(m, pfns)
