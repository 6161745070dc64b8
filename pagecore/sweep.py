"""Parameter sweeps: scenarios x strategies x parameter values, one CSV row per point.

    pagecore sweep --grid grid.toml --out results.csv [--scheduler ADDR] [--workers N]

Grid file::

    scenarios = ["default", "balloon", "my/own.toml"]   # built-ins or paths (relative to
                                                        # the grid file)
    strategies = ["boot", "block"]   # optional; default: each scenario's own list
    scale = [0.25, 1.0]              # optional; a number or a list (--scale of compare)
    [params]                         # optional; every value is a list; the cartesian
    boot = ["1G", "2G"]              # product is swept; each name must be declared in
    hotadd = ["4G", "8G"]            # the [params] of every scenario of the grid

Points run in parallel on local cores (concurrent.futures.ProcessPoolExecutor with the
"spawn" start method; --workers 1 runs in this process), or on a Dask cluster when a
scheduler address is given (dask.distributed.Client, imported only then). Each row is
written and flushed as its point finishes. The `key` column identifies a point stably
(scenario, strategy, scale and every parameter); rerunning with the same --out skips
the points already in the file (resume). A row cut short by a kill is dropped on resume.
A point that fails (a PagecoreError, or anything else) still gets a row, with ok=False
and the message in `error`; it is not retried on resume.
"""
from __future__ import annotations

import csv
import fcntl
import itertools
import math
import os
import tomllib
from pathlib import Path

from pagecore.errors import ConfigError, PagecoreError
from pagecore.scenario import load, resolve
from pagecore.strategies import all_strategies

__all__ = ["load_grid", "run_point", "run_sweep", "METRICS", "point_key"]

METRICS = ["ok", "error", "added_bytes", "memmap_bytes", "memmap_percent",
           "boot_memory_bytes", "self_hosted_bytes", "waste_pages", "off_node_bytes",
           "pagetable_bytes", "paid_at_add_bytes", "paid_at_online_bytes",
           "memtotal_end_kB", "memfree_end_kB", "memtotal_delta_kB", "memfree_delta_kB",
           "requested_bytes", "hotadd_bytes", "oom_after_bytes", "pmd_free",
           "pmd_free_hotplugged", "gigantic_windows", "gigantic_windows_hotplugged",
           "online_hotplugged_blocks", "offlinable_blocks", "ranges", "removable_ranges",
           "wall_s"]


def point_key(scenario, strategy, scale, params):
    parts = [f"scenario={scenario}", f"strategy={strategy}", f"scale={scale if scale is not None else ''}"]
    parts += [f"{k}={params[k]}" for k in sorted(params)]
    return ";".join(parts)


