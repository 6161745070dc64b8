"""Parity of the kernel backends: Cython (pagecore.kernels.hotplug), numpy (pagecore.kernels.hotplug_numpy)
and numba (pagecore.kernels.hotplug_numba) must agree on every kernel.

Agreement means the same return value AND the same resulting machine, byte for byte: the
mem_map, the pageblock flags and every free list in list order (which also pins the
free-list slots kept in `private`). The reference is the twin each backend is compared
with; there are no hard-coded answers.

Machines are small (<= 4096 pfns) and random: hypothesis draws the geometry
(pageblock_order 3..9, nr_orders 4..11), a seed and a few knobs; the seed drives numpy's
generator for the bulk page state. Free pages are only ever made through FreeArea (so the
free lists are valid), vmemmap runs only through mark_vmemmap_pages (so the runs are valid),
folios are naturally aligned with PG_head/PG_tail and their order on every page.
"""
import inspect
import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_same_pages, lru_pages_with_free_blocks
from conftest import run_all as _run_all
from pagecore.kernels import hotplug as _kernels, hotplug_numpy as reference
from pagecore.kernels.buddy import FreeArea
from pagecore.kernels.page import (FLAGS_MASK, MAX_NR_ZONES, MIGRATE_CMA, MIGRATE_HIGHATOMIC,
                            MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE,
                            MIGRATE_TYPES, MIGRATE_UNMOVABLE, NODES_PGSHIFT, PAGE_DTYPE,
                            PB_migrate_isolate, PB_migrate_skip, PG_head, PG_hwpoison, PG_isolated, PG_lru,
                            PG_movable, PG_reserved, PG_tail, PG_vmemmap_self_hosted,
                            PGTY_BUDDY, PGTY_NONE, PGTY_OFFLINE, PGTY_SLAB, PGTY_TABLE,
                            PGTY_VMEMMAP, ZONES_PGSHIFT)
from pagecore import compaction as C
from pagecore.kernels.backends import BACKENDS, KERNELS, get_backend

MAX_PFNS = 4096
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def backends():
    """name -> kernel module; the reference first, it is what the others answer to."""
    return {"numpy": reference, "cython": _kernels, "numba": get_backend("numba")}


# ---------------------------------------------------------------------------------------
# machines
# ---------------------------------------------------------------------------------------
@dataclass
class Machine:
    mem_map: np.ndarray
    pageblock_flags: np.ndarray
    free_area: FreeArea
    pageblock_order: int
    nr_orders: int
    runs: list = field(default_factory=list)        # vmemmap runs (start, nr_pages)
    occupied: np.ndarray = None                     # pages the buddy must not take

    @property
    def n(self):
        return self.mem_map.shape[0]

    def clone(self):
        """An identical, independent machine: same pages, flags and list order."""
        mm, pbf = self.mem_map.copy(), self.pageblock_flags.copy()
        fa = FreeArea(mm, pbf, self.nr_orders, self.pageblock_order)
        for mt in range(MIGRATE_TYPES):
            for order in range(self.nr_orders):
                for pfn in self.free_area.blocks(mt, order).tolist():
                    fa.py_add(pfn, order, mt)   # rewrites the same slot into `private`
        twin = Machine(mm, pbf, fa, self.pageblock_order, self.nr_orders, list(self.runs),
                       None if self.occupied is None else self.occupied.copy())
        assert_same_machine(self, twin, "clone")
        return twin

    def free_lists(self):
        return [self.free_area.blocks(mt, o).tolist()
                for mt in range(MIGRATE_TYPES) for o in range(self.nr_orders)]

    def buddy_heads(self):
        return np.flatnonzero(self.mem_map["page_type"] == PGTY_BUDDY)


def assert_same_machine(a, b, label):
    """Byte-identical mem_map, pageblock flags and free lists (in list order)."""
    assert_same_pages(a.mem_map, b.mem_map, label)
    np.testing.assert_array_equal(a.pageblock_flags, b.pageblock_flags,
                                  err_msg=f"{label}: pageblock flags differ")
    assert a.free_lists() == b.free_lists(), f"{label}: free lists differ"
    np.testing.assert_array_equal(a.free_area.counts(), b.free_area.counts())
    fa, fb = a.free_area, b.free_area
    if hasattr(fa, "pcp_state") and hasattr(fb, "pcp_state"):
        assert fa.pcp_state() == fb.pcp_state(), f"{label}: pcp state differs"
        assert fa.below_high == fb.below_high, f"{label}: ZONE_BELOW_HIGH differs"
        la, lb = fa.pcp_lists(), fb.pcp_lists()
        assert {k: v.tolist() for k, v in la.items()} == {k: v.tolist() for k, v in lb.items()}, \
            f"{label}: pcp lists differ"


def zone_bits(nid, zone):
    return (nid << NODES_PGSHIFT) | (zone << ZONES_PGSHIFT)


@dataclass(frozen=True)
class Params:
    pageblock_order: int
    nr_orders: int
    n: int
    seed: int
    free_fraction: float
    nr_runs: int
    nr_folios: int
    isolate_fraction: float
    busy: float                 # scales how many pages carry flags that stop a scan


