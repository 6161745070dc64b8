"""The `pagecore` console script.

    pagecore compare [SCENARIO] [--strategies a,b] [--json] [--quiet] [--scale X] [--param K=V]
                     [--contig] [--units auto|kB|pages|MiB] [--delta]
    pagecore run SCENARIO [--strategy S] [--view V] [--step N] [--json] [--scale X] [--param K=V]
    pagecore scenarios
    pagecore sweep --grid grid.toml --out results.csv [--scheduler ADDR] [--workers N] [--quiet]
    pagecore export-sysfs SCENARIO --out DIR [--strategy S] [--step N] [--scale X] [--param K=V]
    pagecore plot map SCENARIO --out FILE.png [--strategies a,b] [--step N] [--scale X]
    pagecore plot overhead|balloon RESULT.json|RESULTS.csv --out FILE.png
    pagecore validate [SCENARIO] [--kernel 6.12] [--memmap-on-memory 0|1|force]
                      [--from RUN.json | --recorded] [--out RUN.json] [--json] [--all]
    pagecore validate --compact [--kernel 6.12] [--memmap-on-memory 0|1|force]
                      [--from RUN.json | --recorded] [--out RUN.json] [--json]
    pagecore calibrate --proc DIR | --from RUN.json [--kernel 6.12] [--out FILE]

SCENARIO is a built-in name (`pagecore scenarios`) or a path to a .toml file; without one,
`compare` runs the built-in "default".

Exit status: 0 when every step ran (or failed only where the scenario declares it may:
`may_fail = true`, and the ENOMEM that ends an `until_oom` add); 1 when a step failed
that was not declared (`compare`, `run`, `export-sysfs`, `plot map`; one stderr line per
failure, and "ok": false, "exit_status": 1 and the failures in --json); 2 for a usage,
scenario or file error, printed as one line "pagecore: error: ..." that names what the
user typed (the flag, the --param, the file and key). `validate` exits 1 when an exact
quantity differs from the kernel's. A progress bar (tqdm) goes to stderr when it is a
terminal (off with --quiet).
`export-sysfs` and `plot` use pagecore.sysfs (export_sysfs) and pagecore.plots
(plot_memory_map, plot_overhead, plot_balloon_limit), loaded only when used, with a
clear error when they (or matplotlib) are missing.
`calibrate` prints the [machine] table (pagecore.validate.calibrate) that reproduces the
machine whose meminfo, zoneinfo, iomem, ... are in DIR (or a recorded run's baseline),
with what was assumed as comments.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path

from pagecore.errors import ConfigError, PagecoreError

__all__ = ["main", "Progress"]


class Progress:
    """A progress bar on stderr, drawn by tqdm (rate, ETA; a terminal or a notebook), as
    the `progress(done, total, label)` callback of compare() and run_sweep(). Disabled, it
    writes nothing; enabled=None leaves it to tqdm, which draws only on a terminal, so a
    redirected stderr stays clean. tqdm is imported on first use."""

    def __init__(self, enabled=None, stream=None, unit="step", **tqdm_options):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.unit = unit
        self.options = tqdm_options
        self.bar = None

    def __call__(self, done, total, label=""):
        if self.enabled is False:
            return
        if self.bar is None:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, file=self.stream, unit=self.unit, leave=False,
                            dynamic_ncols=True, disable=None if self.enabled is None else False,
                            **self.options)
        if self.bar.total != total:
            self.bar.total = total
        self.bar.set_postfix_str(label, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress(args):
    return Progress(False if getattr(args, "quiet", False) else None)


def _params(items):
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--param {it!r}: expected NAME=VALUE")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _load(args):
    from pagecore.scenario import load
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        raise ConfigError(f"--scale {args.scale}: expected a finite number > 0")
    return load(args.scenario or "default", params=_params(args.param), scale=args.scale)


def _strategy_list(flag, text, default):
    """Strategy names of a --strategy/--strategies flag, each checked, the flag named."""
    from pagecore.strategies import all_strategies
    if text is None:
        return list(default)
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError(f"{flag} {text!r}: expected strategy names")
    for n in names:
        if n not in all_strategies():
            raise ConfigError(f"{flag} {text}: unknown memmap strategy {n!r}; expected one of "
                              f"{', '.join(all_strategies())}")
    return names


def _check_step(args, sc):
    if args.step is not None and not 0 <= args.step <= len(sc.steps):
        raise ConfigError(f"--step {args.step}: the scenario has steps 0 (boot) to {len(sc.steps)}")


def _out_file(flag, path):
    """An output file a command will write: its directory must exist, and it must not
    be a directory (checked before any work is done)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; expected a file name")
    if not p.parent.is_dir():
        raise ConfigError(f"{flag} {path}: directory {str(p.parent)!r} does not exist")
    return p


