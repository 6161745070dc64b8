"""pagecore.workload and what runs under it, each against a straightforward twin.

* The batched fill kernel (_buddy.fill_draws) against the loop it replaces: one
  m.alloc_pages() per draw (zonelist, __GFP_THISNODE and the target zones through
  `exclude`, watermark keep), the zones' use recomputed from the free lists before every
  draw. Both consume the same pre-drawn numbers (Workload._draw), so whole runs of
  Workload.apply() must leave the same machine byte for byte: pages, pageblock flags,
  every free list in list order, and the same report. Machines are small and random
  (hypothesis): arch, nodes, hot-added memory and its zones, memory used at boot, and the
  workload's knobs, batch size included.
* The owner scan (_buddy.owned_blocks) against the numpy expression of the same rule.
* Machine.free_pages() over several zones against one call per zone.
* The aging frees (_buddy.free_owned_passes: all passes in one call, the page array read
  once) against the chunk-by-chunk passes, with each chunk in numpy (the twin) and in C
  (_buddy.free_owned_random), whole runs; and on its own, with other BitGenerators than
  PCG64, on page arrays whose blocks nest, and with each build of its PCG64 steps
  (pcg64.h: scalar, AVX-512 IFMA), whose draws are also checked against rng.random().
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pagecore import GiB, Machine, MachineConfig, MiB, NodeConfig
from pagecore.kernels import page as P
from pagecore.kernels import buddy as _buddy
from pagecore.kernels.buddy import fill_zones, owned_heads
from pagecore.arch import ZONE_NAMES
from pagecore.errors import ConfigError
from pagecore.workload import Workload

SETTINGS = settings(max_examples=int(os.environ.get("PAGECORE_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


class PerDraw(Workload):
    """Workload whose draws go one by one through m.alloc_pages()."""

    def _alloc_draws(self, m, plan, kinds, orders, used, target, exhausted, allocated):
        zones = plan.zones
        exclude = (lambda z: not any(z is t for t in zones))
        for kind, order in zip(kinds.tolist(), orders.tolist()):
            used = self._used(zones)
            if used >= target or exhausted.all():
                break
            if exhausted[kind, order]:
                continue
            want = min(max(1, plan.chunk >> order), -(-(target - used) >> order))
            got = m.alloc_pages(plan.nid, order, self.KINDS[kind], want,
                                owner=self.owner + kind, strict_node=True, exclude=exclude)
            allocated[kind] += len(got) << order
            if len(got) < want:
                exhausted[kind, order] = 1
        return self._used(zones)


def state(m):
    """Present pages as bytes, pageblock flags, free lists in list order, zone counters."""
    pps = m.arch.pages_per_section
    pages = np.concatenate([m.mem_map[s * pps:(s + 1) * pps]
                            for s in np.flatnonzero(m.sections).tolist()])
    lists = [[z.free_area.blocks(mt, o).tolist() for mt in range(P.MIGRATE_TYPES)
              for o in range(m.arch.nr_page_orders)] for z in m.zones()]
    return pages, m.pageblock_flags.copy(), lists, [z.counters() for z in m.zones()]


def assert_same(a, b):
    pa, fa, la, ca = state(a)
    pb, fb, lb, cb = state(b)
    if pa.tobytes() != pb.tobytes():
        diff = np.flatnonzero(pa.view(np.uint64).reshape(-1, 2)
                              != pb.view(np.uint64).reshape(-1, 2))
        i = int(diff[0]) // 2
        raise AssertionError(f"pages differ at {diff.size} words; first page #{i}: "
                             f"{pa[i]} != {pb[i]}")
    np.testing.assert_array_equal(fa, fb)
    assert ca == cb
    assert la == lb


def build(cfg, adds):
    m = Machine(cfg)
    for nid, start, size, online in adds:
        m.add_memory(nid, start, size, online=online)
    return m


# ---------------------------------------------------------------------------------------
# random small machines
# ---------------------------------------------------------------------------------------
BOOT = {"ppc64-64k": 512 * MiB, "x86_64": 256 * MiB, "s390x": 256 * MiB}
BLOCK = {"ppc64-64k": 256 * MiB, "x86_64": 128 * MiB, "s390x": 256 * MiB}


@st.composite
def setups(draw):
    arch = draw(st.sampled_from(sorted(BOOT)))
    boot, block = BOOT[arch], BLOCK[arch]
    nodes = [NodeConfig(boot=[(0, boot)])]
    if draw(st.booleans()):
        nodes.append(NodeConfig(boot=[(boot, boot)]))
    used = draw(st.sampled_from([0, 8 * MiB]))
    cfg = MachineConfig(arch=arch, nodes=nodes, phys_bits=36, boot_used_unmovable=used,
                        boot_used_movable=draw(st.sampled_from([0, 8 * MiB])))
    adds = draw(st.lists(st.tuples(st.integers(0, len(nodes) - 1), st.integers(1, 2),
                                   st.sampled_from(["online_movable", "online_kernel"])),
                         max_size=2))
    adds = [(nid, 4 * GiB + i * GiB, n * block, online)
            for i, (nid, n, online) in enumerate(adds)]
    nid = draw(st.integers(0, len(nodes) - 1))
    max_order = {"ppc64-64k": 8, "x86_64": 10, "s390x": 10}[arch]
    orders = draw(st.dictionaries(st.integers(0, max_order), st.sampled_from([1, 0.5, 3, 0]),
                                  min_size=1, max_size=3)
                  .filter(lambda d: sum(d.values()) > 0))
    work = dict(fill=draw(st.sampled_from([0.6, 0.3, 0.9, 1.0, 0.0])),
                movable_fraction=draw(st.sampled_from([0.7, 0.3, 1.0, 0.0])),
                orders=orders, age_rounds=draw(st.integers(1, 2)),
                free_fraction=draw(st.sampled_from([0.3, 0.5, 0.0])),
                seed=draw(st.integers(0, 2**32 - 1)),
                chunk_pages=draw(st.sampled_from([None, 16, 100, 2048])))
    return (cfg, adds, nid, draw(st.integers(0, 4)), work,
            draw(st.sampled_from([1, 7, 1 << 14])), draw(st.booleans()))


@SETTINGS
@given(setup=setups())
def test_batched_fill_matches_per_draw_alloc_pages(setup):
    cfg, adds, nid, zone_pick, work, draws, twice = setup
    a, b = build(cfg, adds), build(cfg, adds)
    names = [None] + [z.name for z in a.nodes[nid].zones if z.managed_pages]
    zone_name = names[zone_pick % len(names)]
    runs = [work, {**work, "seed": work["seed"] + 1, "fill": 1.0}] if twice else [work]
    for w in runs:
        fast, slow = Workload(**w), PerDraw(**w)
        fast.DRAWS = slow.DRAWS = draws
        try:
            ra = fast.apply(a, nid, zone_name)
        except ConfigError:
            with pytest.raises(ConfigError):
                slow.apply(b, nid, zone_name)
            return
        rb = slow.apply(b, nid, zone_name)
        assert ra == rb
        assert_same(a, b)


class NumpyFrees(Workload):
    """Workload whose random frees go chunk by chunk in numpy (_free_chunk_numpy, the
    twin)."""
    _free_passes = Workload._free_passes_chunks
    _free_chunk = Workload._free_chunk_numpy


class ChunkFrees(Workload):
    """Workload whose random frees go chunk by chunk in C (_buddy.free_owned_random)."""
    _free_passes = Workload._free_passes_chunks


@SETTINGS
@given(setup=setups(), chunk=st.sampled_from([64, 1000, 1 << 20]),
       twin=st.sampled_from([NumpyFrees, ChunkFrees]))
def test_random_frees_match_numpy(setup, chunk, twin):
    """The aging frees in C (_buddy.free_owned_passes) against the chunk-by-chunk passes
    (in numpy, the twin, and in C): same blocks freed in the same order (free lists in
    list order), same report, and the same random stream after them (an aging round's
    fill follows its frees), with chunks small enough that a pass stops inside one."""
    cfg, adds, nid, zone_pick, work, draws, _ = setup
    a, b = build(cfg, adds), build(cfg, adds)
    names = [None] + [z.name for z in a.nodes[nid].zones if z.managed_pages]
    zone_name = names[zone_pick % len(names)]
    fast, slow = Workload(**work), twin(**work)
    fast.CHUNK = slow.CHUNK = chunk
    try:
        ra = fast.apply(a, nid, zone_name)
    except ConfigError:
        return
    rb = slow.apply(b, nid, zone_name)
    assert ra == rb
    assert_same(a, b)


BIT_GENERATORS = {"pcg64": np.random.PCG64, "mt19937": np.random.MT19937,
                  "philox": np.random.Philox, "pcg64dxsm": np.random.PCG64DXSM}


#: the builds of pcg64.h's steps this CPU runs
PCG_LEVELS = ["scalar"] + (["avx512"] if _buddy._pcg64_level("avx512") == "avx512" else [])
_buddy._pcg64_level(os.environ.get("PAGECORE_SIMD", "avx512"))


@SETTINGS
@given(seed=st.integers(0, 2**128 - 1), inc=st.integers(0, 2**127 - 1),
       p=st.sampled_from([0.0, 1e-9, 0.001, 0.3, 0.5, 0.999, 1.0]),
       level=st.sampled_from(PCG_LEVELS))
def test_pcg64_batches_are_numpys_draws(seed, inc, p, level):
    """pcg64.h, scalar and AVX-512 IFMA steps: the outputs are rng.random()'s numbers
    (x * 2^-53), the hit bits are rng.random() < p, and the state after them is the
    BitGenerator's."""
    bg = np.random.PCG64()
    bg.state = {"bit_generator": "PCG64", "state": {"state": seed, "inc": inc * 2 + 1},
                "has_uint32": 0, "uinteger": 0}
    st_ = bg.state["state"]
    s, i = st_["state"], st_["inc"]
    m64 = (1 << 64) - 1
    out, hits, state = _buddy._pcg64_batches(s >> 64, s & m64, i >> 64, i & m64, p, 3, level)
    want = np.random.Generator(bg).random(192)
    np.testing.assert_array_equal(out.astype(np.float64) * 2.0**-53, want)
    below = (want < p).reshape(3, 64)
    assert [int(h) for h in hits] == [sum(1 << k for k in np.flatnonzero(row).tolist())
                                      for row in below]
    assert state == bg.state["state"]["state"]