@st.composite
def params(draw):
    pageblock_order = draw(st.integers(3, 9))
    nr_orders = draw(st.integers(4, 11))
    unit = 1 << max(pageblock_order, nr_orders - 1)     # a buddy never leaves its unit
    n = unit * draw(st.integers(1, MAX_PFNS // unit))
    return Params(pageblock_order, nr_orders, n,
                  seed=draw(st.integers(0, 2**32 - 1)),
                  free_fraction=draw(st.sampled_from([0.0, 0.5, 0.9, 0.98, 1.0])),
                  nr_runs=draw(st.integers(0, 3)),
                  nr_folios=draw(st.integers(0, 12)),
                  isolate_fraction=draw(st.sampled_from([0.0, 0.3, 1.0])),
                  busy=draw(st.sampled_from([0.0, 0.1, 1.0])))


def new_machine(p, rng):
    """Zones, pageblock migratetypes and random in-use pages; no free, vmemmap or folio
    pages yet."""
    n, pbo = p.n, p.pageblock_order
    unit = 1 << max(pbo, p.nr_orders - 1)
    mm = np.zeros(n, PAGE_DTYPE)
    nb = n >> pbo
    pbf = rng.choice(np.array([MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_MOVABLE,
                               MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC, MIGRATE_CMA],
                              dtype=np.uint8), nb)
    pbf |= np.where(rng.random(nb) < 0.1, PB_migrate_skip, 0).astype(np.uint8)
    # Zones in ascending order over units, nodes mixed: buddies merge only within both.
    zones = np.sort(rng.integers(0, MAX_NR_ZONES, n // unit))
    nids = rng.integers(0, 2, n // unit)
    bits = np.repeat(zone_bits(nids, zones), unit).astype(np.uint32)
    flags = np.zeros(n, np.uint32)
    for bit, prob in ((PG_reserved, 0.1 * p.busy), (PG_lru, 0.3 * p.busy),
                      (PG_movable, 0.1 * p.busy), (PG_hwpoison, 0.05), (PG_isolated, 0.05),
                      (PG_vmemmap_self_hosted, 0.05)):
        flags |= np.where(rng.random(n) < prob, bit, 0).astype(np.uint32)
    stray = rng.random(n) < 0.02        # stray folio bits: scans must still agree
    flags |= np.where(stray, rng.choice(np.array([PG_head, PG_tail], np.uint32), n), 0
                      ).astype(np.uint32)
    mm["flags"] = flags | bits
    mm["page_type"] = rng.choice(np.array([PGTY_NONE, PGTY_OFFLINE, PGTY_TABLE, PGTY_SLAB],
                                          np.uint8), n, p=[0.7, 0.1, 0.1, 0.1])
    mm["order"] = np.where(stray, rng.integers(0, 4, n), 0)
    mm["refcount"] = rng.choice(np.array([0, 0, 1, 2, 3], np.uint16), n)
    mm["private"] = rng.integers(0, 1 << 40, n, dtype=np.uint64)
    fa = FreeArea(mm, pbf, p.nr_orders, pbo)
    return Machine(mm, pbf, fa, pbo, p.nr_orders, occupied=np.zeros(n, bool))


def page_bits(m, pfn):
    return int(m.mem_map["flags"][pfn]) & ~FLAGS_MASK & 0xFFFFFFFF


def add_vmemmap_run(m, start, nr_pages, link, nr_sections=1):
    """A seed-v3 run made by mark_vmemmap_pages; `link`: joined to the zone as onlining
    does (zone bits, refcount 1)."""
    bits = page_bits(m, start)
    _kernels.mark_vmemmap_pages(m.mem_map, start, nr_pages, nr_sections)
    if link:
        run = m.mem_map[start:start + nr_pages]
        run["flags"] |= bits
        run["refcount"] = 1
    m.runs.append((start, nr_pages))
    m.occupied[start:start + nr_pages] = True


def add_vmemmap_runs(m, rng, count):
    for _ in range(count):
        start = int(rng.integers(0, m.n))
        if rng.random() < 0.5:
            start &= ~((1 << m.pageblock_order) - 1)
        nr_pages = int(rng.integers(1, min(m.n - start, 3 << m.pageblock_order) + 1))
        if not m.occupied[start:start + nr_pages].any():
            add_vmemmap_run(m, start, nr_pages, link=rng.random() < 0.7,
                            nr_sections=int(rng.integers(0, 9)))


def add_folios(m, rng, count):
    for _ in range(count):
        order = int(rng.integers(1, min(m.nr_orders, 6)))
        head = int(rng.integers(0, m.n >> order)) << order
        pages = m.mem_map[head:head + (1 << order)]
        if m.occupied[head:head + (1 << order)].any():
            continue
        kind = rng.choice(np.array([0, PG_lru, PG_movable], np.uint32))
        pages["flags"] = page_bits(m, head) | int(kind) | PG_tail
        pages["flags"][0] = page_bits(m, head) | int(kind) | PG_head
        pages["page_type"] = PGTY_NONE
        pages["order"] = order
        pages["refcount"] = 0
        pages["refcount"][0] = int(rng.integers(1, 4))
        m.occupied[head:head + (1 << order)] = True


def free_block(m, pfn, order):
    """free_pages(): the pages become plain zone pages and go to the buddy (merging)."""
    pages = m.mem_map[pfn:pfn + (1 << order)]
    pages["flags"] = page_bits(m, pfn)
    pages["page_type"] = PGTY_NONE
    pages["order"] = 0
    pages["refcount"] = 0
    pages["private"] = 0
    m.free_area.py_free_one_page(pfn, order)
    m.occupied[pfn:pfn + (1 << order)] = True


def free_fill(m, rng, fraction):
    """Free about `fraction` of the unoccupied pages, as whole aligned blocks where the
    dice say so (max-order blocks included), else split further."""
    if fraction <= 0:
        return
    top = m.nr_orders - 1

    def region(pfn, order):
        span = m.occupied[pfn:pfn + (1 << order)]
        zones = m.mem_map["flags"][pfn:pfn + (1 << order)] & ~np.uint32(FLAGS_MASK)
        whole = not span.any() and (zones == zones[0]).all()
        if whole and rng.random() < fraction ** (1 << order) ** 0.3:
            free_block(m, pfn, order)
        elif order > 0 and not span.all():
            region(pfn, order - 1)
            region(pfn + (1 << (order - 1)), order - 1)

    for pfn in range(0, m.n, 1 << top):
        region(pfn, top)


def decorate_free_blocks(m, rng, prob=0.2):
    """Flag bits on some free heads (a page can be poisoned while free) and flag bits or a
    page type on some pages inside free blocks: the scans must skip a free block by its
    order, without looking inside. Neither touches what the buddy reads (head type and
    order, zone bits), so the free lists stay valid."""
    bits = np.array([PG_hwpoison, PG_lru, PG_reserved, PG_movable, PG_head], np.uint32)
    for head in m.buddy_heads().tolist():
        if rng.random() >= prob:
            continue
        size = 1 << int(m.mem_map["order"][head])
        pfn = head if rng.random() < 0.5 else head + int(rng.integers(0, size))
        m.mem_map["flags"][pfn] |= rng.choice(bits)
        if pfn != head and rng.random() < 0.5:
            m.mem_map["page_type"][pfn] = rng.choice(np.array([PGTY_OFFLINE, PGTY_SLAB],
                                                              np.uint8))
            m.mem_map["refcount"][pfn] = int(rng.integers(0, 2))


def isolate_pageblocks(m, first_pb, last_pb):
    """start_isolate_page_range() without the checks: the pageblocks' free pages go to the
    ISOLATE lists."""
    for pb in range(first_pb, last_pb):
        m.free_area.py_move_freepages_block(pb << m.pageblock_order, MIGRATE_ISOLATE)


ISOLATE = ["as_is", "range", "range_but_one"]


def isolate_range(m, rng, start_pfn, end_pfn, how):
    """As offline_pages() would have before the scan: every pageblock of the range
    isolated ("range"), or all but one put back (undo_isolate_page_range())."""
    if how == "as_is" or end_pfn <= start_pfn:
        return
    first, last = start_pfn >> m.pageblock_order, ((end_pfn - 1) >> m.pageblock_order) + 1
    isolate_pageblocks(m, first, last)
    if how == "range_but_one":
        pb = int(rng.integers(first, last))
        m.free_area.py_unset_migratetype_isolate(pb << m.pageblock_order)


def build(p, reserve=()):
    """The machine of `p`; pages in the `reserve` ranges stay out of the buddy."""
    rng = np.random.default_rng(p.seed)
    m = new_machine(p, rng)
    for start, end in reserve:
        m.occupied[start:end] = True
    add_vmemmap_runs(m, rng, p.nr_runs)
    add_folios(m, rng, p.nr_folios)
    free_fill(m, rng, p.free_fraction)
    decorate_free_blocks(m, rng)
    nb = m.n >> m.pageblock_order
    for pb in np.flatnonzero(rng.random(nb) < p.isolate_fraction).tolist():
        isolate_pageblocks(m, pb, pb + 1)
    return m, rng


def pick_range(m, rng, kind):
    """[start_pfn, end_pfn) of one of the shapes the kernels must agree on."""
    n, pb = m.n, 1 << m.pageblock_order
    if kind == "empty":
        a = int(rng.integers(0, n + 1))
        return a, a
    if kind == "pageblock":
        a = int(rng.integers(0, n // pb)) * pb
        return a, a + pb
    if kind == "aligned":
        a, b = sorted(rng.integers(0, n // pb + 1, 2).tolist())
        return a * pb, b * pb
    if kind == "whole":
        return 0, n
    if kind == "vmemmap_cut" and m.runs:            # a run crosses the end or the start
        s, nr = m.runs[int(rng.integers(0, len(m.runs)))]
        inside = s + int(rng.integers(1, nr)) if nr > 1 else s + 1   # in (s, s + nr)
        if rng.random() < 0.5:
            return int(rng.integers(0, s + 1)), inside
        return min(inside, s + nr - 1), int(rng.integers(inside, n + 1))
    if kind == "buddy_cut":                         # a free block crosses the end or start
        heads = m.buddy_heads()
        if heads.size:
            h = int(heads[rng.integers(0, heads.size)])
            size = 1 << int(m.mem_map["order"][h])
            cut = h + int(rng.integers(0, size))
            if rng.random() < 0.5:
                return int(rng.integers(0, h + 1)), cut + 1
            return cut, int(rng.integers(cut, n + 1))
    a, b = sorted(rng.integers(0, n + 1, 2).tolist())
    return a, b


RANGE_KINDS = ["random", "empty", "pageblock", "aligned", "whole", "vmemmap_cut",
               "buddy_cut"]


def run_all(backends, m, call):
    return _run_all(backends, m, call, assert_same_machine)


# ---------------------------------------------------------------------------------------
# the contract itself
# ---------------------------------------------------------------------------------------
def test_every_kernel_has_twins_with_the_same_signature(backends):
    cython_kernels = sorted(name for name, obj in vars(_kernels).items()
                            if callable(obj) and not name.startswith("_")
                            and getattr(obj, "__module__", None) == "pagecore.kernels.hotplug")
    assert cython_kernels == sorted(KERNELS)
    for name in KERNELS:
        want = list(inspect.signature(getattr(_kernels, name)).parameters)
        for backend, kernels in backends.items():
            got = list(inspect.signature(getattr(kernels, name)).parameters)
            assert got == want, f"{backend}.{name}{got} != _kernels.{name}{want}"
        for backend in ("numpy", "numba"):                  # docstrings name the twin
            assert f"_kernels.{name}" in getattr(backends[backend], name).__doc__


def test_get_backend(monkeypatch, backends):
    monkeypatch.delenv("PAGECORE_BACKEND", raising=False)
    assert get_backend() is _kernels
    assert get_backend("numpy") is reference
    assert get_backend("numba") is backends["numba"]
    monkeypatch.setenv("PAGECORE_BACKEND", "numpy")
    assert get_backend() is reference
    assert get_backend("cython") is _kernels
    for bad, env in (("fortran", None), (None, "CYTHON")):
        if env is not None:
            monkeypatch.setenv("PAGECORE_BACKEND", env)
        with pytest.raises(ValueError) as info:
            get_backend(bad)
        message = str(info.value)
        assert repr(bad if bad is not None else env) in message
        assert all(repr(name) in message for name in BACKENDS)


def test_numba_is_not_imported_by_pagecore():
    code = ("import sys, pagecore, pagecore.kernels.backends, pagecore.kernels.hotplug_numpy, pagecore.kernels.hotplug;"
            "pagecore.kernels.backends.get_backend(); pagecore.kernels.backends.get_backend('numpy');"
            "assert 'numba' not in sys.modules, 'numba imported'")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("PAGECORE_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------
# random machines
# ---------------------------------------------------------------------------------------
@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS), zone_movable=st.booleans(),
       memory_offline=st.booleans())
def test_has_unmovable_pages(backends, p, kind, zone_movable, memory_offline):
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    run_all(backends, m, lambda k, m: k.has_unmovable_pages(m.mem_map, a, b, zone_movable,
                                                            memory_offline))


@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS))
def test_scan_movable_pages(backends, p, kind):
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    run_all(backends, m, lambda k, m: k.scan_movable_pages(m.mem_map, a, b))


@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS), isolate=st.sampled_from(ISOLATE))
def test_test_pages_isolated(backends, p, kind, isolate):
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    isolate_range(m, rng, a, b, isolate)
    run_all(backends, m, lambda k, m: k.test_pages_isolated(
        m.mem_map, m.pageblock_flags, a, b, m.pageblock_order))


@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS), isolate=st.sampled_from(ISOLATE))
def test_offline_isolated_pages(backends, p, kind, isolate):
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    isolate_range(m, rng, a, b, isolate)
    run_all(backends, m, lambda k, m: k.offline_isolated_pages(m.mem_map, m.free_area,
                                                               a, b))


@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS + ["to_end"]),
       nr_sections=st.integers(0, 2**32 - 1))
