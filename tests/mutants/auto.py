"""Operator mutation testing of pagecore's kernel rules (the model modules).

    python tests/mutants/auto.py                      # every mutant of every target
    python tests/mutants/auto.py --list               # enumerate only
    python tests/mutants/auto.py --functions setup_per_zone_wmarks,Block68.plan
    python tests/mutants/auto.py --limit 60 --seed 1  # a random sample of 60
    python tests/mutants/auto.py --match "tmp >> 3"   # the mutants whose text has it
    python tests/mutants/auto.py --survivors LOG      # those a previous run left alive

tests/mutants/mutants.py lists hand-written mutants of whole rules; this script makes
every first-order operator mutant of the target functions (TARGETS) instead: it parses
each function with `ast` and, inside its body, swaps + and -, * and //, << and >>, & and
|, < and <=, > and >=, == and !=, in and not in, `and` and `or`, max and min, moves each
integer constant by +1 and -1, negates each condition (if, while, conditional
expression, comprehension filter) and drops each `not`. Left alone: strings, f-strings,
dict keys, and everything inside a `raise` (error messages).

The tree is copied once to a scratch directory (pagecore/ with the built extension
modules, tests/, pyproject.toml). Each mutant is written into the copy (and its .pyc
removed), the target's test selection (SELECTIONS) runs there with `-x`, and the file is
put back. A mutant is killed when a test fails, timed out when it runs past its
selection's unmutated time * 2 + 20 s (counted as killed, shown apart), equivalent when
EQUIVALENT names it (not run; --run-equivalent runs them to check the judgement).
Prints one line per mutant, a table per module and the score killed / (killed +
survived); exits 1 when a mutant survived.
"""
from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---- test selections -------------------------------------------------------------------
#: Runs of tests/test_kernel_replay.py by cost: each run is replayed once per process
#: (the comparison is cached), so every exact test of a chosen run comes for free.
_REPLAY_TESTS = ("test_zone_spans_and_memtotal_exact", "test_watermarks_exact",
                 "test_block_states_exact", "test_failed_operations_match")
_MODES = ("6.1--mom0", "6.1--mom1", "6.12--mom0", "6.12--mom1", "6.12--momforce")


def replay(*scenarios, tests=_REPLAY_TESTS):
    """Node ids of tests/test_kernel_replay.py: `tests` for every mode of `scenarios`."""
    return [f"tests/test_kernel_replay.py::{t}[{s}--{mode}]"
            for s in scenarios for t in tests for mode in _MODES]


#: name -> pytest arguments, in the order they run (-x: the cheap known answers first).
SELECTIONS = {
    # watermarks, lowmem reserve, min_free_kbytes, THP's recommendation: the hand-worked
    # answers, then the exact watermarks/protection/min_free_kbytes of recorded runs of
    # both versions, every memmap_on_memory mode, a 256 MiB guest (THP off) among them
    "watermarks": ["tests/test_kernel_rules.py",
                   *replay("kv-one-block", "kv-multi-block", "kv-small-offline", "default")],
    # zone selection at online, the default online type: zones, valid_zones and block
    # states of recorded runs (online, online_kernel, online_movable on both versions)
    "zones": ["tests/test_kernel_rules.py",
              "tests/test_engine.py::test_reonline_uses_online_kernel",
              "tests/test_engine.py::test_classic_memmap_of_a_memoryless_node_is_off_node",
              *replay("kv-one-block", "kv-multi-block", "kv-small-offline", "kv-large")],
    # the altmap of each strategy's plan(): the per-arch and per-generation tables of
    # the cover letters and specs, the calibrated mode -> strategy map, nr_memmap_pages
    # and managed pages of recorded runs
    "altmap": ["tests/test_engine.py",
               "tests/test_calibrate.py::test_strategy_for_each_memmap_on_memory_mode",
               *replay("kv-one-block", "kv-multi-block", "kv-large", "default")],
    # the per-cpu pageset limits and the vmstat thresholds: the hand-worked answers, the
    # zoneinfo lines of a recorded boot, the scenario keys, then every pageset row of
    # recorded runs of both versions and every memmap_on_memory mode (a 256 MiB guest,
    # a multi-node guest, a CPU-less node among them)
    "pagesets": ["tests/test_kernel_rules.py",
                 "tests/test_procfs.py::test_zoneinfo_pagesets_print_as_the_kernel_prints_them",
                 "tests/test_scenarios.py::test_node_cpus_and_pcp_fraction_reach_the_machine",
                 "tests/test_calibrate.py::test_cpus_come_from_the_pagesets",
                 *replay("kv-one-block", "default", "kv-large", "kv-small-offline", "one-block-dimms",
                         tests=("test_pagesets_are_the_kernels",))],
    # MemAvailable (si_mem_available()) and totalreserve_pages
    "meminfo": ["tests/test_procfs.py",
                "tests/test_kernel_rules.py::test_mem_available_halves_the_page_cache_up_to_the_low_watermarks",
                "tests/test_kernel_rules.py::test_mem_available_is_zero_when_free_memory_is_below_the_reserve",
                "tests/test_kernel_rules.py::test_mem_available_of_a_recorded_baseline"],
}

