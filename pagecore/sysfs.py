"""The machine as `/sys/devices/system/memory` shows it, and lsmem's view of that tree.

`export_sysfs(m, root_dir)` writes the files the kernel's memory subsystem exposes
(drivers/base/memory.c, drivers/base/node.c) under `root_dir`, so that tools that read
sysfs run on a simulated machine unchanged: `lsmem --sysroot root_dir`.

    sys/devices/system/memory/block_size_bytes        "%lx\\n" (hex, no 0x)
    sys/devices/system/memory/auto_online_blocks      offline | online | online_kernel | online_movable
    sys/devices/system/memory/memoryN/state           online | offline | going-offline
    sys/devices/system/memory/memoryN/phys_index      "%08lx\\n" (the block id)
    sys/devices/system/memory/memoryN/phys_device     "0\\n"
    sys/devices/system/memory/memoryN/online          "1\\n" unless the block is offline (device core)
    sys/devices/system/memory/memoryN/removable       see below
    sys/devices/system/memory/memoryN/valid_zones     Machine.valid_zones()
    sys/devices/system/memory/memoryN/nodeK   -> ../../node/nodeK
    sys/devices/system/node/nodeK/memoryN     -> ../../memory/memoryN
    sys/devices/system/node/{possible,online,has_memory,has_normal_memory,has_cpu}  "%*pbl\\n"

and the memmap_on_memory knob of the generation (`memmap_knob()`):

    seed v3 (2019):  sys/devices/system/memory/vmemmap_hotplug        enabled | disabled
    v5.13 - v6.5:    sys/module/memory_hotplug/parameters/memmap_on_memory   Y | N
    v6.6+:           sys/module/memory_hotplug/parameters/memmap_on_memory   Y | N | force

`removable`: since v5.7 (53cdc1cb29e8) the kernel prints IS_ENABLED(CONFIG_MEMORY_HOTREMOVE),
i.e. "1" for every block. Before that it was a heuristic: an online block is removable
when no pageblock has unmovable pages (is_mem_section_removable() ->
has_unmovable_pages(); in that era ZONE_MOVABLE short-circuits to removable), an offline
block always "1". The seed v3 generation (based on v5.3) therefore gets the heuristic.

Write-only files (probe, soft_offline_page, hard_offline_page) and the device-core
files (uevent, power/, subsystem) are not written: no reader of this tree needs them.

`block_table(m)` is what lsmem prints for that tree, computed from the machine with
lsmem's own rules (util-linux sys-utils/lsmem.c):
  * blocks are read in version order (scandir(..., versionsort)); consecutive block
    indices are merged into one range unless a "split" column differs: by default the
    split columns are the output columns among STATE, REMOVABLE, NODE, ZONES;
  * NODE is shown only if the first memory block has a `nodeK` link (have_nodes);
  * ZONES only if `memory0/valid_zones` exists (have_zones): no memory0, no zones;
  * valid_zones words map case-insensitively onto lsmem's zone names (kernel "none" is
    printed "None"; unknown words are "Unknown" and never merge), joined with "/";
  * REMOVABLE is printed ("yes"/"no") only for online ranges (empty otherwise, `false`
    in --json), yet it still splits offline ranges; "going-offline" is printed "on->off";
  * the summary counts each block's size as online or (any other state) offline.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pagecore.kernels import page as P
from pagecore.errors import ConfigError
from pagecore.drivers.base.memory import MEM_GOING_OFFLINE, MEM_OFFLINE, MEM_ONLINE
from pagecore.strategies import get_strategy

#: Kernel state strings (state_show()).
STATE_SYSFS = {MEM_ONLINE: "online", MEM_OFFLINE: "offline", MEM_GOING_OFFLINE: "going-offline"}
#: lsmem's spelling of the same states (add_scols_line(): COL_STATE).
STATE_LSMEM = {"online": "online", "offline": "offline", "going-offline": "on->off"}
#: lsmem's enum zone_id order and names; zone_name_to_id() matches case-insensitively.
LSMEM_ZONES = ("DMA", "DMA32", "Normal", "Highmem", "Movable", "Device", "None", "Unknown")
AUTO_ONLINE = ("offline", "online", "online_kernel", "online_movable")
#: lsmem's split columns (set_split_policy()).
SPLIT_COLUMNS = ("state", "removable", "node", "zones")

MEMORY_DIR = Path("sys/devices/system/memory")
NODE_DIR = Path("sys/devices/system/node")
UPSTREAM_KNOB = Path("sys/module/memory_hotplug/parameters/memmap_on_memory")
SEED_KNOB = MEMORY_DIR / "vmemmap_hotplug"


class MemRange(NamedTuple):
    """One line of lsmem output. `end` is the last byte (lsmem prints start-end
    inclusive); `block` is (first, last) block index; `removable` is None where lsmem
    leaves it empty (not online); `node`/`zones` are None when lsmem has no such data."""
    start: int
    end: int
    size: int
    state: str            # lsmem spelling: online, offline, on->off
    removable: bool | None
    block: tuple
    node: int | None
    zones: str | None     # lsmem spelling: "Normal/Movable", "None", ...

    @property
    def block_str(self):
        a, b = self.block
        return str(a) if a == b else f"{a}-{b}"

    @property
    def range_str(self):
        return f"0x{self.start:016x}-0x{self.end:016x}"

    def lsmem_json(self, columns=("range", "size", "state", "removable", "block", "node", "zones")):
        """The object `lsmem --json --bytes -o <columns>` prints for this range. REMOVABLE
        is a JSON boolean column in libsmartcols: the empty cell of a range that is not
        online comes out as `false`, not `null` (NODE and ZONES without data are `null`)."""
        full = {"range": self.range_str, "size": self.size, "state": self.state,
                "removable": bool(self.removable), "block": self.block_str, "node": self.node,
                "zones": self.zones}
        return {c: full[c] for c in columns}


# ======================================================================================
# per-block attributes
# ======================================================================================
def sysfs_kernel(m, strategy=None):
    """(kernel version, seed_v3) whose sysfs rules apply: the strategy's generation, or
    the machine's kernel for the classic "boot" strategy (it has no generation of its own)."""
    s = get_strategy(strategy or m.default_strategy)
    if s.seed_v3:
        return tuple(s.kernel), True
    return (tuple(m.kernel) if s.name == "boot" else tuple(s.kernel)), False