def _out_dir(flag, path):
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {path}: exists and is not a directory")
    if not p.exists() and not p.parent.is_dir():
        raise ConfigError(f"{flag} {path}: directory {str(p.parent)!r} does not exist")
    return p


def _step_failed(what, err):
    """One stderr line for a step that failed without being declared `may_fail`."""
    sys.stderr.write(f"pagecore: {what}step {err['step']} ({err['action']}) failed: "
                     f"{err['message']}\n")


# ---- subcommands -----------------------------------------------------------------------
def cmd_compare(args):
    from pagecore.report import compare, format_table
    sc = _load(args)
    strategies = _strategy_list("--strategies", args.strategies, sc.strategies)
    bar = _progress(args)
    try:
        result = compare(sc, strategies, progress=bar, contig=args.contig)
    finally:
        bar.close()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(result, units=args.units, delta=args.delta))
    for f in result["failed"]:
        _step_failed(f"{f['strategy']}: ", f)
    return result["exit_status"]


def _run_to_step(args):
    sc = _load(args)
    default = "block" if "block" in sc.strategies else sc.strategies[-1]
    strategy = _strategy_list("--strategy", args.strategy, [default])
    if len(strategy) != 1:
        raise ConfigError(f"--strategy {args.strategy}: expected one strategy")
    _check_step(args, sc)
    run = sc.run(strategy[0], stop_after=args.step, check=getattr(args, "check", False))
    if run.error:
        _step_failed("", dict(run.error, message=run.error["message"]
                              + "; showing the machine as the failure left it"))
    return sc, run


def _run_status(run):
    from pagecore.report import EXIT_STEP_FAILED
    return EXIT_STEP_FAILED if run.error else 0


def cmd_run(args):
    from pagecore.procfs import VIEWS
    sc, run = _run_to_step(args)
    text_fn, dict_fn = VIEWS[args.view]
    status = _run_status(run)
    if args.json:
        doc = {"scenario": sc.name, "strategy": run.strategy, "ok": run.error is None,
               "exit_status": status, "step": run.records[-1]["index"], "view": args.view,
               "data": dict_fn(run.machine), "steps": run.records, "error": run.error,
               "expected_failures": run.expected_failures}
        if args.view == "meminfo":
            from pagecore.procfs import MEMINFO_NOT_MODELLED
            doc["not_modelled"] = list(MEMINFO_NOT_MODELLED)
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text_fn(run.machine))
    return status


def cmd_scenarios(args):
    from pagecore.scenario import builtin_names, load
    rows = []
    for n in builtin_names():
        sc = load(n)
        rows.append((n, sc.description, ", ".join(sc.strategies)))
    w = max(len(r[0]) for r in rows)
    for n, d, s in rows:
        sys.stdout.write(f"{n.ljust(w)}  {d}\n{' ' * w}  strategies: {s}\n")
    return 0


def cmd_sweep(args):
    from pagecore.sweep import run_sweep
    _out_file("--out", args.out)
    bar = _progress(args)
    try:
        summary = run_sweep(args.grid, args.out, workers=args.workers,
                            scheduler=args.scheduler, progress=bar)
    finally:
        bar.close()
    sys.stdout.write(f"{summary['points']} points: {summary['ran']} run, {summary['skipped']} "
                     f"already in {summary['out']}, {summary['failed']} failed\n")
    # a failed point has its row (ok=False, the message in `error`); the status says so
    return 1 if summary["failed"] else 0


