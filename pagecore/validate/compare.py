"""pagecore against a real kernel, operation by operation.

`compare(rec)` replays a recorded run (pagecore.validate.replay) and classifies every
quantity of every operation:

    exact      must be equal: each zone's spanned, present, managed, start_pfn, min,
               low, high (the kernel's less its watermark_boost, which pagecore does not
               model) and protection; MemTotal; nr_memmap_pages; min_free_kbytes;
               every block's state and valid_zones; whether the operation failed and
               with which errno
    tolerance  MemFree and each zone's free pages, as their change across the
               operation, the per-cpu list pages counted as free on both sides (which
               pages a pcp list holds follows each side's own traffic, and the kernel's
               comes from a running system's): |kernel - pagecore| <= 5% of the kernel's change plus
               ALLOWANCE_PAGES, for the kernel's own allocations that pagecore does not
               model one by one (slab, per-cpu lists, sysfs and resource objects,
               page tables)
    shown      MemAvailable (depends on page cache and slab, which the guest's busybox
               barely has and pagecore models coarsely)
    pagesets   each populated zone's pcp->batch and vmstat threshold, exact; pcp->high
               exact before v6.7, and from v6.7 (run-time tuning between high_min and
               high_max, 0 on a CPU that never used the zone) "within" when
               0 <= kernel <= pagecore's high_max. Per operation when the recording has
               them (recordings since pcp_high was kept), else at boot (baseline
               zoneinfo) and at the end (final zoneinfo).

A difference in an exact quantity makes `ok` False (`pagecore validate` exits 1).
"""
from __future__ import annotations

from pagecore.mm.page_alloc import PCP_HIGH_AUTOTUNE_SINCE
from pagecore.validate import procparse
from pagecore.validate.replay import replay, strategy_for

ZONES = ("DMA", "DMA32", "Normal", "Movable")
EXACT_ZONE = ("spanned", "present", "managed", "start_pfn", "min", "low", "high", "protection")
TOLERANCE = 0.05
# Per operation, in pages: what the kernel allocates or frees around a hotplug operation
# besides the memmap (measured on the recorded 6.1/6.12 runs: the largest difference
# between the kernel's MemFree change and the memmap it took stays under this).
ALLOWANCE_PAGES = 1024


def _zone(obs, key):
    z = obs["zones"].get(key)
    if z is None:
        return None
    z = dict(z)
    # zoneinfo prints min/low/high/promo_wmark_pages(), which add zone->watermark_boost
    # (include/linux/mmzone.h) to the watermarks __setup_per_zone_wmarks() set; pagecore
    # models the latter and no boosting, so the kernel's boost comes off (a fallback steal
    # boosts a small guest's DMA32 by 512 pages: boost_watermark(), mm/page_alloc.c)
    boost = z.get("boost") or 0
    for f in ("min", "low", "high", "promo"):
        if boost and f in z:
            z[f] -= boost
    if "protection" in z:
        z["protection"] = list(z["protection"][:len(ZONES)])
    if not z.get("spanned"):
        z["start_pfn"] = 0          # an empty zone's start is not meaningful (both print 0 or junk)
    return z


def _blocks(op_blocks):
    return {int(b): (v["state"], tuple(v["valid_zones"])) for b, v in op_blocks.items() if v}


def kernel_blocks(rec):
    """Every block's row after each recorded operation (records keep only changes)."""
    cur, out = {}, []
    for op in rec["ops"]:
        for b, v in (op.get("blocks_changed") or {}).items():
            if v is None:
                cur.pop(int(b), None)
            else:
                cur[int(b)] = (v["state"], tuple(v["valid_zones"]))
        out.append(dict(cur))
    return out


def _free(zone):
    """A zone's free pages including its per-cpu lists (kernel or pagecore): the pages on
    pcp lists are not in NR_FREE_PAGES, and which ones are there follows the traffic of
    each side (a busy guest's kernel, pagecore's own allocations), so the free pages
    are compared with them."""
    return zone["free"] + zone.get("pcp_count", 0)


def _free_kb(obs):
    return obs["meminfo"]["MemFree"] + 4 * sum(z.get("pcp_count", 0) for z in obs["zones"].values())


def kernel_pagesets(rec):
    """Per recorded operation, {zone key: {"pcp_high", "pcp_batch", "stat_threshold"}} of
    the kernel, or None where nothing was recorded: the operation's own zones when the
    recording kept them, else the baseline zoneinfo for the boot and the final zoneinfo
    for the last operation of a guest that did not die."""
    keys = ("pcp_high", "pcp_batch", "stat_threshold")
    out = []
    for op in rec["ops"]:
        got = {k: {f: z[f] for f in keys} for k, z in op.get("zones", {}).items()
               if "pcp_batch" in z}
        out.append(got or None)
    raws = [(0, rec.get("baseline_raw"))]
    if rec["ops"] and rec["ops"][-1]["op"] != "died":
        raws.append((len(rec["ops"]) - 1, rec.get("final_raw")))
    for i, raw in raws:
        if out[i] is None and raw and raw.get("zoneinfo"):
            zones = procparse.zoneinfo(raw["zoneinfo"])
            out[i] = {k: {f: z[f] for f in keys} for k, z in zones.items() if "pcp_batch" in z}
    return out


