"""pagecore.plots: pageblock classification on a machine whose state is known by
construction, and the three figures as PNG files."""
import struct

import numpy as np
import pytest

from pagecore import GiB, MiB, ConfigError, Machine, MachineConfig, NodeConfig
from pagecore.kernels import page as P
from pagecore import plots
from pagecore.mm import sparse_vmemmap
from pagecore.plots import (PB_BOOT_MEMMAP, PB_FREE, PB_HOLE, PB_MEMMAP, PB_MOVABLE, PB_OFFLINE, PB_UNMOVABLE,
                            PB_VMEMMAP, pageblock_states, plot_balloon_limit, plot_memory_map,
                            plot_overhead)

PB = 512                    # x86_64 pageblock_nr_pages
NB = 32768                  # pages per 128 MiB memory block
MB = 256                    # pages per MiB


def set_pages(m, start, n, flags=0, refcount=1, page_type=P.PGTY_NONE):
    """Hand-write n struct pages as allocated ones (zone/node bits kept)."""
    mm = m.mem_map[start:start + n]
    mm["flags"] = (mm["flags"] & ~np.uint32(P.FLAGS_MASK)) | flags
    mm["refcount"] = refcount
    mm["page_type"] = page_type


@pytest.fixture(scope="module")
def built():
    """One node, boot RAM [0, 1 GiB). x86_64 boot reserves [0, 1 MiB) and the kernel
    [16, 64 MiB); the boot memmap (8 sections x 2 MiB) sits top-down below 1 GiB.
      2 GiB +256M, strategy block: block 16 online_movable, block 17 offline; each block's
               first pageblock is its self-hosted memmap (V = 512 pages).
      3 GiB +128M, strategy boot: block 24 offline, its memmap one order-9 buddy block.
    Block 16's pageblocks 1-4 are then written by hand:
      pb1: 1 LRU page                     -> priority movable,   majority free
      pb2: 1 slab page + 1 LRU page       -> priority unmovable, majority free
      pb3: 512 LRU pages                  -> movable both ways
      pb4: 300 LRU pages + 1 reserved     -> priority unmovable, majority movable
    """
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB)])], phys_bits=36))
    m.add_memory(0, 2 * GiB, 256 * MiB, strategy="block")
    m.online_memory_block(16, "online_movable")
    m.add_memory(0, 3 * GiB, 128 * MiB, strategy="boot")
    b16 = 16 * NB
    set_pages(m, b16 + 1 * PB + 7, 1, P.PG_lru)
    set_pages(m, b16 + 2 * PB + 3, 1, 0, page_type=P.PGTY_SLAB)
    set_pages(m, b16 + 2 * PB + 9, 1, P.PG_lru)
    set_pages(m, b16 + 3 * PB, PB, P.PG_lru)
    set_pages(m, b16 + 4 * PB, 300, P.PG_lru)
    set_pages(m, b16 + 4 * PB + 400, 1, P.PG_reserved)
    (g,) = list(sparse_vmemmap.granules_of_section(m, 24))
    kind, memmap_pfn, order, _ = m.vmemmap_granules[g]
    assert (kind, order) == ("buddy", 9)
    return m, memmap_pfn


def test_hotplug_blocks_priority(built):
    m, _ = built
    got = pageblock_states(m, 16 * NB, 26 * NB)
    want = np.full(10 * 64, PB_HOLE, dtype=np.uint8)     # blocks 16..25, 64 pageblocks each
    want[0:64] = PB_FREE
    want[0] = PB_VMEMMAP
    want[1] = PB_MOVABLE
    want[2] = PB_UNMOVABLE
    want[3] = PB_MOVABLE
    want[4] = PB_UNMOVABLE
    want[64:128] = PB_OFFLINE                            # block 17, offline ...
    want[64] = PB_VMEMMAP                                # ... but its memmap is in use
    want[8 * 64:9 * 64] = PB_OFFLINE                     # block 24: memmap elsewhere
    np.testing.assert_array_equal(got, want)


def test_hotplug_blocks_majority(built):
    m, _ = built
    got = pageblock_states(m, 16 * NB, 17 * NB, rule="majority")
    want = np.full(64, PB_FREE, dtype=np.uint8)
    want[0] = PB_VMEMMAP
    want[3] = PB_MOVABLE
    want[4] = PB_MOVABLE
    np.testing.assert_array_equal(got, want)