def load_grid(path):
    """Validate a grid file; returns (points, param_names). Every point's scenario is
    loaded (parsed and validated) here, before anything runs."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"grid file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    allowed = {"scenarios", "strategies", "scale", "params"}
    for k in raw:
        if k not in allowed:
            raise ConfigError(f"{path}: {k}: unknown key; expected one of {', '.join(sorted(allowed))}")
    scen = raw.get("scenarios")
    if not isinstance(scen, list) or not scen or not all(isinstance(s, str) for s in scen):
        raise ConfigError(f"{path}: scenarios: expected a non-empty list of scenario names or "
                          f"paths, got {scen!r}")
    strategies = raw.get("strategies")
    if strategies is not None:
        if not isinstance(strategies, list) or not strategies or \
                not all(isinstance(s, str) for s in strategies):
            raise ConfigError(f"{path}: strategies: expected a non-empty list of strategy names, "
                              f"got {strategies!r}")
        for s in strategies:
            if s not in all_strategies():
                raise ConfigError(f"{path}: strategies: unknown strategy {s!r}; expected one of "
                                  f"{', '.join(all_strategies())}")
    scales = raw.get("scale", [None])
    scales = scales if isinstance(scales, list) else [scales]
    for x in scales:
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))
                              or not math.isfinite(x) or x <= 0):
            raise ConfigError(f"{path}: scale: expected a finite number > 0 or a list of them, "
                              f"got {x!r}")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: params: expected a table of lists, got {params!r}")
    for k, v in params.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{path}: params.{k}: expected a non-empty list of values, got {v!r}")
    names = sorted(params)
    points = []
    for ref in scen:
        sref = ref
        if "/" in ref or ref.endswith(".toml"):
            p = Path(ref)
            sref = str(p if p.is_absolute() else (path.parent / p).resolve())
        try:
            resolve(sref)
        except ConfigError as e:
            raise ConfigError(f"{path}: scenarios: {e}") from None
        for combo in itertools.product(*(params[k] for k in names)):
            pv = dict(zip(names, combo))
            for scale in scales:
                try:
                    sc = load(sref, params=pv, scale=scale)
                except ConfigError as e:
                    raise ConfigError(f"{path}: scenario {ref!r} with params {pv}: {e}") from None
                for strat in (strategies or sc.strategies):
                    points.append({"key": point_key(ref, strat, scale, pv), "scenario": ref,
                                   "scenario_path": sref, "strategy": strat, "scale": scale,
                                   "params": pv})
    return points, names


def _flatten(point, s):
    mm, where = s["memmap"], s["memmap"]["where"]
    hot = s["hotadd"]
    oom = [h["oom"]["after_bytes"] for h in hot if h["oom"]]
    return {
        "ok": s["error"] is None,
        "error": "" if s["error"] is None else f"step {s['error']['step']}: {s['error']['type']}: "
                                               f"{s['error']['message']}",
        "added_bytes": s["added_bytes"], "memmap_bytes": mm["bytes"],
        "memmap_percent": mm["percent_of_added"],
        "boot_memory_bytes": sum(where["boot_memory_by_node"].values()),
        "self_hosted_bytes": sum(where["self_hosted_by_node"].values()),
        "waste_pages": s["waste_pages"], "off_node_bytes": where["off_node_bytes"],
        "pagetable_bytes": where["pagetable_bytes"],
        "paid_at_add_bytes": mm["paid"]["at_add_bytes"],
        "paid_at_online_bytes": mm["paid"]["at_online_bytes"],
        "memtotal_end_kB": s["meminfo"]["end"]["MemTotal_kB"],
        "memfree_end_kB": s["meminfo"]["end"]["MemFree_kB"],
        "memtotal_delta_kB": s["meminfo"]["delta"]["MemTotal_kB"],
        "memfree_delta_kB": s["meminfo"]["delta"]["MemFree_kB"],
        "requested_bytes": sum(h["requested"] for h in hot),
        "hotadd_bytes": sum(h["added"] for h in hot),
        "oom_after_bytes": oom[0] if oom else "",
        "pmd_free": s["hugepages"]["pmd"]["free_blocks"],
        "pmd_free_hotplugged": s["hugepages"]["pmd"]["free_blocks_hotplugged"],
        "gigantic_windows": s["hugepages"]["gigantic"]["windows"],
        "gigantic_windows_hotplugged": s["hugepages"]["gigantic"]["windows_hotplugged"],
        "online_hotplugged_blocks": s["offline"]["online_hotplugged_blocks"],
        "offlinable_blocks": s["offline"]["offlinable_blocks"],
        "ranges": s["offline"]["ranges"], "removable_ranges": s["offline"]["removable_ranges"],
        "wall_s": s["time"]["wall_s"],
    }


def run_point(point):
    """Run one sweep point; returns its CSV row as a dict (never raises)."""
    from pagecore.report import compare
    row = {"key": point["key"], "scenario": point["scenario"], "strategy": point["strategy"],
           "scale": "" if point["scale"] is None else point["scale"]}
    row.update({f"param.{k}": v for k, v in point["params"].items()})
    try:
        sc = load(point["scenario_path"], params=point["params"], scale=point["scale"])
        res = compare(sc, [point["strategy"]])
        row.update(_flatten(point, res["strategies"][point["strategy"]]))
    except PagecoreError as e:
        row.update({k: "" for k in METRICS})
        row.update(ok=False, error=f"{type(e).__name__}: {e}")
    except Exception as e:  # a sweep outlives one broken point; the row says what happened
        row.update({k: "" for k in METRICS})
        row.update(ok=False, error=f"internal error {type(e).__name__}: {e}")
    row["error"] = " ".join(str(row["error"]).split())     # one physical line per row
    return row


def _header(names):
    return ["key", "scenario", "strategy", "scale"] + [f"param.{n}" for n in names] + METRICS


def _resume(out, header):
    """Keys already in `out`; rewrites the file without a torn last row."""
    if not out.exists() or out.stat().st_size == 0:
        return set()
    with open(out, newline="") as f:
        text = f.read()
    complete = text if text.endswith("\n") else text[:text.rfind("\n") + 1]
    rows = list(csv.reader(complete.splitlines()))
    if not rows:
        return set()
    if rows[0] != header:
        raise ConfigError(f"{out}: was written by a different grid (its columns differ); use "
                          "another --out or delete it")
    good = [r for r in rows[1:] if len(r) == len(header)]
    if len(good) != len(rows) - 1 or complete != text:
        tmp = out.with_suffix(out.suffix + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(good)
        os.replace(tmp, out)
    return {r[0] for r in good}


def run_sweep(grid, out, *, workers=None, scheduler=None, progress=None):
    """Run every point of `grid` not yet in `out`. Returns a summary dict:
    points, skipped, ran, failed, ran_keys."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: expected 1 or more")
    points, names = load_grid(grid)
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"--out {str(out)!r}: directory {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r}: is a directory; expected a CSV file name")
    with _locked(out):
        return _sweep_locked(points, names, out, workers, scheduler, progress)


