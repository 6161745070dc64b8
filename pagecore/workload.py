"""Seeded, declarative workloads that fill and fragment a node or zone.

    w = Workload(fill=0.6, movable_fraction=0.8, orders={0: 0.7, 9: 0.3},
                 age_rounds=3, free_fraction=0.3, seed=1)
    report = w.apply(m, nid=0, zone_name="Movable")

apply() fills the target zones to `fill` of their managed pages with movable (gfp
"movable": LRU pages) and unmovable (gfp "kernel") allocations through m.alloc_pages(),
in chunks drawn at random so that kinds and orders interleave; then each aging round
allocates up to a peak and frees randomly chosen allocations back down to `fill`, so
that the holes spread over the whole zone. The allocations to free are found by scanning the page array
(heads with the workload's owner id), never from a list kept aside: compaction or
offlining may have moved them since. Given the seed and the machine state, a run is
deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pagecore import _page as P
from pagecore._buddy import owned_heads
from pagecore.arch import ZONE_NAMES
from pagecore.errors import ConfigError

#: page->private of workload allocations: movable, and unmovable (+1).
WORKLOAD_OWNER = 0x5157


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
        m._check_nid(nid)
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
        return sum(z.managed_pages - z.free_pages for z in zones)

    #: pages per scan chunk: bounds the temporaries of a scan (a few bytes per page of
    #: the chunk), so a 4 TiB zone costs no more than a 4 GiB one.
    CHUNK = 1 << 20
    #: kinds of allocation (gfp names); kind k has owner id owner + k in page->private.
    KINDS = ("movable", "kernel")

    def _chunks(self, m, zones):
        """(start pfn, offsets, pages) of the workload's allocations per chunk of the
        zones: offsets of their heads from the start, rising (movable and unmovable
        interleaved), and the pages of each (_buddy.owned_blocks)."""
        for z in zones:
            if not z.spanned_pages:
                continue
            bits = (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)
            for c in range(z.zone_start_pfn, z.zone_end_pfn, self.CHUNK):
                idx, sizes = owned_heads(m.mem_map[c:min(c + self.CHUNK, z.zone_end_pfn)],
                                         bits, self.owner, len(self.KINDS))
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

    def _fill_to(self, m, nid, zones, rng, target, report):
        orders = sorted(self.orders)
        weights = np.array([self.orders[o] for o in orders], dtype=float)
        weights /= weights.sum()
        chunk = self.chunk_pages or max(64, 1 << max(orders))
        # "kernel" allocations never reach ZONE_MOVABLE (gfp_zone()).
        kernel_ok = any(z.zid <= P.ZONE_NORMAL for z in zones)
        movable_share = self.movable_fraction if kernel_ok else 1.0
        exclude = (lambda z: not any(z is t for t in zones))
        gfps = [g for g, share in (("movable", movable_share), ("kernel", 1 - movable_share))
                if share > 0]
        possible = {(g, o) for g in gfps for o in orders if self.orders[o] > 0}
        exhausted = set()
        while self._used(zones) < target and not possible <= exhausted:
            gfp = "movable" if rng.random() < movable_share else "kernel"
            order = int(orders[rng.choice(len(orders), p=weights)])
            if (gfp, order) in exhausted:
                continue
            want = min(max(1, chunk >> order), -(-(target - self._used(zones)) >> order))
            owner = self.owner if gfp == "movable" else self.owner + 1
            got = m.alloc_pages(nid, order, gfp, want, owner=owner, strict_node=True,
                                exclude=exclude)
            report["allocated_pages"] += len(got) << order
            report[f"{gfp}_pages"] += len(got) << order
            if len(got) < want:
                exhausted.add((gfp, order))

    # ---- free ------------------------------------------------------------------------
    def _free_down_to(self, m, zones, rng, target, report):
        """Free allocations of the workload chosen at random (heads read off the page
        array, chunk by chunk) until the zones' use is at most `target`: each allocation
        is freed with probability excess / workload pages, so the holes spread evenly
        over the zones; passes repeat until the excess is gone or nothing is left."""
        excess = self._used(zones) - target
        if excess <= 0:
            return
        total = sum(int(sizes.sum()) for _, _, sizes in self._chunks(m, zones))
        while excess > 0 and total > 0:
            p = min(1.0, excess / total)
            for c, idx, sizes in self._chunks(m, zones):
                pick = rng.random(idx.size) < p
                if pick.any():
                    heads = idx[pick][:int(np.searchsorted(np.cumsum(sizes[pick]), excess)) + 1]
                    freed = int(m.free_pages(c + heads))
                    report["freed_pages"] += freed
                    excess -= freed
                    # what the next pass would count: only these frees touched the pages
                    total -= freed
                if excess <= 0:
                    return

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
        self._fill_to(m, nid, zones, rng, target, report)
        for _ in range(self.age_rounds):
            self._fill_to(m, nid, zones, rng, peak, report)
            self._free_down_to(m, zones, rng, target, report)
            report["rounds"] += 1
        report["used_pages"] = self._used(zones)
        return report
