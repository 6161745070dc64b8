"""Record the validation matrix: every kv-* scenario, `one-block-dimms` and `default` on
every kernel series the harness knows, in every memmap_on_memory mode that kernel has.

    python -m pagecore.validate.matrix [--out DIR] [--jobs N] [--only SUBSTR] [--kernels 6.1,6.12]

Writes DIR/<scenario>--<series>--mom<mode>.json (default DIR: the package's runs/,
which the replay tests read). A run that exists is skipped unless --force. Each run is
one QEMU process; --jobs runs that many at once (TCG uses one host core per guest).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import sys
import time

from pagecore import scenario
from pagecore.validate import kernels
from pagecore.validate.record import RUNS_DIR, record, run_name
SCENARIOS = ("kv-one-block", "kv-multi-block", "kv-large", "kv-many", "kv-small-offline",
             "kv-small-movable", "one-block-dimms", "default")


def _one(name, series, mode, out):
    t = time.monotonic()
    rec = record(scenario.load(name), series, mode, out=out)
    return name, series, mode, rec["result"], round(time.monotonic() - t, 1), len(rec.get("ops", []))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pagecore.validate.matrix")
    ap.add_argument("--out", default=RUNS_DIR)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--kernels", default=",".join(kernels.SERIES))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    todo = []
    for name in SCENARIOS:
        if a.only and a.only not in name:
            continue
        for series in a.kernels.split(","):
            kernels.find_kernel(series)          # download once, before the pool
            for mode in kernels.modes(series):
                out = os.path.join(a.out, run_name(name, series, mode))
                if a.force or not os.path.exists(out):
                    todo.append((name, series, mode, out))
    print(f"{len(todo)} runs", flush=True)
    with cf.ProcessPoolExecutor(a.jobs) as ex:
        futs = [ex.submit(_one, *t) for t in todo]
        for f in cf.as_completed(futs):
            try:
                print(*f.result(), flush=True)
            except Exception as e:              # a harness bug: report, keep the others
                print("FAILED", type(e).__name__, e, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