def test_boot_memory(built):
    """Boot RAM: pb 0 holds the reserved first MiB (256 reserved, 256 free pages: a tie,
    which majority gives to the higher class too), pbs 8-31 the kernel image, pbs
    504-511 the boot memmap, and one buddy pageblock the memmap of block 24."""
    m, memmap_pfn = built
    want = np.full(512, PB_FREE, dtype=np.uint8)
    want[0] = PB_UNMOVABLE
    want[8:32] = PB_UNMOVABLE
    want[504:512] = PB_BOOT_MEMMAP
    want[memmap_pfn // PB] = PB_MEMMAP             # the classic memmap of block 24
    assert memmap_pfn % PB == 0 and not 504 <= memmap_pfn // PB < 512
    for rule in ("priority", "majority"):
        np.testing.assert_array_equal(pageblock_states(m, 0, 1 * GiB // 4096, rule=rule), want)


def test_partial_section_is_hole():
    """Boot RAM ending 2 MiB into a section: the rest of that present section is a hole.
    The boot memmap (9 sections x 2 MiB, top-down from the end of RAM) covers pbs 504-512."""
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB + 2 * MiB)])], phys_bits=36))
    got = pageblock_states(m, 500 * PB, 600 * PB)
    want = np.full(100, PB_HOLE, dtype=np.uint8)
    want[0:4] = PB_FREE                                   # pbs 500-503
    want[4:13] = PB_BOOT_MEMMAP                           # pbs 504-512
    np.testing.assert_array_equal(got, want)


def test_default_range_and_chunking(built, monkeypatch):
    m, _ = built
    full = pageblock_states(m)
    assert len(full) == 25 * NB // PB                     # up to the end of block 24
    monkeypatch.setattr(plots, "_CHUNK_PAGES", 3 * PB)    # chunks that split blocks
    np.testing.assert_array_equal(pageblock_states(m), full)
    np.testing.assert_array_equal(pageblock_states(m, 16 * NB + 100, 16 * NB + 5 * PB - 1),
                                  full[16 * NB // PB:16 * NB // PB + 5])


def test_bad_arguments(built):
    m, _ = built
    with pytest.raises(ConfigError, match="rule"):
        pageblock_states(m, rule="mode")
    with pytest.raises(ConfigError, match="empty or outside"):
        pageblock_states(m, 100, 100)
    with pytest.raises(ConfigError, match="lacks"):
        plot_overhead([{"strategy": "x", "added_bytes": 1}], "/dev/null")


# ---- PNG files -----------------------------------------------------------------------
def assert_png(path, min_bytes=15_000):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 300
    assert len(data) >= min_bytes, f"PNG of only {len(data)} bytes"


def test_plot_memory_map(built, tmp_path):
    m, _ = built
    other = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB)])], phys_bits=36,
                                  block_size=256 * MiB))
    other.add_memory(0, 2 * GiB, 512 * MiB, strategy="boot", online="online_movable")
    out = plot_memory_map({"block + boot": m, "boot, 256M blocks": other}, tmp_path / "map.png")
    assert_png(out)
    assert_png(plot_memory_map({"grouped rows": m}, tmp_path / "g.png", max_rows=8, rule="majority"),
               min_bytes=8_000)


def test_plot_overhead(tmp_path):
    rows = [{"strategy": s, "added_bytes": a * GiB, "memmap_bytes": a * 16 * MiB,
             "usable_bytes": a * GiB - (a * 16 * MiB if s == "block" else 0)}
            for s in ("boot", "block") for a in (1, 4, 16, 64)]
    assert_png(plot_overhead(rows, tmp_path / "overhead.png"))


def test_plot_balloon_limit(tmp_path):
    rows = [{"strategy": s, "boot_bytes": b * GiB, "limit_bytes": b * GiB * k}
            for s, k in (("boot", 40), ("block", 63)) for b in (1, 2, 4, 8)]
    assert_png(plot_balloon_limit(rows, tmp_path / "balloon.png"))


def test_plot_overhead_keeps_scenarios_apart(tmp_path, monkeypatch):
    # two scenarios at the same sizes: one line per (scenario, strategy), not a zig-zag
    import pagecore.plots as plots
    rows = [{"strategy": "boot", "scenario": sc, "added_bytes": a * GiB,
             "memmap_bytes": a * 16 * MiB, "usable_bytes": a * GiB} for sc in ("x", "y")
            for a in (1, 2)]
    groups = plots._by_strategy(rows, ("strategy", "added_bytes"))
    assert list(groups) == ["x: boot", "y: boot"] and all(len(g) == 2 for g in groups.values())
    assert list(plots._by_strategy(rows[:2], ("strategy",))) == ["boot"]
    assert_png(plot_overhead(rows, tmp_path / "o.png"))