#: (file, selection, functions: name, Class.method, or a module-level NAME = constant);
#: a file may appear more than once, each group of its functions with its own selection.
TARGETS = [
    ("pagecore/mm/page_alloc.py", "watermarks", [
        "MOVABLE_WMARK_CLAMP_SINCE", "LOWMEM_RESERVE_RATIO", "calculate_min_free_kbytes",
        "__setup_per_zone_wmarks", "setup_per_zone_wmarks", "setup_per_zone_lowmem_reserve",
        "nr_free_buffer_pages"]),
    ("pagecore/mm/mmzone.py", "pagesets", ["PCP_HIGH_AUTOTUNE_SINCE"]),
    ("pagecore/mm/page_alloc.py", "pagesets", [
        "rounddown_pow_of_two", "zone_batchsize", "zone_highsize",
        "pageset_update", "zone_set_pageset_high_and_batch", "setup_zone_pageset",
        "zone_pcp_update", "zone_pcp_disable", "zone_pcp_enable", "zone_pcp_reset",
        "pcp_high", "setup_per_cpu_pageset"]),
    ("pagecore/mm/vmstat.py", "pagesets", [
        "fls", "calculate_normal_threshold", "refresh_zone_stat_thresholds"]),
    ("pagecore/mm/khugepaged.py", "watermarks", ["set_recommended_min_free_kbytes"]),
    ("pagecore/mm/huge_memory.py", "watermarks", ["hugepage_init"]),
    ("pagecore/mm/memory_hotplug.py", "zones", [
        "zone_for_pfn_range", "default_kernel_zone_for_pfn", "auto_movable_zone_for_pfn",
        "auto_movable_can_online_movable", "mhp_get_default_online_type"]),
    ("pagecore/strategies.py", "altmap", [
        "memory_block_memmap_pages", "arch_supports_memmap_on_memory", "supports_v66",
        "Boot.plan", "SeedRange.plan", "Block513.supported", "Block513.plan",
        "Block66.plan", "Block68.plan"]),
    ("pagecore/mm/show_mem.py", "meminfo", ["meminfo", "totalreserve_pages"]),
]

#: Mutants judged equivalent by reading: (function, mutated source as printed) -> why.
EQUIVALENT = {
    ("LOWMEM_RESERVE_RATIO", "LOWMEM_RESERVE_RATIO = (256, 256, 32, 1)"):
        "ratio[ZONE_MOVABLE] is never read: no zone lies above Movable, so its loop is empty",
    ("LOWMEM_RESERVE_RATIO", "LOWMEM_RESERVE_RATIO = (256, 256, 32, (-1))"):
        "ratio[ZONE_MOVABLE] is never read: no zone lies above Movable, so its loop is empty",
    ("PCP_HIGH_AUTOTUNE_SINCE", "PCP_HIGH_AUTOTUNE_SINCE = (6, 6)"):
        "the recorded kernels are 6.1 and 6.12: a boundary anywhere in 6.2..6.12 splits "
        "them alike (the release is that of the commit the comment names)",
    ("PCP_HIGH_AUTOTUNE_SINCE", "PCP_HIGH_AUTOTUNE_SINCE = (6, 8)"):
        "the recorded kernels are 6.1 and 6.12: a boundary anywhere in 6.2..6.12 splits "
        "them alike (the release is that of the commit the comment names)",
    ("set_recommended_min_free_kbytes", "if (rec >= m.min_free_kbytes):"):
        "when rec == min_free_kbytes the assignment writes the value already there",
    ("auto_movable_zone_for_pfn",
     "need = rng.nr_pages - int(((on | (bl['zone'] == P.ZONE_MOVABLE))).sum()) * nb"):
        "offline blocks carry zone -1 (invariants.py) and the online ones of the range are "
        "all Movable here (the test above returned otherwise), so | and & select the same",
    ("auto_movable_can_online_movable", "if (kernel_early < 0):"):
        "with kernel_early 0 the ratio test compares movable + nr_pages (at least the "
        "offline block being onlined) with 0 and says no as well",
    ("Block513.supported",
     "((size * arch.page_size + vm)) % (arch.pageblock_nr_pages * arch.page_size) == 0)"):
        "only read when size is one memory block, a multiple of the pageblock: then "
        "size + vm and size - vm are both multiples of it exactly when vm is",
    ("totalreserve_pages", "mx = max(z.lowmem_reserve[z.zid:] + [(-1)]) + z.watermark[2]"):
        "the slice holds the zone's own reserve, 0, and none is negative: the max is >= 0",
}

PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-m", "not qemu and not big"]

# ---- enumeration -----------------------------------------------------------------------
_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
          ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr,
          ast.BitOr: ast.BitAnd}
_CMPOP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
          ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
          ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_CALLS = {"max": "min", "min": "max"}


class Mutant:
    def __init__(self, file, func, node, new_text, kind, src_lines):
        self.file, self.func, self.kind = file, func, kind
        self.lineno, self.col = node.lineno, node.col_offset
        self.end_lineno, self.end_col = node.end_lineno, node.end_col_offset
        self.new_text = new_text
        lines = src_lines[self.lineno - 1:self.end_lineno]
        before, after = lines[0][:self.col], lines[-1][self.end_col:]
        self.text = " ".join((before + new_text + after).split())   # the mutated line(s)
        self.orig = " ".join(" ".join(lines).split())

    def apply(self, src):
        lines = src.splitlines(keepends=True)
        head = "".join(lines[:self.lineno - 1]) + lines[self.lineno - 1][:self.col]
        tail = lines[self.end_lineno - 1][self.end_col:] + "".join(lines[self.end_lineno:])
        return head + self.new_text + tail

    @property
    def where(self):
        return f"{os.path.basename(self.file)}:{self.lineno}"

    @property
    def key(self):
        return (self.func, self.text)


