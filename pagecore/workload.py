"""Seeded, declarative workloads that fill and fragment a node or zone.

    w = Workload(fill=0.6, movable_fraction=0.8, orders={0: 0.7, 9: 0.3},
                 age_rounds=3, free_fraction=0.3, seed=1)
    report = w.apply(m, nid=0, zone_name="Movable")

apply() fills the target zones to `fill` of their managed pages with movable (gfp
"movable": LRU pages) and unmovable (gfp "kernel") allocations, in chunks drawn at random
so that kinds and orders interleave; then each aging round allocates up to a peak and
frees randomly chosen allocations back down to `fill`, so that the holes spread over the
whole zone. Allocations follow m.alloc_pages()'s rules (zonelist of the node, watermark
plus lowmem reserve), but the draws are made in batches and run through the buddy in C
(_buddy.fill_draws): at 4 TiB a fill is millions of draws. The allocations to free are
found by scanning the page array (heads with the workload's owner id), never from a list
kept aside: compaction or offlining may have moved them since. One aging free reads the
page array once and runs all its passes in C (_buddy.free_owned_passes). Given the seed
and the machine state, a run is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pagecore.kernels import page as P
from pagecore.kernels.buddy import (fill_zones, free_owned_passes, free_owned_random,
                                    owned_heads, owned_pages)
from pagecore.arch import ZONE_NAMES
from pagecore.errors import ConfigError
from pagecore.mm.page_alloc import GFP
from pagecore.mm import vmstat

#: page->private of workload allocations: movable, and unmovable (+1).
WORKLOAD_OWNER = 0x5157


@dataclass
class _Plan:
    """One fill's fixed inputs (Workload._plan())."""
    nid: int
    zones: list
    movable_share: float
    orders: np.ndarray          # orders that can be drawn (positive weight), uint8
    weights: np.ndarray         # their probabilities
    chunk: int                  # pages per draw
    exhausted: np.ndarray       # (kind, order) that never come up: 1
    areas: list                 # free areas of the target zonelists, kind after kind
    keep: np.ndarray            # per area: watermark[min] + lowmem_reserve[gfp's zone]
    first: np.ndarray           # kind k uses areas[first[k]:first[k + 1]]
    mt: np.ndarray              # per kind: migratetype
    page_flags: np.ndarray      # per kind: PG_* of its pages
    owner: np.ndarray           # per kind: page->private