class _locked:
    """An exclusive flock on OUT.lock beside the CSV for the whole sweep: a second sweep
    on the same --out would read the same resume state and write every point twice. The
    lock file stays (an empty file); the lock goes with the process, however it ends."""

    def __init__(self, out):
        self.path = out.with_name(out.name + ".lock")

    def __enter__(self):
        self.f = open(self.path, "a")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.close()
            raise ConfigError(f"--out {str(self.path)[:-5]!r}: another sweep is writing it "
                              f"(it holds {str(self.path)!r}); wait for it or use another "
                              "--out") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _sweep_locked(points, names, out, workers, scheduler, progress):
    header = _header(names)
    done = _resume(out, header)
    todo = [p for p in points if p["key"] not in done]
    summary = {"points": len(points), "skipped": len(points) - len(todo), "ran": 0,
               "failed": 0, "ran_keys": [], "out": str(out)}
    new = not out.exists() or out.stat().st_size == 0
    with open(out, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        if new:
            w.writeheader()
            f.flush()

        def emit(row):
            w.writerow(row)
            f.flush()
            summary["ran"] += 1
            summary["failed"] += row["ok"] is not True
            summary["ran_keys"].append(row["key"])
            if progress is not None:
                progress(summary["ran"], len(todo), row["key"])

        if not todo:
            return summary
        if scheduler is not None:
            _run_dask(todo, scheduler, emit)
        elif (workers or os.cpu_count() or 1) == 1:
            for p in todo:
                emit(run_point(p))
        else:
            _run_local(todo, workers or os.cpu_count() or 1, emit)
    return summary


def _run_local(todo, workers, emit):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    ctx = multiprocessing.get_context("spawn")   # no fork after OpenMP threads exist
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as ex:
        futs = [ex.submit(run_point, p) for p in todo]
        try:
            for fut in as_completed(futs):
                emit(fut.result())
        except BaseException:
            for fut in futs:
                fut.cancel()
            raise


def _run_dask(todo, scheduler, emit):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    own = isinstance(scheduler, str)
    try:
        client = Client(scheduler, timeout=10) if own else scheduler
    except OSError as e:
        raise ConfigError(f"cannot connect to the Dask scheduler {scheduler!r}: {e}") from None
    try:
        futs = [client.submit(run_point, p, pure=False) for p in todo]
        for fut in as_completed(futs):
            emit(fut.result())
    finally:
        if own:
            client.close()
