"""Scenarios: a machine and a hotplug timeline in a small TOML file (read with tomllib).

A scenario is validated completely when it is loaded (`load()`), alignment and overlaps
of every add against the memory block size included; running it (`run()`) only executes.
Any problem with a file raises pagecore.errors.ConfigError naming the scenario (a
built-in by its name), the key, what was expected, and the --param or --scale that set
the value. The reference is docs/scenarios.md; in short:

File format::

    name = "default"                 # optional, default: the file name
    description = "..."
    strategies = ["boot", "block"]   # strategies `compare` runs (default: boot, block)
    scale_params = ["hotadd"]        # size params that --scale multiplies
    scale_align = "128M"             # scaled sizes are rounded down to this (default 128M)

    [params]                         # named values, used anywhere as "${name}";
    hotadd = "8G"                    # overridable from the CLI (--param) and sweeps

    [machine]
    arch = "x86_64"                  # pagecore.arch.PRESETS
    kernel = "6.12"                  # or "6.12.3", `uname -r`; KERNELS has the range
    is_vm = true
    block_size = "128M"              # optional: forced memory block size
    phys_bits = 46
    memtotal = "1991456 kB"          # optional: MemTotal right after boot, as the VM shows it
    memfree = "1500M"                # optional: MemFree right after boot
    used_movable_share = 0.5         # share of (MemTotal - MemFree) that is page cache/anon
    kernel_reserved = "48M"          # alternative to memtotal (MachineConfig default 48M)
    boot_used_unmovable = "0"        # alternatives to memfree
    boot_used_movable = "0"
    min_free_kbytes = 67584          # optional; default calculate_min_free_kbytes()
    movable_node = false
    thp = "always"                   # always | madvise | never (THP raises min_free_kbytes)
    watermark_scale_factor = 10
    sysctl_read_lowmem_reserve_ratio = false   # protection recomputed after boot
    online_policy = "contig-zones"   # or "auto-movable" (memory_hotplug.online_policy)
    auto_movable_ratio = 301         # percent of boot kernel memory ZONE_MOVABLE may reach
    auto_movable_numa_aware = true
    online_kernel_allocs = 0         # kernel pages in the first Normal block onlined (80)
    hotplug_kobj_bytes_per_block = 0 # memory block device objects per block ("5K")
    auto_online = "online"           # online | online_kernel | online_movable | offline
    online_delay = 0                 # further add_memory() calls before a block is onlined
    seed = 0
    [[machine.node]]                 # one table per NUMA node, ids 0, 1, ...
    boot = "2G"                      # size (placed after the previous node), or
                                     # [["0", "2G"], ["4G", "1G"]] as [start, size] pairs
    cpus = true
    reserved = { DMA32 = 28784 }     # optional, pages per zone (`pagecore calibrate`):
    late_free = { DMA32 = 2487 }     #   memblock reservations, pages freed after the boot
    used = { DMA = 64 }              #   watermarks, unmovable pages in use (NodeConfig)

    [[step]]
    action = "add"                   # add | online | offline | remove | alloc | free
    ...

Sizes are integers (bytes) or strings such as "128M", "2GiB", "1T", "1991456 kB".

Step actions and their keys:

    add      driver (required; pagecore.drivers.DRIVERS), size (required: one request),
             count (requests, default 1) or total (= count * size), node (0),
             start (address of the first request; default: above present memory),
             online (auto-online policy; default machine.auto_online), delay (default
             machine.online_delay), until_oom (false: the requests are a maximum, stop at
             the first ENOMEM and record it), memmap_on_memory (dax-kmem knob, false),
             offline_threshold (virtio-mem, "1G")
    online   blocks ("offline": every offline hot-added block, or a list of block ids),
             type ("online" | "online_kernel" | "online_movable"; default "online")
    offline  blocks ("hotplugged": every online hot-added block, highest first; "last";
             or a list of ids), ignore_busy (false: a failure stops the run; true: count it)
    remove   ranges ("all", "last" or a list of add_memory() call indices, in the order the
             calls were made; an index keeps naming its call after others are removed),
             offline (true: offline_and_remove_memory())

    Every step: may_fail (false; true: a failure is recorded and the run goes on).
    alloc    kind (anon | pagecache | slab | slab_unreclaimable | kernel: what /proc/meminfo
             counts it as), gfp (kernel | reclaimable | movable | user; default from the
             kind), order (0), bytes or count, node (0), strict (false: fall back along
             the zonelist), tag (name for `free`)
    free     tag (an earlier alloc's tag)

    compact  node (0), zone (default: every populated zone of the node), order (-1: the
             whole zone, as /proc/sys/vm/compact_memory), mode ("sync" | "async")
    gigantic count (1), size ("1G", a power-of-two number of pages), node (0),
             gfp ("user": hugetlb's GFP_HIGHUSER, no ZONE_MOVABLE; or "movable"),
             zone (optional: only that zone of the node); alloc_contig_pages() each

`compact` and `gigantic` need pagecore.compaction; without it they are refused at
validation: "not supported by this engine yet".

How memtotal/memfree map to the machine: pagecore boots a probe machine with
kernel_reserved = 0 and sets kernel_reserved to the difference between its MemTotal and
`memtotal` (rounded to pages). `memfree` then books MemTotal - memfree as allocations
after boot: `used_movable_share` of it as movable (page cache, anon; MIGRATE_MOVABLE,
LRU) and the rest as unmovable kernel memory (boot_used_movable / boot_used_unmovable).
Without them the MachineConfig defaults apply (kernel_reserved 48 MiB, nothing in use).
"""
from __future__ import annotations

