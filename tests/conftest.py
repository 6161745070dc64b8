"""Shared helpers for the engine tests: small machines, the "a failed call changes
nothing" check (pagecore/machine.py's docstring; Machine.snapshot()), and the backend
parity driver of the kernel tests (run_all())."""
import numpy as np
import pytest

from pagecore import GiB, Machine, MachineConfig, NodeConfig


def small_vm(arch="x86_64", boot=2 * GiB, **kw):
    """A one-node VM with `boot` bytes of RAM from physical address 0."""
    return Machine(MachineConfig(arch=arch, nodes=[NodeConfig(boot=[(0, boot)])], **kw))


def assert_fails_unchanged(machine, exc, fn, *args, **kwargs):
    """`fn(*args, **kwargs)` must raise `exc` and leave machine.snapshot() as it was,
    but for the per-cpu lists: a refused offline drains them (zone_pcp_disable()), a
    failed allocation too (the slow path's drain_all_pages()), and the traffic of the
    call moves their tuning counters, as in the kernel. So the lists are drained before
    and after, and snapshot(pcp=False) compared. Returns the exception for further
    checks of its message."""
    machine.drain_all_pages()
    before = machine.snapshot(pcp=False)
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    machine.drain_all_pages()
    after = machine.snapshot(pcp=False)
    for key in before:
        assert after[key] == before[key], f"failed call changed the machine: {key}"
    return info.value


@pytest.fixture
def vm():
    """x86_64 VM, 2 GiB of boot RAM (all in ZONE_DMA/DMA32), 128 MiB blocks."""
    return small_vm()


# ---- kernel parity: every backend against the numpy reference -------------------------
def shape_of(result):
    """Python types of a result: every backend returns plain ints and bools (or a tuple
    of them)."""
    if isinstance(result, tuple):
        return tuple(type(x) for x in result)
    return type(result)


def _kept_words(pages):
    """The page words with `order` cleared where it is not state: on an unreferenced
    page of no type (buddy_order() needs PageBuddy; a free block's inside, a page on a
    pcp list). Word 0 is flags | page_type << 32 | order << 40 | refcount << 48."""
    w = pages.view(np.uint64).reshape(-1, 2).copy()
    stale = (((w[:, 0] >> np.uint64(32)) & np.uint64(0xFF)) == 0) & ((w[:, 0] >> np.uint64(48)) == 0)  # PGTY_NONE = 0
    w[stale, 0] &= ~np.uint64(0xFF << 40)
    return w


def assert_same_pages(a, b, label):
    """Page arrays (mem_map) identical in every kept field (_kept_words()), naming the
    first pfn that differs."""
    wa, wb = _kept_words(a), _kept_words(b)
    if not np.array_equal(wa, wb):
        diff = np.flatnonzero((wa != wb).any(axis=1))
        pfn = int(diff[0])
        raise AssertionError(f"{label}: mem_map differs at {diff.size} pfns, first {pfn}: "
                             f"{a[pfn]} != {b[pfn]}")


def run_all(backends, state, call, assert_same):
    """`call(kernels, clone)` on a clone of `state` per backend: every backend returns
    what the numpy reference returns, with the same Python types, and
    `assert_same(reference clone, clone, label)` holds. Returns the reference's result
    and clone."""
    ref_state = state.clone()
    ref = call(backends["numpy"], ref_state)
    for name, kernels in backends.items():
        if name == "numpy":
            continue
        mine = state.clone()
        got = call(kernels, mine)
        assert got == ref, f"{name} returned {got!r}, numpy reference {ref!r}"
        assert shape_of(got) == shape_of(ref), f"{name} returned {got!r}: types differ"
        assert_same(ref_state, mine, f"{name} vs numpy")
    return ref, ref_state


def lru_pages_with_free_blocks(rng, n):
    """`n` LRU pages (refcount 1) among naturally aligned free blocks of orders 0..7, as
    an aged movable zone has them, drawn from `rng`: the common input of the scanners'
    block-path tests, which add their own folios and odd blocks."""
    from pagecore.kernels import page as _page
    mm = np.zeros(n, _page.PAGE_DTYPE)
    mm["flags"], mm["refcount"] = int(_page.PG_lru), 1
    p = 0
    while p < n:
        o = int(rng.integers(0, 8)) if rng.random() < 0.4 else 0
        if p % (1 << o) or p + (1 << o) > n:
            o = 0
        if o or rng.random() < 0.5:
            mm[p:p + (1 << o)] = 0
            mm["page_type"][p], mm["order"][p] = int(_page.PGTY_BUDDY), o
        p += 1 << o
    return mm