def cmd_export_sysfs(args):
    from pagecore.sysfs import export_sysfs as export
    _out_dir("--out", args.out)
    sc, run = _run_to_step(args)
    policy = sc.machine["auto_online"]
    export(run.machine, args.out, auto_online=policy)
    # lsmem --sysroot takes the root above sys/, not the memory directory written
    sys.stdout.write(f"lsmem --sysroot {shlex.quote(str(args.out))}\n")
    return _run_status(run)


def _plot_rows(path, kind):
    """Rows for plots.plot_overhead / plot_balloon_limit from a `compare --json` result
    or a sweep CSV."""
    import csv
    from pagecore.scenario import parse_size
    try:
        with open(path, newline="") as f:
            if str(path).endswith(".csv"):
                rows = [r for r in csv.DictReader(f) if r.get("ok") == "True"]
                src = "csv"
            else:
                result = json.load(f)
                src = "json"
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not a `pagecore compare --json` result: {e}") from None
    out = []
    if src == "json":
        if not isinstance(result, dict) or "strategies" not in result:
            raise ConfigError(f"{path}: not a `pagecore compare --json` result (no 'strategies')")
        boot = sum(n for node in result["scenario"]["machine"]["nodes"] for _, n in node["boot"])
        for name, st in result["strategies"].items():
            added, memmap = st["added_bytes"], st["memmap"]["bytes"]
            out.append({"strategy": name, "scenario": result["scenario"]["name"],
                        "added_bytes": added, "memmap_bytes": memmap,
                        "usable_bytes": added - memmap, "boot_bytes": boot,
                        "limit_bytes": sum(h["added"] for h in st["hotadd"])})
        return out
    for i, r in enumerate(rows):
        added, memmap = int(r["added_bytes"]), int(r["memmap_bytes"])
        row = {"strategy": r["strategy"], "scenario": r["scenario"],
               "added_bytes": added, "memmap_bytes": memmap,
               "usable_bytes": added - memmap, "limit_bytes": int(r["hotadd_bytes"])}
        if kind == "balloon":
            if "param.boot" not in r:
                raise ConfigError(f"{path}: plot balloon needs a param.boot column (sweep the "
                                  "scenario's boot parameter)")
            row["boot_bytes"] = parse_size(r["param.boot"], f"{path}: row {i + 2}: param.boot")
        out.append(row)
    return out


def cmd_plot(args):
    _out_file("--out", args.out)
    status = 0
    if args.kind == "map":
        from pagecore.plots import plot_memory_map as plot
        sc = _load(args)
        names = _strategy_list("--strategies", args.strategies, sc.strategies)
        _check_step(args, sc)
        machines = {}
        for name in names:
            run = sc.run(name, stop_after=args.step)
            if run.error:
                _step_failed(f"{name}: ", run.error)
                status = _run_status(run)
            machines[name] = run.machine
        out = plot(machines, args.out)
    else:
        if args.step is not None or args.strategies is not None:
            raise ConfigError(f"plot {args.kind}: --step and --strategies are for plot map")
        from pagecore import plots
        plot = {"overhead": plots.plot_overhead, "balloon": plots.plot_balloon_limit}[args.kind]
        out = plot(_plot_rows(args.scenario, args.kind), args.out)
    sys.stdout.write(f"{out}\n")
    return status


