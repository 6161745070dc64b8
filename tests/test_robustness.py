"""No public call can corrupt the machine (issue 14): one test per reported misuse, each
of which corrupted the model or raised from deep inside before; Machine.check() against
deliberate corruptions; allocations that survive migration; the rollback contract of
offline_and_remove_memory().

Every refusal must be a PagecoreError naming the value and the rule, and leave
Machine.snapshot() as it was (conftest.assert_fails_unchanged); every success must leave
Machine.check() passing.
"""
import numpy as np
import pytest

from conftest import assert_fails_unchanged, small_vm
from pagecore import (BusyError, ConfigError, GiB, GranularityError, InvariantError, Machine,
                      MachineConfig, MiB, NodeConfig, PagecoreError, StateError)
from pagecore.kernels import page as P
from pagecore.machine import MEM_OFFLINE, MEM_ONLINE
from pagecore.strategies import AddUnit, MemmapStrategy

HOT = 4 * GiB
N = 32768                   # x86_64: 128 MiB blocks of 4 KiB pages
B = 32                      # the block at HOT: 4 GiB / 128 MiB


def fresh():
    m = Machine()           # the default 2 GiB x86_64 VM the issue used
    m.check()
    return m


# ---- the table, row by row ---------------------------------------------------
def test_add_memory_online_offline_leaves_the_blocks_offline():
    """online="offline" is the auto-online policy "offline" (memhp_default_state): the
    add succeeds and onlines nothing. It used to raise ConfigError after adding."""
    m = fresh()
    total = m.mem_total_pages
    m.add_memory(0, HOT, 128 * MiB, online="offline")
    assert m.blocks["state"][B] == MEM_OFFLINE
    assert m.mem_total_pages == total
    m.check()


def test_add_memory_bad_online_type_adds_nothing():
    m = fresh()
    e = assert_fails_unchanged(m, ConfigError, m.add_memory, 0, HOT, 128 * MiB, online="onlin")
    assert "'onlin'" in str(e)
    assert not m.ranges and m.blocks["state"][B] == 0


def test_online_the_same_block_twice_in_one_call():
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB)
    e = assert_fails_unchanged(m, StateError, m.online_pages_blocks, [B, B], "online_movable")
    assert f"memory block {B}" in str(e) and "twice" in str(e)
    m.online_pages_blocks([B], "online_movable")
    mov = m.zone(0, P.ZONE_MOVABLE)
    # one block: present = spanned = 32768 pages; managed = 32768 - 512 vmemmap pages
    # (2 MiB of struct pages = 32768 * 64 B / 4 KiB), the "block" strategy
    assert (mov.present_pages, mov.spanned_pages, mov.managed_pages) == (N, N, N - 512)
    m.offline_memory_block(B)
    m.check()


def test_double_free_in_one_call():
    m = fresh()
    free = m.mem_free_pages
    p = int(m.alloc_pages(0, 0, "kernel", 1)[0])
    e = assert_fails_unchanged(m, StateError, m.free_pages, [p, p])
    assert f"{p:#x}" in str(e) and "twice" in str(e)
    assert m.free_pages([p]) == 1
    assert m.mem_free_pages + m.free_pcp_pages == free        # the refill's rest waits there
    # and once more, in a second call: the page is free now (refcount 0)
    e = assert_fails_unchanged(m, StateError, m.free_pages, [p])
    assert "refcount 0" in str(e)
    m.check()


def test_free_reserved_kernel_pages():
    """[16 MiB, 64 MiB) is the kernel image and memblock (kernel_reserved = 48 MiB at
    CONFIG_PHYSICAL_START = 16 MiB): 12288 PG_reserved pages, which the kernel's
    free_pages_prepare() reports as "Bad page state"."""
    m = fresh()
    e = assert_fails_unchanged(m, StateError, m.free_pages, range(m.pfn(16 * MiB), m.pfn(64 * MiB)))
    assert "PG_reserved" in str(e) and f"{m.pfn(16 * MiB):#x}" in str(e)