import math
import re
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path


from pagecore._page import ZONE_MOVABLE
from pagecore.arch import PRESETS, ZONE_NAMES, GiB, MiB, get_arch
from pagecore.drivers.hotplug import AUTO_ONLINE, DRIVERS, Hotplug
from pagecore.errors import BusyError, ConfigError, OutOfMemoryError, PagecoreError
from pagecore import compaction
from pagecore.config import MachineConfig, NodeConfig
from pagecore.drivers.base.memory import MEM_OFFLINE, MEM_ONLINE
from pagecore.machine import Machine
from pagecore.mm.page_alloc import GFP, KINDS
from pagecore.strategies import all_strategies, get_strategy

__all__ = ["Scenario", "load", "builtin_names", "builtin_path", "resolve", "parse_size",
           "parse_kernel", "Run", "DEFAULT_STRATEGIES", "ENGINE_ACTIONS", "KERNELS"]

BUILTIN_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_STRATEGIES = ["boot", "block"]
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


# ---------------------------------------------------------------------------------------
# parsing helpers
# ---------------------------------------------------------------------------------------
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


def _fmt(nbytes):
    """A size as a user writes it, exactly: "128M", "4G", "1536K", else bytes."""
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if nbytes and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)


def builtin_names():
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def builtin_path(name):
    return BUILTIN_DIR / f"{name}.toml"


def resolve(ref):
    """A built-in scenario name or a path to a .toml file -> Path."""
    if isinstance(ref, Path) or "/" in str(ref) or str(ref).endswith(".toml"):
        p = Path(ref)
        if not p.is_file():
            raise ConfigError(f"scenario file {str(ref)!r} does not exist")
        return p
    p = builtin_path(ref)
    if not p.is_file():
        raise ConfigError(f"unknown scenario {ref!r}: not a built-in ({', '.join(builtin_names())}) "
                          "nor a path to a .toml file")
    return p


class _Ctx:
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


def _coerce_override(default, value):
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


def _substitute(obj, params, ctx, where):
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
        return {k: _substitute(v, params, ctx, f"{where}.{k}" if where else k)
                for k, v in obj.items()}
    if isinstance(obj, list):
        first = 1 if where == "step" else 0      # steps count from 1 (0 is the boot)
        return [_substitute(v, params, ctx, f"{where}[{i + first}]") for i, v in enumerate(obj)]
    return obj


