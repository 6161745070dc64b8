"""Memmap images (pagecore/host_memmap.py): blocks onlined from a shared copy-on-write
image of an onlined block must leave every observable as writing their struct pages
does, and cost the host no memory until written.

Each test drives two machines through the same steps, one with images and one without,
and compares Machine.snapshot() (every present struct page, free lists as pfn sets,
pageblocks, sections, blocks, counters) after every step, with Machine.check() on both.
"""
import os

import numpy as np
import pytest

from pagecore import ConfigError, GiB, Machine, MachineConfig, MiB, NodeConfig
from pagecore import compaction as C
from pagecore.kernels import page as P
from pagecore.workload import Workload

N = 128 * MiB // 4096                 # pages per x86_64 memory block


def pair(**kw):
    kw.setdefault("phys_bits", 40)
    kw.setdefault("nodes", [NodeConfig(boot=[(0, 2 * GiB)]), NodeConfig(boot=[])])
    backend = kw.pop("backend", None)
    return [Machine(MachineConfig(**kw), backend=backend, memmap_images=on)
            for on in (True, False)]


def same(ms, step):
    a, b = (m.snapshot() for m in ms)
    for m in ms:
        m.check()
    for k in a:
        assert a[k] == b[k], f"after {step}: snapshot[{k!r}] differs with images"


def both(ms, step, fn):
    out = [fn(m) for m in ms]
    same(ms, step)
    return out


@pytest.mark.parametrize("kernel,strategy", [((6, 1), "block"), ((6, 12), "block"),
                                              ((6, 12), "boot"), ((6, 12), "force"),
                                              ((6, 1), "boot")])
def test_lifecycle_equal_with_and_without_images(kernel, strategy):
    ms = pair(kernel=kernel, strategy=strategy)
    both(ms, "add+online movable", lambda m: m.add_memory(0, 4 * GiB, 4 * GiB,
                                                          online="online_movable"))
    both(ms, "add+online kernel", lambda m: m.add_memory(0, 8 * GiB, 2 * GiB,
                                                         online="online_kernel"))
    both(ms, "add to node 1", lambda m: m.add_memory(1, 10 * GiB, 1 * GiB, online="online"))
    both(ms, "workload", lambda m: Workload(fill=0.5, seed=3).apply(m, 0, "Movable"))
    both(ms, "compact", lambda m: C.compact_zone(m, m.zone(0, P.ZONE_MOVABLE), -1))
    first = (4 * GiB + 4 * GiB) // (128 * MiB) - 4
    for b in range(first, first + 4):
        both(ms, f"offline block {b}", lambda m, b=b: m.offline_memory_block(b))
    both(ms, "remove", lambda m: m.remove_memory(first * 128 * MiB, 4 * 128 * MiB)
         if strategy != "range" else None)
    both(ms, "re-add", lambda m: m.add_memory(0, first * 128 * MiB, 4 * 128 * MiB,
                                              online="online_movable"))
    assert ms[0].memmap_images.mapped_blocks > 0 and ms[1].memmap_images.mapped_blocks == 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_twins_list_image_blocks_as_cython(backend):
    # online_image_blocks() of each backend against the Cython machine without images
    ms = [Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=40),
                  backend=backend, memmap_images=True),
          Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=40),
                  backend="cython", memmap_images=False)]
    both(ms, "add+online", lambda m: m.add_memory(0, 4 * GiB, 2 * GiB, online="online_movable"))
    both(ms, "alloc", lambda m: m.alloc_pages(0, 0, "movable", count=5000))


def test_v3_seed_is_written_not_mapped():
    # the seed's vmemmap run spans the added range: blocks differ, none may be mapped
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=40,
                              strategy="range"), memmap_images=True)
    m.add_memory(0, 4 * GiB, 1 * GiB, online="online_movable")
    assert m.memmap_images.mapped_blocks == 0


