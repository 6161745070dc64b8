"""Figures: the physical memory map per strategy, memmap overhead, and the balloon limit.

matplotlib is imported inside the plotting functions (the `plot` extra), through the Agg
canvas directly, so importing pagecore never needs it and no global backend is changed.
Every plot writes a PNG and returns its path.

The memory map is drawn at pageblock resolution. `pageblock_states()` classifies each
pageblock from the machine's arrays without a Python loop over pages; page classes are
numbered by priority, so that the pageblock's class under the default "priority" rule is
the maximum over its pages:

    0 hole        not present (no section, or a pfn outside the boot ranges of a section)
    1 offline     present, in an offline memory block
    2 free        in the buddy (refcount 0, not reserved)
    3 movable     LRU or non-LRU movable (PG_lru / PG_movable)
    4 unmovable   any other allocated or reserved page (kernel image, slab, page tables)
    5 memmap      struct pages (or their vmemmap page tables) living outside the memory
                  they describe: boot memmap from memblock, classic hot-add memmap from
                  the buddy allocator
    6 vmemmap     self-hosted memmap: the first V pages of a block added with an altmap
                  (memmap_on_memory), online or offline, including force-mode padding

Priority answers "what keeps this pageblock from being offlined or handed out whole": one
unmovable page is enough. `rule="majority"` instead picks the most frequent class (ties
go to the higher priority).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from pagecore import _page as P
from pagecore.errors import ConfigError
from pagecore.machine import MEM_OFFLINE, SECTION_MARKED_PRESENT

PB_HOLE, PB_OFFLINE, PB_FREE, PB_MOVABLE, PB_UNMOVABLE, PB_MEMMAP, PB_VMEMMAP = range(7)
CLASS_NAMES = ("hole", "offline", "free", "movable", "unmovable",
               "memmap (boot/buddy)", "vmemmap (self-hosted)")
CLASS_COLORS = ("#f2f2f2", "#8c8c8c", "#b8e0b0", "#4a7fc1", "#d1483b", "#9b59b6", "#f39c12")
NR_CLASSES = len(CLASS_NAMES)

_CHUNK_PAGES = 1 << 20          # ~1 Mi struct pages per numpy pass (toolchain-notes.md)


# ======================================================================================
# classification
# ======================================================================================
def _memmap_intervals(m):
    """[start, end) pfn intervals of memmap backing outside the described memory
    (memblock and buddy granules, vmemmap page tables). One entry per granule: a loop over
    granules (one per PMD of memmap, i.e. per 128 MiB on x86_64), never over pages."""
    gp = m._granule_pages
    starts, ends = [], []
    for kind, pfn, order, _ in m.vmemmap_granules.values():
        if kind == "memblock":
            starts.append(pfn)
            ends.append(pfn + gp)
        elif kind == "buddy":
            starts.append(pfn)
            ends.append(pfn + (1 << order))
        elif kind == "buddy-base":
            starts.extend(pfn)
            ends.extend(p + 1 for p in pfn)
    for pfn in m.vmemmap_tables.values():
        if pfn >= 0:
            starts.append(pfn)
            ends.append(pfn + 1)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def _interval_mask(starts, ends, s, e):
    """Bool mask over [s, e) of the union of [starts, ends)."""
    sel = (starts < e) & (ends > s)
    d = np.zeros(e - s + 1, dtype=np.int32)
    np.add.at(d, np.clip(starts[sel], s, e) - s, 1)
    np.add.at(d, np.clip(ends[sel], s, e) - s, -1)
    return np.cumsum(d[:-1]) > 0


def _boot_ranges(m):
    ps = m.arch.page_shift
    return [(start >> ps, (start + size) >> ps) for nc in m.config.nodes for start, size in nc.boot]


def _page_classes(m, s, e, memmap_iv, boot):
    """Class of every pfn in [s, e) (uint8), vectorised over the chunk."""
    n = e - s
    nb, pps = m.block_pages, m.arch.pages_per_section
    b0 = s // nb
    rows = m.blocks[b0:-(-e // nb)]
    cut = slice(s - b0 * nb, s - b0 * nb + n)
    state = np.repeat(rows["state"], nb)[cut]
    hot = np.repeat((rows["state"] != 0) & ~rows["boot"], nb)[cut]
    nr_vm = np.repeat(rows["nr_vmemmap"], nb)[cut]
    sec0 = s // pps
    sec_present = np.repeat(m.sections[sec0:-(-e // pps)] & SECTION_MARKED_PRESENT, pps)
    sec_present = sec_present[s - sec0 * pps:s - sec0 * pps + n] != 0
    in_boot = np.zeros(n, dtype=bool)
    for bs, be in boot:
        lo, hi = max(bs, s), min(be, e)
        if lo < hi:
            in_boot[lo - s:hi - s] = True
    present = sec_present & (hot | (in_boot & (state != 0)))
    if not present.any():
        return np.zeros(n, dtype=np.uint8)

    mm = m.mem_map[s:e]
    flags, ref, ptype = mm["flags"], mm["refcount"], mm["page_type"]
    reserved = (flags & P.PG_reserved) != 0
    cls = np.full(n, PB_UNMOVABLE, dtype=np.uint8)
    cls[(ref == 0) & ~reserved] = PB_FREE
    cls[(ref > 0) & ~reserved & ((flags & (P.PG_lru | P.PG_movable)) != 0)] = PB_MOVABLE
    if len(memmap_iv[0]):
        cls[_interval_mask(*memmap_iv, s, e)] = PB_MEMMAP
    cls[state == MEM_OFFLINE] = PB_OFFLINE
    offset = np.arange(s, e, dtype=np.int64) % nb
    vm = (offset < nr_vm) | (ptype == P.PGTY_VMEMMAP) | ((flags & P.PG_vmemmap_self_hosted) != 0)
    cls[vm & (state != 0)] = PB_VMEMMAP
    cls[~present] = PB_HOLE
    return cls


def _reduce(cls, pb, rule):
    """Per-pageblock class of a page-class array whose length is a multiple of pb."""
    grid = cls.reshape(-1, pb)
    if rule == "priority":
        return grid.max(axis=1).astype(np.uint8)
    counts = np.stack([(grid == k).sum(axis=1) for k in range(NR_CLASSES)], axis=1)
    # argmax takes the first maximum: reverse the classes so ties go to the higher one
    return (NR_CLASSES - 1 - np.argmax(counts[:, ::-1], axis=1)).astype(np.uint8)


def present_end_pfn(m):
    """End pfn of the highest present memory (a block or a boot range)."""
    present = np.nonzero(m.blocks["state"])[0]
    end = (int(present[-1]) + 1) * m.block_pages if len(present) else 0
    return max([end] + [e for _, e in _boot_ranges(m)])


def pageblock_states(m, start_pfn=None, end_pfn=None, rule="priority"):
    """Class (PB_*) of every pageblock in [start_pfn, end_pfn), as a uint8 array.

    The range is widened to whole pageblocks; the defaults cover pfn 0 up to the end of
    the highest present memory. `rule` is "priority" (the highest page class present in
    the pageblock; see the module docstring) or "majority" (the most frequent class).
    Work is done in chunks of about 1 Mi pages; chunks with no present section are holes
    without reading the memmap.
    """
    if rule not in ("priority", "majority"):
        raise ConfigError(f"rule={rule!r}: expected 'priority' or 'majority'")
    pb = m.arch.pageblock_nr_pages
    s = 0 if start_pfn is None else int(start_pfn)
    e = present_end_pfn(m) if end_pfn is None else int(end_pfn)
    if not 0 <= s < e <= m.max_pfn:
        raise ConfigError(f"pfn range [{s:#x}, {e:#x}) is empty or outside 0..max_pfn {m.max_pfn:#x}")
    s, e = s // pb * pb, -(-e // pb) * pb
    out = np.zeros((e - s) // pb, dtype=np.uint8)
    memmap_iv = _memmap_intervals(m)
    boot = _boot_ranges(m)
    chunk = max(pb, _CHUNK_PAGES // pb * pb)
    pps = m.arch.pages_per_section
    for cs in range(s, e, chunk):
        ce = min(cs + chunk, e)
        if not m.sections[cs // pps:-(-ce // pps)].any():
            continue                                    # all holes: out is already 0
        out[(cs - s) // pb:(ce - s) // pb] = _reduce(_page_classes(m, cs, ce, memmap_iv, boot), pb, rule)
    return out


# ======================================================================================
# plotting helpers
# ======================================================================================
def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.savefig(path, format="png")
    return path


def _by_strategy(results, keys):
    groups = OrderedDict()
    for i, r in enumerate(results):
        missing = [k for k in keys if k not in r]
        if missing:
            raise ConfigError(f"results[{i}] lacks {missing}: each entry needs {keys}")
        groups.setdefault(str(r["strategy"]), []).append(r)
    if not groups:
        raise ConfigError("no results to plot")
    return groups


_STYLES = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", "-.")]


def _log2_if_wide(ax, values, axis):
    v = [x for x in values if x > 0]
    if v and max(v) / min(v) >= 16:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)


# ======================================================================================
# plots
# ======================================================================================
def plot_memory_map(machines, path, start_pfn=None, end_pfn=None, rule="priority", max_rows=256):
    """Physical memory map of each machine (name -> Machine), side by side.

    Each panel is one machine: rows are memory blocks (address grows downwards), columns
    the pageblocks inside a block, coloured by `pageblock_states()`. The range (pfns, per
    machine) defaults to pfn 0 up to the highest present memory of all machines, and is
    widened to whole memory blocks. With more than `max_rows` blocks, consecutive blocks
    share a row and the row keeps the highest-priority class of each column.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    if not machines:
        raise ConfigError("plot_memory_map needs at least one machine")
    cmap = ListedColormap(CLASS_COLORS)
    norm = BoundaryNorm(np.arange(NR_CLASSES + 1) - 0.5, NR_CLASSES)
    end_bytes = max(present_end_pfn(m) << m.arch.page_shift for m in machines.values())
    n = len(machines)
    fig = _figure(max(4.6, 3.8 * n + 0.8), 7.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, m) in zip(axes, machines.items()):
        nb, pb, ps = m.block_pages, m.arch.pageblock_nr_pages, m.arch.page_shift
        s = 0 if start_pfn is None else int(start_pfn)
        e = (-(-end_bytes >> ps)) if end_pfn is None else int(end_pfn)
        s, e = s // nb * nb, min(-(-e // nb) * nb, m.max_pfn)
        states = pageblock_states(m, s, e, rule).reshape(-1, nb // pb)
        group = -(-states.shape[0] // max_rows)
        if group > 1:
            pad = (-states.shape[0]) % group
            states = np.concatenate([states, np.zeros((pad, states.shape[1]), np.uint8)])
            states = states.reshape(-1, group, states.shape[1]).max(axis=1)
        gib = float(1 << 30)
        extent = (0, m.block_size / (1 << 20), (s << ps) / gib + states.shape[0] * group * m.block_size / gib,
                  (s << ps) / gib)
        ax.imshow(states, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto",
                  extent=extent)
        summ = m.memmap_summary()
        kib = m.arch.page_size >> 10
        ax.set_title(f"{name}\nself-hosted memmap: {summ['self_hosted_pages'] * kib / 1024:.0f} MiB\n"
                     f"memmap in other RAM: {summ['boot_memory_pages'] * kib / 1024:.0f} MiB",
                     fontsize=9)
        ax.set_xlabel(f"offset in memory block (MiB); cell = {pb * m.arch.page_size >> 20} MiB pageblock",
                      fontsize=8)
        row = f"{group} blocks" if group > 1 else "1 block"
        ax.set_ylabel(f"physical address (GiB); row = {row} of {m.block_size >> 20} MiB", fontsize=8)
        ax.tick_params(labelsize=8)
    handles = [Patch(facecolor=c, edgecolor="#555555", label=l) for c, l in zip(CLASS_COLORS, CLASS_NAMES)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"Physical memory map by pageblock ({rule} rule)", fontsize=11)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.82, bottom=0.2, wspace=0.5)
    return _save(fig, path)


def plot_overhead(results, path):
    """Memmap overhead and usable memory against hot-added size, one line per strategy.

    `results`: dicts {strategy, added_bytes, memmap_bytes, usable_bytes}. Left: the
    memmap cost of the added memory (MiB) with its share of the added size; right: the
    memory the added range makes usable (GiB) against the ideal "all of it" line.
    """
    groups = _by_strategy(results, ("strategy", "added_bytes", "memmap_bytes", "usable_bytes"))
    fig = _figure(11, 4.6)
    ax_m, ax_u = fig.subplots(1, 2)
    gib, mib = float(1 << 30), float(1 << 20)
    added_all, memmap_all, usable_all = [], [], []
    for i, (name, rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: r["added_bytes"])
        x = [r["added_bytes"] / gib for r in rows]
        added_all += x
        memmap_all += [r["memmap_bytes"] / mib for r in rows]
        usable_all += [r["usable_bytes"] / gib for r in rows]
        marker, ls = _STYLES[i % len(_STYLES)]
        ax_m.plot(x, [r["memmap_bytes"] / mib for r in rows], marker=marker, linestyle=ls, label=name)
        ax_u.plot(x, [r["usable_bytes"] / gib for r in rows], marker=marker, linestyle=ls, label=name)
    ideal = sorted(set(added_all))
    ax_u.plot(ideal, ideal, color="#999999", linestyle=":", linewidth=1, label="added (ideal)")
    ax_m.set_title("memmap overhead of the hot-added memory", fontsize=10)
    ax_m.set_xlabel("hot-added memory (GiB)")
    ax_m.set_ylabel("memmap (MiB)")
    ax_u.set_title("usable memory after hot-add", fontsize=10)
    ax_u.set_xlabel("hot-added memory (GiB)")
    ax_u.set_ylabel("usable (GiB)")
    for ax, ys in ((ax_m, memmap_all), (ax_u, usable_all + added_all)):
        _log2_if_wide(ax, added_all, "x")
        _log2_if_wide(ax, ys, "y")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_balloon_limit(results, path):
    """The balloon limit (largest hot-add that succeeds) against boot memory, one line
    per strategy. `results`: dicts {strategy, boot_bytes, limit_bytes}. Each line ends
    with its limit/boot ratio."""
    groups = _by_strategy(results, ("strategy", "boot_bytes", "limit_bytes"))
    fig = _figure(7.5, 5)
    ax = fig.subplots()
    gib = float(1 << 30)
    xs, ys = [], []
    for i, (name, rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: r["boot_bytes"])
        x = [r["boot_bytes"] / gib for r in rows]
        y = [r["limit_bytes"] / gib for r in rows]
        xs += x
        ys += y
        marker, ls = _STYLES[i % len(_STYLES)]
        ax.plot(x, y, marker=marker, linestyle=ls, label=name)
        if rows[-1]["boot_bytes"]:
            ax.annotate(f"×{rows[-1]['limit_bytes'] / rows[-1]['boot_bytes']:.0f}", (x[-1], y[-1]),
                        textcoords="offset points", xytext=(6, 0), fontsize=8, va="center")
    _log2_if_wide(ax, xs, "x")
    _log2_if_wide(ax, ys, "y")
    ax.margins(x=0.08)
    ax.set_title("balloon limit: largest successful hot-add", fontsize=10)
    ax.set_xlabel("boot memory (GiB)")
    ax.set_ylabel("largest hot-add (GiB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