def memmap_knob(m, strategy=None):
    """(path relative to the sysroot, file text) of the generation's memmap_on_memory
    knob, or None when the kernel has none (upstream before v5.13)."""
    s = get_strategy(strategy or m.default_strategy)
    kernel, seed = sysfs_kernel(m, s)
    if seed:                               # seed v3 patch 5/5: vmemmap_hotplug_show()
        return SEED_KNOB, "enabled\n"
    if kernel < (5, 13):
        return None
    on = s.name != "boot"
    if kernel < (6, 6):                    # bool module parameter: param_get_bool()
        return UPSTREAM_KNOB, ("Y" if on else "N") + "\n"
    if getattr(s, "force", False):         # memmap_mode tri-state (v6.6+)
        return UPSTREAM_KNOB, "force\n"
    return UPSTREAM_KNOB, ("Y" if on else "N") + "\n"


def _removable(m, blocks, kernel):
    """removable_show() for each present block: 1 since v5.7; before, the
    is_mem_section_removable() heuristic for online blocks (v5.3 shape)."""
    out = np.ones(len(blocks), dtype=bool)
    if kernel >= (5, 7):
        return out
    nb = m.block_pages
    for i, b in enumerate(blocks.tolist()):
        row = m.blocks[b]
        if row["state"] != MEM_ONLINE or row["zone"] == P.ZONE_MOVABLE:
            continue
        s = b * nb
        out[i] = m.kernels.has_unmovable_pages(m.mem_map, s, s + nb, False, True) < 0
    return out


def _block_nodes(m, b):
    """Nodes a block is linked under: every node owning one of its present sections at
    boot (register_memory_blocks_under_node_early()), the block's nid when hot-added."""
    row = m.blocks[b]
    if not row["boot"]:
        return [int(row["nid"])]
    spb = m.sections_per_block
    nids = np.unique(m.section_nid[b * spb:(b + 1) * spb])
    return [int(n) for n in nids if n >= 0] or [int(row["nid"])]