def test_mark_vmemmap_pages(backends, p, kind, nr_sections):
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    if kind == "to_end":
        b = m.n
    run_all(backends, m, lambda k, m: k.mark_vmemmap_pages(m.mem_map, a, b - a,
                                                           nr_sections))


@st.composite
def online_batches(draw):
    p = draw(params())
    block_pages = 1 << (p.pageblock_order + draw(st.integers(0, 2)))
    block_pages = min(block_pages, p.n)
    nr_blocks = p.n // block_pages
    first = draw(st.integers(0, nr_blocks - 1))
    count = draw(st.integers(0, nr_blocks - first))
    return dict(p=p, block_pages=block_pages, blocks=list(range(first, first + count)),
                vmemmap=draw(st.sampled_from(["none", "pageblocks", "any", "v3_run",
                                              "whole"])),
                keep_vmemmap_type=draw(st.booleans()),
                nid=draw(st.integers(0, 1)), zone=draw(st.integers(0, MAX_NR_ZONES - 1)),
                vmemmap_flags=draw(st.sampled_from(
                    [0, PG_reserved, PG_reserved | PG_vmemmap_self_hosted])),
                vmemmap_mt=draw(st.sampled_from([MIGRATE_UNMOVABLE, MIGRATE_MOVABLE])),
                num_threads=draw(st.integers(1, 2)),
                shuffle=draw(st.booleans()))


