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
    percpu_pagelist_high_fraction = 0  # pcp high from the low watermark; or >= 8: managed / n
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
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path


from pagecore.kernels.page import ZONE_MOVABLE
from pagecore.arch import ZONE_NAMES, MiB, get_arch
from pagecore.drivers.hotplug import Hotplug
from pagecore.errors import BusyError, ConfigError, OutOfMemoryError, PagecoreError
from pagecore import compaction
from pagecore.config import MachineConfig
from pagecore.drivers.base.memory import MEM_OFFLINE, MEM_ONLINE
from pagecore.machine import Machine
from pagecore.mm.page_alloc import KINDS
from pagecore.strategies import all_strategies, get_strategy
from pagecore.scenario_format import (ENGINE_ACTIONS, KERNELS, TOP_KEYS, Ctx, check_placement,
                                      coerce_override, fmt_size, parse_kernel, parse_size,
                                      substitute, validate_machine, validate_step)

__all__ = ["Scenario", "load", "builtin_names", "builtin_path", "resolve", "parse_size",
           "parse_kernel", "Run", "DEFAULT_STRATEGIES", "ENGINE_ACTIONS", "KERNELS"]

BUILTIN_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_STRATEGIES = ["boot", "block"]


# ---------------------------------------------------------------------------------------
# parsing helpers
# ---------------------------------------------------------------------------------------
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
            hotplug_kobj_bytes_per_block=mc["hotplug_kobj_bytes_per_block"],
            percpu_pagelist_high_fraction=mc["percpu_pagelist_high_fraction"])
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
               "free_pcp_kB": m.free_pcp_pages * kb,
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
            size = fmt_size(st["size"])
            head = f"add {'a' if n == 1 else n} {size} {what}{'s' if n > 1 else ''}"
            if st["until_oom"]:
                head = f"add up to {n} x {size} {what}s until ENOMEM"
            return f"{head}, {st['online']}"
        if a == "alloc":
            amount = fmt_size(st["bytes"]) if st["bytes"] is not None else f"{st['count']} blocks"
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
    # the sums /proc/vmstat's compact_migrate_scanned and compact_free_scanned grow by
    out = {"zones": {}, "migrated_pages": 0, "migrate_scanned": 0, "free_scanned": 0}
    for z in _zones_of_step(run.machine, s):
        rep = compaction.compact_zone(run.machine, z, s["order"], s["mode"])
        out["zones"][z.name] = rep["result"]
        for k in ("migrated_pages", "migrate_scanned", "free_scanned"):
            out[k] += rep[k]
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
def load(ref, params=None, scale=None):
    """Load and validate a scenario (built-in name or path). `params` override [params];
    `scale` multiplies the scenario's `scale_params`."""
    path = resolve(ref)
    builtin = path.resolve().parent == BUILTIN_DIR and path.stem in builtin_names() \
        and not ("/" in str(ref) or str(ref).endswith(".toml"))
    # a built-in is named as the user named it, not by its place in site-packages
    ctx = Ctx(f"scenario {path.stem}" if builtin else str(ref))
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{ctx.path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{ctx.path}: cannot read: {e.strerror}") from None
    ctx.keys(raw, TOP_KEYS, "(top level)")

    # params, overrides, scale
    declared = raw.get("params", {})
    if not isinstance(declared, dict):
        raise ctx.err("params", "a table of named values", declared)
    values = dict(declared)
    for k, v in (params or {}).items():
        if k not in declared:
            raise ConfigError(f"--param {k}={v}: {ctx.path}: params.{k}: unknown parameter; "
                              f"declared: {', '.join(sorted(declared)) or 'none'}")
        values[k] = coerce_override(declared[k], v)
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
    body = substitute(body, values, ctx, "")

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
    machine = validate_machine(ctx, body.get("machine"))
    steps_raw = body.get("step", [])
    if not isinstance(steps_raw, list):
        raise ctx.err("step", "an array of tables ([[step]])", steps_raw)
    steps = []
    tags = set()
    for i, st in enumerate(steps_raw, start=1):
        steps.append(validate_step(ctx, st, i, machine, tags))
    check_placement(ctx, machine, steps)
    return Scenario(name=name, path=path, description=description, strategies=list(strategies),
                    params=values, scale=scale, scaled=scaled, machine=machine, steps=steps,
                    label=ctx.path)