# ---------------------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------------------
@dataclass
class Run:
    """One run of a scenario with one strategy."""
    strategy: str
    steps: list = field(default_factory=list)     # the validated step tables
    machine: Machine | None = None
    hotplug: Hotplug | None = None
    records: list = field(default_factory=list)
    error: dict | None = None       # the step failure that stopped the run (not declared)
    expected_failures: list = field(default_factory=list)   # failures of may_fail steps
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class Scenario:
    name: str
    path: Path
    description: str
    strategies: list
    params: dict
    scale: float | None
    scaled: list
    machine: dict
    steps: list
    label: str = ""              # how errors name it: "scenario NAME" or the path given
    _base: MachineConfig | None = None

    # ---- machine ----------------------------------------------------------------------
    def machine_config(self, strategy="boot"):
        """The MachineConfig for this scenario with `strategy` as the memmap mode."""
        if self._base is None:
            self._base = self._build_base()
        return replace(self._base, strategy=strategy)

    def _boot(self, cfg, key="machine"):
        try:
            return Machine(cfg)
        except ConfigError as e:
            raise ConfigError(f"{self.label}: {key}: {e}") from None

    def _build_base(self):
        mc = self.machine
        cfg = MachineConfig(
            arch=mc["arch"], kernel=mc["kernel"], nodes=mc["nodes"], phys_bits=mc["phys_bits"],
            is_vm=mc["is_vm"], block_size=mc["block_size"],
            struct_page_size=mc["struct_page_size"], strategy="boot",
            kernel_reserved=mc["kernel_reserved"],
            boot_used_unmovable=mc["boot_used_unmovable"],
            boot_used_movable=mc["boot_used_movable"], min_free_kbytes=mc["min_free_kbytes"],
            movable_node=mc["movable_node"], distance=mc["distance"], seed=mc["seed"],
            thp=mc["thp"], watermark_scale_factor=mc["watermark_scale_factor"],
            sysctl_read_lowmem_reserve_ratio=mc["sysctl_read_lowmem_reserve_ratio"],
            online_policy=mc["online_policy"], auto_movable_ratio=mc["auto_movable_ratio"],
            auto_movable_numa_aware=mc["auto_movable_numa_aware"],
            online_kernel_allocs=mc["online_kernel_allocs"],
            hotplug_kobj_bytes_per_block=mc["hotplug_kobj_bytes_per_block"])
        ps = get_arch(mc["arch"]).page_size
        if mc["memtotal"] is not None:
            cfg = replace(cfg, kernel_reserved=0, boot_used_unmovable=0, boot_used_movable=0)
            total0 = self._boot(cfg).mem_total_pages * ps
            if mc["memtotal"] > total0:
                raise ConfigError(f"{self.label}: machine.memtotal: expected at most "
                                  f"{total0 >> 10} kB (boot memory minus its memmap and the fixed "
                                  f"reservations), got {mc['memtotal'] >> 10} kB")
            reserve = (total0 - mc["memtotal"]) // ps * ps
            for _ in range(4):      # overlapping reservations: converge on the target
                got = self._boot(replace(cfg, kernel_reserved=reserve)).mem_total_pages * ps
                diff = got - mc["memtotal"]
                if 0 <= diff < ps:
                    break
                reserve += diff // ps * ps
            cfg = replace(cfg, kernel_reserved=reserve)
        if mc["memfree"] is not None:
            cfg = replace(cfg, boot_used_unmovable=0, boot_used_movable=0)
            free0 = self._boot(cfg).mem_free_pages * ps
            if mc["memfree"] > free0:
                raise ConfigError(f"{self.label}: machine.memfree: expected at most {free0 >> 10} kB "
                                  f"(MemFree of the booted machine), got {mc['memfree'] >> 10} kB")
            used = (free0 - mc["memfree"]) // ps * ps
            mov = int(used * mc["used_movable_share"]) // ps * ps
            cfg = replace(cfg, boot_used_movable=mov, boot_used_unmovable=used - mov)
            try:
                Machine(cfg)
            except ConfigError:
                # The bookings derived from memfree do not fit: blame memfree, the key
                # the user wrote. Allocations stop at each zone's min watermark plus its
                # lowmem reserve (__zone_watermark_ok()), so MemFree cannot go below them.
                m0 = self._boot(replace(cfg, boot_used_unmovable=0, boot_used_movable=0))
                floor = sum(min(z.free_pages, z.watermark[0] + max(z.lowmem_reserve))
                            for z in m0.zones()) * ps
                raise ConfigError(f"{self.label}: machine.memfree: expected at least about "
                                  f"{floor >> 10} kB (allocations stop at the zones' min "
                                  f"watermarks and lowmem reserves), got "
                                  f"{mc['memfree'] >> 10} kB") from None
        return cfg

    # ---- run ----------------------------------------------------------------------------
    def run(self, strategy, *, stop_after=None, on_step=None, backend=None, check=False):
        """Boot a fresh machine with `strategy` and run the steps (all, or up to and
        including step `stop_after`; step 0 is the boot). A PagecoreError ends the run and
        is recorded in `Run.error`. `on_step(run, record)` is called after each step.
        With `check`, Machine.check() runs after the boot and after every step (a failed
        step too: a refused call must leave the machine consistent), and its
        InvariantError propagates instead of being recorded."""
        if stop_after is not None and (not isinstance(stop_after, int) or isinstance(stop_after, bool)
                                       or stop_after < 0):
            raise ConfigError(f"{self.path}: stop_after={stop_after!r}: expected a step number "
                              f"(0 = right after boot; the scenario has {len(self.steps)} steps)")
        get_strategy(strategy)       # an unknown name is the caller's error, not the file's
        run = Run(strategy, steps=self.steps)
        t0, c0 = time.perf_counter(), time.process_time()
        cfg = self.machine_config(strategy)
        try:
            m = Machine(cfg, backend=backend)
        except ConfigError as e:
            raise ConfigError(f"{self.label}: machine: {e}") from None
        run.machine = m
        run.hotplug = Hotplug(m, online=self.machine["auto_online"],
                              delay=self.machine["online_delay"])
        tags = {}
        self._record(run, 0, "boot", {}, 0.0, on_step)
        if check:
            m.check()
        for i, step in enumerate(self.steps, start=1):
            if stop_after is not None and i > stop_after:
                break
            ts = time.perf_counter()
            try:
                detail = _ACTIONS[step["action"]](run, step, tags)
            except ConfigError as e:        # a setting that only the booted machine refutes
                raise ConfigError(f"{self.label}: step[{i}]: {e}") from None
            except PagecoreError as e:
                err = {"step": i, "action": step["action"], "type": type(e).__name__,
                       "errno": getattr(e, "errno", None), "message": str(e)}
                self._record(run, i, step["action"], {"error": err["message"],
                                                      "expected": step["may_fail"]},
                             time.perf_counter() - ts, on_step)
                if check:
                    m.check()
                if step["may_fail"]:      # declared: recorded, and the run goes on
                    run.expected_failures.append(err)
                    continue
                run.error = err
                break
            self._record(run, i, step["action"], detail, time.perf_counter() - ts, on_step)
            if check:
                m.check()
        run.seconds = time.perf_counter() - t0
        run.cpu_seconds = time.process_time() - c0
        return run

    @staticmethod
    def _record(run, index, action, detail, seconds, on_step):
        m = run.machine
        kb = m.arch.page_size >> 10       # the counters, not meminfo(): no page-array scan
        # free memory outside ZONE_MOVABLE: what the kernel's own allocations can use
        kfree = sum(z.free_pages for z in m.zones() if z.zid != ZONE_MOVABLE)
        rec = {"index": index, "action": action, "MemTotal_kB": m.mem_total_pages * kb,
               "MemFree_kB": m.mem_free_pages * kb, "MemFree_kernel_zones_kB": kfree * kb,
               "seconds": round(seconds, 6), "detail": detail}
        run.records.append(rec)
        if on_step is not None:
            on_step(run, rec)

    def step_label(self, index):
        """A step in words, for reports: "add a 4G DIMM (acpi), online_movable"."""
        if index == 0:
            return "boot"
        st = self.steps[index - 1]
        a = st["action"]
        if a == "add":
            what = {"acpi": "DIMM", "virtio-mem": "virtio-mem request",
                    "dax-kmem": "dax range", "ppc64-dlpar": "LMB request"}.get(
                        st["driver"], f"{st['driver']} request")
            n = st["count"]
            size = _fmt(st["size"])
            head = f"add {'a' if n == 1 else n} {size} {what}{'s' if n > 1 else ''}"
            if st["until_oom"]:
                head = f"add up to {n} x {size} {what}s until ENOMEM"
            return f"{head}, {st['online']}"
        if a == "alloc":
            amount = _fmt(st["bytes"]) if st["bytes"] is not None else f"{st['count']} blocks"
            return f"allocate {amount} of {st['kind']} memory"
        if a == "remove":
            return f"remove {st['ranges'] if isinstance(st['ranges'], str) else 'calls ' + str(st['ranges'])}"
        if a in ("online", "offline"):
            return f"{a} {st['blocks'] if isinstance(st['blocks'], str) else 'blocks'}"
        return a

    def summary(self):
        """JSON-able description of the scenario as loaded."""
        mc = self.machine
        return {"name": self.name, "file": str(self.path), "description": self.description,
                "params": dict(self.params), "scale": self.scale, "scaled_params": self.scaled,
                "machine": {"arch": mc["arch"], "kernel": ".".join(map(str, mc["kernel"])),
                            "is_vm": mc["is_vm"], "page_size": get_arch(mc["arch"]).page_size,
                            "block_size": mc["memory_block_size"],
                            "nodes": [{"boot": [[s, n] for s, n in nc.boot], "cpus": nc.cpus}
                                      for nc in mc["nodes"]]},
                "steps": [dict(s, label=self.step_label(i)) for i, s in
                          enumerate(self.steps, start=1)]}