def test_free_boot_memmap_page():
    """The boot memmap is memblock memory at the top of node 0: granule kind "memblock"."""
    m = fresh()
    kind, pfn, _, _ = next(v for v in m.vmemmap_granules.values() if v[0] == "memblock")
    e = assert_fails_unchanged(m, StateError, m.free_pages, [pfn])
    assert "PG_reserved" in str(e)


def test_free_buddy_backed_vmemmap_and_page_table():
    """A boot-strategy add at 64 GiB: its memmap leaf (2 MiB) and its PMD table (x86: one
    per 1 GiB of vmemmap = 64 GiB of memory; [0, 64 GiB) has the boot one) come from the
    buddy, tagged OWNER_VMEMMAP."""
    m = fresh()
    m.add_memory(0, 64 * GiB, 128 * MiB, strategy="boot")
    kind, pfn, _, _ = next(v for v in m.vmemmap_granules.values() if v[0] == "buddy")
    e = assert_fails_unchanged(m, StateError, m.free_pages, [pfn])
    assert "vmemmap" in str(e)
    table = next(p for p in m.vmemmap_tables.values() if p >= 0)
    e = assert_fails_unchanged(m, StateError, m.free_pages, [table])
    assert "page type" in str(e)


def test_free_self_hosted_vmemmap_page_of_an_offline_v3_block():
    """Seed v3: the first page of an offline "range" block is its vmemmap head
    (PGTY_VMEMMAP, refcount 1 by definition)."""
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB, strategy="range")
    s = m.pfn(HOT)
    assert m.mem_map["page_type"][s] == P.PGTY_VMEMMAP
    assert_fails_unchanged(m, StateError, m.free_pages, [s])
    m.online_memory_block(B, "online_movable")
    assert_fails_unchanged(m, StateError, m.free_pages, [s])


def test_free_a_tail_and_a_free_page():
    m = fresh()
    h = int(m.alloc_pages(0, 3, "kernel", 1)[0])
    e = assert_fails_unchanged(m, StateError, m.free_pages, [h + 1])
    assert "tail" in str(e)
    fa = m.zone(0, P.ZONE_DMA32).free_area
    free_head = int(next(fa.blocks(mt, o)[0] for o in range(10, -1, -1)
                         for mt in range(3) if len(fa.blocks(mt, o))))
    assert_fails_unchanged(m, StateError, m.free_pages, [free_head])
    assert m.free_pages([h]) == 8          # an order-3 block
    m.check()


def _seed_v3_behind_a_boot_block():
    """Node 0 boots with [0, 2 GiB), block 32 and block 64: its boot memmap goes top-down
    from 8 GiB + 128 MiB (block 64), so boot block 32 holds no reserved page and can be
    offlined. Blocks 33-35 are then added as one seed v3 range on node 1."""
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB), (HOT, 128 * MiB),
                                                       (8 * GiB, 128 * MiB)]),
                                     NodeConfig(boot=[])]))
    m.offline_memory_block(B)
    m.add_memory(1, HOT + 128 * MiB, 384 * MiB, strategy="range")
    m.check()
    return m


def test_seed_v3_removal_checks_every_range_it_touches():
    """SeedRange.check_remove() looked at the range at the removal's start only (boot
    memory: none) and the removal tore sections down before raising
    'altmap not fully unmapped'. The v3 range 33-35 must be removed whole."""
    m = _seed_v3_behind_a_boot_block()
    e = assert_fails_unchanged(m, GranularityError, m.remove_memory, HOT, 256 * MiB)
    assert "check_hotplug_granularity" in str(e)
    m.remove_memory(HOT + 128 * MiB, 384 * MiB)       # exactly the added range
    m.remove_memory(HOT, 128 * MiB)                   # and the boot block on its own
    assert m.blocks["state"][B:B + 4].tolist() == [0, 0, 0, 0] and not m.ranges
    m.check()