@pytest.mark.parametrize("pcg_level", PCG_LEVELS)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), gen=st.sampled_from(sorted(BIT_GENERATORS)),
       share=st.sampled_from([0.001, 0.1, 0.5, 0.97, 1.0]),
       chunk=st.sampled_from([1, 63, 64, 1000, 1 << 20]), nest=st.booleans())
@example(seed=21, gen="pcg64", share=0.5, chunk=1000, nest=True)   # an owned head nested
def test_free_owned_passes_matches_chunk_passes(pcg_level, seed, gen, share, chunk, nest):
    """free_owned_passes() on its own against the chunk-by-chunk passes over
    free_owned_random(): the same machine afterwards and the same BitGenerator state,
    for numpy's PCG64 (drawn in pcg64.h) and for BitGenerators drawn through their
    next_double, for excesses that take one pass or many, and (`nest`) on a page array
    where some owned heads claim an order that covers their owned neighbours (free_pages()
    takes them along; the frees must then re-read the bits as a rescan would), with each
    build of the PCG64 steps this CPU runs."""
    _buddy._pcg64_level(pcg_level)
    try:
        _free_passes_case(seed, gen, share, chunk, nest)
    finally:
        _buddy._pcg64_level(os.environ.get("PAGECORE_SIMD", "avx512"))


