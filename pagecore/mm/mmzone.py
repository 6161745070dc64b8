"""include/linux/mmzone.h (and mm/mmzone.c): struct zone, struct pglist_data, the section
flags of struct mem_section, and the page -> node / zone lookups.

Modelled: a zone's span, present/present_early/managed counters, watermarks,
lowmem_reserve and its buddy free area (a FreeArea, pagecore/kernels/buddy.pyx); the
per-cpu pageset limits (struct per_cpu_pages high/batch, set by mm/page_alloc.c), the
lists of the CPU pagecore runs on (in the FreeArea), and the vmstat threshold; a node's
zones, CPUs and N_MEMORY. Not modelled: the lists of the other CPUs (empty), per-cpu
vmstat deltas, zone locks, the LRU lists (pages carry PG_lru; there is no list).
"""
from __future__ import annotations

from pagecore.kernels import page as P
from pagecore.kernels.buddy import FreeArea
from pagecore.arch import ZONE_NAMES
from pagecore.util import runs

# Section flags (include/linux/mmzone.h; SECTION_USE_VMEMMAP from seed v3 patch 3/5).
SECTION_MARKED_PRESENT = 1 << 0
SECTION_HAS_MEM_MAP = 1 << 1
SECTION_IS_ONLINE = 1 << 2
SECTION_IS_EARLY = 1 << 3
SECTION_USE_VMEMMAP = 1 << 4

MIGRATE_PCPTYPES = 3        # UNMOVABLE, MOVABLE, RECLAIMABLE
#: v6.7 ("mm: add framework for PCP high auto-tuning") replaced the one pcp->high with
#: high_min (the old value, from the low watermark) and high_max (managed / 8 by default)
#: and moves pcp->high between them at run time (alloc_factor, free_count,
#: ZONE_BELOW_HIGH came in the same series).
PCP_HIGH_AUTOTUNE_SINCE = (6, 7)


class PerCpuPages:
    """struct per_cpu_pages (include/linux/mmzone.h): the limits of a zone's CPUs. Every
    possible CPU of a zone is given the same values (__zone_set_pageset_high_and_batch()),
    so pagecore keeps one set per zone; the lists and run-time state of the CPU pagecore
    runs on are in the zone's FreeArea (pagecore/kernels/buddy.pxd), whose other CPUs'
    lists stay empty. v6.7+ ("mm: add framework for PCP high auto-tuning") has
    high_min/high_max, between which the kernel moves `high` as pages come and go; v6.1
    has `high` alone (pagecore keeps it in high_min = high_max)."""

    __slots__ = ("high", "high_min", "high_max", "batch")

    def __init__(self):
        # per_cpu_pages_init(): BOOT_PAGESET_HIGH 0, BOOT_PAGESET_BATCH 1
        self.high, self.high_min, self.high_max, self.batch = 0, 0, 0, 1

    def state(self):
        return (self.high, self.high_min, self.high_max, self.batch)


