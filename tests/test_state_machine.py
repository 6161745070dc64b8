"""Stateful test of the hotplug engine: random add / online / offline / remove /
offline_and_remove / alloc / free / compact sequences against a small Python model, with the
accounting invariants of docs/model.md#accounting checked after every step.

The model knows only what docs/model.md says: which blocks are present and online, in which
zone, and V (self-hosted memmap pages) per block from the per-arch table below. Every
refused call must leave machine.snapshot() unchanged (except offline_and_remove_memory,
which re-onlines and may have migrated pages; there the model state must be unchanged).
"""
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis import event
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pagecore import (BusyError, ConfigError, GiB, GranularityError, Machine, MachineConfig,
                      NodeConfig, OutOfMemoryError, RangeError, StateError)
from pagecore.kernels import page as P
from pagecore.arch import ZONE_NAMES
from pagecore.compaction import compact_zone
from pagecore.machine import MEM_OFFLINE, MEM_ONLINE, SECTION_IS_ONLINE, SECTION_MARKED_PRESENT

HOT = 4 * GiB          # the hot-add window: WINDOW blocks from 4 GiB
WINDOW = 8
BOOT = 1 * GiB

# Per arch: block pages N, sections per block, and V / altmap.alloc per strategy.
#  x86_64: N = 128 MiB / 4 KiB = 32768, memmap = 32768 * 64 B = 2 MiB = 512 pages = one PMD
#    (PMD-aligned, a multiple of pageblock_nr_pages = 512): every upstream strategy
#    self-hosts V = 512 with altmap.alloc = 512 (one 2 MiB leaf); force pads nothing.
#    v5.13 / v6.6-6.7 only for one-block adds (else the flag is dropped: V = 0).
#    seed v3 "range": V = 512 per section for the whole range, at its start.
#  ppc64-64k: N = 256 MiB / 64 KiB = 4096, memmap = 256 KiB = 4 pages, pageblock 32 pages.
#    4 % 32 != 0: block, block-6.6 fall back; block-5.13: 256 KiB % 2 MiB != 0, falls back;
#    force: V = round_up(4, 32) = 32, altmap.alloc = 4 (base-page leaves); "range" is
#    refused (v3 needs x86 geometry, spec open question 8).
#  memmap_per_section: nr_memmap_pages per present section, PFN_UP(PPS * 64 B / PAGE_SIZE):
#    x86 32768 * 64 B = 2 MiB = 512 pages; ppc64 256 * 64 B = 16 KiB -> 1 page of 64 KiB.
GEOMETRY = {
    "x86_64": dict(N=32768, spb=1, memmap_per_section=512,
                   strategies=["block", "block-5.13", "block-6.6", "range", "force"],
                   V={"boot": (0, 0), "block": (512, 512), "force": (512, 512),
                      "block-6.6": (512, 512), "block-5.13": (512, 512)},
                   one_block_only={"block-5.13", "block-6.6"}),
    "ppc64-64k": dict(N=4096, spb=16, memmap_per_section=1,
                      strategies=["block", "block-5.13", "block-6.6", "range", "force"],
                      V={"boot": (0, 0), "block": (0, 0), "force": (32, 4),
                         "block-6.6": (0, 0), "block-5.13": (0, 0)},
                      one_block_only={"block-5.13", "block-6.6"}),
}
ONLINE_TYPES = ["online", "online_kernel", "online_movable"]
GFPS = ["kernel", "movable", "user"]
FIRST_OWNER = 1000


