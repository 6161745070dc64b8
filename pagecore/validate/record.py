"""Run a scenario on a real kernel and record what the kernel says after every step.

A scenario's steps become operations a pc-dimm VM can do (`plan_ops()`):

    add      one ACPI DIMM per add request (QMP object-add memory-backend-ram +
             device_add pc-dimm), then the scenario's auto-online policy, written by the
             harness to each new block's `state` (the guest boots with
             memhp_default_state=offline)
    online   write the online type to memoryN/state
    offline  write "offline" to memoryN/state
    remove   QMP device_del: the guest's ACPI eject offlines every block of the DIMM
             (acpi_scan_try_to_offline()) and removes it (acpi_memory_device_remove());
             a refused eject leaves the DIMM in place, recorded as EBUSY

Steps a pc-dimm VM cannot do (alloc/free workloads, compaction, gigantic pages, other
drivers) are listed in the record's "skipped" and not run. After every operation the
record holds the kernel's meminfo, zoneinfo, vmstat, buddyinfo, min_free_kbytes and
every memory block's state and valid_zones, parsed (pagecore.validate.procparse), plus
the failed write's errno and the new dmesg lines. The baseline also keeps the raw
texts (and /proc/iomem), which `pagecore calibrate` reads.

One JSON document per (scenario, kernel, mode): schema "pagecore.kernel-run/1".
"""
from __future__ import annotations

import json
import os
import time

from pagecore.errors import ConfigError
from pagecore.validate import kernels, procparse
from pagecore.validate.guest import GuestDied, boot

SCHEMA = "pagecore.kernel-run/1"
MiB, GiB = 1 << 20, 1 << 30
ADD_WAIT = 90.0            # seconds for the guest to show a new DIMM's blocks (TCG is slow)

# zoneinfo per-node stats worth keeping per step: they explain MemFree moves.
NODE_STATS = ("nr_slab_reclaimable", "nr_slab_unreclaimable", "nr_kernel_stack",
              "nr_page_table_pages", "nr_anon_pages", "nr_file_pages", "nr_shmem",
              "nr_active_anon", "nr_inactive_anon", "nr_active_file", "nr_inactive_file",
              "nr_unevictable")
ZONE_KEEP = procparse.ZONE_FIELDS + ("protection", "pcp_count", "pcp_high", "pcp_batch",
                                     "stat_threshold", "start_pfn", "nr_free_pages")


def sections(text):
    out, name, buf = {}, None, []
    for line in text.splitlines():
        if line.startswith("@@F "):
            if name:
                out[name] = "\n".join(buf)
            name, buf = line[4:], []
        else:
            buf.append(line)
    if name:
        out[name] = "\n".join(buf)
    return out


def observe(raw):
    """The parsed state of one `snap` output."""
    zi = procparse.zoneinfo(raw["zoneinfo"])
    zones = {k: {f: v[f] for f in ZONE_KEEP if f in v} for k, v in zi.items()}
    node = {}
    for k, v in zi.items():
        if "node" in v:
            node[k.rsplit(" ", 1)[0]] = {s: v["node"][s] for s in NODE_STATS if s in v["node"]}
    vm = procparse.vmstat(raw["vmstat"])
    return {"meminfo": procparse.meminfo(raw["meminfo"]), "zones": zones, "node_stats": node,
            "vmstat": {k: v for k, v in vm.items() if k.startswith("nr_")},
            "buddyinfo": procparse.buddyinfo(raw["buddyinfo"]),
            "min_free_kbytes": int(raw["min_free_kbytes"].strip()),
            "blocks": procparse.blocks(raw["blocks"])}


def _changed_blocks(prev, now):
    """Only the blocks whose row changed, to keep records small ({} when none)."""
    return {b: v for b, v in now.items() if prev.get(b) != v} | \
           {b: None for b in prev if b not in now}


# ---------------------------------------------------------------------------------------
# scenario -> operations
# ---------------------------------------------------------------------------------------
def guest_shape(scn):
    """(boot bytes, DIMM bytes at most, DIMMs at most) of a scenario on one node."""
    nodes = scn.machine["nodes"]
    boot_bytes = sum(n for _, n in nodes[0].boot)
    total, count = 0, 0
    for st in scn.steps:
        if st["action"] == "add" and st["driver"] == "acpi":
            total += st["size"] * st["count"]
            count += st["count"]
    return boot_bytes, total, count


def skipped_steps(scn):
    out = []
    for i, st in enumerate(scn.steps, 1):
        why = None
        if st["action"] in ("alloc", "free", "compact", "gigantic"):
            why = f"{st['action']}: no workload in the guest"
        elif st["action"] == "add" and st["driver"] != "acpi":
            why = f"driver {st['driver']}: the harness hot-adds ACPI DIMMs only"
        elif st["action"] == "add" and st.get("node", 0) != 0:
            why = "node != 0: the guest has one NUMA node"
        if why:
            out.append({"step": i, "action": st["action"], "why": why})
    return out


