"""Kernel parity of the engine (pagecore.machine): the worked numbers of
docs/model.md (architectures, block size, strategies, accounting, online, offline, removal).

Every expected value is derived in a comment from the model's (or the kernel's) arithmetic;
none was obtained by running pagecore. Shorthands: N = pages per memory block, V = pages
of self-hosted memmap at the start of a block, S_page = sizeof(struct page) = 64,
PPS = PAGES_PER_SECTION.
"""
import errno

import pytest

from conftest import assert_fails_unchanged, small_vm
from pagecore import (BusyError, ConfigError, GiB, GranularityError, Machine, MachineConfig,
                      MiB, NodeConfig, OutOfMemoryError, RangeError, StateError, TiB,
                      get_arch)
from pagecore.kernels import page as P
from pagecore.arch import check_block_size
from pagecore.machine import (MEM_OFFLINE, MEM_ONLINE, MMOP_ONLINE_KERNEL,
                              SECTION_IS_ONLINE, SECTION_MARKED_PRESENT, SECTION_USE_VMEMMAP)
from pagecore.strategies import Block513

KB = 1024
X86_N = 128 * MiB // 4096            # 32768 pages per 128 MiB block
X86_V = X86_N * 64 // 4096           # 512 pages = 2 MiB of struct pages per block
HOT = 4 * GiB                        # hot-add base: above the 2 GiB of boot RAM, ZONE_NORMAL


def normal(m, nid=0):
    return m.zone(nid, P.ZONE_NORMAL)


def movable(m, nid=0):
    return m.zone(nid, P.ZONE_MOVABLE)


# ---------------------------------------------------------------------------------------
# 1. docs/model.md#accounting: hot-add then online one 128 MiB block on x86_64
# ---------------------------------------------------------------------------------------
SELF_HOSTED = ["block", "block-5.13", "block-6.6", "range", "force"]