class HotplugMachine(RuleBasedStateMachine):

    # ---------------------------------------------------------------------------------
    # setup
    # ---------------------------------------------------------------------------------
    @initialize(arch=st.sampled_from(sorted(GEOMETRY)), which=st.integers(0, 4),
                seed=st.integers(0, 3))
    def boot(self, arch, which, seed):
        g = GEOMETRY[arch]
        self.arch_name, self.g = arch, g
        self.strategies = ["boot", g["strategies"][which]]
        self.m = Machine(MachineConfig(arch=arch, nodes=[NodeConfig(boot=[(0, BOOT)])],
                                       phys_bits=36, seed=seed))
        m = self.m
        self.N = g["N"]
        assert m.block_pages == self.N and m.sections_per_block == g["spb"]
        self.b0 = m.block_id(m.pfn(HOT))
        self.end_pfn = m.pfn(HOT) + WINDOW * self.N
        zones = m.nodes[0].zones
        self.boot_gap = [z.present_pages - z.managed_pages for z in zones]
        self.boot_present = [z.present_pages for z in zones]
        self.boot_managed = m.mem_total_pages
        self.boot_span = {z.zid: (z.zone_start_pfn, z.zone_end_pfn) for z in zones
                          if z.spanned_pages}
        # model
        self.blocks = {}        # window index -> dict(rid, online, zone, V, alloc)
        self.ranges = {}        # rid -> (strategy, first index, nr blocks)
        self.allocs = {}        # owner -> pages
        self.next_rid = 0
        self.next_owner = FIRST_OWNER

    # ---------------------------------------------------------------------------------
    # model helpers
    # ---------------------------------------------------------------------------------
    def expect_v(self, strategy, n, i):
        """(V, altmap.alloc) of block i of an n-block add (table above)."""
        if strategy == "range":
            total = n * self.g["spb"] * self.g["memmap_per_section"]
            v = min(max(total - i * self.N, 0), self.N)
            return v, (total if i == 0 else 0)
        if strategy in self.g["one_block_only"] and n != 1:
            return 0, 0
        return self.g["V"][strategy]

    def span(self, zid):
        """Model zone span: the boot span and the online blocks of the zone (hull)."""
        pts = [self.boot_span[zid]] if zid in self.boot_span else []
        for i, b in self.blocks.items():
            if b["online"] and b["zone"] == zid:
                s = (self.b0 + i) * self.N
                pts.append((s, s + self.N))
        if not pts:
            return None
        return min(p[0] for p in pts), max(p[1] for p in pts)

    def intersects(self, zid, i):
        sp = self.span(zid)
        s = (self.b0 + i) * self.N
        return sp is not None and s < sp[1] and s + self.N > sp[0]

    def model_zone(self, online_type, i):
        """zone_for_pfn_range(), contig-zones policy (docs/model.md#online). The window is above every
        DMA/DMA32 limit, so the kernel zone is ZONE_NORMAL on both arches."""
        if online_type == "online_kernel":
            return P.ZONE_NORMAL
        if online_type == "online_movable":
            return P.ZONE_MOVABLE
        ik, im = self.intersects(P.ZONE_NORMAL, i), self.intersects(P.ZONE_MOVABLE, i)
        if ik != im:
            return P.ZONE_NORMAL if ik else P.ZONE_MOVABLE
        return P.ZONE_NORMAL

    def model_online(self, i, online_type):
        b = self.blocks[i]
        b["zone"] = self.model_zone(online_type, i)
        b["online"] = True

    def unchanged(self, exc, fn, *args, **kw):
        before = self.m.snapshot()
        try:
            fn(*args, **kw)
        except exc as e:
            after = self.m.snapshot()
            for k in before:
                assert after[k] == before[k], f"{fn.__name__} failed ({e!r}) and changed {k}"
            return e
        raise AssertionError(f"{fn.__name__}{args} did not raise {exc}")

    def range_blocks(self, rid):
        return sorted(i for i, b in self.blocks.items() if b["rid"] == rid)

    def owned_heads(self, owner):
        mm = self.m.mem_map[:self.end_pfn]
        sel = ((mm["private"] == owner) & (mm["refcount"] > 0) &
               (mm["page_type"] == P.PGTY_NONE) & ((mm["flags"] & P.PG_tail) == 0))
        return np.flatnonzero(sel)

    # ---------------------------------------------------------------------------------
    # rules
    # ---------------------------------------------------------------------------------
    @rule(first=st.integers(0, WINDOW - 1), n=st.integers(1, 4),
          which=st.sampled_from([1, 1, 0]),          # the machine's strategy 2:1 over "boot"
          online=st.sampled_from([None] + ONLINE_TYPES))
    def add(self, first, n, which, online):
        m = self.m
        n = min(n, WINDOW - first)
        strategy = self.strategies[which]
        start, size = HOT + first * m.block_size, n * m.block_size
        idx = range(first, first + n)
        if any(i in self.blocks for i in idx):
            self.unchanged(RangeError, m.add_memory, 0, start, size, strategy, online)
            return
        if strategy == "range" and self.arch_name != "x86_64":
            self.unchanged(ConfigError, m.add_memory, 0, start, size, strategy, online)
            return
        # a refused add may drain the per-cpu lists (the allocator's slow path), as the
        # kernel's does: compared drained, without the lists' run-time state
        m.drain_all_pages()
        before = m.snapshot(pcp=False)
        try:
            m.add_memory(0, start, size, strategy=strategy, online=online)
        except OutOfMemoryError:
            event("add: out of memory")
            m.drain_all_pages()
            assert m.snapshot(pcp=False) == before
            return
        event(f"add: {strategy}")
        rid = self.next_rid
        self.next_rid += 1
        self.ranges[rid] = (strategy, first, n)
        for k, i in enumerate(idx):
            v, alloc = self.expect_v(strategy, n, k)
            self.blocks[i] = dict(rid=rid, online=False, zone=None, V=v, alloc=alloc)
        if online:
            for i in idx:
                self.model_online(i, online)

    @rule(i=st.integers(0, WINDOW - 1), online_type=st.sampled_from(ONLINE_TYPES),
          to_online=st.booleans())
    def wrong_state(self, i, online_type, to_online):
        """online an online or absent block, offline an offline or absent one: -EINVAL."""
        b = self.blocks.get(i)
        if to_online and (b is None or b["online"]):
            self.unchanged(StateError, self.m.online_memory_block, self.b0 + i, online_type)
        elif not to_online and (b is None or not b["online"]):
            self.unchanged(StateError, self.m.offline_memory_block, self.b0 + i)

    def _pick(self, data, online):
        have = sorted(i for i, b in self.blocks.items() if b["online"] == online)
        return data.draw(st.sampled_from(have)) if have else None

    @rule(data=st.data(), online_type=st.sampled_from(ONLINE_TYPES))
    def online(self, data, online_type):
        i = self._pick(data, False)
        if i is None:
            return
        self.m.online_memory_block(self.b0 + i, online_type)
        self.model_online(i, online_type)
        event(f"online {online_type} -> {ZONE_NAMES[self.blocks[i]['zone']]}")

    @rule(data=st.data())
    def offline(self, data):
        m = self.m
        i = self._pick(data, True)
        if i is None:
            return
        b = self.blocks[i]
        # a refused offline drains the per-cpu lists (zone_pcp_disable()): compared drained
        m.drain_all_pages()
        before = m.snapshot(pcp=False)
        try:
            report = m.offline_memory_block(self.b0 + i)
        except (BusyError, OutOfMemoryError) as e:
            event(f"offline refused: {type(e).__name__}")
            m.drain_all_pages()
            assert m.snapshot(pcp=False) == before, f"offline failed ({e!r}) and changed the machine"
            if isinstance(e, BusyError):
                # only ZONE_NORMAL blocks can hold unmovable pages (has_unmovable_pages()
                # trusts ZONE_MOVABLE), and the named pfn is an unmovable kernel page
                assert b["zone"] == P.ZONE_NORMAL
                page = m.mem_map[e.pfn]
                s = (self.b0 + i) * self.N
                assert s + b["V"] <= e.pfn < s + self.N
                assert page["refcount"] > 0 and not page["flags"] & (P.PG_lru | P.PG_movable)
                assert f"{e.pfn:#x}" in str(e)
            return
        event("offline migrated pages" if report["migrated"] else "offline, nothing to migrate")
        b["online"], b["zone"] = False, None

    def _removal(self, data):
        """A removal target inside one added range: (rid, first index, nr blocks)."""
        rid = data.draw(st.sampled_from(sorted({b["rid"] for b in self.blocks.values()})))
        have = self.range_blocks(rid)
        start = data.draw(st.sampled_from(have))
        n = 1
        while start + n in have and data.draw(st.booleans()):
            n += 1
        if data.draw(st.booleans()) and have == list(range(have[0], have[-1] + 1)):
            start, n = have[0], len(have)                 # often: the whole range
        return rid, start, n

    def _granularity_ok(self, rid, start, n):
        strategy, first, total = self.ranges[rid]
        idx = range(start, start + n)
        if strategy == "range":
            # check_hotplug_granularity(): exactly the added range
            return (start, n) == (first, total)
        if strategy in ("block-5.13", "block-6.6"):
            # v5.13-6.7 try_remove_memory(): self-hosted -> one block at a time
            return n == 1 or not any(self.blocks[i]["V"] for i in idx)
        # v6.8 memory_blocks_have_altmaps(): all or none (always true inside one range)
        vs = [self.blocks[i]["V"] > 0 for i in idx]
        return all(vs) or not any(vs)

    def _forget(self, start, n):
        for i in range(start, start + n):
            del self.blocks[i]

    @precondition(lambda self: self.blocks)
    @rule(data=st.data())
    def remove(self, data):
        m = self.m
        rid, start, n = self._removal(data)
        args = (HOT + start * m.block_size, n * m.block_size)
        idx = range(start, start + n)
        if any(self.blocks[i]["online"] for i in idx):
            event("remove: busy")
            self.unchanged(BusyError, m.remove_memory, *args)
        elif not self._granularity_ok(rid, start, n):
            event("remove: granularity")
            self.unchanged(GranularityError, m.remove_memory, *args)
        else:
            event("remove: ok")
            m.remove_memory(*args)
            self._forget(start, n)

    @precondition(lambda self: self.blocks)
    @rule(data=st.data())
    def offline_and_remove(self, data):
        m = self.m
        rid, start, n = self._removal(data)
        args = (HOT + start * m.block_size, n * m.block_size)
        idx = range(start, start + n)
        state = {i: (self.blocks[i]["online"], self.blocks[i]["zone"]) for i in idx}
        try:
            m.offline_and_remove_memory(*args)
        except (BusyError, OutOfMemoryError, GranularityError) as e:
            event(f"offline_and_remove refused: {type(e).__name__}")
            if isinstance(e, GranularityError):
                assert not self._granularity_ok(rid, start, n)
            # try_reonline_memory_block(): every block is back online in its old zone
            for i in idx:
                row = m.blocks[self.b0 + i]
                online, zone = state[i]
                assert (row["state"] == MEM_ONLINE) == online
                if online:
                    assert row["zone"] == zone
            return
        event("offline_and_remove: ok")
        assert self._granularity_ok(rid, start, n)
        self._forget(start, n)

    @rule(gfp=st.sampled_from(GFPS), order=st.integers(0, 3),
          count=st.sampled_from([1, 50, 3000, -1]))
    def alloc(self, gfp, order, count):
        m = self.m
        if count < 0:                    # fill memory: everything the watermarks allow
            count = m.mem_free_pages >> order
        owner = self.next_owner
        self.next_owner += 1
        got = m.alloc_pages(0, order, gfp, max(count, 1), owner=owner)
        if len(got):
            self.allocs[owner] = len(got) << order
            zid = (m.mem_map["flags"][got] >> P.ZONES_PGSHIFT) & P.ZONES_MASK
            if gfp != "movable":         # GFP_KERNEL / GFP_USER never reach ZONE_MOVABLE
                assert (zid != P.ZONE_MOVABLE).all()

    @precondition(lambda self: self.allocs)
    @rule(data=st.data())
    def free(self, data):
        owner = data.draw(st.sampled_from(sorted(self.allocs)))
        heads = self.owned_heads(owner)
        if data.draw(st.booleans()):
            heads = heads[:len(heads) // 2]
        freed = self.m.free_pages(heads)
        self.allocs[owner] -= freed
        if not self.allocs[owner]:
            del self.allocs[owner]

    @rule(zid=st.sampled_from([P.ZONE_DMA32, P.ZONE_NORMAL, P.ZONE_MOVABLE]),
          order=st.sampled_from([-1, 3, "pageblock"]), mode=st.sampled_from(["sync", "async"]))
    def compact(self, zid, order, mode):
        """compact_zone(): pages move, nothing is created or lost. The invariants check
        the conservation per owner; here, that no unmovable page moved (vmemmap pages,
        reserved pages and kernel allocations keep their pfns)."""
        m = self.m
        if order == "pageblock":
            order = m.arch.pageblock_order
        zone = m.nodes[0].zones[zid]
        mm = m.mem_map[:self.end_pfn]
        pinned = np.flatnonzero((mm["refcount"] > 0) & ((mm["flags"] & (P.PG_lru | P.PG_movable)) == 0))
        before = mm[pinned].copy()
        managed = m.mem_total_pages
        report = compact_zone(m, zone, order, mode)
        assert report["migrated_pages"] >= 0
        assert m.mem_total_pages == managed
        assert (m.mem_map[pinned] == before).all(), "compaction moved an unmovable page"
        event(f"compact: {report['result']}, migrated={bool(report['migrated_pages'])}")

    # ---------------------------------------------------------------------------------
    # invariants
    # ---------------------------------------------------------------------------------
    @invariant()
    def machine_check(self):
        """Machine.check(): every invariant the model itself knows, after every step."""
        self.m.check()

    @invariant()
    def blocks_match_model(self):
        m = self.m
        rows = m.blocks[self.b0:self.b0 + WINDOW]
        pps = m.arch.pages_per_section
        for i in range(WINDOW):
            row, b = rows[i], self.blocks.get(i)
            secs = m.sections[(self.b0 + i) * self.N // pps:(self.b0 + i + 1) * self.N // pps]
            if b is None:
                assert row["state"] == 0 and row["altmap_alloc"] == 0 and row["nr_vmemmap"] == 0
                assert not secs.any()
                continue
            assert row["state"] == (MEM_ONLINE if b["online"] else MEM_OFFLINE)
            assert (row["nr_vmemmap"], row["altmap_alloc"]) == (b["V"], b["alloc"])
            assert (secs & SECTION_MARKED_PRESENT).all()
            assert ((secs & SECTION_IS_ONLINE) > 0).all() == b["online"]
            assert ((secs & SECTION_IS_ONLINE) == 0).all() == (not b["online"])
            if b["online"]:
                assert row["zone"] == b["zone"]

    @invariant()
    def accounting(self):
        m = self.m
        online = [b for b in self.blocks.values() if b["online"]]
        # MemTotal = Σ managed = boot managed + Σ (N - V) over online hot-added blocks
        assert m.mem_total_pages == self.boot_managed + sum(self.N - b["V"] for b in online)
        assert m.mem_total_pages == sum(z.managed_pages for z in m.zones())
        for z in m.nodes[0].zones:
            mine = [b for b in online if b["zone"] == z.zid]
            # present - managed = boot reserved + Σ V(online self-hosted blocks)
            assert z.present_pages - z.managed_pages == self.boot_gap[z.zid] + sum(b["V"] for b in mine)
            assert z.present_pages == self.boot_present[z.zid] + self.N * len(mine)
            assert 0 <= z.free_pages <= z.managed_pages
            # spans grow at online and shrink back to the online memory at offline
            sp = self.span(z.zid)
            if sp is None:
                assert z.spanned_pages == 0
            else:
                assert (z.zone_start_pfn, z.zone_end_pfn) == sp
        # v6.11 nr_memmap_pages: PFN_UP(PPS * S_page) per present hot-added section
        present_secs = len(self.blocks) * m.sections_per_block
        assert m.nr_memmap_pages == m.arch.memmap_pages(m.arch.pages_per_section) * present_secs
        assert m.nr_memmap_pages == self.g["memmap_per_section"] * present_secs

    @invariant()
    def free_lists_consistent(self):
        m = self.m
        mm = m.mem_map[:self.end_pfn]
        free = np.zeros(self.end_pfn, dtype=bool)
        nfree = 0
        for z in m.zones():
            fa = z.free_area
            zone_free = 0
            for mt in range(P.MIGRATE_TYPES):
                for order in range(fa.nr_orders):
                    heads = fa.blocks(mt, order)
                    if not len(heads):
                        continue
                    assert mt != P.MIGRATE_ISOLATE, "isolated pageblocks left behind"
                    assert (heads + (1 << order) <= self.end_pfn).all()
                    hp = mm[heads]
                    assert (hp["page_type"] == P.PGTY_BUDDY).all()
                    assert (hp["order"] == order).all()
                    assert ((hp["private"] & 7) == mt).all()
                    assert (heads % (1 << order) == 0).all()
                    zid = (hp["flags"] >> P.ZONES_PGSHIFT) & P.ZONES_MASK
                    assert (zid == z.zid).all()
                    for h in heads.tolist():
                        free[h:h + (1 << order)] = True
                    zone_free += len(heads) << order
            assert zone_free == z.free_pages
            nfree += zone_free
        assert int(free.sum()) == nfree, "free blocks overlap"
        # free pages: refcount 0, in online blocks only
        assert not (mm["refcount"][free] > 0).any(), "a pfn is both free and allocated"
        blk_state = m.blocks["state"][np.flatnonzero(free) // self.N]
        assert (blk_state == MEM_ONLINE).all()
        # allocations: conserved per owner (migration moves them), never on a free list
        owners = mm["private"]
        alloc = (mm["refcount"] > 0) & (mm["page_type"] == P.PGTY_NONE) & (owners >= FIRST_OWNER)
        got = dict(zip(*np.unique(owners[alloc], return_counts=True)))
        assert {int(k): int(v) for k, v in got.items()} == self.allocs


TestHotplugMachine = HotplugMachine.TestCase
TestHotplugMachine.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow,
                                                              HealthCheck.filter_too_much])
