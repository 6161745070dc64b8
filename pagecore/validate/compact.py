"""Compaction on a real kernel: a node's whole compaction, recorded and replayed.

    python -m pagecore.validate.compact --kernel 6.12 --memmap-on-memory 1 [--out FILE]
    pagecore validate --compact --kernel 6.12 --memmap-on-memory 1 [--recorded | --from FILE]

The guest boots with its RAM on node 0 and a memoryless node 1; one ACPI DIMM is added
to node 1 and onlined movable, so node 1 holds one zone, ZONE_MOVABLE, that nothing has
allocated from (compaction_proactiveness is set to 0 first, so kcompactd leaves it
alone). A write to /sys/devices/system/node/node1/compact runs compact_node() (v6.1 and
v6.12 mm/compaction.c: order -1, MIGRATE_SYNC, ignore_skip_hint, whole_zone) over that
zone alone, and the record keeps /proc/vmstat's compact_* counters around it, with the
zone's span and buddyinfo before and after.

What it pins: with no page to migrate the free scanner never runs, and the migrate
scanner's nr_scanned (compact_migrate_scanned) is the version's counting rule over free
blocks and self-hosted memmap pages: v6.12 adds the pages it jumps
("nr_scanned += (1UL << freepage_order) - 1") and, after a free block of order 10 ends
the scan of its first pageblock, scans its second pageblock page by page; v6.1 jumps
uncounted. `replay()` runs pagecore's compact_zone() on the same machine.

One JSON document per (kernel series, memmap_on_memory mode): schema
"pagecore.compact-run/1", in pagecore/validate/runs/compact/node1--<series>--mom<mode>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from pagecore.errors import ConfigError, PagecoreError
from pagecore.validate import kernels, procparse
from pagecore.validate.guest import boot
from pagecore.validate.record import ADD_WAIT

SCHEMA = "pagecore.compact-run/1"
MiB, GiB = 1 << 20, 1 << 30
BOOT = 1 * GiB                 # node 0's RAM
DIMM = 1 * GiB                 # node 1's one DIMM: 8 blocks of 128 MiB
NODE = 1
RUNS_DIR = os.path.join(os.path.dirname(__file__), "runs", "compact")


def recorded_path(kernel, mode):
    """The package's recorded compaction run for `kernel`'s series in `mode`."""
    return os.path.join(RUNS_DIR, f"node1--{kernels.series_of(kernel)}--mom{mode}.json")


def _compact_counters(g):
    _, out = g.sh("grep ^compact_ /proc/vmstat")
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def _node_zones(g):
    """zoneinfo's span of node 1's populated zones, and node 1's buddyinfo."""
    zi = procparse.zoneinfo(g.sh("cat /proc/zoneinfo")[1])
    zones = {k: {f: v[f] for f in ("start_pfn", "spanned", "present")}
             for k, v in zi.items() if k.startswith(f"Node {NODE} ") and v.get("present")}
    buddy = {k: v for k, v in procparse.buddyinfo(g.sh("cat /proc/buddyinfo")[1]).items()
             if k.startswith(f"Node {NODE} ")}
    return zones, buddy


def record(kernel, mode, *, timeout=600, log=None):
    """Boot `kernel` (a series or Debian version) with memmap_on_memory=`mode`, add and
    online the DIMM on node 1, compact node 1; returns the record."""
    log = log or (lambda msg: None)
    if str(mode) not in kernels.modes(kernel):
        raise ConfigError(f"--memmap-on-memory {mode}: kernel {kernel} accepts "
                          f"{', '.join(kernels.modes(kernel))}")
    kernels.check_host()
    vmlinuz = kernels.find_kernel(kernel)
    t0 = time.monotonic()
    try:
        return _record(vmlinuz, mode, timeout, log, t0)
    except RuntimeError as e:           # GuestDied, a QMP command QEMU refused
        raise PagecoreError(f"kernel {kernel}: {e}") from e


