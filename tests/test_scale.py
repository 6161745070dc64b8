"""The terabyte-scale paths of pagecore.machine, exercised on scaled-down machines.

add_memory() (batched arch_add_memory()), memory_block_online() / online_pages() and
remove_memory() work on whole runs of sections and blocks with numpy instead of looping
over them in Python. Three kinds of checks:

  * accounting after a multi-GiB hot-add in 128 MiB blocks equals the per-block formula
    of docs/model.md#accounting (N pages per block, V = N * 64 / 4096 self-hosted memmap pages);
  * the batched paths leave the machine byte for byte as the section-by-section and
    block-by-block loops they replace (kept below as `per_section_loops()`, the slow twin),
    free-list order, undo log and error messages included;
  * host memory: holes in the physical address space cost nothing, present memory costs
    ~16 bytes per page; `import pagecore` stays fast and JIT-free.
"""
import contextlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from pagecore import GiB, Machine, MachineConfig, MiB, NodeConfig, OutOfMemoryError, PagecoreError, TiB
from pagecore import host_memmap
from pagecore.kernels import page as P
from pagecore.drivers.base import memory
from pagecore.drivers.base.memory import MEM_OFFLINE, MEM_ONLINE, STATE_NAMES
from pagecore.errors import BusyError, RangeError, StateError
from pagecore.mm import memory_hotplug, page_alloc, sparse, sparse_vmemmap
from pagecore.mm.mmzone import (SECTION_HAS_MEM_MAP, SECTION_IS_EARLY, SECTION_IS_ONLINE,
                                SECTION_MARKED_PRESENT, SECTION_USE_VMEMMAP)
from pagecore.mm.page_owner import OWNER_VMEMMAP
from pagecore.mm.sparse_vmemmap import VmemAltmap
from pagecore.strategies import AddUnit, MemmapStrategy, get_strategy

N = 128 * MiB // 4096                 # pages per x86_64 memory block
V = N * 64 // 4096                    # self-hosted memmap pages per block (2 MiB)
PPS = 32768                           # x86_64 PAGES_PER_SECTION (128 MiB sections)
HOT = 4 * GiB


def vm(boot=2 * GiB, **kw):
    kw.setdefault("phys_bits", 40)
    return Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, boot)])], **kw))


