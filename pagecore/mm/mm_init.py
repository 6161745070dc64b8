"""mm/mm_init.c (with mm/memblock.c and the x86 boot map): the machine at boot.

Modelled: the boot ranges per node and zone (free_area_init()), the boot memmap from
memblock on each section's node, top-down (sparse_init()), the kernel image and the
memblock reservations (x86 keeps the first 1 MiB and loads the kernel at 16 MiB), the
calibrated per-zone reservations and late frees, memblock_free_all() into the buddy in
aligned chunks, the boot memory blocks (memory_dev_init()), then the boot watermarks
(init_per_zone_wmark_min(), hugepage_init()) and what the running kernel holds after
boot. Not modelled: deferred struct page init (DEFERRED_STRUCT_PAGE_INIT), memory
mirroring, kernelcore=/movablecore=.
"""
from __future__ import annotations

import numpy as np

from pagecore.kernels import page as P
from pagecore.arch import ZONE_NAMES, MiB
from pagecore.drivers.base import memory
from pagecore.errors import ConfigError
from pagecore.mm import huge_memory, memory_hotplug, mmzone, page_alloc, sparse_vmemmap
from pagecore.mm.mmzone import SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_IS_ONLINE, SECTION_MARKED_PRESENT
from pagecore.mm.page_owner import OWNER_BOOT
from pagecore.util import runs

#: The zones boot memory can be in (ZONE_MOVABLE only with kernelcore=/movable_node).
BOOT_ZONES = ("DMA", "DMA32", "Normal")


def zone_of_kernel(m, pfn):
    """The kernel zone (DMA/DMA32/Normal) a pfn falls in by address (zone limits)."""
    addr = pfn << m.arch.page_shift
    dma, dma32 = m.arch.zone_limits
    if dma and addr < dma:
        return P.ZONE_DMA
    if dma32 and addr < dma32:
        return P.ZONE_DMA32
    return P.ZONE_NORMAL