@pytest.mark.parametrize("strategy", ["boot"] + SELF_HOSTED)
def test_spec_6_5_table(vm, strategy):
    m = vm
    blk = m.block_id(m.pfn(HOT))
    z = normal(m)
    # MemFree + the per-cpu lists: the boot strategy's order-9 memmap block comes through
    # rmqueue_pcplist(), whose refill takes max(batch >> 9, 2) = 2 blocks and leaves one
    # on the list, free but not in MemFree (checked below)
    mem = lambda: (m.meminfo()["MemTotal"],                              # noqa: E731
                   m.meminfo()["MemFree"] + m.free_pcp_pages * m.arch.page_size // KB)
    assert m.block_size == 128 * MiB          # docs/model.md#memory-block-size: boot ends at 2 GiB < 64 GiB
    assert (z.present_pages, z.spanned_pages) == (0, 0)   # 2 GiB of boot RAM is DMA/DMA32
    tables0 = m.pagetable_pages

    t0, f0 = mem()
    m.add_memory(0, HOT, 128 * MiB, strategy=strategy)
    t1, f1 = mem()
    # The 4 GiB block shares the first 64 GiB vmemmap window with boot RAM (docs/model.md#hot-add), so its
    # PMD-table page exists already; the table excludes page-table pages anyway.
    assert m.pagetable_pages == tables0
    boot = strategy == "boot"
    # add: traditional takes the memmap (512 pages = 2 MiB = 2048 kB) from the buddy.
    assert (t1 - t0, f1 - f0) == ((0, -2 * MiB // KB) if boot else (0, 0))
    assert m.free_pcp_pages == (512 if boot else 0)
    row = m.blocks[blk]
    assert row["state"] == MEM_OFFLINE
    assert row["nr_vmemmap"] == (0 if boot else X86_V)
    assert row["waste"] == 0                  # x86_64 never needs force padding (docs/model.md#strategies-by-kernel-generation)

    m.online_memory_block(blk, "online")
    t2, f2 = mem()
    # online: +N (128 MiB = 131072 kB) traditional, +(N - V) (126 MiB = 129024 kB) self-hosted.
    gain = 128 * MiB // KB if boot else 126 * MiB // KB
    assert (t2 - t1, f2 - f1) == (gain, gain)
    # net: traditional MemTotal +128 MiB / MemFree +126 MiB; self-hosted +126 / +126.
    assert (t2 - t0, f2 - f0) == ((128 * MiB // KB, 126 * MiB // KB) if boot
                                  else (126 * MiB // KB, 126 * MiB // KB))
    # zone: present and spanned +32768 both ways; present - managed = V for self-hosted.
    assert z.zone_start_pfn == HOT >> 12 == 0x100000
    assert (z.present_pages, z.spanned_pages) == (X86_N, X86_N)
    assert z.present_pages - z.managed_pages == (0 if boot else X86_V)
    assert z.managed_pages == X86_N - (0 if boot else X86_V)
    assert m.blocks[blk]["zone"] == P.ZONE_NORMAL

    m.offline_memory_block(blk)
    t3, f3 = mem()
    assert (t3 - t2, f3 - f2) == (-gain, -gain)
    assert (z.present_pages, z.spanned_pages, z.managed_pages) == (0, 0, 0)

    m.remove_memory(HOT, 128 * MiB)
    t4, f4 = mem()
    # remove: traditional frees the 2 MiB memmap back to the buddy; self-hosted: +-0.
    assert (t4 - t3, f4 - f3) == ((0, 2 * MiB // KB) if boot else (0, 0))
    assert (t4, f4) == (t0, f0)
    assert m.blocks[blk]["state"] == 0 and m.blocks[blk]["altmap_alloc"] == 0


def test_spec_6_1_buddy_chunks_of_a_self_hosted_block(vm):
    """docs/model.md#online: a self-hosted 128 MiB block at a 128 MiB-aligned base is freed as one
    order-9 chunk at offset 512 and 31 order-10 chunks (512 + 31*1024 = 32256)."""
    m = vm
    m.add_memory(0, HOT, 128 * MiB, strategy="block", online="online")
    s = m.pfn(HOT)
    fa = normal(m).free_area
    c = fa.counts()
    assert c[P.MIGRATE_MOVABLE, 9] == 1 and c[P.MIGRATE_MOVABLE, 10] == 31
    assert c.sum() == 32
    assert fa.blocks(P.MIGRATE_MOVABLE, 9).tolist() == [s + 512]
    # [s, s+V): refcount 1, PG_vmemmap_self_hosted, not PG_reserved (v6.11+), one
    # MIGRATE_UNMOVABLE pageblock (pageblock_nr_pages = 512 = V).
    vmp = m.mem_map[s:s + X86_V]
    assert (vmp["refcount"] == 1).all()
    assert (vmp["flags"] & P.PG_vmemmap_self_hosted).all()
    assert not (vmp["flags"] & P.PG_reserved).any()
    assert m.pageblock_flags[s >> 9] & P.MIGRATETYPE_MASK == P.MIGRATE_UNMOVABLE
    assert (m.pageblock_flags[(s >> 9) + 1:(s + X86_N) >> 9] == P.MIGRATE_MOVABLE).all()


# ---------------------------------------------------------------------------------------
# 2. seed v3 cover letter: 384 MiB = 3 blocks, per-block calls vs one call
# ---------------------------------------------------------------------------------------
def _vmemmap_run(m, start, nr, nr_sections):
    """mhp_mark_vmemmap_pages(): [start, start+nr) is one Vmemmap run."""
    u = m.mem_map.view(P.PAGE_UNION_DTYPE)
    run = u[start:start + nr]
    assert (run["page_type"] == P.PGTY_VMEMMAP).all()
    assert (run["flags"] & P.PG_reserved).all()          # SetPageVmemmap = type + PG_reserved
    assert run[0]["flags"] & P.PG_head
    assert not (run[1:]["flags"] & P.PG_head).any()
    assert run[0]["vmemmap_head"] == nr_sections         # head: vmemmap_sections
    assert run[0]["vmemmap_pages"] == nr                 # head: vmemmap_pages
    # tails: distance back to the head
    assert run[1:]["vmemmap_head"].tolist() == list(range(1, nr))
    assert u[start + nr]["page_type"] != P.PGTY_VMEMMAP


def test_cover_letter_384m_per_block_calls(vm):
    m = vm
    s = m.pfn(HOT)
    for i in range(3):
        m.add_memory(0, HOT + i * 128 * MiB, 128 * MiB, strategy="range")
    # each block = [512 vmemmap pfns][32256 normal pfns]; each run spans 1 section
    for i in range(3):
        _vmemmap_run(m, s + i * X86_N, X86_V, 1)
    assert m.blocks_in(s, 3 * X86_N)["nr_vmemmap"].tolist() == [512, 512, 512]


def test_cover_letter_384m_one_call(vm):
    m = vm
    s = m.pfn(HOT)
    m.add_memory(0, HOT, 384 * MiB, strategy="range")
    # one run of 3 x 512 = 1536 pages (the letter's "0 - 1533" is a typo for 0..1535)
    _vmemmap_run(m, s, 3 * X86_V, 3)
    # blocks #1 and #2 hold no vmemmap at all
    pt = m.mem_map["page_type"]
    assert not (pt[s + X86_N:s + 3 * X86_N] == P.PGTY_VMEMMAP).any()
    assert m.blocks_in(s, 3 * X86_N)["nr_vmemmap"].tolist() == [1536, 0, 0]
    # SECTION_USE_VMEMMAP is set on every section of the range (docs/model.md#strategies-by-kernel-generation, v3 patch 3/5)
    secs = m.sections[s // 32768:s // 32768 + 3]
    assert (secs & SECTION_USE_VMEMMAP).all()
    # section k's vmemmap PMD comes from the bump allocator: pfn s + 512*k
    backing = sorted(pfn for kind, pfn, _, _ in m.vmemmap_granules.values() if kind == "altmap")
    assert backing == [s, s + 512, s + 1024]
    # online all three: present +3N, managed +3N-1536; the run keeps its Vmemmap type
    t0 = m.mem_total_pages
    m.online_pages_blocks(range(m.block_id(s), m.block_id(s) + 3), "online")
    z = normal(m)
    assert z.present_pages == 3 * X86_N
    assert z.managed_pages == 3 * X86_N - 1536
    assert m.mem_total_pages - t0 == 3 * X86_N - 1536
    _vmemmap_run(m, s, 1536, 3)
    # v3: the vmemmap pageblocks are MIGRATE_MOVABLE like the rest (docs/model.md#strategies-by-kernel-generation)
    assert (m.pageblock_flags[s >> 9:(s >> 9) + 3] & P.MIGRATETYPE_MASK == P.MIGRATE_MOVABLE).all()
    # vmemmap pages join the block's zone (__init_single_page links them)
    zid = (m.mem_map["flags"][s:s + 1536] >> P.ZONES_PGSHIFT) & P.ZONES_MASK
    assert (zid == P.ZONE_NORMAL).all()


# ---------------------------------------------------------------------------------------
# 3. seed v3: 1 GiB in one call, and the removal granularity
# ---------------------------------------------------------------------------------------
def test_v3_one_gib_range_and_granularity(vm):
    m = vm
    s = m.pfn(HOT)
    t0, f0 = m.mem_total_pages, m.mem_free_pages
    m.add_memory(0, HOT, 1 * GiB, strategy="range")
    # 1 GiB = 8 sections of 32768 pages, 512 memmap pages each: 4096 pages, 8 sections
    _vmemmap_run(m, s, 4096, 8)
    u = m.mem_map.view(P.PAGE_UNION_DTYPE)
    assert (u[s]["vmemmap_pages"], u[s]["vmemmap_head"]) == (4096, 8)
    assert m.blocks_in(s, 8 * X86_N)["nr_vmemmap"].tolist() == [4096] + [0] * 7
    # check_hotplug_granularity(): vmemmap_nr_sections(head) * PPS must equal the size
    for start, size in [(HOT, 128 * MiB), (HOT, 512 * MiB), (HOT + 512 * MiB, 512 * MiB),
                        (HOT + 128 * MiB, 896 * MiB)]:
        assert_fails_unchanged(m, GranularityError, m.remove_memory, start, size)
    # an online block is refused first (-EBUSY) and still changes nothing
    m.online_memory_block(m.block_id(s), "online")
    assert_fails_unchanged(m, BusyError, m.remove_memory, HOT, 1 * GiB)
    m.offline_memory_block(m.block_id(s))
    m.remove_memory(HOT, 1 * GiB)
    assert not (m.sections[s // 32768:s // 32768 + 8]).any()
    assert m.nr_memmap_pages == 0
    assert (m.mem_total_pages, m.mem_free_pages) == (t0, f0)
    assert not (m.blocks_in(s, 8 * X86_N)["state"]).any()


def test_v3_eight_gib_first_block_all_vmemmap(vm):
    """docs/model.md#gigantic-pages: 8 GiB in one call -> 64 sections x 512 = 32768 pages = the whole first
    block; onlining it frees nothing (vmemmap_skip_block(): nr_vm == nr), offlining skips
    isolation and migration."""
    m = vm
    s = m.pfn(HOT)
    m.add_memory(0, HOT, 8 * GiB, strategy="range")
    assert m.blocks[m.block_id(s)]["nr_vmemmap"] == X86_N
    assert m.blocks[m.block_id(s) + 1]["nr_vmemmap"] == 0
    b0 = m.block_id(s)
    t0 = m.mem_total_pages
    m.online_memory_block(b0, "online")
    assert m.mem_total_pages == t0                              # managed +0
    assert normal(m).present_pages == X86_N                     # present +N
    m.online_memory_block(b0 + 1, "online")
    assert m.mem_total_pages == t0 + X86_N
    m.offline_memory_block(b0)
    assert normal(m).present_pages == X86_N
    m.offline_memory_block(b0 + 1)
    m.remove_memory(HOT, 8 * GiB)


# ---------------------------------------------------------------------------------------
# 4. force mode and the fallbacks (docs/model.md#strategies-by-kernel-generation)
# ---------------------------------------------------------------------------------------
def test_ppc64_64k_force_wastes_28_pages_per_block():
    m = small_vm("ppc64-64k", boot=1 * GiB)
    a = m.arch
    # 64 KiB pages, 16 MiB sections (256 pages), LMB 256 MiB = 4096 pages
    assert (a.page_size, a.pages_per_section, m.block_size) == (64 * KB, 256, 256 * MiB)
    # memmap 4096 * 64 B = 256 KiB = 4 pages; pageblock 2^5 = 32 pages -> V = 32, waste 28
    n, v, waste, used = 4096, 32, 28, 4
    s = m.pfn(HOT)
    t0 = m.mem_total_pages
    m.add_memory(0, HOT, 512 * MiB, strategy="force", online="online")
    rows = m.blocks_in(s, 2 * n)
    assert rows["nr_vmemmap"].tolist() == [v, v]
    assert rows["waste"].tolist() == [waste, waste]
    assert rows["altmap_alloc"].tolist() == [used, used]
    summ = m.memmap_summary()
    assert (summ["waste_pages"], summ["self_hosted_pages"], summ["boot_memory_pages"]) == \
        (2 * waste, 2 * used, 0)
    assert m.mem_total_pages - t0 == 2 * (n - v)            # managed +(N - V) per block
    z = normal(m)                # ppc64 has no DMA zones: boot RAM and the blocks are Normal
    boot_gap = _boot_gap(small_vm("ppc64-64k", boot=1 * GiB))
    assert z.present_pages - z.managed_pages == boot_gap[P.ZONE_NORMAL] + 2 * v
    # the first free pfn of each block is s + 32 (a whole pageblock of vmemmap + padding)
    for b in range(2):
        bs = s + b * n
        assert m.mem_map[bs + v]["page_type"] == P.PGTY_BUDDY
        assert m.pageblock_flags[bs >> 5] & P.MIGRATETYPE_MASK == P.MIGRATE_UNMOVABLE
    m.offline_memory_block(m.block_id(s))
    m.offline_memory_block(m.block_id(s) + 1)
    m.remove_memory(HOT, 512 * MiB)
    assert m.mem_total_pages == t0


def _boot_gap(m):
    """present - managed per zone of node 0 right after boot."""
    return [z.present_pages - z.managed_pages for z in m.nodes[0].zones]


@pytest.mark.parametrize("strategy", ["block", "block-6.6", "block-5.13"])
def test_ppc64_64k_without_force_falls_back_to_boot_path(strategy):
    m = small_vm("ppc64-64k", boot=1 * GiB)
    s = m.pfn(HOT)
    f0, tables0 = m.mem_free_pages + m.free_pcp_pages, m.pagetable_pages
    m.add_memory(0, HOT, 256 * MiB, strategy=strategy)
    row = m.blocks[m.block_id(s)]
    # V = 4 is not a multiple of pageblock_nr_pages = 32: unsupported, silent fallback
    assert (row["nr_vmemmap"], row["altmap_alloc"], row["waste"]) == (0, 0, 0)
    # the memmap (4 x 64 KiB pages) comes from the buddy of boot memory instead
    assert m.memmap_summary()["boot_memory_pages"] == 4
    assert m.mem_free_pages + m.free_pcp_pages - f0 == -(4 + (m.pagetable_pages - tables0))
    assert not (m.mem_map["page_type"][s:s + 4096] == P.PGTY_VMEMMAP).any()
    m.online_memory_block(m.block_id(s))
    assert normal(m).present_pages - normal(m).managed_pages == _boot_gap(small_vm("ppc64-64k", boot=1 * GiB))[P.ZONE_NORMAL]


@pytest.mark.parametrize("strategy", ["block-5.13", "block", "block-6.6", "force"])
def test_arm64_64k_never_self_hosts(strategy):
    """arm64 64K: block = section = 512 MiB = 8192 pages; memmap 512 KiB is not a multiple
    of PMD_SIZE = 512 MiB. v5.13: the ACPI caller drops the flag; v6.6+: silent fallback;
    force pads V to 8192 = the whole block and the PMD test still fails (docs/model.md#architectures)."""
    m = small_vm("arm64-64k", boot=2 * GiB)
    assert m.block_size == 512 * MiB
    s = m.pfn(HOT)
    m.add_memory(0, HOT, 512 * MiB, strategy=strategy)
    assert m.blocks[m.block_id(s)]["nr_vmemmap"] == 0
    # 8192 * 64 B = 512 KiB = 8 pages of memmap from the buddy
    assert m.memmap_summary()["boot_memory_pages"] == 8


def test_block_5_13_einval_when_the_flag_is_insisted_on():
    """v5.13-6.5 add_memory_resource(): flag set and support fails -> -EINVAL."""
    m = small_vm("arm64-64k", boot=2 * GiB)
    e = assert_fails_unchanged(m, ConfigError, m.add_memory, 0, HOT, 512 * MiB,
                               strategy=Block513(einval=True))
    assert e.errno == errno.EINVAL
    # x86_64: one block passes; two blocks in one call are refused (size != block size)
    x = small_vm()
    x.add_memory(0, HOT, 128 * MiB, strategy=Block513(einval=True))
    assert x.blocks[x.block_id(x.pfn(HOT))]["nr_vmemmap"] == X86_V
    assert_fails_unchanged(x, ConfigError, x.add_memory, 0, HOT + 128 * MiB, 256 * MiB,
                           strategy=Block513(einval=True))


def test_block_5_13_and_6_6_multi_block_add_falls_back(vm):
    """v5.13-6.7: the flag survives only for a one-block range; v6.8 splits per block."""
    m = vm
    s = m.pfn(HOT)
    m.add_memory(0, HOT, 256 * MiB, strategy="block-5.13")
    m.add_memory(0, HOT + 256 * MiB, 256 * MiB, strategy="block-6.6")
    m.add_memory(0, HOT + 512 * MiB, 256 * MiB, strategy="block")
    assert m.blocks_in(s, 6 * X86_N)["nr_vmemmap"].tolist() == [0, 0, 0, 0, X86_V, X86_V]
    # 4 sections of classic memmap = 4 x 512 buddy pages
    assert m.memmap_summary()["boot_memory_pages"] == 4 * X86_V


@pytest.mark.parametrize("strategy,v", [
    # s390x: block = 256 MiB = 65536 pages; memmap 65536 * 64 B = 4 MiB = 1024 pages, a
    # multiple of PMD (segment) 1 MiB and of pageblock_nr_pages 256: supported by the rules,
    # but s390 only has ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE from v6.8 (docs/model.md#architectures), so the
    # v5.13 and v6.6 generations fall back to the classic memmap.
    ("block", 1024), ("block-6.6", 0), ("block-5.13", 0)])
def test_s390x_memmap_on_memory_since_6_8(strategy, v):
    m = small_vm("s390x", boot=1 * GiB)
    assert m.block_size == 256 * MiB
    m.add_memory(0, HOT, 256 * MiB, strategy=strategy)
    row = m.blocks[m.block_id(m.pfn(HOT))]
    assert row["nr_vmemmap"] == v
    # self-hosted: 4 x 1 MiB segment leaves from the altmap; else 1024 buddy pages
    assert row["altmap_alloc"] == v
    assert m.memmap_summary()["boot_memory_pages"] == 1024 - v


@pytest.mark.parametrize("strategy,reserved,self_hosted", [
    # v5.13-6.5: PG_reserved only; v6.0+: PG_vmemmap_self_hosted (66361095129b);
    # v6.11+: PageOffline cleared, not reserved (docs/model.md#accounting)
    ("block-5.13", True, False), ("block-6.6", True, True), ("block", False, True)])
def test_vmemmap_page_state_per_generation(vm, strategy, reserved, self_hosted):
    m = vm
    s = m.pfn(HOT)
    m.add_memory(0, HOT, 128 * MiB, strategy=strategy, online="online_movable")
    f = m.mem_map["flags"][s:s + X86_V]
    assert ((f & P.PG_reserved) > 0).all() == reserved
    assert ((f & P.PG_vmemmap_self_hosted) > 0).all() == self_hosted
    assert (m.mem_map["refcount"][s:s + X86_V] == 1).all()
    # the vmemmap pages join the block's zone (mhp_init_memmap_on_memory())
    assert (((f >> P.ZONES_PGSHIFT) & P.ZONES_MASK) == P.ZONE_MOVABLE).all()
    # they never block offlining, even as PG_reserved in ZONE_MOVABLE: outside the range
    m.offline_memory_block(m.block_id(s))


def test_x86_force_wastes_nothing(vm):
    m = vm
    m.add_memory(0, HOT, 256 * MiB, strategy="force")
    rows = m.blocks_in(m.pfn(HOT), 2 * X86_N)
    # V = 512 is already a multiple of pageblock_nr_pages = 512: padding 0
    assert rows["nr_vmemmap"].tolist() == [X86_V, X86_V]
    assert rows["waste"].tolist() == [0, 0]
    assert m.memmap_summary()["waste_pages"] == 0


# ---------------------------------------------------------------------------------------
# 5. arch presets and the memory block size
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,page,pps,pmd,pb,maxo", [
    # docs/model.md#architectures: PAGE_SIZE, PAGES_PER_SECTION = 2^(SECTION_SIZE_BITS - PAGE_SHIFT), PMD_SIZE,
    # pageblock_order, MAX_PAGE_ORDER
    ("x86_64", 4 * KB, 1 << (27 - 12), 2 * MiB, 9, 10),
    ("arm64-4k", 4 * KB, 1 << (27 - 12), 2 * MiB, 9, 10),
    ("arm64-64k", 64 * KB, 1 << (29 - 16), 512 * MiB, 13, 13),
    ("ppc64-64k", 64 * KB, 1 << (24 - 16), 2 * MiB, 5, 8),
    ("s390x", 4 * KB, 1 << (28 - 12), 1 * MiB, 8, 10),
])
def test_arch_presets(name, page, pps, pmd, pb, maxo):
    a = get_arch(name)
    assert (a.page_size, a.pages_per_section, a.pmd_size, a.pageblock_order,
            a.max_page_order) == (page, pps, pmd, pb, maxo)
    assert a.nr_page_orders == maxo + 1
    # PAGES_PER_SUBSECTION = 2 MiB / PAGE_SIZE, capped at a section
    assert a.pages_per_subsection == min(2 * MiB // page, pps)
    # a section holds the largest buddy block
    assert pps >= 1 << maxo


@pytest.mark.parametrize("name,block", [
    ("arm64-4k", 128 * MiB), ("arm64-64k", 512 * MiB),     # one section, no override
    ("ppc64-64k", 256 * MiB), ("s390x", 256 * MiB),         # LMB; max(rzm, 256 MiB)
])
def test_default_block_sizes(name, block):
    assert get_arch(name).memory_block_size(2 * GiB) == block


@pytest.mark.parametrize("end,is_vm,kernel,expect", [
    (2 * GiB, True, (6, 12), 128 * MiB),          # < 64 GiB
    (63 * GiB, False, (6, 12), 128 * MiB),        # < 64 GiB, bare metal too
    (101 * GiB, True, (6, 12), 1 * GiB),          # VM: largest 2^k <= 2 GiB dividing 101 GiB
    (384 * GiB, False, (6, 12), 2 * GiB),         # bare metal, v5.8+: MAX_BLOCK_SIZE
    (101 * GiB, False, (6, 12), 2 * GiB),         # bare metal, v5.8+: no alignment loop
    (101 * GiB, False, (5, 7), 1 * GiB),          # before v5.8 bare metal aligned too
    (64 * GiB + 128 * MiB, True, (6, 12), 128 * MiB),  # odd end: down to the minimum
    (96 * GiB, True, (6, 12), 2 * GiB),           # 96 GiB = 48 x 2 GiB
])
def test_x86_probe_memory_block_size(end, is_vm, kernel, expect):
    assert get_arch("x86_64").memory_block_size(end, is_vm=is_vm, kernel=kernel) == expect


def test_x86_probe_from_a_booted_machine():
    # a VM whose boot RAM ends at 101 GiB (max_pfn << PAGE_SHIFT, not total RAM)
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB), (100 * GiB, 1 * GiB)])]))
    assert m.block_size == 1 * GiB and m.sections_per_block == 8
    bm = Machine(MachineConfig(is_vm=False,
                               nodes=[NodeConfig(boot=[(0, 1 * GiB), (383 * GiB, 1 * GiB)])]))
    assert bm.block_size == 2 * GiB


@pytest.mark.parametrize("kw", [
    {"block_size": 192 * MiB},                 # 1.5 sections
    {"block_size": 64 * MiB},                  # less than a section
    {"block_size": 384 * MiB},                 # 3 sections: not a power of two
    {"struct_page_size": 12},
    {"struct_page_size": 60},
    {"arch": "sparc64"},
    {"strategy": "no-such-strategy"},
    {"phys_bits": 20},
])
def test_impossible_configs(kw):
    with pytest.raises(ConfigError):
        small_vm(**kw)


def test_check_block_size():
    a = get_arch("x86_64")
    for ok in (128 * MiB, 256 * MiB, 2 * GiB):
        check_block_size(a, ok)
    for bad in (0, 96 * MiB, 3 * 128 * MiB, 128 * MiB + 4096):
        with pytest.raises(ConfigError):
            check_block_size(a, bad)


# ---------------------------------------------------------------------------------------
# 6. errors: a refused call changes nothing
# ---------------------------------------------------------------------------------------
def test_add_errors(vm):
    m = vm
    m.add_memory(0, HOT, 256 * MiB)
    cases = [
        (RangeError, (0, HOT + 512 * MiB + 64 * MiB, 128 * MiB)),   # misaligned start
        (RangeError, (0, HOT + 512 * MiB, 64 * MiB)),               # misaligned size
        (RangeError, (0, HOT + 128 * MiB, 256 * MiB)),              # overlaps the first add
        (RangeError, (0, 1 * GiB, 128 * MiB)),                      # overlaps boot RAM
        (RangeError, (0, 64 * TiB, 128 * MiB)),                     # beyond 46 phys bits
        (RangeError, (0, 64 * TiB - 128 * MiB, 256 * MiB)),         # straddles the end
        (RangeError, (0, HOT + 512 * MiB, 0)),                      # empty
        (ConfigError, (1, HOT + 512 * MiB, 128 * MiB)),             # no node 1
    ]
    for exc, args in cases:
        assert_fails_unchanged(m, exc, m.add_memory, *args)
    assert_fails_unchanged(m, ConfigError, m.add_memory, 0, HOT + 512 * MiB, 128 * MiB,
                           strategy="no-such-strategy")
    assert_fails_unchanged(m, ConfigError, m.add_memory, 0, HOT + 512 * MiB, 128 * MiB,
                           online="online_sideways")


def test_state_errors(vm):
    m = vm
    m.add_memory(0, HOT, 256 * MiB, strategy="block")
    b = m.block_id(m.pfn(HOT))
    assert_fails_unchanged(m, ConfigError, m.online_memory_block, b, "online_sideways")
    assert_fails_unchanged(m, ConfigError, m.online_memory_block, b, "offline")
    assert_fails_unchanged(m, StateError, m.offline_memory_block, b)          # offline already
    m.online_memory_block(b, "online_kernel")
    assert_fails_unchanged(m, StateError, m.online_memory_block, b, "online")  # online already
    assert_fails_unchanged(m, StateError, m.online_memory_block, b, "online_movable")
    e = assert_fails_unchanged(m, BusyError, m.remove_memory, HOT, 256 * MiB)  # b is online
    assert e.errno == errno.EBUSY
    assert_fails_unchanged(m, RangeError, m.remove_memory, HOT + 1 * GiB, 128 * MiB)  # absent
    assert_fails_unchanged(m, StateError, m.online_memory_block, b + 5, "online")     # absent
    assert_fails_unchanged(m, RangeError, m.online_memory_block, 1 << 40, "online")
    assert_fails_unchanged(m, RangeError, m.offline_memory_block, 1 << 40)


def test_offline_with_unmovable_allocation_is_busy(vm):
    m = vm
    m.add_memory(0, HOT, 128 * MiB, strategy="block", online="online")
    s, b = m.pfn(HOT), m.block_id(m.pfn(HOT))
    assert m.blocks[b]["zone"] == P.ZONE_NORMAL
    # GFP_KERNEL walks the zonelist from ZONE_NORMAL: the only Normal memory is the block
    pfn = int(m.alloc_pages(0, 0, "kernel", 1, owner=99)[0])
    assert s + X86_V <= pfn < s + X86_N
    e = assert_fails_unchanged(m, BusyError, m.offline_memory_block, b)
    assert e.pfn == pfn and f"{pfn:#x}" in str(e)
    assert e.errno == errno.EBUSY
    assert m.blocks[b]["state"] == MEM_ONLINE
    # the same block in ZONE_MOVABLE would skip has_unmovable_pages(), but a kernel
    # allocation can never land there (GFP_KERNEL <= ZONE_NORMAL).
    m.free_pages([pfn])
    m.offline_memory_block(b)


def test_boot_strategy_add_out_of_memory():
    m = small_vm(boot=256 * MiB)
    # 32 GiB = 256 sections x 2 MiB of memmap = 512 MiB: more than the VM has
    e = assert_fails_unchanged(m, OutOfMemoryError, m.add_memory, 0, HOT, 32 * GiB,
                               strategy="boot")
    assert e.errno == errno.ENOMEM
    # self-hosted needs nothing from the buddy (same 64 GiB window: no page table either)
    f0 = m.mem_free_pages
    m.add_memory(0, HOT, 32 * GiB, strategy="block")
    assert m.mem_free_pages == f0


def test_seed_v3_needs_x86_geometry():
    m = small_vm("ppc64-64k", boot=1 * GiB)
    assert_fails_unchanged(m, ConfigError, m.add_memory, 0, HOT, 256 * MiB, strategy="range")


# ---------------------------------------------------------------------------------------
# 7. offline with migration
# ---------------------------------------------------------------------------------------
def _owned(m, owner, lo, hi):
    mm = m.mem_map[lo:hi]
    return int(((mm["private"] == owner) & (mm["refcount"] > 0) &
                (mm["page_type"] == P.PGTY_NONE)).sum())


def test_offline_migrates_movable_pages(vm):
    m = vm
    m.add_memory(0, HOT, 128 * MiB, strategy="block", online="online_movable")
    s, b = m.pfn(HOT), m.block_id(m.pfn(HOT))
    assert m.blocks[b]["zone"] == P.ZONE_MOVABLE
    # __GFP_MOVABLE tries ZONE_MOVABLE first: the block is the only Movable memory
    small = m.alloc_pages(0, 0, "movable", 500, owner=7)
    big = m.alloc_pages(0, 3, "movable", 10, owner=7)
    assert len(small) == 500 and len(big) == 10
    assert ((small >= s) & (small < s + X86_N)).all() and ((big >= s) & (big < s + X86_N)).all()
    assert _owned(m, 7, s, s + X86_N) == 500 + 10 * 8
    t0 = m.mem_total_pages
    report = m.offline_memory_block(b)
    # every allocated page moved: 500 + 10 x 2^3 = 580 pages
    assert report["migrated"] == 580
    assert m.blocks[b]["state"] == MEM_OFFLINE
    boot_end = m.pfn(2 * GiB)
    assert _owned(m, 7, 0, boot_end) == 580
    assert m.mem_total_pages == t0 - (X86_N - X86_V)
    assert movable(m).present_pages == movable(m).managed_pages == 0
    m.remove_memory(HOT, 128 * MiB)


def test_offline_without_room_to_migrate_fails_unchanged(vm):
    m = vm
    m.add_memory(0, HOT, 128 * MiB, strategy="block", online="online_movable")
    s, b = m.pfn(HOT), m.block_id(m.pfn(HOT))
    # fill everything: the Movable block first, then DMA32 and DMA down to their marks
    got = m.alloc_pages(0, 0, "movable", m.mem_free_pages, owner=8)
    in_block = got[(got >= s) & (got < s + X86_N)]
    outside = got[(got < s) | (got >= s + X86_N)]
    assert len(in_block) > 30000 and len(outside) > 1000
    # free a little outside so that some migrations succeed before memory runs out
    m.free_pages(outside[:300])
    e = assert_fails_unchanged(m, OutOfMemoryError, m.offline_memory_block, b)
    assert e.errno == errno.ENOMEM
    assert m.blocks[b]["state"] == MEM_ONLINE
    # with room it works: free the allocations outside the block
    m.free_pages(outside[300:])
    m.free_pages(in_block[:len(in_block) // 2])
    report = m.offline_memory_block(b)
    assert report["migrated"] == len(in_block) - len(in_block) // 2


def test_offline_and_remove_memory(vm):
    m = vm
    m.add_memory(0, HOT, 384 * MiB, strategy="block", online="online_movable")
    s = m.pfn(HOT)
    m.alloc_pages(0, 0, "movable", 100, owner=9)
    t0 = m.mem_total_pages
    m.offline_and_remove_memory(HOT, 384 * MiB)
    assert m.mem_total_pages == t0 - 3 * (X86_N - X86_V)
    assert not m.blocks_in(s, 3 * X86_N)["state"].any()
    assert _owned(m, 9, 0, m.pfn(2 * GiB)) == 100


def test_offline_and_remove_memory_reonlines_on_failure(vm):
    """offline_and_remove_memory(): when try_remove_memory() fails, every block it
    offlined is onlined again, ZONE_MOVABLE ones as online_movable and all others as
    online_kernel (try_offline_memory_block(), mm/memory_hotplug.c)."""
    m = vm
    s = m.pfn(HOT)
    b = m.block_id(s)
    m.add_memory(0, HOT, 384 * MiB, strategy="range")
    m.online_memory_block(b, "online")            # Normal
    m.online_memory_block(b + 1, "online_movable")
    t0 = m.mem_total_pages
    with pytest.raises(GranularityError):           # v3: only the whole range goes
        m.offline_and_remove_memory(HOT, 256 * MiB)
    assert m.blocks["state"][b:b + 3].tolist() == [MEM_ONLINE, MEM_ONLINE, MEM_OFFLINE]
    assert m.blocks["zone"][b:b + 2].tolist() == [P.ZONE_NORMAL, P.ZONE_MOVABLE]
    assert m.mem_total_pages == t0


def test_reonline_uses_online_kernel():
    """A block onlined "online" in ZONE_NORMAL between two ZONE_MOVABLE blocks: the
    kernel re-onlines it with MMOP_ONLINE_KERNEL, so it returns to ZONE_NORMAL, where a
    plain "online" would now pick ZONE_MOVABLE (the movable span covers it)."""
    m = small_vm()
    s = m.pfn(HOT)
    b = m.block_id(s)
    m.add_memory(0, HOT, 128 * MiB, strategy="range")
    m.add_memory(0, HOT + 128 * MiB, 128 * MiB, strategy="range")
    m.add_memory(0, HOT + 256 * MiB, 128 * MiB, strategy="range")
    m.online_memory_block(b + 1, "online")
    m.online_memory_block(b, "online_movable")
    m.online_memory_block(b + 2, "online_movable")
    assert m.blocks["zone"][b + 1] == P.ZONE_NORMAL
    assert m.valid_zones(b + 1) == "Normal"
    # two v3 ranges at once: vmemmap_nr_sections(head) * PPS != size -> GranularityError
    with pytest.raises(GranularityError):
        m.offline_and_remove_memory(HOT + 128 * MiB, 256 * MiB)
    assert m.blocks["state"][b:b + 3].tolist() == [MEM_ONLINE] * 3
    assert m.blocks["zone"][b:b + 3].tolist() == [P.ZONE_MOVABLE, P.ZONE_NORMAL, P.ZONE_MOVABLE]
    assert m.blocks["online_type"][b + 1] == MMOP_ONLINE_KERNEL


def test_sections_follow_block_state(vm):
    m = vm
    s = m.pfn(HOT)
    sec = s // 32768
    m.add_memory(0, HOT, 128 * MiB, strategy="block")
    assert m.sections[sec] & SECTION_MARKED_PRESENT and not m.sections[sec] & SECTION_IS_ONLINE
    m.online_memory_block(m.block_id(s))
    assert m.sections[sec] & SECTION_IS_ONLINE
    m.offline_memory_block(m.block_id(s))
    assert not m.sections[sec] & SECTION_IS_ONLINE
    m.remove_memory(HOT, 128 * MiB)
    assert m.sections[sec] == 0


def test_nr_memmap_pages_counts_hot_added_sections(vm):
    m = vm
    # v6.11 /proc/vmstat: nr_memmap_pages += PFN_UP(PPS * S_page) = 512 per section added
    m.add_memory(0, HOT, 384 * MiB, strategy="block")
    m.add_memory(0, HOT + 1 * GiB, 128 * MiB, strategy="boot")
    assert m.nr_memmap_pages == 4 * 512
    m.remove_memory(HOT, 384 * MiB)
    assert m.nr_memmap_pages == 512
    # boot: 2 GiB = 16 sections x 512
    assert m.nr_memmap_boot_pages == 16 * 512


def test_v6_8_removal_uniform_altmaps(vm):
    m = vm
    m.add_memory(0, HOT, 256 * MiB, strategy="block")
    m.add_memory(0, HOT + 256 * MiB, 128 * MiB, strategy="boot")
    # memory_blocks_have_altmaps(): some blocks have one, some not -> WARN, -EINVAL
    assert_fails_unchanged(m, GranularityError, m.remove_memory, HOT, 384 * MiB)
    m.remove_memory(HOT, 128 * MiB)             # v6.8+: per block, or several at once
    assert_fails_unchanged(m, GranularityError, m.remove_memory, HOT + 128 * MiB, 256 * MiB)
    m.remove_memory(HOT + 128 * MiB, 128 * MiB)
    m.remove_memory(HOT + 256 * MiB, 128 * MiB)


@pytest.mark.parametrize("strategy", ["block-5.13", "block-6.6"])
def test_pre_6_8_removal_one_block_at_a_time(vm, strategy):
    m = vm
    m.add_memory(0, HOT, 128 * MiB, strategy=strategy)
    m.add_memory(0, HOT + 128 * MiB, 128 * MiB, strategy=strategy)
    # try_remove_memory() v5.13-6.7: a self-hosted block in the range and size != block
    assert_fails_unchanged(m, GranularityError, m.remove_memory, HOT, 256 * MiB)
    m.remove_memory(HOT, 128 * MiB)
    m.remove_memory(HOT + 128 * MiB, 128 * MiB)


# ---------------------------------------------------------------------------------------
# NUMA: where the memmap and the migrated pages go (docs/model.md#hot-add, #offline)
# ---------------------------------------------------------------------------------------
def _numa_vm():
    """Node 0: 2 GiB of boot RAM and the CPUs; node 1: memoryless, CPU-less (a CXL-like
    node that only ever gets hot-added memory)."""
    return Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)]),
                                        NodeConfig(boot=[], cpus=False)]))


