"""Hot-add and online through the Python API, end to end, 1 GiB .. 1 TiB.

    pytest benchmarks/bench_hotplug.py --benchmark-json=out/bench.json
    PAGECORE_BENCH_MAX=4T pytest benchmarks/bench_hotplug.py -k "cython"

One call per round, on a machine built fresh in the (untimed) setup:

    m.add_memory(0, at, size, strategy=..., online="online_movable")

x86_64, 64 TiB physical address space (phys_bits=46), 128 MiB blocks. Strategies:
"block" (v6.8+ memmap on memory, one altmap per block; 2 GiB of boot RAM) and "boot"
(memmap from the buddy of boot RAM, which is sized to hold it: 2 GiB + size/48).
Backends: cython (2 OpenMP threads), numba (2 threads), numpy (serial; only up to
PAGECORE_BENCH_NUMPY_MAX, default 16G). memmap="fresh": the first touch of the new
struct pages is part of the operation (the mem_map is a fresh anonymous mapping, as a
real vmemmap is), so the kernel's page zeroing is inside the timing (see
benchmarks/README.md for what that costs on a VM); memmap="pretouched": the same call
over struct pages made resident by the setup, for the comparison with the fill ceiling.

extra_info (figures of the fastest round):
    pages, pages_per_s, gib_per_s        simulated pages / simulated GiB per second
    wall_s, cpu_s, cpu_per_wall, threads process CPU time over wall time, kernel threads
    host_bytes_per_page                  RSS growth of the round / simulated pages (16 + ε)
    peak_rss_mib                         ru_maxrss of the process so far
    fill1_s, fill2_s, copy1_s, copy2_s   write ceilings for the same bytes (16 B/page), on an
                                         already-touched array, measured in this run
    vs_fill1, vs_fill2                   wall_s / fill*_s (1.0 = as fast as a fill)
"""
import os
import time

import pytest

from benchutil import GiB, MiB, PAGE_BYTES, bench_sizes, parse_size, peak_rss_bytes, release, rss_bytes, size_label
from pagecore import Machine, MachineConfig, NodeConfig
from pagecore.kernels import page as P

SEED = 20240917
SIZES = bench_sizes()
NUMPY_MAX = parse_size(os.environ.get("PAGECORE_BENCH_NUMPY_MAX", "16G"))
ROUNDS = int(os.environ.get("PAGECORE_BENCH_ROUNDS", "3"))
THREADS = {"cython": 2, "numba": 2, "numpy": 1}


def build(size, strategy, backend):
    """A fresh machine for one round, and where to hot-add."""
    if strategy == "boot":
        boot = 2 * GiB + -(-size // (48 * GiB)) * GiB
        nodes, at = [NodeConfig(boot=[(0, boot)])], boot + 2 * GiB
    else:
        nodes, at = [NodeConfig(boot=[(0, 2 * GiB)])], 4 * GiB
    cfg = MachineConfig(nodes=nodes, phys_bits=46, block_size=128 * MiB, seed=SEED)
    return Machine(cfg, backend=backend), at


def _skip_or_warm(backend, size):
    if backend == "numpy" and size > NUMPY_MAX:
        pytest.skip(f"numpy twin above PAGECORE_BENCH_NUMPY_MAX={NUMPY_MAX // GiB}G")
    if backend == "numba":
        pytest.importorskip("numba")
        m, at = build(1 * GiB, "block", "numba")             # JIT (or cache load), untimed
        m.add_memory(0, at, 1 * GiB, strategy="block", online="online_movable")


def _report(benchmark, runs, size, strategy, backend, memmap, ceilings):
    wall, cpu, grown = min(runs)
    pages = size // 4096
    info = benchmark.extra_info
    info.update(size=size_label(size), strategy=strategy, backend=backend, seed=SEED,
                pages=pages, pages_per_s=pages / wall, gib_per_s=size / GiB / wall,
                wall_s=wall, cpu_s=cpu, cpu_per_wall=cpu / wall, threads=THREADS[backend],
                host_bytes_per_page=grown / pages, peak_rss_mib=peak_rss_bytes() / MiB,
                rounds=len(runs), memmap=memmap)
    for name, (t, _) in ceilings.items():
        info[f"{name}_s"] = t
    info["vs_fill1"] = wall / ceilings["fill1"][0]
    info["vs_fill2"] = wall / ceilings["fill2"][0]


@pytest.mark.parametrize("memmap", ["fresh", "pretouched"])
@pytest.mark.parametrize("backend", ["cython", "numba", "numpy"])
@pytest.mark.parametrize("strategy", ["block", "boot"])
@pytest.mark.parametrize("size", SIZES, ids=size_label)
def test_add_online(benchmark, roofline, size, strategy, backend, memmap):
    """memmap="fresh": the struct pages are first touched by the call (the real cost);
    "pretouched": the setup writes zeros over them first, which leaves them in the
    never-added state but resident, so the figure is pagecore's own work against the
    fill of an already-touched array."""
    _skip_or_warm(backend, size)
    ceilings = roofline(size // 4096 * PAGE_BYTES)           # before any machine exists
    held, runs = [], []

    # the machine of a round lives only in `held` (not in pedantic's args, which outlive
    # the next setup), so the previous round's mem_map is unmapped before the next is built
    def setup():
        release(held)
        held.extend(build(size, strategy, backend))
        if memmap == "pretouched":
            m, at = held
            m.mem_map[at // 4096:(at + size) // 4096].view("u8").fill(0)
        return (), {}

    def add_online():
        m, at = held
        rss0 = rss_bytes()
        c, t = time.process_time(), time.perf_counter()
        m.add_memory(0, at, size, strategy=strategy, online="online_movable")
        runs.append((time.perf_counter() - t, time.process_time() - c, rss_bytes() - rss0))

    benchmark.pedantic(add_online, setup=setup, rounds=ROUNDS if size <= 1 << 40 else 1,
                       iterations=1)
    m = held[0]
    movable = m.zone(0, P.ZONE_MOVABLE)
    assert movable.present_pages == size // 4096
    release(held)
    _report(benchmark, runs, size, strategy, backend, memmap, ceilings)


@pytest.mark.parametrize("strategy", ["block", "boot"])
@pytest.mark.parametrize("size", SIZES, ids=size_label)
def test_add_remove(benchmark, size, strategy):
    """add_memory() then remove_memory() of the same, never onlined, range: the batched
    arch_add_memory() and memmap teardown alone (no page is initialised)."""
    held, runs = [], []

    def setup():
        release(held)
        held.extend(build(size, strategy, "cython"))
        return (), {}

    def add_remove():
        m, at = held
        t = time.perf_counter()
        m.add_memory(0, at, size, strategy=strategy)
        t1 = time.perf_counter()
        m.remove_memory(at, size)
        runs.append((time.perf_counter() - t, t1 - t, time.perf_counter() - t1))

    benchmark.pedantic(add_remove, setup=setup, rounds=ROUNDS, iterations=1)
    release(held)
    wall, add, remove = min(runs)
    blocks = size // (128 * MiB)
    benchmark.extra_info.update(size=size_label(size), strategy=strategy, blocks=blocks,
                                add_s=add, remove_s=remove, us_per_block=wall / blocks * 1e6)
