"""mm/page_alloc.c: the buddy allocator's entry points, and the watermarks.

Modelled: alloc_pages_node() over the zonelist with __zone_watermark_ok()'s min + lowmem
reserve test (no reclaim, no compaction on the allocation path), the frees with
free_pages_prepare()'s "Bad page state" checks, __free_pages_core() of boot and
hot-added memory, init_per_zone_wmark_min() with calculate_min_free_kbytes(),
__setup_per_zone_wmarks() and setup_per_zone_lowmem_reserve(), each as v6.1 and v6.12
have them, and the per-cpu pageset limits they update (zone_batchsize(),
zone_highsize(), zone_pcp_update(), zone_pcp_disable()/enable()/reset(); the high_min /
high_max pair of v6.7+), and the pages on the per-cpu lists of the CPU pagecore runs
on (RUNNING_CPU): rmqueue_pcplist() with rmqueue_bulk() refills, free_unref_page() with
free_pcppages_bulk(), both versions' batch and high rules, the drains of offline,
alloc_contig_range() and the allocator's slow path. The free lists and the pcp lists are
a FreeArea (pagecore/kernels/buddy.pyx); the vmstat worker's decay_pcp_high() and
remote drain_zone_pages() run in pagecore/mm/vmstat.py when asked (no clock). Not
modelled: the other CPUs' lists (empty), highatomic reserves, CMA, watermark boosting,
kswapd.
"""
from __future__ import annotations

import math

import numpy as np

from pagecore.kernels import page as P
from pagecore.errors import ConfigError, RangeError, StateError
from pagecore.mm import khugepaged, page_owner, vmstat
from pagecore.mm.mmzone import (PCP_HIGH_AUTOTUNE_SINCE, RUNNING_CPU, SECTION_MARKED_PRESENT,
                                PerCpuPages, num_online_cpus)
from pagecore.mm.page_owner import OWNER_VMEMMAP, Allocation
from pagecore.util import first_duplicate, int_arg, int_array

# as the kernel's vmstat counters do (docs/model.md#meminfo).
PG_swapbacked = 1 << 8      # anonymous memory (PG_swapbacked): NR_ANON_MAPPED, never "available"
PG_slab = 1 << 9            # a slab page (the kernel's PGTY_slab page type)
PG_reclaimable = 1 << 10    # of a SLAB_RECLAIM_ACCOUNT cache: NR_SLAB_RECLAIMABLE_B

#: What an allocation is, as a workload names it -> (default gfp, accounting flags).
#: The gfp decides zones and migratetype (GFP below); the flags decide the meminfo field.
KINDS = {
    "anon": ("movable", PG_swapbacked),              # AnonPages
    "pagecache": ("movable", 0),                     # Cached (file LRU)
    "slab": ("reclaimable", PG_slab | PG_reclaimable),   # SReclaimable (dentries, inodes)
    "slab_unreclaimable": ("kernel", PG_slab),       # SUnreclaim
    "kernel": ("kernel", 0),                         # other kernel pages: only MemFree sees them
}

#: /sys/kernel/mm/transparent_hugepage/enabled values (MachineConfig.thp).

GFP = {  # gfp name -> (highest zone, migratetype, page flags of the allocation)
    "kernel": (P.ZONE_NORMAL, P.MIGRATE_UNMOVABLE, 0),
    "reclaimable": (P.ZONE_NORMAL, P.MIGRATE_RECLAIMABLE, 0),
    "movable": (P.ZONE_MOVABLE, P.MIGRATE_MOVABLE, P.PG_lru),
    "user": (P.ZONE_NORMAL, P.MIGRATE_MOVABLE, P.PG_lru),
}

#: Owner tags (page->private of an allocated page, what page_owner would record as the
#: allocation's stack) that name the machine's own allocations: the vmemmap and its page

#: v6.1 counts ZONE_MOVABLE in lowmem_pages and gives it its proportional share of
#: min; v6.12 leaves it out and clamps its min to [SWAP_CLUSTER_MAX, 128]
#: (__setup_per_zone_wmarks(): both sources read side by side; the change is
#: between the two, first released after v6.1, so pagecore keys it on >= 6.2).
MOVABLE_WMARK_CLAMP_SINCE = (6, 2)
#: sysctl_lowmem_reserve_ratio: DMA, DMA32, Normal, Movable (mm/page_alloc.c;
#: the same in v6.1 and v6.12; HIGHMEM does not exist on 64-bit).
LOWMEM_RESERVE_RATIO = (256, 256, 32, 0)