def _free_passes_case(seed, gen, share, chunk, nest):
    cfg = MachineConfig(nodes=[NodeConfig(boot=[(0, 256 * MiB)])], phys_bits=36)
    adds = [(0, 4 * GiB, 128 * MiB, "online_movable")]
    a, b = build(cfg, adds), build(cfg, adds)
    w = Workload(fill=1.0, orders={0: 0.8, 2: 0.1, 9: 0.1}, age_rounds=0, seed=seed)
    for m in (a, b):
        w.apply(m, 0, "Movable")
    z = a.zone(0, P.ZONE_MOVABLE)
    if nest:
        bits = (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)
        idx, sizes = owned_heads(a.mem_map[z.zone_start_pfn:z.zone_end_pfn], bits, w.owner, 2)
        pick = np.random.default_rng(seed).choice(idx[(sizes == 1) & (idx % 4 == 0)], 8)
        for m in (a, b):
            m.mem_map["order"][z.zone_start_pfn + pick] = 2
    excess = max(1, int(share * (z.managed_pages - z.free_pages)))
    zones = [z]
    ra = np.random.Generator(BIT_GENERATORS[gen](seed))
    rb = np.random.Generator(BIT_GENERATORS[gen](seed))
    ra.random(seed % 7)                         # a stream already under way
    rb.random(seed % 7)
    w.CHUNK = chunk
    fa = w._free_passes(a, zones, ra, excess)
    fb = ChunkFrees._free_passes(w, b, [b.zone(0, P.ZONE_MOVABLE)], rb, excess)
    assert fa == fb > 0
    np.testing.assert_equal(ra.bit_generator.state, rb.bit_generator.state)
    np.testing.assert_array_equal(ra.random(9), rb.random(9))
    assert_same(a, b)


