"""Side-by-side comparison of memmap strategies on one scenario: `pagecore compare`.

`compare(scenario, strategies=None, progress=None)` runs the scenario once per strategy,
each on a fresh Machine, and returns a JSON-able dict; `format_table(result)` prints it.

JSON schema ("pagecore.compare/1"); sizes in bytes unless the key says _kB or _pages:

    {
      "schema": "pagecore.compare/1",
      "scenario": {name, file, description, params, scale, scaled_params,
                   machine: {arch, kernel, is_vm, nodes: [{boot: [[start, size]], cpus}]},
                   steps: [...validated step tables...]},
      "strategies": {
        "<strategy>": {
          "description": str,
          "error": null | {step, action, type, errno, message},   # run stopped there
          "block_size": int,
          "added_bytes": int,          # hot-added memory present at the end
          "memmap": {
            "bytes": int,              # struct pages of the hot-added memory, all places
            "percent_of_added": float,
            "where": {
              "boot_memory_by_node": {"<nid>": bytes},   # classic path: buddy of online memory
              "self_hosted_by_node": {"<nid>": bytes},   # altmap pages inside the added blocks
              "waste_bytes": int,                        # force-mode padding
              "off_node_bytes": int,                     # classic memmap on another node
              "pagetable_bytes": int},                   # vmemmap page tables (buddy)
            "paid": {"at_add_bytes": int,     # taken from existing free memory at add time
                     "at_online_bytes": int}},# never enters MemTotal (N-V managed at online)
          "waste_pages": int,
          "steps": [{index, action, MemTotal_kB, MemFree_kB, seconds, detail}],  # 0 = boot
          "meminfo": {boot: {MemTotal_kB, MemFree_kB}, end: {...},
                      delta: {MemTotal_kB, MemFree_kB}},
          "hotadd": [{step, driver, requested, added, calls, flagged_calls,
                      self_hosted_calls, until_oom, oom: null | {after_bytes, address,
                      MemFree_kB, kernel_zones_free_kB, message}}],
          "hugepages": {
            "pmd": {"size": bytes, "order": int, "free_blocks": int,
                    "free_blocks_hotplugged": int, "method": str},
            "gigantic": {"size": bytes, "windows": int, "windows_hotplugged": int,
                         "method": str},
            "gigantic_contig": {...}},                  # only with contig=True
          "offline": {"online_hotplugged_blocks": int, "offlinable_blocks": int,
                      "ranges": int, "removable_ranges": int, "method": str},
          "time": {"wall_s": float, "cpu_s": float}
        }
      }
    }

What is counted, exactly:

* memmap bytes: per present hot-added block, the classic pages taken from the buddy
  (Machine.memmap_summary()["boot_memory_pages"]) plus self-hosted V (waste included).
  Page-table pages are reported apart (`pagetable_bytes`), as in spec 6.5.
* hugepages.pmd: "2 MiB pages that can still be formed" = free buddy blocks of order >=
  HPAGE_PMD_ORDER (PMD_SHIFT - PAGE_SHIFT: 9 on x86_64), counted in units of
  2^HPAGE_PMD_ORDER pages (fill_contig_page_info()'s free_blocks_suitable), over all
  zones and migratetypes as /proc/buddyinfo shows them. No compaction, no migration.
  `free_blocks_hotplugged` counts the part inside hot-added blocks.
* hugepages.gigantic: 1 GiB windows by the spec 9.2 rule (method "spec-9.2-rule"): a
  naturally aligned 1 GiB window counts when all its memory blocks are online in one
  zone of one node, no self-hosted memmap lies inside it, and has_unmovable_pages()
  (isolation rules, not MEMORY_OFFLINE) finds nothing. It is a pre-check: migration of
  the movable pages in the window is assumed to succeed. Cheap, touches nothing.
* hugepages.gigantic_contig (only with compare(contig=True) / `--contig`): the measured
  count, pagecore.compaction.count_gigantic_pages(): a real alloc_contig_range() on every
  aligned 1 GiB window of every zone, ZONE_MOVABLE included (hugetlb itself would not
  use ZONE_MOVABLE for gigantic pages), freed again afterwards; folios it migrated stay
  moved, so it runs after every other figure. Opt-in because it costs real migration
  work (seconds per strategy once windows hold movable pages):
      {"size", "windows", "windows_movable", "by_zone": {"<nid>/<zone>": n}, "method"}
* offline: "isolation pre-check": an online hot-added block counts as offlinable when it
  lies in one zone and has_unmovable_pages() with MEMORY_OFFLINE finds nothing in
  [start + V, end). Migration targets are not checked. A range (one driver add_memory()
  call) counts as removable when all its blocks are offline or offlinable and the
  generation's removal-granularity rule accepts it.
"""
from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from pagecore import _page as P
from pagecore.arch import GiB
from pagecore.errors import ConfigError, GranularityError
from pagecore.fragmentation import contig_info, zone_nr_free
from pagecore.machine import MEM_OFFLINE, MEM_ONLINE
from pagecore.procfs import human_size
from pagecore.scenario import Scenario, load
from pagecore.strategies import get_strategy

