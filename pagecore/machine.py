"""The simulated machine: SPARSEMEM_VMEMMAP memory model, zones, memory blocks, hotplug.

Layout mirrors the kernel's:
  * `mem_map`: one `struct page` per pfn of the whole physical address space, backed by an
    anonymous MAP_NORESERVE mapping, so host memory is spent only where pages are written
    (present sections), exactly the way SPARSEMEM_VMEMMAP maps `vmemmap + pfn` only for
    present sections. pfn -> page is `mem_map[pfn]`; a pfn range is one array view.
  * `pageblock_flags`: one byte per pageblock (mem_section_usage->pageblock_flags).
  * `sections`: flag word per section (struct mem_section, include/linux/mmzone.h).
  * `blocks`: one row per memory block (struct memory_block, drivers/base/memory.c).
  * `nodes[nid].zones[z]`: struct zone counters and its buddy free area.

Public verbs: add_memory / remove_memory, online_memory_block / offline_memory_block
(and the range forms online_pages / offline_pages), offline_and_remove_memory,
alloc_pages / free_pages. Every verb validates first, then changes state; an operation
that fails after changing state unwinds in reverse order, like the kernel's error paths,
so a failed call leaves the machine exactly as it was (see Machine.snapshot()).
"""
from __future__ import annotations

import hashlib
import mmap
from dataclasses import dataclass, field

import numpy as np

from pagecore import _page as P
from pagecore._buddy import FreeArea
from pagecore import backends
from pagecore.arch import ZONE_NAMES, GiB, KiB, MiB, get_arch
from pagecore.errors import (BusyError, ConfigError, GranularityError, OutOfMemoryError,
                             PagecoreError, RangeError, StateError, pfn_range)
from pagecore.strategies import get_strategy

# Section flags (include/linux/mmzone.h; SECTION_USE_VMEMMAP from seed v3 patch 3/5).
SECTION_MARKED_PRESENT = 1 << 0
SECTION_HAS_MEM_MAP = 1 << 1
SECTION_IS_ONLINE = 1 << 2
SECTION_IS_EARLY = 1 << 3
SECTION_USE_VMEMMAP = 1 << 4

# Memory block states (include/linux/memory.h); 0 = no block device.
MEM_ONLINE, MEM_GOING_OFFLINE, MEM_OFFLINE = 1 << 0, 1 << 1, 1 << 2
STATE_NAMES = {MEM_ONLINE: "online", MEM_GOING_OFFLINE: "going-offline", MEM_OFFLINE: "offline"}

# Online types (MMOP_*, include/linux/memory_hotplug.h) and their sysfs spellings.
MMOP_OFFLINE, MMOP_ONLINE, MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE = range(4)
ONLINE_TYPES = {"offline": MMOP_OFFLINE, "online": MMOP_ONLINE,
                "online_kernel": MMOP_ONLINE_KERNEL, "online_movable": MMOP_ONLINE_MOVABLE}
_MMOP_NAMES = {v: k for k, v in ONLINE_TYPES.items()}

BLOCK_DTYPE = np.dtype([
    ("state", "u1"), ("nid", "i2"), ("zone", "i1"), ("online_type", "i1"),
    ("nr_vmemmap", "i8"),        # V: self-hosted memmap pages at the block start
    ("altmap_alloc", "i8"),      # altmap->alloc still owed to the altmap (0 after removal)
    ("waste", "i8"),             # force-mode padding pages inside V
    ("memmap_nid", "i2"),        # node whose buddy holds the memmap (-1: self-hosted/none)
    ("memmap_pages", "i8"),      # buddy pages spent on this block's memmap (classic path)
    ("range_id", "i4"),          # the add_memory() call that created the block
    ("boot", "?"),
])

# Accounting flags: PG_* bits the kernels never test (migration copies every FLAGS_MASK
# bit, freeing clears them), set on allocations so that /proc/meminfo can count each kind
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
THP_MODES = ("always", "madvise", "never")
MIGRATE_PCPTYPES = 3        # UNMOVABLE, MOVABLE, RECLAIMABLE (include/linux/mmzone.h)

GFP = {  # gfp name -> (highest zone, migratetype, page flags of the allocation)
    "kernel": (P.ZONE_NORMAL, P.MIGRATE_UNMOVABLE, 0),
    "reclaimable": (P.ZONE_NORMAL, P.MIGRATE_RECLAIMABLE, 0),
    "movable": (P.ZONE_MOVABLE, P.MIGRATE_MOVABLE, P.PG_lru),
    "user": (P.ZONE_NORMAL, P.MIGRATE_MOVABLE, P.PG_lru),
}

#: Owner tags (page->private of an allocated page, what page_owner would record as the
#: allocation's stack) that name the machine's own allocations: the vmemmap and its page
#: tables populated from the buddy (vmemmap_alloc_block(), mm/sparse-vmemmap.c) and the
#: kernel's memory after boot. Only remove_memory() frees OWNER_VMEMMAP pages.
OWNER_BOOT, OWNER_VMEMMAP = 1, 2
#: alloc_pages() without an owner tags the call's blocks with a fresh tag from here on,
#: so that the returned Allocation names exactly its own blocks.
OWNER_AUTO_BASE = 1 << 48