# ---------------------------------------------------------------------------------------
# step actions
# ---------------------------------------------------------------------------------------
def _do_add(run, s, tags):
    hp = run.hotplug
    agg = {"driver": s["driver"], "requested": 0, "added": 0, "calls": 0, "flagged_calls": 0,
           "self_hosted_calls": 0, "strategies": {}, "stopped": None, "oom": None}
    opts = {k: s[k] for k in ("memmap_on_memory", "offline_threshold") if k in s}
    for i in range(s["count"]):
        start = None if s["start"] is None else s["start"] + i * s["size"]
        rep = hp.add(s["driver"], s["size"], nid=s["node"], start=start, online=s["online"],
                     delay=s["delay"], until_oom=s["until_oom"], **opts)
        agg["requested"] += s["size"]
        for k in ("added", "calls", "flagged_calls", "self_hosted_calls"):
            agg[k] += rep[k]
        for k, v in rep["strategies"].items():
            agg["strategies"][k] = agg["strategies"].get(k, 0) + v
        if rep["stopped"]:
            agg["stopped"] = rep["stopped"]
        if rep["oom"]:
            agg["oom"] = dict(rep["oom"], after_bytes=agg["added"])
            break
    if s["until_oom"]:
        agg["requested"] = s["count"] * s["size"]
    return agg