def cmd_validate(args):
    """Run the scenario's pc-dimm steps on a real kernel (or read a recorded run) and
    print kernel and pagecore side by side; exit 1 when an exact quantity differs."""
    from pagecore.validate import compare as vc
    from pagecore.validate import record as vr
    if args.compact:
        return _validate_compact(args)
    if args.summary:
        paths = sorted(os.path.join(vr.RUNS_DIR, f) for f in os.listdir(vr.RUNS_DIR)
                       if f.endswith(".json"))
        results = [vc.compare(vr.load_run(p)) for p in paths]
        rows = vc.summarize(results)
        return _print_result(args, rows, vc.format_summary(rows),
                             all(r["ok"] for r in results))
    if args.from_:
        rec = vr.load_run(args.from_)
    elif args.recorded:
        rec = vr.load_run(vr.recorded_path(args.scenario, args.kernel, args.memmap_on_memory))
    else:
        from pagecore.validate import kernels
        kernels.check_host()
        sc = _load(args)
        bar = _progress(args)
        try:
            rec = vr.record(sc, args.kernel, args.memmap_on_memory, out=args.out,
                            timeout=args.timeout, progress=bar)
        finally:
            bar.close()
    res = vc.compare(rec)
    return _print_result(args, res, vc.format_report(res, all_rows=args.all), res["ok"])


def _validate_compact(args):
    """--compact: a node's compaction (pagecore.validate.compact), live or recorded."""
    from pagecore.validate import compact
    if args.from_:
        rec = compact.load(args.from_)
    elif args.recorded:
        path = compact.recorded_path(args.kernel, args.memmap_on_memory)
        if not os.path.exists(path):
            raise ConfigError(f"--recorded: no compaction run for kernel {args.kernel} "
                              f"memmap_on_memory={args.memmap_on_memory} ({path})")
        rec = compact.load(path)
    else:
        rec = compact.record(args.kernel, args.memmap_on_memory, timeout=args.timeout)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rec, f, indent=1, sort_keys=True)
                f.write("\n")
    res = compact.compare(rec)
    return _print_result(args, res, compact.format_report(res), res["ok"])


def _print_result(args, data, text, ok):
    """`data` as JSON with --json, else `text`; the exit status: 0 when `ok`, else 1."""
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text + "\n")
    return 0 if ok else 1


def cmd_calibrate(args):
    from pagecore.validate import calibrate as cal
    if bool(args.proc) == bool(args.from_run):
        raise ConfigError("calibrate: give exactly one of --proc DIR or --from RUN.json")
    if args.proc:
        cfg, notes = cal.calibrate_dir(args.proc, kernel=args.kernel)
    else:
        try:
            with open(args.from_run) as f:
                rec = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"calibrate --from {args.from_run}: cannot read a recorded run: {e}") from None
        notes = []
        cfg = cal.from_record(rec, notes)
    text = cal.machine_toml(cfg, notes)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        sys.stdout.write(f"{args.out}\n")
    else:
        sys.stdout.write(text)
    return 0


# ---- argument parsing ------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write(f"pagecore: error: {message}\n")
        sys.exit(2)


def _scenario_opts(p):
    p.add_argument("--scale", type=float, help="multiply the scenario's scale_params")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="override a scenario parameter (repeatable)")