def block_attrs(m, strategy=None):
    """The sysfs attributes of every present memory block, in block order: a dict of
    equal-length lists: block, state, online, removable, valid_zones, nodes."""
    kernel, _ = sysfs_kernel(m, strategy)
    blocks = np.nonzero(m.blocks["state"])[0]
    states = m.blocks["state"][blocks]
    bad = ~np.isin(states, list(STATE_SYSFS))
    if bad.any():
        raise ConfigError(f"memory block {int(blocks[bad][0])} has state "
                          f"{int(states[bad][0])}, not one of include/linux/memory.h's")
    return {
        "block": blocks.tolist(),
        "state": [STATE_SYSFS[int(s)] for s in states],
        "online": [int(s != MEM_OFFLINE) for s in states],
        "removable": _removable(m, blocks, kernel).astype(int).tolist(),
        "valid_zones": [m.valid_zones(int(b)) for b in blocks],
        "nodes": [_block_nodes(m, int(b)) for b in blocks],
    }


def _nodelist(nids):
    """bitmap_print_to_pagebuf(true, ...): "%*pbl" ranges, e.g. "0-1,3"."""
    nids = sorted(set(nids))
    parts, i = [], 0
    while i < len(nids):
        j = i
        while j + 1 < len(nids) and nids[j + 1] == nids[j] + 1:
            j += 1
        parts.append(str(nids[i]) if i == j else f"{nids[i]}-{nids[j]}")
        i = j + 1
    return ",".join(parts) + "\n"