def _select_blocks(run, spec, default_state):
    hp = run.hotplug
    if spec == "offline":
        return hp.hotplugged_blocks(MEM_OFFLINE)
    if spec == "hotplugged":
        return hp.hotplugged_blocks(MEM_ONLINE)[::-1]
    if spec == "last":
        return hp.hotplugged_blocks(default_state)[-1:]
    return list(spec)


def _do_online(run, s, tags):
    bl = _select_blocks(run, s["blocks"], MEM_OFFLINE)
    if bl:
        run.machine.online_pages_blocks(bl, s["type"])
    return {"blocks": len(bl), "type": s["type"]}


def _do_offline(run, s, tags):
    bl = _select_blocks(run, s["blocks"], MEM_ONLINE)
    done, failed, migrated = 0, [], 0
    for b in bl:
        try:
            rep = run.machine.offline_memory_block(b)
            migrated += rep.get("migrated", 0)
            done += 1
        except (BusyError, OutOfMemoryError) as e:
            if not s["ignore_busy"]:
                raise
            failed.append({"block": b, "reason": e.reason or type(e).__name__})
    return {"offlined": done, "failed": len(failed), "failures": failed[:16],
            "migrated_pages": migrated}


def _do_remove(run, s, tags):
    hp = run.hotplug
    live = [i for i, r in enumerate(hp.calls) if not r.removed]
    if s["ranges"] == "all":
        idx = live
    elif s["ranges"] == "last":
        idx = live[-1:]
    else:
        # Indices name add_memory() calls in the order they were made, removed ones
        # included, so they mean the same call whatever was removed before.
        idx = sorted(set(s["ranges"]))
        n = len(hp.calls)
        bad = [i for i in idx if i >= n]
        if bad:
            raise ConfigError(f"ranges: add_memory() call {bad[0]} does not exist: {n} calls "
                              f"were made before this step" + (f" (0..{n - 1})" if n else ""))
        gone = [i for i in idx if hp.calls[i].removed]
        if gone:
            raise ConfigError(f"ranges: add_memory() call {gone[0]} was removed by an earlier "
                              "step")
    removed = 0
    for i in sorted(idx, reverse=True):
        removed += hp.remove(i, offline=s["offline"]).size
    return {"ranges": len(idx), "removed": removed}


