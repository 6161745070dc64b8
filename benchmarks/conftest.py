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
import pytest

from benchutil import Roofline


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