def free_pages_core(m, zone, s, e):
    """__free_pages_core() over [s, e): every page back to `zone`'s buddy as a plain free
    page (page flags but the node and zone bits, type, order, refcount and owner cleared),
    in the largest naturally aligned chunks. The one rule for giving a range to the buddy:
    memblock_free_all() and the late frees at boot, and compaction's
    free_contig_range()."""
    if e <= s:
        return
    mm = m.mem_map[s:e]
    mm["flags"] &= ~np.uint32(P.FLAGS_MASK)
    mm["page_type"] = P.PGTY_NONE
    mm["order"] = 0
    mm["refcount"] = 0
    mm["private"] = 0
    max_order = m.arch.max_page_order
    fa = zone.free_area
    p = s
    while p < e:
        order = max_order if p == 0 else min(max_order, (p & -p).bit_length() - 1)
        while p + (1 << order) > e:
            order -= 1
        fa.py_free_one_page(p, order)
        p += 1 << order


def zonelist(m, nid, highest_zone):
    """The node's zonelist: nodes by distance (build_zonelists(): ties by id), each
    node's zones from `highest_zone` down, populated ones only."""
    order = sorted(range(len(m.nodes)), key=lambda n: (m.distance[nid][n], n != nid, n))
    return [m.nodes[n].zones[z] for n in order for z in range(highest_zone, -1, -1)
            if m.nodes[n].zones[z].managed_pages]


def alloc_pages(m, nid, order, gfp="kernel", count=1, owner=None, strict_node=False,
                exclude=None, extra_flags=0):
    """alloc_pages_node() `count` times: blocks of `order` for `gfp` ("kernel",
    "reclaimable", "movable", "user"), preferring `nid` and falling back along its
    zonelist. A zone gives pages only while it stays above its min watermark plus the
    lowmem reserve for the request's highest zone (__zone_watermark_ok()).
    `extra_flags` are accounting flags (KINDS: what the pages are for /proc/meminfo)
    set on every page.

    Returns an Allocation: the int64 array of head pfns (fewer than `count` when
    memory runs out) that also names the allocation, through the owner tag its pages
    carry in page->private (a fresh one unless `owner` is given), so that
    free_pages(allocation) still frees these blocks after migration moved them.
    """
    m.check_nid(nid)
    order = int_arg(order, "alloc_pages: order", 0, m.arch.max_page_order + 1,
                     cls=ConfigError)
    count = int_arg(count, "alloc_pages: count", 0)
    if not isinstance(gfp, str) or gfp not in GFP:
        raise ConfigError(f"unknown gfp {gfp!r}; expected one of {', '.join(GFP)}")
    if owner is None:
        owner = m.next_owner
        m.next_owner += 1
    else:
        owner = int_arg(owner, "alloc_pages: owner", 0, 1 << 64)
        if owner == OWNER_VMEMMAP:
            raise ConfigError(f"alloc_pages: owner={owner} is the tag of the machine's "
                              "vmemmap pages (OWNER_VMEMMAP); pick another")
    if not isinstance(strict_node, (bool, np.bool_)):
        raise ConfigError(f"alloc_pages: strict_node={strict_node!r} is not a bool")
    if exclude is not None and not callable(exclude):
        raise ConfigError(f"alloc_pages: exclude={exclude!r} is not callable")
    extra_flags = int_arg(extra_flags, "alloc_pages: extra_flags", 0, 1 << 32)
    got = __alloc_pages(m, nid, order, gfp, count, owner, strict_node, exclude, extra_flags)
    return Allocation(got, owner, order)


