"""Compaction and isolation scans over large, onlined, fragmented memory.

    pytest benchmarks/bench_scans.py                          # default: 1 GiB hot-added
    PAGECORE_BENCH_SIZE=64G,1T pytest benchmarks/bench_scans.py

One machine per size: boot RAM (2 GiB + size/48, enough to hold the memmap) plus
`size` hot-added above it ("boot" strategy, so no vmemmap stops a scan early), onlined
movable, then filled to 60 % and aged by pagecore.workload (seeded). Each benchmark times the Cython kernel with
pytest-benchmark over the whole zone and, in the same run, times the numpy and numba
twins and two read ceilings over the same pages; benchmark.extra_info holds:

    pages                     pages the scan covers
    <backend>_pages_per_s     cython / numba / numpy (numpy over at most NUMPY_MAX_PAGES
                              pages where its twin walks pfn by pfn; `numpy_pages` says)
    read_numpy_pages_per_s    mem_map[a:b].view(uint64).sum(): every byte, numpy
    read_loop_pages_per_s     a compiled (numba) loop reading `flags` of every page
    read_loop2_pages_per_s    the same loop on two threads: the better of the range cut
                              in halves and in 8 parts handed out to a 2-thread pool as
                              each finishes (a busy neighbour core)
    <backend>_vs_read_loop    scan rate / compiled read rate (1.0 = read bound)
    <backend>_cpu_per_wall    process CPU time / wall time (threads used)
    touch_pages_per_s         the compaction scanners' write-side ceiling: a pass over the
                              page array (read_pass, or rmw_loop for the migrate scanner)
                              plus ndarray.fill of the outputs the scanner wrote
                              (out_fill_s), each at its best over timings made before
                              every round of the scanner, summed; cython_vs_touch =
                              cython rate / it
    simd                      the compaction scanners' block view build timed as "cython"
                              (avx512 where the CPU has AVX-512 VBMI and VBMI2, else sse2;
                              PAGECORE_SIMD picks a lower one); cython_sse2_* is the SSE2
                              build in the same run
    host_bytes_per_page       mem_map bytes per simulated page (16)

has_unmovable_pages, scan_movable_pages, test_pages_isolated and pfn_range_valid_contig
run on 2 threads in the Cython backend (scans of 2^20 pages or more; `cython_1t_*` is
the same kernel on one thread, `speedup_2_vs_1` their ratio, `threads` what the default
call used); the other scans and the numba / numpy twins are single-threaded. Compare
one-thread rates with read_loop (`*_vs_read_loop`) and two-thread rates with
read_loop2 (`cython_vs_read_loop2`). First touch happens at machine build, outside
timings. Scanners that write (the migrate scanner marks PG_isolated) are reset between
rounds, outside the timed region.

scan_movable_pages and test_pages_isolated scan a copy of the zone in the state
offline_pages() leaves it after migration (`_offline_state()`): every page that was in
use is an unreferenced PageOffline page (a balloon or virtio-mem fake-offline page),
the free blocks are as the workload left them - nothing movable is left, so both scan
the whole zone and find nothing.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numba import njit

from benchutil import fragmented_zone, parse_size, size_label
from pagecore.kernels import compaction as _compaction
from pagecore.kernels import page as P
from pagecore import compaction as C

NUMPY_MAX_PAGES = 1 << 22
CHUNK = 1 << 20                       # pfns per kernel call of the chunked scans


def _sizes():
    return [parse_size(x) for x in os.environ.get("PAGECORE_BENCH_SIZE", "1G").split(",")]


@pytest.fixture(scope="module", params=_sizes(), ids=size_label)
def fragmented(request):
    return fragmented_zone(request.param)


@njit(cache=True, nogil=True)
def _read_flags(flags):
    total = 0
    for i in range(flags.shape[0]):
        total += flags[i]
    return total


@njit(cache=True, nogil=True)
def _and_flags(flags, mask):
    """AND every page's flags with `mask` and write them back: the ceiling of a scan that
    dirties every page (the migrate scanner's reset, clearing PG_isolated, is one)."""
    for i in range(flags.shape[0]):
        flags[i] = flags[i] & mask


def _timed(fn, repeat=3, setup=None):
    """Best wall time of `repeat` runs and the CPU/wall ratio of that run."""
    best, ratio = float("inf"), 1.0
    for _ in range(repeat):
        if setup:
            setup()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if w < best:
            best, ratio = w, c / w if w else 1.0
    return best, ratio


_POOL = ThreadPoolExecutor(2)


def _read_flags2(flags, parts):
    """_read_flags() on two threads: `parts` slices, each taken by whichever thread is
    free."""
    n = flags.shape[0]
    cuts = [n * i // parts for i in range(parts + 1)]
    return sum(_POOL.map(_read_flags, [flags[a:b] for a, b in zip(cuts, cuts[1:])]))


def _ceilings(mm, start, end, repeat=3):
    flags = mm["flags"][start:end]
    _read_flags(flags[:16])                                      # compile outside timing
    t_np, _ = _timed(lambda: mm[start:end].view(np.uint64).sum())
    t_loop, _ = _timed(lambda: _read_flags(flags), repeat=repeat)
    t_loop2 = min(_timed(lambda: _read_flags2(flags, parts), repeat=repeat)[0]
                  for parts in (2, 8))
    n = end - start
    return {"read_numpy_pages_per_s": n / t_np, "read_loop_pages_per_s": n / t_loop,
            "read_loop2_pages_per_s": n / t_loop2}


def _report(benchmark, name, pages, rates, cpu, ceilings, numpy_pages):
    info = benchmark.extra_info
    info.update(scan=name, pages=pages, numpy_pages=numpy_pages, host_bytes_per_page=16,
                threads=1, **ceilings)
    for backend, rate in rates.items():
        info[f"{backend}_pages_per_s"] = rate
        info[f"{backend}_vs_read_loop"] = rate / ceilings["read_loop_pages_per_s"]
        info[f"{backend}_vs_read_numpy"] = rate / ceilings["read_numpy_pages_per_s"]
        info[f"{backend}_cpu_per_wall"] = cpu[backend]


def _run(benchmark, name, m, start, end, make_call, setup=None, numpy_cap=None,
         simd_builds=False):
    """Time make_call(kernels, a, b) over [start, end) per backend; cython through
    pytest-benchmark. Returns the cython call's result."""
    backends = {name_: C.get_compaction_backend(name_) for name_ in ("cython", "numba", "numpy")}
    rates, cpu = {}, {}
    numpy_end = min(end, start + numpy_cap) if numpy_cap else end
    make_call(backends["numba"], start, min(end, start + 4096))()   # JIT outside timing
    if setup:
        setup()
    for backend in ("numba", "numpy"):
        hi = numpy_end if backend == "numpy" else end
        t, r = _timed(make_call(backends[backend], start, hi), setup=setup)
        rates[backend], cpu[backend] = (hi - start) / t, r
    result = benchmark.pedantic(make_call(backends["cython"], start, end), setup=setup,
                                rounds=5, iterations=1)
    t_c = benchmark.stats.stats.min
    rates["cython"] = (end - start) / t_c
    _, cpu["cython"] = _timed(make_call(backends["cython"], start, end), repeat=1, setup=setup)
    if simd_builds:                   # the other builds of the compaction block view
        best = _compaction._simd_level()
        for level in _compaction._simd_levels()[1:]:
            if level != best:
                _compaction._simd_level(level)
                t, cpu[f"cython_{level}"] = _timed(make_call(backends["cython"], start, end),
                                                  setup=setup)
                rates[f"cython_{level}"] = (end - start) / t
        _compaction._simd_level(best)
        benchmark.extra_info["simd"] = best
    _report(benchmark, name, end - start, rates, cpu, _ceilings(m.mem_map, start, end),
            numpy_end - start)
    return result


class _Ceiling:
    """The compaction scanners' write-side ceiling, timed in the setup of every round the
    scanner runs (pytest-benchmark's and the other builds'), so that the scanner and its
    ceiling meet the same host: a pass over the page array (`page_pass`: the read loop,
    or for the migrate scanner the write-back of every page's flags that also clears its
    PG_isolated) and ndarray.fill writing the scanner's `entries` output entries into the
    same CHUNK-sized out arrays, each kept at its best. Their sum is not a strict bound
    (a fused loop may overlap them)."""

    def __init__(self, page_pass, outs):
        self.page_pass, self.outs, self.entries = page_pass, outs, 0
        self.best_pass = self.best_fill = float("inf")
        page_pass()                                      # compile outside timing

    def fill(self):
        left = self.entries
        while left:
            k = min(CHUNK, left)
            for a in self.outs:
                a[:k].fill(7)
            left -= k

    def __call__(self):
        t = time.perf_counter()
        self.page_pass()
        self.best_pass = min(self.best_pass, time.perf_counter() - t)
        if self.entries:                                 # known after the first call
            t = time.perf_counter()
            self.fill()
            self.best_fill = min(self.best_fill, time.perf_counter() - t)

    def report(self, benchmark, pass_key):
        """extra_info: `pass_key` (the page pass's rate), out_fill_s, touch_pages_per_s
        and cython_vs_touch."""
        info = benchmark.extra_info
        pages = info["pages"]
        touch = pages / (self.best_pass + self.best_fill)
        info.update({pass_key: pages / self.best_pass}, out_fill_s=self.best_fill,
                    touch_pages_per_s=touch,
                    cython_vs_touch=info["cython_pages_per_s"] / touch)


def test_free_scanner(benchmark, fragmented):
    """isolate_freepages_block(), non-strict, over the whole zone in 1 Mi-pfn calls."""
    m, zone = fragmented
    pbo = m.arch.pageblock_order
    out, orders = np.empty(CHUNK, np.int64), np.empty(CHUNK, np.uint8)
    start, end = zone.zone_start_pfn, zone.zone_end_pfn

    def make_call(k, a, b):
        def call():
            found = 0
            for lo in range(a, b, CHUNK):
                found += k.isolate_freepages_block(m.mem_map, m.pageblock_flags, lo,
                                                   min(b, lo + CHUNK), False, out, orders,
                                                   CHUNK, pbo)[3]
            return found
        return call

    # It writes 9 bytes per free block it records (int64 pfn, uint8 order): its write-side
    # ceiling is the read plus writing those outputs.
    flags = m.mem_map["flags"][start:end]
    ceiling = _Ceiling(lambda: _read_flags(flags), (out, orders))
    ceiling.entries = make_call(C.get_compaction_backend("cython"), start, end)()
    found = _run(benchmark, "isolate_freepages_block", m, start, end, make_call,
                 setup=ceiling, numpy_cap=NUMPY_MAX_PAGES, simd_builds=True)
    assert found == ceiling.entries > 0
    ceiling.report(benchmark, "read_pass_pages_per_s")


def migrate_range_call(k, m, zone, out, a, b):
    """Backend k's isolate_migratepages_range() over [a, b) of `zone` in CHUNK-pfn calls
    (alloc_contig, skip hints ignored), the records into `out`: a call returning how many
    it isolated."""
    pbo, zb = m.arch.pageblock_order, C._zone_bits(zone)

    def call():
        n = 0
        for lo in range(a, b, CHUNK):
            n += k.isolate_migratepages_range(m.mem_map, m.pageblock_flags, lo,
                                              min(b, lo + CHUNK), pbo, zb, True, True,
                                              out)[1]
        return n
    return call


def test_migrate_scanner(benchmark, fragmented):
    """isolate_migratepages_range() (alloc_contig: every LRU folio isolated), whole zone;
    PG_isolated is cleared between rounds."""
    m, zone = fragmented
    out = np.empty(CHUNK, np.uint32)               # offsets from each call's start_pfn
    start, end = zone.zone_start_pfn, zone.zone_end_pfn

    def make_call(k, a, b):
        return migrate_range_call(k, m, zone, out, a, b)

    # It writes PG_isolated into about half the pages, i.e. into nearly every cache
    # line: its own ceiling is a read-modify-write of every page (the reset between
    # rounds, clearing PG_isolated), reported beside the read ceiling.
    flags = m.mem_map["flags"][start:end]
    ceiling = _Ceiling(lambda: _and_flags(flags, ~np.uint32(P.PG_isolated)), (out,))
    ceiling()
    ceiling.entries = make_call(C.get_compaction_backend("cython"), start, end)()
    n = _run(benchmark, "isolate_migratepages_range", m, start, end, make_call,
             setup=ceiling, numpy_cap=NUMPY_MAX_PAGES, simd_builds=True)
    ceiling()
    assert n == ceiling.entries > 0
    ceiling.report(benchmark, "rmw_loop_pages_per_s")
    info = benchmark.extra_info
    info["cython_vs_rmw_loop"] = info["cython_pages_per_s"] / info["rmw_loop_pages_per_s"]


def test_pfn_range_valid_contig(benchmark, fragmented):
    """The alloc_contig_pages() pre-check over the whole zone (nothing rules it out)."""
    m, zone = fragmented
    zb = C._zone_bits(zone)

    def make_call(k, a, b):
        return lambda: k.pfn_range_valid_contig(m.mem_map, a, b, zb)

    r = _run(benchmark, "pfn_range_valid_contig", m, zone.zone_start_pfn, zone.zone_end_pfn,
             make_call)
    assert r == -1
    from pagecore.kernels import compaction as CC
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    t1, cpu1 = _timed(lambda: CC._pfn_range_valid_contig_mt(m.mem_map, start, end, zb, 1,
                                                            1 << 16))
    info = benchmark.extra_info
    info.update(cython_1t_pages_per_s=(end - start) / t1, cython_1t_cpu_per_wall=cpu1,
                cython_1t_vs_read_loop=(end - start) / t1 / info["read_loop_pages_per_s"],
                threads=2 if end - start >= 1 << 20 else 1)
    info["speedup_2_vs_1"] = info["cython_pages_per_s"] / info["cython_1t_pages_per_s"]
    info["cython_vs_read_loop2"] = info["cython_pages_per_s"] / info["read_loop2_pages_per_s"]


def _offline_state(m, zone):
    """A copy of the zone's pages as offline_pages() leaves them once everything
    movable has migrated: its zone_pcp_disable() has drained the per-cpu lists into the
    buddy (done here on the machine itself: drain_all_pages()), each page that was in
    use becomes an unreferenced PageOffline page (zone bits kept), free blocks stay as
    they are. Without the drain, the pages the workload left on the pcp lists (neither
    PageBuddy nor PageOffline) fail test_pages_isolated()."""
    from pagecore.mm import page_alloc
    page_alloc.drain_all_pages(m, zone)
    mm = np.array(m.mem_map[zone.zone_start_pfn:zone.zone_end_pfn])
    used = ((mm["flags"] & (P.PG_lru | P.PG_head | P.PG_tail)) != 0) | (mm["refcount"] > 0)
    used &= mm["page_type"] != P.PGTY_BUDDY
    mm["flags"][used] &= ~np.uint32(P.FLAGS_MASK)
    mm["page_type"][used] = P.PGTY_OFFLINE
    mm["order"][used] = 0
    mm["refcount"][used] = 0
    return mm


def _isolation_scan(benchmark, name, mm, start, end, call, call_mt, want):
    """Time one isolation scan over [start, end) of `mm`: Cython with its default threads
    (pytest-benchmark) and on one thread (call_mt(1)), the numba and numpy twins (one
    thread), and the read ceilings in between, rounds interleaved so that a busy
    neighbour core weighs on all of them alike."""
    from pagecore.kernels import backends as B
    kernels = {b: B.get_backend(b) for b in ("cython", "numba", "numpy")}
    n = end - start
    call(kernels["numba"], start, start + 4096)                 # JIT outside timing
    np_end = min(end, start + NUMPY_MAX_PAGES)
    rates, cpu = {}, {}
    for backend in ("numba", "numpy"):
        hi = np_end if backend == "numpy" else end
        t, r = _timed(lambda: call(kernels[backend], start, hi))
        rates[backend], cpu[backend] = (hi - start) / t, r
    ceilings = {}
    best = {"cython_1t": (float("inf"), 1.0)}
    for _ in range(3):
        c = _ceilings(mm, start, end, repeat=2)
        for k, v in c.items():
            ceilings[k] = max(ceilings.get(k, 0.0), v)
        t, r = _timed(lambda: call_mt(1), repeat=2)
        best["cython_1t"] = min(best["cython_1t"], (t, r))
    r = benchmark.pedantic(lambda: call(kernels["cython"], start, end), rounds=5,
                           iterations=1)
    assert r == want, (name, r, want)
    rates["cython"] = n / benchmark.stats.stats.min
    _, cpu["cython"] = _timed(lambda: call(kernels["cython"], start, end), repeat=1)
    rates["cython_1t"], cpu["cython_1t"] = n / best["cython_1t"][0], best["cython_1t"][1]
    _report(benchmark, name, n, rates, cpu, ceilings, np_end - start)
    info = benchmark.extra_info
    info.update(threads=2 if n >= 1 << 20 else 1,
                speedup_2_vs_1=rates["cython"] / rates["cython_1t"],
                cython_vs_read_loop2=rates["cython"] / ceilings["read_loop2_pages_per_s"])


def test_has_unmovable_pages(benchmark, fragmented):
    """The isolation scan of start_isolate_page_range(), ZONE_NORMAL rules (every page
    examined), whole zone; backends of pagecore.kernels.backends."""
    from pagecore.kernels import hotplug as K
    m, zone = fragmented
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    _isolation_scan(
        benchmark, "has_unmovable_pages", m.mem_map, start, end,
        lambda k, a, b: k.has_unmovable_pages(m.mem_map, a, b, False, True),
        lambda t: K._has_unmovable_pages_mt(m.mem_map, start, end, False, True, t, 1 << 16),
        -1)


def test_scan_movable_pages(benchmark, fragmented):
    """scan_movable_pages() over the zone after migration (`_offline_state()`): nothing
    movable is left, the scan covers the whole zone (-ENOENT)."""
    from pagecore.kernels import hotplug as K
    m, zone = fragmented
    mm = _offline_state(m, zone)
    n = mm.shape[0]
    _isolation_scan(
        benchmark, "scan_movable_pages", mm, 0, n,
        lambda k, a, b: k.scan_movable_pages(mm, a, b),
        lambda t: K._scan_movable_pages_mt(mm, 0, n, t, 1 << 16),
        (-P.ENOENT, n))


def test_test_pages_isolated(benchmark, fragmented):
    """test_pages_isolated() over the zone after migration (`_offline_state()`), every
    pageblock isolated: free blocks and unreferenced PageOffline pages only, so the page
    loop covers the whole zone and succeeds."""
    from pagecore.kernels import hotplug as K
    m, zone = fragmented
    mm = _offline_state(m, zone)
    n = mm.shape[0]
    pbo = m.arch.pageblock_order
    pbf = np.full((n >> pbo) + 1, P.PB_migrate_isolate | P.MIGRATE_MOVABLE, np.uint8)
    _isolation_scan(
        benchmark, "test_pages_isolated", mm, 0, n,
        lambda k, a, b: k.test_pages_isolated(mm, pbf, a, b, pbo),
        lambda t: K._test_pages_isolated_mt(mm, pbf, 0, n, pbo, t, 1 << 16),
        (0, n))
