"""mm/memory_hotplug.c: adding, onlining, offlining and removing memory.

Modelled: add_memory() with check_hotplug_memory_range() and a memmap strategy's plan of
arch_add_memory() calls (pagecore/strategies.py: which generation self-hosts the memmap),
online_pages() and offline_pages() (isolation, migration, test_pages_isolated()), zone
selection (zone_for_pfn_range(): contig-zones and auto-movable), shrink_zone_span(),
remove_memory() with each generation's removal rule, offline_and_remove_memory() with
its re-online on failure. Versions: each function says which of v6.1 / v6.12 (and the
seed series, 5.13, 6.6, 6.8 rules through the strategies) it follows. Not modelled:
memory notifiers beyond what the kernel's own allocations show, hugetlb and
ZONE_DEVICE ranges, memory groups other than one static group per add_memory() call.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from pagecore import host_memmap
from pagecore.kernels import page as P
from pagecore.arch import MiB
from pagecore.drivers.base import memory
from pagecore.errors import (BusyError, ConfigError, PagecoreError,
                             RangeError, StateError, pfn_range, raise_for)
from pagecore.mm import migrate, page_alloc, page_isolation, sparse
from pagecore.mm.mmzone import SECTION_IS_ONLINE
from pagecore.strategies import AddUnit, get_strategy
from pagecore.util import equal_runs, int_arg, is_int

# Online types (MMOP_*, include/linux/memory_hotplug.h) and their sysfs spellings.
MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE = range(4)
ONLINE_TYPES = {"offline": MMOP_OFFLINE, "online": MMOP_ONLINE,
                "online_kernel": MMOP_ONLINE_KERNEL, "online_movable": MMOP_ONLINE_MOVABLE}
MMOP_NAMES = {v: k for k, v in ONLINE_TYPES.items()}
#: Host threads for the page init of online_pages(), from this many pages per call on
#: (4 GiB): below it the OpenMP team costs more than it saves, and far more when the
#: other core is busy (one 128 MiB block: 0.03 ms on one thread, ~20 ms on two with the
#: second core loaded, measured here).
ONLINE_THREADS, ONLINE_THREADS_MIN_PAGES = 2, 1 << 20
#: memory_hotplug.online_policy values (v5.15+).
ONLINE_POLICIES = ("contig-zones", "auto-movable")


@dataclass
class AddedRange:
    """One add_memory() call: what it added and how its memmap was provided."""
    range_id: int
    start_pfn: int
    nr_pages: int
    nid: int
    strategy: object
    self_hosted: bool           # some unit had an altmap
    alloc: int = 0              # seed v3: pages of the whole-range vmemmap run


def check_hotplug_memory_range(m, start, size, what):
    """check_hotplug_memory_range(): block-aligned, inside the address space."""
    bs = m.block_size
    start = int_arg(start, f"{what}: start")
    size = int_arg(size, f"{what}: size")
    if size <= 0 or start < 0:
        raise RangeError(f"{what}: empty or negative range start={start:#x} size={size:#x}")
    if start % bs or size % bs:
        raise RangeError(f"{what}: range start={start:#x} size={size:#x} is not aligned to the "
                         f"memory block size {bs:#x} (check_hotplug_memory_range())")
    if (start + size) >> m.arch.page_shift > m.max_pfn:
        raise RangeError(f"{what}: range end {start + size:#x} is beyond the "
                         f"{m.config.phys_bits}-bit physical address space (max_pfn "
                         f"{m.max_pfn:#x})")
    return m.pfn(start), m.pfn(size)


def add_memory(m, nid, start, size, strategy=None, online=None):
    """add_memory(nid, start, size, MHP_MEMMAP_ON_MEMORY per strategy), then optionally
    online every new block ("online", "online_kernel", "online_movable"), as the
    auto-online policy does. Returns the AddedRange."""
    m.check_nid(nid)
    strategy = get_strategy(strategy or m.default_strategy)
    start_pfn, nr_pages = check_hotplug_memory_range(m, start, size, "add_memory")
    # the auto-online policy (memhp_default_state, online_policy): "offline" or None
    # leaves the blocks offline; anything else must be an online type
    if online is not None and not (isinstance(online, str) and online == "offline"):
        online = mhp_online_type_from_str(m, online)
    else:
        online = None
    busy = m.blocks_in(start_pfn, nr_pages)["state"] != 0
    if busy.any():
        b = start_pfn // m.block_pages + int(np.argmax(busy))
        raise RangeError(f"add_memory: {m.fmt_range(start_pfn, nr_pages)} overlaps present memory "
                         f"(memory block {b}); register_memory_resource(): -EEXIST")
    units = check_add_plan(m, strategy, strategy.plan(m, start_pfn, nr_pages),
                             start_pfn, nr_pages)
    kobj = memory.create_memory_block_devices(m, nid, nr_pages // m.block_pages)
    rid = m.next_range_id
    rng = AddedRange(rid, start_pfn, nr_pages, nid, strategy,
                     self_hosted=any(u.altmap_free for u in units))
    done = []          # undo log of (section, granules, tables) for rollback
    saved = page_isolation.save_pageblocks(m)
    try:
        # one batched arch_add_memory() per run of units of one kind
        for _, run in groupby(units, key=lambda u: bool(u.altmap_free)):
            sparse.sparse_add_section(m, nid, list(run), rng, done)
    except PagecoreError:
        sparse.undo_sparse_add_section(m, done)
        page_isolation.restore_pageblocks(m, saved)
        page_alloc.free_pages(m, kobj)
        raise
    m.next_range_id += 1
    m.ranges[rid] = rng
    m.kobj_pfns[rid] = kobj
    # Host side only: back the new struct pages with transparent huge pages where
    # they fill whole 2 MiB of the vmemmap (the range's interior; holes and partial
    # ends stay on base pages, so host memory stays ~16 B per present page). First
    # touch then costs one fault and one kernel clear per 2 MiB instead of 512.
    isz, thp = P.PAGE_DTYPE.itemsize, 2 * MiB
    lo = -(-start_pfn * isz // thp) * thp
    hi = (start_pfn + nr_pages) * isz // thp * thp
    if hi > lo and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            m.vmemmap_mapping.madvise(mmap.MADV_HUGEPAGE, lo, hi - lo)
        except OSError:         # THP not built in: base pages, same results
            pass
    if strategy.seed_v3 and rng.self_hosted:
        # mhp_mark_vmemmap_pages(): one run at the start of the range (seed 4/5).
        nr_sects = nr_pages // m.arch.pages_per_section
        m.kernels.mark_vmemmap_pages(m.mem_map, start_pfn, rng.alloc, nr_sects)
    if online:
        memory.memory_block_online(m, range(start_pfn // m.block_pages,
                                       (start_pfn + nr_pages) // m.block_pages), online)
    return rng


def check_add_plan(m, strategy, units, start_pfn, nr_pages):
    """A strategy's plan() must cut [start_pfn, +nr_pages) into consecutive AddUnits of
    whole memory blocks (arch_add_memory() is called per memory block range,
    add_memory_resource()), each with an altmap of 0..nr_pages pages (vmem_altmap.free,
    at most the unit: mhp_supports_memmap_on_memory()) and 0 <= waste <= altmap."""
    name = getattr(strategy, "name", strategy)
    try:
        units = list(units)
    except TypeError:
        raise ConfigError(f"strategy {name!r}: plan() returned {units!r}, not a list of "
                          "AddUnit") from None
    if not units:
        raise ConfigError(f"strategy {name!r}: plan() returned no AddUnit")
    p, nb = start_pfn, m.block_pages
    for u in units:
        if not isinstance(u, AddUnit):
            raise ConfigError(f"strategy {name!r}: plan() returned {u!r}, not an AddUnit")
        ok_int = all(is_int(x) for x in (u.start_pfn, u.nr_pages, u.waste)) and \
            (u.altmap_free is None or is_int(u.altmap_free))
        if not ok_int:
            raise ConfigError(f"strategy {name!r}: {u!r} has a field that is not an integer")
        if u.start_pfn != p or u.nr_pages <= 0 or u.nr_pages % nb:
            raise ConfigError(f"strategy {name!r}: {u!r} does not continue the plan of "
                              f"{m.fmt_range(start_pfn, nr_pages)} at pfn {p:#x} with whole "
                              f"memory blocks of {nb} pages")
        alt = u.altmap_free or 0
        if not 0 <= alt <= u.nr_pages or not 0 <= u.waste <= alt:
            raise ConfigError(f"strategy {name!r}: {u!r}: expected 0 <= altmap_free <= "
                              "nr_pages and 0 <= waste <= altmap_free")
        p += u.nr_pages
    if p != start_pfn + nr_pages:
        raise ConfigError(f"strategy {name!r}: plan() covers {m.fmt_range(start_pfn, p - start_pfn)}"
                          f", not the whole {m.fmt_range(start_pfn, nr_pages)}")
    return units


def zone_for_pfn_range(m, online_type, nid, start_pfn, nr_pages):
    """zone_for_pfn_range() (mm/memory_hotplug.c): "online" follows
    memory_hotplug.online_policy, "contig-zones" (default_zone_for_pfn()) or
    "auto-movable" (auto_movable_zone_for_pfn())."""
    online_type = mhp_online_type_from_str(m, online_type)
    m.check_nid(nid)
    node = m.nodes[nid]
    if online_type == MMOP_ONLINE_KERNEL:
        return default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    if online_type == MMOP_ONLINE_MOVABLE:
        return node.zones[P.ZONE_MOVABLE]
    if m.config.online_policy == "auto-movable":
        return auto_movable_zone_for_pfn(m, nid, start_pfn, nr_pages)
    k = default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    mov = node.zones[P.ZONE_MOVABLE]
    ik, im = k.spans(start_pfn, nr_pages), mov.spans(start_pfn, nr_pages)
    if ik != im:
        return k if ik else mov
    return mov if m.config.movable_node else k


def auto_movable_zone_for_pfn(m, nid, start_pfn, nr_pages):
    """auto_movable_zone_for_pfn() (mm/memory_hotplug.c, v5.15+, the same in v6.1 and
    v6.12). The add_memory() call is the block's static memory group, as ACPI
    (acpi_memory_enable_device()) and dax/kmem register one: anything of it online
    !MOVABLE keeps the rest !MOVABLE; else MOVABLE if all of the group's remaining
    pages could go MOVABLE now and stay within auto_movable_ratio percent of the
    early kernel memory, machine-wide and, with auto_movable_numa_aware, on the
    node. Dynamic groups (virtio-mem units) are treated as static ones too."""
    cfg = m.config
    kernel_zone = default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages)
    if not cfg.auto_movable_ratio:
        return kernel_zone
    rng, nb = m.range_at(start_pfn), m.block_pages
    if rng is not None:
        bl = m.blocks[rng.start_pfn // nb:(rng.start_pfn + rng.nr_pages) // nb]
        on = bl["state"] == memory.MEM_ONLINE
        if (on & (bl["zone"] != P.ZONE_MOVABLE)).any():
            return kernel_zone
        need = rng.nr_pages - int((on & (bl["zone"] == P.ZONE_MOVABLE)).sum()) * nb
    else:
        need = nr_pages
    if not auto_movable_can_online_movable(m, None, need):
        return kernel_zone
    if cfg.auto_movable_numa_aware and not auto_movable_can_online_movable(m, nid, need):
        return kernel_zone
    return m.nodes[nid].zones[P.ZONE_MOVABLE]


def auto_movable_can_online_movable(m, nid, nr_pages):
    """auto_movable_can_online_movable(): MOVABLE present pages + nr_pages <=
    ratio% of the kernel zones' present_early_pages (boot memory), over every node
    (nid None) or one."""
    zones = m.zones() if nid is None else m.nodes[nid].zones
    kernel_early = sum(z.present_early_pages for z in zones
                       if z.present_pages and z.zid != P.ZONE_MOVABLE)
    movable = sum(z.present_pages for z in zones
                  if z.present_pages and z.zid == P.ZONE_MOVABLE)
    if kernel_early <= 0:
        return False
    return movable + nr_pages <= m.config.auto_movable_ratio * kernel_early // 100


def mhp_get_default_online_type(m):
    """/sys/devices/system/memory/auto_online_blocks at boot: MachineConfig
    .default_online_type, else the build-time default as Debian configures it:
    v6.1 has CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE unset ("offline"); the 6.12 tree
    has CONFIG_MHP_DEFAULT_ONLINE_TYPE_* (mhp_get_default_online_type()) and Debian
    picks ONLINE_AUTO ("online"). memhp_default_state= on the command line wins."""
    if m.config.default_online_type is not None:
        return m.config.default_online_type
    return "online" if m.kernel >= (6, 12) else "offline"


def default_kernel_zone_for_pfn(m, nid, start_pfn, nr_pages):
    """default_kernel_zone_for_pfn(): the first zone below Normal the range
    intersects, else ZONE_NORMAL."""
    node = m.nodes[nid]
    for z in (P.ZONE_DMA, P.ZONE_DMA32):
        if node.zones[z].spans(start_pfn, nr_pages):
            return node.zones[z]
    return node.zones[P.ZONE_NORMAL]


def mhp_online_type_from_str(m, online_type):
    """mhp_online_type_from_str() (mm/memory_hotplug.c): "online", "online_kernel",
    "online_movable", or the MMOP_ONLINE* value itself (1..3); MMOP_OFFLINE is not a
    way to online."""
    if isinstance(online_type, str):
        if online_type not in ONLINE_TYPES or online_type == "offline":
            raise ConfigError(f"unknown online type {online_type!r}; expected online, "
                              "online_kernel or online_movable")
        return ONLINE_TYPES[online_type]
    if not is_int(online_type) or online_type not in (MMOP_ONLINE, MMOP_ONLINE_KERNEL,
                                                       MMOP_ONLINE_MOVABLE):
        raise ConfigError(f"unknown online type {online_type!r}; expected online, "
                          f"online_kernel, online_movable or their MMOP values "
                          f"{MMOP_ONLINE}..{MMOP_ONLINE_MOVABLE}")
    return int(online_type)


def kernel_allocs_follow(m, zone):
    """Whether onlining into `zone` moves the node's kernel allocations into it: the
    zone has no managed pages yet, is a kernel zone (not ZONE_MOVABLE), becomes the
    node's highest populated kernel zone (the first zone of GFP_KERNEL's zonelist),
    and the node has CPUs (allocations go to the local node)."""
    if not m.config.online_kernel_allocs or zone.zid == P.ZONE_MOVABLE:
        return False
    node = m.nodes[zone.nid]
    if zone.managed_pages or not node.cpus:
        return False
    return all(not z.managed_pages for z in node.zones[zone.zid + 1:P.ZONE_MOVABLE])


def kernel_allocs_after_online(m, zone):
    """The kernel's own unmovable allocations that follow the first block onlined into
    a node's highest kernel zone: GFP_KERNEL now prefers it, so the per-cpu list
    refill (one pcp batch, 63 pages on these guests), slab and page-table pages come
    from it, stealing a MIGRATE_MOVABLE pageblock of that block
    (__rmqueue_fallback(), mm/page_alloc.c). Later unmovable allocations fill that
    pageblock first, so later blocks stay free of them. The recorded Debian 6.1 and
    6.12 guests show 71-99 such pages (free + pcp count below managed) right after the
    first online_kernel block, and that block's offline fails with -EBUSY
    ("unmovable page": PG_table and slab pages) while the Normal blocks onlined after
    it go offline; MachineConfig.online_kernel_allocs is that page count (0: off).
    The pages stay allocated: page tables and slab do not move."""
    n = m.config.online_kernel_allocs
    got = page_alloc.alloc_pages(m, zone.nid, 0, "kernel", count=n,
                           exclude=lambda z: z is not zone)     # a fresh owner tag
    m.online_kernel_alloc_pfns.extend(got.tolist())


def vmemmap_page_flags(m, strategy):
    """Page flags of self-hosted vmemmap pages after mhp_init_memmap_on_memory():
    PG_reserved up to v6.10, PG_vmemmap_self_hosted from v6.0 (66361095129b); v6.11+
    clears PageOffline and leaves them not reserved."""
    k = strategy.kernel
    flags = 0 if k >= (6, 11) else P.PG_reserved
    if k >= (6, 0):
        flags |= P.PG_vmemmap_self_hosted
    return flags


def online_pages(m, zone, bl, ot, strategy):
    nb, a = m.block_pages, m.arch
    if not zone.populated:
        # "If this zone is not populated, then it is not in zonelist": its own pagesets.
        # memory_block_online() counts a block's vmemmap pages present only after
        # online_pages(), so they do not populate the zone here.
        page_alloc.setup_zone_pageset(m, zone)
    starts = bl * nb
    v = m.blocks["nr_vmemmap"][bl].astype(np.int64)
    seed = strategy.seed_v3
    # v5.13+: vmemmap pageblocks are MIGRATE_UNMOVABLE; v3 era: MOVABLE like the rest.
    vm_mt = P.MIGRATE_MOVABLE if seed else P.MIGRATE_UNMOVABLE
    vm_flags = vmemmap_page_flags(m, strategy)

    def online(i, j):               # the ordinary path: every struct page written
        n = j - i
        return m.kernels.online_memory_blocks(
            m.mem_map, m.pageblock_flags, zone.free_area, np.ascontiguousarray(starts[i:j]),
            np.ascontiguousarray(v[i:j]), nb, zone.nid, zone.zid, vm_flags, vm_mt, seed,
            ONLINE_THREADS if nb * n >= ONLINE_THREADS_MIN_PAGES else 1)

    if not host_memmap.online_pages_image_ok(m, zone, strategy, v):
        freed = online(0, len(bl))
    else:
        # Runs of blocks of one vmemmap size, in batch order (the free lists get the
        # chunks in the order the ordinary path gives them): a run's first block is
        # written unless an image of its kind exists, the others map that image.
        freed = 0
        for i, j in equal_runs(v):
            key = (zone.nid, zone.zid, int(v[i]), vm_flags)
            if key not in m.memmap_images.files:
                freed += online(i, i + 1)
                host_memmap.map_block_images(m, key, starts[i + 1:j], image_pfn=int(starts[i]))
                i += 1
            else:
                host_memmap.map_block_images(m, key, starts[i:j])
            if j > i:
                freed += m.kernels.online_image_blocks(
                    m.pageblock_flags, zone.free_area, np.ascontiguousarray(starts[i:j]),
                    np.ascontiguousarray(v[i:j]), nb, vm_mt)
    nv = int(v.sum())
    zone.present_pages += nb * len(bl)
    zone.managed_pages += int(freed)
    assert freed == nb * len(bl) - nv, (freed, nb * len(bl), nv)
    pps = a.pages_per_section
    spb = nb // pps                             # a block is whole sections
    m.sections[((starts // pps)[:, None] + np.arange(spb)).ravel()] |= SECTION_IS_ONLINE
    m.blocks["state"][bl] = memory.MEM_ONLINE
    m.blocks["zone"][bl] = zone.zid
    m.blocks["online_type"][bl] = ot


def offline_pages(m, start_pfn, nr_pages, zone):
    """offline_pages() (mm/memory_hotplug.c) of a range inside one zone: the second
    half of memory_block_offline(), so the range must lie in memory blocks that are
    going offline (offline_memory_block() marks them); a direct call on online
    blocks would leave blocks online with their pages gone."""
    a = m.arch
    pb = a.pageblock_nr_pages
    start_pfn = int_arg(start_pfn, "offline_pages: start_pfn", 0, m.max_pfn)
    nr_pages = int_arg(nr_pages, "offline_pages: nr_pages", 1, m.max_pfn - start_pfn + 1)
    m.own_zone(zone, "offline_pages: zone")
    end = start_pfn + nr_pages
    rows = m.blocks[start_pfn // m.block_pages:-(-end // m.block_pages)]
    if ((rows["state"] != memory.MEM_GOING_OFFLINE) | (rows["zone"] != zone.zid)
            | (rows["nid"] != zone.nid)).any():
        raise StateError(f"offline_pages: {pfn_range(start_pfn, end)} is not in memory blocks "
                         f"of {zone.name} (node {zone.nid}) going offline; offline a block "
                         "with offline_memory_block()")
    if nr_pages <= 0 or start_pfn % pb or end % a.pages_per_section:
        raise RangeError(f"offline_pages: {pfn_range(start_pfn, end)} must start on a pageblock "
                         "and end on a section boundary (-EINVAL)")
    report = {"scanned": 0, "migrated": 0}
    if nr_pages == 0:
        return report
    # "Disable pcplists so that page isolation cannot race with freeing"
    page_alloc.zone_pcp_disable(m, zone)
    try:                        # zone_pcp_enable() on success and on every failure path
        saved = page_isolation.save_pageblocks(m)
        isolated = page_isolation.start_isolate_page_range(m, start_pfn, end, zone)
        migrated = []
        try:
            migrate.do_migrate_range(m, start_pfn, end, zone, report, migrated)
            rc, pfn = m.kernels.test_pages_isolated(m.mem_map, m.pageblock_flags, start_pfn,
                                                       end, a.pageblock_order)
            raise_for(rc, f"offline_pages {pfn_range(start_pfn, end)} failed: page at pfn "
                      f"{pfn:#x} is not free and cannot be migrated (test_pages_isolated(): "
                      "-EBUSY; reason: unmovable page)", pfn=pfn, reason="unmovable page")
        except PagecoreError:
            migrate.undo_migrate_folios(m, migrated)
            page_isolation.undo_isolate_page_range(m, isolated)
            page_isolation.restore_pageblocks(m, saved)
            raise
        taken, already = m.kernels.offline_isolated_pages(m.mem_map, zone.free_area,
                                                          start_pfn, end)
        for p in isolated:
            m.pageblock_flags[p >> a.pageblock_order] &= ~np.uint8(P.PB_migrate_isolate)
    finally:
        page_alloc.zone_pcp_enable(m, zone)
    zone.managed_pages -= nr_pages - already
    zone.present_pages -= nr_pages
    if not zone.populated:
        # before memory_block_offline() takes the vmemmap pages out of present: a zone
        # that still holds a memmap_on_memory block's vmemmap keeps its pagesets
        page_alloc.zone_pcp_reset(m, zone)
    report["offlined"] = nr_pages
    return report


def shrink_zone_span(m, zone, start_pfn, end_pfn):
    """shrink_zone_span() + update_pgdat_span() after [start_pfn, end_pfn) left the zone
    (remove_pfn_range_from_zone(), mm/memory_hotplug.c; the same in 6.1 and 6.12): if
    the range starts the
    zone, the new start is the first pfn of the next online subsection of the zone
    (find_smallest_section_pfn(): section online, the page's node and zone are the
    zone's); if it ends the zone, the new end follows the last such subsection
    before it (find_biggest_section_pfn()); a hole in the middle leaves the span.
    Which memory it was (boot, hot-added, a boot block onlined into ZONE_MOVABLE)
    does not matter: only online sections and the zone bits of their pages do."""
    if zone.zone_start_pfn == start_pfn:
        pfn = find_section_pfn(m, zone, end_pfn, zone.zone_end_pfn, smallest=True)
        if pfn is None:
            zone.zone_start_pfn, zone.spanned_pages = 0, 0
        else:
            zone.spanned_pages = zone.zone_end_pfn - pfn
            zone.zone_start_pfn = pfn
    elif zone.zone_end_pfn == end_pfn:
        pfn = find_section_pfn(m, zone, zone.zone_start_pfn, start_pfn, smallest=False)
        if pfn is None:
            zone.zone_start_pfn, zone.spanned_pages = 0, 0
        else:
            zone.spanned_pages = pfn - zone.zone_start_pfn + 1


def find_section_pfn(m, zone, lo, hi, smallest):
    """find_smallest_section_pfn() / find_biggest_section_pfn() over [lo, hi): the
    first pfn (smallest) or the last pfn (biggest) of a PAGES_PER_SUBSECTION step that
    is online (pfn_to_online_page(): its section is online) and whose page belongs to
    `zone`; None when there is none (the kernel's 0)."""
    if hi <= lo:
        return None
    sub = m.arch.pages_per_subsection
    pfns = np.arange(lo, hi, sub, dtype=np.int64) if smallest else \
        np.arange(hi - 1, lo - 1, -sub, dtype=np.int64)
    bits = (zone.nid << P.NODES_PGSHIFT) | (zone.zid << P.ZONES_PGSHIFT)
    # in the kernel's order, a stretch at a time, stopping at the first match as its
    # loop does: only the pages up to it are read (a memmap image below stays unread)
    step = 4096
    for i in range(0, len(pfns), step):
        part = pfns[i:i + step]
        part = part[(m.sections[part // m.arch.pages_per_section] & SECTION_IS_ONLINE) != 0]
        hit = np.flatnonzero((m.mem_map["flags"][part] & ~np.uint32(P.FLAGS_MASK)) == bits)
        if len(hit):
            return int(part[hit[0]])
        step = min(step * 2, 1 << 20)
    return None


def remove_memory(m, start, size):
    """remove_memory(start, size) -> try_remove_memory(): every block offline, the
    generation's granularity rule (check_remove_rules()), then arch_remove_memory()'s
    teardown (sparse.sparse_remove_section(): sections, vmemmap leaves and tables, the
    altmaps), the memory block devices and the range's kernel objects
    (remove_memory_block_devices()), and the host memory of the struct pages."""
    start_pfn, nr_pages = check_hotplug_memory_range(m, start, size, "remove_memory")
    blk = m.blocks_in(start_pfn, nr_pages)
    if (blk["state"] == 0).any():
        raise RangeError(f"remove_memory: {m.fmt_range(start_pfn, nr_pages)} is not all present")
    if (blk["state"] != memory.MEM_OFFLINE).any():
        b = start_pfn // m.block_pages + int(np.argmax(blk["state"] != memory.MEM_OFFLINE))
        raise BusyError(f"removing memory fails, because memory {m.fmt_range(start_pfn, nr_pages)} "
                        f"is onlined (memory block {b}): -EBUSY")
    check_remove_rules(m, start_pfn, nr_pages)
    rids = set(np.unique(blk["range_id"]).tolist())
    sparse.sparse_remove_section(m, start_pfn, nr_pages)
    m.blocks_in(start_pfn, nr_pages)[:] = memory.empty_block()
    for rid in rids:
        rng = m.ranges.get(rid)
        if rng is not None and not (m.blocks["range_id"] == rid).any():
            del m.ranges[rid]
            page_alloc.free_pages(m, m.kobj_pfns.pop(rid, np.zeros(0, dtype=np.int64)))
    # the struct pages go away with the sections: release host memory
    host_memmap.release_host_pages(m, start_pfn, start_pfn + nr_pages)
    pb = m.arch.pageblock_order
    m.pageblock_flags[start_pfn >> pb:(start_pfn + nr_pages) >> pb] = 0




def offline_and_remove_memory(m, start, size):
    """offline_and_remove_memory(): offline each block, then remove; on failure,
    re-online what this call offlined, in ascending order, as MMOP_ONLINE_MOVABLE if
    it was in ZONE_MOVABLE and MMOP_ONLINE_KERNEL otherwise (try_offline_memory_block()
    / try_reonline_memory_block(), mm/memory_hotplug.c, 6.1 and 6.12): the kernel records the
    zone, not the online type the block was onlined with, so a block onlined with
    "online" comes back as online_kernel (docs/model.md#where-the-kernel-source-corrected-the-model).

    Like the kernel, a failure after some blocks were offlined does not restore the
    machine exactly: the pages those offlines migrated stay where they went, and the
    re-onlined blocks have fresh free lists and the recorded online type. The error
    raised says so: `.partial` lists (block, online type it came back with) and
    `.migrated` the pages moved. The range and the presence of its blocks are checked
    first, with nothing changed; the removal rules (granularity) are checked where the
    kernel checks them, in try_remove_memory() after the offlines, so a refusal there
    also comes after offlining and re-onlining, as in the kernel.
    """
    start_pfn, nr_pages = check_hotplug_memory_range(m, start, size, "offline_and_remove_memory")
    blocks = range(start_pfn // m.block_pages, (start_pfn + nr_pages) // m.block_pages)
    st = m.blocks["state"][blocks.start:blocks.stop]
    if (st == 0).any():
        raise RangeError(f"offline_and_remove_memory: {m.fmt_range(start_pfn, nr_pages)} "
                         "is not all present")
    done, migrated = [], 0
    try:
        for b in blocks:
            if m.blocks["state"][b] == memory.MEM_ONLINE:
                ot = (MMOP_ONLINE_MOVABLE if m.blocks["zone"][b] == P.ZONE_MOVABLE
                      else MMOP_ONLINE_KERNEL)
                migrated += memory.memory_block_offline(m, b)["migrated"]
                done.append((b, ot))
        remove_memory(m, start, size)
    except PagecoreError as e:
        for b, ot in done:
            memory.memory_block_online(m, [b], ot)
        e.partial = [(b, MMOP_NAMES[ot]) for b, ot in done]
        e.migrated = migrated
        if done:
            e.args = (f"{e.args[0]}; blocks {', '.join(str(b) for b, _ in done)} had been "
                      f"offlined ({migrated} pages migrated) and were re-onlined "
                      "(try_reonline_memory_block())",) + e.args[1:]
        raise


def check_remove_rules(m, start_pfn, nr_pages):
    """The removal granularity of every range [start_pfn, +nr_pages) touches, each by
    its strategy's rule (check_remove())."""
    blk = m.blocks_in(start_pfn, nr_pages)
    rids, first = np.unique(blk["range_id"], return_index=True)
    for rid in rids[np.argsort(first)].tolist():
        if rid >= 0:
            m.ranges[rid].strategy.check_remove(m, start_pfn, nr_pages)

