"""The page-initialising kernels against the write ceiling of this host.

    pytest benchmarks/bench_kernels.py --benchmark-json=out/kernels.json
    PAGECORE_BENCH_KERNEL_SIZES=64G,1T,4T pytest benchmarks/bench_kernels.py

Each size is simulated memory; the kernels write its struct pages (16 B per page) in an
array that is touched before any timing, so first touch (kernel zeroing, host faults) is
out of these figures (bench_hotplug.py has it in). Kernels:

  * online_memory_blocks(): memory_block_online() of every 128 MiB block of the size (page
    init in parallel over blocks, then the frees to the buddy); each round gets a fresh
    FreeArea, the pages are re-initialised in full;
  * mark_vmemmap_pages(): seed v3's one Vmemmap run over the whole array.

extra_info: pages_per_s, write_gb_per_s (16 B per page), fill1_s / fill2_s (ndarray.fill
of the same bytes, 1 and 2 threads) and vs_fill1 / vs_fill2 = kernel time / fill time,
cpu_per_wall, and for online_memory_blocks at 2 threads the speedup over 1 thread
(both measured here, best of 3).
"""
import gc
import os
import time

import numpy as np
import pytest

from benchutil import GiB, PAGE_BYTES, parse_size, size_label
from pagecore.kernels import page as P
from pagecore.kernels.buddy import FreeArea
from pagecore.kernels.backends import get_backend

SIZES = [parse_size(s) for s in os.environ.get("PAGECORE_BENCH_KERNEL_SIZES", "16G,64G,1T").split(",")]
NUMPY_MAX = parse_size(os.environ.get("PAGECORE_BENCH_NUMPY_MAX", "16G"))
BLOCK = 32768                          # pages per 128 MiB block
V = 512                                # self-hosted memmap pages per block
NR_ORDERS, PB_ORDER = 11, 9            # x86_64


@pytest.fixture(scope="module", params=SIZES, ids=size_label)
def pages(request, roofline):
    """(size, mem_map, pageblock_flags, write ceilings) for one size; mem_map touched."""
    size = request.param
    n = size // 4096
    ceilings = roofline(n * PAGE_BYTES)          # measured before the big array exists
    mem_map = np.zeros(BLOCK + n, dtype=P.PAGE_DTYPE)   # block 0 left out: pfn 0 is special
    mem_map.view(np.uint64).fill(0)              # first touch, untimed
    pbf = np.zeros(len(mem_map) >> PB_ORDER, dtype=np.uint8)
    yield size, mem_map, pbf, ceilings
    del mem_map
    gc.collect()


def _backend(name, size):
    if name == "numpy" and size > NUMPY_MAX:
        pytest.skip(f"numpy twin above PAGECORE_BENCH_NUMPY_MAX={NUMPY_MAX // GiB}G")
    if name == "numba":
        pytest.importorskip("numba")
    return get_backend(name)


def _online_call(k, mem_map, pbf, threads):
    nblk = (len(mem_map) - BLOCK) // BLOCK
    starts = (np.arange(nblk, dtype=np.int64) + 1) * BLOCK
    v = np.full(nblk, V, dtype=np.int64)

    def setup():
        return (FreeArea(mem_map, pbf, NR_ORDERS, PB_ORDER),), {}

    def call(fa):
        return k.online_memory_blocks(mem_map, pbf, fa, starts, v, BLOCK, 0, P.ZONE_MOVABLE,
                                      P.PG_vmemmap_self_hosted, P.MIGRATE_UNMOVABLE, False, threads)
    return setup, call, nblk * (BLOCK - V)


def _best(setup, call, repeat=3):
    best = None
    for _ in range(repeat):
        args, _ = setup()
        c, t = time.process_time(), time.perf_counter()
        call(*args)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if best is None or dt < best[0]:
            best = (dt, dc)
    return best


def _report(benchmark, size, name, backend, wall, cpu, ceilings, **more):
    pages = size // 4096
    info = benchmark.extra_info
    info.update(kernel=name, size=size_label(size), backend=backend, pages=pages,
                pages_per_s=pages / wall, write_gb_per_s=pages * PAGE_BYTES / wall / 1e9,
                wall_s=wall, cpu_per_wall=cpu / wall,
                fill1_s=ceilings["fill1"][0], fill2_s=ceilings["fill2"][0],
                vs_fill1=wall / ceilings["fill1"][0], vs_fill2=wall / ceilings["fill2"][0], **more)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", ["cython", "numba", "numpy"])
def test_online_memory_blocks(benchmark, pages, backend, threads):
    size, mem_map, pbf, ceilings = pages
    if backend == "numpy" and threads > 1:
        pytest.skip("the numpy twin is serial")
    k = _backend(backend, size)
    setup, call, freed = _online_call(k, mem_map, pbf, threads)
    _best(setup, call, repeat=1)                  # JIT / cache load and warm-up, untimed
    got = benchmark.pedantic(call, setup=setup, rounds=3 if backend != "numpy" else 1,
                             iterations=1)
    assert got == freed
    wall, cpu = _best(setup, call, repeat=3 if backend != "numpy" else 1)
    more = {"threads": threads}
    if threads == 2:
        s1, c1, _ = _online_call(k, mem_map, pbf, 1)
        more["speedup_vs_1_thread"] = _best(s1, c1)[0] / wall
    _report(benchmark, size, "online_memory_blocks", backend, wall, cpu, ceilings, **more)


@pytest.mark.parametrize("backend", ["cython", "numba", "numpy"])
def test_mark_vmemmap_pages(benchmark, pages, backend):
    size, mem_map, pbf, ceilings = pages
    k = _backend(backend, size)
    n = len(mem_map) - BLOCK
    nr_sections = n // BLOCK
    k.mark_vmemmap_pages(mem_map, BLOCK, n, nr_sections)    # warm-up, untimed
    got = benchmark.pedantic(k.mark_vmemmap_pages, args=(mem_map, BLOCK, n, nr_sections),
                             rounds=3 if backend != "numpy" else 1, iterations=1)
    assert got == n
    wall, cpu = _best(lambda: ((mem_map, BLOCK, n, nr_sections), {}), k.mark_vmemmap_pages,
                      repeat=3 if backend != "numpy" else 1)
    _report(benchmark, size, "mark_vmemmap_pages", backend, wall, cpu, ceilings, threads=1)