def test_classic_memmap_of_a_memoryless_node_is_off_node():
    m = _numa_vm()
    f0 = m.mem_free_pages
    # GFP_KERNEL on node 1 finds nothing there and falls back along the zonelist to node 0
    m.add_memory(1, HOT, 128 * MiB, strategy="boot")
    assert m.memmap_summary()["boot_memory_by_node"] == {0: X86_V}
    # the order-9 block's refill takes 2 (max(63 >> 9, 2)): one on node 0's list
    assert f0 - m.mem_free_pages - m.free_pcp_pages == X86_V
    assert m.zone(0, P.ZONE_DMA32).free_area.pcp_count == X86_V
    assert not m.nodes[1].has_memory                 # added, not online: no N_MEMORY yet
    # self-hosted: the memmap sits on the new memory itself, on node 1; nothing taken
    m.add_memory(1, HOT + 128 * MiB, 128 * MiB, strategy="block")
    assert f0 - m.mem_free_pages - m.free_pcp_pages == X86_V
    b = m.block_id(m.pfn(HOT))
    assert m.valid_zones(b) == "Normal Movable"     # default zone first, then Movable
    m.online_memory_block(b + 1, "online_movable")
    assert m.nodes[1].has_memory
    s1 = m.pfn(HOT + 128 * MiB)
    nid = (m.mem_map["flags"][s1:s1 + X86_V] >> P.NODES_PGSHIFT) & P.NODES_MASK
    assert (nid == 1).all()


