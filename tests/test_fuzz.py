"""A fuzzing state machine over the public API (issue 14): valid and invalid calls mixed,
from every memmap strategy and online type to double frees, duplicate ids, wrong types,
out-of-range values and pages nobody may free.

After every step: the call either succeeded, or raised a PagecoreError (never a raw
TypeError / IndexError / ValueError from deep inside) and left Machine.snapshot()
unchanged (offline_and_remove_memory() excepted: like the kernel it keeps what its
offlines migrated, and must bring every block back to its state and zone); calls that
must be refused were; and Machine.check() passes.

The default run is bounded (a few seconds). The long run is marked `fuzz_long` and
deselected by default: `pytest -m fuzz_long tests/test_fuzz.py`, sized by
PAGECORE_FUZZ_EXAMPLES (default 2000) x PAGECORE_FUZZ_STEPS (default 50) steps; it
appends its step count to PAGECORE_FUZZ_LOG when that is set.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pagecore import (GiB, Machine, MachineConfig, MiB, NodeConfig, PagecoreError,
                      StateError)
from pagecore.kernels import page as P
from pagecore.compaction import compact_zone
from pagecore.machine import MEM_OFFLINE, MEM_ONLINE, OWNER_AUTO_BASE
from pagecore.strategies import AddUnit, MemmapStrategy

HOT = 4 * GiB                  # the hot-add window: WINDOW blocks from 4 GiB
WINDOW = 6
STRATEGIES = ["boot", "range", "block-5.13", "block-6.6", "block", "force", "whole-range"]
ONLINE = ["online", "online_kernel", "online_movable", 1, 2, 3, np.int8(3)]
BAD_ONLINE = ["offline", "movable", 0, 4, 7, -1, 2.0, None, b"online"]
GFPS = ["kernel", "reclaimable", "movable", "user"]


class WholeRange(MemmapStrategy):
    """The README's strategy of your own: the memmap of the whole range at its start,
    padded to pageblocks, upstream page states."""
    name, kernel = "whole-range", (6, 12)
    description = "one pageblock-aligned memmap at the start of each add_memory() range"

    def plan(self, machine, start_pfn, nr_pages):
        a = machine.arch
        v = -(-a.memmap_pages(nr_pages) // a.pageblock_nr_pages) * a.pageblock_nr_pages
        return [AddUnit(start_pfn, nr_pages, altmap_free=v)]


_WHOLE = WholeRange()


def _strategy(name):
    return _WHOLE if name == "whole-range" else name


def bad_ints(lo, hi):
    """Values that are not integers or not in range, for an id or size in [lo, hi)."""
    return st.one_of(st.integers(hi, hi + 4), st.integers(lo - 4, lo - 1),
                     st.floats(lo, hi, allow_nan=False), st.just(float("nan")),
                     st.sampled_from([True, False, None, "1", b"2", [1], (1,), 1j]))


class Fuzz(RuleBasedStateMachine):
    steps = 0                   # rules run (each followed by check())
    calls = 0                   # public calls made by them

    @initialize(arch=st.sampled_from(["x86_64", "ppc64-64k"]), seed=st.integers(0, 3),
                two_nodes=st.booleans())
    def boot(self, arch, seed, two_nodes):
        nodes = [NodeConfig(boot=[(0, 256 * MiB)])]
        if two_nodes:
            nodes.append(NodeConfig(boot=[], cpus=False))
        self.m = Machine(MachineConfig(arch=arch, nodes=nodes, phys_bits=36, seed=seed,
                                       boot_used_unmovable=16 * MiB, boot_used_movable=32 * MiB))
        self.bs = self.m.block_size
        self.b0 = self.m.block_id(self.m.pfn(HOT))
        self.allocs = []            # Allocations still (partly) held
        self.freed = []             # Allocations freed whole
        self.m.check()

    # ---------------------------------------------------------------------------------
    def attempt(self, label, fn, *args, refuse=None, partial=False, **kw):
        """Call fn; a refusal must be a PagecoreError that changed nothing (or, with
        `partial`, whatever the kernel keeps). `refuse`: the call must raise this."""
        Fuzz.calls += 1
        m = self.m
        # A refused hotplug or compaction call may drain the per-cpu lists (offline's
        # zone_pcp_disable(), the allocator's slow path) as the kernel's does: those calls
        # start drained and are compared drained, without the lists' run-time state.
        # Allocations and frees keep what the lists hold (they are refused only for bad
        # input, before anything changes) and are compared strictly.
        pcp = label.startswith(("alloc", "free", "double_free"))
        if not pcp:
            m.drain_all_pages()
        before = m._snapshot(digest=False, pcp=pcp)     # snapshot(), pages unhashed: cheaper
        try:
            out = fn(*args, **kw)
        except PagecoreError as e:
            event(f"{label}: {type(e).__name__}")
            if refuse is not None:
                assert isinstance(e, refuse), f"{label}{args}: {e!r} is not a {refuse.__name__}"
            if not partial:
                if not pcp:
                    m.drain_all_pages()
                after = m._snapshot(digest=False, pcp=pcp)
                (r0, t0), (r1, t1) = before.pop("hash"), after.pop("hash")
                assert t0 == t1 and len(r0) == len(r1) and all(
                    a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(r0, r1)), \
                    f"{label}{args} refused ({e!r}) and changed the pages or block tables"
                for k in before:
                    assert after[k] == before[k], f"{label}{args} refused ({e!r}) and changed {k}"
            return e
        except Exception as e:      # a raw error from deep inside: the bug class of issue 14
            raise AssertionError(f"{label}{args} raised a raw {type(e).__name__}: {e}") from e
        assert refuse is None, f"{label}{args} should have been refused ({refuse.__name__})"
        event(f"{label}: ok")
        return out

    def window(self, i):
        return self.b0 + i

    # ---- hotplug -------------------------------------------------------------------------
    @rule(first=st.integers(-1, WINDOW), n=st.integers(0, 4), strategy=st.sampled_from(STRATEGIES),
          online=st.sampled_from([None, "offline"] + ONLINE), nid=st.sampled_from([0, 0, 1, 2]),
          skew=st.sampled_from([0, 0, 0, 1, "page", "float"]))
    def add(self, first, n, strategy, online, nid, skew):
        m = self.m
        start, size = HOT + first * self.bs, n * self.bs
        if skew == 1:
            size += self.bs // 2
        elif skew == "page":
            start += m.arch.page_size
        elif skew == "float":
            start = float(start)
        self.attempt("add", m.add_memory, nid, start, size, _strategy(strategy), online)

    # the lifecycle proper, so that valid states are reached often enough for the
    # invalid calls to meet them: adds that fit, onlines of offline blocks, offlines of
    # online ones, removals of whole added ranges
    @rule(first=st.integers(0, WINDOW - 1), n=st.integers(1, 3), strategy=st.sampled_from(STRATEGIES),
          online=st.sampled_from([None, "online", "online_kernel", "online_movable"]))
    def add_fitting(self, first, n, strategy, online):
        n = min(n, WINDOW - first)
        self.attempt("add_fitting", self.m.add_memory, 0, HOT + first * self.bs, n * self.bs,
                     _strategy(strategy), online)

    def _window_blocks(self, state):
        rows = self.m.blocks["state"][self.b0:self.b0 + WINDOW]
        return [self.b0 + i for i in np.flatnonzero(rows == state).tolist()]

    @rule(data=st.data(), online_type=st.sampled_from(ONLINE))
    def online_offline_block(self, data, online_type):
        have = self._window_blocks(MEM_OFFLINE)
        if have:
            self.attempt("online_offline_block", self.m.online_memory_block,
                         data.draw(st.sampled_from(have)), online_type)

    @rule(data=st.data())
    def offline_online_block(self, data):
        have = self._window_blocks(MEM_ONLINE)
        if have:
            self.attempt("offline_online_block", self.m.offline_memory_block,
                         data.draw(st.sampled_from(have)))

    @rule(data=st.data(), how=st.sampled_from(["remove", "offline_and_remove"]))
    def remove_added_range(self, data, how):
        m = self.m
        if not m.ranges:
            return
        r = m.ranges[data.draw(st.sampled_from(sorted(m.ranges)))]
        left = np.flatnonzero(m.blocks["range_id"] == r.range_id)
        start, size = int(left[0]) * self.bs, len(left) * self.bs
        if how == "remove":
            self.attempt("remove_added_range", m.remove_memory, start, size)
        else:
            self.offline_and_remove(int(left[0]) - self.b0, len(left))

    @rule(i=st.integers(-1, WINDOW), online_type=st.sampled_from(ONLINE))
    def online(self, i, online_type):
        self.attempt("online", self.m.online_memory_block, self.window(i), online_type)

    @rule(data=st.data(), online_type=st.sampled_from(ONLINE))
    def online_many(self, data, online_type):
        """A list of blocks, sometimes with one twice (refused: it would online it twice)."""
        idx = data.draw(st.lists(st.integers(0, WINDOW - 1), min_size=1, max_size=4))
        blocks = [self.window(i) for i in idx]
        dup = len(set(blocks)) < len(blocks)
        kind = data.draw(st.sampled_from(["list", "array", "range"]))
        if kind == "array":
            blocks = np.array(blocks, dtype=np.int32)
        elif kind == "range" and not dup:
            blocks = range(min(blocks), min(blocks) + 1)
        self.attempt("online_many", self.m.online_pages_blocks, blocks, online_type,
                     refuse=StateError if dup else None)

    @rule(i=st.integers(-1, WINDOW), bad=st.sampled_from(BAD_ONLINE))
    def online_bad_type(self, i, bad):
        self.attempt("online_bad_type", self.m.online_memory_block, self.window(i), bad,
                     refuse=PagecoreError)

    @rule(block=bad_ints(0, 1 << 20))
    def bad_block_id(self, block):
        m = self.m
        self.attempt("bad_block_online", m.online_memory_block, block, refuse=PagecoreError)
        self.attempt("bad_block_offline", m.offline_memory_block, block, refuse=PagecoreError)

    @rule(i=st.integers(-1, WINDOW + 1), boot=st.integers(0, 7), which=st.sampled_from("wwwb"))
    def offline(self, i, boot, which):
        b = boot if which == "b" else self.window(i)        # boot blocks too
        self.attempt("offline", self.m.offline_memory_block, b)

    @rule(first=st.integers(-1, WINDOW), n=st.integers(0, 4), skew=st.sampled_from([0, 0, 1]))
    def remove(self, first, n, skew):
        m = self.m
        self.attempt("remove", m.remove_memory, HOT + first * self.bs, n * self.bs + skew * 4096)

    @rule(first=st.integers(0, WINDOW - 1), n=st.integers(1, 4))
    def offline_and_remove(self, first, n):
        m = self.m
        blocks = range(self.window(first), self.window(first) + n)
        state = {b: (int(m.blocks["state"][b]), int(m.blocks["zone"][b])) for b in blocks}
        e = self.attempt("offline_and_remove", m.offline_and_remove_memory,
                         HOT + first * self.bs, n * self.bs, partial=True)
        if isinstance(e, PagecoreError):
            # try_reonline_memory_block(): every block back in its state and zone
            for b, (s, z) in state.items():
                assert int(m.blocks["state"][b]) == s
                if s == MEM_ONLINE:
                    assert int(m.blocks["zone"][b]) == z
            assert all(b in state for b, _ in getattr(e, "partial", []))

    # ---- the page allocator --------------------------------------------------------------
    @rule(gfp=st.sampled_from(GFPS), order=st.integers(0, 4),
          count=st.sampled_from([1, 7, 300, 5000]), nid=st.sampled_from([0, 1]),
          owner=st.sampled_from([None, None, 77]))
    def alloc(self, gfp, order, count, nid, owner):
        if nid >= len(self.m.nodes):
            nid = 0
        got = self.attempt("alloc", self.m.alloc_pages, nid, order, gfp, count, owner=owner)
        if not isinstance(got, PagecoreError) and len(got):
            self.allocs.append(got)

    @rule(order=st.sampled_from([-1, 11, 13, 2.0, "0"]), count=st.sampled_from([-1, 1.5, "3", None]),
          gfp=st.sampled_from(["kernel", "atomic", 3]), owner=st.sampled_from([-1, 2, 2 ** 64, 1.0]))
    def alloc_bad(self, order, count, gfp, owner):
        m = self.m
        self.attempt("alloc_bad_order", m.alloc_pages, 0, order, "kernel", 1, refuse=PagecoreError)
        self.attempt("alloc_bad_count", m.alloc_pages, 0, 0, "kernel", count, refuse=PagecoreError)
        if gfp != "kernel":
            self.attempt("alloc_bad_gfp", m.alloc_pages, 0, 0, gfp, 1, refuse=PagecoreError)
        self.attempt("alloc_bad_owner", m.alloc_pages, 0, 0, "kernel", 1, owner=owner,
                     refuse=PagecoreError)

    @precondition(lambda self: self.allocs)
    @rule(data=st.data(), how=st.sampled_from(["handle", "heads", "half", "dup", "list"]))
    def free(self, data, how):
        m = self.m
        a = data.draw(st.sampled_from(range(len(self.allocs))))
        alloc = self.allocs[a]
        heads = m.find_allocation(alloc)
        if not len(heads):          # freed under a shared tag by another handle
            self._forget_freed()
            return
        if how == "handle":
            self.attempt("free_handle", m.free_pages, alloc)
        elif how == "heads":
            self.attempt("free_heads", m.free_pages, heads)
        elif how == "half":
            self.attempt("free_half", m.free_pages, heads[: len(heads) // 2 + 1])
        elif how == "list":
            self.attempt("free_list", m.free_pages, [int(p) for p in heads[:3]])
        else:   # a double free inside one call
            p = int(heads[0])
            self.attempt("free_dup", m.free_pages, [p, p], refuse=StateError)
        self._forget_freed()

    def _forget_freed(self):
        """Allocations with nothing left move to `freed`; only those with a tag of their
        own (alloc_pages() without owner) stay freeable-never-again: a shared explicit
        tag names whatever is allocated under it now."""
        keep = []
        for alloc in self.allocs:
            if len(self.m.find_allocation(alloc)):
                keep.append(alloc)
            elif alloc.owner >= OWNER_AUTO_BASE:
                self.freed.append(alloc)
        self.allocs = keep

    @precondition(lambda self: self.freed)
    @rule(data=st.data())
    def free_again(self, data):
        alloc = data.draw(st.sampled_from(self.freed))
        self.attempt("double_free", self.m.free_pages, alloc, refuse=StateError)

    @rule(what=st.sampled_from(["reserved", "memblock", "vmemmap", "table", "free", "tail",
                                "absent", "beyond", "negative", "float", "nested"]),
          k=st.integers(0, 100))
    def free_forbidden(self, what, k):
        """Pages nobody may free: all refused (free_pages_prepare(): 'Bad page state')."""
        m = self.m
        gran = list(m.vmemmap_granules.values())
        if what == "reserved":
            pfns = [m.pfn(16 * MiB) + k] if m.arch.name == "x86_64" else [k]
        elif what == "memblock":
            pfns = [g[1] + k % max(1, m.arch.vmemmap_granule_pages) for g in gran if g[0] == "memblock"][:1]
        elif what == "vmemmap":
            pfns = [g[1] for g in gran if g[0] in ("buddy", "altmap")][-1:]
        elif what == "table":
            pfns = [p for p in m.vmemmap_tables.values() if p >= 0][:1]
        elif what == "free":
            pfns = []
            for z in m.zones():
                for o in range(z.free_area.nr_orders):
                    for mt in range(3):
                        h = z.free_area.blocks(mt, o)
                        if len(h):
                            pfns = [int(h[k % len(h)])]
        elif what == "tail":
            # a tail of a folio still whole: compaction may have split one into order-0
            # pages (try_split_folio() on -ENOMEM), whose pages are heads of their own
            heads = np.concatenate([m.find_allocation(a) for a in self.allocs if a.order] or
                                   [np.zeros(0, dtype=np.int64)])
            heads = heads[(m.mem_map["flags"][heads] & P.PG_head) != 0]
            pfns = [int(heads[k % len(heads)]) + 1] if len(heads) else []
        elif what == "absent":
            pfns = [m.pfn(HOT + WINDOW * self.bs) + k]
        elif what == "beyond":
            pfns = [m.max_pfn + k]
        elif what == "negative":
            pfns = [-1 - k]
        elif what == "float":
            pfns = [float(k)]
        else:
            pfns = [[k]]
        if not pfns:
            return
        if what == "vmemmap" and m.mem_map["refcount"][pfns[0]] == 0:
            return          # an altmap leaf of an offline upstream block: plain free memory
        self.attempt(f"free_{what}", m.free_pages, pfns, refuse=PagecoreError)

    @rule(zid=st.sampled_from([P.ZONE_DMA32, P.ZONE_NORMAL, P.ZONE_MOVABLE]),
          order=st.sampled_from([-1, 3, 9]), mode=st.sampled_from(["sync", "async"]))
    def compact(self, zid, order, mode):
        zone = self.m.nodes[0].zones[zid]
        self.attempt("compact", compact_zone, self.m, zone, order, mode)

    # ---------------------------------------------------------------------------------
    @invariant()
    def consistent(self):
        Fuzz.steps += 1
        self.m.check()

    def teardown(self):
        log = os.environ.get("PAGECORE_FUZZ_LOG")
        if log and self.__class__ is FuzzLong:
            with open(log, "a") as f:
                f.write(f"{Fuzz.steps} {Fuzz.calls}\n")
            Fuzz.steps = Fuzz.calls = 0


_HC = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

TestFuzz = Fuzz.TestCase
TestFuzz.settings = settings(max_examples=8, stateful_step_count=20, deadline=None,
                             suppress_health_check=_HC)


class FuzzLong(Fuzz):
    pass


TestFuzzLong = pytest.mark.fuzz_long(FuzzLong.TestCase)
TestFuzzLong.settings = settings(
    max_examples=int(os.environ.get("PAGECORE_FUZZ_EXAMPLES", 2000)),
    stateful_step_count=int(os.environ.get("PAGECORE_FUZZ_STEPS", 50)),
    deadline=None, suppress_health_check=_HC, database=None)