def test_zone_span_shrinks_over_a_boot_block_in_zone_movable():
    """The issue's sequence: boot block 1 re-onlined into ZONE_MOVABLE, blocks 32-34 added
    movable, 34 then 33 offlined. shrink_zone_span() (mm/memory_hotplug.c) moves the zone
    end to the last online subsection of the zone below the removed block: block 32's,
    so ZONE_MOVABLE = [block 1, block 33) with a hole: start 32768 (block 1 = 128 MiB /
    4 KiB), end 33 * 32768 = 1081344, spanned 1048576, present 2 * 32768 = 65536."""
    m = fresh()
    m.offline_memory_block(1)
    m.online_memory_block(1, "online_movable")
    m.add_memory(0, HOT, 384 * MiB, online="online_movable")
    m.offline_memory_block(34)
    m.offline_memory_block(33)
    mov = m.zone(0, P.ZONE_MOVABLE)
    assert (mov.zone_start_pfn, mov.zone_end_pfn) == (N, 33 * N)
    assert (mov.present_pages, mov.spanned_pages) == (2 * N, 1048576)
    m.check()
    # the rest of the zone goes: block 32 (the end), then block 1 (the last)
    m.offline_memory_block(32)
    assert (mov.zone_start_pfn, mov.spanned_pages) == (N, N)
    m.offline_memory_block(1)
    assert (mov.zone_start_pfn, mov.spanned_pages, mov.present_pages) == (0, 0, 0)
    m.check()


def test_readme_snippet_alloc_offline_free():
    """The README's library snippet: the allocation follows its pages when offlining
    migrates them (owner tag, page_owner style), so free_pages(heads) frees them all."""
    m = Machine(MachineConfig(arch="x86_64", kernel=(6, 12)))
    before = m.meminfo()
    m.add_memory(0, 4 * GiB, 128 * MiB, strategy="boot")
    m.online_memory_block(32, "online")
    heads = m.alloc_pages(0, 0, "movable", count=10_000)
    first = np.asarray(heads).copy()
    rep = m.offline_memory_block(32)
    assert rep["migrated"] == 10_000                       # they all sat in block 32
    now = m.find_allocation(heads)
    assert len(now) == 10_000 and not np.isin(now, first).any()
    assert m.free_pages(heads) == 10_000
    # block 32 is offline again and its memmap (boot strategy: 2 MiB from the buddy)
    # still allocated: MemTotal is back, MemFree + the pcp lists' pages 2 MiB = 2048 kB
    # lower (the lists hold the rest of the refills, free but not in MemFree)
    after = m.meminfo()
    assert after["MemTotal"] == before["MemTotal"]
    assert before["MemFree"] - after["MemFree"] - 4 * m.free_pcp_pages == 2048
    e = assert_fails_unchanged(m, StateError, m.free_pages, heads)
    assert "no allocated block left" in str(e)
    m.check()


def test_allocation_slices_are_plain_pfns():
    m = fresh()
    heads = m.alloc_pages(0, 0, "kernel", 10)
    part = heads[:4]
    assert part.owner is None and heads.owner is not None
    assert m.free_pages(part) == 4
    assert m.free_pages(heads) == 6                         # what is left of it
    assert len(m.find_allocation(heads)) == 0


def test_machine_config_rules():
    e = pytest.raises(ConfigError, Machine, MachineConfig(block_size=4 * 2 ** 40)).value
    assert "MAX_BLOCK_SIZE" in str(e)
    e = pytest.raises(ConfigError, Machine, MachineConfig(struct_page_size=4096)).value
    assert "struct_page_size=4096" in str(e)
    # 256 B struct pages on 2 GiB: 32 MiB of memmap; boots and keeps memory
    m = Machine(MachineConfig(struct_page_size=256))
    assert m.mem_total_pages > 0
    m.check()
    with pytest.raises(ConfigError, match="phys_bits"):
        Machine(phys_bits=40.0)
    with pytest.raises(ConfigError, match="not a NodeConfig"):
        Machine(nodes=[(0, GiB)])
    with pytest.raises(ConfigError, match="unknown MachineConfig field"):
        Machine(block_sz=128 * MiB)
    with pytest.raises(ConfigError, match="no page to the buddy"):
        # 2 MiB of RAM: the memblock memmap of its section (128 MiB * 64 B / 4 KiB = 2 MiB)
        # takes all of it
        Machine(nodes=[NodeConfig(boot=[(0, 2 * MiB)])])


class _BadPlan(MemmapStrategy):
    name, kernel, description = "bad-plan", (6, 12), "test"

    def __init__(self, units):
        self.units = units

    def plan(self, machine, start_pfn, nr_pages):
        return self.units(start_pfn, nr_pages)


