"""The scenario file format (docs/scenarios.md): sizes and kernel versions as a user
writes them, [params] substitution and --param overrides, the key tables, and the checks
of [machine] and of every [[step]] at load time, each error naming the file, the key and
what the user typed. pagecore.scenario.load() reads a file through these."""
from __future__ import annotations

import math
import re

from pagecore.arch import PRESETS, ZONE_NAMES, GiB, get_arch
from pagecore.config import MachineConfig, NodeConfig
from pagecore.drivers.hotplug import AUTO_ONLINE, DRIVERS
from pagecore.errors import ConfigError
from pagecore.mm.page_alloc import GFP, KINDS

#: Step actions that need an optional engine part: action -> (module, functions, what).
#: Workload actions that run an engine part beyond hotplug: action -> what it does.
ENGINE_ACTIONS = {"compact": "zone compaction (compact_zone())",
                  "gigantic": "gigantic page allocation (alloc_contig_pages())"}
ONLINE_STEP_TYPES = ("online", "online_kernel", "online_movable")
#: Kernel versions the model has rules for (docs/model.md#kernel-versions): from v5.3,
#: the base of the 2019 seed series, to v6.16, the newest rule modelled (the standalone
#: isolation bit). Later kernels are refused until their rules are checked.
KERNELS = ((5, 3), (6, 16))

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtpe])(i?b)?|(b)?)\s*$", re.I)
_PARAM_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_size(value, where="size"):
    """Bytes from an int or a string like "128M", "2GiB", "1991456 kB"."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a size (bytes or e.g. \"128M\"), got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{where}: expected a non-negative size, got {value}")
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value == int(value):
        return int(value)
    if isinstance(value, str):
        mt = _SIZE_RE.match(value)
        if mt:
            num, unit = mt.group(1), (mt.group(2) or "").upper()
            mult = 1 << (10 * ("KMGTPE".index(unit) + 1)) if unit else 1
            if "." in num:
                whole, frac = num.split(".")
                n = int(whole) * mult + int(frac) * mult // 10 ** len(frac)
            else:
                n = int(num) * mult
            return n
    raise ConfigError(f"{where}: expected a size (bytes or e.g. \"128M\", \"2G\", "
                      f"\"1991456 kB\"), got {value!r}")


_KERNEL_RE = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?(?:[-+~.][0-9A-Za-z.+~-]*)?$")


def parse_kernel(value, where="kernel"):
    """(major, minor) from "6.12", "6.12.3" or what `uname -r` prints ("6.1.0-28-amd64"):
    the rules change only between major.minor releases. Versions outside KERNELS are
    refused: the model has no rules for them."""
    mt = _KERNEL_RE.match(value) if isinstance(value, str) else None
    if not mt:
        raise ConfigError(f"{where}: expected a kernel version string like \"6.12\" or "
                          f"\"6.12.3\", got {value!r}")
    k = (int(mt.group(1)), int(mt.group(2)))
    lo, hi = KERNELS
    if not lo <= k <= hi:
        raise ConfigError(f"{where}: the model has rules for kernels {lo[0]}.{lo[1]} to "
                          f"{hi[0]}.{hi[1]} (docs/model.md#kernel-versions), got {value!r}")
    return k


def fmt_size(nbytes):
    """A size as a user writes it, exactly: "128M", "4G", "1536K", else bytes."""
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if nbytes and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)


class Ctx:
    """Error reporting for one file: every message names the scenario (its name for a
    built-in, the path as given for a file), the key, and what the user typed when the
    value came from a parameter they set (--param NAME=VALUE, --scale X)."""

    def __init__(self, label):
        self.path = self.label = label
        self.origins = {}       # key where a ${param} was substituted -> param name
        self.overrides = {}     # params set from outside (--param, a sweep): name -> text
        self.scaled = {}        # params that --scale changed: name -> (scale, new bytes)

    def origin(self, *keys):
        """"--param dimm=100M: " (or "--scale 0.3: ") when one of `keys` got its value
        from a parameter set from outside, else ""."""
        for key in keys:
            name = self.origins.get(key)
            if name in self.overrides:
                return f"--param {name}={self.overrides[name]}: "
            if name in self.scaled:
                sc, v = self.scaled[name]
                return f"--scale {sc:g} (makes ${{{name}}} {v} bytes): "
        return ""

    def fail(self, key, message, *also):
        """ConfigError 'ORIGIN LABEL: KEY: MESSAGE'; `also` are further keys whose origin
        counts (a rule over two keys)."""
        return ConfigError(f"{self.origin(key, *also)}{self.path}: {key}: {message}")

    def err(self, key, expected, got):
        return self.fail(key, f"expected {expected}, got {got!r}")

    def size(self, d, key, where, default=None, required=False):
        if key not in d:
            if required:
                raise ConfigError(f"{self.label}: {where}.{key}: missing required key "
                                  "(expected a size, e.g. \"128M\")")
            return default
        try:
            return parse_size(d[key], f"{self.label}: {where}.{key}")
        except ConfigError:
            raise self.err(f"{where}.{key}", "a size (bytes or e.g. \"128M\", \"2G\")", d[key]) from None

    def int_(self, d, key, where, default=None, minimum=None, required=False):
        if key not in d:
            if required:
                raise ConfigError(f"{self.label}: {where}.{key}: missing required key (expected an integer)")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(f"{where}.{key}", "an integer", v)
        if minimum is not None and v < minimum:
            raise self.err(f"{where}.{key}", f"an integer >= {minimum}", v)
        return v

    def bool_(self, d, key, where, default=None):
        if key not in d:
            return default
        if not isinstance(d[key], bool):
            raise self.err(f"{where}.{key}", "true or false", d[key])
        return d[key]

    def str_(self, d, key, where, default=None, choices=None, required=False):
        if key not in d:
            if required:
                what = f"one of {', '.join(choices)}" if choices else "a string"
                raise ConfigError(f"{self.label}: {where}.{key}: missing required key (expected {what})")
            return default
        v = d[key]
        if not isinstance(v, str):
            raise self.err(f"{where}.{key}", "a string", v)
        if choices is not None and v not in choices:
            raise self.err(f"{where}.{key}", f"one of {', '.join(choices)}", v)
        return v

    def float_(self, d, key, where, default=None, lo=None, hi=None):
        if key not in d:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.err(f"{where}.{key}", "a finite number", v)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.err(f"{where}.{key}", f"a number in [{lo}, {hi}]", v)
        return float(v)

    def keys(self, d, allowed, where):
        if not isinstance(d, dict):
            raise self.err(where, "a table", d)
        for k in d:
            if k not in allowed:
                raise ConfigError(f"{self.label}: {where}.{k}: unknown key; expected one of "
                                  f"{', '.join(sorted(allowed))}")


def coerce_override(default, value):
    """CLI overrides arrive as strings: give them the type of the declared default."""
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(default, int):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def substitute(obj, params, ctx, where):
    if isinstance(obj, str):
        for mt in _PARAM_RE.finditer(obj):
            ctx.origins.setdefault(where, mt.group(1))
        full = _PARAM_RE.fullmatch(obj)
        if full:
            name = full.group(1)
            if name not in params:
                raise ConfigError(f"{ctx.path}: {where}: parameter ${{{name}}} is not declared "
                                  "in [params]")
            return params[name]

        def one(mt):
            if mt.group(1) not in params:
                raise ConfigError(f"{ctx.path}: {where}: parameter ${{{mt.group(1)}}} is not "
                                  "declared in [params]")
            return str(params[mt.group(1)])
        return _PARAM_RE.sub(one, obj)
    if isinstance(obj, dict):
        return {k: substitute(v, params, ctx, f"{where}.{k}" if where else k)
                for k, v in obj.items()}
    if isinstance(obj, list):
        first = 1 if where == "step" else 0      # steps count from 1 (0 is the boot)
        return [substitute(v, params, ctx, f"{where}[{i + first}]") for i, v in enumerate(obj)]
    return obj


# ---------------------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------------------
TOP_KEYS = {"name", "description", "strategies", "params", "scale_params", "scale_align",
             "machine", "step"}
_MACHINE_KEYS = {"arch", "kernel", "is_vm", "block_size", "phys_bits", "struct_page_size",
                 "memtotal", "memfree", "used_movable_share", "kernel_reserved",
                 "boot_used_unmovable", "boot_used_movable", "min_free_kbytes", "movable_node",
                 "auto_online", "online_delay", "seed", "node", "distance", "thp",
                 "watermark_scale_factor", "sysctl_read_lowmem_reserve_ratio",
                 "online_policy", "auto_movable_ratio", "auto_movable_numa_aware",
                 "online_kernel_allocs", "hotplug_kobj_bytes_per_block",
                 "percpu_pagelist_high_fraction"}
_NODE_KEYS = {"boot", "cpus", "reserved", "late_free", "used"}


def _cpus(ctx, nd, where):
    """machine.node.cpus: true (one CPU), false (none) or a number of CPUs."""
    v = nd.get("cpus", True)
    if isinstance(v, bool):
        return v
    if not isinstance(v, int) or v < 0:
        raise ctx.err(f"{where}.cpus", "true, false or a number of CPUs >= 0", v)
    return v
_NODE_ZONE_TABLES = ("reserved", "late_free", "used")
STEP_KEYS = {
    "add": {"driver", "size", "count", "total", "node", "start", "online", "delay",
            "until_oom", "memmap_on_memory", "offline_threshold"},
    "online": {"blocks", "type"},
    "offline": {"blocks", "ignore_busy"},
    "remove": {"ranges", "offline"},
    "alloc": {"kind", "gfp", "order", "bytes", "count", "node", "strict", "tag"},
    "free": {"tag"},
    "compact": {"node", "zone", "order", "mode"},
    "gigantic": {"count", "size", "node", "zone", "gfp"},
}


def validate_machine(ctx, mc):
    if mc is None:
        raise ConfigError(f"{ctx.path}: machine: missing required table [machine]")
    ctx.keys(mc, _MACHINE_KEYS, "machine")
    w = "machine"
    arch = ctx.str_(mc, "arch", w, default="x86_64", choices=list(PRESETS))
    kernel_s = mc.get("kernel", "6.12")
    try:
        kernel = parse_kernel(kernel_s, "machine.kernel")
    except ConfigError as e:
        raise ConfigError(f"{ctx.origin('machine.kernel')}{ctx.path}: {e}") from None
    a = get_arch(arch)
    out = {
        "arch": arch, "kernel": kernel,
        "is_vm": ctx.bool_(mc, "is_vm", w, default=True),
        "block_size": ctx.size(mc, "block_size", w),
        "phys_bits": ctx.int_(mc, "phys_bits", w, default=46, minimum=30),
        "struct_page_size": ctx.int_(mc, "struct_page_size", w, default=64, minimum=16),
        "memtotal": ctx.size(mc, "memtotal", w),
        "memfree": ctx.size(mc, "memfree", w),
        "used_movable_share": ctx.float_(mc, "used_movable_share", w, default=0.5, lo=0, hi=1),
        "kernel_reserved": ctx.size(mc, "kernel_reserved", w, default=MachineConfig.kernel_reserved),
        "boot_used_unmovable": ctx.size(mc, "boot_used_unmovable", w, default=0),
        "boot_used_movable": ctx.size(mc, "boot_used_movable", w, default=0),
        "min_free_kbytes": ctx.int_(mc, "min_free_kbytes", w, minimum=0),
        "movable_node": ctx.bool_(mc, "movable_node", w, default=False),
        "auto_online": ctx.str_(mc, "auto_online", w, default="online", choices=AUTO_ONLINE),
        "online_delay": ctx.int_(mc, "online_delay", w, default=0, minimum=0),
        "seed": ctx.int_(mc, "seed", w, default=0, minimum=0),
        "distance": mc.get("distance"),
        "thp": ctx.str_(mc, "thp", w, default="always", choices=["always", "madvise", "never"]),
        "watermark_scale_factor": ctx.int_(mc, "watermark_scale_factor", w, default=10, minimum=1),
        "sysctl_read_lowmem_reserve_ratio": ctx.bool_(mc, "sysctl_read_lowmem_reserve_ratio", w,
                                                      default=False),
    }
    out["online_policy"] = ctx.str_(mc, "online_policy", w, default="contig-zones",
                                    choices=["contig-zones", "auto-movable"])
    out["auto_movable_ratio"] = ctx.int_(mc, "auto_movable_ratio", w, default=301, minimum=0)
    out["auto_movable_numa_aware"] = ctx.bool_(mc, "auto_movable_numa_aware", w, default=True)
    out["online_kernel_allocs"] = ctx.int_(mc, "online_kernel_allocs", w, default=0, minimum=0)
    out["hotplug_kobj_bytes_per_block"] = ctx.size(mc, "hotplug_kobj_bytes_per_block", w,
                                                   default=0)
    out["percpu_pagelist_high_fraction"] = ctx.int_(mc, "percpu_pagelist_high_fraction", w,
                                                    default=0, minimum=0)
    if 0 < out["percpu_pagelist_high_fraction"] < 8:   # the sysctl's -EINVAL
        raise ctx.err("machine.percpu_pagelist_high_fraction", "0 or >= 8",
                      mc["percpu_pagelist_high_fraction"])
    if out["watermark_scale_factor"] > 3000:      # the sysctl's extra2 (3000 = 30%)
        raise ctx.err("machine.watermark_scale_factor", "1..3000", mc["watermark_scale_factor"])
    nn = len(mc.get("node") or [])
    dist = out["distance"]
    if dist is not None and not (isinstance(dist, list) and len(dist) == nn and all(
            isinstance(r, list) and len(r) == nn and all(
                isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in r)
            for r in dist)):
        raise ctx.err("machine.distance", f"a {nn}x{nn} matrix of positive integers", dist)
    if out["memtotal"] is not None and ("kernel_reserved" in mc):
        raise ConfigError(f"{ctx.path}: machine.kernel_reserved: give either memtotal or "
                          "kernel_reserved, not both")
    if out["memfree"] is not None and ("boot_used_unmovable" in mc or "boot_used_movable" in mc):
        raise ConfigError(f"{ctx.path}: machine.memfree: give either memfree or "
                          "boot_used_unmovable/boot_used_movable, not both")
    nodes_raw = mc.get("node")
    if nodes_raw is None:
        raise ConfigError(f"{ctx.path}: machine.node: missing required key (expected at least "
                          "one [[machine.node]] table with a boot size)")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise ctx.err("machine.node", "an array of tables ([[machine.node]])", nodes_raw)
    nodes, cursor = [], 0
    for i, nd in enumerate(nodes_raw):
        wn = f"machine.node[{i}]"
        ctx.keys(nd, _NODE_KEYS, wn)
        if "boot" not in nd:
            raise ConfigError(f"{ctx.path}: {wn}.boot: missing required key (expected a size, "
                              "\"0\" for a memoryless node, or [[start, size], ...])")
        bootv = nd["boot"]
        ranges = []
        if isinstance(bootv, list):
            for j, pair in enumerate(bootv):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ctx.err(f"{wn}.boot[{j}]", "a [start, size] pair", pair)
                s = ctx.size({"v": pair[0]}, "v", f"{wn}.boot[{j}].start")
                n = ctx.size({"v": pair[1]}, "v", f"{wn}.boot[{j}].size")
                ranges.append((s, n))
        else:
            n = ctx.size(nd, "boot", wn)
            if n:
                start = -(-cursor // a.section_size) * a.section_size
                ranges.append((start, n))
        for s, n in ranges:
            if n % a.page_size or s % a.page_size:
                raise ctx.err(f"{wn}.boot", f"whole {a.page_size}-byte pages", [s, n])
            cursor = max(cursor, s + n)
        tables = {}
        for key in _NODE_ZONE_TABLES:
            tab = nd.get(key, {})
            if not isinstance(tab, dict) or not all(
                    z in ("DMA", "DMA32", "Normal") and isinstance(v, int)
                    and not isinstance(v, bool) and v >= 0 for z, v in tab.items()):
                raise ctx.err(f"{wn}.{key}", "a table of boot zone (DMA, DMA32, Normal) -> "
                              "pages >= 0", tab)
            tables[key] = dict(tab)
        nodes.append(NodeConfig(boot=[r for r in ranges if r[1]],
                                cpus=_cpus(ctx, nd, wn), **tables))
    if not nodes[0].boot:
        raise ConfigError(f"{ctx.path}: machine.node[0].boot: expected boot memory on node 0, "
                          "got none")
    out["nodes"] = nodes
    return out


def validate_step(ctx, st, i, machine, tags):
    w = f"step[{i}]"
    if not isinstance(st, dict):
        raise ctx.err(w, "a table", st)
    action = st.get("action")
    if action is None:
        raise ConfigError(f"{ctx.path}: {w}.action: missing required key (expected one of "
                          f"{', '.join(STEP_KEYS)})")
    if action not in STEP_KEYS:
        raise ctx.err(f"{w}.action", f"one of {', '.join(STEP_KEYS)}", action)
    ctx.keys(st, STEP_KEYS[action] | {"action", "may_fail"}, w)
    nnodes = len(machine["nodes"])
    out = {"action": action, "may_fail": ctx.bool_(st, "may_fail", w, default=False)}
    if action == "add":
        out["driver"] = ctx.str_(st, "driver", w, choices=list(DRIVERS), required=True)
        out["size"] = ctx.size(st, "size", w, required=True)
        if out["size"] <= 0:
            raise ctx.err(f"{w}.size", "a size > 0", st["size"])
        if "count" in st and "total" in st:
            raise ConfigError(f"{ctx.path}: {w}.total: give count or total, not both")
        if "total" in st:
            total = ctx.size(st, "total", w)
            if total % out["size"] or total == 0:
                raise ctx.fail(f"{w}.total", f"{fmt_size(total)} is not a non-zero multiple of "
                               f"{w}.size ({fmt_size(out['size'])})", f"{w}.size")
            out["count"] = total // out["size"]
        else:
            out["count"] = ctx.int_(st, "count", w, default=1, minimum=1)
        out["node"] = ctx.int_(st, "node", w, default=0, minimum=0)
        out["start"] = ctx.size(st, "start", w)
        out["online"] = ctx.str_(st, "online", w, default=machine["auto_online"],
                                 choices=AUTO_ONLINE)
        out["delay"] = ctx.int_(st, "delay", w, default=machine["online_delay"], minimum=0)
        out["until_oom"] = ctx.bool_(st, "until_oom", w, default=False)
        if "memmap_on_memory" in st:
            if out["driver"] != "dax-kmem":
                raise ConfigError(f"{ctx.path}: {w}.memmap_on_memory: only the dax-kmem driver "
                                  f"has this knob (driver is {out['driver']!r})")
            out["memmap_on_memory"] = ctx.bool_(st, "memmap_on_memory", w)
        if "offline_threshold" in st:
            if out["driver"] != "virtio-mem":
                raise ConfigError(f"{ctx.path}: {w}.offline_threshold: only the virtio-mem "
                                  f"driver has this option (driver is {out['driver']!r})")
            out["offline_threshold"] = ctx.size(st, "offline_threshold", w)
    elif action == "online":
        out["blocks"] = _blocks_spec(ctx, st, w, ("offline",), "offline")
        out["type"] = ctx.str_(st, "type", w, default="online", choices=ONLINE_STEP_TYPES)
    elif action == "offline":
        out["blocks"] = _blocks_spec(ctx, st, w, ("hotplugged", "last"), "hotplugged")
        out["ignore_busy"] = ctx.bool_(st, "ignore_busy", w, default=False)
    elif action == "remove":
        r = st.get("ranges", "all")
        if not (r in ("all", "last") or (isinstance(r, list) and all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in r))):
            raise ctx.err(f"{w}.ranges", "\"all\", \"last\" or a list of call indices", r)
        out["ranges"] = r
        out["offline"] = ctx.bool_(st, "offline", w, default=True)
    elif action == "alloc":
        if "kind" not in st and "gfp" not in st:
            raise ConfigError(f"{ctx.path}: {w}.kind: missing required key (expected one of "
                              f"{', '.join(KINDS)})")
        gfp_given = ctx.str_(st, "gfp", w, choices=list(GFP))
        # Without a kind, a gfp says what the memory is: movable/user memory is anonymous
        # (GFP_HIGHUSER_MOVABLE faults), reclaimable is reclaimable slab, kernel is kernel.
        default_kind = {"movable": "anon", "user": "anon", "reclaimable": "slab",
                        "kernel": "kernel"}.get(gfp_given, "anon")
        out["kind"] = ctx.str_(st, "kind", w, default=default_kind, choices=list(KINDS))
        out["gfp"] = gfp_given or KINDS[out["kind"]][0]
        allowed = _KIND_GFPS[out["kind"]]
        if out["gfp"] not in allowed:
            raise ctx.fail(f"{w}.gfp", f"{out['kind']} memory is allocated with gfp "
                           f"{' or '.join(allowed)}, got {out['gfp']!r}", f"{w}.kind")
        out["order"] = ctx.int_(st, "order", w, default=0, minimum=0)
        if out["order"] > get_arch(machine["arch"]).max_page_order:
            raise ctx.err(f"{w}.order", f"0..{get_arch(machine['arch']).max_page_order}", st["order"])
        if ("bytes" in st) == ("count" in st):
            raise ConfigError(f"{ctx.path}: {w}: expected exactly one of bytes or count")
        out["bytes"] = ctx.size(st, "bytes", w)
        out["count"] = ctx.int_(st, "count", w, minimum=0)
        out["node"] = ctx.int_(st, "node", w, default=0, minimum=0)
        out["strict"] = ctx.bool_(st, "strict", w, default=False)
        out["tag"] = ctx.str_(st, "tag", w)
        if out["tag"]:
            tags.add(out["tag"])
    elif action in ("compact", "gigantic"):
        a = get_arch(machine["arch"])
        out["node"] = ctx.int_(st, "node", w, default=0, minimum=0)
        out["zone"] = ctx.str_(st, "zone", w, choices=list(ZONE_NAMES))
        if action == "compact":
            out["order"] = ctx.int_(st, "order", w, default=-1, minimum=-1)
            if out["order"] > a.max_page_order:
                raise ctx.err(f"{w}.order", f"-1..{a.max_page_order}", st["order"])
            out["mode"] = ctx.str_(st, "mode", w, default="sync", choices=["sync", "async"])
        else:
            out["count"] = ctx.int_(st, "count", w, default=1, minimum=1)
            out["size"] = ctx.size(st, "size", w, default=1 << 30)
            pages = out["size"] // a.page_size
            if out["size"] % a.page_size or pages <= 0 or pages & (pages - 1):
                raise ctx.err(f"{w}.size", "a power-of-two number of pages", st.get("size"))
            out["gfp"] = ctx.str_(st, "gfp", w, default="user", choices=["user", "movable"])
    elif action == "free":
        out["tag"] = ctx.str_(st, "tag", w, required=True)
        if out["tag"] not in tags:
            raise ctx.err(f"{w}.tag", "the tag of an earlier alloc step", out["tag"])
    if "node" in out and out["node"] >= nnodes:
        raise ctx.err(f"{w}.node", f"a node id in 0..{nnodes - 1}", out["node"])
    return out


class _Geometry:
    """What Driver.calls() needs of a machine, known before one is booted."""

    def __init__(self, block_size):
        self.block_size = block_size


def check_placement(ctx, mc, steps):
    """Alignment, overlaps and the address space of every add, at load time.

    The memory block size follows from [machine] alone (memory_block_size_bytes() of
    the boot memory's end), so each add_memory() call the drivers would make can be laid
    out here exactly as drivers.Hotplug lays them out at run time: an add without
    `start` goes at the placement cursor (above present memory, at or above 4 GiB and
    1 GiB aligned on x86_64), and `remove` steps free their calls' ranges again. Adds
    with until_oom are laid out as if every request succeeded (the most they can take).
    add_memory() itself refuses a range not aligned to the block size (-EINVAL,
    check_hotplug_memory_range()) or overlapping present memory (-EEXIST), and one
    beyond the physical address space: here those are file errors, not run failures.
    """
    a = get_arch(mc["arch"], struct_page_size=mc["struct_page_size"])
    boot = [(s, s + n) for nc in mc["nodes"] for s, n in nc.boot]
    boot_end = max(e for _, e in boot)
    try:
        bs = a.memory_block_size(boot_end, is_vm=mc["is_vm"], forced=mc["block_size"],
                                 kernel=mc["kernel"])
    except ConfigError as e:
        raise ctx.fail("machine.block_size", str(e)) from None
    mc["memory_block_size"] = bs
    limit = 1 << mc["phys_bits"]
    geo = _Geometry(bs)
    present = []                 # [start, end, what] of boot memory and live calls
    for s, e in boot:
        present.append((s // bs * bs, -(-e // bs) * bs, "boot memory"))
    calls = []                   # per add_memory() call: [start, end, step, live]
    cursor = None
    for i, st in enumerate(steps, start=1):
        w = f"step[{i}]"
        if st["action"] == "remove":
            live = [c for c in calls if c[3]]
            if st["ranges"] == "all":
                gone = live
            elif st["ranges"] == "last":
                gone = live[-1:]
            else:
                gone = []
                for j in st["ranges"]:
                    if j >= len(calls):
                        raise ctx.fail(f"{w}.ranges", f"add_memory() call {j} does not exist: "
                                       f"the steps before make {len(calls)} calls"
                                       + (f" (0..{len(calls) - 1})" if calls else ""))
                    if not calls[j][3]:
                        raise ctx.fail(f"{w}.ranges", f"add_memory() call {j} (step[{calls[j][2]}]) "
                                       "is removed by an earlier step")
                    gone.append(calls[j])
            for c in gone:
                c[3] = False
            continue
        if st["action"] != "add":
            continue
        drv = DRIVERS[st["driver"]]
        if st["start"] is not None and st["start"] % bs:
            raise ctx.fail(f"{w}.start", f"{st['start']:#x} is not aligned to the memory block "
                           f"size ({fmt_size(bs)}): add_memory() refuses it")
        if not drv.round_to_block and st["size"] % bs:
            raise ctx.fail(f"{w}.size", f"{fmt_size(st['size'])} is not a multiple of the memory "
                           f"block size ({fmt_size(bs)}): add_memory() refuses it", f"{w}.total")
        if cursor is None:       # Hotplug.next_start() at the first add
            top = max(e for _, e, _ in present)
            if a.name == "x86_64":
                top = max(top, 4 * GiB)
            align = max(bs, 1 * GiB)
            cursor = -(-top // align) * align
        for k in range(st["count"]):
            start = cursor if st["start"] is None else st["start"] + k * st["size"]
            try:
                pieces = drv.calls(geo, start, st["size"])
            except ConfigError as e:
                raise ctx.fail(f"{w}.size", str(e), f"{w}.total", f"{w}.driver") from None
            for cs, cn in pieces:
                ce = cs + cn
                if ce > limit:
                    raise ctx.fail(f"{w}.start" if st["start"] is not None else f"{w}.size",
                                   f"request {k + 1} ends at {ce:#x}, beyond the "
                                   f"{fmt_size(limit)} physical address space (machine.phys_bits "
                                   f"= {mc['phys_bits']})", f"{w}.total", f"{w}.count")
                for ps, pe, what in present + [(c[0], c[1], f"step[{c[2]}]") for c in calls
                                                if c[3]]:
                    if cs < pe and ce > ps:
                        raise ctx.fail(f"{w}.start", f"request {k + 1} "
                                       f"[{cs:#x}-{ce - 1:#x}] overlaps {what} "
                                       f"[{ps:#x}-{pe - 1:#x}]")
                calls.append([cs, ce, i, True])
                cursor = max(cursor, ce)


#: The gfps each kind of memory is allocated with in the kernel.
_KIND_GFPS = {"anon": ("movable", "user"), "pagecache": ("movable", "user"),
              "slab": ("reclaimable",), "slab_unreclaimable": ("kernel",),
              "kernel": ("kernel",)}


def _blocks_spec(ctx, st, w, words, default):
    v = st.get("blocks", default)
    if v in words:
        return v
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                   for x in v):
        return v
    raise ctx.err(f"{w}.blocks", " or ".join(f'"{x}"' for x in words) + " or a list of block ids", v)

