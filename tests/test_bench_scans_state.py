"""The isolation benchmarks' input is what offline_pages() would see: bench_scans'
_offline_state() of an aged zone passes scan_movable_pages() (nothing movable: -ENOENT
at the zone end) and test_pages_isolated() (every page free or an unreferenced
PageOffline page). The pcp lists the workload fills broke this once, unnoticed: no
test ran the benchmark's state."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

from bench_scans import _offline_state  # noqa: E402
from benchutil import GiB, fragmented_zone  # noqa: E402
from pagecore.kernels import backends as B  # noqa: E402
from pagecore.kernels import page as P  # noqa: E402


def test_offline_state_is_what_offline_pages_scans():
    m, zone = fragmented_zone(1 * GiB)
    assert zone.free_area.pcp_count > 0          # the workload left pages on the lists
    mm = _offline_state(m, zone)
    assert zone.free_area.pcp_count == 0          # zone_pcp_disable()'s drain
    n = mm.shape[0]
    pbo = m.arch.pageblock_order
    pbf = np.full((n >> pbo) + 1, P.PB_migrate_isolate | P.MIGRATE_MOVABLE, np.uint8)
    for name in ("cython", "numba", "numpy"):
        k = B.get_backend(name)
        assert k.scan_movable_pages(mm, 0, n) == (-P.ENOENT, n), name
        assert k.test_pages_isolated(mm, pbf, 0, n, pbo) == (0, n), name