def _do_alloc(run, s, tags):
    m = run.machine
    unit = m.arch.page_size << s["order"]
    count = s["count"] if s["count"] is not None else s["bytes"] // unit
    got = m.alloc_pages(s["node"], s["order"], s["gfp"], count, strict_node=s["strict"],
                        extra_flags=KINDS[s["kind"]][1])
    if s["tag"]:
        tags.setdefault(s["tag"], []).append(got)
    return {"kind": s["kind"], "gfp": s["gfp"], "order": s["order"], "requested": int(count),
            "allocated": int(len(got)), "shortfall": int(count - len(got))}


def _do_free(run, s, tags):
    # each tagged alloc step's Allocation, freed wherever migration has moved its pages
    allocs = tags.pop(s["tag"], [])
    freed = sum(run.machine.free_pages(a) for a in allocs if len(run.machine.find_allocation(a)))
    return {"tag": s["tag"], "freed_pages": int(freed)}


def _zones_of_step(m, s):
    node = m.nodes[s["node"]]
    if s["zone"] is not None:
        return [node.zones[ZONE_NAMES.index(s["zone"])]]
    return [z for z in node.zones if z.present_pages]


def _do_compact(run, s, tags):
    out = {"zones": {}, "migrated_pages": 0}
    for z in _zones_of_step(run.machine, s):
        rep = compaction.compact_zone(run.machine, z, s["order"], s["mode"])
        out["zones"][z.name] = rep["result"]
        out["migrated_pages"] += rep["migrated_pages"]
    return out


def _do_gigantic(run, s, tags):
    m = run.machine
    nr = s["size"] // m.arch.page_size
    got = []
    for _ in range(s["count"]):
        if s["zone"] is not None:
            pfn = compaction.alloc_contig_pages(m, nr, zone=(s["node"], s["zone"]))
        else:
            pfn = compaction.alloc_contig_pages(m, nr, s["node"], gfp=s["gfp"])
        if pfn is None:
            break
        got.append(int(pfn))
    return {"size": s["size"], "requested": s["count"], "allocated": len(got),
            "start_pfns": got[:16]}


_ACTIONS = {"add": _do_add, "online": _do_online, "offline": _do_offline,
            "remove": _do_remove, "alloc": _do_alloc, "free": _do_free,
            "compact": _do_compact, "gigantic": _do_gigantic}


# ---------------------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------------------
_TOP_KEYS = {"name", "description", "strategies", "params", "scale_params", "scale_align",
             "machine", "step"}
_MACHINE_KEYS = {"arch", "kernel", "is_vm", "block_size", "phys_bits", "struct_page_size",
                 "memtotal", "memfree", "used_movable_share", "kernel_reserved",
                 "boot_used_unmovable", "boot_used_movable", "min_free_kbytes", "movable_node",
                 "auto_online", "online_delay", "seed", "node", "distance", "thp",
                 "watermark_scale_factor", "sysctl_read_lowmem_reserve_ratio",
                 "online_policy", "auto_movable_ratio", "auto_movable_numa_aware",
                 "online_kernel_allocs", "hotplug_kobj_bytes_per_block"}