class Zone:
    """struct zone: span, present/managed counters, watermarks, free area."""

    def __init__(self, machine, nid, zid):
        self.nid, self.zid, self.name = nid, zid, ZONE_NAMES[zid]
        self.zone_start_pfn = 0
        self.spanned_pages = 0
        self.present_pages = 0
        self.present_early_pages = 0
        self.managed_pages = 0
        self.watermark = [0, 0, 0]                  # WMARK_MIN, LOW, HIGH
        self.boot_span = None                       # [start, end) of boot memory in the zone
        self.lowmem_reserve = [0] * P.MAX_NR_ZONES
        # zone->pageset_high_min/_max/_batch: the last values zone_set_pageset_high_and_batch()
        # computed (it writes the CPUs' pagesets only when they change), and
        # zone->per_cpu_pageset, the shared boot_pageset until the zone is populated.
        self.pageset_high_min = self.pageset_high_max = self.pageset_batch = 0
        self.per_cpu_pageset = machine.boot_pageset
        self.stat_threshold = 0                     # per_cpu_zonestats->stat_threshold
        # the running CPU's pcp->expire (CONFIG_NUMA: passes of the vmstat worker left
        # before a remote zone's pageset is drained), and NR_FREE_PAGES when its per-cpu
        # diff was last folded (pagecore/mm/vmstat.py: refresh_cpu_vm_stats())
        self.pcp_expire = 0
        self.vm_stat_folded_free = -1
        self.free_area = FreeArea(machine.mem_map, machine.pageblock_flags,
                                  machine.arch.nr_page_orders, machine.arch.pageblock_order)
        self.free_area.pcp_autotune = machine.kernel >= PCP_HIGH_AUTOTUNE_SINCE

    @property
    def zone_end_pfn(self):
        return self.zone_start_pfn + self.spanned_pages

    @property
    def free_pages(self):
        return self.free_area.nr_free_pages()

    def spans(self, start_pfn, nr_pages):
        """zone_intersects(): the span (holes included) overlaps the range."""
        return (self.spanned_pages > 0 and start_pfn < self.zone_end_pfn
                and start_pfn + nr_pages > self.zone_start_pfn)

    def grow(self, start_pfn, end_pfn):
        """resize_zone_range() (mm/memory_hotplug.c)."""
        if not self.spanned_pages:
            self.zone_start_pfn, self.spanned_pages = start_pfn, end_pfn - start_pfn
        else:
            lo, hi = min(self.zone_start_pfn, start_pfn), max(self.zone_end_pfn, end_pfn)
            self.zone_start_pfn, self.spanned_pages = lo, hi - lo

    @property
    def populated(self):
        """populated_zone(): the zone has present pages."""
        return self.present_pages > 0

    def counters(self):
        return (self.zone_start_pfn, self.spanned_pages, self.present_pages,
                self.present_early_pages, self.managed_pages, self.free_pages)


class Node:
    """struct pglist_data: zones, span, N_MEMORY state."""

    def __init__(self, machine, nid, cfg):
        self.nid, self.cpus = nid, cfg.cpus
        self.nr_cpus = int(cfg.cpus)                # cpumask_weight(cpumask_of_node(nid))
        self.zones = [Zone(machine, nid, z) for z in range(P.MAX_NR_ZONES)]

    @property
    def node_present_pages(self):
        return sum(z.present_pages for z in self.zones)

    @property
    def node_span(self):
        spans = [(z.zone_start_pfn, z.zone_end_pfn) for z in self.zones if z.spanned_pages]
        if not spans:
            return 0, 0
        return min(s for s, _ in spans), max(e for _, e in spans)

    @property
    def has_memory(self):
        """N_MEMORY: the node has present pages in some zone."""
        return self.node_present_pages > 0



#: The CPU every allocation and free of pagecore runs on: its lists are the zone's
#: FreeArea's (pagecore/kernels/buddy.pyx); the other CPUs' lists stay empty.
RUNNING_CPU = 0


def cpu_to_node(m, cpu):
    """cpu_to_node(): the node of CPU `cpu`, CPUs being numbered node by node in node
    order (the first node with CPUs has CPU 0)."""
    for n in m.nodes:
        if cpu < n.nr_cpus:
            return n.nid
        cpu -= n.nr_cpus
    raise ValueError(f"cpu_to_node: no CPU {cpu}")


def num_online_cpus(m):
    """num_online_cpus() (include/linux/cpumask.h): every node's CPUs; all are online."""
    return sum(n.nr_cpus for n in m.nodes)


def page_to_nid(m, pfn):
    """page_to_nid(): the node bits of the page's flags."""
    return (int(m.mem_map[pfn]["flags"]) >> P.NODES_PGSHIFT) & P.NODES_MASK


def page_zone(m, pfn):
    """page_zone(): the Zone the page's node and zone bits name."""
    f = int(m.mem_map[pfn]["flags"])
    return m.zone((f >> P.NODES_PGSHIFT) & P.NODES_MASK, (f >> P.ZONES_PGSHIFT) & P.ZONES_MASK)


def present_section_runs(m, lo, hi):
    """[start, end) pfn runs of present sections inside [lo, hi)."""
    pps = m.arch.pages_per_section
    s0, s1 = lo // pps, -(-hi // pps)
    present = (m.sections[s0:s1] & SECTION_MARKED_PRESENT) != 0
    return [(max(lo, (s0 + a) * pps), min(hi, (s0 + b) * pps)) for a, b in runs(present)]