class Recorder:
    """Drives one guest through a scenario and collects the record."""

    def __init__(self, scn, kernel, mode, *, timeout=900, progress=None, workdir=None):
        self.scn, self.mode = scn, str(mode)
        if self.mode not in kernels.modes(kernel):
            raise ConfigError(f"--memmap-on-memory {self.mode}: kernel {kernel} accepts "
                              f"{', '.join(kernels.modes(kernel))} (force arrived in v6.6)")
        self.vmlinuz = kernels.find_kernel(kernel)
        self.kernel = os.path.basename(self.vmlinuz)[len("vmlinuz-"):]
        self.timeout, self.workdir = timeout, workdir
        self.progress = progress or (lambda done, total, label: None)
        self.ops, self.dimms, self.pending = [], [], []
        self.block_size = None

    # -- guest ---------------------------------------------------------------------------
    def _snap(self):
        return sections(self.g.sh("snap")[1])

    def _op(self, op, step, result=None, error=None, **extra):
        raw = self._snap()
        obs = observe(raw)
        blocks = obs.pop("blocks")
        obs["blocks_changed"] = _changed_blocks(self._blocks, blocks)
        self._blocks = blocks
        rec = {"op": op, "step": step, **extra, "error": error, "result": result,
               "seconds": round(time.monotonic() - self._t_op, 3), **obs,
               "dmesg": self.g.new_dmesg()}
        self.ops.append(rec)
        self._t_op = time.monotonic()
        self.progress(len(self.ops), self._planned, f"{op} {extra.get('block', extra.get('dimm', ''))}")
        return rec

    def _blocks_of(self, addr, size):
        return list(range(addr // self.block_size, (addr + size) // self.block_size))

    def _wait_blocks(self, blocks):
        last = blocks[-1]
        end = time.monotonic() + ADD_WAIT
        while time.monotonic() < end:
            rc, out = self.g.sh(f"cat /sys/devices/system/memory/memory{last}/state 2>/dev/null")
            if rc == 0 and out.strip():
                return True
            # A failed add_memory() logs and never creates the blocks; stop waiting then.
            rc, out = self.g.sh("dmesg | grep -c -E 'add_memory failed|acpi_memory_enable_device|"
                                "hotplug memory.*failed' || true")
            if out.strip() not in ("", "0"):
                return False
            time.sleep(0.3)
        return False

    def add(self, step, size, addr, online, delay):
        dimm = f"dimm{len(self.dimms)}"
        try:
            got = self.g.add_dimm(dimm, size, addr)
        except RuntimeError as e:             # QEMU refused (no slot, no room): not the kernel
            self._op("add", step, error=f"qemu: {e}", dimm=dimm, size=size, addr=addr)
            return False
        blocks = self._blocks_of(got, size)
        ok = self._wait_blocks(blocks)
        self.dimms.append({"dimm": dimm, "addr": got, "size": size, "added": ok})
        self._op("add", step, error=None if ok else "ENOMEM", dimm=dimm, size=size, addr=got,
                 result={"blocks": blocks if ok else []})
        if ok and online != "offline":
            self.pending.append((blocks, online))
            while len(self.pending) > delay:
                self._online_pending(step)
        return ok

    def _online_pending(self, step):
        blocks, online = self.pending.pop(0)
        for b in blocks:
            self.online(step, b, online)

    def online(self, step, block, online_type):
        err = self.g.write(f"/sys/devices/system/memory/memory{block}/state", online_type)
        self._op("online", step, error=err, block=block, type=online_type)

    def offline(self, step, block):
        err = self.g.write(f"/sys/devices/system/memory/memory{block}/state", "offline")
        self._op("offline", step, error=err, block=block)
        return err

    def remove(self, step, d):
        ok = self.g.remove_dimm(d["dimm"])
        if ok:
            d["removed"] = True
        self._op("remove", step, error=None if ok else "EBUSY", dimm=d["dimm"], addr=d["addr"],
                 size=d["size"])

    # -- the run -------------------------------------------------------------------------
    def _hotplugged(self, state):
        out = []
        for d in self.dimms:
            if d["added"] and not d.get("removed"):
                for b in self._blocks_of(d["addr"], d["size"]):
                    if self._blocks.get(b, {}).get("state") == state:
                        out.append(b)
        return out

    def _select(self, spec, state):
        if spec == "offline":
            return self._hotplugged("offline")
        if spec == "hotplugged":
            return self._hotplugged("online")[::-1]
        if spec == "last":
            return self._hotplugged(state)[-1:]
        return list(spec)

    def run(self):
        scn = self.scn
        boot_bytes, dimm_bytes, ndimms = guest_shape(scn)
        slots = max(1, min(ndimms, 255))
        append = f"memory_hotplug.memmap_on_memory={self.mode}"
        t0 = time.monotonic()
        self._planned = 1 + sum(st["count"] * (2 if st["action"] == "add" else 1)
                                for st in scn.steps if st["action"] in ("add",)) + \
            sum(1 for st in scn.steps if st["action"] in ("online", "offline", "remove"))
        rec = {"schema": SCHEMA, "scenario": scn.name, "scenario_summary": scn.summary(),
               "kernel": self.kernel, "series": kernels.series_of(self.kernel),
               "memmap_on_memory": self.mode, "skipped": skipped_steps(scn),
               "guest": {"mem": boot_bytes, "maxmem": boot_bytes + dimm_bytes + slots * 128 * MiB,
                         "slots": slots}}
        skip = {s["step"] for s in rec["skipped"]}
        try:
            self.g = boot(self.vmlinuz, mem=boot_bytes, maxmem=rec["guest"]["maxmem"],
                          slots=slots, append=append, timeout=self.timeout, workdir=self.workdir)
        except GuestDied as e:
            rec["result"] = {"status": e.reason, "detail": e.detail, "at_op": None}
            return rec
        g = self.g
        rec["guest"].update(accel=g.accel, cmdline=g.cmdline, qemu=g.qemu_version,
                            uname=g.uname, boot_seconds=round(time.monotonic() - t0, 2))
        self._t_op = time.monotonic()
        result = {"status": "ok", "detail": "", "at_op": None}
        try:
            params = sections(g.sh("params")[1])
            self.block_size = int(params["block_size_bytes"].strip(), 16)
            raw = self._snap()
            rec["baseline_raw"] = {**raw, "iomem": params["iomem"]}
            rec["params"] = {k: v.strip() for k, v in params.items() if k != "iomem"}
            self._blocks = {}
            self._op("boot", 0)
            for i, st in enumerate(scn.steps, 1):
                if i in skip:
                    continue
                a = st["action"]
                if a == "add":
                    for k in range(st["count"]):
                        addr = None if st["start"] is None else st["start"] + k * st["size"]
                        # a refused add ends the step, expected (until_oom) or not: the
                        # next DIMM would meet the same kernel
                        if not self.add(i, st["size"], addr, st["online"], st["delay"]):
                            break
                    while self.pending:
                        self._online_pending(i)
                elif a == "online":
                    for b in self._select(st["blocks"], "offline"):
                        self.online(i, b, st["type"])
                elif a == "offline":
                    for b in self._select(st["blocks"], "online"):
                        if self.offline(i, b) and not st["ignore_busy"]:
                            break
                elif a == "remove":
                    live = [d for d in self.dimms if d["added"] and not d.get("removed")]
                    if st["ranges"] == "all":
                        sel = live[::-1]
                    elif st["ranges"] == "last":
                        sel = live[-1:]
                    else:
                        sel = [self.dimms[j] for j in sorted(set(st["ranges"]), reverse=True)
                               if j < len(self.dimms) and self.dimms[j]["added"]]
                    for d in sel:
                        self.remove(i, d)
        except GuestDied as e:
            result = {"status": e.reason, "detail": e.detail, "at_op": len(self.ops)}
            self.ops.append({"op": "died", "step": None, "error": e.reason, "dmesg":
                             [l for l in g.console().splitlines()[-40:]]})
        else:
            rec["final_raw"] = self._snap()
        finally:
            rec["console_tail"] = g.console().splitlines()[-60:]
            g.close()
        rec["ops"] = self.ops
        rec["result"] = result
        rec["seconds"] = round(time.monotonic() - t0, 1)
        return rec


RUNS_DIR = os.path.join(os.path.dirname(__file__), "runs")


def run_name(scenario, series, mode):
    return f"{scenario}--{series}--mom{mode}.json"


def recorded_path(scenario, kernel, mode):
    """The package's recorded run of `scenario` on `kernel`'s series in `mode`."""
    name = os.path.basename(str(scenario)).removesuffix(".toml")
    p = os.path.join(RUNS_DIR, run_name(name, kernels.series_of(kernel), mode))
    if not os.path.exists(p):
        have = sorted(f.removesuffix(".json") for f in os.listdir(RUNS_DIR) if f.endswith(".json"))
        raise ConfigError(f"no recorded run {os.path.basename(p)}; recorded: {', '.join(have)}")
    return p


def load_run(path):
    """A recorded run (schema pagecore.kernel-run/1) from a JSON file."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not JSON: {e}") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
        raise ConfigError(f"{path}: not a recorded kernel run (schema {SCHEMA})")
    return rec


def record(scn, kernel, mode, out=None, **kw):
    """Record `scn` (a loaded pagecore Scenario) on `kernel` with memmap_on_memory=`mode`;
    write the JSON to `out` when given; return the record."""
    rec = Recorder(scn, kernel, mode, **kw).run()
    if out:
        tmp = f"{out}.tmp"
        with open(tmp, "w") as f:
            json.dump(rec, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, out)
    return rec