@pytest.mark.parametrize("units, rule", [
    (lambda s, n: [AddUnit(s, n // 2)], "not the whole"),                  # a gap at the end
    (lambda s, n: [AddUnit(s + 512, n - 512)], "does not continue"),       # not block-aligned
    (lambda s, n: [AddUnit(s, n, altmap_free=n + 1)], "altmap_free"),      # altmap > unit
    (lambda s, n: [AddUnit(s, n, altmap_free=512, waste=513)], "waste"),   # waste > altmap
    (lambda s, n: [(s, n)], "not an AddUnit"),
    (lambda s, n: [], "no AddUnit"),
])
def test_user_strategy_plan_is_checked(units, rule):
    m = fresh()
    e = assert_fails_unchanged(m, ConfigError, m.add_memory, 0, HOT, 256 * MiB,
                               strategy=_BadPlan(units))
    assert rule in str(e)


@pytest.mark.parametrize("block", [32.5, "32", 3.0, True, None, np.float64(32)])
def test_block_ids_must_be_integers(block):
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB)
    e = assert_fails_unchanged(m, ConfigError, m.online_memory_block, block)
    assert repr(block) in str(e)
    assert_fails_unchanged(m, ConfigError, m.offline_memory_block, block)


def test_numpy_integer_block_ids_are_fine():
    m = fresh()
    m.add_memory(0, HOT, 256 * MiB)
    m.online_memory_block(np.int64(B), "online_movable")
    m.online_pages_blocks(np.array([B + 1], dtype=np.uint32), "online_movable")
    m.offline_memory_block(np.int32(B + 1))
    m.check()


@pytest.mark.parametrize("ot", [7, 0, -1, 2.0, "offline", "movable", None])
def test_online_type_must_be_an_mmop(ot):
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB)
    e = assert_fails_unchanged(m, ConfigError, m.online_memory_block, B, ot)
    assert "online type" in str(e)


def test_mmop_values_are_accepted():
    """mhp_online_type_from_str() maps the names to MMOP_ONLINE (1), MMOP_ONLINE_KERNEL
    (2), MMOP_ONLINE_MOVABLE (3); the values themselves work too."""
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB)
    m.online_memory_block(B, 3)
    assert m.blocks["zone"][B] == P.ZONE_MOVABLE


@pytest.mark.parametrize("call", [
    lambda m: m.add_memory(0, 4.0 * GiB, 128 * MiB),
    lambda m: m.add_memory(0, HOT, "128M"),
    lambda m: m.add_memory(True, HOT, 128 * MiB),
    lambda m: m.alloc_pages(0, 0, "kernel", count=-1),
    lambda m: m.alloc_pages(0, 0, "kernel", count=1.5),
    lambda m: m.alloc_pages(0, 11, "kernel"),
    lambda m: m.alloc_pages(0, 0, "kernel", owner=-3),
    lambda m: m.alloc_pages(0, 0, "kernel", owner=2 ** 64),
    lambda m: m.alloc_pages(0, 0, "kernel", owner=2),           # OWNER_VMEMMAP
    lambda m: m.alloc_pages(0, 0, 3),
    lambda m: m.free_pages([m.max_pfn + 10]),
    lambda m: m.free_pages([-1]),
    lambda m: m.free_pages([1.5]),
    lambda m: m.free_pages("12"),
    lambda m: m.free_pages(np.zeros((2, 2), dtype=np.int64)),
    lambda m: m.free_pages([m.pfn(HOT)]),                        # not present
    lambda m: m.remove_memory(HOT, 128.0 * MiB),
    lambda m: m.offline_and_remove_memory(HOT, 128 * MiB),        # not present
    lambda m: m.valid_zones(B),                                   # not present
    lambda m: m.valid_zones(-1),
    lambda m: m.fmt_range("0", 1),
    lambda m: m.fmt_range(0, 1.5),
])
def test_bad_arguments_raise_pagecore_errors(call):
    m = fresh()
    assert_fails_unchanged(m, PagecoreError, call, m)


