"""drivers/base/memory.c (with include/linux/memory.h): memory blocks, the unit of
/sys/devices/system/memory.

Modelled: the block table (struct memory_block: state, node, zone, the vmemmap pages it
hosts, the altmap pages it still owes), memory_block_online() / memory_block_offline()
(what a write to memoryN/state does), valid_zones, and the kernel objects each new block
costs (create_memory_block_devices()). Not modelled: uevents, the memory block's
`removable` and `phys_device` files.
"""
from __future__ import annotations

import numpy as np

from pagecore.kernels import page as P
from pagecore.arch import ZONE_NAMES
from pagecore.errors import ConfigError, OutOfMemoryError, PagecoreError, RangeError, StateError
from pagecore.mm import memory_hotplug, page_alloc
from pagecore.mm.mmzone import SECTION_IS_ONLINE
from pagecore.strategies import get_strategy
from pagecore.util import first_duplicate, int_array, is_int

# Memory block states (include/linux/memory.h); 0 = no block device.
MEM_ONLINE, MEM_GOING_OFFLINE, MEM_OFFLINE = 1 << 0, 1 << 1, 1 << 2
STATE_NAMES = {MEM_ONLINE: "online", MEM_GOING_OFFLINE: "going-offline", MEM_OFFLINE: "offline"}

BLOCK_DTYPE = np.dtype([
    ("state", "u1"), ("nid", "i2"), ("zone", "i1"), ("online_type", "i1"),
    ("nr_vmemmap", "i8"),        # V: self-hosted memmap pages at the block start
    ("altmap_alloc", "i8"),      # altmap->alloc still owed to the altmap (0 after removal)
    ("waste", "i8"),             # force-mode padding pages inside V
    ("memmap_nid", "i2"),        # node whose buddy holds the memmap (-1: self-hosted/none)
    ("memmap_pages", "i8"),      # buddy pages spent on this block's memmap (classic path)
    ("range_id", "i4"),          # the add_memory() call that created the block
    ("boot", "?"),
])


def create_memory_block_devices(m, nid, nblocks):
    """The kernel objects add_memory() creates besides the memmap: the resource
    (register_memory_resource()), and per block a struct memory_block with its
    struct device and sysfs/kernfs nodes (create_memory_block_devices(),
    drivers/base/memory.c; the same in v6.1 and v6.12). Slab memory, from existing
    memory on the CPU's node in every memmap mode, self-hosted included.
    MachineConfig.hotplug_kobj_bytes_per_block rounds it to pages per call; 5 KiB per
    block is what the recorded Debian guests show: beyond the memmap, free + pcp pages
    drop by 40-47 pages for a 32-block DIMM (kv-large), 5-9 for 4 blocks
    (kv-multi-block) and 0-5 for one block (slab pages already partly free absorb
    small calls). A refused allocation is -ENOMEM before anything is added."""
    n = -(-nblocks * m.config.hotplug_kobj_bytes_per_block // m.arch.page_size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    cpu_nid = nid if m.nodes[nid].cpus else next(
        (x.nid for x in m.nodes if x.cpus), nid)
    # A fresh owner tag: free_pages() of this Allocation frees exactly these pages.
    got = page_alloc.alloc_pages(m, cpu_nid, 0, "kernel", count=n)
    if len(got) < n:
        page_alloc.free_pages(m, got)
        raise OutOfMemoryError(f"add_memory: no memory for the {nblocks} memory block "
                               f"devices ({n} pages of kernel objects): -ENOMEM")
    return got


def empty_block():
    e = np.zeros(1, dtype=BLOCK_DTYPE)[0]
    e["zone"], e["memmap_nid"], e["range_id"] = -1, -1, -1
    return e


def check_block(m, block, what="memory block"):
    """A memory block id: an integer naming a row of the block table."""
    if not is_int(block):
        raise ConfigError(f"{what} {block!r} is not an integer block id "
                          f"({type(block).__name__})")
    if not 0 <= block < len(m.blocks):
        raise RangeError(f"{what} {block} does not exist (blocks 0..{len(m.blocks) - 1})")
    return int(block)


def valid_zones(m, block):
    """/sys/devices/system/memory/memoryN/valid_zones."""
    block = check_block(m, block)
    if m.blocks["state"][block] == 0:
        raise StateError(f"memory block {block} is not present: it has no valid_zones")
    row = m.blocks[block]
    start = block * m.block_pages
    if row["state"] == MEM_ONLINE:
        return ZONE_NAMES[row["zone"]] if row["zone"] >= 0 else "none"
    nid = int(row["nid"])
    names = [memory_hotplug.zone_for_pfn_range(m, memory_hotplug.MMOP_ONLINE, nid, start, m.block_pages).name]
    for z in (memory_hotplug.default_kernel_zone_for_pfn(m, nid, start, m.block_pages),
              m.nodes[nid].zones[P.ZONE_MOVABLE]):
        if z.name not in names:
            names.append(z.name)
    return " ".join(names)


def online_memory_block(m, block, online_type="online"):
    """Write "online*" to memoryN/state."""
    memory_block_online(m, [check_block(m, block)], online_type)