__all__ = ["compare", "format_table", "strategy_metrics", "SCHEMA"]

SCHEMA = "pagecore.compare/1"
GIGANTIC_SIZE = 1 * GiB


def compare(scenario, strategies=None, progress=None, *, backend=None, contig=False):
    """Run `scenario` (a Scenario, a built-in name or a path) once per strategy.
    `progress(done, total, label)` is called as steps finish. `contig=True` adds the
    measured gigantic-page count (hugepages.gigantic_contig, pagecore.compaction)."""
    if contig:
        _contig_counter()                   # missing engine part: fail before running
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    names = list(strategies) if strategies else list(sc.strategies)
    for n in names:
        get_strategy(n)          # unknown names fail before anything runs
    total = len(names) * (len(sc.steps) + 1)
    done = [0]
    result = {"schema": SCHEMA, "scenario": sc.summary(), "strategies": {}}

    for name in names:
        def on_step(run, rec, name=name):
            done[0] += 1
            if progress is not None:
                progress(done[0], total, f"{name}: step {rec['index']} {rec['action']}")
        run = sc.run(name, on_step=on_step, backend=backend)
        done[0] = (names.index(name) + 1) * (len(sc.steps) + 1)
        if progress is not None:
            progress(done[0], total, f"{name}: done")
        result["strategies"][name] = strategy_metrics(run, contig=contig)
        del run
    return result


def strategy_metrics(run, contig=False):
    """The per-strategy figures of the module docstring, from a finished scenario Run.
    With `contig`, the measured count runs last: it migrates pages."""
    m = run.machine
    a = m.arch
    ps = a.page_size
    b = m.blocks
    hot = (b["state"] != 0) & ~b["boot"]
    added_pages = int(hot.sum()) * m.block_pages
    ms = m.memmap_summary()
    hb = b[hot]
    self_by_node = {}
    for nid in np.unique(hb["nid"]).tolist():
        sel = hb["nid"] == nid
        v = int((hb["nr_vmemmap"][sel] - hb["waste"][sel]).sum())
        if v:
            self_by_node[str(nid)] = v * ps
    off = hb[(hb["memmap_nid"] >= 0) & (hb["memmap_nid"] != hb["nid"])]
    memmap_pages = ms["boot_memory_pages"] + ms["self_hosted_pages"] + ms["waste_pages"]
    recs = run.records
    first, last = recs[0], recs[-1]
    out = {
        "description": get_strategy(run.strategy).description,
        "error": run.error,
        "block_size": m.block_size,
        "added_bytes": added_pages * ps,
        "memmap": {
            "bytes": memmap_pages * ps,
            "percent_of_added": round(100.0 * memmap_pages / added_pages, 4) if added_pages else 0.0,
            "where": {
                "boot_memory_by_node": {str(k): v * ps for k, v in
                                        sorted(ms["boot_memory_by_node"].items())},
                "self_hosted_by_node": self_by_node,
                "waste_bytes": ms["waste_pages"] * ps,
                "off_node_bytes": int(off["memmap_pages"].sum()) * ps,
                "pagetable_bytes": ms["pagetable_pages"] * ps,
            },
            "paid": {"at_add_bytes": ms["boot_memory_pages"] * ps,
                     "at_online_bytes": (ms["self_hosted_pages"] + ms["waste_pages"]) * ps},
        },
        "waste_pages": ms["waste_pages"],
        "steps": recs,
        "meminfo": {
            "boot": {"MemTotal_kB": first["MemTotal_kB"], "MemFree_kB": first["MemFree_kB"]},
            "end": {"MemTotal_kB": last["MemTotal_kB"], "MemFree_kB": last["MemFree_kB"]},
            "delta": {"MemTotal_kB": last["MemTotal_kB"] - first["MemTotal_kB"],
                      "MemFree_kB": last["MemFree_kB"] - first["MemFree_kB"]},
        },
        "hotadd": _hotadd(run),
        "hugepages": {"pmd": pmd_pages(m), "gigantic": gigantic_pages(m)},
        "offline": offline_precheck(run),
        "time": {"wall_s": round(run.seconds, 4), "cpu_s": round(run.cpu_seconds, 4)},
    }
    if contig:
        out["hugepages"]["gigantic_contig"] = gigantic_contig(m)
    return out