def __alloc_pages(m, nid, order, gfp, count, owner, strict_node=False, exclude=None,
                  extra_flags=0):
    """__alloc_pages() `count` times without alloc_pages()' argument checks (the
    machine's own allocations: vmemmap, page tables, migration targets): the fast path
    get_page_from_freelist(), then of the slow path what pagecore models: direct reclaim
    frees nothing, and a call that still fails drains the pcp lists of every zone
    (__alloc_pages_direct_reclaim(): drain_all_pages(NULL), once per call, v6.1 and
    v6.12) and tries again. The calls after a failed one fail the same way unless the
    drain gave pages back, so the bulk loop stops at the first retry that gets none.
    Returns a plain array of head pfns."""
    got = get_page_from_freelist(m, nid, order, gfp, count, owner, strict_node, exclude,
                                 extra_flags)
    while len(got) < count and any(z.free_area.pcp_count for z in m.zones()):
        drain_all_pages(m)
        more = get_page_from_freelist(m, nid, order, gfp, count - len(got), owner,
                                      strict_node, exclude, extra_flags)
        if not len(more):
            break
        got = np.concatenate([got, more])
    return got


def get_page_from_freelist(m, nid, order, gfp, count, owner, strict_node=False, exclude=None,
                 extra_flags=0):
    """get_page_from_freelist() `count` times over the zonelist: each zone gives blocks
    while its watermark test passes (FreeArea.alloc_blocks(), through the running CPU's
    pcp lists for the orders they hold). Returns a plain array of head pfns."""
    highest, mt, flags = GFP[gfp]
    flags |= extra_flags
    out = np.empty(count, dtype=np.int64)
    n = 0
    for zone in zonelist(m, nid, highest):
        if n == count:
            break
        if strict_node and zone.nid != nid:
            continue
        if exclude is not None and exclude(zone):
            continue
        keep = zone.watermark[0] + zone.lowmem_reserve[highest]
        n += zone.free_area.alloc_bulk(order, mt, count - n, flags, owner, keep, out[n:])
        if n == count:
            break
    return out[:n]


def free_pages(m, pfns):
    """__free_pages() of allocated blocks: head pfns (a sequence, an array, one pfn), or
    an Allocation from alloc_pages(), whose blocks are freed wherever migration has
    moved them. Returns the pages freed.

    Every page is checked before any is freed, as free_pages_prepare() would have
    reported it ("Bad page state", mm/page_alloc.c, PAGE_FLAGS_CHECK_AT_FREE): each
    pfn must be the head of an allocated block the caller could own: inside a present
    section, refcount > 0, no page type (not free, not a page table), not PG_reserved
    (boot memmap, kernel image, memblock), not a folio tail, not a self-hosted or
    buddy-backed vmemmap page, and not twice in the call."""
    if isinstance(pfns, Allocation) and pfns.owner is not None:
        heads = page_owner.find_allocation(m, pfns)
        if not len(heads):
            raise StateError(f"free_pages: allocation with owner tag {pfns.owner:#x} has "
                             "no allocated block left (freed already?)")
        pfns = heads
    else:
        pfns = int_array(pfns, "free_pages: pfns")
    if not len(pfns):
        return 0
    free_pages_prepare(m, pfns)
    return free_pages_ok(m, pfns)