def build_parser():
    from pagecore.procfs import VIEWS
    ap = _Parser(prog="pagecore", description="Simulate the memmap of hot-plugged memory.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("compare", help="compare memmap strategies on a scenario")
    p.add_argument("scenario", nargs="?", help="built-in name or .toml path (default: default)")
    p.add_argument("--strategies", help="comma-separated strategies (default: the scenario's)")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--contig", action="store_true",
                   help="also measure 1 GiB pages with alloc_contig_range() (slower)")
    p.add_argument("--units", choices=["auto", "kB", "pages", "MiB"], default="auto",
                   help="sizes in the table: auto (K/M/G with the digits that tell the "
                        "columns apart), kB (as /proc prints), pages, MiB")
    p.add_argument("--delta", action="store_true",
                   help="show the columns after the first as differences from it")
    _scenario_opts(p)
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("run", help="run a scenario and show a /proc view")
    p.add_argument("scenario")
    p.add_argument("--strategy", help="memmap strategy (default: block if the scenario lists it, "
                                             "else its last)")
    p.add_argument("--view", choices=list(VIEWS), default="meminfo")
    p.add_argument("--step", type=int, help="stop after this step (0 = right after boot)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true",
                   help="Machine.check() after boot and after every step (CONFIG_DEBUG_VM); "
                        "a broken invariant ends the run with status 2")
    p.add_argument("--quiet", action="store_true", help="accepted for symmetry: run shows no bar")
    _scenario_opts(p)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("scenarios", help="list the built-in scenarios")
    p.set_defaults(fn=cmd_scenarios)

    p = sub.add_parser("sweep", help="run a grid of scenarios x strategies x parameters")
    p.add_argument("--grid", required=True)
    p.add_argument("--out", required=True, help="CSV file; existing rows are kept (resume)")
    p.add_argument("--scheduler", help="Dask scheduler address (default: local processes)")
    p.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("export-sysfs", help="write /sys/devices/system/memory of a run "
                                            "(pagecore.sysfs; read it with lsmem --sysroot)")
    p.add_argument("scenario")
    p.add_argument("--out", required=True, help="sysroot directory")
    p.add_argument("--strategy")
    p.add_argument("--step", type=int, help="stop after this step (0 = right after boot)")
    _scenario_opts(p)
    p.set_defaults(fn=cmd_export_sysfs)

    p = sub.add_parser("validate", help="hold pagecore against a real kernel under QEMU "
                                        "(or a recorded run)")
    p.add_argument("scenario", nargs="?", default="default",
                   help="built-in name or .toml path (default: default)")
    p.add_argument("--kernel", default="6.12", help="Debian kernel series or version (6.1, 6.12)")
    p.add_argument("--memmap-on-memory", default="1", choices=["0", "1", "force"],
                   help="memory_hotplug.memmap_on_memory on the guest's command line")
    p.add_argument("--from", dest="from_", metavar="RUN.json",
                   help="compare against a recorded run instead of booting a guest")
    p.add_argument("--recorded", action="store_true",
                   help="use the run recorded in the package for this scenario/kernel/mode")
    p.add_argument("--out", metavar="RUN.json", help="also write the recorded run here")
    p.add_argument("--timeout", type=float, default=900, help="wall-clock limit of the guest (s)")
    p.add_argument("--all", action="store_true", help="print every row, not only changes")
    p.add_argument("--summary", action="store_true",
                   help="one line per recorded run in the package: what matches, per quantity")
    p.add_argument("--compact", action="store_true",
                   help="instead of a scenario: compact_node() of a hot-added node "
                        "(pagecore.validate.compact), its scan counts against pagecore's")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _scenario_opts(p)
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("plot", help="figures (pagecore.plots, needs matplotlib)")
    p.add_argument("kind", choices=["map", "overhead", "balloon"],
                   help="map: memory map of a scenario per strategy; overhead / balloon: "
                        "from a `compare --json` file or a sweep CSV")
    p.add_argument("scenario", metavar="SCENARIO|RESULT",
                   help="map: scenario name or .toml; others: .json or .csv results")
    p.add_argument("--out", required=True, help="PNG file")
    p.add_argument("--strategies", help="map: comma-separated strategies")
    p.add_argument("--step", type=int, help="map: stop after this step")
    _scenario_opts(p)
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("calibrate", help="the [machine] table that reproduces a real machine "
                                         "(from its /proc files)")
    p.add_argument("--proc", metavar="DIR", help="directory with meminfo, zoneinfo and optionally "
                   "vmstat, iomem, dmesg, sys/devices/system/memory/")
    p.add_argument("--from", dest="from_run", metavar="RUN.json",
                   help="a run recorded by pagecore.validate (its baseline)")
    p.add_argument("--kernel", help="kernel version (default: inferred from the files)")
    p.add_argument("--out", help="write the table to FILE instead of stdout")
    p.set_defaults(fn=cmd_calibrate)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except PagecoreError as e:
        sys.stderr.write(f"pagecore: error: {e}\n")
        return 2
    except OSError as e:       # a file system refusal the checks above could not foresee
        where = f"{e.filename}: " if e.filename else ""
        sys.stderr.write(f"pagecore: error: {where}{e.strerror or e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("pagecore: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