def _rss_anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_image_blocks_cost_no_host_memory_until_written():
    # 64 GiB onlined: written, 16 Mi pages x 16 B = 256 MiB of struct pages; from an
    # image, one block is written (2 MiB) and the other 511 map the image. The image's
    # memfd holds 32 copies (64 MiB) but is shared memory, not this process's RssAnon.
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=40),
                memmap_images=True)
    before = _rss_anon_kib()
    m.add_memory(0, 4 * GiB, 64 * GiB, online="online_movable")
    grew = _rss_anon_kib() - before
    assert m.memmap_images.mapped_blocks == 511
    assert grew < 64 * 1024, f"RssAnon grew {grew} KiB onlining 64 GiB from an image"
    # a write copies only the host page written: 256 struct pages (4 KiB)
    before = _rss_anon_kib()
    m.alloc_pages(0, 0, "movable", count=1)
    assert _rss_anon_kib() - before < 2048


def test_remove_leaves_zero_pages_not_the_image():
    # MADV_DONTNEED on a private file mapping brings the file's bytes back; release must
    # map the range afresh, so a removed image block reads as never-added memory
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=40),
                memmap_images=True)
    m.add_memory(0, 4 * GiB, 1 * GiB, online="online_movable")
    lo = 4 * GiB // 4096
    for b in range(lo // N, lo // N + 8):
        m.offline_memory_block(b)
    m.remove_memory(4 * GiB, 1 * GiB)
    assert not m.mem_map[lo:lo + 8 * N].view(np.uint64).any()
    m.check()


def test_environment_switch(monkeypatch):
    cfg = MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])])
    for v, mode in (("0", False), ("1", True), ("auto", "auto")):
        monkeypatch.setenv("PAGECORE_MEMMAP_IMAGES", v)
        assert Machine(cfg).memmap_images.mode == mode
    monkeypatch.delenv("PAGECORE_MEMMAP_IMAGES")
    assert Machine(cfg).memmap_images.mode == "auto"
    monkeypatch.setenv("PAGECORE_MEMMAP_IMAGES", "yes")
    with pytest.raises(ConfigError, match="PAGECORE_MEMMAP_IMAGES='yes'"):
        Machine(cfg)


def test_auto_maps_images_only_when_the_host_would_run_short(monkeypatch):
    # auto: images when MemAvailable - the batch's struct pages < max(2 GiB, MemTotal/8);
    # with 6 GiB available and a 2 GiB headroom, 4 GiB of struct pages (1 TiB onlined:
    # 2^28 pages x 16 B) still fit (6 - 4 = 2, not below) and one page more does not
    from pagecore import host_memmap
    monkeypatch.setattr(host_memmap, "host_headroom_bytes", lambda: (6 * GiB, 2 * GiB))
    imgs = host_memmap.MemmapImages("auto")
    assert not imgs.wanted(1024 * GiB // 4096)
    assert imgs.wanted(1024 * GiB // 4096 + 1)
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=40))
    m.add_memory(0, 4 * GiB, 1 * GiB, online="online_movable")       # 16 MiB: written
    assert m.memmap_images.mapped_blocks == 0
    monkeypatch.setattr(host_memmap, "host_headroom_bytes", lambda: (1 * GiB, 2 * GiB))
    m.add_memory(0, 8 * GiB, 1 * GiB, online="online_movable")       # host short: images
    assert m.memmap_images.mapped_blocks == 7


@pytest.mark.parametrize("rid", ["kv-large--6.12--mom1", "default--6.1--mom1",
                                 "kv-multi-block--6.12--momforce", "kv-many--6.1--mom0"])
def test_recorded_runs_replay_the_same_with_images(rid, monkeypatch):
    # A recorded real-kernel run (pagecore/validate/runs/) replayed with images forced
    # on every machine and never: pagecore's side of every compared row is the same
    # (and so is each row's status against what the kernel printed).
    import json

    from pagecore.validate import compare as vc
    from pagecore.validate.record import RUNS_DIR
    with open(os.path.join(RUNS_DIR, rid + ".json")) as f:
        rec = json.load(f)
    out = {}
    for v in ("1", "0"):
        monkeypatch.setenv("PAGECORE_MEMMAP_IMAGES", v)
        res = vc.compare(rec)
        out[v] = [(op["index"], r["what"], r["pagecore"], r["status"])
                  for op in res["ops"] for r in op["rows"]]
    assert out["1"] and out["1"] == out["0"]
