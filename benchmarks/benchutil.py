"""Helpers of the pagecore benchmarks (sizes, resident memory, write ceilings); the
pytest wiring is in conftest.py."""
import gc
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
UNITS = {"K": KiB, "M": MiB, "G": GiB, "T": TiB}
PAGE_BYTES = 16                      # sizeof(page_t): host bytes per simulated page
ROOFLINE_MAX = 4 * GiB               # larger write ceilings are scaled from this many bytes


def parse_size(text):
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def size_label(size):
    return f"{size // GiB}G" if size < TiB else f"{size / TiB:g}T"


def bench_sizes(default=("1G", "16G", "256G", "1T")):
    """Simulated sizes to run, capped by PAGECORE_BENCH_MAX (default 1T; 4T adds 4 TiB)."""
    top = parse_size(os.environ.get("PAGECORE_BENCH_MAX", "1T"))
    sizes = sorted({parse_size(s) for s in default} | ({top} if top > TiB else set()))
    return [s for s in sizes if s <= top]


def rss_bytes():
    """Resident memory of this process now (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB


def rss_anon_bytes():
    """This process's private resident memory now (RssAnon, /proc/self/status): the
    struct pages written, copy-on-write copies of memmap images included."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * KiB
    return 0


def system_used_bytes():
    """MemTotal - MemAvailable of the whole host (/proc/meminfo): what every process
    holds, shared memory once."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            info[k] = int(v.split()[0]) * KiB
    return info["MemTotal"] - info["MemAvailable"]


class HostMemory:
    """The peak of the host memory a machine holds, sampled every `interval` s from a
    thread: RssAnon plus the bytes of the machine's memmap image files (shared memory,
    each page resident once however many blocks map it). ru_maxrss is no measure of
    that: it counts a shared page once per mapping that has read it. As a check from
    outside the process, the peak growth of the host's MemTotal - MemAvailable is kept
    too (`system_peak`; other processes move it)."""

    def __init__(self, interval=0.02):
        import threading
        self.interval, self.images = interval, None
        self.peak = self.overall = self.system_peak = 0
        self._system0 = system_used_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self):
        files = self.images.files.values() if self.images is not None else ()
        return rss_anon_bytes() + sum(n * size for _, n, size in files)

    def _sample(self):
        self.peak = max(self.peak, self.now())
        self.overall = max(self.overall, self.peak)
        self.system_peak = max(self.system_peak, system_used_bytes() - self._system0)

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def take_peak(self):
        """The peak since the last call (then starts a new one)."""
        self._sample()
        peak, self.peak = self.peak, 0      # the sampler starts the next peak
        return peak


def release(obj_holder):
    """Drop the machines a benchmark round made, so the next round's fit in memory."""
    obj_holder.clear()
    gc.collect()


class Roofline:
    """Write ceilings of this host for a byte count, measured once per size in this run.

    The array is touched before any timing and freed after; ceilings for more than
    ROOFLINE_MAX bytes are measured on ROOFLINE_MAX bytes and scaled (DRAM bandwidth is
    flat above ~1 GiB). Measure before building a machine: the array is not small."""

    def __init__(self):
        self._buf = None
        self._cache = {}
        self._pool = ThreadPoolExecutor(2)
        self._tile = np.full(MiB // 8, 0x0102030405060708, dtype=np.uint64)

    def _array(self, nbytes):
        self._buf = np.empty(nbytes // 8, dtype=np.uint64)
        self._buf.fill(0)                                         # first touch, untimed
        return self._buf

    @staticmethod
    def _best(fn, repeat=3):
        best, cpu = None, None
        for _ in range(repeat):
            c, t = time.process_time(), time.perf_counter()
            fn()
            dt, dc = time.perf_counter() - t, time.process_time() - c
            if best is None or dt < best:
                best, cpu = dt, dc
        return best, cpu / best

    def _split(self, a, fn, threads):
        n = len(a)
        parts = [a[n * i // threads:n * (i + 1) // threads] for i in range(threads)]
        list(self._pool.map(fn, parts))

    def _copy(self, part):
        whole = len(part) // len(self._tile) * len(self._tile)
        np.copyto(part[:whole].reshape(-1, len(self._tile)), self._tile)
        part[whole:] = self._tile[:len(part) - whole]

    def __call__(self, nbytes):
        """{"fill1", "fill2", "copy1", "copy2"} -> (seconds for `nbytes`, cpu/wall)."""
        nbytes = max(int(nbytes) // 8 * 8, 8 * MiB)
        if nbytes in self._cache:
            return self._cache[nbytes]
        meas = min(nbytes, ROOFLINE_MAX)
        a = self._array(meas)
        scale = nbytes / meas
        out = {}
        for name, threads, fn in (("fill1", 1, lambda p: p.fill(7)), ("fill2", 2, lambda p: p.fill(7)),
                                  ("copy1", 1, self._copy), ("copy2", 2, self._copy)):
            t, cpu = self._best(lambda: self._split(a, fn, threads))
            out[name] = (t * scale, cpu)
        del a
        self.free()                   # do not hold GiBs while machines are being built
        self._cache[nbytes] = out
        return out

    def free(self):
        self._buf = None
        gc.collect()


def fragmented_zone(size):
    """The scans' input: `size` hot-added above boot RAM (2 GiB + size/48, enough for the
    memmap of the "boot" strategy, so no vmemmap stops a scan early), onlined movable,
    filled to 60 % and aged (pagecore.workload, seed 42). Returns (machine, zone)."""
    from pagecore import Machine, MachineConfig, NodeConfig
    from pagecore.kernels import page as P
    from pagecore.workload import Workload
    boot = 2 * GiB + -(-size // 48 // GiB) * GiB
    at = boot + 1 * GiB
    phys_bits = max(36, int(np.ceil(np.log2(at + size))) + 1)
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, boot)])], strategy="boot",
                              phys_bits=phys_bits))
    m.add_memory(0, at, size, online="online_movable")
    Workload(fill=0.6, movable_fraction=1.0, orders={0: 0.9, 9: 0.1}, age_rounds=1,
             free_fraction=0.5, seed=42).apply(m, 0, "Movable")
    return m, m.zone(0, P.ZONE_MOVABLE)