def _functions(tree):
    """qualname -> FunctionDef of the module's functions and methods; NAME -> a
    FunctionDef-like holder of the module-level assignment NAME = ..."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.Module(body=[node], type_ignores=[])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{sub.name}"] = sub
    return out


def _skipped(fn):
    """ids of nodes left alone: inside a raise or an f-string, dict keys."""
    skip = set()
    for node in ast.walk(fn):
        if isinstance(node, (ast.Raise, ast.JoinedStr)):
            skip.update(id(n) for n in ast.walk(node))
        elif isinstance(node, ast.Dict):
            for k in node.keys:
                if k is not None:
                    skip.update(id(n) for n in ast.walk(k))
    return skip


def _expr(node):
    return "(" + ast.unparse(node) + ")"


def mutants_of(file, funcs, sel):
    with open(os.path.join(ROOT, file)) as f:
        src = f.read()
    lines = src.splitlines()
    tree = ast.parse(src)
    found = _functions(tree)
    out = []
    for name in funcs:
        if name not in found:
            raise SystemExit(f"{file}: no function {name} (TARGETS is stale)")
        fn = found[name]
        skip = _skipped(fn)
        body = fn.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skip.update(id(n) for n in ast.walk(body[0]))         # the docstring
        conds = set()
        for node in (n for stmt in body for n in ast.walk(stmt)):
            if isinstance(node, (ast.If, ast.While, ast.IfExp)):
                conds.add(id(node.test))
            elif isinstance(node, ast.comprehension):
                conds.update(id(c) for c in node.ifs)
        seen = set()

        def add(node, new_text, kind, name=name, seen=seen):
            m = Mutant(file, name, node, new_text, kind, lines)
            if m.text != m.orig and m.key not in seen:
                seen.add(m.key)
                out.append(m)

        for node in (n for stmt in body for n in ast.walk(stmt)):
            if id(node) in skip:
                continue
            if isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
                new = copy.copy(node)
                new.op = _BINOP[type(node.op)]()
                add(node, _expr(new), "binop")
            elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOP:
                new = copy.copy(node)
                new.op = _BINOP[type(node.op)]()
                add(node, ast.unparse(new), "augassign")
            elif isinstance(node, ast.Compare):
                for i, op in enumerate(node.ops):
                    if type(op) in _CMPOP:
                        new = copy.copy(node)
                        new.ops = list(node.ops)
                        new.ops[i] = _CMPOP[type(op)]()
                        add(node, _expr(new), "compare")
            elif isinstance(node, ast.BoolOp):
                new = copy.copy(node)
                new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
                add(node, _expr(new), "boolop")
            elif isinstance(node, ast.Constant) and type(node.value) is int:
                for d in (1, -1):
                    add(node, repr(node.value + d) if node.value + d >= 0
                        else f"({node.value + d})", f"const{d:+d}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in _CALLS:
                add(node.func, _CALLS[node.func.id], "maxmin")
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                add(node, _expr(node.operand), "drop-not")
            if id(node) in conds and not (isinstance(node, ast.UnaryOp)
                                          and isinstance(node.op, ast.Not)):
                add(node, "(not " + _expr(node) + ")", "negate")
    for m in out:                                   # every mutant must still compile
        compile(m.apply(src), file, "exec")
        m.sel = sel
    return out


def enumerate_all(only=None):
    muts = []
    for file, sel, funcs in TARGETS:
        chosen = [f for f in funcs if not only or f in only]
        muts += mutants_of(file, chosen, sel)
    return muts


# ---- running ---------------------------------------------------------------------------
def _copy_tree(dst):
    shutil.copytree(os.path.join(ROOT, "pagecore"), os.path.join(dst, "pagecore"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "build"))
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(dst, "tests"),
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", "mutants"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), dst)


def run_selection(d, sel, timeout):
    """(status, first failing test or None, seconds): status 'pass', 'fail', 'timeout'."""
    cmd = [sys.executable, "-m", "pytest", *PYTEST, *SELECTIONS[sel]]
    env = {**os.environ, "PYTHONPATH": d}
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return "timeout", None, time.monotonic() - t0
    except BaseException:                 # ^C: the test run is in its own session
        os.killpg(p.pid, signal.SIGKILL)
        raise
    dt = time.monotonic() - t0
    if p.returncode == 0:
        return "pass", None, dt
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.MULTILINE)
    if failed:
        return "fail", failed[0], dt
    return "fail", f"pytest exit {p.returncode}: " + " ".join(out.strip().splitlines()[-1:]), dt


def _write(path, text):
    """Write a module of the scratch tree and drop its .pyc (a mutant can have the
    size and the mtime second of the original)."""
    with open(path, "w") as f:
        f.write(text)
    try:
        os.remove(importlib.util.cache_from_source(path))
    except FileNotFoundError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--functions", default="", help="comma-separated names (Class.method)")
    ap.add_argument("--match", action="append", default=[],
                    help="only mutants whose printed text has this (repeatable)")
    ap.add_argument("--survivors", metavar="LOG",
                    help="only the mutants a previous run's output LOG shows SURVIVED")
    ap.add_argument("--list", action="store_true", help="enumerate, do not run")
    ap.add_argument("--limit", type=int, default=0, help="run a random sample of N")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sample (--limit)")
    ap.add_argument("--run-equivalent", action="store_true",
                    help="run the EQUIVALENT mutants too (each should survive)")
    a = ap.parse_args(argv)
    only = {f.strip() for f in a.functions.split(",") if f.strip()} or None
    muts = enumerate_all(only)
    if a.match:
        muts = [m for m in muts if any(t in m.text for t in a.match)]
    if a.survivors:
        with open(a.survivors) as f:
            keys = set(re.findall(r"^SURVIVED \S+ +(\S+) +(.*?)  \(\d+ s\)$", f.read(), re.MULTILINE))
        muts = [m for m in muts if m.key in keys]
    total = len(muts)
    unknown = set(EQUIVALENT) - {m.key for m in enumerate_all()}
    if unknown:
        print(f"note: {len(unknown)} EQUIVALENT entries match no mutant (stale?): "
              + "; ".join(f"{f}: {t}" for f, t in sorted(unknown)))
    if a.limit and a.limit < total:
        rng = random.Random(a.seed)
        keep = set(rng.sample(range(total), a.limit))
        muts = [m for i, m in enumerate(muts) if i in keep]
    if a.list:
        for m in muts:
            eq = "  [equivalent]" if m.key in EQUIVALENT else ""
            print(f"{m.where:22s} {m.func:32s} {m.kind:9s} {m.text}{eq}")
        print(f"{len(muts)} mutants (of {total})")
        return 0
    print(f"{len(muts)} of {total} mutants ({100 * len(muts) / max(total, 1):.0f}%)"
          + (f", sample seed {a.seed}" if len(muts) < total else ""), flush=True)
    d = tempfile.mkdtemp(prefix="pagecore-auto-mutants-")
    stats = {}                       # file -> counters
    try:
        _copy_tree(d)
        base = {}
        for sel in sorted({m.sel for m in muts}):
            status, first, dt = run_selection(d, sel, 1800)
            if status != "pass":
                raise SystemExit(f"selection {sel} fails unmutated: {first}")
            base[sel] = dt
            print(f"unmutated {sel}: {dt:.1f} s ({len(SELECTIONS[sel])} arguments)", flush=True)
        t_start = time.monotonic()
        for m in muts:
            st = stats.setdefault(m.file, {"run": 0, "killed": 0, "timeout": 0,
                                           "survived": 0, "equivalent": 0})
            head = f"{m.where:22s} {m.func:30s} {m.text}"
            if m.key in EQUIVALENT and not a.run_equivalent:
                st["equivalent"] += 1
                print(f"equivalent {head}  -- {EQUIVALENT[m.key]}", flush=True)
                continue
            path = os.path.join(d, m.file)
            with open(path) as f:
                orig = f.read()
            try:
                _write(path, m.apply(orig))
                sel = m.sel
                status, first, dt = run_selection(d, sel, base[sel] * 2 + 20)
            finally:
                _write(path, orig)
            st["run"] += 1
            if m.key in EQUIVALENT:
                st["equivalent"] += 1
                note = "ok" if status == "pass" else f"KILLED ({first}): not equivalent"
                print(f"equivalent {head}  -- {note}", flush=True)
            elif status == "pass":
                st["survived"] += 1
                print(f"SURVIVED {head}  ({dt:.0f} s)", flush=True)
            elif status == "timeout":
                st["timeout"] += 1
                print(f"timeout  {head}  (> {dt:.0f} s)", flush=True)
            else:
                st["killed"] += 1
                print(f"killed   {head}  by {first} ({dt:.0f} s)", flush=True)
        elapsed = time.monotonic() - t_start
    finally:
        shutil.rmtree(d, ignore_errors=True)
    n_by_file = {}
    for m in enumerate_all(only):
        n_by_file[m.file] = n_by_file.get(m.file, 0) + 1
    print(f"\n{'module':32s} {'enum':>5s} {'run':>5s} {'killed':>6s} {'timeout':>7s} "
          f"{'surv':>5s} {'equiv':>5s}")
    tot = {"enum": 0, "run": 0, "killed": 0, "timeout": 0, "survived": 0, "equivalent": 0}
    for file, st in stats.items():
        row = dict(enum=n_by_file.get(file, 0), **st)
        for k in tot:
            tot[k] += row[k]
        print(f"{file:32s} {row['enum']:5d} {row['run']:5d} {row['killed']:6d} "
              f"{row['timeout']:7d} {row['survived']:5d} {row['equivalent']:5d}")
    k = tot["killed"] + tot["timeout"]
    score = k / (k + tot["survived"]) if k + tot["survived"] else 1.0
    print(f"{'all':32s} {tot['enum']:5d} {tot['run']:5d} {tot['killed']:6d} "
          f"{tot['timeout']:7d} {tot['survived']:5d} {tot['equivalent']:5d}")
    print(f"score {k}/{k + tot['survived']} = {100 * score:.1f}% (timeouts count as killed; "
          f"equivalent mutants left out); {elapsed:.0f} s")
    return 1 if tot["survived"] else 0


if __name__ == "__main__":
    sys.exit(main())