def _is_int(value):
    """An integer argument: a Python or numpy integer, never a bool (True is not block 1),
    a float (32.5 is not block 32) or a string."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _int_arg(value, what, lo=None, hi=None, cls=None):
    """`value` as a Python int, or a PagecoreError naming the value and the rule: ConfigError
    for a wrong type, `cls` (default RangeError) for a value outside [lo, hi)."""
    if not _is_int(value):
        raise ConfigError(f"{what}={value!r} is not an integer ({type(value).__name__})")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v >= hi):
        rule = (f"{lo}..{hi - 1}" if lo is not None and hi is not None else
                f">= {lo}" if lo is not None else f"< {hi}")
        raise (cls or RangeError)(f"{what}={v} is out of range (expected {rule})")
    return v


def _int_array(values, what):
    """A sequence of integers (list, tuple, range, numpy integer array, one integer) as a
    1-D int64 array; floats, bools, strings and nested sequences are refused whole."""
    if isinstance(values, np.ndarray):
        if values.ndim > 1 or (values.size and values.dtype.kind not in "iu"):
            raise ConfigError(f"{what}: expected integers, got an array of {values.dtype} "
                              f"with shape {values.shape}")
        if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
            raise RangeError(f"{what}: {int(values.max())} is out of range")
        return np.asarray(values, dtype=np.int64).ravel()
    if isinstance(values, range):
        return np.arange(values.start, values.stop, values.step, dtype=np.int64)
    if _is_int(values):
        return np.array([int(values)], dtype=np.int64)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{what}: expected a sequence of integers, got {values!r}")
    out = list(values)
    bad = next((v for v in out if not _is_int(v)), None)
    if bad is not None:
        raise ConfigError(f"{what}: {bad!r} is not an integer ({type(bad).__name__})")
    try:
        return np.array([int(v) for v in out], dtype=np.int64)
    except OverflowError:
        raise RangeError(f"{what}: a value is beyond 64 bits") from None


def _first_duplicate(arr):
    """The first value that appears twice in `arr` (in sorted order), or None."""
    if len(arr) < 2:
        return None
    s = np.sort(arr)
    d = np.flatnonzero(s[1:] == s[:-1])
    return int(s[d[0]]) if len(d) else None


class Allocation(np.ndarray):
    """What alloc_pages() returns: the head pfns of the blocks at allocation time (an int64
    array, used as before) and the owner tag they carry in page->private.

    Migration (offline, compaction) moves a block's owner tag with its contents, as the
    kernel's page_owner does on migration (copy_page_owner() since v4.6, __folio_copy_owner()
    in 6.1 and 6.12, mm/page_owner.c), so free_pages(allocation) frees the blocks wherever they are now, and
    Machine.find_allocation() says where that is. Slices and other arrays derived from an
    Allocation are plain pfns (owner None): they name pages, not the allocation. A tag
    given to several alloc_pages() calls names all their blocks together."""

    def __new__(cls, pfns, owner, order):
        obj = np.asarray(pfns, dtype=np.int64).view(cls)
        obj.owner, obj.order = int(owner), int(order)
        return obj

    def __array_finalize__(self, obj):
        self.owner = None
        self.order = getattr(obj, "order", None)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # ufunc results (heads + 1, ...) are pfns, not the allocation
        out = np.asarray(arr)
        return out[()] if return_scalar else out

    def __reduce__(self):
        return (Allocation, (np.asarray(self), self.owner, self.order)) if self.owner is not None \
            else (np.asarray, (np.asarray(self),))


@dataclass
class NodeConfig:
    """One NUMA node: boot RAM ranges as (start, size) in bytes, and whether it has CPUs.

    The per-zone tables (zone name -> pages; "DMA", "DMA32", "Normal") describe a real
    machine's boot as `pagecore calibrate` measures it:
      reserved   memblock reservations the kernel keeps (kernel image, page tables,
                 percpu, hash tables, swiotlb, ...), besides the boot memmap, the arch's
                 fixed ones and `kernel_reserved`. Placed top-down in the zone, as
                 memblock_alloc() does.
      late_free  pages still memblock-reserved when boot last set the watermarks
                 (init_per_zone_wmark_min() is a postcore_initcall, khugepaged's
                 set_recommended_min_free_kbytes() runs from hugepage_init(), a
                 subsys_initcall) and freed later (free_initrd_mem(), free_initmem(),
                 mark_rodata_ro()). They are managed afterwards, but the boot
                 watermarks were computed without them; the next online/offline
                 recomputes.
      used       unmovable pages in use in that zone after boot (slab, page tables,
                 per-cpu lists, DMA pools), on top of boot_used_*.
    """
    boot: list = field(default_factory=list)
    cpus: bool = True
    reserved: dict = field(default_factory=dict)
    late_free: dict = field(default_factory=dict)
    used: dict = field(default_factory=dict)


@dataclass
class MachineConfig:
    """Everything needed to boot a machine. Sizes are bytes."""
    arch: str = "x86_64"
    kernel: tuple = (6, 12)
    nodes: list = field(default_factory=lambda: [NodeConfig(boot=[(0, 2 * GiB)])])
    phys_bits: int = 46                   # physical address space: 64 TiB on x86_64
    is_vm: bool = True
    block_size: int | None = None         # forced memory block size
    struct_page_size: int = 64
    strategy: str = "block"               # default memmap strategy for add_memory()
    kernel_reserved: int = 48 * MiB       # memblock-reserved besides the boot memmap
    boot_used_unmovable: int = 0          # kernel allocations after boot (slab, ...)
    boot_used_movable: int = 0            # page cache / anonymous memory after boot
    min_free_kbytes: int | None = None    # None: calculate_min_free_kbytes()
    movable_node: bool = False
    distance: list | None = None          # node distance matrix; default 10 local, 20 remote
    seed: int = 0
    thp: str = "always"                   # /sys/kernel/mm/transparent_hugepage/enabled
    watermark_scale_factor: int = 10      # /proc/sys/vm/watermark_scale_factor
    # A read of /proc/sys/vm/lowmem_reserve_ratio after boot: its handler recomputes
    # lowmem_reserve even on a read (lowmem_reserve_ratio_sysctl_handler(), v6.1 and
    # v6.12), so protection then counts the pages freed after the boot watermarks.
    sysctl_read_lowmem_reserve_ratio: bool = False
    # Unmovable pages the kernel allocates in the first block onlined into a node's
    # highest kernel zone (Machine._kernel_allocs_after_online()); the recorded Debian
    # guests show ~80 (what `pagecore calibrate` sets). 0 (the default, as before): none.
    online_kernel_allocs: int = 0
    # Kernel objects of each new memory block (struct memory_block, its device, sysfs
    # nodes, the resource), paid from existing memory in every memmap mode
    # (Machine._alloc_block_kobjs(); calibrated machines: 5 KiB). Default 0: not counted.
    hotplug_kobj_bytes_per_block: int = 0
    # memory_hotplug.online_policy, .auto_movable_ratio, .auto_movable_numa_aware
    online_policy: str = "contig-zones"
    auto_movable_ratio: int = 301
    auto_movable_numa_aware: bool = True
    # Build-time default online type of new blocks (auto_online_blocks): None = as
    # Debian builds the kernel (see Machine.auto_online_blocks).
    default_online_type: str | None = None

    @classmethod
    def from_proc(cls, path, kernel=None, notes=None):
        """The MachineConfig that reproduces the machine whose /proc and sysfs files are
        in directory `path` (meminfo, zoneinfo; optionally vmstat, iomem, dmesg and
        sys/devices/system/memory/): pagecore.validate.calibrate. What the files do not
        determine and was assumed is appended to `notes` when given."""
        from pagecore.validate.calibrate import calibrate_dir
        cfg, n = calibrate_dir(path, kernel=kernel)
        if notes is not None:
            notes.extend(n)
        return cfg


#: Largest memory block any modelled kernel uses: x86 MAX_BLOCK_SIZE (2 GiB,
#: arch/x86/mm/init_64.c); the ppc64 LMBs and s390 rzm of the presets are 256 MiB.
MAX_BLOCK_SIZE = 2 * GiB
#: sizeof(struct page) is 64 bytes on every production config (56 to 80 with debug or
#: 32-bit options, include/linux/mm_types.h); 256 B would already be 1/16 of 4 KiB pages.
MAX_STRUCT_PAGE_SIZE = 256


def _validate_config(cfg):
    """Types and ranges of a MachineConfig, before anything is built. The geometry rules
    that depend on the arch (block size, boot ranges) are checked as the machine boots."""
    def integer(name, value, lo=None, hi=None, optional=False):
        if optional and value is None:
            return
        _int_arg(value, f"MachineConfig.{name}", lo, hi, cls=ConfigError)

    if not isinstance(cfg.arch, str):
        raise ConfigError(f"MachineConfig.arch={cfg.arch!r} is not an architecture name")
    if (not isinstance(cfg.kernel, (tuple, list)) or len(cfg.kernel) != 2
            or not all(_is_int(k) and k >= 0 for k in cfg.kernel)):
        raise ConfigError(f"MachineConfig.kernel={cfg.kernel!r}: expected (major, minor)")
    integer("phys_bits", cfg.phys_bits, 30, 53)
    integer("block_size", cfg.block_size, 1, optional=True)
    integer("struct_page_size", cfg.struct_page_size, 16, MAX_STRUCT_PAGE_SIZE + 1)
    integer("kernel_reserved", cfg.kernel_reserved, 0)
    integer("boot_used_unmovable", cfg.boot_used_unmovable, 0)
    integer("boot_used_movable", cfg.boot_used_movable, 0)
    integer("min_free_kbytes", cfg.min_free_kbytes, 0, optional=True)
    integer("seed", cfg.seed, 0)
    for name in ("is_vm", "movable_node"):
        if not isinstance(getattr(cfg, name), (bool, np.bool_)):
            raise ConfigError(f"MachineConfig.{name}={getattr(cfg, name)!r} is not a bool")
    if not isinstance(cfg.nodes, (list, tuple)):
        raise ConfigError(f"MachineConfig.nodes={cfg.nodes!r} is not a list of NodeConfig")
    for nid, nc in enumerate(cfg.nodes):
        if not isinstance(nc, NodeConfig):
            raise ConfigError(f"MachineConfig.nodes[{nid}]={nc!r} is not a NodeConfig")
        if not isinstance(nc.boot, (list, tuple)):
            raise ConfigError(f"node {nid} boot={nc.boot!r}: expected a list of (start, size)")
        for r in nc.boot:
            if (not isinstance(r, (list, tuple)) or len(r) != 2
                    or not all(_is_int(x) for x in r)):
                raise ConfigError(f"node {nid} boot range {r!r}: expected (start, size) in "
                                  "integer bytes")
            if r[0] < 0:
                raise ConfigError(f"node {nid} boot range {r!r} starts below 0")
    n = len(cfg.nodes)
    if cfg.distance is not None:
        d = cfg.distance
        if (not isinstance(d, (list, tuple)) or len(d) != n
                or any(not isinstance(row, (list, tuple)) or len(row) != n for row in d)
                or not all(_is_int(x) and x > 0 for row in d for x in row)):
            raise ConfigError(f"MachineConfig.distance: expected a {n}x{n} matrix of positive "
                              "integers (the SLIT, node_distance())")
    if not isinstance(cfg.strategy, str) and not hasattr(cfg.strategy, "plan"):
        raise ConfigError(f"MachineConfig.strategy={cfg.strategy!r} is not a strategy")


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
        self.free_area = FreeArea(machine.mem_map, machine.pageblock_flags,
                                  machine.arch.nr_page_orders, machine.arch.pageblock_order)

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

    def counters(self):
        return (self.zone_start_pfn, self.spanned_pages, self.present_pages,
                self.present_early_pages, self.managed_pages, self.free_pages)


class Node:
    """struct pglist_data: zones, span, N_MEMORY state."""

    def __init__(self, machine, nid, cfg):
        self.nid, self.cpus = nid, cfg.cpus
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


class Machine:
    """A booted machine. Build it from a MachineConfig (or keyword overrides)."""

    def __init__(self, config: MachineConfig | None = None, *, backend=None, **overrides):
        cfg = config or MachineConfig()
        if not isinstance(cfg, MachineConfig):
            raise ConfigError(f"config={cfg!r} is not a MachineConfig")
        if overrides:
            unknown = sorted(set(overrides) - set(MachineConfig.__dataclass_fields__))
            if unknown:
                raise ConfigError(f"unknown MachineConfig field {unknown[0]!r}")
            cfg = MachineConfig(**{**cfg.__dict__, **overrides})
        _validate_config(cfg)
        self.config = cfg
        self.kernel = tuple(int(k) for k in cfg.kernel)
        self.arch = get_arch(cfg.arch, struct_page_size=cfg.struct_page_size)
        self.kernels = backends.get_backend(backend)
        self.default_strategy = get_strategy(cfg.strategy)
        if cfg.online_policy not in self.ONLINE_POLICIES:
            raise ConfigError(f"online_policy={cfg.online_policy!r}: expected one of "
                              f"{', '.join(self.ONLINE_POLICIES)} (memory_hotplug.online_policy)")
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
        self._vmemmap = mmap.mmap(-1, self.max_pfn * P.PAGE_DTYPE.itemsize,
                                  flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)
        self.mem_map = np.frombuffer(self._vmemmap, dtype=P.PAGE_DTYPE)
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
        self.nodes = [Node(self, nid, nc) for nid, nc in enumerate(cfg.nodes)]
        n = len(self.nodes)
        self.distance = cfg.distance or [[10 if i == j else 20 for j in range(n)] for i in range(n)]
        self.ranges: dict[int, AddedRange] = {}
        self._next_range_id = 0
        # vmemmap backing: granule index -> (kind, pfn, order, nid); kind is
        # "memblock" (boot), "buddy" (classic hotplug) or "altmap" (self-hosted).
        self.vmemmap_granules: dict[int, tuple] = {}
        self.vmemmap_tables: dict[int, int] = {}    # PMD-table index -> backing pfn (-1 boot)
        self.nr_memmap_pages = 0                      # /proc/vmstat (v6.11+)
        self.nr_memmap_boot_pages = 0
        self.pagetable_pages = 0                      # vmemmap page tables from the buddy
        self.min_free_kbytes = 0
        self.online_kernel_alloc_pfns = []            # see _kernel_allocs_after_online()
        self.kobj_pfns = {}                           # range id -> _alloc_block_kobjs() pages
        self.rng = np.random.default_rng(cfg.seed)
        self._next_owner = OWNER_AUTO_BASE
        self._boot(cfg)

    # ==================================================================================
    # geometry helpers
    # ==================================================================================
    def fmt_range(self, start_pfn, nr_pages):
        ps = self.arch.page_shift
        return f"[mem {start_pfn << ps:#018x}-{((start_pfn + nr_pages) << ps) - 1:#018x}]"

    def pfn(self, addr):
        return _int_arg(addr, "address") >> self.arch.page_shift

    def block_id(self, pfn):
        return _int_arg(pfn, "pfn") // self.block_pages

    def blocks_in(self, start_pfn, nr_pages):
        start_pfn = _int_arg(start_pfn, "blocks_in: start_pfn", 0, self.max_pfn + 1)
        nr_pages = _int_arg(nr_pages, "blocks_in: nr_pages", 0, self.max_pfn - start_pfn + 1)
        return self.blocks[start_pfn // self.block_pages:(start_pfn + nr_pages) // self.block_pages]

    def range_at(self, pfn):
        pfn = _int_arg(pfn, "range_at: pfn", 0, self.max_pfn)
        rid = self.blocks["range_id"][self.block_id(pfn)]
        return self.ranges.get(int(rid))

    def zone(self, nid, zid):
        self._check_nid(nid)
        zid = _int_arg(zid, "zone index", 0, P.MAX_NR_ZONES, cls=ConfigError)
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

    def _zone_of_kernel(self, pfn):
        """The kernel zone (DMA/DMA32/Normal) a pfn falls in by address (zone limits)."""
        addr = pfn << self.arch.page_shift
        dma, dma32 = self.arch.zone_limits
        if dma and addr < dma:
            return P.ZONE_DMA
        if dma32 and addr < dma32:
            return P.ZONE_DMA32
        return P.ZONE_NORMAL

    # ==================================================================================
    # boot
    # ==================================================================================
    def _boot(self, cfg):
        """Boot-time memory init: memblock, sparse_init(), free_area_init(), memblock_free_all().

        Boot memmaps come from memblock on their node (top-down), are present but never
        managed (PG_reserved); so is `kernel_reserved` (kernel image, memblock allocations).
        Every boot pageblock starts MIGRATE_MOVABLE (memmap_init_range()).
        """
        a = self.arch
        pps = a.pages_per_section
        seen = []
        for nid, nc in enumerate(cfg.nodes):
            for start, size in nc.boot:
                s, e = self.pfn(start), self.pfn(start + size)
                if start % a.page_size or size % a.page_size or size <= 0:
                    raise ConfigError(f"node {nid} boot range {start:#x}+{size:#x} is not whole pages")
                if e > self.max_pfn:
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
                self.sections[sec] = (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP |
                                      SECTION_IS_ONLINE | SECTION_IS_EARLY)
                self.section_nid[sec] = nid
                for z, zs, ze in self._split_by_zone(s, e):
                    zone = self.zone(nid, z)
                    zone.grow(zs, ze)
                    zone.boot_span = (zone.zone_start_pfn, zone.zone_end_pfn)
                    zone.present_pages += ze - zs
                    zone.present_early_pages += ze - zs
                    mm = self.mem_map[zs:ze]
                    mm["flags"] = (nid << P.NODES_PGSHIFT) | (z << P.ZONES_PGSHIFT) | P.PG_reserved
                    mm["refcount"] = 1
                    pb = a.pageblock_order
                    self.pageblock_flags[zs >> pb:-(-ze >> pb)] = P.MIGRATE_MOVABLE
        # Boot memmap: memblock, per present section, on the section's node, top-down.
        reserved = np.zeros(0, dtype=np.int64)
        for nid, nc in enumerate(cfg.nodes):
            secs = np.nonzero((self.section_nid == nid) & (self.sections > 0))[0]
            top = max((self.pfn(s + n) for s, n in nc.boot), default=0)
            for sec in secs:
                for g in self._granules_of_section(int(sec)):
                    if g in self.vmemmap_granules:
                        continue
                    gp = self._granule_pages
                    top -= gp
                    self.vmemmap_granules[g] = ("memblock", top, 0, nid)
                    reserved = np.append(reserved, np.arange(top, top + gp))
                self.nr_memmap_boot_pages += a.memmap_pages(pps)
                for t in self._tables_of_section(int(sec)):
                    self.vmemmap_tables.setdefault(t, -1)
        # kernel image and other memblock reservations, from the start of node 0's RAM
        s0 = self.pfn(cfg.nodes[0].boot[0][0]) if cfg.nodes[0].boot else 0
        nres = self.pfn(cfg.kernel_reserved)
        low = []
        if self.arch.name == "x86_64":
            # x86 reserves all of the first 1 MiB (setup_arch(): "Always reserve the first
            # 1M of RAM", v5.13+; reserve_real_mode() before) and loads the kernel at
            # CONFIG_PHYSICAL_START = 16 MiB. Both are physical addresses, not offsets
            # into the first range (which starts at 4 KiB on PC firmware: pfn 0 is BIOS).
            low = [np.arange(0, self.pfn(1 * MiB))]
            s0 = max(s0, self.pfn(16 * MiB))
        fixed = np.unique(np.concatenate([reserved, np.arange(s0, s0 + nres)] + low))
        # Calibrated per-zone reservations, then the pages freed after the boot
        # watermarks (NodeConfig), each top-down in its zone like memblock_alloc().
        extra, late = [], []
        taken = fixed
        for key, out in (("reserved", extra), ("late_free", late)):
            for nid, nc in enumerate(cfg.nodes):
                for zname, n in self._zone_table(nid, nc, key).items():
                    got = self._take_top(nid, zname, n, taken, key)
                    out.append(got)
                    taken = np.union1d(taken, got)
        late = np.unique(np.concatenate(late)) if late else np.zeros(0, dtype=np.int64)
        self._boot_reserved_pfns = taken
        self._boot_holes = self._find_boot_holes(cfg)
        # memblock_free_all(): everything else goes to the buddy, in aligned chunks.
        res_mask_ranges = self._boot_reserved_pfns
        for nid, nc in enumerate(cfg.nodes):
            for start, size in nc.boot:
                for z, zs, ze in self._split_by_zone(self.pfn(start), self.pfn(start + size)):
                    zone = self.zone(nid, z)
                    r = res_mask_ranges[(res_mask_ranges >= zs) & (res_mask_ranges < ze)]
                    free = np.ones(ze - zs, dtype=bool)
                    free[r - zs] = False
                    zone.managed_pages += int(free.sum())
                    for fs, fe in _runs(free):
                        self._free_pages_core(zone, zs + fs, zs + fe)
        # Boot memory blocks exist and are online (memory_dev_init()).
        for nid, nc in enumerate(cfg.nodes):
            for start, size in nc.boot:
                s, e = self.pfn(start), self.pfn(start + size)
                for b in range(s // self.block_pages, -(-e // self.block_pages)):
                    row = self.blocks[b]
                    row["state"], row["nid"], row["boot"] = MEM_ONLINE, nid, True
                    row["online_type"] = MMOP_ONLINE
                    zones = set()
                    for s2, e2 in nc.boot:          # every range of the node in the block
                        bs = max(self.pfn(s2), b * self.block_pages)
                        be = min(self.pfn(s2 + e2), (b + 1) * self.block_pages)
                        if bs < be:
                            zones |= {z for z, _, _ in self._split_by_zone(bs, be)}
                    row["zone"] = zones.pop() if len(zones) == 1 else -1
        for nid, nc in enumerate(cfg.nodes):
            if nc.boot and not sum(z.managed_pages for z in self.nodes[nid].zones):
                raise ConfigError(
                    f"node {nid}: its boot memory leaves no page to the buddy allocator after "
                    f"the memmap (struct_page_size={cfg.struct_page_size}) and the memblock "
                    f"reservations (kernel_reserved={cfg.kernel_reserved:#x}); "
                    "memblock_free_all() would free nothing")
        # postcore_initcall(init_per_zone_wmark_min), then hugepage_init()
        # (subsys_initcall) starting khugepaged, which raises min_free_kbytes.
        self._user_min_free_kbytes = None
        self._khugepaged = False
        self.setup_per_zone_wmarks()
        self._hugepage_init()
        # free_initrd_mem(), free_initmem(), ...: managed again, watermarks unchanged.
        if len(late):
            mask = np.zeros(int(late[-1]) - int(late[0]) + 1, dtype=bool)
            mask[late - late[0]] = True
            for fs, fe in _runs(mask):
                a0, a1 = int(late[0]) + fs, int(late[0]) + fe
                for z, zs, ze in self._split_by_zone(a0, a1):
                    zone = self.zone(self._page_nid(zs), z)
                    zone.managed_pages += ze - zs
                    self._free_pages_core(zone, zs, ze)
            self._boot_reserved_pfns = np.setdiff1d(self._boot_reserved_pfns, late)
        if cfg.sysctl_read_lowmem_reserve_ratio:
            self._setup_lowmem_reserve()
        if cfg.min_free_kbytes is not None:
            # A write to /proc/sys/vm/min_free_kbytes after boot:
            # min_free_kbytes_sysctl_handler() sets user_min_free_kbytes and the
            # watermarks (not lowmem_reserve).
            self._user_min_free_kbytes = self.min_free_kbytes = cfg.min_free_kbytes
            self._setup_wmarks()
        # What the running kernel holds after boot (slab, page cache, ...).
        # spread over the nodes that have memory: a memoryless node holds none of it
        with_mem = [nid for nid, nc in enumerate(cfg.nodes) if nc.boot]
        for nid in with_mem:
            share = 1 / len(with_mem)
            for gfp, nbytes in (("kernel", cfg.boot_used_unmovable), ("movable", cfg.boot_used_movable)):
                n = int(self.pfn(int(nbytes * share)))
                if n:
                    got = self._alloc_pages(nid, 0, gfp, n, OWNER_BOOT, strict_node=True)
                    if len(got) < n:
                        raise ConfigError(f"boot_used_{gfp}={nbytes:#x} does not fit in node {nid}'s "
                                          "free memory above the min watermark")
        for nid, nc in enumerate(cfg.nodes):
            for zname, n in self._zone_table(nid, nc, "used").items():
                zid = ZONE_NAMES.index(zname)
                got = self._alloc_pages(nid, 0, "kernel", n, OWNER_BOOT, strict_node=True,
                                        exclude=lambda z, zid=zid: z.zid != zid)
                if len(got) < n:
                    raise ConfigError(f"node {nid} used {zname}={n} pages: the zone has only "
                                      f"{len(got)} free pages above its min watermark")

    _BOOT_ZONES = ("DMA", "DMA32", "Normal")

    def _zone_table(self, nid, nc, key):
        """NodeConfig.<key> checked: boot zone names of this arch -> pages >= 0."""
        tab = getattr(nc, key) or {}
        if not isinstance(tab, dict):
            raise ConfigError(f"node {nid} {key}: expected a table of zone name -> pages, got {tab!r}")
        out = {}
        for zname, n in tab.items():
            if zname not in self._BOOT_ZONES:
                raise ConfigError(f"node {nid} {key}: unknown zone {zname!r}; boot memory is in "
                                  f"{', '.join(self._BOOT_ZONES)}")
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ConfigError(f"node {nid} {key}.{zname}={n!r}: expected a page count >= 0")
            if n:
                out[zname] = int(n)
        return out

    def _take_top(self, nid, zname, n, taken, key):
        """The `n` highest present pfns of node `nid`'s zone `zname` that `taken` does not
        hold (memblock allocates top-down)."""
        zid = ZONE_NAMES.index(zname)
        pieces = sorted(((zs, ze) for s, size in self.config.nodes[nid].boot
                         for z, zs, ze in self._split_by_zone(self.pfn(s), self.pfn(s + size))
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

    def _find_boot_holes(self, cfg):
        """[start, end) pfn runs inside present boot sections that no boot range covers:
        pages of the section that are not present (no zone, never initialised)."""
        pps = self.arch.pages_per_section
        ranges = sorted((self.pfn(s), self.pfn(s + n)) for nc in cfg.nodes for s, n in nc.boot)
        early = (self.sections & SECTION_IS_EARLY) != 0
        holes = []
        for a, b in _runs(early):
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

    def _split_by_zone(self, s, e):
        """Pieces of [s, e) per kernel zone (DMA/DMA32/Normal by the arch's limits)."""
        out, p = [], s
        cuts = sorted({self.pfn(x) for x in self.arch.zone_limits if x})
        while p < e:
            z = self._zone_of_kernel(p)
            q = min([c for c in cuts if c > p] + [e])
            out.append((z, p, q))
            p = q
        return out

    def _free_pages_core(self, zone, s, e):
        """__free_pages_core() over [s, e): largest aligned chunks into the buddy."""
        mm = self.mem_map[s:e]
        mm["flags"] &= ~np.uint32(P.FLAGS_MASK)
        mm["refcount"] = 0
        max_order = self.arch.max_page_order
        fa = zone.free_area
        p = s
        while p < e:
            order = max_order if p == 0 else min(max_order, (p & -p).bit_length() - 1)
            while p + (1 << order) > e:
                order -= 1
            fa.py_free_one_page(p, order)
            p += 1 << order

    # ==================================================================================
    # vmemmap geometry (mm/sparse-vmemmap.c, arch/x86/mm/init_64.c)
    # ==================================================================================
    @property
    def _granule_bytes(self):
        """Size of one vmemmap leaf mapping: a PMD when the memmap of one section fills
        whole PMDs (x86 PSE, arm64 4K, s390 segments), else a base page."""
        a = self.arch
        if a.vmemmap_pmd and a.memmap_bytes(a.pages_per_section) >= a.pmd_size:
            return a.pmd_size
        return a.page_size

    @property
    def _granule_pages(self):
        return self._granule_bytes >> self.arch.page_shift

    def _granules_of_section(self, sec):
        a = self.arch
        g = self._granule_bytes
        va0 = sec * a.pages_per_section * a.struct_page_size
        va1 = va0 + a.pages_per_section * a.struct_page_size
        return range(va0 // g, -(-va1 // g))

    def _tables_of_section(self, sec):
        """Page-table pages that map the section's vmemmap leaves: one PMD table per
        PUD_SIZE of vmemmap VA (x86: 1 GiB of VA = 64 GiB of memory). Base-page leaves
        also need PTE tables; those are folded into the same count per PMD of VA."""
        a = self.arch
        pud_shift = a.pmd_shift + (a.page_shift - 3)
        va0 = sec * a.pages_per_section * a.struct_page_size
        va1 = va0 + a.pages_per_section * a.struct_page_size
        if self._granule_bytes == a.pmd_size:
            return range(va0 >> pud_shift, ((va1 - 1) >> pud_shift) + 1)
        # PTE tables: one per PMD of VA, tagged apart from the PMD tables
        return range((1 << 40) + (va0 >> a.pmd_shift), (1 << 40) + ((va1 - 1) >> a.pmd_shift) + 1)

    # ==================================================================================
    # page allocator (mm/page_alloc.c)
    # ==================================================================================
    def zonelist(self, nid, highest_zone):
        """The node's zonelist: nodes by distance (build_zonelists(): ties by id), each
        node's zones from `highest_zone` down, populated ones only."""
        order = sorted(range(len(self.nodes)), key=lambda n: (self.distance[nid][n], n != nid, n))
        return [self.nodes[n].zones[z] for n in order for z in range(highest_zone, -1, -1)
                if self.nodes[n].zones[z].managed_pages]

    def alloc_pages(self, nid, order, gfp="kernel", count=1, owner=None, strict_node=False,
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
        self._check_nid(nid)
        order = _int_arg(order, "alloc_pages: order", 0, self.arch.max_page_order + 1,
                         cls=ConfigError)
        count = _int_arg(count, "alloc_pages: count", 0)
        if not isinstance(gfp, str) or gfp not in GFP:
            raise ConfigError(f"unknown gfp {gfp!r}; expected one of {', '.join(GFP)}")
        if owner is None:
            owner = self._next_owner
            self._next_owner += 1
        else:
            owner = _int_arg(owner, "alloc_pages: owner", 0, 1 << 64)
            if owner == OWNER_VMEMMAP:
                raise ConfigError(f"alloc_pages: owner={owner} is the tag of the machine's "
                                  "vmemmap pages (OWNER_VMEMMAP); pick another")
        if not isinstance(strict_node, (bool, np.bool_)):
            raise ConfigError(f"alloc_pages: strict_node={strict_node!r} is not a bool")
        if exclude is not None and not callable(exclude):
            raise ConfigError(f"alloc_pages: exclude={exclude!r} is not callable")
        extra_flags = _int_arg(extra_flags, "alloc_pages: extra_flags", 0, 1 << 32)
        got = self._alloc_pages(nid, order, gfp, count, owner, strict_node, exclude, extra_flags)
        return Allocation(got, owner, order)

    def _alloc_pages(self, nid, order, gfp, count, owner, strict_node=False, exclude=None,
                     extra_flags=0):
        """alloc_pages() without the argument checks, for the machine's own allocations
        (vmemmap, page tables, migration targets). Returns a plain array of head pfns."""
        highest, mt, flags = GFP[gfp]
        flags |= extra_flags
        out = np.empty(count, dtype=np.int64)
        n = 0
        for zone in self.zonelist(nid, highest):
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

    def find_allocation(self, allocation):
        """The head pfns where the blocks of an Allocation (or an owner tag) are now, in pfn
        order: what page_owner's dump would list for the allocation (mm/page_owner.c)."""
        owner = self._owner_of(allocation)
        from pagecore._buddy import owned_heads
        out = []
        for z in self.zones():
            if not z.spanned_pages:
                continue
            bits = (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)
            for lo, hi in self._present_runs(z.zone_start_pfn, z.zone_end_pfn):
                idx, _ = owned_heads(self.mem_map[lo:hi], bits, owner, 1)
                out.append(idx + lo)
        return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)

    def _owner_of(self, allocation):
        if isinstance(allocation, Allocation):
            if allocation.owner is None:
                raise ConfigError("a slice of an Allocation is plain pfns, not an allocation: "
                                  "pass the Allocation alloc_pages() returned")
            return allocation.owner
        return _int_arg(allocation, "owner", 0, 1 << 64)

    def _present_runs(self, lo, hi):
        """[start, end) pfn runs of present sections inside [lo, hi)."""
        pps = self.arch.pages_per_section
        s0, s1 = lo // pps, -(-hi // pps)
        present = (self.sections[s0:s1] & SECTION_MARKED_PRESENT) != 0
        return [(max(lo, (s0 + a) * pps), min(hi, (s0 + b) * pps)) for a, b in _runs(present)]

    def free_pages(self, pfns):
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
            heads = self.find_allocation(pfns)
            if not len(heads):
                raise StateError(f"free_pages: allocation with owner tag {pfns.owner:#x} has "
                                 "no allocated block left (freed already?)")
            pfns = heads
        else:
            pfns = _int_array(pfns, "free_pages: pfns")
        if not len(pfns):
            return 0
        self._check_free(pfns)
        return self._free_blocks(pfns)

    def _check_free(self, pfns):
        out = (pfns < 0) | (pfns >= self.max_pfn)
        if out.any():
            raise RangeError(f"free_pages: pfn {int(pfns[out][0]):#x} is outside the physical "
                             f"address space (max_pfn {self.max_pfn:#x})", pfn=int(pfns[out][0]))
        secs = self.sections[pfns // self.arch.pages_per_section]
        absent = (secs & SECTION_MARKED_PRESENT) == 0
        if absent.any():
            p = int(pfns[absent][0])
            raise StateError(f"free_pages: pfn {p:#x} is not in a present section "
                             "(pfn_valid() false)", pfn=p)
        dup = _first_duplicate(pfns)
        if dup is not None:
            raise StateError(f"free_pages: pfn {dup:#x} is given twice: the second would be a "
                             "double free (free_pages_prepare(): 'Bad page state'); nothing "
                             "freed", pfn=dup)
        mm = self.mem_map[pfns]
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

    def _free_blocks(self, pfns):
        """__free_pages() of head pfns already known to be allocated block heads."""
        pfns = np.ascontiguousarray(pfns, dtype=np.int64)
        if not len(pfns):
            return 0
        mm = self.mem_map[pfns]
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
            zone = self.zone((k >> P.NODES_PGSHIFT) & P.NODES_MASK,
                             (k >> P.ZONES_PGSHIFT) & P.ZONES_MASK)
            freed += zone.free_area.free_bulk(sel)
        return freed

    # ---- watermarks (mm/page_alloc.c, mm/khugepaged.c) ---------------------------------
    #: v6.1 counts ZONE_MOVABLE in lowmem_pages and gives it its proportional share of
    #: min; v6.12 leaves it out and clamps its min to [SWAP_CLUSTER_MAX, 128]
    #: (__setup_per_zone_wmarks(): both sources read side by side; the change is
    #: between the two, first released after v6.1, so pagecore keys it on >= 6.2).
    MOVABLE_WMARK_CLAMP_SINCE = (6, 2)
    #: sysctl_lowmem_reserve_ratio: DMA, DMA32, Normal, Movable (mm/page_alloc.c;
    #: the same in v6.1 and v6.12; HIGHMEM does not exist on 64-bit).
    LOWMEM_RESERVE_RATIO = (256, 256, 32, 0)

    def setup_per_zone_wmarks(self):
        """init_per_zone_wmark_min() (mm/page_alloc.c, v6.1 and v6.12), which online_pages()
        and offline_pages() call after every change: calculate_min_free_kbytes(),
        __setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve(), then
        khugepaged_min_free_kbytes_update(), which re-applies THP's
        set_recommended_min_free_kbytes() while khugepaged runs."""
        self._calculate_min_free_kbytes()
        self._setup_wmarks()
        self._setup_lowmem_reserve()
        if self._khugepaged:
            self._set_recommended_min_free_kbytes()

    def _nr_free_buffer_pages(self):
        """nr_free_buffer_pages(): managed pages above the high watermark in the zones
        GFP_USER may use (<= ZONE_NORMAL), over the zonelist (every node)."""
        return sum(max(z.managed_pages - z.watermark[2], 0) for z in self.zones()
                   if z.zid <= P.ZONE_NORMAL)

    def _calculate_min_free_kbytes(self):
        """calculate_min_free_kbytes() (mm/page_alloc.c, v5.8+ bounds): int_sqrt(lowmem_kb
        * 16) clamped to [128, 262144]; a value written to the sysctl
        (user_min_free_kbytes) is kept unless the new one is larger."""
        kb = self.arch.page_size >> 10
        new = _isqrt(self._nr_free_buffer_pages() * kb * 16)
        user = self._user_min_free_kbytes
        if user is None or new > user:
            self.min_free_kbytes = min(max(new, 128), 262144)

    def _setup_wmarks(self):
        """__setup_per_zone_wmarks() (mm/page_alloc.c): min is the zone's share of
        min_free_kbytes by managed pages among the lowmem zones; the low/high/promo step
        is max(share / 4, managed * watermark_scale_factor / 10000). ZONE_MOVABLE: see
        MOVABLE_WMARK_CLAMP_SINCE."""
        kb = self.arch.page_size >> 10
        zones = self.zones()
        pages_min = self.min_free_kbytes // kb
        clamp_movable = self.kernel >= self.MOVABLE_WMARK_CLAMP_SINCE
        lowmem = sum(z.managed_pages for z in zones
                     if not (clamp_movable and z.zid == P.ZONE_MOVABLE))
        wsf = self.config.watermark_scale_factor
        for z in zones:
            tmp = pages_min * z.managed_pages // lowmem if lowmem else 0
            if clamp_movable and z.zid == P.ZONE_MOVABLE:
                wmin = min(max(z.managed_pages // 1024, 32), 128)   # SWAP_CLUSTER_MAX..128
            else:
                wmin = tmp
            step = max(tmp >> 2, z.managed_pages * wsf // 10000)     # mult_frac()
            z.watermark = [wmin, wmin + step, wmin + 2 * step]

    def _setup_lowmem_reserve(self):
        """setup_per_zone_lowmem_reserve() (mm/page_alloc.c, v6.1 and v6.12): reserve[j] =
        managed pages of the zones above, up to j, / the zone's ratio; all 0 when the ratio
        is 0 or the zone itself has no managed pages (`clear`)."""
        ratio = self.LOWMEM_RESERVE_RATIO
        for node in self.nodes:
            for i, z in enumerate(node.zones):
                acc = 0
                z.lowmem_reserve = [0] * P.MAX_NR_ZONES
                clear = not ratio[i] or not z.managed_pages
                for j in range(i + 1, P.MAX_NR_ZONES):
                    acc += node.zones[j].managed_pages
                    z.lowmem_reserve[j] = 0 if clear else acc // ratio[i]

    @property
    def thp_enabled(self):
        """hugepage_flags_enabled() (v6.1) / hugepage_pmd_enabled() (v6.12): "always" or
        "madvise", unless hugepage_init() turned THP off on a small machine."""
        return self._thp_mode != "never"

    def _hugepage_init(self):
        """hugepage_init() (mm/huge_memory.c, v6.1 and v6.12): THP is off by default when
        totalram_pages() < 512 MiB; otherwise start_stop_khugepaged() starts khugepaged
        and calls set_recommended_min_free_kbytes()."""
        if self.config.thp not in THP_MODES:
            raise ConfigError(f"thp={self.config.thp!r}: expected one of {', '.join(THP_MODES)} "
                              "(/sys/kernel/mm/transparent_hugepage/enabled)")
        self._thp_mode = self.config.thp
        if self.mem_total_pages < (512 * MiB) >> self.arch.page_shift:
            self._thp_mode = "never"
            return
        self._khugepaged = self.thp_enabled
        self._set_recommended_min_free_kbytes()

    def _set_recommended_min_free_kbytes(self):
        """set_recommended_min_free_kbytes() (mm/khugepaged.c, v6.1 and v6.12): with THP
        enabled, at least 2 + MIGRATE_PCPTYPES^2 = 11 pageblocks per populated zone that
        GFP_USER may use (ZONE_MOVABLE is not counted: it holds only movable pages), but
        no more than 5% of nr_free_buffer_pages(); it only ever raises min_free_kbytes.
        THP off: calculate_min_free_kbytes(). Then the watermarks again."""
        if not self.thp_enabled:
            self._calculate_min_free_kbytes()
        else:
            nr_zones = sum(1 for z in self.zones() if z.present_pages and z.zid <= P.ZONE_NORMAL)
            pb = self.arch.pageblock_nr_pages
            rec = pb * nr_zones * 2 + pb * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
            rec = min(rec, self._nr_free_buffer_pages() // 20)
            rec <<= self.arch.page_shift - 10
            if rec > self.min_free_kbytes:
                self.min_free_kbytes = rec
        self._setup_wmarks()

    # ==================================================================================
    # hot-add (mm/memory_hotplug.c: add_memory_resource(), __add_pages())
    # ==================================================================================
    def _check_nid(self, nid):
        if not _is_int(nid) or not 0 <= nid < len(self.nodes):
            raise ConfigError(f"node {nid!r} does not exist (nodes 0..{len(self.nodes) - 1})")

    def _check_range(self, start, size, what):
        """check_hotplug_memory_range(): block-aligned, inside the address space."""
        bs = self.block_size
        start = _int_arg(start, f"{what}: start")
        size = _int_arg(size, f"{what}: size")
        if size <= 0 or start < 0:
            raise RangeError(f"{what}: empty or negative range start={start:#x} size={size:#x}")
        if start % bs or size % bs:
            raise RangeError(f"{what}: range start={start:#x} size={size:#x} is not aligned to the "
                             f"memory block size {bs:#x} (check_hotplug_memory_range())")
        if (start + size) >> self.arch.page_shift > self.max_pfn:
            raise RangeError(f"{what}: range end {start + size:#x} is beyond the "
                             f"{self.config.phys_bits}-bit physical address space (max_pfn "
                             f"{self.max_pfn:#x})")
        return self.pfn(start), self.pfn(size)

    def add_memory(self, nid, start, size, strategy=None, online=None):
        """add_memory(nid, start, size, MHP_MEMMAP_ON_MEMORY per strategy), then optionally
        online every new block ("online", "online_kernel", "online_movable"), as the
        auto-online policy does. Returns the AddedRange."""
        self._check_nid(nid)
        strategy = get_strategy(strategy or self.default_strategy)
        start_pfn, nr_pages = self._check_range(start, size, "add_memory")
        # the auto-online policy (memhp_default_state, online_policy): "offline" or None
        # leaves the blocks offline; anything else must be an online type
        if online is not None and not (isinstance(online, str) and online == "offline"):
            online = self._parse_online_type(online)
        else:
            online = None
        busy = self.blocks_in(start_pfn, nr_pages)["state"] != 0
        if busy.any():
            b = start_pfn // self.block_pages + int(np.argmax(busy))
            raise RangeError(f"add_memory: {self.fmt_range(start_pfn, nr_pages)} overlaps present memory "
                             f"(memory block {b}); register_memory_resource(): -EEXIST")
        from itertools import groupby
        units = self._check_plan(strategy, strategy.plan(self, start_pfn, nr_pages),
                                 start_pfn, nr_pages)
        kobj = self._alloc_block_kobjs(nid, nr_pages // self.block_pages)
        rid = self._next_range_id
        rng = AddedRange(rid, start_pfn, nr_pages, nid, strategy,
                         self_hosted=any(u.altmap_free for u in units))
        done = []          # undo log of (section, granules, tables) for rollback
        saved = self._save_pageblocks()
        try:
            # one batched arch_add_memory() per run of units of one kind
            for _, run in groupby(units, key=lambda u: bool(u.altmap_free)):
                self._arch_add_memory(nid, list(run), rng, done)
        except PagecoreError:
            self._undo_add(done)
            self._restore_pageblocks(saved)
            self.free_pages(kobj)
            raise
        self._next_range_id += 1
        self.ranges[rid] = rng
        self.kobj_pfns[rid] = kobj
        # Host side only: back the new struct pages with transparent huge pages where
        # they fill whole 2 MiB of the vmemmap (the range's interior; holes and partial
        # ends stay on base pages, so host memory stays ~16 B per present page). First
        # touch then costs one fault and one kernel clear per 2 MiB instead of 512.
        isz, thp = P.PAGE_DTYPE.itemsize, 2 * MiB
        lo = -(-start_pfn * isz // thp) * thp
        hi = (start_pfn + nr_pages) * isz // thp * thp
        if hi > lo and hasattr(mmap, "MADV_HUGEPAGE"):
            try:
                self._vmemmap.madvise(mmap.MADV_HUGEPAGE, lo, hi - lo)
            except OSError:         # THP not built in: base pages, same results
                pass
        if strategy.seed_v3 and rng.self_hosted:
            # mhp_mark_vmemmap_pages(): one run at the start of the range (seed 4/5).
            nr_sects = nr_pages // self.arch.pages_per_section
            self.kernels.mark_vmemmap_pages(self.mem_map, start_pfn, rng.alloc, nr_sects)
        if online:
            self.online_pages_blocks(range(start_pfn // self.block_pages,
                                           (start_pfn + nr_pages) // self.block_pages), online)
        return rng

    def _alloc_block_kobjs(self, nid, nblocks):
        """The kernel objects add_memory() creates besides the memmap: the resource
        (register_memory_resource()), and per block a struct memory_block with its
        struct device and sysfs/kernfs nodes (create_memory_block_devices(),
        drivers/base/memory.c; the same in v6.1 and v6.12). Slab memory, from existing
        memory on the CPU's node in every memmap mode, self-hosted included.
        MachineConfig.hotplug_kobj_bytes_per_block rounds it to pages per call; 5 KiB per
        block is what the recorded Debian guests show: beyond the memmap, free + pcp pages
        drop by 40-47 pages for a 32-block DIMM (kv-large), 5-9 for 4 blocks
        (kv-multi-block) and 0-5 for one block (slab pages already partly free absorb
        small calls). A refused allocation is -ENOMEM before anything is added."""
        n = -(-nblocks * self.config.hotplug_kobj_bytes_per_block // self.arch.page_size)
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        cpu_nid = nid if self.nodes[nid].cpus else next(
            (x.nid for x in self.nodes if x.cpus), nid)
        # A fresh owner tag: free_pages() of this Allocation frees exactly these pages.
        got = self.alloc_pages(cpu_nid, 0, "kernel", count=n)
        if len(got) < n:
            self.free_pages(got)
            raise OutOfMemoryError(f"add_memory: no memory for the {nblocks} memory block "
                                   f"devices ({n} pages of kernel objects): -ENOMEM")
        return got

    def _check_plan(self, strategy, units, start_pfn, nr_pages):
        """A strategy's plan() must cut [start_pfn, +nr_pages) into consecutive AddUnits of
        whole memory blocks (arch_add_memory() is called per memory block range,
        add_memory_resource()), each with an altmap of 0..nr_pages pages (vmem_altmap.free,
        at most the unit: mhp_supports_memmap_on_memory()) and 0 <= waste <= altmap."""
        from pagecore.strategies import AddUnit
        name = getattr(strategy, "name", strategy)
        try:
            units = list(units)
        except TypeError:
            raise ConfigError(f"strategy {name!r}: plan() returned {units!r}, not a list of "
                              "AddUnit") from None
        if not units:
            raise ConfigError(f"strategy {name!r}: plan() returned no AddUnit")
        p, nb = start_pfn, self.block_pages
        for u in units:
            if not isinstance(u, AddUnit):
                raise ConfigError(f"strategy {name!r}: plan() returned {u!r}, not an AddUnit")
            ok_int = all(_is_int(x) for x in (u.start_pfn, u.nr_pages, u.waste)) and \
                (u.altmap_free is None or _is_int(u.altmap_free))
            if not ok_int:
                raise ConfigError(f"strategy {name!r}: {u!r} has a field that is not an integer")
            if u.start_pfn != p or u.nr_pages <= 0 or u.nr_pages % nb:
                raise ConfigError(f"strategy {name!r}: {u!r} does not continue the plan of "
                                  f"{self.fmt_range(start_pfn, nr_pages)} at pfn {p:#x} with whole "
                                  f"memory blocks of {nb} pages")
            alt = u.altmap_free or 0
            if not 0 <= alt <= u.nr_pages or not 0 <= u.waste <= alt:
                raise ConfigError(f"strategy {name!r}: {u!r}: expected 0 <= altmap_free <= "
                                  "nr_pages and 0 <= waste <= altmap_free")
            p += u.nr_pages
        if p != start_pfn + nr_pages:
            raise ConfigError(f"strategy {name!r}: plan() covers {self.fmt_range(start_pfn, p - start_pfn)}"
                              f", not the whole {self.fmt_range(start_pfn, nr_pages)}")
        return units

    def _arch_add_memory(self, nid, units, rng, done):
        """arch_add_memory() -> __add_pages() -> sparse_add_section() for a run of units
        (one AddUnit, or a list of units of one kind: all with an altmap or all without),
        then create_memory_block_devices() for each unit.

        The sections of the run form one stream of events in the kernel's order: per
        section, its new vmemmap page tables, then its new vmemmap leaves. The stream is
        batched: the geometry comes from numpy (_granules_of_section() and
        _tables_of_section() vectorised), altmap leaves from the bump allocator's
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
                self._arch_add_memory(nid, u, rng, done)
            return
        from itertools import repeat
        a = self.arch
        pps, nb = a.pages_per_section, self.block_pages
        gb = self._granule_bytes
        gp = gb >> a.page_shift
        gorder = gp.bit_length() - 1
        mb = a.memmap_bytes(pps)                    # memmap bytes of one section
        seed = rng.strategy.seed_v3
        granules, tables = self.vmemmap_granules, self.vmemmap_tables

        def flat(lo, hi):
            """Concatenated range(lo[i], hi[i]), and the i of each element."""
            c = np.maximum(hi - lo, 0)
            idx = np.repeat(np.arange(len(lo)), c)
            return lo[idx] + np.arange(int(c.sum())) - (np.cumsum(c) - c)[idx], idx

        def fresh(ids, known):
            """The loop's `if x not in known`: first occurrences not yet populated."""
            m = np.zeros(len(ids), dtype=bool)
            if len(ids):
                m[np.unique(ids, return_index=True)[1]] = True
                if known:
                    m[m] = [x not in known for x in ids[m].tolist()]
            return m

        while units:
            with_alt = bool(units[0].altmap_free)
            n = len(units)
            ustart = np.array([u.start_pfn for u in units], dtype=np.int64)
            uend = ustart + np.array([u.nr_pages for u in units], dtype=np.int64)
            ufree = np.array([u.altmap_free or 0 for u in units], dtype=np.int64)
            secs, sec_unit = flat(ustart // pps, uend // pps)
            nsec = len(secs)
            va0 = secs * mb
            g_ids, g_sec = flat(va0 // gb, -(-(va0 + mb) // gb))
            if gb == a.pmd_size:
                pud_shift = a.pmd_shift + (a.page_shift - 3)
                t_ids, t_sec = flat(va0 >> pud_shift, ((va0 + mb - 1) >> pud_shift) + 1)
            else:
                t_ids, t_sec = flat((1 << 40) + (va0 >> a.pmd_shift),
                                    (1 << 40) + ((va0 + mb - 1) >> a.pmd_shift) + 1)
            for i in ({0, nsec - 1} if nsec else ()):    # the vectorised geometry is the methods'
                s = int(secs[i])
                assert (list(self._granules_of_section(s)) == g_ids[g_sec == i].tolist() and
                        list(self._tables_of_section(s)) == t_ids[t_sec == i].tolist()), s
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
                    got = self._alloc_pages(nid, 0, "kernel", 1, OWNER_VMEMMAP)
                    if not len(got):
                        stop = lo
                        break
                    self.mem_map[got[0]]["page_type"] = P.PGTY_TABLE
                    tables[t] = int(got[0])
                    self.pagetable_pages += 1
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
                    got = self._alloc_pages(nid, gorder, "kernel", gj - gi, OWNER_VMEMMAP)
                    ok = gi + len(got)
                    g_nid[gi:ok] = (self.mem_map["flags"][got] >> P.NODES_PGSHIFT) & P.NODES_MASK
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
            self.sections[secs[:stop]] = flag
            self.section_nid[secs[:stop]] = nid
            self.nr_memmap_pages += a.memmap_pages(pps) * stop
            m = min(stop + 1, nsec)
            cut = np.searchsorted(ng_sec[:gi], np.arange(m + 1)).tolist()
            gl = ng_ids[:gi].tolist()
            done.extend((s, gl[cut[i]:cut[i + 1]], new_t.get(i, []))
                        for i, s in enumerate(secs[:m].tolist()))
            # create_memory_block_devices() for the units whose sections are all complete
            nu = int(sec_unit[stop]) if stop < nsec else n
            if nu:
                alloc = ucnt[:nu] * gp if with_alt else np.zeros(nu, dtype=np.int64)
                v = np.zeros(nu, dtype=np.int64)
                if with_alt:
                    v = alloc if seed or rng.strategy.kernel < (6, 6) else ufree[:nu]
                    rng.alloc += int(alloc.sum())
                bl, bu = flat(ustart[:nu] // nb, uend[:nu] // nb)
                off = bl * nb - ustart[bu]
                rows = self.blocks
                rows["state"][bl] = MEM_OFFLINE
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
                alt = VmemAltmap(base_pfn=unit.start_pfn, end_pfn=unit.start_pfn + unit.nr_pages - 1,
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
                for t in self._tables_of_section(sec):
                    if t not in tables:
                        got = self._alloc_pages(nid, 0, "kernel", 1, OWNER_VMEMMAP)
                        if not len(got):
                            raise OutOfMemoryError(f"add_memory: no page for a vmemmap page table "
                                                   f"(section {sec}): -ENOMEM")
                        self.mem_map[got[0]]["page_type"] = P.PGTY_TABLE
                        tables[t] = int(got[0])
                        self.pagetable_pages += 1
                        new_tl.append(t)
                for g in self._granules_of_section(sec):
                    if g in granules:
                        continue
                    granules[g] = self._populate_granule(nid, alt, sec)
                    new_g.append(g)
                self.sections[sec] = flag
                self.section_nid[sec] = nid
                self.nr_memmap_pages += a.memmap_pages(pps)
            v = 0 if alt is None else (alt.alloc if seed or rng.strategy.kernel < (6, 6) else alt.free)
            rng.alloc += 0 if alt is None else alt.alloc
            for b in range(unit.start_pfn // nb, (unit.start_pfn + unit.nr_pages) // nb):
                row = self.blocks[b]
                row["state"], row["nid"], row["zone"], row["range_id"] = MEM_OFFLINE, nid, -1, rng.range_id
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
                            self.blocks[b]["memmap_pages"] += _granule_buddy_pages(kind, order, gp)
                            self.blocks[b]["memmap_nid"] = gnid
            units = units[nu + 1:]

    def _populate_granule(self, nid, alt, sec):
        """vmemmap_populate() for one leaf: from the altmap if there is one (no fallback:
        -ENOMEM), else alloc_pages_node(nid, GFP_KERNEL|__GFP_RETRY_MAYFAIL, order) with
        zonelist fallback, then base pages (vmemmap_populate_hugepages())."""
        gp = self._granule_pages
        order = gp.bit_length() - 1
        if alt is not None:
            pfn = alt.alloc_block_buf(gp)
            if pfn is None:
                raise OutOfMemoryError(f"add_memory: altmap of {alt} exhausted populating "
                                       f"section {sec}: -ENOMEM")
            return ("altmap", pfn, order, alt.base_pfn // self.block_pages)
        got = self._alloc_pages(nid, order, "kernel", 1, OWNER_VMEMMAP)
        if len(got):
            return ("buddy", int(got[0]), order, int(self._page_nid(got[0])))
        if order:
            base = self._alloc_pages(nid, 0, "kernel", gp + 1, OWNER_VMEMMAP)   # + the PTE table
            if len(base) == gp + 1:
                return ("buddy-base", base.tolist(), 0, int(self._page_nid(base[0])))
            self._free_blocks(base)
        raise OutOfMemoryError(f"add_memory: cannot allocate the memmap of section {sec} "
                               f"({gp} pages) on node {nid} or its fallbacks: -ENOMEM")

    def _page_nid(self, pfn):
        return (int(self.mem_map[pfn]["flags"]) >> P.NODES_PGSHIFT) & P.NODES_MASK

    def _free_granule(self, g):
        kind, pfn, order, owner = self.vmemmap_granules.pop(g)
        if kind == "altmap":
            self.blocks["altmap_alloc"][owner] -= 1 << order     # vmem_altmap_free()
        elif kind == "buddy":
            self._free_blocks([pfn])
        elif kind == "buddy-base":
            self._free_blocks(pfn)

    def _undo_add(self, done):
        for sec, new_g, new_t in reversed(done):
            for g in reversed(new_g):
                self._free_granule(g)
            for t in reversed(new_t):
                self._free_table(t)
            if self.sections[sec] & SECTION_MARKED_PRESENT and not self.sections[sec] & SECTION_IS_EARLY:
                self.nr_memmap_pages -= self.arch.memmap_pages(self.arch.pages_per_section)
            self.sections[sec] = 0
            self.section_nid[sec] = -1
        if done:
            pps = self.arch.pages_per_section
            lo, hi = done[0][0] * pps, (done[-1][0] + 1) * pps
            blk = self.blocks[lo // self.block_pages:-(-hi // self.block_pages)]
            blk[blk["state"] == MEM_OFFLINE] = self._empty_block()

    def _free_table(self, t):
        pfn = self.vmemmap_tables.pop(t)
        if pfn >= 0:
            self.mem_map[pfn]["page_type"] = P.PGTY_NONE
            self._free_blocks([pfn])
            self.pagetable_pages -= 1

    @staticmethod
    def _empty_block():
        e = np.zeros(1, dtype=BLOCK_DTYPE)[0]
        e["zone"], e["memmap_nid"], e["range_id"] = -1, -1, -1
        return e

    # ==================================================================================
    # online (drivers/base/memory.c: memory_block_online(); mm/memory_hotplug.c)
    # ==================================================================================
    def zone_for_pfn_range(self, online_type, nid, start_pfn, nr_pages):
        """zone_for_pfn_range() (mm/memory_hotplug.c): "online" follows
        memory_hotplug.online_policy, "contig-zones" (default_zone_for_pfn()) or
        "auto-movable" (auto_movable_zone_for_pfn())."""
        online_type = self._parse_online_type(online_type)
        self._check_nid(nid)
        node = self.nodes[nid]
        if online_type == MMOP_ONLINE_KERNEL:
            return self._default_kernel_zone(nid, start_pfn, nr_pages)
        if online_type == MMOP_ONLINE_MOVABLE:
            return node.zones[P.ZONE_MOVABLE]
        if self.config.online_policy == "auto-movable":
            return self._auto_movable_zone_for_pfn(nid, start_pfn, nr_pages)
        k = self._default_kernel_zone(nid, start_pfn, nr_pages)
        m = node.zones[P.ZONE_MOVABLE]
        ik, im = k.spans(start_pfn, nr_pages), m.spans(start_pfn, nr_pages)
        if ik != im:
            return k if ik else m
        return m if self.config.movable_node else k

    ONLINE_POLICIES = ("contig-zones", "auto-movable")

    def _auto_movable_zone_for_pfn(self, nid, start_pfn, nr_pages):
        """auto_movable_zone_for_pfn() (mm/memory_hotplug.c, v5.15+, the same in v6.1 and
        v6.12). The add_memory() call is the block's static memory group, as ACPI
        (acpi_memory_enable_device()) and dax/kmem register one: anything of it online
        !MOVABLE keeps the rest !MOVABLE; else MOVABLE if all of the group's remaining
        pages could go MOVABLE now and stay within auto_movable_ratio percent of the
        early kernel memory, machine-wide and, with auto_movable_numa_aware, on the
        node. Dynamic groups (virtio-mem units) are treated as static ones too."""
        cfg = self.config
        kernel_zone = self._default_kernel_zone(nid, start_pfn, nr_pages)
        if not cfg.auto_movable_ratio:
            return kernel_zone
        rng, nb = self.range_at(start_pfn), self.block_pages
        if rng is not None:
            bl = self.blocks[rng.start_pfn // nb:(rng.start_pfn + rng.nr_pages) // nb]
            on = bl["state"] == MEM_ONLINE
            if (on & (bl["zone"] != P.ZONE_MOVABLE)).any():
                return kernel_zone
            need = rng.nr_pages - int((on & (bl["zone"] == P.ZONE_MOVABLE)).sum()) * nb
        else:
            need = nr_pages
        if not self._auto_movable_can_online_movable(None, need):
            return kernel_zone
        if cfg.auto_movable_numa_aware and not self._auto_movable_can_online_movable(nid, need):
            return kernel_zone
        return self.nodes[nid].zones[P.ZONE_MOVABLE]

    def _auto_movable_can_online_movable(self, nid, nr_pages):
        """auto_movable_can_online_movable(): MOVABLE present pages + nr_pages <=
        ratio% of the kernel zones' present_early_pages (boot memory), over every node
        (nid None) or one."""
        zones = self.zones() if nid is None else self.nodes[nid].zones
        kernel_early = sum(z.present_early_pages for z in zones
                           if z.present_pages and z.zid != P.ZONE_MOVABLE)
        movable = sum(z.present_pages for z in zones
                      if z.present_pages and z.zid == P.ZONE_MOVABLE)
        if kernel_early <= 0:
            return False
        return movable + nr_pages <= self.config.auto_movable_ratio * kernel_early // 100

    @property
    def auto_online_blocks(self):
        """/sys/devices/system/memory/auto_online_blocks at boot: MachineConfig
        .default_online_type, else the build-time default as Debian configures it:
        v6.1 has CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE unset ("offline"); the 6.12 tree
        has CONFIG_MHP_DEFAULT_ONLINE_TYPE_* (mhp_get_default_online_type()) and Debian
        picks ONLINE_AUTO ("online"). memhp_default_state= on the command line wins."""
        if self.config.default_online_type is not None:
            return self.config.default_online_type
        return "online" if self.kernel >= (6, 12) else "offline"

    def _default_kernel_zone(self, nid, start_pfn, nr_pages):
        """default_kernel_zone_for_pfn(): the first zone below Normal the range
        intersects, else ZONE_NORMAL."""
        node = self.nodes[nid]
        for z in (P.ZONE_DMA, P.ZONE_DMA32):
            if node.zones[z].spans(start_pfn, nr_pages):
                return node.zones[z]
        return node.zones[P.ZONE_NORMAL]

    def _check_block(self, block, what="memory block"):
        """A memory block id: an integer naming a row of the block table."""
        if not _is_int(block):
            raise ConfigError(f"{what} {block!r} is not an integer block id "
                              f"({type(block).__name__})")
        if not 0 <= block < len(self.blocks):
            raise RangeError(f"{what} {block} does not exist (blocks 0..{len(self.blocks) - 1})")
        return int(block)

    def valid_zones(self, block):
        """/sys/devices/system/memory/memoryN/valid_zones."""
        block = self._check_block(block)
        if self.blocks["state"][block] == 0:
            raise StateError(f"memory block {block} is not present: it has no valid_zones")
        row = self.blocks[block]
        start = block * self.block_pages
        if row["state"] == MEM_ONLINE:
            return ZONE_NAMES[row["zone"]] if row["zone"] >= 0 else "none"
        nid = int(row["nid"])
        names = [self.zone_for_pfn_range(MMOP_ONLINE, nid, start, self.block_pages).name]
        for z in (self._default_kernel_zone(nid, start, self.block_pages),
                  self.nodes[nid].zones[P.ZONE_MOVABLE]):
            if z.name not in names:
                names.append(z.name)
        return " ".join(names)

    def _parse_online_type(self, online_type):
        """mhp_online_type_from_str() (mm/memory_hotplug.c): "online", "online_kernel",
        "online_movable", or the MMOP_ONLINE* value itself (1..3); MMOP_OFFLINE is not a
        way to online."""
        if isinstance(online_type, str):
            if online_type not in ONLINE_TYPES or online_type == "offline":
                raise ConfigError(f"unknown online type {online_type!r}; expected online, "
                                  "online_kernel or online_movable")
            return ONLINE_TYPES[online_type]
        if not _is_int(online_type) or online_type not in (MMOP_ONLINE, MMOP_ONLINE_KERNEL,
                                                           MMOP_ONLINE_MOVABLE):
            raise ConfigError(f"unknown online type {online_type!r}; expected online, "
                              f"online_kernel, online_movable or their MMOP values "
                              f"{MMOP_ONLINE}..{MMOP_ONLINE_MOVABLE}")
        return int(online_type)

    def online_memory_block(self, block, online_type="online"):
        """Write "online*" to memoryN/state."""
        self.online_pages_blocks([self._check_block(block)], online_type)

    def online_pages_blocks(self, blocks, online_type="online"):
        """memory_block_online() for each block, batched per zone so that the per-block
        Python work stays small at TiB scale. All blocks are validated before any
        changes: a refused call changes nothing.

        "online_movable" puts every block in its node's ZONE_MOVABLE whatever the spans,
        so the zones come from numpy; the other types depend on the zone spans as they
        grow block by block and take the zone_for_pfn_range() loop. Consecutive blocks of
        one zone and one strategy go in one kernel call."""
        ot = self._parse_online_type(online_type)
        blocks = _int_array(blocks, "online_pages_blocks: blocks")
        if not len(blocks):
            return
        if (blocks < 0).any() or (blocks >= len(self.blocks)).any():
            raise RangeError(f"memory block {int(blocks[(blocks < 0) | (blocks >= len(self.blocks))][0])} "
                             f"does not exist (blocks 0..{len(self.blocks) - 1})")
        dup = _first_duplicate(blocks)
        if dup is not None:
            # one memoryN/state write each: the second finds the block online (-EINVAL)
            raise StateError(f"memory block {dup} is listed twice: it would be onlined twice "
                             "(memory_block_change_state(): -EINVAL on the second)")
        st = self.blocks["state"][blocks]
        if (st != MEM_OFFLINE).any():
            b = int(blocks[np.argmax(st != MEM_OFFLINE)])
            what = STATE_NAMES.get(int(self.blocks["state"][b]), "not present")
            raise StateError(f"memory block {b} is {what}, not offline: cannot online it "
                             "(memory_block_change_state(): -EINVAL)")
        if ot == MMOP_ONLINE and self.config.online_policy == "auto-movable" and len(blocks) > 1:
            for b in blocks.tolist():           # each decision sees the blocks before it
                self.online_pages_blocks([b], ot)
            return
        nb = self.block_pages
        nids = self.blocks["nid"][blocks].astype(np.int64)
        if ot == MMOP_ONLINE_MOVABLE:
            zids = np.full(len(blocks), P.ZONE_MOVABLE, dtype=np.int64)
        else:
            zids = np.empty(len(blocks), dtype=np.int64)
            for i, (b, nid) in enumerate(zip(blocks.tolist(), nids.tolist())):
                zone = self.zone_for_pfn_range(ot, nid, b * nb, nb)
                zone.grow(b * nb, (b + 1) * nb)     # later blocks see the span, as in a loop
                zids[i] = zone.zid
        # the strategy of each block's range, as an index into `strats` (by identity)
        rids, inv = np.unique(self.blocks["range_id"][blocks], return_inverse=True)
        strats, ukey = [], []
        for rid in rids.tolist():
            s = self.ranges[rid].strategy if rid >= 0 else None
            i = next((i for i, x in enumerate(strats) if x is s), len(strats))
            strats += [s] if i == len(strats) else []
            ukey.append(i)
        sidx = np.asarray(ukey, dtype=np.int64)[inv.ravel()]
        # groups: runs of consecutive blocks with one (node, zone, strategy)
        cut = np.flatnonzero((np.diff(nids) != 0) | (np.diff(zids) != 0) | (np.diff(sidx) != 0)) + 1
        edges = [0] + cut.tolist() + [len(blocks)]
        groups = []
        for lo, hi in zip(edges, edges[1:]):
            zone = self.zone(int(nids[lo]), int(zids[lo]))
            bl = blocks[lo:hi]
            if ot == MMOP_ONLINE_MOVABLE:
                zone.grow(int(bl.min()) * nb, (int(bl.max()) + 1) * nb)
            groups.append((zone, bl, strats[int(sidx[lo])]))
        due = False     # init_per_zone_wmark_min() is not idempotent: once per online
        for zone, bl, strat in groups:
            strat = strat or get_strategy("boot")
            if self._kernel_allocs_follow(zone):
                # The kernel onlines block by block: its allocations move into the
                # zone after the first one, so that block is where they land.
                self._online_group(zone, np.ascontiguousarray(bl[:1]), ot, strat)
                self.setup_per_zone_wmarks()
                self._kernel_allocs_after_online(zone)
                bl, due = bl[1:], False
            if len(bl):
                self._online_group(zone, np.ascontiguousarray(bl), ot, strat)
                due = True
        if due:
            self.setup_per_zone_wmarks()

    def _kernel_allocs_follow(self, zone):
        """Whether onlining into `zone` moves the node's kernel allocations into it: the
        zone has no managed pages yet, is a kernel zone (not ZONE_MOVABLE), becomes the
        node's highest populated kernel zone (the first zone of GFP_KERNEL's zonelist),
        and the node has CPUs (allocations go to the local node)."""
        if not self.config.online_kernel_allocs or zone.zid == P.ZONE_MOVABLE:
            return False
        node = self.nodes[zone.nid]
        if zone.managed_pages or not node.cpus:
            return False
        return all(not z.managed_pages for z in node.zones[zone.zid + 1:P.ZONE_MOVABLE])

    def _kernel_allocs_after_online(self, zone):
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
        n = self.config.online_kernel_allocs
        got = self.alloc_pages(zone.nid, 0, "kernel", count=n,
                               exclude=lambda z: z is not zone)     # a fresh owner tag
        self.online_kernel_alloc_pfns.extend(got.tolist())

    def _vmemmap_flags(self, strategy):
        """Page flags of self-hosted vmemmap pages after mhp_init_memmap_on_memory():
        PG_reserved up to v6.10, PG_vmemmap_self_hosted from v6.0 (66361095129b); v6.11+
        clears PageOffline and leaves them not reserved."""
        k = strategy.kernel
        flags = 0 if k >= (6, 11) else P.PG_reserved
        if k >= (6, 0):
            flags |= P.PG_vmemmap_self_hosted
        return flags

    def _online_group(self, zone, bl, ot, strategy):
        nb, a = self.block_pages, self.arch
        starts = bl * nb
        v = self.blocks["nr_vmemmap"][bl].astype(np.int64)
        seed = strategy.seed_v3
        # v5.13+: vmemmap pageblocks are MIGRATE_UNMOVABLE; v3 era: MOVABLE like the rest.
        vm_mt = P.MIGRATE_MOVABLE if seed else P.MIGRATE_UNMOVABLE
        freed = self.kernels.online_memory_blocks(
            self.mem_map, self.pageblock_flags, zone.free_area, np.ascontiguousarray(starts),
            np.ascontiguousarray(v), nb, zone.nid, zone.zid, self._vmemmap_flags(strategy),
            vm_mt, seed, 2)
        nv = int(v.sum())
        zone.present_pages += nb * len(bl)
        zone.managed_pages += int(freed)
        assert freed == nb * len(bl) - nv, (freed, nb * len(bl), nv)
        pps = a.pages_per_section
        spb = nb // pps                             # a block is whole sections
        self.sections[((starts // pps)[:, None] + np.arange(spb)).ravel()] |= SECTION_IS_ONLINE
        self.blocks["state"][bl] = MEM_ONLINE
        self.blocks["zone"][bl] = zone.zid
        self.blocks["online_type"][bl] = ot

    # ==================================================================================
    # offline (memory_block_offline(), offline_pages())
    # ==================================================================================
    def offline_memory_block(self, block):
        """Write "offline" to memoryN/state: memory_block_offline(). Returns a report dict
        (pages migrated, pages scanned). On failure raises with the reason and leaves the
        machine as it was."""
        block = self._check_block(block)
        row = self.blocks[block]
        if row["state"] != MEM_ONLINE:
            what = STATE_NAMES.get(int(row["state"]), "not present")
            raise StateError(f"memory block {block} is {what}, not online: cannot offline it")
        if row["zone"] < 0:
            raise StateError(f"memory block {block} spans several zones: offline_pages() -EINVAL")
        nb = self.block_pages
        start = block * nb
        v = int(row["nr_vmemmap"])
        zone = self.zone(int(row["nid"]), int(row["zone"]))
        row["state"] = MEM_GOING_OFFLINE
        try:
            # seed v3: a block made only of vmemmap skips isolation and migration
            report = (self.offline_pages(start + v, nb - v, zone) if v < nb
                      else {"scanned": 0, "migrated": 0, "offlined": 0})
        except PagecoreError:
            row["state"] = MEM_ONLINE
            raise
        # mhp_deinit_memmap_on_memory() + adjust_present_page_count(-V)
        zone.present_pages -= v
        pps = self.arch.pages_per_section
        self.sections[start // pps:(start + nb) // pps] &= ~np.uint8(SECTION_IS_ONLINE)
        row["state"], row["zone"] = MEM_OFFLINE, -1
        self._shrink_zone_span(zone, start, start + nb)
        self.setup_per_zone_wmarks()
        return report

    def offline_pages(self, start_pfn, nr_pages, zone):
        """offline_pages() (mm/memory_hotplug.c) of a range inside one zone: the second
        half of memory_block_offline(), so the range must lie in memory blocks that are
        going offline (offline_memory_block() marks them); a direct call on online
        blocks would leave blocks online with their pages gone."""
        a = self.arch
        pb = a.pageblock_nr_pages
        start_pfn = _int_arg(start_pfn, "offline_pages: start_pfn", 0, self.max_pfn)
        nr_pages = _int_arg(nr_pages, "offline_pages: nr_pages", 1, self.max_pfn - start_pfn + 1)
        self.own_zone(zone, "offline_pages: zone")
        end = start_pfn + nr_pages
        rows = self.blocks[start_pfn // self.block_pages:-(-end // self.block_pages)]
        if ((rows["state"] != MEM_GOING_OFFLINE) | (rows["zone"] != zone.zid)
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
        saved = self._save_pageblocks()
        isolated = self.start_isolate_page_range(start_pfn, end, zone)
        migrated = []
        try:
            self._migrate_out(start_pfn, end, zone, report, migrated)
            rc, pfn = self.kernels.test_pages_isolated(self.mem_map, self.pageblock_flags, start_pfn,
                                                       end, a.pageblock_order)
            if rc:
                raise BusyError(f"offline_pages {pfn_range(start_pfn, end)} failed: page at pfn "
                                f"{pfn:#x} is not free and cannot be migrated (test_pages_isolated(): "
                                "-EBUSY; reason: unmovable page)", pfn=pfn, reason="unmovable page")
        except PagecoreError:
            self._unmigrate(migrated)
            self.undo_isolate_page_range(isolated)
            self._restore_pageblocks(saved)
            raise
        taken, already = self.kernels.offline_isolated_pages(self.mem_map, zone.free_area, start_pfn, end)
        for p in isolated:
            self.pageblock_flags[p >> a.pageblock_order] &= ~np.uint8(P.PB_migrate_isolate)
        zone.managed_pages -= nr_pages - already
        zone.present_pages -= nr_pages
        report["offlined"] = nr_pages
        return report

    def start_isolate_page_range(self, start_pfn, end_pfn, zone, memory_offline=True):
        """start_isolate_page_range(): isolate every pageblock or none. Returns the
        isolated pageblock start pfns (for undo_isolate_page_range())."""
        a = self.arch
        pb = a.pageblock_nr_pages
        done = []
        movable = zone.zid == P.ZONE_MOVABLE
        for p in range(start_pfn - start_pfn % pb, end_pfn, pb):
            f = self.pageblock_flags[p >> a.pageblock_order]
            s, e = max(p, start_pfn), min(p + pb, end_pfn)
            bad = -1 if not f & P.PB_migrate_isolate else s
            if bad < 0:
                bad = self.kernels.has_unmovable_pages(self.mem_map, s, e, movable, memory_offline)
            if bad >= 0:
                self.undo_isolate_page_range(done)
                why = ("pageblock already isolated" if f & P.PB_migrate_isolate
                       else "unmovable page")
                raise BusyError(f"failure to isolate range {pfn_range(start_pfn, end_pfn)}: {why} at "
                                f"pfn {bad:#x} (has_unmovable_pages(): -EBUSY)", pfn=bad, reason=why)
            zone.free_area.py_move_freepages_block(p, P.MIGRATE_ISOLATE)
            done.append(p)
        return done

    def undo_isolate_page_range(self, isolated):
        """undo_isolate_page_range(): restore each pageblock's own migratetype, in
        ascending order like the kernel; FreeArea.unset_migratetype_isolate() re-merges
        what isolation split (__putback_isolated_page(), mm/page_isolation.c)."""
        for p in isolated:
            self._zone_of_pfn(p).free_area.py_unset_migratetype_isolate(p)

    def _save_pageblocks(self):
        """Pageblock flags of every populated zone, for rollback. Allocations an operation
        makes on the way (memmap at hot-add, migration targets) may claim whole pageblocks
        for their migratetype (__rmqueue_fallback()); freeing the pages back does not give
        them back. A failed call must leave the machine as it was, so the failure paths
        restore the saved types with _restore_pageblocks()."""
        pb = self.arch.pageblock_order
        saved = []
        for z in self.zones():
            if z.spanned_pages:
                lo, hi = z.zone_start_pfn >> pb, -(-z.zone_end_pfn >> pb)
                saved.append((lo, self.pageblock_flags[lo:hi].copy()))
        return saved

    def _restore_pageblocks(self, saved):
        """Give every pageblock that changed type its saved type back (moving its free
        pages to the matching lists), then re-merge the free blocks the move split."""
        pb = self.arch.pageblock_order
        for lo, old in saved:
            cur = self.pageblock_flags[lo:lo + len(old)]
            for i in np.nonzero(cur != old)[0].tolist():
                p = (lo + i) << pb
                zone = self._zone_of_pfn(p)
                zone.free_area.py_move_freepages_block(p, int(old[i]) & P.MIGRATETYPE_MASK)
                self.pageblock_flags[lo + i] = old[i]
                self._remerge(p)

    def _remerge(self, pfn):
        """Free every free block of the MAX_PAGE_ORDER-aligned region around `pfn` again
        (__free_one_page()), so that pieces split apart merge back."""
        mo = self.arch.max_page_order
        lo = pfn >> mo << mo
        mm = self.mem_map
        q = lo
        while q < lo + (1 << mo):
            if mm[q]["page_type"] != P.PGTY_BUDDY:
                q += 1
                continue
            o = int(mm[q]["order"])
            fa = self._zone_of_pfn(q).free_area
            fa.py_remove(q)
            fa.py_free_one_page(q, o)
            nxt = q + (1 << o)
            for k in range(o, mo + 1):          # skip to the end of the merged block
                h = q >> k << k
                if mm[h]["page_type"] == P.PGTY_BUDDY and mm[h]["order"] == k:
                    nxt = h + (1 << k)
                    break
            q = nxt

    def _zone_of_pfn(self, pfn):
        f = int(self.mem_map[pfn]["flags"])
        return self.zone((f >> P.NODES_PGSHIFT) & P.NODES_MASK, (f >> P.ZONES_PGSHIFT) & P.ZONES_MASK)

    def _migrate_out(self, start, end, zone, report, migrated):
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
        rc, pfn = self.kernels.scan_movable_pages(self.mem_map, start, end)
        if rc == -P.ENOENT:
            return
        mm = self.mem_map[start:end]
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
        masked = any(n.nid != nid and n.has_memory for n in self.nodes)
        exclude = (lambda z: z.nid == nid) if masked else None
        plan = []
        for order in sorted(set(orders.tolist()), reverse=True):
            src = heads[orders == order]
            dst = self._alloc_pages(nid, order, "movable", len(src), 0, exclude=exclude)
            plan.append((order, src, dst))
            if len(dst) < len(src):
                for _, _, d in plan:
                    self._free_blocks(d)
                head = int(src[len(dst)])
                raise OutOfMemoryError(
                    f"offline_pages {pfn_range(start, end)} failed: not enough free memory to "
                    f"migrate the order-{order} folio at pfn {head:#x} (do_migrate_range())",
                    pfn=head, reason="not enough free memory")
        for order, src, dst in plan:
            self._move_folios(src, dst, order)
            migrated.append((src, dst, order))
            report["migrated"] += len(src) << order

    def _move_folios(self, src, dst, order):
        """migrate_pages() of folios of one order: page state (flags, owner, refcount)
        moves from src[i] to dst[i]; the sources are freed (into the isolated lists when
        their pageblocks are isolated)."""
        k = np.arange(1 << order, dtype=np.int64)
        s, d = (src[:, None] + k).ravel(), (dst[:, None] + k).ravel()
        mm = self.mem_map
        fm = np.uint32(P.FLAGS_MASK)
        mm["flags"][d] = (mm["flags"][d] & ~fm) | (mm["flags"][s] & fm)
        mm["private"][d] = mm["private"][s]
        mm["refcount"][d] = mm["refcount"][s]
        mm["order"][d] = mm["order"][s]
        self._free_blocks(src)

    def _unmigrate(self, migrated):
        """Undo migrations, last batch first: `migrated` holds (src pfns, dst pfns, order)
        batches of _move_folios(). Each folio's old pages come back off the free lists
        (FreeArea.claim_ranges(): the free block holding them is split around them), its
        state moves back, and its new pages are freed. Sources lie in isolated
        pageblocks, targets outside them, so claims and frees do not interact."""
        for src, dst, order in reversed(migrated):
            src = np.ascontiguousarray(src[::-1], dtype=np.int64)
            zids = (self.mem_map["flags"][src] >> P.ZONES_PGSHIFT) & P.ZONES_MASK
            nids = (self.mem_map["flags"][src] >> P.NODES_PGSHIFT) & P.NODES_MASK
            for nid, zid in set(zip(nids.tolist(), zids.tolist())):
                part = np.ascontiguousarray(src[(nids == nid) & (zids == zid)])
                bad = self.zone(nid, zid).free_area.claim_ranges(part, 1 << order)
                if bad >= 0:
                    raise StateError(f"pfn {int(part[bad]):#x} is not free: cannot undo its "
                                     "migration")
            self._move_folios(np.asarray(dst[::-1]), src, order)

    def _shrink_zone_span(self, zone, start_pfn, end_pfn):
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
            pfn = self._find_section_pfn(zone, end_pfn, zone.zone_end_pfn, smallest=True)
            if pfn is None:
                zone.zone_start_pfn, zone.spanned_pages = 0, 0
            else:
                zone.spanned_pages = zone.zone_end_pfn - pfn
                zone.zone_start_pfn = pfn
        elif zone.zone_end_pfn == end_pfn:
            pfn = self._find_section_pfn(zone, zone.zone_start_pfn, start_pfn, smallest=False)
            if pfn is None:
                zone.zone_start_pfn, zone.spanned_pages = 0, 0
            else:
                zone.spanned_pages = pfn - zone.zone_start_pfn + 1

    def _find_section_pfn(self, zone, lo, hi, smallest):
        """find_smallest_section_pfn() / find_biggest_section_pfn() over [lo, hi): the
        first pfn (smallest) or the last pfn (biggest) of a PAGES_PER_SUBSECTION step that
        is online (pfn_to_online_page(): its section is online) and whose page belongs to
        `zone`; None when there is none (the kernel's 0)."""
        if hi <= lo:
            return None
        sub = self.arch.pages_per_subsection
        pfns = np.arange(lo, hi, sub, dtype=np.int64) if smallest else \
            np.arange(hi - 1, lo - 1, -sub, dtype=np.int64)
        online = (self.sections[pfns // self.arch.pages_per_section] & SECTION_IS_ONLINE) != 0
        bits = (zone.nid << P.NODES_PGSHIFT) | (zone.zid << P.ZONES_PGSHIFT)
        ok = online & ((self.mem_map["flags"][pfns] & ~np.uint32(P.FLAGS_MASK)) == bits)
        i = np.flatnonzero(ok)
        return int(pfns[i[0]]) if len(i) else None

    # ==================================================================================
    # removal (try_remove_memory(), arch_remove_memory(), section_deactivate())
    # ==================================================================================
    def remove_memory(self, start, size):
        """remove_memory(start, size): every block offline, the generation's granularity
        rule, memmap torn down (vmemmap last, boot-memmap pages back to the buddy).

        Batched: the section words are cleared with numpy; the vmemmap leaves and page
        tables no present section uses any more are found with numpy (the geometry of
        _granules_of_section()/_tables_of_section(), the tests of _granule_in_use()/
        _table_in_use()) and torn down in the loop's order (per section: leaves, then
        tables), their buddy pages in one free_pages() call. If a page to free is not an
        allocated block head, the one-by-one loop runs instead and fails where it did."""
        start_pfn, nr_pages = self._check_range(start, size, "remove_memory")
        blk = self.blocks_in(start_pfn, nr_pages)
        if (blk["state"] == 0).any():
            raise RangeError(f"remove_memory: {self.fmt_range(start_pfn, nr_pages)} is not all present")
        if (blk["state"] != MEM_OFFLINE).any():
            b = start_pfn // self.block_pages + int(np.argmax(blk["state"] != MEM_OFFLINE))
            raise BusyError(f"removing memory fails, because memory {self.fmt_range(start_pfn, nr_pages)} "
                            f"is onlined (memory block {b}): -EBUSY")
        self._check_remove_rules(start_pfn, nr_pages)
        rids = set(np.unique(blk["range_id"]).tolist())
        a = self.arch
        pps, sps = a.pages_per_section, a.struct_page_size
        gb = self._granule_bytes
        granules, tables = self.vmemmap_granules, self.vmemmap_tables
        s0, s1 = start_pfn // pps, (start_pfn + nr_pages) // pps
        # The teardown is planned with the sections cleared (which leaves and tables no
        # present section uses any more) and checked before anything is freed: if it would
        # leave an altmap owing pages (remove_memory_blocks_and_altmaps(): WARN "Altmap not
        # fully unmapped") or free a page that is not an allocated block, the words come
        # back and the call fails with the machine as it was.
        saved_secs = (self.sections[s0:s1].copy(), self.section_nid[s0:s1].copy(),
                      self.nr_memmap_pages, self.nr_memmap_boot_pages)
        # section_deactivate(): memmap_pages_add(-...), clear the word
        early = (self.sections[s0:s1] & SECTION_IS_EARLY) != 0
        self.nr_memmap_pages -= a.memmap_pages(pps) * int((~early).sum())
        self.nr_memmap_boot_pages -= a.memmap_pages(pps) * int(early.sum())
        self.sections[s0:s1] = 0
        self.section_nid[s0:s1] = -1

        def refuse(cls, msg):
            self.sections[s0:s1], self.section_nid[s0:s1] = saved_secs[0], saved_secs[1]
            self.nr_memmap_pages, self.nr_memmap_boot_pages = saved_secs[2], saved_secs[3]
            raise cls(msg)

        def flat(lo, hi):
            c = np.maximum(hi - lo, 0)
            idx = np.repeat(np.arange(len(lo)), c)
            return lo[idx] + np.arange(int(c.sum())) - (np.cumsum(c) - c)[idx], idx

        def present_in(first, last):
            """Any present section in [first[i], last[i]] (cumulative counts)."""
            if not len(first):
                return np.zeros(0, dtype=bool)
            lo, hi = int(first.min()), int(last.max()) + 1
            cs = np.concatenate(([0], np.cumsum((self.sections[lo:hi] & SECTION_MARKED_PRESENT) != 0)))
            return cs[last + 1 - lo] > cs[first - lo]

        def first_known(ids, known):
            m = np.zeros(len(ids), dtype=bool)
            if len(ids) and known:
                m[np.unique(ids, return_index=True)[1]] = True
                m[m] = [x in known for x in ids[m].tolist()]
            return m

        va0 = np.arange(s0, s1, dtype=np.int64) * (pps * sps)
        va1 = va0 + pps * sps
        g_ids, g_sec = flat(va0 // gb, -(-va1 // gb))
        pud_shift = a.pmd_shift + (a.page_shift - 3)
        if gb == a.pmd_size:
            t_ids, t_sec = flat(va0 >> pud_shift, ((va1 - 1) >> pud_shift) + 1)
        else:
            t_ids, t_sec = flat((1 << 40) + (va0 >> a.pmd_shift),
                                (1 << 40) + ((va1 - 1) >> a.pmd_shift) + 1)
        # leaves: populated, and no present section left in the memmap they map
        gm = first_known(g_ids, granules)
        gm[gm] = ~present_in(g_ids[gm] * gb // sps // pps, ((g_ids[gm] + 1) * gb - 1) // sps // pps)
        # tables: populated, and no leaf in their VA that is populated and in use
        tm = first_known(t_ids, tables)
        pmd_t = t_ids < (1 << 40)
        tva0 = np.where(pmd_t, t_ids << pud_shift, (t_ids - (1 << 40)) << a.pmd_shift)
        tva1 = np.where(pmd_t, (t_ids + 1) << pud_shift, (t_ids - (1 << 40) + 1) << a.pmd_shift)
        glo, ghi = -(-tva0 // gb), -(-tva1 // gb)          # leaves g with va0 <= g*gb < va1
        maybe = tm & (ghi > glo)
        maybe[maybe] = present_in(glo[maybe] * gb // sps // pps, (ghi[maybe] * gb - 1) // sps // pps)
        for i in np.flatnonzero(maybe).tolist():          # rare: tables shared with a neighbour
            tm[i] = not any(self._granule_in_use(g) for g in range(int(glo[i]), int(ghi[i]))
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
        mm = self.mem_map[pfns]
        if ((mm["refcount"] == 0) | ((mm["flags"] & P.PG_tail) != 0)).any() or \
                len(np.unique(pfns)) != len(pfns):
            refuse(StateError, f"remove_memory: {self.fmt_range(start_pfn, nr_pages)}: a vmemmap "
                   "page or page table to free is not an allocated block (corrupt memmap "
                   "bookkeeping; Machine.check() names it)")
        alt_owner = np.asarray(alt_owner, dtype=np.int64)
        alt_pages = np.asarray(alt_pages, dtype=np.int64)
        b0, b1 = start_pfn // self.block_pages, (start_pfn + nr_pages) // self.block_pages
        owed = self.blocks["altmap_alloc"].astype(np.int64)
        outside = (alt_owner < b0) | (alt_owner >= b1)
        left = owed[b0:b1] - np.bincount(alt_owner[~outside] - b0, weights=alt_pages[~outside],
                                         minlength=b1 - b0).astype(np.int64)
        if outside.any() or left.any():
            # remove_memory_blocks_and_altmaps(): WARN "Altmap not fully unmapped"
            refuse(GranularityError,
                   f"remove_memory: {self.fmt_range(start_pfn, nr_pages)} would leave an altmap "
                   f"not fully unmapped ({int(left.sum())} pages still owed, "
                   f"{int(alt_pages[outside].sum())} owed to blocks outside the range): the "
                   "removal must cover whole self-hosted memmaps")
        for kind, x in events:
            (tables if kind == "t" else granules).pop(x)
        np.subtract.at(self.blocks["altmap_alloc"], alt_owner, alt_pages)   # vmem_altmap_free()
        self.mem_map["page_type"][np.asarray(tpfns, dtype=np.int64)] = P.PGTY_NONE
        self.pagetable_pages -= len(tpfns)
        self._free_blocks(pfns)
        self.blocks_in(start_pfn, nr_pages)[:] = self._empty_block()
        for rid in rids:
            rng = self.ranges.get(rid)
            if rng is not None and not (self.blocks["range_id"] == rid).any():
                del self.ranges[rid]
                self.free_pages(self.kobj_pfns.pop(rid, np.zeros(0, dtype=np.int64)))
        # the struct pages go away with the sections: release host memory
        self._release(start_pfn, start_pfn + nr_pages)
        pb = self.arch.pageblock_order
        self.pageblock_flags[start_pfn >> pb:(start_pfn + nr_pages) >> pb] = 0

    def _granule_in_use(self, g):
        a = self.arch
        gb = self._granule_bytes
        first = g * gb // a.struct_page_size // a.pages_per_section
        last = ((g + 1) * gb - 1) // a.struct_page_size // a.pages_per_section
        return bool((self.sections[first:last + 1] & SECTION_MARKED_PRESENT).any())

    def _table_in_use(self, t):
        return any(self._granule_in_use(g) for g in self._granules_of_table(t))

    def _granules_of_table(self, t):
        a = self.arch
        gb = self._granule_bytes
        if t >= (1 << 40):
            va0, va1 = (t - (1 << 40)) << a.pmd_shift, ((t - (1 << 40)) + 1) << a.pmd_shift
        else:
            pud_shift = a.pmd_shift + (a.page_shift - 3)
            va0, va1 = t << pud_shift, (t + 1) << pud_shift
        return [g for g in self.vmemmap_granules if va0 <= g * gb < va1]

    def _release(self, s, e):
        isz = P.PAGE_DTYPE.itemsize
        off, ln = s * isz, (e - s) * isz
        pg = mmap.PAGESIZE
        lo, hi = -(-off // pg) * pg, (off + ln) // pg * pg
        if hi > lo:
            self._vmemmap.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        self.mem_map[s:s + (lo - off) // isz] = 0
        self.mem_map[(hi // isz):e] = 0

    def offline_and_remove_memory(self, start, size):
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
        start_pfn, nr_pages = self._check_range(start, size, "offline_and_remove_memory")
        blocks = range(start_pfn // self.block_pages, (start_pfn + nr_pages) // self.block_pages)
        st = self.blocks["state"][blocks.start:blocks.stop]
        if (st == 0).any():
            raise RangeError(f"offline_and_remove_memory: {self.fmt_range(start_pfn, nr_pages)} "
                             "is not all present")
        done, migrated = [], 0
        try:
            for b in blocks:
                if self.blocks["state"][b] == MEM_ONLINE:
                    ot = (MMOP_ONLINE_MOVABLE if self.blocks["zone"][b] == P.ZONE_MOVABLE
                          else MMOP_ONLINE_KERNEL)
                    migrated += self.offline_memory_block(b)["migrated"]
                    done.append((b, ot))
            self.remove_memory(start, size)
        except PagecoreError as e:
            for b, ot in done:
                self.online_pages_blocks([b], ot)
            e.partial = [(b, _MMOP_NAMES[ot]) for b, ot in done]
            e.migrated = migrated
            if done:
                e.args = (f"{e.args[0]}; blocks {', '.join(str(b) for b, _ in done)} had been "
                          f"offlined ({migrated} pages migrated) and were re-onlined "
                          "(try_reonline_memory_block())",) + e.args[1:]
            raise

    def _check_remove_rules(self, start_pfn, nr_pages):
        """The removal granularity of every range [start_pfn, +nr_pages) touches, each by
        its strategy's rule (check_remove())."""
        blk = self.blocks_in(start_pfn, nr_pages)
        rids, first = np.unique(blk["range_id"], return_index=True)
        for rid in rids[np.argsort(first)].tolist():
            if rid >= 0:
                self.ranges[rid].strategy.check_remove(self, start_pfn, nr_pages)

    # ==================================================================================
    # accounting
    # ==================================================================================
    @property
    def mem_total_pages(self):
        """totalram_pages() = Σ managed_pages."""
        return sum(z.managed_pages for z in self.zones())

    @property
    def mem_free_pages(self):
        """NR_FREE_PAGES: buddy pages outside isolated pageblocks."""
        return sum(z.free_pages for z in self.zones())

    def meminfo(self):
        """The /proc/meminfo fields pagecore models, in kB: procfs.meminfo_dict(), the
        same keys (it scans the page array of online memory for the page kinds)."""
        from pagecore.procfs import meminfo_dict
        return meminfo_dict(self)

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
        from pagecore.invariants import check_machine
        check_machine(self)

    def snapshot(self):
        """Everything observable, for before/after comparisons of failed operations."""
        return self._snapshot(digest=True)

    def _snapshot(self, digest):
        """snapshot(); with digest=False the pages are kept as arrays (one per run of
        sections) instead of hashed, for callers that compare often (the fuzz tests)."""
        h = hashlib.sha256()
        runs = []
        pps = self.arch.pages_per_section
        # one run of sections with a nonzero word at a time (the digest is that of the
        # sections' pages in order, however they are cut)
        for s0, s1 in _runs(self.sections != 0):
            w = self.mem_map[s0 * pps:s1 * pps].view(np.uint64).reshape(-1, 2).copy()
            # Free-list positions are not state (the lists are compared below as sorted
            # pfn sets): a buddy head's `private` is its list slot, and `order` of a free
            # page that is not a buddy head is stale (buddy_order() is only meaningful with
            # PageBuddy), so both are masked. Word 0 is flags | page_type << 32 |
            # order << 40 | refcount << 48 (_page.pxd), word 1 private.
            ptype = (w[:, 0] >> np.uint64(32)) & np.uint64(0xFF)
            w[ptype == P.PGTY_BUDDY, 1] = 0
            stale = (ptype == P.PGTY_NONE) & ((w[:, 0] >> np.uint64(48)) == 0)
            w[stale, 0] &= ~np.uint64(0xFF << 40)
            if digest:
                h.update(memoryview(w).cast("B"))
            else:
                runs.append((s0, w))
        tail = (self.pageblock_flags.tobytes() + self.sections.tobytes() +
                self.section_nid.tobytes() + self.blocks.tobytes())
        if digest:
            h.update(tail)
        zones = [(z.counters(), tuple(z.watermark), sorted(z.free_area.snapshot().items()))
                 for z in self.zones()]
        return {"hash": h.hexdigest() if digest else (runs, tail), "zones": zones,
                "granules": dict(self.vmemmap_granules), "tables": dict(self.vmemmap_tables),
                "ranges": sorted(self.ranges), "memmap": self.memmap_summary()}


@dataclass
class VmemAltmap:
    """struct vmem_altmap (include/linux/memremap.h) with the bump allocator of
    altmap_alloc_block_buf() (mm/sparse-vmemmap.c)."""
    base_pfn: int
    end_pfn: int = 0
    reserve: int = 0
    free: int = 0
    align: int = 0
    alloc: int = 0

    @property
    def next_pfn(self):
        return self.base_pfn + self.reserve + self.alloc + self.align

    @property
    def nr_free(self):
        return max(0, self.free - (self.alloc + self.align))

    def alloc_block_buf(self, nr_pfns):
        """Hand out `nr_pfns` naturally aligned pfns, or None (-> -ENOMEM, no fallback)."""
        pfn = self.next_pfn
        natural = nr_pfns & -nr_pfns
        pad = (-pfn) % natural
        if nr_pfns + pad > self.nr_free:
            return None
        self.alloc += nr_pfns
        self.align += pad
        return pfn + pad

    def free_pages(self, nr_pfns):
        """vmem_altmap_free(): only the counter moves."""
        self.alloc -= nr_pfns

    def __str__(self):
        return f"altmap(base_pfn={self.base_pfn:#x}, free={self.free}, alloc={self.alloc})"


def _granule_buddy_pages(kind, order, granule_pages):
    if kind == "buddy":
        return 1 << order
    if kind == "buddy-base":
        return granule_pages + 1
    return 0


def _runs(mask):
    """[start, end) runs of True in a bool array."""
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def _isqrt(n):
    import math
    return math.isqrt(n)
