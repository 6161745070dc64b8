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
    2 free        in the buddy or on a pcp list (refcount 0, not reserved)
    3 movable     LRU or non-LRU movable (PG_lru / PG_movable)
    4 unmovable   any other allocated or reserved page (kernel image, slab, page tables)
    5 boot memmap the boot memory's own struct pages (memblock, at the top of each
                  node's boot memory), whatever the strategy
    6 memmap      struct pages of hot-added memory (or their vmemmap page tables) taken
                  from the buddy allocator of online memory: the classic path
    7 vmemmap     self-hosted memmap: the first V pages of a block added with an altmap
                  (memmap_on_memory), online or offline, including force-mode padding

Priority answers "what keeps this pageblock from being offlined or handed out whole": one
unmovable page is enough. `rule="majority"` instead picks the most frequent class (ties
go to the higher priority).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from pagecore.kernels import page as P
from pagecore.errors import ConfigError
from pagecore.drivers.base.memory import MEM_OFFLINE
from pagecore.mm.mmzone import SECTION_MARKED_PRESENT

PB_HOLE, PB_OFFLINE, PB_FREE, PB_MOVABLE, PB_UNMOVABLE, PB_BOOT_MEMMAP, PB_MEMMAP, \
    PB_VMEMMAP = range(8)
CLASS_NAMES = ("hole", "offline", "free", "movable", "unmovable",
               "boot memory's own memmap", "hot-added memmap in boot memory (classic)",
               "self-hosted memmap (vmemmap)")
CLASS_COLORS = ("#f2f2f2", "#8c8c8c", "#b8e0b0", "#4a7fc1", "#d1483b", "#c9b3d9", "#7d3c98",
                "#f39c12")
NR_CLASSES = len(CLASS_NAMES)

_CHUNK_PAGES = 1 << 20          # ~1 Mi struct pages (16 MiB) per numpy pass: bounded temporaries


# ======================================================================================
# classification
# ======================================================================================
def _memmap_intervals(m, kinds=("memblock", "buddy", "buddy-base", "tables")):
    """[start, end) pfn intervals of memmap backing outside the described memory, of the
    given kinds: "memblock" (boot memmap), "buddy"/"buddy-base" (classic hot-add memmap),
    "tables" (vmemmap page tables). One entry per granule: a loop over granules (one per
    PMD of memmap, i.e. per 128 MiB on x86_64), never over pages."""
    gp = m.arch.vmemmap_granule_pages
    starts, ends = [], []
    for kind, pfn, order, _ in m.vmemmap_granules.values():
        if kind not in kinds:
            continue
        if kind == "memblock":
            starts.append(pfn)
            ends.append(pfn + gp)
        elif kind == "buddy":
            starts.append(pfn)
            ends.append(pfn + (1 << order))
        elif kind == "buddy-base":
            starts.extend(pfn)
            ends.extend(p + 1 for p in pfn)
    for pfn in m.vmemmap_tables.values() if "tables" in kinds else ():
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
    boot_iv, hot_iv = memmap_iv
    if len(boot_iv[0]):
        cls[_interval_mask(*boot_iv, s, e)] = PB_BOOT_MEMMAP
    if len(hot_iv[0]):
        cls[_interval_mask(*hot_iv, s, e)] = PB_MEMMAP
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
    memmap_iv = (_memmap_intervals(m, ("memblock",)),
                 _memmap_intervals(m, ("buddy", "buddy-base", "tables")))
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
    """Lines to draw: results grouped by strategy, and by scenario too when they come
    from more than one (a line joins points of one scenario only: the points of two
    scenarios at the same size would zig-zag). Labels: "strategy" or "scenario: strategy"."""
    for i, r in enumerate(results):
        missing = [k for k in keys if k not in r]
        if missing:
            raise ConfigError(f"results[{i}] lacks {missing}: each entry needs {keys}")
    if not results:
        raise ConfigError("no results to plot")
    several = len({r.get("scenario") for r in results}) > 1
    groups = OrderedDict()
    for r in results:
        label = f"{r.get('scenario')}: {r['strategy']}" if several else str(r["strategy"])
        groups.setdefault(label, []).append(r)
    return groups


_STYLES = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", "-.")]


def _log2_if_wide(ax, values, axis):
    v = [x for x in values if x > 0]
    if v and max(v) / min(v) >= 16:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)


