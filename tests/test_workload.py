"""pagecore.workload and what runs under it, each against a straightforward twin.

* The owner scan (_buddy.owned_blocks) against the numpy expression of the same rule.
* Machine.free_pages() over several zones against one call per zone.
"""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagecore import GiB, Machine, MachineConfig, MiB, NodeConfig
from pagecore import _page as P
from pagecore._buddy import owned_heads
from pagecore.workload import Workload

SETTINGS = settings(max_examples=int(os.environ.get("PAGECORE_HYPOTHESIS_EXAMPLES", 40)),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