# ---------------------------------------------------------------------------------------
# accounting at scale equals the per-block formula
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [8 * GiB, 64 * GiB])
def test_block_strategy_accounting_per_block(size):
    m = vm()
    nblk = size // (128 * MiB)
    b0 = HOT // (128 * MiB)
    normal0 = m.zone(0, P.ZONE_NORMAL).counters()
    memmap0, tables0 = m.nr_memmap_pages, m.pagetable_pages
    total0 = m.mem_total_pages
    m.add_memory(0, HOT, size, strategy="block")
    rows = m.blocks[b0:b0 + nblk]
    assert (rows["state"] == MEM_OFFLINE).all() and (rows["nr_vmemmap"] == V).all()
    assert (rows["altmap_alloc"] == V).all() and (rows["memmap_pages"] == 0).all()
    assert (rows["range_id"] == rows["range_id"][0]).all()
    assert m.nr_memmap_pages - memmap0 == nblk * V           # one section per block
    # one PMD leaf per section, from the block's own altmap, at the block's first pfn
    for b in (b0, b0 + nblk // 2, b0 + nblk - 1):
        g = b * N * 64 // (2 * MiB)
        assert m.vmemmap_granules[g] == ("altmap", b * N, 9, b)
    # page tables: one PMD table per 64 GiB of memory (1 GiB of vmemmap VA); boot's covers
    # [0, 64 GiB)
    assert m.pagetable_pages - tables0 == len({s * PPS * 64 >> 30 for s in range(
        (HOT + size) // (128 * MiB))} - {0})
    m.online_pages_blocks(range(b0, b0 + nblk), "online_movable")
    mov = m.zone(0, P.ZONE_MOVABLE)
    assert mov.present_pages == nblk * N
    assert mov.managed_pages == mov.free_pages == nblk * (N - V)
    assert (mov.zone_start_pfn, mov.spanned_pages) == (HOT // 4096, nblk * N)
    assert m.mem_total_pages - total0 == nblk * (N - V)
    assert m.zone(0, P.ZONE_NORMAL).counters() == normal0
    assert (m.sections[HOT // 4096 // PPS:(HOT + size) // 4096 // PPS] ==
            SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP | SECTION_IS_ONLINE).all()
    # every block: V vmemmap pages (refcount 1, one UNMOVABLE pageblock), the rest free
    mm = m.mem_map[HOT // 4096:(HOT + size) // 4096].reshape(nblk, N)
    assert (mm["refcount"][:, :V] == 1).all() and (mm["refcount"][:, V:] == 0).all()
    assert (mm["flags"][:, :V] & P.FLAGS_MASK == P.PG_vmemmap_self_hosted).all()
    assert ((mm["flags"] >> P.ZONES_PGSHIFT) & P.ZONES_MASK == P.ZONE_MOVABLE).all()
    pbf = m.pageblock_flags[HOT >> 21:(HOT + size) >> 21].reshape(nblk, N >> 9)
    assert (pbf[:, 0] == P.MIGRATE_UNMOVABLE).all() and (pbf[:, 1:] == P.MIGRATE_MOVABLE).all()
    # free blocks: order 9 at s+V, then order 10 up to the end of each block
    counts = mov.free_area.counts()[P.MIGRATE_MOVABLE]
    assert counts[9] == nblk and counts[10] == nblk * (N - 2 * V) // 1024
    m.offline_and_remove_memory(HOT, size)
    assert m.nr_memmap_pages == memmap0 and m.pagetable_pages == tables0
    assert not (m.blocks["state"][b0:b0 + nblk]).any() and not m.ranges
    assert m.mem_total_pages == total0


def test_boot_strategy_accounting_per_block():
    size = 32 * GiB
    m = vm(boot=4 * GiB)
    nblk, b0 = size // (128 * MiB), 8 * GiB // (128 * MiB)
    free = lambda: m.mem_free_pages + m.free_pcp_pages       # noqa: E731  (pcp: free too)
    free0 = free()
    tables0 = m.pagetable_pages
    m.add_memory(0, 8 * GiB, size, strategy="boot")
    rows = m.blocks[b0:b0 + nblk]
    assert (rows["nr_vmemmap"] == 0).all() and (rows["memmap_pages"] == V).all()
    assert (rows["memmap_nid"] == 0).all()
    assert free() == free0 - nblk * V - (m.pagetable_pages - tables0)
    kinds = {m.vmemmap_granules[(b * N * 64) // (2 * MiB)][0] for b in range(b0, b0 + nblk)}
    assert kinds == {"buddy"}
    m.online_pages_blocks(range(b0, b0 + nblk), "online_movable")
    mov = m.zone(0, P.ZONE_MOVABLE)
    assert mov.present_pages == mov.managed_pages == mov.free_pages == nblk * N
    m.offline_and_remove_memory(8 * GiB, size)
    assert free() == free0 and m.pagetable_pages == tables0


# ---------------------------------------------------------------------------------------
# the slow twin: the section-by-section / block-by-block loops the batched paths replace
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def per_section_loops():
    """The slow twin: one arch_add_memory() per unit and one Python iteration per section
    (add, remove) and per block (online), the loops of the kernel as pagecore had them
    before batching, patched in for the model modules' batched functions. Everything
    else is the model's own."""
    patches = [(sparse, "sparse_add_section", sparse_add_section_loop),
               (memory, "memory_block_online", memory_block_online_loop),
               (memory_hotplug, "online_pages", online_pages_loop),
               (memory_hotplug, "remove_memory", remove_memory_loop)]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    for mod, name, fn in patches:
        setattr(mod, name, fn)
    try:
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def replay_slow(cfg, ops):
    """replay() on a machine driven by the slow twin."""
    with per_section_loops():
        return replay(Machine(cfg), ops)


def sparse_add_section_loop(m, nid, units, rng, done):
    for unit in (units if isinstance(units, (list, tuple)) else [units]):
        arch_add_one(m, nid, unit, rng, done)

def arch_add_one(m, nid, unit, rng, done):
    a = m.arch
    pps = a.pages_per_section
    alt = None
    if unit.altmap_free:
        alt = VmemAltmap(base_pfn=unit.start_pfn, end_pfn=unit.start_pfn + unit.nr_pages - 1,
                         free=unit.altmap_free)
    for sec in range(unit.start_pfn // pps, (unit.start_pfn + unit.nr_pages) // pps):
        new_g, new_t = [], []
        done.append((sec, new_g, new_t))
        for t in sparse_vmemmap.tables_of_section(m, sec):
            if t not in m.vmemmap_tables:
                got = page_alloc.__alloc_pages(m, nid, 0, "kernel", 1, OWNER_VMEMMAP)
                if not len(got):
                    raise OutOfMemoryError(f"add_memory: no page for a vmemmap page table "
                                           f"(section {sec}): -ENOMEM")
                m.mem_map[got[0]]["page_type"] = P.PGTY_TABLE
                m.vmemmap_tables[t] = int(got[0])
                m.pagetable_pages += 1
                new_t.append(t)
        for g in sparse_vmemmap.granules_of_section(m, sec):
            if g in m.vmemmap_granules:
                continue
            m.vmemmap_granules[g] = sparse_vmemmap.vmemmap_populate(m, nid, alt, sec)
            new_g.append(g)
        m.sections[sec] = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
        if rng.strategy.seed_v3 and alt is not None:
            m.sections[sec] |= SECTION_USE_VMEMMAP
        m.section_nid[sec] = nid
        m.nr_memmap_pages += a.memmap_pages(pps)
    v = 0 if alt is None else (alt.alloc if rng.strategy.seed_v3 or
                               rng.strategy.kernel < (6, 6) else alt.free)
    rng.alloc += 0 if alt is None else alt.alloc
    for b in range(unit.start_pfn // m.block_pages,
                   (unit.start_pfn + unit.nr_pages) // m.block_pages):
        row = m.blocks[b]
        row["state"], row["nid"], row["zone"], row["range_id"] = MEM_OFFLINE, nid, -1, rng.range_id
        off = b * m.block_pages - unit.start_pfn
        if rng.strategy.seed_v3:
            row["nr_vmemmap"] = min(max(v - off, 0), m.block_pages)
        else:
            row["nr_vmemmap"] = v
        row["altmap_alloc"] = 0 if alt is None else (alt.alloc if off == 0 else 0)
        row["waste"] = unit.waste
        row["memmap_pages"] = 0
        row["memmap_nid"] = -1
    if alt is None:
        for sec, new_g, _ in done:
            if unit.start_pfn <= sec * pps < unit.start_pfn + unit.nr_pages:
                b = sec * pps // m.block_pages
                for g in new_g:
                    kind, pfn, order, gnid = m.vmemmap_granules[g]
                    m.blocks[b]["memmap_pages"] += sparse_vmemmap.granule_buddy_pages(kind, order, m.arch.vmemmap_granule_pages)
                    m.blocks[b]["memmap_nid"] = gnid

def memory_block_online_loop(m, blocks, online_type="online"):
    ot = memory_hotplug.mhp_online_type_from_str(m, online_type)
    blocks = np.asarray(list(blocks) if not isinstance(blocks, np.ndarray) else blocks,
                        dtype=np.int64)
    if not len(blocks):
        return
    if (blocks < 0).any() or (blocks >= len(m.blocks)).any():
        raise RangeError(f"memory block {int(blocks[(blocks < 0) | (blocks >= len(m.blocks))][0])} "
                           "does not exist")
    st = m.blocks["state"][blocks]
    if (st != MEM_OFFLINE).any():
        b = int(blocks[np.argmax(st != MEM_OFFLINE)])
        what = STATE_NAMES.get(int(m.blocks["state"][b]), "not present")
        raise StateError(f"memory block {b} is {what}, not offline: cannot online it "
                           "(memory_block_change_state(): -EINVAL)")
    nb = m.block_pages
    groups = []
    for b in blocks.tolist():
        nid = int(m.blocks["nid"][b])
        zone = memory_hotplug.zone_for_pfn_range(m, ot, nid, b * nb, nb)
        rid = int(m.blocks["range_id"][b])
        strat = m.ranges[rid].strategy if rid >= 0 else None
        if groups and groups[-1][0] is zone and groups[-1][2] is strat:
            groups[-1][1].append(b)
        else:
            groups.append((zone, [b], strat))
        zone.grow(b * nb, (b + 1) * nb)
    for zone, bl, strat in groups:
        online_pages_loop(m, zone, np.asarray(bl, dtype=np.int64), ot, strat or get_strategy("boot"))
    page_alloc.init_per_zone_wmark_min(m)

def online_pages_loop(m, zone, bl, ot, strategy):
    nb = m.block_pages
    if not zone.populated:
        page_alloc.setup_zone_pageset(m, zone)      # as online_pages(): its own pcp lists
    starts = bl * nb
    v = m.blocks["nr_vmemmap"][bl].astype(np.int64)
    seed = strategy.seed_v3
    vm_mt = P.MIGRATE_MOVABLE if seed else P.MIGRATE_UNMOVABLE
    freed = m.kernels.online_memory_blocks(
        m.mem_map, m.pageblock_flags, zone.free_area, np.ascontiguousarray(starts),
        np.ascontiguousarray(v), nb, zone.nid, zone.zid, memory_hotplug.vmemmap_page_flags(m, strategy),
        vm_mt, seed, 2)
    zone.present_pages += nb * len(bl)
    zone.managed_pages += int(freed)
    pps = m.arch.pages_per_section
    for s in starts.tolist():
        m.sections[s // pps:(s + nb) // pps] |= SECTION_IS_ONLINE
    m.blocks["state"][bl] = MEM_ONLINE
    m.blocks["zone"][bl] = zone.zid
    m.blocks["online_type"][bl] = ot

def remove_memory_loop(m, start, size):
    start_pfn, nr_pages = memory_hotplug.check_hotplug_memory_range(m, start, size, "remove_memory")
    blk = m.blocks_in(start_pfn, nr_pages)
    if (blk["state"] == 0).any():
        raise RangeError(f"remove_memory: {m.fmt_range(start_pfn, nr_pages)} is not all present")
    if (blk["state"] != MEM_OFFLINE).any():
        b = start_pfn // m.block_pages + int(np.argmax(blk["state"] != MEM_OFFLINE))
        raise BusyError(f"removing memory fails, because memory {m.fmt_range(start_pfn, nr_pages)} "
                          f"is onlined (memory block {b}): -EBUSY")
    rids = set(blk["range_id"].tolist())
    for rid in rids:
        if rid >= 0:
            m.ranges[rid].strategy.check_remove(m, start_pfn, nr_pages)
    pps = m.arch.pages_per_section
    secs = range(start_pfn // pps, (start_pfn + nr_pages) // pps)
    for sec in secs:
        if not m.sections[sec] & SECTION_IS_EARLY:
            m.nr_memmap_pages -= m.arch.memmap_pages(pps)
        else:
            m.nr_memmap_boot_pages -= m.arch.memmap_pages(pps)
        m.sections[sec] = 0
        m.section_nid[sec] = -1
    for sec in secs:
        for g in sparse_vmemmap.granules_of_section(m, sec):
            if g in m.vmemmap_granules and not sparse_vmemmap.granule_in_use(m, g):
                sparse_vmemmap.vmemmap_free(m, g)
        for t in sparse_vmemmap.tables_of_section(m, sec):
            if t in m.vmemmap_tables and not sparse_vmemmap.table_in_use(m, t):
                sparse_vmemmap.free_pagetable(m, t)
    left = m.blocks_in(start_pfn, nr_pages)["altmap_alloc"]
    if left.any():
        raise StateError(f"altmap not fully unmapped after removing "
                           f"{m.fmt_range(start_pfn, nr_pages)}: alloc={int(left.sum())}")
    m.blocks_in(start_pfn, nr_pages)[:] = memory.empty_block()
    for rid in rids:
        rng = m.ranges.get(rid)
        if rng is not None and not (m.blocks["range_id"] == rid).any():
            del m.ranges[rid]
    host_memmap.release_host_pages(m, start_pfn, start_pfn + nr_pages)
    pb = m.arch.pageblock_order
    m.pageblock_flags[start_pfn >> pb:(start_pfn + nr_pages) >> pb] = 0


class ShortAltmap(MemmapStrategy):
    """Per-block altmaps, the fourth one page short: arch_add_memory() runs out part-way."""
    name = "test-short-altmap"

    def plan(self, machine, start_pfn, nr_pages):
        nb = machine.block_pages
        v = machine.arch.memmap_pages(nb)
        return [AddUnit(p, nb, v - (i == 3)) for i, p in enumerate(range(start_pfn, start_pfn + nr_pages, nb))]


class EveryThirdBoot(MemmapStrategy):
    """Units of both kinds in one add: runs of self-hosted blocks between classic ones."""
    name = "test-mixed"

    def plan(self, machine, start_pfn, nr_pages):
        nb = machine.block_pages
        v = machine.arch.memmap_pages(nb)
        return [AddUnit(p, nb, v if i % 3 else None) for i, p in enumerate(range(start_pfn, start_pfn + nr_pages, nb))]


def machine_state(m):
    """Everything the batched paths write, in order: raw pages of present sections,
    pageblocks, section words, block rows, vmemmap dicts (insertion order), counters and
    the free lists (list order, which pins the slots kept in `private`)."""
    pps = m.arch.pages_per_section
    secs = np.flatnonzero(m.sections).tolist()
    return {
        "pages": b"".join(m.mem_map[s * pps:(s + 1) * pps].tobytes() for s in secs),
        "pageblocks": m.pageblock_flags.tobytes(), "sections": m.sections.tobytes(),
        "section_nid": m.section_nid.tobytes(), "blocks": m.blocks.tobytes(),
        "granules": list(m.vmemmap_granules.items()), "tables": list(m.vmemmap_tables.items()),
        "counters": (m.nr_memmap_pages, m.nr_memmap_boot_pages, m.pagetable_pages),
        "zones": [(z.counters(), tuple(z.watermark), [z.free_area.blocks(mt, o).tolist()
                   for mt in range(P.MIGRATE_TYPES) for o in range(z.free_area.nr_orders)])
                  for z in m.zones()],
        "ranges": [(k, r.start_pfn, r.nr_pages, r.self_hosted, r.alloc) for k, r in m.ranges.items()],
    }


def replay(machine, ops):
    """Apply ops, recording each outcome (None or the exception's type and message)."""
    out = []
    for name, *args in ops:
        try:
            if name == "fragment":                     # order-0 holes everywhere
                got = machine.alloc_pages(0, 0, "kernel", args[0])
                machine.free_pages(got[::2])
            else:
                getattr(machine, name)(*args)
            out.append(None)
        except PagecoreError as e:
            out.append((type(e).__name__, str(e)))
        out.append(machine_state(machine))
    return out


def random_ops(rng, block_size, top, strategies):
    ops = []
    if rng.random() < 0.3:
        ops.append(("fragment", int(rng.integers(1000, 240000))))
    added = []
    for _ in range(int(rng.integers(1, 4))):
        nblk = int(rng.choice([1, 3, 8, 24, 96]))
        start = int(rng.integers(HOT // block_size, top // block_size - nblk)) * block_size
        online = [None, "online", "online_movable", "online_kernel"][int(rng.integers(4))]
        ops.append(("add_memory", 0, start, nblk * block_size, strategies[int(rng.integers(len(strategies)))], online))
        added.append((start, nblk * block_size))
    for start, size in added:
        if rng.random() < 0.5:
            ops.append(("online_pages_blocks", range(start // block_size, (start + size) // block_size),
                        ["online", "online_movable", "online_kernel"][int(rng.integers(3))]))
        ops.append(("offline_and_remove_memory" if rng.random() < 0.7 else "remove_memory", start, size))
    return ops


CONFIGS = {
    "x86_64": dict(phys_bits=38),
    "x86_64-small-boot": dict(phys_bits=38, nodes=[NodeConfig(boot=[(0, 1 * GiB)])]),
    "x86_64-page24": dict(phys_bits=38, struct_page_size=24),     # leaves shared by sections
    "x86_64-page128": dict(phys_bits=38, struct_page_size=128),   # 2 leaves per section
    "v3": dict(phys_bits=38, kernel=(5, 3)),
    "s390x": dict(phys_bits=38, arch="s390x"),
    "arm64-64k": dict(phys_bits=40, arch="arm64-64k"),
}
STRATEGIES = ["boot", "block", "range", "block-5.13", "block-6.6", "force",
              ShortAltmap(), EveryThirdBoot()]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("seed", range(3))
def test_batched_paths_match_the_per_section_loops(config, seed):
    cfg = MachineConfig(**CONFIGS[config])
    rng = np.random.default_rng(seed)
    fast = Machine(cfg)
    ops = random_ops(rng, fast.block_size, 1 << cfg.phys_bits, STRATEGIES)
    got, want = replay(fast, ops), replay_slow(cfg, ops)
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, dict):
            for key in w:
                assert g[key] == w[key], f"{config} seed {seed}: after {ops[i // 2]}: {key} differs"
        else:
            assert g == w, f"{config} seed {seed}: {ops[i // 2]}"


@pytest.mark.parametrize("strategy", ["boot", ShortAltmap(), EveryThirdBoot()])
def test_batched_add_fails_and_falls_back_like_the_loop(strategy):
    """Low memory: order-9 leaves fail (base-page fallback "buddy-base"), page tables and
    leaves run out part-way; failed adds roll back the same way."""
    cfg = MachineConfig(phys_bits=38, nodes=[NodeConfig(boot=[(0, 1 * GiB)])])
    seen, failed = set(), set()
    for frag in (120000, 250000):
        ops = [("fragment", frag), ("add_memory", 0, HOT, 16 * GiB, strategy, "online"),
               ("add_memory", 0, 64 * GiB, 24 * GiB, strategy, None),
               ("remove_memory", 64 * GiB, 24 * GiB)]
        got, want = replay(Machine(cfg), ops), replay_slow(cfg, ops)
        assert got == want
        seen.update(kind for _, (kind, *_) in got[3]["granules"])
        failed.update(o[1].split(":")[1] for o in got[::2] if o)
    # the scenarios reach the fallback and the failures they are about
    assert "buddy-base" in seen or " altmap of altmap(base_pfn=" in str(failed), (seen, failed)


# ---------------------------------------------------------------------------------------
# host memory
# ---------------------------------------------------------------------------------------
def _mapping_rss(addr, length):
    """Resident bytes of the VMAs of this process inside [addr, addr + length)."""
    rss, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                lo, hi = int(m.group(1), 16), int(m.group(2), 16)
                inside = addr <= lo and hi <= addr + length
            elif inside and line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
    return rss


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
@pytest.mark.big
def test_holes_in_the_address_space_cost_no_host_memory():
    """64 TiB of physical address space (a 256 GiB mem_map mapping) with 2 GiB of boot RAM
    and 3 GiB hot-added far apart: only the present pages' struct pages are resident."""
    m = vm(phys_bits=46)
    addr, length = m.mem_map.ctypes.data, m.mem_map.nbytes
    assert length == (64 * TiB >> 12) * 16
    m.add_memory(0, 16 * TiB, 1 * GiB, strategy="block", online="online_movable")
    m.add_memory(0, 48 * TiB, 2 * GiB, strategy="boot", online="online_movable")
    for k in range(8):                                      # scattered single blocks
        m.add_memory(0, (8 + 5 * k) * TiB + 128 * MiB, 128 * MiB, online="online_movable")
    present = (2 * GiB + 3 * GiB + 8 * 128 * MiB) >> 12
    rss = _mapping_rss(addr, length)
    assert present * 16 <= rss <= 2 * present * 16 + 8 * MiB, (rss, present * 16)
    m.offline_and_remove_memory(48 * TiB, 2 * GiB)
    assert _mapping_rss(addr, length) <= rss - (2 * GiB >> 12) * 16 + 4 * MiB


def test_import_is_jit_free():
    # `import pagecore` stays light: no numba, no matplotlib, no dask (how long it takes
    # is measured in benchmarks/, not asserted here: the machines are noisy)
    code = ("import sys; import pagecore; "
            "print(*[m in sys.modules for m in ('numba', 'matplotlib', 'dask')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.stdout.split() == ["False", "False", "False"]


def test_free_lists_narrow_and_wide_agree():
    """Free lists keep 4-byte offsets while a zone's free blocks lie in one aligned window
    of 2^32 pfns (16 TiB of 4 KiB pages) and widen to 8-byte pfns when one does not: the
    same memory at the top of the second window (pfns up to 2^33 - 1), filled, aged and
    compacted, leaves the same pages and lists, in list order, with lists narrow or
    widened from the start; memory added past the window widens the zone's lists, which
    still agree with the pages."""
    from pagecore.compaction import compact_zone
    from pagecore.workload import Workload
    machines = []
    for widen in (False, True):
        m = vm(phys_bits=46)
        if widen:
            for z in m.zones():
                z.free_area._widen()
        m.add_memory(0, 32 * TiB - 1 * GiB, 1 * GiB, online="online_movable")
        Workload(fill=0.5, orders={0: 0.8, 3: 0.2}, age_rounds=1, seed=5).apply(m, 0, "Movable")
        compact_zone(m, m.zone(0, P.ZONE_MOVABLE), -1)
        machines.append(m)
    narrow, wide = machines
    assert not any(z.free_area.wide for z in narrow.zones())
    assert all(z.free_area.wide for z in wide.zones())
    top = (32 * TiB) >> 12
    assert narrow.mem_map[top - (1 * GiB >> 12):top].tobytes() == \
        wide.mem_map[top - (1 * GiB >> 12):top].tobytes()
    orders = range(narrow.arch.nr_page_orders)
    for za, zb in zip(narrow.zones(), wide.zones()):
        for mt in range(P.MIGRATE_TYPES):
            for o in orders:
                np.testing.assert_array_equal(za.free_area.blocks(mt, o),
                                              zb.free_area.blocks(mt, o))
    fa = narrow.zone(0, P.ZONE_MOVABLE).free_area
    listed = np.concatenate([fa.blocks(mt, o) for mt in range(P.MIGRATE_TYPES) for o in orders])
    assert fa.base == 2**32 and listed.max() > 2**33 - 2**18   # near the window's top
    narrow.add_memory(0, 32 * TiB, 1 * GiB, online="online_movable")     # the next window
    assert fa.wide and not narrow.zone(0, P.ZONE_NORMAL).free_area.wide
    for mt in range(P.MIGRATE_TYPES):
        for o in orders:
            pfns = fa.blocks(mt, o)
            assert (narrow.mem_map["page_type"][pfns] == P.PGTY_BUDDY).all()
            assert (narrow.mem_map["order"][pfns] == o).all()
    assert sum(len(fa.blocks(mt, o)) << o for mt in range(P.MIGRATE_TYPES)
               for o in orders) == fa.nr_free_pages(True)
