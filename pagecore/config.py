"""What a machine is booted from: MachineConfig and NodeConfig, and their type and range
checks (the geometry rules that depend on the arch are checked as the machine boots,
pagecore/mm/mm_init.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pagecore.arch import GiB, MiB
from pagecore.errors import ConfigError
from pagecore.util import int_arg, is_int


@dataclass
class NodeConfig:
    """One NUMA node: boot RAM ranges as (start, size) in bytes, and its CPUs: a number,
    or true (one CPU) / false (a CPU-less node). The count is cpumask_of_node()'s weight,
    which splits each zone's per-cpu list high mark (zone_highsize()) and scales the
    vmstat thresholds (calculate_normal_threshold()).

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
    cpus: bool | int = True
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
    percpu_pagelist_high_fraction: int = 0  # /proc/sys/vm/...: 0 (from the low mark) or >= 8
    # A read of /proc/sys/vm/lowmem_reserve_ratio after boot: its handler recomputes
    # lowmem_reserve even on a read (lowmem_reserve_ratio_sysctl_handler(), v6.1 and
    # v6.12), so protection then counts the pages freed after the boot watermarks.
    sysctl_read_lowmem_reserve_ratio: bool = False
    # Unmovable pages the kernel allocates in the first block onlined into a node's
    # highest kernel zone (memory_hotplug.kernel_allocs_after_online()); the recorded Debian
    # guests show ~80 (what `pagecore calibrate` sets). 0 (the default, as before): none.
    online_kernel_allocs: int = 0
    # Kernel objects of each new memory block (struct memory_block, its device, sysfs
    # nodes, the resource), paid from existing memory in every memmap mode
    # (memory.create_memory_block_devices(); calibrated machines: 5 KiB). Default 0: not counted.
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


def validate_config(cfg):
    """Types and ranges of a MachineConfig, before anything is built. The geometry rules
    that depend on the arch (block size, boot ranges) are checked as the machine boots."""
    def integer(name, value, lo=None, hi=None, optional=False):
        if optional and value is None:
            return
        int_arg(value, f"MachineConfig.{name}", lo, hi, cls=ConfigError)

    if not isinstance(cfg.arch, str):
        raise ConfigError(f"MachineConfig.arch={cfg.arch!r} is not an architecture name")
    if (not isinstance(cfg.kernel, (tuple, list)) or len(cfg.kernel) != 2
            or not all(is_int(k) and k >= 0 for k in cfg.kernel)):
        raise ConfigError(f"MachineConfig.kernel={cfg.kernel!r}: expected (major, minor)")
    integer("phys_bits", cfg.phys_bits, 30, 53)
    integer("block_size", cfg.block_size, 1, optional=True)
    integer("struct_page_size", cfg.struct_page_size, 16, MAX_STRUCT_PAGE_SIZE + 1)
    integer("kernel_reserved", cfg.kernel_reserved, 0)
    integer("boot_used_unmovable", cfg.boot_used_unmovable, 0)
    integer("boot_used_movable", cfg.boot_used_movable, 0)
    integer("min_free_kbytes", cfg.min_free_kbytes, 0, optional=True)
    integer("seed", cfg.seed, 0)
    integer("percpu_pagelist_high_fraction", cfg.percpu_pagelist_high_fraction, 0)
    if 0 < cfg.percpu_pagelist_high_fraction < 8:
        # percpu_pagelist_high_fraction_sysctl_handler(): below
        # MIN_PERCPU_PAGELIST_HIGH_FRACTION the write fails with -EINVAL
        raise ConfigError(f"MachineConfig.percpu_pagelist_high_fraction="
                          f"{cfg.percpu_pagelist_high_fraction}: expected 0 or >= 8 (the "
                          "sysctl refuses 1..7 with -EINVAL)")
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
                    or not all(is_int(x) for x in r)):
                raise ConfigError(f"node {nid} boot range {r!r}: expected (start, size) in "
                                  "integer bytes")
            if r[0] < 0:
                raise ConfigError(f"node {nid} boot range {r!r} starts below 0")
        if not (isinstance(nc.cpus, (bool, np.bool_)) or is_int(nc.cpus)) or nc.cpus < 0:
            raise ConfigError(f"node {nid} cpus={nc.cpus!r}: expected true/false or a number "
                              "of CPUs >= 0 (cpumask_of_node())")
    if cfg.nodes and not any(nc.cpus for nc in cfg.nodes):
        raise ConfigError("MachineConfig.nodes: no node has a CPU (cpus); a kernel needs one "
                          "to boot, and the pcp limits split over them (zone_highsize())")
    n = len(cfg.nodes)
    if cfg.distance is not None:
        d = cfg.distance
        if (not isinstance(d, (list, tuple)) or len(d) != n
                or any(not isinstance(row, (list, tuple)) or len(row) != n for row in d)
                or not all(is_int(x) and x > 0 for row in d for x in row)):
            raise ConfigError(f"MachineConfig.distance: expected a {n}x{n} matrix of positive "
                              "integers (the SLIT, node_distance())")
    if not isinstance(cfg.strategy, str) and not hasattr(cfg.strategy, "plan"):
        raise ConfigError(f"MachineConfig.strategy={cfg.strategy!r} is not a strategy")