def test_free_owned_random_validates_and_counts():
    """zone_bits with PG_* bits is refused; p = 0 frees nothing and p = 1 frees owned
    blocks in pfn order until the excess is met; owned_pages() sums what owned_heads()
    lists."""
    from pagecore.kernels.buddy import free_owned_random, owned_pages
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 2 * GiB)])], phys_bits=36))
    m.add_memory(0, 4 * GiB, 256 * MiB, online="online_movable")
    z = m.zone(0, P.ZONE_MOVABLE)
    w = Workload(fill=0.5, orders={0: 1, 3: 1}, age_rounds=0, seed=3)
    w.apply(m, 0, "Movable")
    bits = (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)
    pages = m.mem_map[z.zone_start_pfn:z.zone_end_pfn]
    idx, sizes = owned_heads(pages, bits, w.owner, 2)
    assert owned_pages(pages, bits, w.owner, 2) == sizes.sum() > 0
    with pytest.raises(ValueError, match="zone_bits"):
        owned_pages(pages, bits | int(P.PG_lru), w.owner, 2)
    rng = np.random.default_rng(0)
    assert free_owned_random(z.free_area, pages, z.zone_start_pfn, bits, w.owner, 2, 0.0,
                             10**9, rng) == 0
    excess = int(sizes[:4].sum()) + 1          # met by the fifth block
    freed = free_owned_random(z.free_area, pages, z.zone_start_pfn, bits, w.owner, 2, 1.0,
                              excess, rng)
    assert freed == sizes[:5].sum()
    left, _ = owned_heads(pages, bits, w.owner, 2)
    np.testing.assert_array_equal(left, idx[5:])


def test_fill_respects_zones_kinds_and_watermarks():
    """Node 0 with Normal and Movable, no zone named: kernel allocations stay out of
    ZONE_MOVABLE, both kinds are there, no zone goes below its min watermark."""
    m = build(MachineConfig(nodes=[NodeConfig(boot=[(0, 256 * MiB)])], phys_bits=36),
              [(0, 4 * GiB, 256 * MiB, "online_kernel"), (0, 5 * GiB, 256 * MiB, "online_movable")])
    w = Workload(fill=0.9, movable_fraction=0.7, orders={0: 0.8, 3: 0.1, 9: 0.1},
                 age_rounds=1, free_fraction=0.3, seed=5)
    report = w.apply(m, 0, None)
    normal, movable = m.zone(0, P.ZONE_NORMAL), m.zone(0, P.ZONE_MOVABLE)
    mv, um = w.heads(m, [normal, movable])
    zone_of = lambda h: (m.mem_map["flags"][h] >> P.ZONES_PGSHIFT) & P.ZONES_MASK
    assert um.size and mv.size
    assert (zone_of(um) != P.ZONE_MOVABLE).all()
    assert (zone_of(mv) == P.ZONE_MOVABLE).any() and (zone_of(mv) == P.ZONE_NORMAL).any()
    assert report["movable_pages"] + report["kernel_pages"] == report["allocated_pages"]
    for z in m.zones():
        if z.managed_pages:
            assert z.free_pages >= z.watermark[0]
    assert report["used_pages"] <= report["target_used_pages"]


def test_fill_zones_validates():
    m = build(MachineConfig(nodes=[NodeConfig(boot=[(0, 256 * MiB)])], phys_bits=36),
              [(0, 4 * GiB, 128 * MiB, "online_movable")])
    fa = m.zone(0, P.ZONE_MOVABLE).free_area
    nr = m.arch.nr_page_orders
    args = lambda kinds, orders, mt=1: (
        [fa], np.zeros(1, np.int64), np.array([0, 1], np.int64), np.array([mt], np.int32),
        np.zeros(1, np.uint32), np.ones(1, np.uint64), np.array(kinds, np.uint8),
        np.array(orders, np.uint8), 16, 0, 1 << 20, np.zeros(nr, np.uint8),
        np.zeros(1, np.int64))
    before = state(m)
    for bad in (args([1], [0]), args([0], [nr]), args([0, 0], [0]), args([0], [0], mt=5)):
        with pytest.raises(ValueError):
            fill_zones(*bad)
    with pytest.raises(TypeError):
        fill_zones([object()], *args([0], [0])[1:])
    assert_same_state(before, state(m))
    with pytest.raises(ConfigError):
        Workload(orders={m.arch.max_page_order + 1: 1.0}).apply(m, 0, ZONE_NAMES[3])


