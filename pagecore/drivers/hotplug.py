"""Hotplug drivers as callers of add_memory(), with their real granularity and their use of
MHP_MEMMAP_ON_MEMORY per kernel generation (docs/model.md#who-passes-mhp_memmap_on_memory), plus the
auto-online policy that follows an add (docs/model.md#who-passes-mhp_memmap_on_memory).

The machine's default strategy (`MachineConfig.strategy`) stands for the
`memory_hotplug.memmap_on_memory` mode *and* the generation of the kernel:

    strategy      generation   mode
    boot          -            off: no caller ever gets a self-hosted memmap
    range         v3           seed series (2019): whole-range memmap per add_memory()
    block-5.13    5.13         v5.13-v6.5
    block-6.6     6.6          v6.6-v6.7
    block, force  6.8          v6.8+ (force: memmap padded to whole pageblocks)

A driver decides per add_memory() call whether it passes MHP_MEMMAP_ON_MEMORY. Only then
does the machine's strategy apply (which may still fall back to the classic path when
mhp_supports_memmap_on_memory() says no, e.g. a multi-block range before v6.8, or 64K
pages without force); otherwise the call uses "boot" (memmap from the buddy at add time).

Drivers (name: granularity; flag):

    acpi          one call per DIMM range; v3: always; 5.13/6.6: only for a range of
                  exactly one memory block; 6.8: any size (the core splits per block)
    virtio-mem    one call per memory block (Sub Block Mode); never; stops plugging while
                  its own offline memory is at or above `offline_threshold` (1 GiB)
    dax-kmem      one call per dax range (CXL/PMEM, usually a CPU-less node); only from 6.8
                  and only with the device's memmap_on_memory=1 knob (default 0)
    hv-balloon    HA_CHUNK = 128 MiB calls, MHP_MERGE_RESOURCE; never
    xen-balloon   one call per request (rounded up to the block size); never
    ppc64-dlpar   one LMB (= memory block) per call; from 6.6
    s390-standby  one memory block per call; from 6.8 (EDAT1 assumed)
    probe         sysfs `probe`: one memory block per call; never

The Hotplug controller applies the auto-online policy ("online", "online_kernel",
"online_movable" or "offline") after every add_memory() call, with an optional `delay`: the
number of further add_memory() calls that happen before a call's blocks are onlined (udev
lagging behind a balloon driver: the OOM window of the classic path, where every add takes
memmap memory before any added memory is usable). Pending blocks are onlined at the end of
each driver request (`flush()`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pagecore.arch import GiB, MiB
from pagecore.errors import ConfigError, OutOfMemoryError, StateError
from pagecore.kernels.page import ZONE_MOVABLE
from pagecore.drivers.base.memory import MEM_OFFLINE
from pagecore.strategies import get_strategy

__all__ = ["generation", "Driver", "DRIVERS", "get_driver", "Hotplug", "AddedRequest", "AUTO_ONLINE"]

AUTO_ONLINE = ("online", "online_kernel", "online_movable", "offline")
GENERATIONS = ("off", "v3", "5.13", "6.6", "6.8")


def generation(strategy):
    """The memmap_on_memory mode/generation a strategy stands for (see module docstring)."""
    s = get_strategy(strategy)
    if s.name == "boot":
        return "off"
    if s.seed_v3:
        return "v3"
    if tuple(s.kernel) < (6, 6):
        return "5.13"
    if tuple(s.kernel) < (6, 8):
        return "6.6"
    return "6.8"


@dataclass(frozen=True)
class Driver:
    """A hotplug driver: how a request is cut into add_memory() calls and when it passes
    MHP_MEMMAP_ON_MEMORY. `flag_gens`: generations in which it passes the flag for every
    call; `one_block_gens`: generations in which it passes it only for one-block calls."""
    name: str
    description: str
    split: str                      # "whole", "block" or "chunk"
    chunk: int = 0                  # bytes per call for split == "chunk"
    flag_gens: tuple = ()
    one_block_gens: tuple = ()
    knob: str | None = None         # option that must be true for the flag (dax: memmap_on_memory)
    options: tuple = ()             # accepted driver options
    round_to_block: bool = False    # the request is rounded up to whole memory blocks

    def calls(self, machine, start, size):
        """[(start, size)] of the add_memory() calls for one request."""
        bs = machine.block_size
        if self.round_to_block:
            size = -(-size // bs) * bs
        if self.split == "block":
            step = bs
        elif self.split == "chunk":
            if self.chunk % bs:
                raise ConfigError(f"driver {self.name}: its {self.chunk >> 20} MiB add_memory() "
                                  f"chunks are not a multiple of the memory block size "
                                  f"{bs >> 20} MiB")
            step = self.chunk
        else:
            step = size
        if size % step:
            raise ConfigError(f"driver {self.name}: request of {size:#x} bytes is not a multiple "
                              f"of its add_memory() granularity {step:#x}")
        return [(start + i, step) for i in range(0, size, step)]

    def passes_flag(self, machine, gen, call_size, opts):
        """Whether this add_memory() call carries MHP_MEMMAP_ON_MEMORY."""
        if gen == "off":
            return False
        if self.knob and not opts.get(self.knob, False):
            return False
        if gen in self.flag_gens:
            return True
        return gen in self.one_block_gens and call_size == machine.block_size


DRIVERS = {d.name: d for d in (
    Driver("acpi", "ACPI memory device (acpi_memhotplug.c): one add_memory() per DIMM range",
           "whole", flag_gens=("v3", "6.8"), one_block_gens=("5.13", "6.6")),
    Driver("virtio-mem", "virtio-mem (Sub Block Mode): one memory block per add_memory(), "
           "MHP_MERGE_RESOURCE|MHP_NID_IS_MGID, never the memmap flag", "block",
           options=("offline_threshold",)),
    Driver("dax-kmem", "dax/kmem (CXL, PMEM): one add_memory() per dax range, flag from v6.8 "
           "with daxX.Y/memmap_on_memory=1", "whole", flag_gens=("6.8",),
           knob="memmap_on_memory", options=("memmap_on_memory",)),
    Driver("hv-balloon", "Hyper-V balloon: HA_CHUNK (128 MiB) add_memory() calls, "
           "MHP_MERGE_RESOURCE, never the memmap flag", "chunk", chunk=128 * MiB),
    Driver("xen-balloon", "Xen balloon: add_memory_resource() per request, "
           "MHP_MERGE_RESOURCE, never the memmap flag", "whole", round_to_block=True),
    Driver("ppc64-dlpar", "ppc64 pseries DLPAR: one LMB per add_memory(), flag from v6.6",
           "block", flag_gens=("6.6", "6.8")),
    Driver("s390-standby", "s390 standby memory: one block per add_memory(), flag from v6.8",
           "block", flag_gens=("6.8",)),
    Driver("probe", "sysfs probe: one block per add_memory(), MHP_NONE", "block"),
)}


def get_driver(name):
    try:
        return DRIVERS[name]
    except KeyError:
        raise ConfigError(f"unknown hotplug driver {name!r}; known: {', '.join(DRIVERS)}") from None


@dataclass
class _Pending:
    remaining: int
    blocks: list
    online_type: str
    driver: str


@dataclass
class AddedRequest:
    """One add_memory() call made by a driver (the unit of removal by that driver)."""
    driver: str
    nid: int
    start: int
    size: int
    strategy: str
    flag: bool
    removed: bool = False       # removed since; the call keeps its index (its place in calls)


class Hotplug:
    """Drives a Machine the way hotplug drivers and the auto-online policy do."""

    def __init__(self, machine, online="online", delay=0):
        if online not in AUTO_ONLINE:
            raise ConfigError(f"auto-online policy {online!r}: expected one of "
                              f"{', '.join(AUTO_ONLINE)}")
        self.m = machine
        self.online = online
        self.delay = int(delay)
        self.gen = generation(machine.default_strategy)
        self.pending: list[_Pending] = []
        #: every add_memory() call made, in order, removed ones included, so that a call's
        #: index (what a scenario's `remove ranges = [i]` names) never shifts
        self.calls: list[AddedRequest] = []
        self._cursor = None

    @property
    def added(self):
        """The add_memory() calls whose memory is still present, in call order."""
        return [r for r in self.calls if not r.removed]

    # ---- address allocation ------------------------------------------------------------
    def next_start(self, size):
        """The next free block-aligned address for hot-added memory: above all present
        memory, and on x86_64 at or above 4 GiB and 1 GiB aligned like QEMU's device
        memory region."""
        m = self.m
        if self._cursor is None:
            present = np.nonzero(m.blocks["state"])[0]
            top = (int(present[-1]) + 1) * m.block_size if len(present) else 0
            align = max(m.block_size, 1 * GiB)
            if m.arch.name == "x86_64":
                top = max(top, 4 * GiB)
            self._cursor = -(-top // align) * align
        return self._cursor

    # ---- the driver request ------------------------------------------------------------
    def add(self, driver, size, nid=0, start=None, online=None, delay=None, until_oom=False,
            **opts):
        """One driver request of `size` bytes on node `nid`. Returns a report dict:
        calls made, bytes added, flagged calls, strategies used, and for `until_oom` the
        ENOMEM that stopped it (a failed call is rolled back by the machine)."""
        drv = get_driver(driver) if isinstance(driver, str) else driver
        unknown = set(opts) - set(drv.options)
        if unknown:
            raise ConfigError(f"driver {drv.name} has no option {sorted(unknown)[0]!r}; "
                              f"options: {', '.join(drv.options) or 'none'}")
        policy = self.online if online is None else online
        if policy not in AUTO_ONLINE:
            raise ConfigError(f"auto-online policy {policy!r}: expected one of {', '.join(AUTO_ONLINE)}")
        delay = self.delay if delay is None else int(delay)
        m = self.m
        auto = self.next_start(size)
        if start is None:
            start = auto
        calls = drv.calls(m, start, size)
        report = {"driver": drv.name, "requested": size, "added": 0, "calls": 0,
                  "flagged_calls": 0, "self_hosted_calls": 0, "strategies": {}, "stopped": None,
                  "oom": None}
        threshold = opts.get("offline_threshold", 1 * GiB) if drv.name == "virtio-mem" else None
        offline = self._offline_bytes(drv.name) if threshold is not None else 0
        for cstart, csize in calls:
            if threshold is not None and offline >= threshold:
                report["stopped"] = (f"virtio-mem waits: {offline >> 20} MiB of its memory is "
                                     f"offline (offline_threshold {threshold >> 20} MiB)")
                break
            flag = drv.passes_flag(m, self.gen, csize, opts)
            strat = m.default_strategy.name if flag else "boot"
            try:
                rng = m.add_memory(nid, cstart, csize, strategy=m.default_strategy if flag else "boot")
            except OutOfMemoryError as e:
                if not until_oom:
                    raise
                kb = m.arch.page_size >> 10
                report["oom"] = {"after_bytes": report["added"], "address": cstart,
                                 "MemFree_kB": m.mem_free_pages * kb,
                                 "kernel_zones_free_kB": kb * sum(
                                     z.free_pages for z in m.zones() if z.zid != ZONE_MOVABLE),
                                 "message": str(e)}
                report["stopped"] = "ENOMEM"
                break
            self._cursor = max(self._cursor, cstart + csize)
            self.calls.append(AddedRequest(drv.name, nid, cstart, csize, strat, flag))
            report["calls"] += 1
            report["added"] += csize
            report["flagged_calls"] += int(flag)
            report["self_hosted_calls"] += int(rng.self_hosted)
            report["strategies"][strat] = report["strategies"].get(strat, 0) + 1
            blocks = list(range(cstart // m.block_size, (cstart + csize) // m.block_size))
            offline += csize
            for d, n in self._after_add(blocks, policy, delay, drv.name):
                offline -= n * m.block_size if d == drv.name else 0
        self.flush()
        return report

    def _offline_bytes(self, driver):
        """Bytes of this driver's blocks that are still offline."""
        m = self.m
        ids = [b for r in self.added if r.driver == driver
               for b in range(r.start // m.block_size, (r.start + r.size) // m.block_size)]
        if not ids:
            return 0
        return int((m.blocks["state"][np.asarray(ids)] == MEM_OFFLINE).sum()) * m.block_size

    def _after_add(self, blocks, policy, delay, driver):
        """Queue the new blocks for the policy; online what is due. Returns
        [(driver, blocks onlined)]."""
        for p in self.pending:
            p.remaining -= 1
        if policy != "offline":
            self.pending.append(_Pending(delay, blocks, policy, driver))
        due = [p for p in self.pending if p.remaining <= 0]
        self.pending = [p for p in self.pending if p.remaining > 0]
        return [(p.driver, self._online(p)) for p in due]

    def _online(self, p):
        m = self.m
        bl = [b for b in p.blocks if m.blocks["state"][b] == MEM_OFFLINE]
        if bl:
            m.online_pages_blocks(bl, p.online_type)
        return len(bl)

    def flush(self):
        """Online every block still waiting for the auto-online policy."""
        due, self.pending = self.pending, []
        for p in due:
            self._online(p)

    # ---- blocks and ranges -------------------------------------------------------------
    def hotplugged_blocks(self, state=None):
        """Ids of hot-added blocks (optionally only those in `state`), ascending."""
        b = self.m.blocks
        sel = (b["state"] != 0) & ~b["boot"]
        if state is not None:
            sel &= b["state"] == state
        return np.nonzero(sel)[0].tolist()

    def remove(self, index, offline=True):
        """Remove the memory of add_memory() call number `index` (0 = the first call
        made; driver granularity): offline_and_remove_memory() or remove_memory()."""
        if not 0 <= index < len(self.calls):
            raise ConfigError(f"add_memory() call {index} does not exist: {len(self.calls)} "
                              f"calls made so far (0..{len(self.calls) - 1})"
                              if self.calls else
                              f"add_memory() call {index} does not exist: no call made so far")
        r = self.calls[index]
        if r.removed:
            raise StateError(f"add_memory() call {index} ({r.size >> 20} MiB at {r.start:#x}) "
                             "was removed already")
        if offline:
            self.m.offline_and_remove_memory(r.start, r.size)
        else:
            self.m.remove_memory(r.start, r.size)
        r.removed = True
        return r

