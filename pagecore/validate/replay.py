"""Replay a recorded real-kernel run on pagecore and observe pagecore the way the
harness observed the kernel, key for key (pagecore.validate.record.observe()).

The machine comes from the run's baseline (pagecore.validate.calibrate); the strategy
from the kernel and its memmap_on_memory mode (`strategy_for()`). Each recorded
operation is applied as the kernel saw it:

    add      the ACPI driver's add_memory() of the DIMM at the address QEMU gave it
             (pagecore.drivers: MHP_MEMMAP_ON_MEMORY per generation), left offline
    online   online_memory_block(block, type)  (a write to memoryN/state)
    offline  offline_memory_block(block)
    remove   offline_and_remove_memory() of the DIMM: what the ACPI eject does
             (acpi_scan_try_to_offline() offlines every block, acpi_memory_device_remove()
             removes them; a refusal re-onlines what it offlined)

A refused operation is observed as its errno name ("EBUSY", "EINVAL", "ENOMEM"), as the
harness records the kernel's.
"""
from __future__ import annotations

import errno

from pagecore import procfs
from pagecore.arch import ZONE_NAMES
from pagecore.drivers.hotplug import Hotplug
from pagecore.errors import PagecoreError
from pagecore.drivers.base.memory import STATE_NAMES
from pagecore.machine import Machine

# memmap_on_memory mode -> pagecore strategy, per kernel series. The strategy names the
# generation whose rules the kernel applies: v5.13-v6.5 self-host one-block adds only,
# v6.8+ split multi-block adds into one altmap per block (commit 6b8f0798b85a "mm/
# memory_hotplug: split memmap_on_memory requests across memblocks", v6.8); "force"
# (v6.6+) pads the memmap to whole pageblocks.
STRATEGY_FOR = {
    "6.1": {"0": "boot", "1": "block-5.13"},
    "6.12": {"0": "boot", "1": "block", "force": "force"},
}


def strategy_for(series, mode):
    try:
        return STRATEGY_FOR[series][str(mode)]
    except KeyError:
        raise PagecoreError(f"kernel {series} memmap_on_memory={mode}: no strategy models it "
                            f"(known: {STRATEGY_FOR})") from None


def _errname(e):
    return errno.errorcode.get(getattr(e, "errno", errno.EINVAL), "EINVAL")


def observe(m):
    """pagecore's side of record.observe(): the same keys, the modelled ones only."""
    mi = procfs.meminfo_dict(m)
    zones = {}
    for z in procfs.zoneinfo_dict(m):
        zones[f"Node {z['node']} {z['zone']}"] = obs = {
            k: z[k] for k in ("free", "min", "low", "high", "promo", "spanned", "present",
                              "managed", "protection", "start_pfn", "nr_free_pages")}
        if z["pagesets"]:
            c = z["pagesets"][0]
            obs.update(pcp_high=c["high"], pcp_batch=c["batch"],
                       stat_threshold=c["stat_threshold"])
            zone = m.zone(z["node"], ZONE_NAMES.index(z["zone"]))
            obs["pcp_high_max"] = zone.per_cpu_pageset.high_max
            obs["pcp_count"] = sum(c["count"] for c in z["pagesets"])
    blocks = {}
    present = (m.blocks["state"] != 0).nonzero()[0]
    for b in present.tolist():
        blocks[b] = {"state": STATE_NAMES[int(m.blocks["state"][b])],
                     "valid_zones": m.valid_zones(b).split()}
    vm = procfs.vmstat_dict(m)
    return {"meminfo": mi, "zones": zones,
            "vmstat": {k: vm[k] for k in ("nr_free_pages", "nr_memmap_pages", "nr_memmap_boot_pages")
                       if k in vm},
            "min_free_kbytes": m.min_free_kbytes, "blocks": blocks}


def config_for(rec):
    """The MachineConfig that reproduces the run's guest after boot (calibrated from its
    baseline), with the strategy of its kernel and mode."""
    from pagecore.validate import calibrate
    return calibrate.from_record(rec)


def _adds_until_failure(rec, hp, dimms):
    """The guest died (OOM, panic) during the add after the last recorded one: keep
    adding DIMMs of the last size after the last one, as the scenario would have, until
    pagecore refuses one or the scenario's count runs out. Returns how many of them
    succeeded before the refusal (None: none refused)."""
    adds = [op for op in rec["ops"] if op["op"] == "add" and not op["error"]]
    if not adds:
        return None
    planned = sum(st.get("count", 1) for st in rec["scenario_summary"]["steps"]
                  if st["action"] == "add")
    size, addr = adds[-1]["size"], adds[-1]["addr"] + adds[-1]["size"]
    for n in range(planned - len(adds)):
        rep = hp.add("acpi", size, start=addr + n * size, online="offline", until_oom=True)
        if rep["oom"]:
            return n
    return None


def replay(rec, config=None):
    """Apply the run's operations to a fresh pagecore machine; return one observation
    per recorded operation (each with "error" as pagecore saw it)."""
    cfg = config or config_for(rec)
    m = Machine(cfg)
    hp = Hotplug(m, online="offline")
    dimms = {}
    out = []
    for op in rec["ops"]:
        kind = op["op"]
        err = None
        try:
            if kind == "add":
                if op["error"] and op["error"].startswith("qemu:"):
                    err = op["error"]                    # QEMU refused: nothing reached the kernel
                else:
                    rep = hp.add("acpi", op["size"], start=op["addr"], online="offline",
                                 until_oom=True)
                    if rep["oom"]:
                        err = "ENOMEM"
                    else:
                        dimms[op["dimm"]] = (op["addr"], op["size"])
            elif kind == "online":
                m.online_memory_block(op["block"], op["type"])
            elif kind == "offline":
                m.offline_memory_block(op["block"])
            elif kind == "remove":
                addr, size = dimms[op["dimm"]]
                m.offline_and_remove_memory(addr, size)
                del dimms[op["dimm"]]
        except PagecoreError as e:
            err = _errname(e)
        if kind == "died":
            out.append({"op": kind, "error": None,
                        "adds_until_failure": _adds_until_failure(rec, hp, dimms)})
            continue
        out.append({"op": kind, "error": err, **observe(m)})
    return out
