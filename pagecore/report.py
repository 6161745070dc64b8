"""Side-by-side comparison of memmap strategies on one scenario: `pagecore compare`.

`compare(scenario, strategies=None, progress=None)` runs the scenario once per strategy,
each on a fresh Machine, and returns a JSON-able dict; `format_table(result)` prints it.

JSON schema ("pagecore.compare/1", the reference is docs/json-schemas.md); sizes in bytes
unless the key says _kB or _pages:

    {
      "schema": "pagecore.compare/1",
      "ok": bool, "exit_status": 0 | 1,         # 1: a step failed that was not may_fail
      "failed": [{strategy, step, action, type, errno, message}],
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
  Page-table pages are reported apart (`pagetable_bytes`), as the kernel counts them
  apart (docs/model.md#accounting).
* hugepages.pmd: "2 MiB pages that can still be formed" = free buddy blocks of order >=
  HPAGE_PMD_ORDER (PMD_SHIFT - PAGE_SHIFT: 9 on x86_64), counted in units of
  2^HPAGE_PMD_ORDER pages (fill_contig_page_info()'s free_blocks_suitable), over all
  zones and migratetypes as /proc/buddyinfo shows them. No compaction, no migration.
  `free_blocks_hotplugged` counts the part inside hot-added blocks.
* hugepages.gigantic: 1 GiB windows by the window pre-check (docs/model.md#gigantic-pages): a
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

import textwrap

import numpy as np

from pagecore.kernels import page as P
from pagecore import compaction
from pagecore.arch import GiB
from pagecore.errors import ConfigError, GranularityError
from pagecore.fragmentation import contig_info, zone_nr_free
from pagecore.drivers.base.memory import MEM_OFFLINE, MEM_ONLINE
from pagecore.procfs import meminfo_dict
from pagecore.scenario import Scenario, load
from pagecore.strategies import get_strategy

__all__ = ["compare", "format_table", "strategy_metrics", "SCHEMA", "EXIT_STEP_FAILED", "UNITS"]

SCHEMA = "pagecore.compare/1"
#: Exit status of `pagecore compare` / `run` when a step failed that the scenario did not
#: declare `may_fail` (configuration and usage errors exit 2).
EXIT_STEP_FAILED = 1
GIGANTIC_SIZE = 1 * GiB


def compare(scenario, strategies=None, progress=None, *, backend=None, contig=False):
    """Run `scenario` (a Scenario, a built-in name or a path) once per strategy.
    `progress(done, total, label)` is called as steps finish. `contig=True` adds the
    measured gigantic-page count (hugepages.gigantic_contig, pagecore.compaction)."""
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    names = list(strategies) if strategies else list(sc.strategies)
    for n in names:
        get_strategy(n)          # unknown names fail before anything runs
    total = len(names) * (len(sc.steps) + 1)
    done = [0]
    result = {"schema": SCHEMA, "ok": True, "exit_status": 0, "failed": [],
              "scenario": sc.summary(), "strategies": {}}

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
        if run.error is not None:
            result["failed"].append(dict(run.error, strategy=name))
        del run
    # A step that failed without being declared `may_fail` is a failure of the run: the
    # CLI exits with this status (EXIT_STEP_FAILED), and scripts read it here.
    result["ok"] = not result["failed"]
    result["exit_status"] = 0 if result["ok"] else EXIT_STEP_FAILED
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
    end = meminfo_dict(m)
    end["MemFree_kernel_zones"] = last["MemFree_kernel_zones_kB"]
    out = {
        "description": get_strategy(run.strategy).description,
        "error": run.error,
        "expected_failures": run.expected_failures,
        "block_size": m.block_size,
        "page_size": ps,
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
            "end": {"MemTotal_kB": last["MemTotal_kB"], "MemFree_kB": last["MemFree_kB"],
                    **{f"{k}_kB": v for k, v in end.items() if k not in ("MemTotal", "MemFree")}},
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


def gigantic_contig(m):
    """1 GiB pages alloc_contig_range() can take now, per zone (pagecore.compaction)."""
    count = compaction.count_gigantic_pages
    by_zone = count(m, GIGANTIC_SIZE.bit_length() - 1 - m.arch.page_shift)
    return {"size": GIGANTIC_SIZE,
            "windows": int(sum(by_zone.values())),
            "windows_movable": int(sum(n for (_, z), n in by_zone.items() if z == "Movable")),
            "by_zone": {f"{nid}/{z}": int(n) for (nid, z), n in by_zone.items()},
            "method": "pagecore.compaction.count_gigantic_pages: alloc_contig_range() on every "
                      "naturally aligned window of every zone (migrating what it must), then freed"}


def gigantic_pages(m):
    """1 GiB windows that could hold a gigantic page, by the window pre-check of the
    module docstring; no page is touched."""
    res = {"size": GIGANTIC_SIZE, "windows": 0, "windows_hotplugged": 0}
    res["method"] = ("window pre-check (docs/model.md#gigantic-pages): aligned 1 GiB window, "
                     "all blocks online in one zone and node, no self-hosted memmap inside, "
                     "has_unmovable_pages() clean; migration assumed to succeed")
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
#: --units of format_table(): "auto" (binary units with the digits that tell the columns
#: apart), "kB" (as /proc/meminfo prints), "pages" (of the machine's page size), "MiB".
UNITS = ("auto", "kB", "pages", "MiB")

_UNIT_SHIFTS = ((40, "T"), (30, "G"), (20, "M"), (10, "K"))


def _exact(v, shift, unit):
    """v / 2**shift as a decimal, exactly (a power-of-two divisor always ends)."""
    q, r = divmod(abs(v), 1 << shift)
    sign = "-" if v < 0 else ""
    if not r:
        return f"{sign}{q}{unit}"
    digits = ""
    while r:
        r *= 10
        d, r = divmod(r, 1 << shift)
        digits += str(d)
    return f"{sign}{q}.{digits}{unit}"


def _auto(values):
    """Cells for one row of byte values in "auto" units.

    The largest unit (T, G, M, K) that fits the largest value, with up to 3 decimals:
    exact when that is enough for every cell, else rounded to three significant digits
    or more, as few as still give different values different cells (rounded cells start
    with "~"); failing both, the next smaller unit. K is exact for every page-granular
    value, so a difference between columns is never rounded away."""
    nz = [abs(v) for v in values if v]
    if not nz:
        return ["0" for _ in values]
    top = max(nz)
    units = [(s, u) for s, u in _UNIT_SHIFTS if top >= (1 << s)] or [(10, "K")]
    if len(units) > 1:
        units = units[:1] + [u for u in _UNIT_SHIFTS if u[0] < units[0][0]]
    else:
        units = [u for u in _UNIT_SHIFTS if u[0] <= units[0][0]]
    distinct = len(set(values))
    for shift, unit in units:
        exact = [_exact(v, shift, unit) for v in values]
        if all(len(c.split(".")[-1].rstrip(unit)) <= 3 or "." not in c for c in exact):
            return [c if v else "0" for c, v in zip(exact, values)]
        d0 = max(0, 3 - len(str(top >> shift)))       # three significant digits at least
        for d in range(min(d0, 3), 4):
            cells = []
            for v, c in zip(values, exact):
                if not v:
                    cells.append("0")
                elif "." not in c or len(c.split(".")[-1].rstrip(unit)) <= d:
                    cells.append(c)
                else:
                    cells.append(f"~{v / (1 << shift):.{d}f}{unit}")
            if len(set(cells)) == distinct:
                return cells
    return [_exact(v, 10, "K") for v in values]


def _size_cells(values, units, page_size):
    if units == "auto":
        return _auto(values)
    if units == "kB":
        return [str(v >> 10) if v >= 0 else f"-{(-v) >> 10}" for v in values]
    if units == "pages":
        return [str(v // page_size) if v >= 0 else f"-{(-v) // page_size}" for v in values]
    return [_exact(v, 20, "") for v in values]            # MiB, exact


def _signed(cells):
    return [c if c.startswith(("-", "~-")) or c == "0" else
            ("~+" + c[1:] if c.startswith("~") else "+" + c) for c in cells]


def _render(kind, values, units, page_size, delta):
    """The cells of one row. kind: "bytes", "count", "ratio" (a/b pairs) or "text"."""
    if kind == "text":
        return [("-" if v is None else str(v)) for v in values]
    if kind == "ratio":
        return [("-" if v is None else f"{v[0]}/{v[1]}") for v in values]
    if kind == "pct":
        return [("-" if v is None else f"{v:.2f}%") for v in values]
    known = [v for v in values if v is not None]
    if not known:
        return ["-" for _ in values]
    if delta and values[0] is not None:
        base = values[0]
        rest = [None if v is None else v - base for v in values[1:]]
        diffs = [v for v in rest if v]          # "=" and "-" cells take no number
        # the base and the differences each get their own digits: a 88M difference on a
        # 6.44G base reads "-88M", not "-0.09G"
        fmt = (lambda xs: _size_cells(xs, units, page_size)) if kind == "bytes" \
            else (lambda xs: [str(x) for x in xs])
        head, tail = fmt([base])[0], iter(fmt(diffs) if diffs else [])
        out = [head]
        for v in rest:
            if v is None:
                out.append("-")
            elif v == 0:
                out.append("=")
            else:
                out.append(_signed([next(tail)])[0])
        return out
    cells = iter(_size_cells(known, units, page_size) if kind == "bytes"
                 else [str(v) for v in known])
    return ["-" if v is None else next(cells) for v in values]


def _get(fn, s):
    try:
        return fn(s)
    except (KeyError, TypeError, IndexError):
        return None


def format_table(result, units="auto", delta=False):
    """A side-by-side text table of a compare() result, rows in words, and a footer that
    says what each derived row means. `units`: one of UNITS; `delta`: columns after the
    first show their difference from it ("=" when equal)."""
    if units not in UNITS:
        raise ConfigError(f"--units {units}: expected one of {', '.join(UNITS)}")
    strat = result["strategies"]
    names = list(strat)
    sc = result["scenario"]
    mc = sc["machine"]
    page_size = mc.get("page_size") or next((s.get("page_size") for s in strat.values()), 4096)
    rows = []            # (label, cells)

    def row(label, kind, fn, show=True):
        if not show:
            return
        values = [_get(fn, strat[n]) for n in names]
        rows.append((label, _render(kind, values, units, page_size, delta)))

    def gap():
        rows.append(("", [""] * len(names)))

    kb = 1024
    where = lambda s: s["memmap"]["where"]                         # noqa: E731
    row("memory hot-added (present at the end)", "bytes", lambda s: s["added_bytes"])
    row("memmap of the hot-added memory", "bytes", lambda s: s["memmap"]["bytes"])
    row("  share of the hot-added memory", "pct", lambda s: s["memmap"]["percent_of_added"])
    row("  in boot memory, taken when added", "bytes",
        lambda s: sum(where(s)["boot_memory_by_node"].values()))
    row("    of it on another node than the memory", "bytes", lambda s: where(s)["off_node_bytes"],
        show=any(where(s)["off_node_bytes"] for s in strat.values()))
    row("  self-hosted, inside the added blocks", "bytes",
        lambda s: sum(where(s)["self_hosted_by_node"].values()))
    row("  padding to whole pageblocks (force)", "bytes", lambda s: where(s)["waste_bytes"])
    row("vmemmap page tables", "bytes", lambda s: where(s)["pagetable_bytes"],
        show=any(where(s)["pagetable_bytes"] for s in strat.values()))
    gap()
    row("MemTotal at boot", "bytes", lambda s: s["steps"][0]["MemTotal_kB"] * kb)
    row("MemTotal at the end", "bytes", lambda s: s["meminfo"]["end"]["MemTotal_kB"] * kb)
    row("MemFree at boot", "bytes", lambda s: s["steps"][0]["MemFree_kB"] * kb)
    labels = [st.get("label", st["action"]) for st in sc["steps"]]
    for i, lab in enumerate(labels, start=1):
        row(f"MemFree after step {i}: {lab}", "bytes",
            lambda s, i=i: s["steps"][i]["MemFree_kB"] * kb)
    row("MemFree outside ZONE_MOVABLE at the end", "bytes",
        lambda s: s["meminfo"]["end"]["MemFree_kernel_zones_kB"] * kb)
    row("MemAvailable at the end", "bytes", lambda s: s["meminfo"]["end"]["MemAvailable_kB"] * kb)
    # hot-add outcomes: only where an add can stop short (until_oom) or did
    nadd = max((len(s["hotadd"]) for s in strat.values()), default=0)
    for j in range(nadd):
        hs = [s["hotadd"][j] for s in strat.values() if len(s["hotadd"]) > j]
        if not any(h["until_oom"] or h["added"] != h["requested"] for h in hs):
            continue
        step = hs[0]["step"]
        row(f"step {step}: hot-added of {_hs_exact(hs[0]['requested'])} requested", "bytes",
            lambda s, j=j: s["hotadd"][j]["added"])
        row(f"step {step}: ENOMEM after", "bytes",
            lambda s, j=j: s["hotadd"][j]["oom"]["after_bytes"],
            show=any(h["oom"] for h in hs))
    gap()
    pmd = next((s["hugepages"]["pmd"]["size"] for s in strat.values()), 2 << 20)
    pmd_s = _hs_exact(pmd)
    row(f"{pmd_s} pages free now", "count", lambda s: s["hugepages"]["pmd"]["free_blocks"])
    row("  of them in hot-added memory", "count",
        lambda s: s["hugepages"]["pmd"]["free_blocks_hotplugged"])
    row("1G pages possible", "count", lambda s: s["hugepages"]["gigantic"]["windows"])
    row("  of them in hot-added memory", "count",
        lambda s: s["hugepages"]["gigantic"]["windows_hotplugged"])
    contig = any("gigantic_contig" in s["hugepages"] for s in strat.values())
    row("1G pages alloc_contig_range() took", "count",
        lambda s: s["hugepages"]["gigantic_contig"]["windows"], show=contig)
    row("  of them in ZONE_MOVABLE", "count",
        lambda s: s["hugepages"]["gigantic_contig"]["windows_movable"], show=contig)
    row("hot-added blocks that can go offline", "ratio",
        lambda s: (s["offline"]["offlinable_blocks"], s["offline"]["online_hotplugged_blocks"]))
    row("add_memory() ranges that can be removed", "ratio",
        lambda s: (s["offline"]["removable_ranges"], s["offline"]["ranges"]))
    gap()
    row("failed step", "text",
        lambda s: f"{s['error']['step']}: {s['error']['type']}" if s["error"] else "-")
    row("simulation time", "text", lambda s: f"{s['time']['wall_s']:.2f}s")

    lw = max(len(r[0]) for r in rows)
    cw = [max(len(n), *(len(r[1][k]) for r in rows)) for k, n in enumerate(names)]
    out = [f"scenario {sc['name']}: {sc['description']}".rstrip(": ")]
    nodes = mc["nodes"]
    boot = sum(n for nd in nodes for _, n in nd["boot"])
    bs = mc.get("block_size") or next(iter(strat.values()))["block_size"]
    out.append(f"{mc['arch']}, kernel {mc['kernel']}, {'VM' if mc['is_vm'] else 'bare metal'}: "
               f"{_hs_exact(boot)} of boot memory on {len(nodes)} node"
               f"{'s' if len(nodes) > 1 else ''}, memory blocks of {_hs_exact(bs)}, "
               f"{_hs_exact(page_size)} pages")
    if sc.get("scale") is not None:
        out.append(f"scale {sc['scale']:g} ({', '.join(sc['scaled_params']) or 'nothing scaled'})")
    out.append({"auto": "sizes in K/M/G/T = KiB/MiB/GiB/TiB, exact unless marked ~ (rounded, "
                        "with the digits that keep the columns apart; exact: --units kB)",
                "kB": "sizes in kB (1024 bytes), as /proc/meminfo prints them",
                "pages": f"sizes in pages of {page_size} bytes",
                "MiB": "sizes in MiB, exact"}[units]
               + ("; columns after the first: difference from it (= same)" if delta else ""))
    out.append("")
    out.append(" " * lw + "  " + "  ".join(n.rjust(w) for n, w in zip(names, cw)))
    for label, cells in rows:
        line = label.ljust(lw) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, cw))
        out.append(line.rstrip())
    out.append("")
    out.append("Strategies:")
    for n, s in strat.items():
        if s.get("description"):
            out.append(f"  {n}: {s['description']}")
    out.append("What the rows mean (docs/model.md#the-compare-report):")
    for x in _FOOTER:
        out += textwrap.wrap(x, 96, initial_indent="  ", subsequent_indent="    ")
    errs = [(n, s["error"]) for n, s in strat.items() if s["error"]]
    if errs:
        out.append("")
    for n, e in errs:
        out.append(f"{n}: stopped at step {e['step']} ({e['action']}): {e['message']}")
    return "\n".join(out) + "\n"


def _hs_exact(n):
    for shift, unit in _UNIT_SHIFTS:
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n}B"


#: One sentence per derived row of format_table().
_FOOTER = (
    "memmap: the struct pages (64 bytes per page) describing the hot-added memory. In boot "
    "memory: allocated from memory that was already online when the memory was added (the "
    "classic path). Self-hosted: the first pages of each added block hold its own struct "
    "pages (memmap_on_memory); they never count in MemTotal.",
    "padding (force): memmap_on_memory=force rounds a block's memmap up to whole pageblocks; "
    "on x86_64 it is whole pageblocks already, so force equals block there (see the "
    "ppc64-force scenario). block-5.13 and block-6.6 differ in where the kernel keeps the "
    "altmap, not in what an x86_64 ACPI DIMM gets.",
    "MemFree outside ZONE_MOVABLE: free memory that the kernel's own allocations (slab, page "
    "tables, the classic memmap) can use; ZONE_MOVABLE takes only movable pages.",
    "MemAvailable: si_mem_available(): free memory less the reserves, plus page cache and "
    "reclaimable slab less half of each (at most the low watermarks); anonymous memory is "
    "not available.",
    "2M pages free now: free buddy blocks of 2M or more (/proc/buddyinfo), without compaction.",
    "1G pages possible: 1 GiB-aligned windows whose blocks are all online in one zone and "
    "node, with no self-hosted memmap and no unmovable page inside (movable pages are "
    "assumed to migrate).",
    "can go offline: online hot-added blocks with no unmovable page outside their self-hosted "
    "memmap (has_unmovable_pages()); migration is not tried.",
    "can be removed: add_memory() ranges (DIMMs) whose blocks are all offline or can go "
    "offline, and whose removal the strategy's granularity rule accepts.",
)