# ======================================================================================
# plots
# ======================================================================================
#: Pageblocks at the start of every block drawn wider (the self-hosted memmap lives there:
#: one pageblock of 64 in a 128 MiB x86_64 block would be a hairline), and by how much.
MAP_ZOOM_PAGEBLOCKS, MAP_ZOOM = 4, 6


def plot_memory_map(machines, path, start_pfn=None, end_pfn=None, rule="priority", max_rows=256):
    """Physical memory map of each machine (name -> Machine), side by side on one shared
    address axis.

    Each panel is one machine: rows are memory blocks (address grows downwards), columns
    the pageblocks inside a block, coloured by `pageblock_states()`. The first
    MAP_ZOOM_PAGEBLOCKS columns of every block are drawn MAP_ZOOM times wider, so that a
    self-hosted memmap (the first pageblocks of a block) is visible; the x axis says so.
    The range (pfns) defaults to pfn 0 up to the highest present memory of all machines,
    widened to whole memory blocks; machines must share the block size to share an axis
    (else each gets its own). With more than `max_rows` blocks, consecutive blocks share
    a row and the row keeps the highest-priority class of each column. Panel titles give
    the hot-added memory's memmap where the panel draws it; the legend lists the classes
    drawn.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    if not machines:
        raise ConfigError("plot_memory_map needs at least one machine")
    cmap = ListedColormap(CLASS_COLORS)
    norm = BoundaryNorm(np.arange(NR_CLASSES + 1) - 0.5, NR_CLASSES)
    end_bytes = max(present_end_pfn(m) << m.arch.page_shift for m in machines.values())
    n = len(machines)
    same_blocks = len({m.block_size for m in machines.values()}) == 1
    fig = _figure(min(2.3 * n + 1.4, 16), 7.2)
    axes = fig.subplots(1, n, squeeze=False, sharey=same_blocks)[0]
    seen = set()
    gib = float(1 << 30)
    for k, (ax, (name, m)) in enumerate(zip(axes, machines.items())):
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
        seen.update(np.unique(states).tolist())
        zoom = min(MAP_ZOOM_PAGEBLOCKS, states.shape[1])
        reps = np.where(np.arange(states.shape[1]) < zoom, MAP_ZOOM, 1)
        wide = np.repeat(states, reps, axis=1)
        top = (s << ps) / gib
        bottom = top + states.shape[0] * group * m.block_size / gib
        ax.imshow(wide, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto",
                  extent=(0, wide.shape[1], bottom, top))
        # x ticks in MiB at true offsets: zoomed columns first, then the rest
        pb_mib = (pb << ps) / float(1 << 20)
        def xpos(pbs, zoom=zoom):
            return pbs * MAP_ZOOM if pbs <= zoom else zoom * MAP_ZOOM + (pbs - zoom)
        # the block's end is the next panel's start: no tick there (labels would collide)
        ticks = sorted({0, zoom, states.shape[1] // 2})
        ax.set_xticks([xpos(t) for t in ticks])
        ax.set_xticklabels([f"{t * pb_mib:g}" for t in ticks])
        ax.axvline(zoom * MAP_ZOOM, color="#333333", linewidth=0.6, linestyle=":")
        summ = m.memmap_summary()
        mib = (m.arch.page_size >> 10) / 1024
        ax.set_title(f"{name}\nhot-added memmap:\n{summ['boot_memory_pages'] * mib:g} MiB in boot memory\n"
                     f"{(summ['self_hosted_pages'] + summ['waste_pages']) * mib:g} MiB self-hosted",
                     fontsize=8.5)
        ax.tick_params(labelsize=7.5)
        if k == 0 or not same_blocks:
            row = f"{group} blocks" if group > 1 else "1 block"
            ax.set_ylabel(f"physical address (GiB); a row is {row} of {m.block_size >> 20} MiB",
                          fontsize=8)
    fig.supxlabel("offset in the memory block (MiB, to the block size); the first "
                  f"{MAP_ZOOM_PAGEBLOCKS} "
                  f"pageblocks (left of the dotted line) drawn {MAP_ZOOM}x wider; "
                  f"a cell is one pageblock", fontsize=8, y=0.105)
    handles = [Patch(facecolor=c, edgecolor="#555555", label=l)
               for i, (c, l) in enumerate(zip(CLASS_COLORS, CLASS_NAMES)) if i in seen]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8,
               frameon=False)
    fig.suptitle(f"Physical memory map by pageblock ({rule} rule)", fontsize=11)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.84, bottom=0.17, wspace=0.06)
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