def assert_same_state(x, y):
    assert x[0].tobytes() == y[0].tobytes()
    assert x[1].tobytes() == y[1].tobytes() and x[2:] == y[2:]


# ---------------------------------------------------------------------------------------
# the owner scan (_buddy.owned_blocks)
# ---------------------------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), nr_owners=st.integers(1, 3))
def test_owned_heads_matches_numpy(seed, n, nr_owners):
    rng = np.random.default_rng(seed)
    owner = Workload().owner
    zones = [(0 << P.NODES_PGSHIFT) | (3 << P.ZONES_PGSHIFT),
             (1 << P.NODES_PGSHIFT) | (3 << P.ZONES_PGSHIFT),
             (0 << P.NODES_PGSHIFT) | (2 << P.ZONES_PGSHIFT)]
    pages = np.zeros(n, P.PAGE_DTYPE)
    pages["flags"] = (rng.choice(zones, n)
                      | rng.choice([0, P.PG_head, P.PG_tail, P.PG_lru, P.PG_head | P.PG_lru], n))
    pages["page_type"] = rng.choice([P.PGTY_NONE] * 4 + [P.PGTY_BUDDY, P.PGTY_SLAB], n)
    pages["refcount"] = rng.choice([0, 1, 1, 2], n)
    pages["order"] = rng.integers(0, 11, n)
    pages["private"] = rng.choice(np.array([0, owner - 1, owner, owner + 1, owner + 2,
                                            owner + 3, 2**64 - 1], np.uint64), n)
    bits = zones[0]
    live = ((pages["refcount"] > 0) & (pages["page_type"] == P.PGTY_NONE)
            & ((pages["flags"] & P.PG_tail) == 0)
            & ((pages["flags"] & ~np.uint32(P.FLAGS_MASK)) == bits)
            & (pages["private"] >= owner) & (pages["private"] < owner + nr_owners))
    want = np.flatnonzero(live)
    sizes = np.where(pages["flags"][want] & P.PG_head,
                     np.int64(1) << pages["order"][want].astype(np.int64), 1)
    before = pages.tobytes()
    idx, got = owned_heads(pages, bits, owner, nr_owners)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(got, sizes)
    assert pages.tobytes() == before


# ---------------------------------------------------------------------------------------
# Machine.free_pages() over several zones
# ---------------------------------------------------------------------------------------
def test_free_pages_across_zones_is_per_zone_free():
    """One m.free_pages() over heads of two zones, interleaved, leaves the machine as
    freeing each zone's heads on its own does."""
    cfg = MachineConfig(nodes=[NodeConfig(boot=[(0, 256 * MiB)])], phys_bits=36)
    adds = [(0, 4 * GiB, 256 * MiB, "online_kernel"), (0, 5 * GiB, 256 * MiB, "online_movable")]
    a, b = build(cfg, adds), build(cfg, adds)
    per_zone = []
    for m in (a, b):
        per_zone.append([np.concatenate([m.alloc_pages(0, order, "movable", 300, strict_node=True,
                                                       exclude=lambda z, zid=zid: z.zid != zid)
                                         for order in (0, 3)])
                         for zid in (P.ZONE_NORMAL, P.ZONE_MOVABLE)])
    normal, movable = per_zone[0]
    assert normal.size and movable.size
    # interleaved at random, each zone's heads keeping their order
    rng = np.random.default_rng(1)
    in_movable = np.zeros(normal.size + movable.size, bool)
    in_movable[rng.choice(in_movable.size, movable.size, replace=False)] = True
    mixed = np.empty(in_movable.size, np.int64)
    mixed[~in_movable], mixed[in_movable] = normal, movable
    assert a.free_pages(mixed) == sum(b.free_pages(h) for h in per_zone[1])
    assert_same(a, b)