def nr_vmemmap_for(b, rng, m, starts):
    """Pages of memmap at the start of each block, per `b["vmemmap"]`; v3 runs are made
    with mark_vmemmap_pages over consecutive blocks (a run may cross block ends)."""
    bp, pb = b["block_pages"], 1 << m.pageblock_order
    nr = np.zeros(len(starts), np.int64)
    if b["vmemmap"] == "pageblocks":
        nr[:] = rng.integers(0, bp // pb, len(starts)) * pb
    elif b["vmemmap"] == "any":
        nr[:] = rng.integers(0, bp + 1, len(starts))
    elif b["vmemmap"] == "whole":
        nr[:] = bp
    elif b["vmemmap"] == "v3_run" and starts:
        total = int(rng.integers(1, bp * len(starts) + 1))
        add_vmemmap_run(m, starts[0], total, link=False, nr_sections=len(starts))
        nr[:] = np.clip(total - bp * np.arange(len(starts)), 0, bp)
    if b["vmemmap"] in ("pageblocks", "any", "whole"):
        for s, v in zip(starts, nr.tolist()):
            if v and rng.random() < 0.5:
                add_vmemmap_run(m, s, v, link=False)
    return nr


@SETTINGS
@given(b=online_batches())
def test_online_memory_blocks(backends, b):
    bp = b["block_pages"]
    starts = [blk * bp for blk in b["blocks"]]
    m, rng = build(b["p"], reserve=[(s, s + bp) for s in starts])
    nr_vmemmap = nr_vmemmap_for(b, rng, m, starts)
    order = rng.permutation(len(starts)) if b["shuffle"] else np.arange(len(starts))
    start_pfns = np.array(starts, np.int64)[order]
    nr_vmemmap = np.ascontiguousarray(nr_vmemmap[order])
    start_copy, nr_copy = start_pfns.copy(), nr_vmemmap.copy()

    def online(k, m):
        return k.online_memory_blocks(
            m.mem_map, m.pageblock_flags, m.free_area, start_pfns, nr_vmemmap, bp,
            b["nid"], b["zone"], b["vmemmap_flags"], b["vmemmap_mt"],
            b["keep_vmemmap_type"], b["num_threads"])

    freed, after = run_all(backends, m, online)
    assert freed == int((bp - nr_vmemmap).sum())    # every non-vmemmap page went free
    np.testing.assert_array_equal(start_pfns, start_copy)
    np.testing.assert_array_equal(nr_vmemmap, nr_copy)


# ---------------------------------------------------------------------------------------
# inputs a kernel must not write
# ---------------------------------------------------------------------------------------
@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS), flag=st.booleans())
def test_scanners_modify_nothing(backends, p, kind, flag):
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    calls = [lambda k, m: k.has_unmovable_pages(m.mem_map, a, b, flag, not flag),
             lambda k, m: k.scan_movable_pages(m.mem_map, a, b),
             lambda k, m: k.test_pages_isolated(m.mem_map, m.pageblock_flags, a, b,
                                                m.pageblock_order)]
    for name, kernels in backends.items():
        for call in calls:
            mine = m.clone()
            call(kernels, mine)
            assert_same_machine(m, mine, f"{name} scanner wrote its input")


@SETTINGS
@given(p=params(), kind=st.sampled_from(RANGE_KINDS))
def test_writers_stay_in_their_range(backends, p, kind):
    """mark_vmemmap_pages() writes only [start, start + nr); offline_isolated_pages()
    leaves the pageblock flags and every page that is not a free block alone, except for
    the `private` slot of pages moved inside a free list."""
    m, rng = build(p)
    a, b = pick_range(m, rng, kind)
    for name, kernels in backends.items():
        mine = m.clone()
        kernels.mark_vmemmap_pages(mine.mem_map, a, b - a, 1)
        outside = np.ones(m.n, bool)
        outside[a:b] = False
        np.testing.assert_array_equal(mine.mem_map[outside], m.mem_map[outside],
                                      err_msg=f"{name}: mark wrote outside its range")
        np.testing.assert_array_equal(mine.pageblock_flags, m.pageblock_flags)

        mine = m.clone()
        kernels.offline_isolated_pages(mine.mem_map, mine.free_area, a, b)
        np.testing.assert_array_equal(mine.pageblock_flags, m.pageblock_flags)
        keep = m.mem_map["page_type"] != PGTY_BUDDY
        for name_ in ("flags", "page_type", "order", "refcount"):
            np.testing.assert_array_equal(mine.mem_map[name_][keep], m.mem_map[name_][keep],
                                          err_msg=f"{name}: offline wrote {name_}")


