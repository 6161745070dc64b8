"""Shared pieces of the pagecore benchmarks (not collected by the default `pytest` run,
whose testpaths is tests/).

    pytest benchmarks --benchmark-json=out/bench.json
    PAGECORE_BENCH_MAX=4T pytest benchmarks/bench_hotplug.py

Files named bench_*.py under benchmarks/ are collected as test modules. Helpers (in
benchutil.py):
  * bench_sizes()       simulated sizes 1 GiB .. PAGECORE_BENCH_MAX (default 1 TiB)
  * rss_bytes(), peak_rss_bytes()   current and peak resident memory of this process
  * roofline            session fixture: write ceilings of this host measured in this run
                        (1- and 2-thread ndarray.fill, 1- and 2-thread np.copyto of a 1 MiB
                        tile) on an already-touched array, so kernel figures can be put
                        against them; first touch is kept out of every ceiling.
"""
import os
import time

import pytest

from benchutil import Roofline

_HZ = os.sysconf("SC_CLK_TCK")


def _busy_cpu_seconds():
    """CPU seconds all processes have spent busy (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / _HZ


def pytest_collect_file(file_path, parent):
    """Collect benchmarks/bench_*.py (explicitly named files are collected by pytest
    itself; returning them here too would run them twice)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def roofline():
    r = Roofline()
    yield r
    r.free()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """The load each benchmark ran under, in its extra_info: `other_cpu` is the CPU time
    other processes took while the test ran (setup excluded), in CPUs (0 = quiet, 1 = a
    neighbour held a whole core of the two), `loadavg` the 1-minute load at its end."""
    b0, c0, w0 = _busy_cpu_seconds(), time.process_time(), time.perf_counter()
    yield
    wall = time.perf_counter() - w0
    bench = item.funcargs.get("benchmark")
    if bench is not None and wall > 0:
        other = _busy_cpu_seconds() - b0 - (time.process_time() - c0)
        bench.extra_info["other_cpu"] = round(max(0.0, other) / wall, 2)
        bench.extra_info["loadavg"] = os.getloadavg()[0]
