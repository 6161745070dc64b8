"""compact_zone() over a large, fragmented Movable zone, per backend.

    PYTHONPATH=. pytest benchmarks/bench_compaction.py                 # 1 GiB and 16 GiB
    PAGECORE_BENCH_COMPACT=64G,1T PYTHONPATH=. pytest benchmarks/bench_compaction.py

One x86_64 machine per round ("block" strategy, the range hot-added and onlined movable,
then pagecore.workload at fill 0.5, orders 0 and 9, one aging round, seeded): the same
input for every backend, built outside the timed region. The Cython backend runs the
whole loop in C (_compaction.compact_zone_run); the numpy and numba backends run the
same loop in Python over their scanners (reference_compaction.run_compact_zone), so
they are timed only up to TWIN_MAX. extra_info:

    pages, migrated_pages       zone pages, pages the run migrated
    <backend>_s                 wall time of the run (cython: best of the rounds)
    <backend>_pages_per_s       zone pages / wall
    <backend>_migrated_per_s    migrated pages / wall
    cython_vs_<twin>            speedup of the Cython run over the twin, same input
    peak_rss_mib                peak resident memory of the process
"""
import os
import time

import pytest

from benchutil import GiB, peak_rss_bytes, parse_size, size_label
from pagecore import Machine, MachineConfig, NodeConfig
from pagecore.kernels import page as P
from pagecore import compaction as C
from pagecore.workload import Workload

SIZES = [parse_size(s) for s in os.environ.get("PAGECORE_BENCH_COMPACT", "1G,16G").split(",")]
TWIN_MAX = 4 * GiB


def _fragmented(size):
    at = 4 * GiB
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], strategy="block",
                              phys_bits=max(36, (at + size - 1).bit_length() + 1)))
    m.add_memory(0, at, size, online="online_movable")
    Workload(fill=0.5, movable_fraction=1.0, orders={0: 0.9, 9: 0.1}, age_rounds=1,
             free_fraction=0.5, seed=20240917).apply(m, 0, "Movable")
    return m


def _run(m, backend):
    zone = m.zone(0, P.ZONE_MOVABLE)
    return C.compact_zone(m, zone, -1, backend=backend)


@pytest.mark.parametrize("size", SIZES, ids=size_label)
def test_compact_zone(benchmark, size):
    reports = []
    rep = benchmark.pedantic(lambda m: reports.append(_run(m, "cython")),
                             setup=lambda: ((_fragmented(size),), {}), rounds=3, iterations=1)
    assert rep is None and reports[0]["migrated_pages"] > 0
    pages = size >> 12
    info = benchmark.extra_info
    t_c = benchmark.stats.stats.min
    migrated = reports[0]["migrated_pages"]
    info.update(size=size_label(size), pages=pages, migrated_pages=migrated, cython_s=t_c,
                cython_pages_per_s=pages / t_c, cython_migrated_per_s=migrated / t_c)
    if size <= TWIN_MAX:
        for twin in ("numpy", "numba"):
            if twin == "numba":
                _run(_fragmented(GiB // 8), "numba")                 # JIT outside timing
            m = _fragmented(size)
            t0 = time.perf_counter()
            rep = _run(m, twin)
            t = time.perf_counter() - t0
            assert rep == reports[0]                                  # same run, same report
            info.update({f"{twin}_s": t, f"{twin}_pages_per_s": pages / t,
                         f"{twin}_migrated_per_s": migrated / t, f"cython_vs_{twin}": t / t_c})
    info["peak_rss_mib"] = peak_rss_bytes() / 2**20
    print(f"\n{size_label(size)}: " + ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()))