# ---------------------------------------------------------------------------------------
# edge cases, built by hand
# ---------------------------------------------------------------------------------------
def plain_machine(n=2048, pageblock_order=4, nr_orders=8, zone=2):
    mm = np.zeros(n, PAGE_DTYPE)
    mm["flags"] = zone_bits(0, zone)
    mm["refcount"] = 1
    mm["flags"][::7] |= PG_lru
    pbf = np.full(n >> pageblock_order, MIGRATE_MOVABLE, np.uint8)
    fa = FreeArea(mm, pbf, nr_orders, pageblock_order)
    return Machine(mm, pbf, fa, pageblock_order, nr_orders, occupied=np.zeros(n, bool))


def scanner_calls(a, b):
    return [lambda k, m: k.has_unmovable_pages(m.mem_map, a, b, False, True),
            lambda k, m: k.has_unmovable_pages(m.mem_map, a, b, True, False),
            lambda k, m: k.scan_movable_pages(m.mem_map, a, b),
            lambda k, m: k.test_pages_isolated(m.mem_map, m.pageblock_flags, a, b,
                                               m.pageblock_order),
            lambda k, m: k.offline_isolated_pages(m.mem_map, m.free_area, a, b),
            lambda k, m: k.mark_vmemmap_pages(m.mem_map, a, b - a, 2)]


@pytest.mark.parametrize("at", [0, 100, 2048])
def test_edge_empty_range(backends, at):
    m = plain_machine()
    free_block(m, 512, 7)
    for call in scanner_calls(at, at):
        run_all(backends, m, call)
    run_all(backends, m, lambda k, m: k.online_memory_blocks(
        m.mem_map, m.pageblock_flags, m.free_area, np.empty(0, np.int64),
        np.empty(0, np.int64), 256, 0, 2, PG_reserved, MIGRATE_UNMOVABLE, False, 2))


@pytest.mark.parametrize("isolated", [False, True])
def test_edge_one_pageblock(backends, isolated):
    m = plain_machine()
    free_block(m, 32, 4)                            # exactly pageblock 2
    free_block(m, 48, 2)
    m.mem_map["flags"][52] |= PG_hwpoison
    m.mem_map["page_type"][53] = PGTY_OFFLINE
    m.mem_map["refcount"][53] = 0
    if isolated:
        isolate_pageblocks(m, 2, 4)
    for a in (32, 48):
        for call in scanner_calls(a, a + 16):
            run_all(backends, m, call)


@pytest.mark.parametrize("link", [False, True])
def test_edge_vmemmap_run_crossing_range_end(backends, link):
    m = plain_machine()
    add_vmemmap_run(m, 256, 96, link=link, nr_sections=3)   # [256, 352)
    free_block(m, 352, 5)
    isolate_pageblocks(m, 16, 24)
    for a, b in ((256, 300), (200, 257), (300, 384), (351, 352), (257, 352), (256, 384)):
        for call in scanner_calls(a, b):
            run_all(backends, m, call)


@pytest.mark.parametrize("keep", [False, True])
def test_edge_whole_block_vmemmap(backends, keep):
    m = plain_machine()
    bp = 256
    starts = [512, 768, 1024]
    add_vmemmap_run(m, 512, 2 * bp + 40, link=False, nr_sections=3)  # v3: one call
    nr = np.array([bp, bp, 40], np.int64)
    _, after = run_all(backends, m, lambda k, m: k.online_memory_blocks(
        m.mem_map, m.pageblock_flags, m.free_area, np.array(starts, np.int64), nr, bp,
        0, 3, PG_reserved, MIGRATE_MOVABLE, keep, 2))
    for call in scanner_calls(512, 1280):
        run_all(backends, after, call)
    for call in scanner_calls(512, 768):                     # all vmemmap
        run_all(backends, after, call)


def test_edge_buddy_of_max_order(backends):
    m = plain_machine()
    top = m.nr_orders - 1
    for pfn in range(1024, 1024 + (1 << top), 1):           # freed page by page: merges up
        free_block(m, pfn, 0)
    assert m.mem_map["order"][1024] == top and m.mem_map["page_type"][1024] == PGTY_BUDDY
    for a, b in ((1024, 1024 + (1 << top)), (1024, 1030), (1000, 1100), (1100, 1200)):
        for call in scanner_calls(a, b):
            run_all(backends, m, call)
    isolate_pageblocks(m, 1024 >> 4, (1024 + (1 << top)) >> 4)
    for call in scanner_calls(1024, 1024 + (1 << top)):
        run_all(backends, m, call)
    # onlining next to it merges up to the top order again
    m2 = plain_machine()
    free_block(m2, 1088, top - 1)
    _, after = run_all(backends, m2, lambda k, m: k.online_memory_blocks(
        m.mem_map, m.pageblock_flags, m.free_area, np.array([1024], np.int64),
        np.array([0], np.int64), 64, 0, 2, 0, MIGRATE_UNMOVABLE, False, 1))
    assert after.mem_map["order"][1024] == top            # the online chunk merged


# ---------------------------------------------------------------------------------------
# the chunked two-thread scans (_kernels._*_mt): same answer as the serial scan
# ---------------------------------------------------------------------------------------
def _scan_pages(n=4096, seed=0):
    """LRU pages with naturally aligned free blocks (orders 0..7), an order-4 LRU folio
    and one misaligned free block (a jump that lands off any chunk boundary)."""
    from pagecore.kernels import page as _page
    rng = np.random.default_rng(seed)
    mm = lru_pages_with_free_blocks(rng, n)
    mm[96:112] = 0                                      # an LRU folio, order 4
    mm["flags"][96:112] = int(_page.PG_lru | _page.PG_tail)
    mm["flags"][96] = int(_page.PG_lru | _page.PG_head)
    mm["order"][96:112], mm["refcount"][96] = 4, 1
    mm[190:200] = 0                                     # free block misaligned on purpose
    mm["page_type"][190], mm["order"][190] = int(_page.PGTY_BUDDY), 3
    return mm