def _record(vmlinuz, mode, timeout, log, t0):
    g = boot(vmlinuz, mem=BOOT, maxmem=BOOT + 2 * DIMM, slots=2, nodes=2, timeout=timeout,
             append=f"memory_hotplug.memmap_on_memory={mode}", log=log)
    try:
        block_size = int(g.sh("cat /sys/devices/system/memory/block_size_bytes")[1].strip(), 16)
        addr = g.add_dimm("dimm0", DIMM, node=NODE)
        blocks = list(range(addr // block_size, (addr + DIMM) // block_size))
        deadline = time.monotonic() + ADD_WAIT
        while g.sh(f"cat /sys/devices/system/memory/memory{blocks[-1]}/state")[0]:
            if time.monotonic() > deadline:
                raise PagecoreError(f"the DIMM's blocks {blocks[0]}-{blocks[-1]} never appeared")
            time.sleep(0.3)
        errors = {b: g.write(f"/sys/devices/system/memory/memory{b}/state", "online_movable")
                  for b in blocks}
        if any(errors.values()):
            raise PagecoreError(f"online_movable refused: {errors}")
        err = g.write("/proc/sys/vm/compaction_proactiveness", "0")
        if err:
            raise PagecoreError(f"compaction_proactiveness: {err}")
        zones, buddy_before = _node_zones(g)
        before = _compact_counters(g)
        err = g.write(f"/sys/devices/system/node/node{NODE}/compact", "1")
        after = _compact_counters(g)
        _, buddy_after = _node_zones(g)
        return {"schema": SCHEMA, "kernel": g.uname, "memmap_on_memory": str(mode),
                "guest": {"boot": BOOT, "node": NODE, "block_size": block_size,
                          "dimm": {"addr": addr, "size": DIMM}},
                "error": err, "zones": zones, "buddyinfo_before": buddy_before,
                "buddyinfo_after": buddy_after,
                "vmstat_delta": {k: after[k] - before.get(k, 0) for k in after},
                "seconds": round(time.monotonic() - t0, 1)}
    finally:
        g.close()


def load(path):
    with open(path) as f:
        rec = json.load(f)
    if rec.get("schema") != SCHEMA:
        raise ConfigError(f"{path}: schema {rec.get('schema')!r}, expected {SCHEMA}")
    return rec


def machine_for(rec):
    """pagecore's machine after the record's add and online: node 0's boot RAM, the DIMM
    added by the ACPI driver on node 1 at QEMU's address, onlined movable."""
    from pagecore import Machine, MachineConfig, NodeConfig
    from pagecore.drivers.hotplug import Hotplug
    from pagecore.validate.replay import strategy_for
    series = kernels.series_of(rec["kernel"])
    g = rec["guest"]
    m = Machine(MachineConfig(
        nodes=[NodeConfig(boot=[(0, g["boot"])])] + [NodeConfig(boot=[])] * g["node"],
        strategy=strategy_for(series, rec["memmap_on_memory"]),
        kernel=tuple(int(x) for x in series.split(".")), block_size=g["block_size"]))
    Hotplug(m).add("acpi", g["dimm"]["size"], nid=g["node"], start=g["dimm"]["addr"],
                   online="online_movable")
    return m


def observe(m, node=NODE):
    """The record's keys as pagecore sees them: node `node`'s zones and buddyinfo."""
    from pagecore import procfs
    zones = {f"Node {z['node']} {z['zone']}": {k: z[k] for k in ("start_pfn", "spanned",
                                                                  "present")}
             for z in procfs.zoneinfo_dict(m) if z["node"] == node and z["present"]}
    buddy = {k: v for k, v in procparse.buddyinfo(procfs.buddyinfo(m)).items()
             if k.startswith(f"Node {node} ")}
    return zones, buddy


def replay(rec, backend=None):
    """pagecore's side: the machine, then compact_node(): compact_zone() of each populated
    zone of the node, order -1, MIGRATE_SYNC, skip hints ignored, with the compaction
    `backend` (default: the machine's). Returns the record's keys (zones,
    buddyinfo_before, buddyinfo_after, vmstat_delta of the scan counts)."""
    from pagecore import compaction as C
    m = machine_for(rec)
    node = rec["guest"]["node"]
    zones, before = observe(m, node)
    delta = dict.fromkeys(("compact_migrate_scanned", "compact_free_scanned"), 0)
    for z in m.zones():
        if z.nid == node and z.present_pages:
            r = C.compact_zone(m, z, -1, "sync", ignore_skip_hint=True, backend=backend)
            delta["compact_migrate_scanned"] += r["migrate_scanned"]
            delta["compact_free_scanned"] += r["free_scanned"]
    _, after = observe(m, node)
    return {"zones": zones, "buddyinfo_before": before, "buddyinfo_after": after,
            "vmstat_delta": delta}


def compare(rec, backend=None):
    """Kernel against pagecore, quantity by quantity: {"ok", "kernel", "mode", "rows":
    [(quantity, kernel's, pagecore's, equal)]}; every quantity is exact."""
    got = replay(rec, backend)
    rows = []
    for zone, span in rec["zones"].items():
        for k, v in span.items():
            rows.append((f"{zone} {k}", v, got["zones"].get(zone, {}).get(k)))
    for when in ("before", "after"):
        key = f"buddyinfo_{when}"
        for zone, counts in rec[key].items():
            rows.append((f"{zone} buddyinfo {when}", " ".join(map(str, counts)),
                         " ".join(map(str, got[key].get(zone, [])))))
    for k, v in got["vmstat_delta"].items():
        rows.append((k, rec["vmstat_delta"].get(k, 0), v))
    rows = [(q, a, b, a == b) for q, a, b in rows]
    return {"ok": all(r[3] for r in rows), "kernel": rec["kernel"],
            "mode": rec["memmap_on_memory"], "rows": rows}


def format_report(res):
    width = max(len(r[0]) for r in res["rows"])
    lines = [f"compact_node() of node {NODE} on {res['kernel']}, memmap_on_memory="
             f"{res['mode']}: kernel | pagecore"]
    for q, a, b, same in res["rows"]:
        lines.append(f"  {q:<{width}}  {a!s:>12} | {b!s:<12}{'' if same else '  DIFFERS'}"
                     .rstrip())
    lines.append("pagecore matches the kernel" if res["ok"] else "pagecore DIFFERS from the kernel")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pagecore.validate.compact",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", required=True, help="series (6.1, 6.12) or Debian version")
    ap.add_argument("--memmap-on-memory", default="0", dest="mode")
    ap.add_argument("--out", help="where to write the record (default: print it)")
    a = ap.parse_args(argv)
    try:
        rec = record(a.kernel, a.mode, log=lambda msg: print(msg, file=sys.stderr))
    except PagecoreError as e:
        print(f"pagecore.validate.compact: {e}", file=sys.stderr)
        return 2
    text = json.dumps(rec, indent=1, sort_keys=True) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    res = compare(rec)
    print(format_report(res), file=sys.stderr)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
