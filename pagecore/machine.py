"""The simulated machine: the state, and the public verbs over it.

Layout mirrors the kernel's:
  * `mem_map`: one `struct page` per pfn of the whole physical address space, backed by an
    anonymous MAP_NORESERVE mapping, so host memory is spent only where pages are written
    (present sections), exactly the way SPARSEMEM_VMEMMAP maps `vmemmap + pfn` only for
    present sections. pfn -> page is `mem_map[pfn]`; a pfn range is one array view.
  * `pageblock_flags`: one byte per pageblock (mem_section_usage->pageblock_flags).
  * `sections`: flag word per section (struct mem_section, include/linux/mmzone.h).
  * `blocks`: one row per memory block (struct memory_block, drivers/base/memory.c).
  * `nodes[nid].zones[z]`: struct zone counters and its buddy free area.

Machine owns that state and forwards each public verb to the module of the kernel file
that has the rule (pagecore/mm/, pagecore/drivers/base/memory.py): add_memory /
remove_memory, online_memory_block / offline_memory_block (and the range forms
online_pages_blocks / offline_pages), offline_and_remove_memory, alloc_pages /
free_pages. Every verb validates first, then changes state; an operation that fails after
changing state unwinds in reverse order, like the kernel's error paths, so a failed call
leaves the machine exactly as it was (see Machine.snapshot()); offline_and_remove_memory()
is the one exception and says so.
"""
from __future__ import annotations

import hashlib
import mmap

import numpy as np

from pagecore import host_memmap
from pagecore.kernels import page as P
from pagecore.kernels import backends
from pagecore.arch import get_arch
from pagecore.config import MAX_BLOCK_SIZE, MachineConfig, NodeConfig, validate_config
from pagecore.drivers.base import memory
from pagecore.drivers.base.memory import (BLOCK_DTYPE, MEM_GOING_OFFLINE, MEM_OFFLINE,
                                          MEM_ONLINE, STATE_NAMES)
from pagecore.errors import ConfigError
from pagecore.invariants import check_machine
from pagecore.mm import (huge_memory, memory_hotplug, mm_init, page_alloc, page_isolation,
                         page_owner, show_mem, vmstat)
from pagecore.mm.huge_memory import THP_MODES
from pagecore.mm.memory_hotplug import (MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL,
                                        MMOP_ONLINE_MOVABLE, ONLINE_POLICIES, ONLINE_TYPES,
                                        AddedRange)
from pagecore.mm.mmzone import (SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_IS_ONLINE,
                                SECTION_MARKED_PRESENT, SECTION_USE_VMEMMAP, Node, PerCpuPages,
                                Zone)
from pagecore.mm.page_alloc import (GFP, KINDS, LOWMEM_RESERVE_RATIO,
                                    MOVABLE_WMARK_CLAMP_SINCE, PG_reclaimable, PG_slab,
                                    PG_swapbacked)
from pagecore.mm.page_owner import OWNER_AUTO_BASE, OWNER_BOOT, OWNER_VMEMMAP, Allocation
from pagecore.mm.sparse_vmemmap import VmemAltmap
from pagecore.strategies import get_strategy
from pagecore.util import int_arg, runs

# Names that code written against the one-module layout imports from here.
__all__ = [
    "Machine", "MachineConfig", "NodeConfig", "Allocation", "AddedRange", "VmemAltmap",
    "Zone", "Node", "BLOCK_DTYPE", "MEM_ONLINE", "MEM_GOING_OFFLINE", "MEM_OFFLINE",
    "STATE_NAMES", "MMOP_OFFLINE", "MMOP_ONLINE", "MMOP_ONLINE_KERNEL", "MMOP_ONLINE_MOVABLE",
    "ONLINE_TYPES", "SECTION_MARKED_PRESENT", "SECTION_HAS_MEM_MAP", "SECTION_IS_ONLINE",
    "SECTION_IS_EARLY", "SECTION_USE_VMEMMAP", "GFP", "KINDS", "THP_MODES", "PG_swapbacked",
    "PG_slab", "PG_reclaimable", "OWNER_BOOT", "OWNER_VMEMMAP", "OWNER_AUTO_BASE",
]