@pytest.mark.parametrize("bad", [[], [70], [200], [130, 1500], [64], [3000, 4095], [191]])
@pytest.mark.parametrize("chunk", [64, 100, 1024])
@pytest.mark.parametrize("threads", [1, 2])
def test_parallel_isolation_scans_match_serial(bad, chunk, threads):
    from pagecore.kernels import page as _page
    mm = _scan_pages()
    for pfn in bad:                                     # offenders: reserved pages
        mm["flags"][pfn] |= int(_page.PG_reserved)
    pbf = np.full(len(mm) >> 6, int(_page.PB_migrate_isolate), np.uint8)
    for start, end in [(0, len(mm)), (5, len(mm) - 3), (129, 2049)]:
        for zm in (False, True):
            want = reference.has_unmovable_pages(mm, start, end, zm, True)
            assert _kernels._has_unmovable_pages_mt(mm, start, end, zm, True, threads,
                                                    chunk) == want
        want = reference.scan_movable_pages(mm, start, end)
        assert _kernels._scan_movable_pages_mt(mm, start, end, threads, chunk) == want
        free = mm.copy()                                # everything free but `bad`
        free["flags"] &= ~np.uint32(_page.PG_lru)
        for pfn in bad:
            free["flags"][pfn] |= int(_page.PG_lru)
        want = reference.test_pages_isolated(free, pbf, start, end, 6)
        assert _kernels._test_pages_isolated_mt(free, pbf, start, end, 6, threads,
                                                chunk) == want
        want = reference.scan_movable_pages(free, start, end)
        assert _kernels._scan_movable_pages_mt(free, start, end, threads, chunk) == want


# ---------------------------------------------------------------------------------------
# the 64-page block tests of the isolation scans (pagecore/kernels/scanblock.pxd)
# ---------------------------------------------------------------------------------------
# The random machines above rarely hold a block a block test passes; these are built
# from the page kinds the fast paths are about (LRU and free pages, free blocks of every
# order, aligned or not, LRU folios, unreferenced PageOffline pages), with offenders put
# on block edges, right after a long jump, inside free blocks and on chunk boundaries.
BLK = 64


def _set_kind(mm, pfn, kind, order=0):
    """Write one page (or, for "buddy"/"folio*", a block headed at `pfn`) of `kind`."""
    zb = zone_bits(0, 3)
    size = 1 << order if kind in ("buddy", "folio_lru", "folio") else 1
    pages = mm[pfn:pfn + size]
    pages["flags"], pages["page_type"], pages["order"] = zb, PGTY_NONE, 0
    pages["refcount"], pages["private"] = 0, 7
    if kind == "lru":
        pages["flags"], pages["refcount"] = zb | PG_lru, 1
    elif kind == "movable":
        pages["flags"], pages["refcount"] = zb | PG_movable, 2
    elif kind == "buddy":                       # interior pages stay plain free pages
        mm["page_type"][pfn], mm["order"][pfn] = PGTY_BUDDY, order
    elif kind in ("folio_lru", "folio"):
        bit = PG_lru if kind == "folio_lru" else 0
        pages["flags"], pages["order"] = zb | bit | PG_tail, order
        mm["flags"][pfn], mm["refcount"][pfn] = zb | bit | PG_head, 1
    elif kind == "offline0":
        pages["page_type"] = PGTY_OFFLINE
    elif kind == "offline1":
        pages["page_type"], pages["refcount"] = PGTY_OFFLINE, 1
    elif kind == "reserved":
        pages["flags"], pages["refcount"] = zb | PG_reserved, 1
    elif kind == "slab":
        pages["page_type"], pages["refcount"] = PGTY_SLAB, 1
    elif kind == "hwpoison":
        pages["flags"], pages["refcount"] = zb | PG_hwpoison, 1
    elif kind == "busy":                        # kernel memory: referenced, no type
        pages["refcount"] = 1
    elif kind == "stale_order":                 # a free page that once headed a block
        pages["order"] = order
    else:
        assert kind == "free", kind
    return size


FILL = {"hup": (["lru"] * 6 + ["free"] * 2 + ["buddy"] * 3 + ["folio_lru", "movable"]),
        "offline": ["buddy"] * 6 + ["offline0"] * 4 + ["free", "stale_order"]}
OFFENDERS = ["reserved", "slab", "busy", "offline1", "lru", "free", "hwpoison", "folio",
             "buddy_misaligned", "buddy_big", "vmemmap"]