@dataclass
class Workload:
    """A fill-and-age recipe. `orders` maps allocation order to the share of the pages
    allocated at that order (shares are normalised); `movable_fraction` is the share of
    pages allocated movable. `chunk_pages` pages are allocated per draw (default: the
    largest order's block, at least 64)."""
    fill: float = 0.6
    movable_fraction: float = 0.8
    orders: dict = field(default_factory=lambda: {0: 0.7, 9: 0.3})
    age_rounds: int = 3
    free_fraction: float = 0.3
    seed: int = 0
    chunk_pages: int | None = None
    owner: int = WORKLOAD_OWNER

    def __post_init__(self):
        if not 0 <= self.fill <= 1:
            raise ConfigError(f"Workload: fill={self.fill} outside 0..1")
        if not 0 <= self.movable_fraction <= 1:
            raise ConfigError(f"Workload: movable_fraction={self.movable_fraction} outside 0..1")
        if not 0 <= self.free_fraction <= 1:
            raise ConfigError(f"Workload: free_fraction={self.free_fraction} outside 0..1")
        if not self.orders or any(w < 0 for w in self.orders.values()) or \
                sum(self.orders.values()) <= 0:
            raise ConfigError(f"Workload: orders={self.orders!r} needs positive weights")
        if self.age_rounds < 0:
            raise ConfigError(f"Workload: age_rounds={self.age_rounds} is negative")

    # ---- target --------------------------------------------------------------------
    def _zones(self, m, nid, zone_name):
        m.check_nid(nid)
        node = m.nodes[nid]
        if zone_name is None:
            zones = [z for z in node.zones if z.managed_pages]
        else:
            if zone_name not in ZONE_NAMES:
                raise ConfigError(f"unknown zone {zone_name!r}; expected one of "
                                  f"{', '.join(ZONE_NAMES)}")
            zones = [node.zones[ZONE_NAMES.index(zone_name)]]
        if not zones or not sum(z.managed_pages for z in zones):
            raise ConfigError(f"Workload: node {nid} zone {zone_name or 'any'} has no memory")
        return zones

    @staticmethod
    def _used(zones):
        # pages in use: managed, neither free in the buddy nor waiting on a pcp list
        return sum(z.managed_pages - z.free_pages - z.free_area.pcp_count for z in zones)

    #: pages per scan chunk: bounds the temporaries of a scan (a few bytes per page of
    #: the chunk), so a 4 TiB zone costs no more than a 4 GiB one.
    CHUNK = 1 << 20
    #: kinds of allocation (gfp names); kind k has owner id owner + k in page->private.
    KINDS = ("movable", "kernel")

    def _chunks(self, m, zones):
        """(start pfn, offsets, pages) of the workload's allocations per chunk of the
        zones: offsets of their heads from the start, rising (movable and unmovable
        interleaved), and the pages of each (_buddy.owned_blocks)."""
        for _, c, e, bits in self._spans(zones):
            idx, sizes = owned_heads(m.mem_map[c:e], bits, self.owner, len(self.KINDS))
            yield c, idx, sizes

    def heads(self, m, zones):
        """Head pfns of the workload's allocations in `zones`, read off the page array:
        (movable heads, unmovable heads)."""
        movable, unmovable = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for c, idx, _ in self._chunks(m, zones):
            mv = m.mem_map["private"][c + idx] == self.owner
            movable.append(c + idx[mv])
            unmovable.append(c + idx[~mv])
        return np.concatenate(movable), np.concatenate(unmovable)

    # ---- fill ------------------------------------------------------------------------
    #: draws per batch handed to the fill kernel. The draws are made vectorised; those a
    #: batch holds past the point where the fill stops are dropped, so the random stream
    #: depends on the batch size: a constant keeps a run deterministic.
    DRAWS = 1 << 14

    def _plan(self, m, nid, zones):
        """What a fill needs, fixed for its duration: the draw distribution, and per kind
        the target zones in zonelist order with their watermark."""
        max_order = m.arch.max_page_order
        orders = sorted(o for o, w in self.orders.items() if w > 0)
        if any(not isinstance(o, (int, np.integer)) or not 0 <= o <= max_order for o in orders):
            raise ConfigError(f"Workload: orders={self.orders!r} outside "
                              f"0..MAX_PAGE_ORDER={max_order}")
        weights = np.array([self.orders[o] for o in orders], dtype=float)
        # "kernel" allocations never reach ZONE_MOVABLE (gfp_zone()).
        kernel_ok = any(z.zid <= P.ZONE_NORMAL for z in zones)
        movable_share = self.movable_fraction if kernel_ok else 1.0
        shares = (movable_share, 1 - movable_share)
        exhausted = np.ones((len(self.KINDS), m.arch.nr_page_orders), dtype=np.uint8)
        areas, keep, first, mts, flags = [], [], [0], [], []
        for k, gfp in enumerate(self.KINDS):
            highest, mt, page_flags = GFP[gfp]
            if shares[k] > 0:
                exhausted[k, orders] = 0
            # __alloc_pages() -> get_page_from_freelist() over the zonelist of
            # alloc_pages_node(nid) with __GFP_THISNODE (from gfp_zone() down), cut to the
            # target zones: Machine.alloc_pages(strict_node=True, exclude=...).
            for z in m.zonelist(nid, highest):
                if z.nid == nid and any(z is t for t in zones):
                    areas.append(z.free_area)
                    keep.append(z.watermark[0] + z.lowmem_reserve[highest])
            first.append(len(areas))
            mts.append(mt)
            flags.append(page_flags)
        return _Plan(
            nid=nid, zones=zones, movable_share=movable_share,
            orders=np.array(orders, dtype=np.uint8), weights=weights / weights.sum(),
            chunk=self.chunk_pages or max(64, 1 << max(orders)), exhausted=exhausted,
            areas=areas, keep=np.array(keep, dtype=np.int64),
            first=np.array(first, dtype=np.int64), mt=np.array(mts, dtype=np.int32),
            page_flags=np.array(flags, dtype=np.uint32),
            owner=self.owner + np.arange(len(self.KINDS), dtype=np.uint64))

    def _draw(self, rng, plan):
        """A batch of draws: kind (index into KINDS) and order of each chunk."""
        kinds = (rng.random(self.DRAWS) >= plan.movable_share).astype(np.uint8)
        orders = plan.orders[rng.choice(plan.orders.size, size=self.DRAWS, p=plan.weights)]
        return kinds, orders

    def _alloc_draws(self, m, plan, kinds, orders, used, target, exhausted, allocated):
        """Run the draws through the buddy (_buddy.fill_draws); returns the new use."""
        return fill_zones(plan.areas, plan.keep, plan.first, plan.mt, plan.page_flags,
                          plan.owner, kinds, orders, plan.chunk, used, target,
                          exhausted.reshape(-1), allocated,
                          [z.free_area for z in m.zones() if z.populated])

    def _fill_to(self, m, nid, zones, rng, target, report):
        """Allocate chunks of random kind and order until the zones' use reaches `target`
        or every (kind, order) has come up short once (its zones are at the watermark
        or too fragmented for the order)."""
        plan = self._plan(m, nid, zones)
        exhausted = plan.exhausted.copy()
        allocated = np.zeros(len(self.KINDS), dtype=np.int64)
        used = self._used(zones)
        while used < target and not exhausted.all():
            kinds, orders = self._draw(rng, plan)
            used = self._alloc_draws(m, plan, kinds, orders, used, target, exhausted, allocated)
        for gfp, pages in zip(self.KINDS, allocated.tolist()):
            report["allocated_pages"] += pages
            report[f"{gfp}_pages"] += pages

    # ---- free ------------------------------------------------------------------------
    def _free_down_to(self, m, zones, rng, target, report):
        """Free allocations of the workload chosen at random (read off the page array)
        until the zones' use is at most `target`: each allocation is freed with
        probability excess / workload pages, so the holes spread evenly over the zones;
        passes repeat until the excess is gone or nothing is left (_free_passes())."""
        excess = self._used(zones) - target
        if excess <= 0:
            return
        report["freed_pages"] += self._free_passes(m, zones, rng, excess)

    def _free_passes(self, m, zones, rng, excess):
        """The passes in C (_buddy.free_owned_passes; twin: _free_passes_chunks() over
        _free_chunk_numpy()): the pages freed."""
        return free_owned_passes(
            [(z.free_area, z.zone_start_pfn, z.zone_end_pfn,
              (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)) for z in zones],
            m.mem_map, self.owner, len(self.KINDS), excess, self.CHUNK, rng)

    def _free_passes_chunks(self, m, zones, rng, excess):
        """_free_passes() a chunk at a time, each read off the page array
        (_free_chunk()): each pass frees with p = excess / workload pages (as they stand
        when it starts), and stops after the chunk in which the excess is met."""
        done = 0
        total = sum(owned_pages(m.mem_map[c:e], bits, self.owner, len(self.KINDS))
                    for _, c, e, bits in self._spans(zones))
        while excess > 0 and total > 0:
            p = min(1.0, excess / total)
            for z, c, e, bits in self._spans(zones):
                freed = self._free_chunk(m, z, c, e, bits, p, excess, rng)
                done += freed
                excess -= freed
                total -= freed      # what the next pass would count: only frees changed it
                if excess <= 0:
                    return done
        return done

    def _spans(self, zones):
        """(zone, start, end, node/zone bits) per chunk of CHUNK pfns of the zones."""
        for z in zones:
            bits = (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)
            for c in range(z.zone_start_pfn, z.zone_end_pfn, self.CHUNK):
                yield z, c, min(c + self.CHUNK, z.zone_end_pfn), bits

    def _free_chunk(self, m, zone, c, e, bits, p, excess, rng):
        """One chunk's random frees (_buddy.free_owned_random; twin: _free_chunk_numpy):
        the pages freed."""
        return free_owned_random(zone.free_area, m.mem_map[c:e], c, bits, self.owner,
                                 len(self.KINDS), p, excess, rng)

    def _free_chunk_numpy(self, m, zone, c, e, bits, p, excess, rng):
        """_free_chunk() in numpy: one draw per owned block of the chunk, the picked
        blocks freed in pfn order until `excess` pages are."""
        idx, sizes = owned_heads(m.mem_map[c:e], bits, self.owner, len(self.KINDS))
        pick = rng.random(idx.size) < p
        if not pick.any():
            return 0
        heads = idx[pick][:int(np.searchsorted(np.cumsum(sizes[pick]), excess)) + 1]
        return int(m.free_pages(c + heads))

    def apply(self, m, nid, zone_name=None):
        """Fill node `nid` (or its zone `zone_name`) to `fill` and age it.

        Without aging the zones are filled to `fill`. Each aging round fills them up to
        the peak fill / (1 - free_fraction) (what the zones can give, at most), then
        frees randomly chosen allocations until the use is back at `fill`: about
        `free_fraction` of what was allocated, spread over the whole zone. Returns a
        report: pages allocated and freed, rounds, and the final use.
        """
        zones = self._zones(m, nid, zone_name)
        rng = np.random.default_rng(self.seed)
        managed = sum(z.managed_pages for z in zones)
        target = int(self.fill * managed)
        peak = int(min(1.0, self.fill / max(1e-9, 1 - self.free_fraction)) * managed)
        report = {"zones": [f"node{z.nid}/{z.name}" for z in zones], "managed_pages": managed,
                  "target_used_pages": target, "allocated_pages": 0, "freed_pages": 0,
                  "movable_pages": 0, "kernel_pages": 0, "rounds": 0}
        # Each phase stands for seconds of a real workload: the vmstat worker runs
        # between them until the running CPU's pcp lists settle (decay_pcp_high(), v6.7+:
        # else a 6.12 pcp->high raised by the refills towards managed / 8 would keep that
        # much on the lists). Settling has no effect on the use (pages stay free).
        self._fill_to(m, nid, zones, rng, target, report)
        vmstat.vmstat_update(m)
        for _ in range(self.age_rounds):
            self._fill_to(m, nid, zones, rng, peak, report)
            vmstat.vmstat_update(m)
            self._free_down_to(m, zones, rng, target, report)
            vmstat.vmstat_update(m)
            report["rounds"] += 1
        report["used_pages"] = self._used(zones)
        return report