def free_pages_prepare(m, pfns):
    out = (pfns < 0) | (pfns >= m.max_pfn)
    if out.any():
        raise RangeError(f"free_pages: pfn {int(pfns[out][0]):#x} is outside the physical "
                         f"address space (max_pfn {m.max_pfn:#x})", pfn=int(pfns[out][0]))
    secs = m.sections[pfns // m.arch.pages_per_section]
    absent = (secs & SECTION_MARKED_PRESENT) == 0
    if absent.any():
        p = int(pfns[absent][0])
        raise StateError(f"free_pages: pfn {p:#x} is not in a present section "
                         "(pfn_valid() false)", pfn=p)
    dup = first_duplicate(pfns)
    if dup is not None:
        raise StateError(f"free_pages: pfn {dup:#x} is given twice: the second would be a "
                         "double free (free_pages_prepare(): 'Bad page state'); nothing "
                         "freed", pfn=dup)
    mm = m.mem_map[pfns]
    flags = mm["flags"]
    checks = (
        (mm["refcount"] == 0, "is free or was never allocated (refcount 0)"),
        (mm["page_type"] != P.PGTY_NONE, "has a page type (buddy, page table, vmemmap "
         "or offline): not an allocated block"),
        ((flags & P.PG_tail) != 0, "is a folio tail, not the head of an allocated block"),
        ((flags & P.PG_reserved) != 0, "is PG_reserved (boot memmap, kernel image or "
         "memblock memory): PAGE_FLAGS_CHECK_AT_FREE"),
        ((flags & P.PG_vmemmap_self_hosted) != 0, "hosts a memmap (self-hosted vmemmap)"),
        (mm["private"] == OWNER_VMEMMAP, "backs the vmemmap (populated from the buddy "
         "at add_memory(); remove_memory() frees it)"),
        ((flags & P.PG_isolated) != 0, "is isolated for migration"),
    )
    for bad, why in checks:
        if bad.any():
            p = int(pfns[bad][0])
            raise StateError(f"free_pages: pfn {p:#x} {why} (free_pages_prepare(): "
                             "'Bad page state'); nothing freed", pfn=p)


def free_pages_ok(m, pfns):
    """__free_pages() of head pfns already known to be allocated block heads."""
    pfns = np.ascontiguousarray(pfns, dtype=np.int64)
    if not len(pfns):
        return 0
    mm = m.mem_map[pfns]
    flags = mm["flags"]
    bad = (mm["refcount"] == 0) | ((flags & P.PG_tail) > 0)
    if bad.any():
        raise StateError(f"free_pages: pfn {pfns[bad][0]:#x} is not the head of an "
                         "allocated block")
    # One key of node and zone bits, and one free_bulk() per zone: a merge never
    # crosses a zone (page_is_buddy()), so zones can go in any order. Callers
    # mostly free within one zone; that case needs no split.
    key = flags & ~np.uint32(P.FLAGS_MASK)
    keys = [int(key[0])] if (key == key[0]).all() else np.unique(key).tolist()
    freed = 0
    for k in keys:
        sel = pfns if len(keys) == 1 else pfns[key == k]
        zone = m.zone((k >> P.NODES_PGSHIFT) & P.NODES_MASK,
                         (k >> P.ZONES_PGSHIFT) & P.ZONES_MASK)
        freed += zone.free_area.free_bulk(sel)
    return freed


def init_per_zone_wmark_min(m):
    """init_per_zone_wmark_min() (mm/page_alloc.c, v6.1 and v6.12), which online_pages()
    and offline_pages() call after every change: calculate_min_free_kbytes(),
    setup_per_zone_wmarks() (with the pcp limits), refresh_zone_stat_thresholds(),
    setup_per_zone_lowmem_reserve(), then
    khugepaged_min_free_kbytes_update(), which re-applies THP's
    set_recommended_min_free_kbytes() while khugepaged runs."""
    calculate_min_free_kbytes(m)
    setup_per_zone_wmarks(m)
    vmstat.refresh_zone_stat_thresholds(m)
    setup_per_zone_lowmem_reserve(m)
    if m.khugepaged_running:
        khugepaged.set_recommended_min_free_kbytes(m)


def nr_free_buffer_pages(m):
    """nr_free_buffer_pages(): managed pages above the high watermark in the zones
    GFP_USER may use (<= ZONE_NORMAL), over the zonelist (every node)."""
    return sum(max(z.managed_pages - z.watermark[2], 0) for z in m.zones()
               if z.zid <= P.ZONE_NORMAL)


def calculate_min_free_kbytes(m):
    """calculate_min_free_kbytes() (mm/page_alloc.c, v5.8+ bounds): int_sqrt(lowmem_kb
    * 16) clamped to [128, 262144]; a value written to the sysctl
    (user_min_free_kbytes) is kept unless the new one is larger."""
    kb = m.arch.page_size >> 10
    new = math.isqrt(nr_free_buffer_pages(m) * kb * 16)
    user = m.user_min_free_kbytes
    if user is None or new > user:
        m.min_free_kbytes = min(max(new, 128), 262144)


def __setup_per_zone_wmarks(m):
    """__setup_per_zone_wmarks() (mm/page_alloc.c): min is the zone's share of
    min_free_kbytes by managed pages among the lowmem zones; the low/high/promo step
    is max(share / 4, managed * watermark_scale_factor / 10000). ZONE_MOVABLE: see
    MOVABLE_WMARK_CLAMP_SINCE."""
    kb = m.arch.page_size >> 10
    zones = m.zones()
    pages_min = m.min_free_kbytes // kb
    clamp_movable = m.kernel >= MOVABLE_WMARK_CLAMP_SINCE
    lowmem = sum(z.managed_pages for z in zones
                 if not (clamp_movable and z.zid == P.ZONE_MOVABLE))
    wsf = m.config.watermark_scale_factor
    for z in zones:
        tmp = pages_min * z.managed_pages // lowmem if lowmem else 0
        if clamp_movable and z.zid == P.ZONE_MOVABLE:
            wmin = min(max(z.managed_pages // 1024, 32), 128)   # SWAP_CLUSTER_MAX..128
        else:
            wmin = tmp
        step = max(tmp >> 2, z.managed_pages * wsf // 10000)     # mult_frac()
        z.watermark = [wmin, wmin + step, wmin + 2 * step]


def setup_per_zone_wmarks(m):
    """setup_per_zone_wmarks() (mm/page_alloc.c, v6.1 and v6.12): __setup_per_zone_wmarks(),
    then "The watermark size have changed so update the pcpu batch and high limits":
    zone_pcp_update() of every zone, populated or not (an unpopulated zone writes the
    shared boot_pageset, which no view prints)."""
    __setup_per_zone_wmarks(m)
    for z in m.zones():
        zone_pcp_update(m, z, 0)
    zone_sync_watermarks(m)


MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8       # mm/page_alloc.c, v6.1 and v6.12
SZ_1M = 1 << 20


def rounddown_pow_of_two(n):
    return 1 << (n.bit_length() - 1)


def zone_batchsize(m, zone):
    """zone_batchsize() (mm/page_alloc.c, the same in v6.1 and v6.12): pages moved per
    refill, ~0.1% of the zone or 1 MiB, a quarter of that, clamped to 2^n - 1."""
    batch = min(zone.managed_pages >> 10, SZ_1M // m.arch.page_size)
    batch //= 4                 # "We effectively *= 4 below"
    batch = max(batch, 1)
    return rounddown_pow_of_two(batch + batch // 2) - 1


def zone_highsize(m, zone, batch, cpu_online, high_fraction=0):
    """zone_highsize() (mm/page_alloc.c, v6.1 and v6.12): the low watermark (or managed /
    percpu_pagelist_high_fraction) split across the CPUs of the zone's node (every online
    CPU for a CPU-less node), at least 4 * batch. low_wmark_pages() includes
    watermark_boost, which pagecore does not model (always 0)."""
    total = zone.managed_pages // high_fraction if high_fraction else zone.watermark[1]
    nr_split_cpus = m.nodes[zone.nid].nr_cpus + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = num_online_cpus(m)      # >= 1: validate_config() wants a CPU
    return max(total // nr_split_cpus, batch << 2)


def pageset_update(m, zone, high_min, high_max, batch):
    """pageset_update() of every CPU's pageset of `zone` (the shared boot_pageset while
    the zone has none of its own): v6.1 writes pcp->high; v6.7+ high_min and high_max,
    pcp->high being the run-time value between them (see pcp_high()). The running
    CPU's lists, in the zone's FreeArea, get the same limits."""
    pcp = zone.per_cpu_pageset
    pcp.batch, pcp.high_min, pcp.high_max = batch, high_min, high_max
    if m.kernel < PCP_HIGH_AUTOTUNE_SINCE:
        pcp.high = high_min
    if pcp is not m.boot_pageset:
        zone.free_area.pageset_update(high_min, high_max, batch)


def zone_set_pageset_high_and_batch(m, zone, cpu_online=0):
    """zone_set_pageset_high_and_batch(): recompute the zone's limits and write them to
    its CPUs' pagesets, unless they equal the last ones computed (zone->pageset_*): a
    pageset set up since then keeps per_cpu_pages_init()'s values until they change."""
    batch = max(1, zone_batchsize(m, zone))
    fraction = m.config.percpu_pagelist_high_fraction
    if m.kernel < PCP_HIGH_AUTOTUNE_SINCE or fraction:
        high_min = high_max = zone_highsize(m, zone, batch, cpu_online, fraction)
    else:
        high_min = zone_highsize(m, zone, batch, cpu_online, 0)
        high_max = zone_highsize(m, zone, batch, cpu_online, MIN_PERCPU_PAGELIST_HIGH_FRACTION)
    new = (high_min, high_max, batch)
    if (zone.pageset_high_min, zone.pageset_high_max, zone.pageset_batch) == new:
        return
    zone.pageset_high_min, zone.pageset_high_max, zone.pageset_batch = new
    pageset_update(m, zone, *new)


def setup_zone_pageset(m, zone):
    """setup_zone_pageset(): the zone's own pagesets (per_cpu_pages_init()), then its
    limits; online_pages() calls it when it populates an empty zone, boot's
    setup_per_cpu_pageset() for every populated zone."""
    zone.per_cpu_pageset = PerCpuPages()
    zone.free_area.per_cpu_pages_init()
    zone_set_pageset_high_and_batch(m, zone, 0)


def zone_pcp_update(m, zone, cpu_online=0):
    """zone_pcp_update(): the zone has a new managed count or low watermark."""
    zone_set_pageset_high_and_batch(m, zone, cpu_online)


def zone_pcp_disable(m, zone):
    """zone_pcp_disable() (offline_pages() keeps it for the isolation): high 0, batch 1 on
    every CPU, then __drain_all_pages(zone, true). With high 0 a free goes straight
    through the list to the buddy and a refill hands out its one page, so the lists
    stay empty until zone_pcp_enable()."""
    pageset_update(m, zone, 0, 0, 1)
    zone.free_area.drain_pages()


def zone_pcp_enable(m, zone):
    """zone_pcp_enable(): back to the zone's last computed limits."""
    pageset_update(m, zone, zone.pageset_high_min, zone.pageset_high_max, zone.pageset_batch)


def zone_pcp_reset(m, zone):
    """zone_pcp_reset(): a zone offline_pages() emptied goes back to boot_pageset
    (zone->pageset_* keep their values); its lists were drained by zone_pcp_disable()."""
    zone.per_cpu_pageset = m.boot_pageset
    zone.free_area.per_cpu_pages_init()


def drain_all_pages(m, zone=None):
    """drain_all_pages(): every page on the pcp lists of `zone` (all populated zones when
    None) back to the buddy. Returns the pages drained."""
    zones = [zone] if zone is not None else [z for z in m.zones() if z.populated]
    return sum(z.free_area.drain_pages() for z in zones)


def zone_sync_watermarks(m):
    """The min and high watermarks and lowmem_reserve[ZONE_MOVABLE] of every zone, where
    the pcp rules of its FreeArea read them (v6.7+ ZONE_BELOW_HIGH)."""
    for z in m.zones():
        fa = z.free_area
        fa.wmark_min, fa.wmark_high = z.watermark[0], z.watermark[2]
        fa.reserve_movable = z.lowmem_reserve[P.ZONE_MOVABLE]


def pcp_high(m, zone):
    """The `high:` /proc/zoneinfo prints for a populated zone. v6.1: pcp->high. v6.7+:
    pcp->high moves at run time (nr_pcp_alloc() raises it towards high_max on refills,
    decay_pcp_high() lowers it back to high_min every vmstat interval, it is 0 on a CPU
    that never used the zone). pagecore's running CPU tunes its own pcp->high (in the
    FreeArea), but its vmstat worker runs only when asked (vmstat.vmstat_update(), after
    a Workload's phases), not in the seconds between a scenario's operations, so every
    CPU prints high_min, where a quiet pcp settles (the recorded 6.12 guests' CPU 0
    reads 13843-14932 against a high_min of 13845 around the first online)."""
    pcp = zone.per_cpu_pageset
    return pcp.high if m.kernel < PCP_HIGH_AUTOTUNE_SINCE else pcp.high_min


def setup_per_cpu_pageset(m):
    """setup_per_cpu_pageset() (mm_core_init(), before the initcalls that compute the
    watermarks): every populated zone gets its pagesets."""
    for z in m.zones():
        if z.populated:
            setup_zone_pageset(m, z)


def setup_per_zone_lowmem_reserve(m):
    """setup_per_zone_lowmem_reserve() (mm/page_alloc.c, v6.1 and v6.12): reserve[j] =
    managed pages of the zones above, up to j, / the zone's ratio; all 0 when the ratio
    is 0 or the zone itself has no managed pages (`clear`)."""
    ratio = LOWMEM_RESERVE_RATIO
    for node in m.nodes:
        for i, z in enumerate(node.zones):
            acc = 0
            z.lowmem_reserve = [0] * P.MAX_NR_ZONES
            clear = not ratio[i] or not z.managed_pages
            for j in range(i + 1, P.MAX_NR_ZONES):
                acc += node.zones[j].managed_pages
                z.lowmem_reserve[j] = 0 if clear else acc // ratio[i]
    zone_sync_watermarks(m)