def _pageset_rows(rows, name, kz, pz, autotune):
    _row(rows, f"{name} pcp->batch", kz["pcp_batch"], pz.get("pcp_batch"), "exact")
    _row(rows, f"{name} stat_threshold", kz["stat_threshold"], pz.get("stat_threshold"), "exact")
    if not autotune:
        _row(rows, f"{name} pcp->high", kz["pcp_high"], pz.get("pcp_high"), "exact")
    else:
        ok = pz.get("pcp_high_max") is not None and 0 <= kz["pcp_high"] <= pz["pcp_high_max"]
        _row(rows, f"{name} pcp->high", kz["pcp_high"], pz.get("pcp_high"),
             "within" if ok else "beyond")


def _row(rows, what, k, p, kind):
    if kind == "exact":
        st = "=" if k == p else "DIFF"
    else:
        st = kind
    rows.append({"what": what, "kernel": k, "pagecore": p, "status": st})


def compare(rec, obs=None, config=None):
    """Side-by-side of a recorded run and its pagecore replay: {"ops": [...], "ok": bool,
    "counts": {...}, "strategy": ...}."""
    obs = obs if obs is not None else replay(rec, config)
    kb_rows = kernel_blocks(rec)
    k_pcp = kernel_pagesets(rec)
    autotune = tuple(int(x) for x in rec["series"].split(".")) >= PCP_HIGH_AUTOTUNE_SINCE
    prev_k = prev_p = None
    ops, counts = [], {"=": 0, "DIFF": 0, "within": 0, "beyond": 0}
    for i, (k, p) in enumerate(zip(rec["ops"], obs)):
        rows = []
        if k["op"] == "died":
            ops.append({"index": i, "op": "died", "label": f"guest died: {rec['result']['status']}",
                        "rows": []})
            break
        _row(rows, "error", k["error"], p["error"], "exact")
        _row(rows, "MemTotal kB", k["meminfo"]["MemTotal"], p["meminfo"]["MemTotal"], "exact")
        _row(rows, "nr_memmap_pages", k["vmstat"].get("nr_memmap_pages"),
             p["vmstat"].get("nr_memmap_pages"), "exact")
        _row(rows, "min_free_kbytes", k["min_free_kbytes"], p["min_free_kbytes"], "exact")
        for name in ZONES:
            key = f"Node 0 {name}"
            kz, pz = _zone(k, key), _zone(p, key)
            if kz is None and pz is None:
                continue
            for f in EXACT_ZONE:
                _row(rows, f"{name} {f}", (kz or {}).get(f), (pz or {}).get(f), "exact")
            kp = (k_pcp[i] or {}).get(key)
            if kp is not None:
                _pageset_rows(rows, name, kp, pz or {}, autotune)
        kb, pb = kb_rows[i], _blocks(p["blocks"])
        for b in sorted(set(kb) | set(pb)):
            _row(rows, f"block {b}", " ".join([kb[b][0], *kb[b][1]]) if b in kb else "absent",
                 " ".join([pb[b][0], *pb[b][1]]) if b in pb else "absent", "exact")
        # tolerance: changes across the operation
        if prev_k is not None:
            pairs = [("MemFree+pcp kB (change)", _free_kb(k) - _free_kb(prev_k),
                      _free_kb(p) - _free_kb(prev_p), 4)]
            for name in ZONES:
                key = f"Node 0 {name}"
                if key in k["zones"] and key in p["zones"] and key in prev_k["zones"] and key in prev_p["zones"]:
                    pairs.append((f"{name} free+pcp (change)",
                                  _free(k["zones"][key]) - _free(prev_k["zones"][key]),
                                  _free(p["zones"][key]) - _free(prev_p["zones"][key]), 1))
            for what, dk, dp, unit_kb in pairs:
                allow = TOLERANCE * abs(dk) + ALLOWANCE_PAGES * unit_kb
                _row(rows, what, dk, dp, "within" if abs(dk - dp) <= allow else "beyond")
        _row(rows, "MemFree kB", k["meminfo"]["MemFree"], p["meminfo"]["MemFree"], "shown")
        _row(rows, "MemAvailable kB", k["meminfo"].get("MemAvailable"),
             p["meminfo"].get("MemAvailable"), "shown")
        for r in rows:
            if r["status"] in counts:
                counts[r["status"]] += 1
        ops.append({"index": i, "op": k["op"], "label": _label(k), "rows": rows})
        prev_k, prev_p = k, p
    return {"scenario": rec["scenario"], "kernel": rec["kernel"], "series": rec["series"],
            "memmap_on_memory": rec["memmap_on_memory"],
            "strategy": strategy_for(rec["series"], rec["memmap_on_memory"]),
            "guest_result": rec["result"], "skipped": rec.get("skipped", []),
            "ops": ops, "counts": counts, "ok": counts["DIFF"] == 0}