def test_offline_pages_only_inside_memory_block_offline():
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB, online="online_movable")
    e = assert_fails_unchanged(m, StateError, m.offline_pages, m.pfn(HOT) + 512, N - 512,
                               m.zone(0, P.ZONE_MOVABLE))
    assert "going offline" in str(e)


def test_offline_and_remove_memory_reports_its_partial_progress():
    """Blocks 32 and 33 added and onlined "online" (ZONE_NORMAL); movable pages fill 32,
    a kernel page pins 33. offline_and_remove_memory() offlines 32 (migrating its pages),
    fails on 33 (has_unmovable_pages(): -EBUSY) and re-onlines 32 as online_kernel
    (try_reonline_memory_block(): it was not in ZONE_MOVABLE), as the kernel does. The
    machine is consistent, not as it was: the error says what was done."""
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB, online="online")
    mov = m.alloc_pages(0, 0, "movable", 1000)              # into block 32 first (Normal)
    assert (np.asarray(mov) // N == B).all()
    m.add_memory(0, HOT + 128 * MiB, 128 * MiB, online="online")
    pin = m.alloc_pages(0, 0, "kernel", 20000)
    assert (np.asarray(pin) // N == B + 1).any()
    with pytest.raises(BusyError) as info:
        m.offline_and_remove_memory(HOT, 256 * MiB)
    e = info.value
    assert e.partial == [(B, "online_kernel")] and e.migrated == 1000
    assert "re-onlined" in str(e)
    assert m.blocks["state"][B:B + 2].tolist() == [MEM_ONLINE, MEM_ONLINE]
    assert m.blocks["online_type"][B] == 2                    # MMOP_ONLINE_KERNEL
    assert len(m.find_allocation(mov)) == 1000
    m.check()
    assert m.free_pages(mov) == 1000 and m.free_pages(pin) == len(pin)
    m.check()


# ---- Machine.check() catches each kind of corruption -----------------------------------
def _busy_machine():
    m = small_vm()
    m.add_memory(0, HOT, 512 * MiB, online="online_movable")
    m.add_memory(0, HOT + 512 * MiB, 256 * MiB, strategy="boot", online="online")
    m.alloc_pages(0, 0, "movable", 5000)
    m.alloc_pages(0, 2, "kernel", 300)
    m.check()
    return m


def _some_free_head(m, zid=P.ZONE_MOVABLE, order=None):
    fa = m.zone(0, zid).free_area
    for o in ([order] if order is not None else range(fa.nr_orders - 1, -1, -1)):
        for mt in range(P.MIGRATE_TYPES):
            h = fa.blocks(mt, o)
            if len(h):
                return int(h[0]), o, mt
    raise AssertionError("no free block")


def _corrupt_refcount(m):
    h, o, _ = _some_free_head(m)
    m.mem_map["refcount"][h + (1 << o) - 1] = 1


def _corrupt_managed(m):
    m.zone(0, P.ZONE_MOVABLE).managed_pages += 1


def _corrupt_present(m):
    m.zone(0, P.ZONE_NORMAL).present_pages -= 1


def _corrupt_span(m):
    z = m.zone(0, P.ZONE_MOVABLE)
    z.spanned_pages -= N                     # the last online block falls outside


def _corrupt_wide_span(m):
    z = m.zone(0, P.ZONE_MOVABLE)
    z.spanned_pages += N                     # ends in memory that is not online


def _corrupt_unmerged(m):
    h, o, mt = _some_free_head(m, order=m.arch.max_page_order)
    fa = m.zone(0, P.ZONE_MOVABLE).free_area
    fa.py_remove(h)
    fa.py_add(h, o - 1, mt)
    fa.py_add(h + (1 << (o - 1)), o - 1, mt)


def _corrupt_overlap(m):
    h, o, mt = _some_free_head(m, order=m.arch.max_page_order)
    fa = m.zone(0, P.ZONE_MOVABLE).free_area
    fa.py_add(h + 1, 0, mt)                  # a page of the block listed on its own too


def _corrupt_migratetype(m):
    h, o, mt = _some_free_head(m)
    m.pageblock_flags[h >> m.arch.pageblock_order] = P.MIGRATE_UNMOVABLE if mt else P.MIGRATE_MOVABLE


def _corrupt_isolated(m):
    h, _, _ = _some_free_head(m)
    m.pageblock_flags[h >> m.arch.pageblock_order] |= P.PB_migrate_isolate


def _corrupt_altmap(m):
    m.blocks["altmap_alloc"][B] -= 512


def _corrupt_granule(m):
    g = next(iter(k for k, v in m.vmemmap_granules.items() if v[0] == "buddy"))
    del m.vmemmap_granules[g]


def _corrupt_double_backing(m):
    g1, g2 = [k for k, v in m.vmemmap_granules.items() if v[0] == "buddy"][:2]
    m.vmemmap_granules[g2] = m.vmemmap_granules[g1]


def _corrupt_nr_memmap(m):
    m.nr_memmap_pages += 1


def _corrupt_block_state(m):
    m.blocks["state"][B] = MEM_OFFLINE


def _corrupt_page_zone(m):
    p = m.pfn(HOT) + 4096
    m.mem_map["flags"][p] = (m.mem_map["flags"][p] & np.uint32(P.FLAGS_MASK)) | \
        np.uint32(P.ZONE_NORMAL << P.ZONES_PGSHIFT)


def _corrupt_tail(m):
    h = int(m.alloc_pages(0, 2, "kernel", 1)[0])
    m.mem_map["flags"][h] &= ~np.uint32(P.PG_head)


def _corrupt_stray_buddy(m):
    p = int(m.alloc_pages(0, 0, "kernel", 1)[0])
    m.mem_map["page_type"][p] = P.PGTY_BUDDY


def _corrupt_range(m):
    m.ranges.pop(next(iter(m.ranges)))


def _corrupt_altmap_leaf(m):
    """Block 32's one 2 MiB leaf ([s, s + 512), V = 512) said to live just past its V."""
    g, (kind, pfn, order, owner) = next((k, v) for k, v in m.vmemmap_granules.items()
                                        if v[0] == "altmap" and v[3] == B)
    m.vmemmap_granules[g] = (kind, pfn + 512, order, owner)


def _corrupt_vmemmap_page(m):
    s = m.pfn(HOT)
    m.mem_map["flags"][s + 7] &= ~np.uint32(P.PG_vmemmap_self_hosted)


@pytest.mark.parametrize("corrupt", [
    _corrupt_refcount, _corrupt_managed, _corrupt_present, _corrupt_span, _corrupt_wide_span,
    _corrupt_unmerged, _corrupt_overlap, _corrupt_migratetype, _corrupt_isolated,
    _corrupt_altmap, _corrupt_granule, _corrupt_double_backing, _corrupt_nr_memmap,
    _corrupt_block_state, _corrupt_page_zone, _corrupt_tail, _corrupt_stray_buddy,
    _corrupt_range, _corrupt_altmap_leaf, _corrupt_vmemmap_page,
])
def test_check_finds_the_corruption(corrupt):
    m = _busy_machine()
    corrupt(m)
    with pytest.raises(InvariantError) as info:
        m.check()
    assert str(info.value).startswith("Machine.check(): ")


@pytest.mark.parametrize("strategy", ["boot", "range", "block-5.13", "block-6.6", "block", "force"])
@pytest.mark.parametrize("arch", ["x86_64", "ppc64-64k", "arm64-64k", "s390x"])
def test_check_passes_through_a_lifecycle(strategy, arch):
    m = small_vm(arch=arch, boot=GiB)
    bs = m.block_size
    try:
        m.add_memory(0, HOT, 3 * bs, strategy=strategy, online="online_movable")
    except PagecoreError:              # "range" needs x86-like geometry
        assert strategy == "range" and arch != "x86_64"
        return
    m.check()
    heads = m.alloc_pages(0, 1, "movable", 300)
    m.check()
    b = m.block_id(m.pfn(HOT))
    m.offline_memory_block(b + 2)
    m.check()
    m.free_pages(heads)
    for i in range(2):
        m.offline_memory_block(b + i)
    m.check()
    m.remove_memory(HOT, 3 * bs)
    m.check()


def test_readme_python_snippets_run_as_written(capsys):
    """Both ```python blocks of the README, executed verbatim (the library snippet frees
    the migrated allocation and runs check())."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    out = " ".join(capsys.readouterr().out.split())
    assert "[4096 0 0 0 0 0 0 0]" in out          # the strategy snippet's printed line
    # MemTotal +128 MiB = 131072 kB; MemFree +128 MiB - 2 MiB of buddy memmap - 2 MiB on
    # the pcp list (the order-9 memmap block's refill takes max(63 >> 9, 2) = 2 blocks)
    # = 126976 kB
    assert "{'MemTotal': 131072, 'MemFree': 126976," in out


def test_merge_across_pageblocks_retags_the_buddy():
    """__free_one_page() (v6.9+, mm/page_alloc.c): merging with a free buddy of another
    mergeable migratetype at order >= pageblock_order retags the buddy's pageblocks to the
    freed block's type (change_pageblock_range()). Found by the state machine's check():
    on ppc64-64k an order-8 block was left over pageblocks [UNMOVABLE x2, MOVABLE x6]."""
    m = fresh()
    m.add_memory(0, HOT, 128 * MiB, online="online_movable")
    fa = m.zone(0, P.ZONE_MOVABLE).free_area
    pbo = m.arch.pageblock_order                      # 9: 512 pages; MAX_PAGE_ORDER 10
    h = int(fa.blocks(P.MIGRATE_MOVABLE, 10)[0])
    fa.py_remove(h)
    m.pageblock_flags[(h >> pbo) + 1] = P.MIGRATE_UNMOVABLE
    fa.py_free_one_page(h + 512, 9)                   # the upper half: UNMOVABLE list
    assert h + 512 in fa.blocks(P.MIGRATE_UNMOVABLE, 9)
    fa.py_free_one_page(h, 9)                         # MOVABLE: merges, takes the buddy
    assert h in fa.blocks(P.MIGRATE_MOVABLE, 10)
    assert m.pageblock_flags[(h >> pbo) + 1] == P.MIGRATE_MOVABLE
    m.check()


@pytest.mark.parametrize("call", [
    lambda m: __import__("pagecore.procfs").procfs.pageblock_counts(m, 3),
    lambda m: __import__("pagecore.procfs").procfs.pageblock_counts(m, Machine().zone(0, 1)),
    lambda m: __import__("pagecore.compaction").compaction.compact_zone(m, m.zone(0, 1), 2.5),
    lambda m: __import__("pagecore.compaction").compaction.compact_zone(m, (0, "Nowhere"), 3),
    lambda m: __import__("pagecore.compaction").compaction.alloc_contig_range(m, 10.5, 20),
    lambda m: __import__("pagecore.compaction").compaction.alloc_contig_pages(m, 512.0),
    lambda m: __import__("pagecore.compaction").compaction.free_contig_range(m, "a", 3),
    lambda m: __import__("pagecore.compaction").compaction.count_gigantic_pages(m, 9.0),
    lambda m: __import__("pagecore.scenario").scenario.load("default").run("boot", stop_after="1"),
    lambda m: m.zone(5, 1),
    lambda m: m.zone(0, 4),
    lambda m: m.blocks_in(1.5, 3),
    lambda m: m.range_at(m.max_pfn),
    lambda m: m.zone_for_pfn_range(7, 0, 0, 10),
    lambda m: m.pfn(1.5),
])
def test_views_and_scenarios_refuse_bad_arguments(call):
    """The views, compaction and scenario entry points: PagecoreError, nothing changed."""
    m = fresh()
    assert_fails_unchanged(m, PagecoreError, call, m)


def test_scenario_run_check_stops_at_a_broken_invariant():
    """Scenario.run(check=True): an invariant broken during a step (here by on_step, which
    runs before the check) ends the run with InvariantError instead of a recorded error."""
    from pagecore.scenario import load

    def corrupt(run, rec):
        if rec["index"] == 1:
            run.machine.zone(0, P.ZONE_DMA32).managed_pages += 1
    with pytest.raises(InvariantError, match="managed_pages"):
        load("default").run("block", stop_after=1, on_step=corrupt, check=True)
    run = load("default").run("block", stop_after=1, on_step=corrupt)     # unchecked: runs
    assert run.error is None
