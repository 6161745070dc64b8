"""The migrate scanner against its write ceiling, the two interleaved in one process:
for comparing trees side by side on a host whose speed moves within minutes.

    PYTHONPATH=<tree> python benchmarks/migrate_ratio.py --size 64G --cycles 9

Builds the fragmented zone of bench_scans.py with the pagecore on PYTHONPATH (another
tree's, built in place, to compare), then repeats `--cycles` times: clear PG_isolated
and time isolate_migratepages_range() over the zone in 1 Mi-pfn calls (Cython), then the
ceiling's two passes (bench_scans._Ceiling: the write-back of every page's flags and
filling the records). Prints the best of each and the ratio of the scan to the ceiling,
as bench_scans.py's `/ write ceiling`. Run one process per tree, alternating, several
times: benchmarks/history/2026-12-08-migrate/ratio-64G-interleaved.txt is such a run.
Trees before 2026-12-08 record int64 pfns; the script falls back to them.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_scans import CHUNK, _and_flags, _Ceiling, migrate_range_call  # noqa: E402
from benchutil import fragmented_zone, parse_size  # noqa: E402
from pagecore import compaction as C  # noqa: E402
from pagecore.kernels import page as P  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="64G")
    ap.add_argument("--cycles", type=int, default=9)
    a = ap.parse_args()
    m, zone = fragmented_zone(parse_size(a.size))
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    k = C.get_compaction_backend("cython")
    flags = m.mem_map["flags"][start:end]
    out = np.empty(CHUNK, np.uint32)
    try:
        migrate_range_call(k, m, zone, out, start, start + 64)()
    except ValueError:                              # a tree before the uint32 records
        out = np.empty(CHUNK, np.int64)

    scan = migrate_range_call(k, m, zone, out, start, end)
    ceiling = _Ceiling(lambda: _and_flags(flags, ~np.uint32(P.PG_isolated)), (out,))
    best = float("inf")
    for _ in range(a.cycles):
        ceiling.page_pass()                         # clear PG_isolated, untimed
        t = time.perf_counter()
        ceiling.entries = scan()
        best = min(best, time.perf_counter() - t)
        ceiling()
    pages = end - start
    touch = pages / (ceiling.best_pass + ceiling.best_fill)
    print(f"{a.size} scan {pages / best / 1e6:.0f} rmw {pages / ceiling.best_pass / 1e6:.0f} "
          f"touch {touch / 1e6:.0f} ratio {pages / best / touch:.3f}")


if __name__ == "__main__":
    main()