class Machine:
    """A booted machine. Build it from a MachineConfig (or keyword overrides)."""

    #: Kernel constants, kept here for code that reads them from the class.
    LOWMEM_RESERVE_RATIO = LOWMEM_RESERVE_RATIO
    MOVABLE_WMARK_CLAMP_SINCE = MOVABLE_WMARK_CLAMP_SINCE
    ONLINE_POLICIES = ONLINE_POLICIES

    def __init__(self, config: MachineConfig | None = None, *, backend=None,
                 memmap_images=None, **overrides):
        cfg = config or MachineConfig()
        if not isinstance(cfg, MachineConfig):
            raise ConfigError(f"config={cfg!r} is not a MachineConfig")
        if overrides:
            unknown = sorted(set(overrides) - set(MachineConfig.__dataclass_fields__))
            if unknown:
                raise ConfigError(f"unknown MachineConfig field {unknown[0]!r}")
            cfg = MachineConfig(**{**cfg.__dict__, **overrides})
        validate_config(cfg)
        self.config = cfg
        self.kernel = tuple(int(k) for k in cfg.kernel)
        self.arch = get_arch(cfg.arch, struct_page_size=cfg.struct_page_size)
        name = backends.backend_name(backend)
        self.kernels = backends.get_backend(name)
        self.compaction_kernels = backends.get_compaction_backend(name)
        self.default_strategy = get_strategy(cfg.strategy)
        if cfg.online_policy not in ONLINE_POLICIES:
            raise ConfigError(f"online_policy={cfg.online_policy!r}: expected one of "
                              f"{', '.join(ONLINE_POLICIES)} (memory_hotplug.online_policy)")
        if isinstance(cfg.auto_movable_ratio, bool) or not isinstance(cfg.auto_movable_ratio, int) \
                or cfg.auto_movable_ratio < 0:
            raise ConfigError(f"auto_movable_ratio={cfg.auto_movable_ratio!r}: expected a "
                              "percentage >= 0 (memory_hotplug.auto_movable_ratio)")
        if cfg.default_online_type is not None and cfg.default_online_type not in ONLINE_TYPES:
            raise ConfigError(f"default_online_type={cfg.default_online_type!r}: expected one of "
                              f"{', '.join(ONLINE_TYPES)}")
        a = self.arch
        if not 30 <= cfg.phys_bits <= 52:
            raise ConfigError(f"phys_bits={cfg.phys_bits}: expected 30..52")
        if not cfg.nodes:
            raise ConfigError("a machine needs at least one node")
        if cfg.block_size is not None and cfg.block_size > MAX_BLOCK_SIZE:
            raise ConfigError(f"block_size={cfg.block_size:#x} is above {MAX_BLOCK_SIZE:#x}: no "
                              "kernel uses memory blocks larger than 2 GiB (x86 MAX_BLOCK_SIZE, "
                              "set_memory_block_size_order(), arch/x86/mm/init_64.c: -EINVAL)")
        if cfg.block_size is not None and cfg.block_size > (1 << cfg.phys_bits):
            raise ConfigError(f"block_size={cfg.block_size:#x} is larger than the "
                              f"{cfg.phys_bits}-bit physical address space")
        self.max_pfn = (1 << cfg.phys_bits) >> a.page_shift
        self.nr_sections = self.max_pfn // a.pages_per_section
        # The vmemmap: host pages only where written (MAP_NORESERVE, never accounted).
        self.vmemmap_mapping = mmap.mmap(-1, self.max_pfn * P.PAGE_DTYPE.itemsize,
                                  flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)
        self.mem_map = np.frombuffer(self.vmemmap_mapping, dtype=P.PAGE_DTYPE)
        # onlined blocks backed by a shared image of their struct pages (host_memmap.py)
        self.memmap_images = host_memmap.MemmapImages(
            host_memmap.images_default() if memmap_images is None else memmap_images)
        self.pageblock_flags = np.zeros(self.max_pfn >> a.pageblock_order, dtype=np.uint8)
        self.sections = np.zeros(self.nr_sections, dtype=np.uint8)
        self.section_nid = np.full(self.nr_sections, -1, dtype=np.int16)
        boot_end = max((s + n for nc in cfg.nodes for s, n in nc.boot), default=0)
        self.block_size = a.memory_block_size(boot_end, is_vm=cfg.is_vm, forced=cfg.block_size,
                                              kernel=self.kernel)
        self.block_pages = self.block_size >> a.page_shift
        self.sections_per_block = self.block_pages // a.pages_per_section
        self.blocks = np.zeros(self.max_pfn // self.block_pages, dtype=BLOCK_DTYPE)
        self.blocks["zone"] = -1
        self.blocks["memmap_nid"] = -1
        self.blocks["range_id"] = -1
        # boot_pageset (mm/page_alloc.c): the one per_cpu_pages every unpopulated zone points at
        self.boot_pageset = PerCpuPages()
        self.nodes = [Node(self, nid, nc) for nid, nc in enumerate(cfg.nodes)]
        n = len(self.nodes)
        self.distance = cfg.distance or [[10 if i == j else 20 for j in range(n)] for i in range(n)]
        self.ranges: dict[int, AddedRange] = {}
        self.next_range_id = 0
        # vmemmap backing: granule index -> (kind, pfn, order, nid); kind is
        # "memblock" (boot), "buddy" (classic hotplug) or "altmap" (self-hosted).
        self.vmemmap_granules: dict[int, tuple] = {}
        self.vmemmap_tables: dict[int, int] = {}    # PMD-table index -> backing pfn (-1 boot)
        self.nr_memmap_pages = 0                      # /proc/vmstat (v6.11+)
        self.nr_memmap_boot_pages = 0
        self.pagetable_pages = 0                      # vmemmap page tables from the buddy
        self.min_free_kbytes = 0
        self.online_kernel_alloc_pfns = []            # see memory_hotplug.kernel_allocs_after_online()
        self.kobj_pfns = {}                           # range id -> create_memory_block_devices() pages
        self.rng = np.random.default_rng(cfg.seed)
        self.next_owner = OWNER_AUTO_BASE
        mm_init.mm_core_init(self, cfg)

    # ==================================================================================
    # geometry helpers
    # ==================================================================================
    def fmt_range(self, start_pfn, nr_pages):
        """The kernel's "[mem %#018Lx-%#018Lx]" form of a pfn range (end inclusive)."""
        start_pfn = int_arg(start_pfn, "fmt_range: start_pfn", 0)
        nr_pages = int_arg(nr_pages, "fmt_range: nr_pages", 0)
        ps = self.arch.page_shift
        return f"[mem {start_pfn << ps:#018x}-{((start_pfn + nr_pages) << ps) - 1:#018x}]"

    def pfn(self, addr):
        return int_arg(addr, "address") >> self.arch.page_shift

    def block_id(self, pfn):
        return int_arg(pfn, "pfn") // self.block_pages

    def blocks_in(self, start_pfn, nr_pages):
        start_pfn = int_arg(start_pfn, "blocks_in: start_pfn", 0, self.max_pfn + 1)
        nr_pages = int_arg(nr_pages, "blocks_in: nr_pages", 0, self.max_pfn - start_pfn + 1)
        return self.blocks[start_pfn // self.block_pages:(start_pfn + nr_pages) // self.block_pages]

    def range_at(self, pfn):
        pfn = int_arg(pfn, "range_at: pfn", 0, self.max_pfn)
        rid = self.blocks["range_id"][self.block_id(pfn)]
        return self.ranges.get(int(rid))

    def zone(self, nid, zid):
        self.check_nid(nid)
        zid = int_arg(zid, "zone index", 0, P.MAX_NR_ZONES, cls=ConfigError)
        return self.nodes[nid].zones[zid]

    def own_zone(self, zone, what="zone"):
        """`zone` if it is one of this machine's zones, else ConfigError (a Zone of
        another machine would read these arrays with its spans)."""
        if not isinstance(zone, Zone) or not (0 <= zone.nid < len(self.nodes)) or \
                self.nodes[zone.nid].zones[zone.zid] is not zone:
            raise ConfigError(f"{what}={zone!r} is not a zone of this machine")
        return zone

    def zones(self):
        return [z for node in self.nodes for z in node.zones]

    def check_nid(self, nid):
        """`nid` names one of the machine's nodes, else ConfigError."""
        if not isinstance(nid, (int, np.integer)) or isinstance(nid, (bool, np.bool_)) \
                or not 0 <= nid < len(self.nodes):
            raise ConfigError(f"node {nid!r} does not exist (nodes 0..{len(self.nodes) - 1})")

    @property
    def thp_enabled(self):
        """Whether THP is on (pagecore/mm/huge_memory.py: thp_enabled())."""
        return huge_memory.thp_enabled(self)

    @property
    def auto_online_blocks(self):
        """/sys/devices/system/memory/auto_online_blocks at boot
        (pagecore/mm/memory_hotplug.py: mhp_get_default_online_type())."""
        return memory_hotplug.mhp_get_default_online_type(self)

    # ==================================================================================
    # the public verbs, each in the module of its kernel file
    # ==================================================================================
    def zonelist(self, nid, highest_zone):
        """The node's zonelist: nodes by distance (build_zonelists(): ties by id), each node's
        zones from `highest_zone` down, populated ones only.

        pagecore/mm/page_alloc.py: zonelist()."""
        return page_alloc.zonelist(self, nid, highest_zone)

    def alloc_pages(self, nid, order, gfp='kernel', count=1, owner=None, strict_node=False, exclude=None, extra_flags=0):
        """alloc_pages_node() `count` times: blocks of `order` for `gfp` ("kernel",
        "reclaimable", "movable", "user"), preferring `nid` and falling back along
        its zonelist. A zone gives pages only while it stays above its min watermark
        plus the lowmem reserve for the request's highest zone
        (__zone_watermark_ok()). `extra_flags` are accounting flags (KINDS: what the
        pages are for /proc/meminfo) set on every page.

        pagecore/mm/page_alloc.py: alloc_pages()."""
        return page_alloc.alloc_pages(self, nid, order, gfp, count, owner, strict_node, exclude, extra_flags)

    def find_allocation(self, allocation):
        """The head pfns where the blocks of an Allocation (or an owner tag) are now, in pfn
        order: what page_owner's dump would list for the allocation
        (mm/page_owner.c).

        pagecore/mm/page_owner.py: find_allocation()."""
        return page_owner.find_allocation(self, allocation)

    def free_pages(self, pfns):
        """__free_pages() of allocated blocks: head pfns (a sequence, an array, one pfn), or an
        Allocation from alloc_pages(), whose blocks are freed wherever migration has
        moved them. Returns the pages freed.

        pagecore/mm/page_alloc.py: free_pages()."""
        return page_alloc.free_pages(self, pfns)

    def setup_per_zone_wmarks(self):
        """init_per_zone_wmark_min() (mm/page_alloc.c, v6.1 and v6.12), which online_pages()
        and offline_pages() call after every change: calculate_min_free_kbytes(),
        __setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve(), then
        khugepaged_min_free_kbytes_update(), which re-applies THP's
        set_recommended_min_free_kbytes() while khugepaged runs.

        pagecore/mm/page_alloc.py: init_per_zone_wmark_min()."""
        return page_alloc.init_per_zone_wmark_min(self)

    def add_memory(self, nid, start, size, strategy=None, online=None):
        """add_memory(nid, start, size, MHP_MEMMAP_ON_MEMORY per strategy), then optionally
        online every new block ("online", "online_kernel", "online_movable"), as the
        auto-online policy does. Returns the AddedRange.

        pagecore/mm/memory_hotplug.py: add_memory()."""
        return memory_hotplug.add_memory(self, nid, start, size, strategy, online)

    def zone_for_pfn_range(self, online_type, nid, start_pfn, nr_pages):
        """zone_for_pfn_range() (mm/memory_hotplug.c): "online" follows
        memory_hotplug.online_policy, "contig-zones" (default_zone_for_pfn()) or
        "auto-movable" (auto_movable_zone_for_pfn()).

        pagecore/mm/memory_hotplug.py: zone_for_pfn_range()."""
        return memory_hotplug.zone_for_pfn_range(self, online_type, nid, start_pfn, nr_pages)

    def valid_zones(self, block):
        """/sys/devices/system/memory/memoryN/valid_zones.

        pagecore/drivers/base/memory.py: valid_zones()."""
        return memory.valid_zones(self, block)

    def online_memory_block(self, block, online_type='online'):
        """Write "online*" to memoryN/state.

        pagecore/drivers/base/memory.py: online_memory_block()."""
        return memory.online_memory_block(self, block, online_type)

    def online_pages_blocks(self, blocks, online_type='online'):
        """memory_block_online() for each block, batched per zone so that the per-block Python
        work stays small at TiB scale. All blocks are validated before any changes:
        a refused call changes nothing.

        pagecore/drivers/base/memory.py: memory_block_online()."""
        return memory.memory_block_online(self, blocks, online_type)

    def offline_memory_block(self, block):
        """Write "offline" to memoryN/state: memory_block_offline(). Returns a report dict
        (pages migrated, pages scanned). On failure raises with the reason and
        leaves the machine as it was.

        pagecore/drivers/base/memory.py: memory_block_offline()."""
        return memory.memory_block_offline(self, block)

    def offline_pages(self, start_pfn, nr_pages, zone):
        """offline_pages() (mm/memory_hotplug.c) of a range inside one zone: the second half of
        memory_block_offline(), so the range must lie in memory blocks that are
        going offline (offline_memory_block() marks them); a direct call on online
        blocks would leave blocks online with their pages gone.

        pagecore/mm/memory_hotplug.py: offline_pages()."""
        return memory_hotplug.offline_pages(self, start_pfn, nr_pages, zone)

    def start_isolate_page_range(self, start_pfn, end_pfn, zone, memory_offline=True):
        """start_isolate_page_range(): isolate every pageblock or none. Returns the isolated
        pageblock start pfns (for undo_isolate_page_range()).

        pagecore/mm/page_isolation.py: start_isolate_page_range()."""
        return page_isolation.start_isolate_page_range(self, start_pfn, end_pfn, zone, memory_offline)

    def undo_isolate_page_range(self, isolated):
        """undo_isolate_page_range(): restore each pageblock's own migratetype, in ascending
        order like the kernel; FreeArea.unset_migratetype_isolate() re-merges what
        isolation split (__putback_isolated_page(), mm/page_isolation.c).

        pagecore/mm/page_isolation.py: undo_isolate_page_range()."""
        return page_isolation.undo_isolate_page_range(self, isolated)

    def remove_memory(self, start, size):
        """remove_memory(start, size): every block offline, the generation's granularity rule,
        memmap torn down (vmemmap last, boot-memmap pages back to the buddy).

        pagecore/mm/memory_hotplug.py: remove_memory()."""
        return memory_hotplug.remove_memory(self, start, size)

    def offline_and_remove_memory(self, start, size):
        """offline_and_remove_memory(): offline each block, then remove; on failure, re-online
        what this call offlined, in ascending order, as MMOP_ONLINE_MOVABLE if it
        was in ZONE_MOVABLE and MMOP_ONLINE_KERNEL otherwise
        (try_offline_memory_block() / try_reonline_memory_block(),
        mm/memory_hotplug.c, 6.1 and 6.12): the kernel records the zone, not the
        online type the block was onlined with, so a block onlined with "online"
        comes back as online_kernel
        (docs/model.md#where-the-kernel-source-corrected-the-model).

        pagecore/mm/memory_hotplug.py: offline_and_remove_memory()."""
        return memory_hotplug.offline_and_remove_memory(self, start, size)

    # ==================================================================================
    # accounting
    # ==================================================================================
    @property
    def mem_total_pages(self):
        """totalram_pages() = Σ managed_pages."""
        return sum(z.managed_pages for z in self.zones())

    @property
    def mem_free_pages(self):
        """NR_FREE_PAGES: buddy pages outside isolated pageblocks (the pages on per-cpu
        lists are not in it, as in the kernel's MemFree)."""
        return sum(z.free_pages for z in self.zones())

    @property
    def free_pcp_pages(self):
        """Pages on the per-cpu lists of every zone (show_free_areas()' free_pcp): free
        pages the buddy does not hold, handed out before it is asked again."""
        return sum(z.free_area.pcp_count for z in self.zones())

    def vmstat_update(self, max_passes=None):
        """The vmstat worker on the running CPU (vmstat_update() every second while
        refresh_cpu_vm_stats() finds work): the fold of the zones' counters,
        decay_pcp_high() (v6.7+) and, for the zones of other nodes than the CPU's, the
        drain of their lists a batch every third idle pass (v6.7+; v6.1's worker stops
        before it), `max_passes` times or until it settles. Returns the passes run.

        pagecore/mm/vmstat.py: vmstat_update()."""
        if max_passes is not None:
            max_passes = int_arg(max_passes, "vmstat_update: max_passes", 1)
        return vmstat.vmstat_update(self, max_passes)

    def drain_all_pages(self, zone=None):
        """drain_all_pages(): the pages on the per-cpu lists of `zone` (every populated
        zone when None) back to the buddy, where they merge. Returns the pages drained.

        pagecore/mm/page_alloc.py: drain_all_pages()."""
        if zone is not None:
            self.own_zone(zone, "drain_all_pages: zone")
        return page_alloc.drain_all_pages(self, zone)

    def meminfo(self):
        """The /proc/meminfo fields pagecore models, in kB (pagecore/mm/show_mem.py:
        meminfo(); procfs.meminfo_dict() gives the same keys). It scans the page array
        of online memory for the page kinds."""
        return show_mem.meminfo(self)

    def memmap_summary(self):
        """Where the memmap of hot-added memory lives: pages per place."""
        blk = self.blocks[(self.blocks["state"] != 0) & ~self.blocks["boot"]]
        per_node = {}
        for nid in set(blk["memmap_nid"].tolist()) - {-1}:
            per_node[int(nid)] = int(blk["memmap_pages"][blk["memmap_nid"] == nid].sum())
        v = blk["nr_vmemmap"]
        return {
            "self_hosted_pages": int((v - blk["waste"]).sum()),
            "waste_pages": int(blk["waste"].sum()),
            "boot_memory_pages": int(blk["memmap_pages"].sum()),
            "boot_memory_by_node": per_node,
            "pagetable_pages": self.pagetable_pages,
            "nr_memmap_pages": self.nr_memmap_pages,
            "nr_memmap_boot_pages": self.nr_memmap_boot_pages,
        }

    def check(self):
        """Walk the whole state and raise InvariantError with the first broken invariant,
        like the kernel's CONFIG_DEBUG_VM checks (check_new_page(), bad_page(),
        VM_BUG_ON_PAGE()): zone counters and spans, the free lists (alignment, one zone,
        no overlap, nothing left unmerged, counts, pageblock migratetypes), the page
        states, the memmap backing of every present section and the altmap accounting,
        memory blocks against sections and zones, MemTotal/MemFree/nr_memmap_pages
        against the arrays. Changes nothing; see pagecore/invariants.py."""
        check_machine(self)

    def snapshot(self, pcp=True):
        """Everything observable, for before/after comparisons of failed operations. With
        pcp=False the per-cpu lists' run-time state (their pages, pcp->high on v6.7+,
        the free/alloc factors, ZONE_BELOW_HIGH, pcp->expire and the vmstat worker's
        last fold) is left out: what a refused operation
        may change besides draining the lists, as the kernel's does."""
        return self._snapshot(digest=True, pcp=pcp)

    def _snapshot(self, digest, pcp=True):
        """snapshot(); with digest=False the pages are kept as arrays (one per run of
        sections) instead of hashed, for callers that compare often (the fuzz tests)."""
        h = hashlib.sha256()
        pieces = []
        pps = self.arch.pages_per_section
        # one run of sections with a nonzero word at a time (the digest is that of the
        # sections' pages in order, however they are cut)
        for s0, s1 in runs(self.sections != 0):
            w = self.mem_map[s0 * pps:s1 * pps].view(np.uint64).reshape(-1, 2).copy()
            # Free-list positions are not state (the lists are compared below as sorted
            # pfn sets): a buddy head's `private` is its list slot, and `order` of a free
            # page that is not a buddy head is stale (buddy_order() is only meaningful with
            # PageBuddy), so both are masked. Word 0 is flags | page_type << 32 |
            # order << 40 | refcount << 48 (pagecore/kernels/page.pxd), word 1 private.
            ptype = (w[:, 0] >> np.uint64(32)) & np.uint64(0xFF)
            w[ptype == P.PGTY_BUDDY, 1] = 0
            stale = (ptype == P.PGTY_NONE) & ((w[:, 0] >> np.uint64(48)) == 0)
            w[stale, 0] &= ~np.uint64(0xFF << 40)
            if digest:
                h.update(memoryview(w).cast("B"))
            else:
                pieces.append((s0, w))
        tail = (self.pageblock_flags.tobytes() + self.sections.tobytes() +
                self.section_nid.tobytes() + self.blocks.tobytes())
        if digest:
            h.update(tail)
        zones = [(z.counters(), tuple(z.watermark), sorted(z.free_area.snapshot().items()),
                  (z.pageset_high_min, z.pageset_high_max, z.pageset_batch, z.stat_threshold),
                  z.per_cpu_pageset.state() if z.populated else None)
                 + ((z.free_area.pcp_state(), z.free_area.below_high,
                     sorted((k, v.tobytes()) for k, v in z.free_area.pcp_lists().items()),
                     z.pcp_expire, z.vm_stat_folded_free)
                    if pcp else ())
                 for z in self.zones()]
        return {"hash": h.hexdigest() if digest else (pieces, tail), "zones": zones,
                "granules": dict(self.vmemmap_granules), "tables": dict(self.vmemmap_tables),
                "ranges": sorted(self.ranges), "memmap": self.memmap_summary()}

