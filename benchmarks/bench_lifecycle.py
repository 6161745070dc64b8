"""The whole hotplug lifecycle at large scale, in one benchmark.

    PYTHONPATH=. pytest benchmarks/bench_lifecycle.py                     # 64 GiB
    PAGECORE_BENCH_LIFECYCLE=4T PYTHONPATH=. pytest benchmarks/bench_lifecycle.py

One x86_64 machine (strategy "block", Cython backend), then, each phase timed once:

    add_online   m.add_memory(0, at, size, online="online_movable")
    workload     pagecore.workload.Workload on node 0's Movable zone, fill ~0.5 (seeded)
    compact      pagecore.compaction.compact_zone(m, movable zone, order=-1)
    offline      m.offline_memory_block() of OFFLINE_BLOCKS blocks at the top of the range
    remove       m.remove_memory() of those blocks

extra_info: per phase `<phase>_s` (wall), `<phase>_pages_per_s` (simulated pages the
phase covers / wall: the whole range for add/workload/compact, the offlined blocks for
offline/remove), `<phase>_cpu_per_wall`, the peak RSS (ru_maxrss) after each phase and
at the end, and `<phase>_host_mib` / `<phase>_host_b_per_page`: the peak host memory
during the phase (benchutil.HostMemory: private memory plus the memmap image files) and
that per simulated page present. ru_maxrss counts a shared image page once per block
mapping that has read it, so with memmap images it overstates what the host holds.

Knobs: PAGECORE_BENCH_LIFECYCLE (size), PAGECORE_BENCH_LIFECYCLE_FILL (the workload's
fill of the zone, default 0.5: 1/16 at 16 TiB touches 1 TiB), ..._OFFLINE (blocks
offlined and removed), PAGECORE_MEMMAP_IMAGES (pagecore/host_memmap.py: "auto" by
default, which writes every struct page while they fit the host and maps images of
onlined blocks when they would not; 1 always images, 0 never). 16 TiB fits this 24 GiB
host only with images (auto picks them):

    PAGECORE_BENCH_LIFECYCLE=16T PAGECORE_BENCH_LIFECYCLE_FILL=0.0625 \
    PAGECORE_BENCH_LIFECYCLE_OFFLINE=8192 PYTHONPATH=. pytest benchmarks/bench_lifecycle.py

Without images, 4 TiB costs ~17 GiB: check `free -g` first and do not run it beside
other heavy processes (24 GiB host, no swap).
"""
import os
import resource
import time

import pytest

from benchutil import GiB, HostMemory, parse_size, size_label
from pagecore import Machine, MachineConfig, NodeConfig
from pagecore.kernels import page as P
from pagecore import compaction as C
from pagecore.workload import Workload

SIZE = parse_size(os.environ.get("PAGECORE_BENCH_LIFECYCLE", "64G"))
OFFLINE_BLOCKS = int(os.environ.get("PAGECORE_BENCH_LIFECYCLE_OFFLINE", "256"))
FILL = float(os.environ.get("PAGECORE_BENCH_LIFECYCLE_FILL", "0.5"))


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("size", [SIZE], ids=size_label)
def test_lifecycle(benchmark, size):
    phases = {}
    host = HostMemory()
    present = [0]
    imaged = [False]

    def timed(name, pages, fn):
        host.take_peak()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        peak = host.take_peak()
        phases[name] = dict(s=w, pages=pages, pages_per_s=pages / w if w else 0.0,
                            cpu_per_wall=c / w if w else 1.0, peak_rss_mib=_peak_mib(),
                            host_mib=peak / 2**20,
                            host_b_per_page=peak / max(present[0], 1))
        return out

    def run():
        at = 4 * GiB
        phys_bits = max(36, (at + size - 1).bit_length() + 1)
        m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], strategy="block",
                                  phys_bits=phys_bits), backend="cython")
        host.images = m.memmap_images
        nr = size >> m.arch.page_shift
        present[0] = nr + (2 * GiB >> m.arch.page_shift)     # hot-added + boot
        timed("add_online", nr, lambda: m.add_memory(0, at, size, online="online_movable"))
        imaged[0] = m.memmap_images.mapped_blocks > 0
        zone = m.zone(0, P.ZONE_MOVABLE)
        timed("workload", nr, lambda: Workload(
            fill=FILL, movable_fraction=1.0, orders={0: 0.9, 9: 0.1}, age_rounds=1,
            free_fraction=0.5, seed=20240917).apply(m, 0, "Movable"))
        rep = timed("compact", nr, lambda: C.compact_zone(m, zone, -1, backend="cython"))
        nb = min(OFFLINE_BLOCKS, size // m.block_size)
        first = (at + size) // m.block_size - nb

        def offline():
            for b in range(first, first + nb):
                m.offline_memory_block(b)

        timed("offline", nb * m.block_pages, offline)
        timed("remove", nb * m.block_pages,
              lambda: m.remove_memory(first * m.block_size, nb * m.block_size))
        return rep

    with host:
        rep = benchmark.pedantic(run, rounds=1, iterations=1)
    info = benchmark.extra_info
    info.update(size=size_label(size), strategy="block", backend="cython", fill=FILL,
                memmap_images=imaged[0],
                host_peak_mib=host.overall / 2**20,
                system_used_peak_mib=host.system_peak / 2**20,
                offline_blocks=min(OFFLINE_BLOCKS, size // (128 << 20)),
                compact_result=rep["result"], migrated_pages=rep["migrated_pages"],
                peak_rss_mib=_peak_mib())
    for name, ph in phases.items():
        for k, v in ph.items():
            info[f"{name}_{k}"] = v
    for name, ph in phases.items():
        print(f"{name:10s} {ph['s']:8.3f} s  {ph['pages_per_s'] / 1e6:9.1f} M pages/s  "
              f"cpu/wall {ph['cpu_per_wall']:.2f}  peak RSS {ph['peak_rss_mib']:.0f} MiB  "
              f"host {ph['host_mib']:.0f} MiB ({ph['host_b_per_page']:.2f} B/page)")