def memory_block_online(m, blocks, online_type="online"):
    """memory_block_online() for each block, batched per zone so that the per-block
    Python work stays small at TiB scale. All blocks are validated before any
    changes: a refused call changes nothing.

    "online_movable" puts every block in its node's ZONE_MOVABLE whatever the spans,
    so the zones come from numpy; the other types depend on the zone spans as they
    grow block by block and take the zone_for_pfn_range() loop. Consecutive blocks of
    one zone and one strategy go in one kernel call."""
    ot = memory_hotplug.mhp_online_type_from_str(m, online_type)
    blocks = int_array(blocks, "online_pages_blocks: blocks")
    if not len(blocks):
        return
    if (blocks < 0).any() or (blocks >= len(m.blocks)).any():
        raise RangeError(f"memory block {int(blocks[(blocks < 0) | (blocks >= len(m.blocks))][0])} "
                         f"does not exist (blocks 0..{len(m.blocks) - 1})")
    dup = first_duplicate(blocks)
    if dup is not None:
        # one memoryN/state write each: the second finds the block online (-EINVAL)
        raise StateError(f"memory block {dup} is listed twice: it would be onlined twice "
                         "(memory_block_change_state(): -EINVAL on the second)")
    st = m.blocks["state"][blocks]
    if (st != MEM_OFFLINE).any():
        b = int(blocks[np.argmax(st != MEM_OFFLINE)])
        what = STATE_NAMES.get(int(m.blocks["state"][b]), "not present")
        raise StateError(f"memory block {b} is {what}, not offline: cannot online it "
                         "(memory_block_change_state(): -EINVAL)")
    if ot == memory_hotplug.MMOP_ONLINE and m.config.online_policy == "auto-movable" and len(blocks) > 1:
        for b in blocks.tolist():           # each decision sees the blocks before it
            memory_block_online(m, [b], ot)
        return
    nb = m.block_pages
    nids = m.blocks["nid"][blocks].astype(np.int64)
    if ot == memory_hotplug.MMOP_ONLINE_MOVABLE:
        zids = np.full(len(blocks), P.ZONE_MOVABLE, dtype=np.int64)
    else:
        zids = np.empty(len(blocks), dtype=np.int64)
        for i, (b, nid) in enumerate(zip(blocks.tolist(), nids.tolist())):
            zone = memory_hotplug.zone_for_pfn_range(m, ot, nid, b * nb, nb)
            zone.grow(b * nb, (b + 1) * nb)     # later blocks see the span, as in a loop
            zids[i] = zone.zid
    # the strategy of each block's range, as an index into `strats` (by identity)
    rids, inv = np.unique(m.blocks["range_id"][blocks], return_inverse=True)
    strats, ukey = [], []
    for rid in rids.tolist():
        s = m.ranges[rid].strategy if rid >= 0 else None
        i = next((i for i, x in enumerate(strats) if x is s), len(strats))
        strats += [s] if i == len(strats) else []
        ukey.append(i)
    sidx = np.asarray(ukey, dtype=np.int64)[inv.ravel()]
    # groups: runs of consecutive blocks with one (node, zone, strategy)
    cut = np.flatnonzero((np.diff(nids) != 0) | (np.diff(zids) != 0) | (np.diff(sidx) != 0)) + 1
    edges = [0] + cut.tolist() + [len(blocks)]
    groups = []
    for lo, hi in zip(edges, edges[1:]):
        zone = m.zone(int(nids[lo]), int(zids[lo]))
        bl = blocks[lo:hi]
        if ot == memory_hotplug.MMOP_ONLINE_MOVABLE:
            zone.grow(int(bl.min()) * nb, (int(bl.max()) + 1) * nb)
        groups.append((zone, bl, strats[int(sidx[lo])]))
    # online_pages() calls init_per_zone_wmark_min() once per online, and it is not
    # idempotent (nr_free_buffer_pages() reads the high marks the last pass set): one
    # pass after the split-off first block, one at the end if blocks followed it.
    due = False
    for zone, bl, strat in groups:
        strat = strat or get_strategy("boot")
        if memory_hotplug.kernel_allocs_follow(m, zone):
            # The kernel onlines block by block: its allocations move into the
            # zone after the first one, so that block is where they land.
            memory_hotplug.online_pages(m, zone, np.ascontiguousarray(bl[:1]), ot, strat)
            page_alloc.init_per_zone_wmark_min(m)
            memory_hotplug.kernel_allocs_after_online(m, zone)
            bl, due = bl[1:], False
        if len(bl):
            memory_hotplug.online_pages(m, zone, np.ascontiguousarray(bl), ot, strat)
            due = True
    if due:
        page_alloc.init_per_zone_wmark_min(m)


def memory_block_offline(m, block):
    """Write "offline" to memoryN/state: memory_block_offline(). Returns a report dict
    (pages migrated, pages scanned). On failure raises with the reason and leaves the
    machine as it was."""
    block = check_block(m, block)
    row = m.blocks[block]
    if row["state"] != MEM_ONLINE:
        what = STATE_NAMES.get(int(row["state"]), "not present")
        raise StateError(f"memory block {block} is {what}, not online: cannot offline it")
    if row["zone"] < 0:
        raise StateError(f"memory block {block} spans several zones: offline_pages() -EINVAL")
    nb = m.block_pages
    start = block * nb
    v = int(row["nr_vmemmap"])
    zone = m.zone(int(row["nid"]), int(row["zone"]))
    row["state"] = MEM_GOING_OFFLINE
    try:
        # seed v3: a block made only of vmemmap skips isolation and migration
        report = (memory_hotplug.offline_pages(m, start + v, nb - v, zone) if v < nb
                  else {"scanned": 0, "migrated": 0, "offlined": 0})
    except PagecoreError:
        row["state"] = MEM_ONLINE
        raise
    # mhp_deinit_memmap_on_memory() + adjust_present_page_count(-V)
    zone.present_pages -= v
    pps = m.arch.pages_per_section
    m.sections[start // pps:(start + nb) // pps] &= ~np.uint8(SECTION_IS_ONLINE)
    row["state"], row["zone"] = MEM_OFFLINE, -1
    memory_hotplug.shrink_zone_span(m, zone, start, start + nb)
    page_alloc.init_per_zone_wmark_min(m)
    return report