def _hotadd(run):
    out = []
    steps = {i: s for i, s in enumerate(run.steps, start=1)}
    for rec in run.records:
        if rec["action"] != "add" or "added" not in rec["detail"]:
            continue
        d = rec["detail"]
        out.append({"step": rec["index"], "driver": d["driver"], "requested": d["requested"],
                    "added": d["added"], "calls": d["calls"], "flagged_calls": d["flagged_calls"],
                    "self_hosted_calls": d["self_hosted_calls"],
                    "until_oom": bool(steps.get(rec["index"], {}).get("until_oom")),
                    "oom": d["oom"]})
    return out


def _hot_mask(m, pfns):
    blk = m.blocks[np.asarray(pfns, dtype=np.int64) // m.block_pages]
    return (blk["state"] != 0) & ~blk["boot"]


def pmd_pages(m):
    """Free blocks of order >= HPAGE_PMD_ORDER in 2^HPAGE_PMD_ORDER units (module docstring)."""
    a = m.arch
    order = a.pmd_shift - a.page_shift
    res = {"size": a.pmd_size, "order": order, "free_blocks": 0, "free_blocks_hotplugged": 0,
           "method": "free buddy blocks of order >= HPAGE_PMD_ORDER in 2^order units "
                     "(fill_contig_page_info free_blocks_suitable, buddyinfo); no compaction"}
    if order > a.max_page_order:
        res["method"] = "PMD page larger than MAX_PAGE_ORDER: not from the buddy (0)"
        return res
    for z in m.zones():
        counts = np.asarray(z.free_area.counts(), dtype=np.int64)
        res["free_blocks"] += contig_info(zone_nr_free(counts), order).free_blocks_suitable
        for mt in range(counts.shape[0]):
            for o in range(order, a.nr_page_orders):
                if counts[mt, o]:
                    heads = z.free_area.blocks(mt, o)
                    res["free_blocks_hotplugged"] += int(_hot_mask(m, heads).sum()) << (o - order)
    return res


def _contig_counter():
    if importlib.util.find_spec("pagecore.compaction") is None:
        raise ConfigError("the measured gigantic-page count needs pagecore.compaction, "
                          "which this installation does not have")
    fn = getattr(importlib.import_module("pagecore.compaction"), "count_gigantic_pages", None)
    if fn is None:
        raise ConfigError("pagecore.compaction has no count_gigantic_pages()")
    return fn


def gigantic_contig(m):
    """1 GiB pages alloc_contig_range() can take now, per zone (pagecore.compaction)."""
    count = _contig_counter()
    by_zone = count(m, GIGANTIC_SIZE.bit_length() - 1 - m.arch.page_shift)
    return {"size": GIGANTIC_SIZE,
            "windows": int(sum(by_zone.values())),
            "windows_movable": int(sum(n for (_, z), n in by_zone.items() if z == "Movable")),
            "by_zone": {f"{nid}/{z}": int(n) for (nid, z), n in by_zone.items()},
            "method": "pagecore.compaction.count_gigantic_pages: alloc_contig_range() on every "
                      "naturally aligned window of every zone (migrating what it must), then freed"}


def gigantic_pages(m):
    """1 GiB windows that could hold a gigantic page, by the spec 9.2 rule (module
    docstring); no page is touched."""
    res = {"size": GIGANTIC_SIZE, "windows": 0, "windows_hotplugged": 0}
    res["method"] = ("spec-9.2-rule: aligned 1 GiB window, all blocks online in one zone and "
                     "node, no self-hosted memmap inside, has_unmovable_pages() clean; "
                     "migration assumed to succeed")
    a = m.arch
    wp = GIGANTIC_SIZE >> a.page_shift
    nb = m.block_pages
    b = m.blocks
    online = np.nonzero(b["state"] == MEM_ONLINE)[0]
    if not len(online):
        return res
    first = online * nb // wp
    if nb >= wp:
        windows = np.unique((first[:, None] + np.arange(nb // wp)[None, :]).ravel())
    else:
        windows = np.unique(first)
    for w in windows.tolist():
        ws, we = w * wp, (w + 1) * wp
        bl = b[ws // nb: -(-we // nb)]
        if (bl["state"] != MEM_ONLINE).any() or (bl["zone"] < 0).any():
            continue
        if len(set(bl["zone"].tolist())) != 1 or len(set(bl["nid"].tolist())) != 1:
            continue
        # self-hosted vmemmap at the start of any block overlapping the window
        starts = np.arange(ws // nb, -(-we // nb), dtype=np.int64) * nb
        vm_end = starts + bl["nr_vmemmap"]
        if ((bl["nr_vmemmap"] > 0) & (starts < we) & (vm_end > ws)).any():
            continue
        movable = int(bl["zone"][0]) == P.ZONE_MOVABLE
        if m.kernels.has_unmovable_pages(m.mem_map, ws, we, movable, False) >= 0:
            continue
        res["windows"] += 1
        if not bl["boot"].any():
            res["windows_hotplugged"] += 1
    return res


def offline_precheck(run):
    """Isolation pre-check of hot-added blocks and driver ranges (module docstring)."""
    m = run.machine
    nb = m.block_pages
    b = m.blocks
    ids = np.nonzero((b["state"] == MEM_ONLINE) & ~b["boot"])[0].tolist()
    ok = set()
    for i in ids:
        row = b[i]
        if row["zone"] < 0:
            continue
        s, e = i * nb + int(row["nr_vmemmap"]), (i + 1) * nb
        movable = int(row["zone"]) == P.ZONE_MOVABLE
        if s >= e or m.kernels.has_unmovable_pages(m.mem_map, s, e, movable, True) < 0:
            ok.add(i)
    removable = 0
    ranges = run.hotplug.added if run.hotplug is not None else []
    for r in ranges:
        s, n = m.pfn(r.start), m.pfn(r.size)
        bl = list(range(s // nb, (s + n) // nb))
        if not all(b["state"][x] == MEM_OFFLINE or x in ok for x in bl):
            continue
        try:
            for rid in set(b["range_id"][bl[0]:bl[-1] + 1].tolist()):
                if rid in m.ranges:
                    m.ranges[rid].strategy.check_remove(m, s, n)
        except GranularityError:
            continue
        removable += 1
    return {"online_hotplugged_blocks": len(ids), "offlinable_blocks": len(ok),
            "ranges": len(ranges), "removable_ranges": removable,
            "method": "isolation pre-check: has_unmovable_pages(MEMORY_OFFLINE) on [start+V, end) "
                      "per block, removal-granularity rule per range; migration not attempted"}


# ---------------------------------------------------------------------------------------
# text table
# ---------------------------------------------------------------------------------------
def _hs(n):
    return human_size(int(n)) if n else "0"


def _nodes(d):
    return " ".join(f"n{k}:{_hs(v)}" for k, v in d.items()) or "-"


def format_table(result):
    """A side-by-side text table of a compare() result."""
    strat = result["strategies"]
    names = list(strat)
    sc = result["scenario"]
    rows = []

    def row(label, fn):
        cells = []
        for n in names:
            try:
                cells.append(str(fn(strat[n])))
            except (KeyError, TypeError, IndexError):
                cells.append("-")
        rows.append((label, cells))

    row("block size", lambda s: _hs(s["block_size"]))
    row("hot-added (present)", lambda s: _hs(s["added_bytes"]))
    row("memmap", lambda s: _hs(s["memmap"]["bytes"]))
    row("  % of added", lambda s: f"{s['memmap']['percent_of_added']:.2f}%")
    row("  in boot memory", lambda s: _nodes(s["memmap"]["where"]["boot_memory_by_node"]))
    row("  self-hosted", lambda s: _nodes(s["memmap"]["where"]["self_hosted_by_node"]))
    row("  off-node", lambda s: _hs(s["memmap"]["where"]["off_node_bytes"]))
    row("  alignment waste", lambda s: f"{s['waste_pages']} pages")
    row("  paid at add", lambda s: _hs(s["memmap"]["paid"]["at_add_bytes"]))
    row("  paid at online", lambda s: _hs(s["memmap"]["paid"]["at_online_bytes"]))
    row("vmemmap page tables", lambda s: _hs(s["memmap"]["where"]["pagetable_bytes"]))
    row("MemTotal delta", lambda s: _hs(s["meminfo"]["delta"]["MemTotal_kB"] * 1024))
    row("MemFree delta", lambda s: _hs(s["meminfo"]["delta"]["MemFree_kB"] * 1024))
    nsteps = max((len(s["steps"]) for s in strat.values()), default=0)
    for i in range(nsteps):
        act = next((s["steps"][i]["action"] for s in strat.values() if len(s["steps"]) > i), "?")
        row(f"after {i} {act}: Total/Free",
            lambda s, i=i: f"{_hs(s['steps'][i]['MemTotal_kB'] * 1024)}/"
                           f"{_hs(s['steps'][i]['MemFree_kB'] * 1024)}")
    nadd = max((len(s["hotadd"]) for s in strat.values()), default=0)
    for j in range(nadd):
        row(f"add #{j + 1}: added/requested",
            lambda s, j=j: f"{_hs(s['hotadd'][j]['added'])}/{_hs(s['hotadd'][j]['requested'])}")
        row(f"add #{j + 1}: ENOMEM after",
            lambda s, j=j: _hs(s["hotadd"][j]["oom"]["after_bytes"]) if s["hotadd"][j]["oom"]
            else "-")
    pmd = next((human_size(s["hugepages"]["pmd"]["size"]) for s in strat.values()), "PMD")
    row(f"{pmd} pages free (all)", lambda s: s["hugepages"]["pmd"]["free_blocks"])
    row(f"{pmd} pages free (hot-added)", lambda s: s["hugepages"]["pmd"]["free_blocks_hotplugged"])
    row("1G windows usable", lambda s: s["hugepages"]["gigantic"]["windows"])
    row("1G windows (hot-added)", lambda s: s["hugepages"]["gigantic"]["windows_hotplugged"])
    if any("gigantic_contig" in s["hugepages"] for s in strat.values()):
        row("1G alloc_contig (all)", lambda s: s["hugepages"]["gigantic_contig"]["windows"])
        row("1G alloc_contig (Movable)",
            lambda s: s["hugepages"]["gigantic_contig"]["windows_movable"])
    row("offlinable blocks", lambda s: f"{s['offline']['offlinable_blocks']}/"
                                       f"{s['offline']['online_hotplugged_blocks']}")
    row("removable ranges", lambda s: f"{s['offline']['removable_ranges']}/"
                                      f"{s['offline']['ranges']}")
    row("error", lambda s: (f"step {s['error']['step']}: {s['error']['type']}"
                            if s["error"] else "-"))
    row("time", lambda s: f"{s['time']['wall_s']:.2f}s")

    lw = max(len(r[0]) for r in rows)
    cw = [max(len(n), *(len(r[1][k]) for r in rows)) for k, n in enumerate(names)]
    out = [f"scenario {sc['name']}: {sc['description']}".rstrip(": ")]
    if sc.get("scale") is not None:
        out.append(f"scale {sc['scale']:g} ({', '.join(sc['scaled_params']) or 'nothing scaled'})")
    out.append("")
    out.append(" " * lw + "  " + "  ".join(n.rjust(w) for n, w in zip(names, cw)))
    for label, cells in rows:
        out.append(label.ljust(lw) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, cw)))
    gm = next((s["hugepages"]["gigantic"]["method"] for s in strat.values()), "")
    out.append("")
    out.append(f"{pmd}: free buddy blocks >= HPAGE_PMD_ORDER, no compaction; "
               f"1G: {gm.split(':')[0]}; offlinable: isolation pre-check")
    errs = [(n, s["error"]) for n, s in strat.items() if s["error"]]
    for n, e in errs:
        out.append(f"{n}: stopped at step {e['step']} ({e['action']}): {e['message']}")
    return "\n".join(out) + "\n"