# ======================================================================================
# export
# ======================================================================================
def export_sysfs(m, root_dir, strategy=None, *, auto_online="offline"):
    """Write the machine's memory-hotplug sysfs under `root_dir` (a sysroot: the files go
    to root_dir/sys/...). An existing tree from an earlier export is replaced, so blocks
    removed since then disappear. `strategy` picks the generation (knob, removable rule);
    default: the machine's default strategy. Returns the path of the memory directory."""
    if auto_online not in AUTO_ONLINE:
        raise ConfigError(f"auto_online={auto_online!r}: expected one of {', '.join(AUTO_ONLINE)}")
    root = Path(root_dir)
    mem, node = root / MEMORY_DIR, root / NODE_DIR
    for d in (mem, node, root / UPSTREAM_KNOB.parent):
        if d.is_dir():
            shutil.rmtree(d)
    mem.mkdir(parents=True)
    node.mkdir(parents=True)
    (mem / "block_size_bytes").write_text(f"{m.block_size:x}\n")
    (mem / "auto_online_blocks").write_text(f"{auto_online}\n")
    knob = memmap_knob(m, strategy)
    if knob is not None:
        path = root / knob[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(knob[1])

    attrs = block_attrs(m, strategy)
    linked = {}
    for i, b in enumerate(attrs["block"]):
        d = mem / f"memory{b}"
        d.mkdir()
        (d / "state").write_text(attrs["state"][i] + "\n")
        (d / "phys_index").write_text(f"{b:08x}\n")
        (d / "phys_device").write_text("0\n")
        (d / "online").write_text(f"{attrs['online'][i]}\n")
        (d / "removable").write_text(f"{attrs['removable'][i]}\n")
        (d / "valid_zones").write_text(attrs["valid_zones"][i] + "\n")
        for nid in attrs["nodes"][i]:
            os.symlink(f"../../node/node{nid}", d / f"node{nid}")
            linked.setdefault(nid, []).append(b)

    # drivers/base/node.c: one directory per online node, links to its blocks
    nids = range(len(m.nodes))
    online = [n for n in nids if m.nodes[n].cpus or m.nodes[n].has_memory or n in linked]
    for nid in online:
        nd = node / f"node{nid}"
        nd.mkdir()
        for b in linked.get(nid, []):
            os.symlink(f"../../memory/memory{b}", nd / f"memory{b}")
    normal = [n for n in nids
              if any(z.present_pages for z in m.nodes[n].zones[:P.ZONE_NORMAL + 1])]
    for name, lst in (("possible", list(nids)), ("online", online),
                      ("has_memory", [n for n in nids if m.nodes[n].has_memory]),
                      ("has_normal_memory", normal),
                      ("has_cpu", [n for n in nids if m.nodes[n].cpus])):
        (node / name).write_text(_nodelist(lst))
    return mem


# ======================================================================================
# lsmem's view
# ======================================================================================
def _lsmem_zones(valid_zones):
    """memory_block_read_attrs(): valid_zones split on " ", each word to a zone id."""
    ids = []
    for word in valid_zones.split(" "):
        if not word:
            continue                       # strtok() skips empty tokens
        low = [z.lower() for z in LSMEM_ZONES]
        ids.append(low.index(word.lower()) if word.lower() in low else LSMEM_ZONES.index("Unknown"))
    return tuple(ids)


def block_table(m, strategy=None, split=SPLIT_COLUMNS, list_all=False):
    """lsmem's ranges for the tree export_sysfs() writes: a list of MemRange.

    `split` are the columns whose change starts a new range, as `lsmem --split` (lsmem's
    default: the output columns among STATE, REMOVABLE, NODE, ZONES; so plain `lsmem`,
    whose columns are RANGE,SIZE,STATE,REMOVABLE,BLOCK, splits by state and removable).
    `list_all` is `lsmem --all`: one range per block.
    """
    split = {c.lower() for c in split}
    unknown = split - set(SPLIT_COLUMNS)
    if unknown:
        raise ConfigError(f"unknown lsmem split column(s) {sorted(unknown)}; expected {SPLIT_COLUMNS}")
    a = block_attrs(m, strategy)
    if not a["block"]:
        return []
    have_nodes = bool(a["nodes"][0])                 # read_basic_info(): the first block
    have_zones = a["block"][0] == 0                  # ... "memory0/valid_zones" exists
    unknown_id = LSMEM_ZONES.index("Unknown")
    blocks = []                                      # [index, count, state, removable, node, zones]
    for i, b in enumerate(a["block"]):
        blk = [b, 1, a["state"][i], bool(a["removable"][i]),
               a["nodes"][i][0] if have_nodes else None,
               _lsmem_zones(a["valid_zones"][i]) if have_zones else None]
        if blocks and not list_all:
            cur = blocks[-1]
            ok = cur[0] + cur[1] == b
            ok = ok and not ("state" in split and cur[2] != blk[2])
            ok = ok and not ("removable" in split and cur[3] != blk[3])
            ok = ok and not ("node" in split and have_nodes and cur[4] != blk[4])
            if ok and "zones" in split and have_zones:
                ok = len(cur[5]) == len(blk[5]) and all(
                    x != unknown_id and x == y for x, y in zip(cur[5], blk[5]))
            if ok:
                cur[1] += 1
                continue
        blocks.append(blk)
    bs = m.block_size
    out = []
    for index, count, state, removable, nid, zones in blocks:
        st = STATE_LSMEM[state]
        out.append(MemRange(
            start=index * bs, end=(index + count) * bs - 1, size=count * bs, state=st,
            removable=removable if st == "online" else None, block=(index, index + count - 1),
            node=nid, zones=None if zones is None else "/".join(LSMEM_ZONES[z] for z in zones)))
    return out


def lsmem_summary(m, strategy=None):
    """lsmem's summary (print_summary()): block size, online and offline bytes."""
    st = block_attrs(m, strategy)["state"]
    on = sum(s == "online" for s in st)
    return {"block_size": m.block_size, "online": on * m.block_size,
            "offline": (len(st) - on) * m.block_size}


def human_size(nbytes):
    """util-linux size_to_human_string(SIZE_SUFFIX_1LETTER, n) (lib/strutils.c, 2.3x):
    binary units B K M G T P E, one decimal rounded half up, trailing ".0" dropped."""
    exp = 0
    for shift in range(10, 70, 10):
        if nbytes < (1 << shift):
            break
        exp = shift
    letter = "BKMGTPE"[exp // 10]
    dec, frac = (nbytes >> exp, nbytes % (1 << exp)) if exp else (nbytes, 0)
    if frac:
        if frac >= ((1 << 64) - 1) // 1000:        # the C code's overflow guard
            frac = frac // 1024 * 1000 // (1 << (exp - 10))
        else:
            frac = frac * 1000 // (1 << exp)
        frac = (frac + 50) // 100 * 10
        if frac == 100:
            dec, frac = dec + 1, 0
    if frac:
        s = f"{dec}.{frac:02d}"
        return (s[:-1] if s.endswith("0") else s) + letter
    return f"{dec}{letter}"