def mm_core_init(m, cfg):
    """Boot-time memory init: memblock, sparse_init(), free_area_init(), memblock_free_all().

    Boot memmaps come from memblock on their node (top-down), are present but never
    managed (PG_reserved); so is `kernel_reserved` (kernel image, memblock allocations).
    Every boot pageblock starts MIGRATE_MOVABLE (memmap_init_range()).
    """
    a = m.arch
    pps = a.pages_per_section
    seen = []
    for nid, nc in enumerate(cfg.nodes):
        for start, size in nc.boot:
            s, e = m.pfn(start), m.pfn(start + size)
            if start % a.page_size or size % a.page_size or size <= 0:
                raise ConfigError(f"node {nid} boot range {start:#x}+{size:#x} is not whole pages")
            if e > m.max_pfn:
                raise ConfigError(f"node {nid} boot range ends at {start + size:#x}, beyond the "
                                  f"{cfg.phys_bits}-bit physical address space")
            # Ranges of one node may share a section (x86: [4K, 636K) and [1M, ...)
            # in section 0, as the e820 map gives them); a section has one node.
            shared = [n for os_, oe, n in seen
                      if os_ // pps <= (e - 1) // pps and s // pps <= (oe - 1) // pps]
            if any(n != nid for n in shared):
                raise ConfigError(f"node {nid} boot range {start:#x} shares a section with "
                                  "another node's range (a section belongs to one node)")
            for os_, oe, _ in seen:
                if s < oe and os_ < e:
                    raise ConfigError(f"boot range {start:#x}+{size:#x} overlaps another")
            seen.append((s, e, nid))
            sec = np.arange(s // pps, -(-e // pps))
            m.sections[sec] = (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP |
                                  SECTION_IS_ONLINE | SECTION_IS_EARLY)
            m.section_nid[sec] = nid
            for z, zs, ze in split_by_zone(m, s, e):
                zone = m.zone(nid, z)
                zone.grow(zs, ze)
                zone.boot_span = (zone.zone_start_pfn, zone.zone_end_pfn)
                zone.present_pages += ze - zs
                zone.present_early_pages += ze - zs
                mm = m.mem_map[zs:ze]
                mm["flags"] = (nid << P.NODES_PGSHIFT) | (z << P.ZONES_PGSHIFT) | P.PG_reserved
                mm["refcount"] = 1
                pb = a.pageblock_order
                m.pageblock_flags[zs >> pb:-(-ze >> pb)] = P.MIGRATE_MOVABLE
    # Boot memmap: memblock, per present section, on the section's node, top-down.
    reserved = np.zeros(0, dtype=np.int64)
    for nid, nc in enumerate(cfg.nodes):
        secs = np.nonzero((m.section_nid == nid) & (m.sections > 0))[0]
        top = max((m.pfn(s + n) for s, n in nc.boot), default=0)
        for sec in secs:
            for g in sparse_vmemmap.granules_of_section(m, int(sec)):
                if g in m.vmemmap_granules:
                    continue
                gp = m.arch.vmemmap_granule_pages
                top -= gp
                m.vmemmap_granules[g] = ("memblock", top, 0, nid)
                reserved = np.append(reserved, np.arange(top, top + gp))
            m.nr_memmap_boot_pages += a.memmap_pages(pps)
            for t in sparse_vmemmap.tables_of_section(m, int(sec)):
                m.vmemmap_tables.setdefault(t, -1)
    # kernel image and other memblock reservations, from the start of node 0's RAM
    s0 = m.pfn(cfg.nodes[0].boot[0][0]) if cfg.nodes[0].boot else 0
    nres = m.pfn(cfg.kernel_reserved)
    low = []
    if m.arch.name == "x86_64":
        # x86 reserves all of the first 1 MiB (setup_arch(): "Always reserve the first
        # 1M of RAM", v5.13+; reserve_real_mode() before) and loads the kernel at
        # CONFIG_PHYSICAL_START = 16 MiB. Both are physical addresses, not offsets
        # into the first range (which starts at 4 KiB on PC firmware: pfn 0 is BIOS).
        low = [np.arange(0, m.pfn(1 * MiB))]
        s0 = max(s0, m.pfn(16 * MiB))
    fixed = np.unique(np.concatenate([reserved, np.arange(s0, s0 + nres)] + low))
    # Calibrated per-zone reservations, then the pages freed after the boot
    # watermarks (NodeConfig), each top-down in its zone like memblock_alloc().
    extra, late = [], []
    taken = fixed
    for key, out in (("reserved", extra), ("late_free", late)):
        for nid, nc in enumerate(cfg.nodes):
            for zname, n in zone_table(m, nid, nc, key).items():
                got = memblock_alloc_top(m, nid, zname, n, taken, key)
                out.append(got)
                taken = np.union1d(taken, got)
    late = np.unique(np.concatenate(late)) if late else np.zeros(0, dtype=np.int64)
    m.boot_reserved_pfns = taken
    m.boot_holes = find_boot_holes(m, cfg)
    # memblock_free_all(): everything else goes to the buddy, in aligned chunks.
    res_mask_ranges = m.boot_reserved_pfns
    for nid, nc in enumerate(cfg.nodes):
        for start, size in nc.boot:
            for z, zs, ze in split_by_zone(m, m.pfn(start), m.pfn(start + size)):
                zone = m.zone(nid, z)
                r = res_mask_ranges[(res_mask_ranges >= zs) & (res_mask_ranges < ze)]
                free = np.ones(ze - zs, dtype=bool)
                free[r - zs] = False
                zone.managed_pages += int(free.sum())
                for fs, fe in runs(free):
                    page_alloc.free_pages_core(m, zone, zs + fs, zs + fe)
    # Boot memory blocks exist and are online (memory_dev_init()).
    for nid, nc in enumerate(cfg.nodes):
        for start, size in nc.boot:
            s, e = m.pfn(start), m.pfn(start + size)
            for b in range(s // m.block_pages, -(-e // m.block_pages)):
                row = m.blocks[b]
                row["state"], row["nid"], row["boot"] = memory.MEM_ONLINE, nid, True
                row["online_type"] = memory_hotplug.MMOP_ONLINE
                zones = set()
                for s2, e2 in nc.boot:          # every range of the node in the block
                    bs = max(m.pfn(s2), b * m.block_pages)
                    be = min(m.pfn(s2 + e2), (b + 1) * m.block_pages)
                    if bs < be:
                        zones |= {z for z, _, _ in split_by_zone(m, bs, be)}
                row["zone"] = zones.pop() if len(zones) == 1 else -1
    for nid, nc in enumerate(cfg.nodes):
        if nc.boot and not sum(z.managed_pages for z in m.nodes[nid].zones):
            raise ConfigError(
                f"node {nid}: its boot memory leaves no page to the buddy allocator after "
                f"the memmap (struct_page_size={cfg.struct_page_size}) and the memblock "
                f"reservations (kernel_reserved={cfg.kernel_reserved:#x}); "
                "memblock_free_all() would free nothing")
    # postcore_initcall(init_per_zone_wmark_min), then hugepage_init()
    # (subsys_initcall) starting khugepaged, which raises min_free_kbytes.
    m.user_min_free_kbytes = None
    m.khugepaged_running = False
    page_alloc.setup_per_cpu_pageset(m)         # mm_core_init(), before the initcalls
    page_alloc.init_per_zone_wmark_min(m)
    huge_memory.hugepage_init(m)
    # free_initrd_mem(), free_initmem(), ...: managed again, watermarks unchanged.
    if len(late):
        mask = np.zeros(int(late[-1]) - int(late[0]) + 1, dtype=bool)
        mask[late - late[0]] = True
        for fs, fe in runs(mask):
            a0, a1 = int(late[0]) + fs, int(late[0]) + fe
            for z, zs, ze in split_by_zone(m, a0, a1):
                zone = m.zone(mmzone.page_to_nid(m, zs), z)
                zone.managed_pages += ze - zs
                page_alloc.free_pages_core(m, zone, zs, ze)
        m.boot_reserved_pfns = np.setdiff1d(m.boot_reserved_pfns, late)
    if cfg.sysctl_read_lowmem_reserve_ratio:
        page_alloc.setup_per_zone_lowmem_reserve(m)
    if cfg.min_free_kbytes is not None:
        # A write to /proc/sys/vm/min_free_kbytes after boot:
        # min_free_kbytes_sysctl_handler() sets user_min_free_kbytes and the
        # watermarks (not lowmem_reserve).
        m.user_min_free_kbytes = m.min_free_kbytes = cfg.min_free_kbytes
        page_alloc.setup_per_zone_wmarks(m)
    # What the running kernel holds after boot (slab, page cache, ...).
    # spread over the nodes that have memory: a memoryless node holds none of it
    with_mem = [nid for nid, nc in enumerate(cfg.nodes) if nc.boot]
    for nid in with_mem:
        share = 1 / len(with_mem)
        for gfp, nbytes in (("kernel", cfg.boot_used_unmovable), ("movable", cfg.boot_used_movable)):
            n = int(m.pfn(int(nbytes * share)))
            if n:
                got = page_alloc.__alloc_pages(m, nid, 0, gfp, n, OWNER_BOOT, strict_node=True)
                if len(got) < n:
                    raise ConfigError(f"boot_used_{gfp}={nbytes:#x} does not fit in node {nid}'s "
                                      "free memory above the min watermark")
    for nid, nc in enumerate(cfg.nodes):
        for zname, n in zone_table(m, nid, nc, "used").items():
            zid = ZONE_NAMES.index(zname)
            got = page_alloc.__alloc_pages(m, nid, 0, "kernel", n, OWNER_BOOT, strict_node=True,
                                    exclude=lambda z, zid=zid: z.zid != zid)
            if len(got) < n:
                raise ConfigError(f"node {nid} used {zname}={n} pages: the zone has only "
                                  f"{len(got)} free pages above its min watermark")
    # The boot state stands for what a running kernel holds, not for its traffic: what
    # its allocations left on the running CPU's lists goes back to the buddy, so a
    # machine starts with empty lists and exactly `used` pages fewer free (calibrate
    # counts a recorded kernel's own pcp pages in its boot_used).
    page_alloc.drain_all_pages(m)


def zone_table(m, nid, nc, key):
    """NodeConfig.<key> checked: boot zone names of this arch -> pages >= 0."""
    tab = getattr(nc, key) or {}
    if not isinstance(tab, dict):
        raise ConfigError(f"node {nid} {key}: expected a table of zone name -> pages, got {tab!r}")
    out = {}
    for zname, n in tab.items():
        if zname not in BOOT_ZONES:
            raise ConfigError(f"node {nid} {key}: unknown zone {zname!r}; boot memory is in "
                              f"{', '.join(BOOT_ZONES)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"node {nid} {key}.{zname}={n!r}: expected a page count >= 0")
        if n:
            out[zname] = int(n)
    return out


def memblock_alloc_top(m, nid, zname, n, taken, key):
    """The `n` highest present pfns of node `nid`'s zone `zname` that `taken` does not
    hold (memblock allocates top-down)."""
    zid = ZONE_NAMES.index(zname)
    pieces = sorted(((zs, ze) for s, size in m.config.nodes[nid].boot
                     for z, zs, ze in split_by_zone(m, m.pfn(s), m.pfn(s + size))
                     if z == zid), reverse=True)
    out, need = [], n
    for zs, ze in pieces:
        if not need:
            break
        t = taken[(taken >= zs) & (taken < ze)]
        free = np.setdiff1d(np.arange(zs, ze, dtype=np.int64), t, assume_unique=True)
        got = free[-need:] if need < len(free) else free
        out.append(got)
        need -= len(got)
    if need:
        raise ConfigError(f"node {nid} {key}.{zname}={n} pages: the zone has only {n - need} "
                          "present pages left after the boot memmap and other reservations")
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def find_boot_holes(m, cfg):
    """[start, end) pfn runs inside present boot sections that no boot range covers:
    pages of the section that are not present (no zone, never initialised)."""
    pps = m.arch.pages_per_section
    ranges = sorted((m.pfn(s), m.pfn(s + n)) for nc in cfg.nodes for s, n in nc.boot)
    early = (m.sections & SECTION_IS_EARLY) != 0
    holes = []
    for a, b in runs(early):
        p, end = a * pps, b * pps
        for rs, re_ in ranges:
            if re_ <= p or rs >= end:
                continue
            if rs > p:
                holes.append((p, rs))
            p = max(p, re_)
        if p < end:
            holes.append((p, end))
    return holes


def split_by_zone(m, s, e):
    """Pieces of [s, e) per kernel zone (DMA/DMA32/Normal by the arch's limits)."""
    out, p = [], s
    cuts = sorted({m.pfn(x) for x in m.arch.zone_limits if x})
    while p < e:
        z = zone_of_kernel(m, p)
        q = min([c for c in cuts if c > p] + [e])
        out.append((z, p, q))
        p = q
    return out

