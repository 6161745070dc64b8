"""The page-initialising kernels against the fill of the same bytes on a shared host:
samples taken while other processes ran are set aside (scan_ratios.py's method).

    PYTHONPATH=. python benchmarks/kernel_ratios.py --size 64G --seconds 120
    PYTHONPATH=. python benchmarks/kernel_ratios.py --size 1T --baseline /tmp/old/pagecore

Allocates the page array of bench_kernels.py (one block left out, then `--size` of
simulated memory, touched before any timing), then for `--seconds` repeats rounds of:
the fill of the array's own bytes (ndarray.fill of its uint64 view, one thread; two
threads on the halves), mark_vmemmap_pages() over the whole array, and
online_memory_blocks() of every 128 MiB block on one and two threads (a fresh FreeArea
per call, made outside the timing), for the Cython kernels, their numba twins and, with
`--baseline DIR`, the `_kernels` extension module of another build (DIR holds its
_kernels*.so; loaded under another name, it shares this build's _buddy, so FreeArea
must not have changed between the two). A sample is `--calls` back-to-back calls (its
best call counts); it is "clean" when the CPU time other processes took during it,
from /proc/stat, stays under `--other` of one CPU. Prints, per threshold, the best
clean time of each and its ratio to the best clean fill with the same thread count.
"""
import argparse
import glob
import importlib.util
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import parse_size  # noqa: E402
from pagecore.kernels import page as P  # noqa: E402
from pagecore.kernels.buddy import FreeArea  # noqa: E402
from pagecore.kernels.backends import get_backend  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
BLOCK, V, NR_ORDERS, PB_ORDER = 32768, 512, 11, 9      # as bench_kernels.py


def _busy_seconds():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return (sum(v) - v[3] - v[4]) / HZ


def _load_baseline(path):
    """The _kernels module of another build, as `baseline_kernels`."""
    so = sorted(glob.glob(os.path.join(path, "_kernels*.so")))
    if not so:
        raise SystemExit(f"--baseline: no _kernels*.so in {path}")
    spec = importlib.util.spec_from_file_location("_kernels", so[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="64G")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--other", type=float, nargs="*", default=[0.05, 0.2, 1.2, 2.0])
    ap.add_argument("--baseline", help="directory of another build's _kernels*.so")
    ap.add_argument("--no-numba", action="store_true")
    args = ap.parse_args()

    n = parse_size(args.size) // 4096
    mm = np.zeros(BLOCK + n, dtype=P.PAGE_DTYPE)
    words = mm.view(np.uint64)
    words.fill(0)                                          # first touch, untimed
    halves = [words[:len(words) // 2], words[len(words) // 2:]]
    pbf = np.zeros(len(mm) >> PB_ORDER, dtype=np.uint8)
    nblk = n // BLOCK
    starts = (np.arange(nblk, dtype=np.int64) + 1) * BLOCK
    vv = np.full(nblk, V, dtype=np.int64)
    pool = ThreadPoolExecutor(2)

    backends = {"cython": get_backend("cython")}
    if not args.no_numba:
        backends["numba"] = get_backend("numba")
    if args.baseline:
        backends["baseline"] = _load_baseline(args.baseline)

    def online(k, threads):
        def call(fa):
            k.online_memory_blocks(mm, pbf, fa, starts, vv, BLOCK, 0, P.ZONE_MOVABLE,
                                   P.PG_vmemmap_self_hosted, P.MIGRATE_UNMOVABLE, False,
                                   threads)
        return call

    def setup():
        return FreeArea(mm, pbf, NR_ORDERS, PB_ORDER)

    # name -> (threads of the fill it is put against, setup or None, call)
    cases = {"fill 1t": ("1t", None, lambda: words.fill(7)),
             "fill 2t": ("2t", None, lambda: list(pool.map(lambda h: h.fill(7), halves)))}
    for name, k in backends.items():
        cases[f"mark_vmemmap_pages {name}"] = (
            "1t", None, lambda k=k: k.mark_vmemmap_pages(mm, BLOCK, n, nblk))
    for name, k in backends.items():
        for threads in (1, 2):
            cases[f"online_memory_blocks {name} {threads}t"] = (
                f"{threads}t", setup, online(k, threads))
    for _, su, call in cases.values():                    # JIT, cache load, warm-up
        call(*([su()] if su else []))

    samples = {k: [] for k in cases}
    stop, rounds = time.time() + args.seconds, 0
    while time.time() < stop:
        rounds += 1
        for name, (_, su, call) in cases.items():
            b0, c0, w0 = _busy_seconds(), time.process_time(), time.perf_counter()
            best = min(_timed_call(call, su) for _ in range(args.calls))
            wall = time.perf_counter() - w0
            other = max(0.0, _busy_seconds() - b0 - (time.process_time() - c0)) / wall
            samples[name].append((best, other))
    other = sorted(o for v in samples.values() for _, o in v)
    print(f"other processes during the samples: median {other[len(other) // 2]:.2f} CPU, "
          f"10 % under {other[len(other) // 10]:.2f}")
    for limit in args.other:
        def best(name):
            ok = [t for t, o in samples[name] if o <= limit]
            return (min(ok), len(ok)) if ok else (float("nan"), 0)
        fill = {"1t": best("fill 1t")[0], "2t": best("fill 2t")[0]}
        print(f"--- samples with other processes <= {limit} CPU ({rounds} rounds of "
              f"{args.calls} calls, {args.size}: {n * 16 / 2**20:.0f} MiB of struct pages)")
        print(f"  fill 1t {fill['1t'] * 1e3:8.1f} ms   fill 2t {fill['2t'] * 1e3:8.1f} ms")
        for name, (t_ref, _, _) in cases.items():
            if name.startswith("fill"):
                continue
            t, k = best(name)
            print(f"  {name:34s} {t * 1e3:8.1f} ms  / fill {t_ref} {t / fill[t_ref]:5.2f}"
                  f"  ({k} clean samples)")


def _timed_call(call, setup):
    args = [setup()] if setup else []
    t = time.perf_counter()
    call(*args)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