def block_friendly_machine(seed, mode, n=2048, nr_offenders=2):
    """`n` pages of the `mode` mix ("hup": LRU / free pages, free blocks, LRU folios;
    "offline": free blocks and unreferenced PageOffline pages, the state after
    migration), then `nr_offenders` pages or blocks of other kinds, half of them on a
    block's first or last page or right after a free block or folio longer than a
    block."""
    rng = np.random.default_rng(seed)
    m = plain_machine(n=n, pageblock_order=6, nr_orders=11, zone=3)
    mm = m.mem_map
    p, long_ends = 0, []
    while p < n:
        kind = str(rng.choice(FILL[mode]))
        order = 0
        if kind in ("buddy", "folio_lru"):
            order = int(rng.choice([0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 9, 10]))
            while order and (p % (1 << order) or p + (1 << order) > n):
                order -= 1
        elif kind == "stale_order":
            order = int(rng.integers(0, 11))
        p += _set_kind(mm, p, kind, order)
        if order > 6:
            long_ends.append(p)
    for _ in range(nr_offenders):
        where = rng.random()
        if where < 0.25:
            pfn = int(rng.integers(0, n // BLK)) * BLK
        elif where < 0.5:
            pfn = int(rng.integers(0, n // BLK)) * BLK + BLK - 1
        elif where < 0.65 and long_ends:
            pfn = min(n - 1, int(rng.choice(long_ends)))
        else:
            pfn = int(rng.integers(0, n))
        kind = str(rng.choice(OFFENDERS))
        if kind == "folio":                     # not movable: unmovable, and not free
            order = int(rng.integers(1, 8))
            pfn &= ~((1 << order) - 1)
            _set_kind(mm, pfn, "folio", order)
        elif kind == "buddy_misaligned":        # a free block off its alignment, maybe
            order = int(rng.integers(1, 5))     # across a block boundary
            pfn = max(1, min(pfn, n - (1 << order))) | 1
            _set_kind(mm, pfn, "buddy", order)
        elif kind == "buddy_big":               # fits its alignment, leaves the block
            order = int(rng.integers(6, 11))
            pfn &= ~((1 << order) - 1)
            if pfn + (1 << order) <= n:
                _set_kind(mm, pfn, "buddy", order)
        elif kind == "vmemmap":
            nr = int(rng.integers(1, 200))
            start = min(pfn, n - nr)
            _kernels.mark_vmemmap_pages(mm, start, nr, 1)
            mm["flags"][start:start + nr] |= zone_bits(0, 3)
            mm["refcount"][start:start + nr] = 1
        else:
            _set_kind(mm, pfn, kind)
    return m


def _edge_ranges(n, rng):
    """Ranges starting and ending on, next to and between block boundaries."""
    edges = [0, 1, 31, 63, 64, 65, 127, 128, 129, 1000, 1023, 1024, 1025, n - 65, n - 1]
    out = [(0, n)]
    for a in edges:
        for b in (a + 1, a + 63, a + 64, a + 65, a + 130, n - 1, n):
            if 0 <= a < b <= n:
                out.append((a, b))
    out += [tuple(sorted(rng.integers(0, n + 1, 2).tolist())) for _ in range(8)]
    return out


_FAST_PATH_DRAWS = dict(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["hup", "offline"]),
                       nr_offenders=st.sampled_from([0, 1, 3, 8]))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_FAST_PATH_DRAWS)
def test_block_fast_paths_match_the_reference(backends, seed, mode, nr_offenders):
    """Eight draws here; the `big` run takes thirty."""
    _block_fast_paths_match_the_reference(backends, seed, mode, nr_offenders)


@pytest.mark.big
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_FAST_PATH_DRAWS)
def test_block_fast_paths_match_the_reference_big(backends, seed, mode, nr_offenders):
    _block_fast_paths_match_the_reference(backends, seed, mode, nr_offenders)


def _block_fast_paths_match_the_reference(backends, seed, mode, nr_offenders):
    m = block_friendly_machine(seed, mode, nr_offenders=nr_offenders)
    pbf = np.full(m.n >> 6, PB_migrate_isolate | MIGRATE_MOVABLE, np.uint8)
    rng = np.random.default_rng(seed)
    for a, b in _edge_ranges(m.n, rng):
        want = [reference.has_unmovable_pages(m.mem_map, a, b, False, True),
                reference.has_unmovable_pages(m.mem_map, a, b, False, False),
                reference.has_unmovable_pages(m.mem_map, a, b, True, True),
                reference.scan_movable_pages(m.mem_map, a, b),
                reference.test_pages_isolated(m.mem_map, pbf, a, b, 6)]
        for name in ("cython", "numba"):
            k = backends[name]
            got = [k.has_unmovable_pages(m.mem_map, a, b, False, True),
                   k.has_unmovable_pages(m.mem_map, a, b, False, False),
                   k.has_unmovable_pages(m.mem_map, a, b, True, True),
                   k.scan_movable_pages(m.mem_map, a, b),
                   k.test_pages_isolated(m.mem_map, pbf, a, b, 6)]
            assert got == want, f"{name} [{a}, {b}): {got} != {want}"
        for threads, chunk in ((2, 64), (2, 100), (1, 128)):
            assert [_kernels._has_unmovable_pages_mt(m.mem_map, a, b, False, True, threads,
                                                     chunk),
                    _kernels._scan_movable_pages_mt(m.mem_map, a, b, threads, chunk),
                    _kernels._test_pages_isolated_mt(m.mem_map, pbf, a, b, 6, threads,
                                                     chunk)] == [want[0], want[3], want[4]]


def test_vmemmap_run_ending_before_a_page_stops_no_scan_forever(backends):
    """Overlapping vmemmap runs (two v3 marks, the second over the first's tail) leave a
    tail whose distance back to its head equals the head's run length: 0 pages left.
    A loop stepping by it never ends; every backend's isolation scans stop there
    (an offender, -EBUSY) and the migrate scanners pass it as one page, alike (found by
    hypothesis: block_friendly_machine(10911, "offline", nr_offenders=3))."""
    from pagecore.kernels import compaction as _compaction, compaction_numpy as reference_compaction
    m = block_friendly_machine(10911, "offline", nr_offenders=3)
    mm, n = m.mem_map, m.n
    pbf = np.full(n >> 6, PB_migrate_isolate | MIGRATE_MOVABLE, np.uint8)
    results = {}
    for name, k in backends.items():
        results[name] = [k.has_unmovable_pages(mm, 0, n, False, True),
                         k.scan_movable_pages(mm, 0, n),
                         k.test_pages_isolated(mm, pbf, 0, n, 6)]
    assert results["cython"] == results["numba"] == results["numpy"]
    stop = results["numpy"][0]
    assert mm["page_type"][stop] == PGTY_VMEMMAP                  # the corrupt tail
    got = []
    for k in (_compaction, reference_compaction, C.get_compaction_backend("numba")):
        pages, flags = mm.copy(), np.full(n >> 6, MIGRATE_MOVABLE, np.uint8)
        out = np.full(n, -1, np.int64)
        r = k.isolate_migratepages_block(pages, flags, stop - 1, stop + 64, 6, True, out,
                                         -1, True, False)
        got.append((tuple(int(x) for x in r), out.tolist(), pages.tobytes()))
    assert got[0] == got[1] == got[2]


def test_block_fast_paths_pass_what_they_should():
    """The fast paths are taken: every block made only of pages each test is meant to
    pass in one step does pass (a test that always said no would be exact and slow)."""
    rng = np.random.default_rng(5)
    kinds = {"hup": ["lru", "lru", "free", "movable", "buddy"],
             "offline": ["buddy", "buddy", "offline0"]}
    for mode, tests in (("hup", ("has_unmovable_pages", "has_unmovable_pages_movable")),
                        ("offline", ("scan_movable_pages", "test_pages_isolated"))):
        for _ in range(200):
            mm = np.zeros(BLK, PAGE_DTYPE)
            p = 0
            while p < BLK:
                kind = str(rng.choice(kinds[mode]))
                order = int(rng.integers(0, 7)) if kind in ("buddy", "stale_order") else 0
                while order and (p % (1 << order) or p + (1 << order) > BLK):
                    order -= 1
                p += _set_kind(mm, p, kind, order)
            res = _kernels._block_tests(mm, 0, 0)
            for t in tests:
                assert res[t] == (True, True), (mode, t, mm)


def _random_block(rng):
    """A 64-page block: page kinds drawn as for block_friendly_machine() (passing
    blocks are common), then a few bytes of the first 8 of some pages overwritten at
    random (types, orders, refcounts and flags the rules never see together)."""
    mode = str(rng.choice(["hup", "offline"]))
    mm = np.zeros(BLK, PAGE_DTYPE)
    p = 0
    while p < BLK:
        kind = str(rng.choice(FILL[mode] + (["offline1", "hwpoison", "reserved"]
                                            if rng.random() < 0.2 else [])))
        order = int(rng.integers(0, 8)) if kind in ("buddy", "folio_lru", "stale_order") else 0
        if kind != "stale_order" and rng.random() < 0.9:     # mostly aligned and inside
            while order and (p % (1 << order) or p + (1 << order) > BLK):
                order -= 1
        if kind in ("buddy", "folio_lru"):
            order = min(order, 6)
            if p + (1 << order) > BLK:
                mm["page_type"][p], mm["order"][p] = PGTY_BUDDY, order
                p += 1
                continue
        p += _set_kind(mm, p, kind, order)
    raw = mm.view(np.uint8).reshape(BLK, 16)
    for _ in range(int(rng.integers(0, 4))):
        raw[rng.integers(0, BLK), rng.integers(0, 8)] = rng.integers(0, 256)
    if rng.random() < 0.05:
        raw[:, :8] = rng.integers(0, 256, (BLK, 8))
    return mm


@pytest.mark.parametrize("draws", [4000, pytest.param(20000, marks=pytest.mark.big)])
def test_block_tests_simd_equals_scalar(draws):
    """Each SIMD block test answers as its scalar twin (what builds without SSE2 use)."""
    rng = np.random.default_rng(20240917)
    seen = {}
    for _ in range(draws):
        mm = _random_block(rng)
        entry = int(rng.integers(0, BLK)) if rng.random() < 0.5 else 0
        for name, got in _kernels._block_tests(mm, 0, entry).items():
            if name == "simd":
                continue
            assert got[0] == got[1], f"{name}: SIMD {got[0]} != scalar {got[1]}: {mm}"
            seen[(name, got[0])] = seen.get((name, got[0]), 0) + 1
    for name in ("has_unmovable_pages", "has_unmovable_pages_movable",
                 "scan_movable_pages", "test_pages_isolated"):
        assert seen.get((name, True), 0) > draws // 200 and seen.get((name, False), 0) > draws // 200, seen


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000])
def test_page_stores_simd_equal_scalar_and_the_record(n):
    """The page stores of kernels/pageinit.h (init_pages(), mark_vmemmap_pages()): the SSE2
    forms write what their scalar twins (builds without SSE2) write, and that is n
    copies of the template, the Vmemmap run's with vmemmap_head = its index."""
    rng = np.random.default_rng(n)
    tmpl = rng.integers(0, 256, 16, dtype=np.uint8)
    got = _kernels._page_store_twins(tmpl, n)
    for name in ("pages", "vmemmap_run"):
        assert got[name][0] == got[name][1], name
    assert got["pages"][0] == tmpl.tobytes() * n
    want = np.tile(tmpl, (n, 1))
    want[:, 8:12] = np.arange(n, dtype="<u4").view(np.uint8).reshape(n, 4)
    assert got["vmemmap_run"][0] == want.tobytes()