def _label(op):
    kind = op["op"]
    if kind == "add":
        return f"add DIMM {op['dimm']} {op['size'] >> 20} MiB at {op['addr']:#x}"
    if kind == "online":
        return f"online block {op['block']} {op['type']}"
    if kind == "offline":
        return f"offline block {op['block']}"
    if kind == "remove":
        return f"remove DIMM {op['dimm']} (ACPI eject)"
    return kind


def format_report(res, all_rows=False):
    """Text, one block per operation. Without `all_rows` a row is printed when its
    values changed across the operation or when it differs for the first time (a
    difference that persists unchanged is not printed again; the totals count it)."""
    lines = [f"scenario {res['scenario']}  kernel {res['kernel']}  memmap_on_memory="
             f"{res['memmap_on_memory']}  ->  pagecore strategy {res['strategy']}",
             "  (strategies by kernel: boot = memmap_on_memory=0; block-5.13 = 1 on "
             "v5.13-v6.5; block = 1 on v6.8+; force = force, v6.6+)"]
    for s in res["skipped"]:
        lines.append(f"  step {s['step']} skipped: {s['why']}")
    prev, w = {}, 28
    marks = {"=": "", "DIFF": "  <-- differs", "within": "  ~ within tolerance",
             "beyond": "  <-- beyond tolerance", "shown": ""}
    for op in res["ops"]:
        lines.append(f"[{op['index']:3d}] {op['label']}")
        shown = []
        for r in op["rows"]:
            key, val = r["what"], (r["kernel"], r["pagecore"])
            changed = key in prev and prev[key] != val
            first = key not in prev
            prev[key] = val
            if op["index"] == 0:
                show = r["status"] == "DIFF" or key.startswith(("MemTotal", "MemFree kB",
                                                                 "min_free")) \
                    or key.endswith(("managed", "present"))
            else:
                show = (r["status"] == "DIFF" and (first or changed)) or r["status"] == "beyond" \
                    or (changed and r["status"] != "shown") or key == "error" and any(val)
            if all_rows or show:
                shown.append(f"      {key:{w}} {_fmt(r['kernel']):>22} {_fmt(r['pagecore']):>22}"
                             f"{marks[r['status']]}")
        if shown:
            lines.append(f"      {'':{w}} {'kernel':>22} {'pagecore':>22}")
            lines += shown
    c = res["counts"]
    lines.append(f"exact: {c['=']} equal, {c['DIFF']} differ; tolerance: {c['within']} within, "
                 f"{c['beyond']} beyond; guest: {res['guest_result']['status']}")
    return "\n".join(lines)


def _fmt(v):
    if isinstance(v, list):
        return "(" + ",".join(map(str, v)) + ")"
    return "-" if v is None else str(v)


CATEGORIES = (
    ("zone spans", lambda w: w.endswith(("spanned", "present", "managed", "start_pfn"))),
    ("MemTotal", lambda w: w == "MemTotal kB"),
    ("nr_memmap_pages", lambda w: w == "nr_memmap_pages"),
    ("watermarks", lambda w: w.endswith((" min", " low", " high"))),
    ("protection", lambda w: w.endswith("protection")),
    ("min_free_kbytes", lambda w: w == "min_free_kbytes"),
    ("block states", lambda w: w.startswith("block ")),
    ("failed ops", lambda w: w == "error"),
    ("free changes", lambda w: w.endswith("(change)")),
    ("pagesets", lambda w: w.endswith(("pcp->batch", "pcp->high", "stat_threshold"))),
)


def summarize(results):
    """One row per compared run: per category, "equal/total" (or "within/total")."""
    rows = []
    for res in results:
        row = {"run": f"{res['scenario']} {res['series']} mom={res['memmap_on_memory']}",
               "guest": res["guest_result"]["status"]}
        for name, pred in CATEGORIES:
            good = total = 0
            for op in res["ops"]:
                for r in op["rows"]:
                    if pred(r["what"]):
                        total += 1
                        good += r["status"] in ("=", "within")
            row[name] = (good, total)
        rows.append(row)
    return rows


def format_summary(rows):
    names = [n for n, _ in CATEGORIES]
    w = max(len(r["run"]) for r in rows)
    head = f"{'run':{w}} {'guest':6} " + " ".join(f"{n:>15}" for n in names)
    out = [head]
    for r in rows:
        cells = []
        for n in names:
            g, t = r[n]
            cells.append(f"{('all ' + str(t)) if g == t else f'{g}/{t}':>15}")
        out.append(f"{r['run']:{w}} {r['guest']:6} " + " ".join(cells))
    return "\n".join(out)