_NODE_KEYS = {"boot", "cpus", "reserved", "late_free", "used"}
_NODE_ZONE_TABLES = ("reserved", "late_free", "used")
_STEP_KEYS = {
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


def load(ref, params=None, scale=None):
    """Load and validate a scenario (built-in name or path). `params` override [params];
    `scale` multiplies the scenario's `scale_params`."""
    path = resolve(ref)
    builtin = path.resolve().parent == BUILTIN_DIR and path.stem in builtin_names() \
        and not ("/" in str(ref) or str(ref).endswith(".toml"))
    # a built-in is named as the user named it, not by its place in site-packages
    ctx = _Ctx(f"scenario {path.stem}" if builtin else str(ref))
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{ctx.path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{ctx.path}: cannot read: {e.strerror}") from None
    ctx.keys(raw, _TOP_KEYS, "(top level)")

    # params, overrides, scale
    declared = raw.get("params", {})
    if not isinstance(declared, dict):
        raise ctx.err("params", "a table of named values", declared)
    values = dict(declared)
    for k, v in (params or {}).items():
        if k not in declared:
            raise ConfigError(f"--param {k}={v}: {ctx.path}: params.{k}: unknown parameter; "
                              f"declared: {', '.join(sorted(declared)) or 'none'}")
        values[k] = _coerce_override(declared[k], v)
        ctx.overrides[k] = v
    scale_params = raw.get("scale_params", [])
    if not isinstance(scale_params, list) or not all(isinstance(x, str) for x in scale_params):
        raise ctx.err("scale_params", "a list of parameter names", scale_params)
    for p in scale_params:
        if p not in declared:
            raise ConfigError(f"{ctx.path}: scale_params: {p!r} is not declared in [params]")
    align = ctx.size(raw, "scale_align", "(top level)", default=128 * MiB) or 128 * MiB
    scaled = []
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
                or not math.isfinite(scale) or scale <= 0:
            raise ConfigError(f"--scale {scale}: expected a finite number > 0")
        for p in scale_params:
            v = parse_size(values[p], f"{ctx.origin(p)}{ctx.path}: params.{p}")
            values[p] = max(int(v * scale) // align * align, align)
            scaled.append(p)
            if p not in ctx.overrides:
                ctx.scaled[p] = (scale, values[p])

    body = {k: v for k, v in raw.items() if k not in ("params",)}
    body = _substitute(body, values, ctx, "")

    name = ctx.str_(body, "name", "(top level)", default=path.stem)
    description = ctx.str_(body, "description", "(top level)", default="")
    strategies = body.get("strategies", DEFAULT_STRATEGIES)
    known = all_strategies()
    if not isinstance(strategies, list) or not strategies or \
            not all(isinstance(s, str) for s in strategies):
        raise ctx.err("strategies", "a non-empty list of strategy names", strategies)
    for s in strategies:
        if s not in known:
            raise ConfigError(f"{ctx.path}: strategies: unknown strategy {s!r}; expected one of "
                              f"{', '.join(known)}")
    machine = _validate_machine(ctx, body.get("machine"))
    steps_raw = body.get("step", [])
    if not isinstance(steps_raw, list):
        raise ctx.err("step", "an array of tables ([[step]])", steps_raw)
    steps = []
    tags = set()
    for i, st in enumerate(steps_raw, start=1):
        steps.append(_validate_step(ctx, st, i, machine, tags))
    _check_placement(ctx, machine, steps)
    return Scenario(name=name, path=path, description=description, strategies=list(strategies),
                    params=values, scale=scale, scaled=scaled, machine=machine, steps=steps,
                    label=ctx.path)


def _validate_machine(ctx, mc):
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
                                cpus=ctx.bool_(nd, "cpus", wn, default=True), **tables))
    if not nodes[0].boot:
        raise ConfigError(f"{ctx.path}: machine.node[0].boot: expected boot memory on node 0, "
                          "got none")
    out["nodes"] = nodes
    return out


def _validate_step(ctx, st, i, machine, tags):
    w = f"step[{i}]"
    if not isinstance(st, dict):
        raise ctx.err(w, "a table", st)
    action = st.get("action")
    if action is None:
        raise ConfigError(f"{ctx.path}: {w}.action: missing required key (expected one of "
                          f"{', '.join(_STEP_KEYS)})")
    if action not in _STEP_KEYS:
        raise ctx.err(f"{w}.action", f"one of {', '.join(_STEP_KEYS)}", action)
    ctx.keys(st, _STEP_KEYS[action] | {"action", "may_fail"}, w)
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
                raise ctx.fail(f"{w}.total", f"{_fmt(total)} is not a non-zero multiple of "
                               f"{w}.size ({_fmt(out['size'])})", f"{w}.size")
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


def _check_placement(ctx, mc, steps):
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
                           f"size ({_fmt(bs)}): add_memory() refuses it")
        if not drv.round_to_block and st["size"] % bs:
            raise ctx.fail(f"{w}.size", f"{_fmt(st['size'])} is not a multiple of the memory "
                           f"block size ({_fmt(bs)}): add_memory() refuses it", f"{w}.total")
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
                                   f"{_fmt(limit)} physical address space (machine.phys_bits "
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