def test_offline_migrates_to_other_nodes_first():
    """do_migrate_range(): target nodemask = N_MEMORY minus the block's node, so the pages
    leave node 1 although another node-1 block has room."""
    m = _numa_vm()
    m.add_memory(1, HOT, 256 * MiB, strategy="block")
    b = m.block_id(m.pfn(HOT))
    m.online_memory_block(b, "online_movable")
    got = m.alloc_pages(1, 0, "movable", 100, owner=11)
    s = m.pfn(HOT)
    assert ((got >= s) & (got < s + X86_N)).all()
    m.online_memory_block(b + 1, "online_movable")
    report = m.offline_memory_block(b)
    assert report["migrated"] == 100
    assert _owned(m, 11, 0, m.pfn(2 * GiB)) == 100            # now on node 0
    assert _owned(m, 11, s + X86_N, s + 2 * X86_N) == 0


# ---------------------------------------------------------------------------------------
# buddy form after a pageblock claim, and rollback on top of it
# ---------------------------------------------------------------------------------------
def test_claimed_block_stays_in_buddy_form():
    """__rmqueue_fallback() steals the largest free block of another migratetype. For a
    block above pageblock_order, try_to_claim_block() (mm/page_alloc.c, v6.10+) retypes all
    of its pageblocks and expand()s it: an order-0 UNMOVABLE request from an order-8 MOVABLE
    block on ppc64 (pageblock_order 5) leaves exactly one free block of each order 0..7
    (2^8 - 1 = 255 pages) on the UNMOVABLE lists. The request goes through
    rmqueue_pcplist(): the refill asks for batch = 3 pages (16384 managed pages >> 10 =
    16, / 4 = 4, rdp2(6) - 1 = 3), so two more __rmqueue() follow the steal: the order-0
    block, then half of the order-1 block, leaving its other half; both pages wait on
    the pcp list."""
    m = small_vm("ppc64-64k", boot=1 * GiB)
    fa = normal(m).free_area
    assert fa.counts()[P.MIGRATE_UNMOVABLE].sum() == 0
    assert fa.counts()[P.MIGRATE_MOVABLE, 8] > 0
    m.alloc_pages(0, 0, "kernel", 1)
    assert fa.counts()[P.MIGRATE_UNMOVABLE].tolist() == [1, 0] + [1] * 6 + [0]
    assert fa.pcp_count == 2


def test_offline_refused_after_a_claim_changes_nothing():
    """ppc64: a kernel allocation claims pageblocks in a Normal block, offlining it is
    refused (-EBUSY), and the isolation undo must put back exactly the free blocks that
    were there (found by tests/test_state_machine.py)."""
    m = small_vm("ppc64-64k", boot=1 * GiB)
    m.add_memory(0, HOT, 256 * MiB, strategy="boot", online="online")
    s = m.pfn(HOT)
    got = m.alloc_pages(0, 3, "kernel", 50, owner=1000)
    assert ((got >= s) & (got < s + 4096)).any()
    e = assert_fails_unchanged(m, BusyError, m.offline_memory_block, m.block_id(s))
    assert s <= e.pfn < s + 4096
