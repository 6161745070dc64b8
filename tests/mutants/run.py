"""Deliberate mutants of pagecore's rules, and which tests kill them.

    python tests/mutants/run.py [--only NAME] [--tests "tests/test_kernel_replay.py ..."]

Each mutant replaces one exact piece of source text (it must occur exactly once, so a
mutant whose target moved fails loudly instead of testing nothing). The tree is copied
to a scratch directory (the built extension modules too: only .py files are mutated),
the mutant applied there, and the chosen tests run against the copy. A mutant is
killed when the tests fail. Prints one line per mutant and exits 1 if any survived.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mutants import DEFAULT_TESTS, MUTANTS  # noqa: E402


def _copy(dst):
    shutil.copytree(os.path.join(ROOT, "pagecore"), os.path.join(dst, "pagecore"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "build"))
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(dst, "tests"),
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), dst)


def run_one(m, tests):
    with tempfile.TemporaryDirectory(prefix="pagecore-mutant-") as d:
        _copy(d)
        path = os.path.join(d, m["file"])
        src = open(path).read()
        n = src.count(m["old"])
        if n != 1:
            return f"STALE  {m['name']}: target found {n} times in {m['file']}"
        open(path, "w").write(src.replace(m["old"], m["new"]))
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", "-m", "not qemu", *m.get("tests", tests).split()]
        r = subprocess.run(cmd, cwd=d, env={**os.environ, "PYTHONPATH": d},
                           capture_output=True, text=True)
        if r.returncode == 0:
            return f"SURVIVED {m['name']}"
        failed = [l.split(" ")[1] for l in r.stdout.splitlines() if l.startswith("FAILED")]
        return f"killed {m['name']}: {failed[0] if failed else 'error ' + str(r.returncode)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--tests", default=DEFAULT_TESTS)
    a = ap.parse_args()
    bad = 0
    for m in MUTANTS:
        if a.only and a.only not in m["name"]:
            continue
        line = run_one(m, a.tests)
        bad += not line.startswith("killed")
        print(line, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