@pytest.mark.parametrize("order", [0, 1, 3, 5, 6])
@pytest.mark.parametrize("entry", [0, 1, 2, 8, 33, 63])
def test_tpi_block_follows_the_trajectory(backends, order, entry):
    """test_pages_isolated() entering a block at every kind of offset: inside a free
    block (its interior pages are offenders when visited), at a head, after it; free
    blocks of each order tiling the block, unreferenced PageOffline pages between."""
    m = plain_machine(n=256, pageblock_order=6, nr_orders=11, zone=3)
    mm = m.mem_map
    for pfn in range(256):
        _set_kind(mm, pfn, "offline0")
    p = 64
    while p < 128:
        p += _set_kind(mm, p, "buddy", order)
        if p < 128:
            p += _set_kind(mm, p, "offline0")
            while p % (1 << order) and p < 128:
                p += _set_kind(mm, p, "offline0")
    pbf = np.full(4, PB_migrate_isolate, np.uint8)
    for a in (64 + entry, 64 + entry - (entry > 0)):
        for b in (128, 129, 256, 64 + entry + 1):
            if a < b:
                run_all(backends, m, lambda k, m: k.test_pages_isolated(
                    m.mem_map, pbf, a, b, 6))
                run_all(backends, m, lambda k, m: k.scan_movable_pages(m.mem_map, a, b))


@pytest.mark.parametrize("head,order", [(33, 5), (48, 5), (56, 4), (60, 3), (62, 2),
                                        (63, 1), (1, 6), (32, 6), (63, 4)])
@pytest.mark.parametrize("mode", ["hup", "offline"])
def test_free_block_across_a_block_end(backends, head, order, mode):
    """A free block (off its alignment) that starts in one 64-page block and ends in the
    next: the scan jumps over the next block's first pages, which hold offenders; a
    block test that passed the first block would land the scan on them."""
    m = plain_machine(n=512, pageblock_order=6, nr_orders=11, zone=3)
    mm = m.mem_map
    for pfn in range(512):
        _set_kind(mm, pfn, "lru" if mode == "hup" else "offline0")
    _set_kind(mm, 64 + head, "buddy", order)
    end = 64 + head + (1 << order)
    for pfn in range(128, min(end, 512)):
        _set_kind(mm, pfn, "reserved")      # unmovable; also not free
    _set_kind(mm, min(end, 511), "slab")
    pbf = np.full(8, PB_migrate_isolate, np.uint8)
    for a in (0, 64, 64 + head):
        for call in scanner_calls(a, 512)[:3] + [
                lambda k, m: k.test_pages_isolated(m.mem_map, pbf, a, 512, 6)]:
            run_all(backends, m, call)
