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

import mmap
from itertools import repeat

import numpy as np

from pagecore.kernels import page as P
from pagecore.drivers.base import memory
from pagecore.errors import OutOfMemoryError
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
                got = page_alloc.get_page_from_freelist(m, nid, 0, "kernel", 1, OWNER_VMEMMAP)
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
                got = page_alloc.get_page_from_freelist(m, nid, gorder, "kernel", gj - gi, OWNER_VMEMMAP)
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
                    got = page_alloc.get_page_from_freelist(m, nid, 0, "kernel", 1, OWNER_VMEMMAP)
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


def release_host_pages(m, s, e):
    isz = P.PAGE_DTYPE.itemsize
    off, ln = s * isz, (e - s) * isz
    pg = mmap.PAGESIZE
    lo, hi = -(-off // pg) * pg, (off + ln) // pg * pg
    if hi > lo:
        m.vmemmap_mapping.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    m.mem_map[s:s + (lo - off) // isz] = 0
    m.mem_map[(hi // isz):e] = 0

