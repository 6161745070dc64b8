"""pagecore.sysfs against the real util-linux lsmem reading the exported tree.

lsmem is required, not optional: these tests fail (never skip) without it. On Debian and
Ubuntu it is in the util-linux package: `apt-get install -y util-linux`.
"""
import json
import os
import shutil
import subprocess

import pytest

from pagecore import GiB, MiB, Machine, MachineConfig, NodeConfig
from pagecore.machine import MEM_GOING_OFFLINE
from pagecore.sysfs import (block_table, export_sysfs, human_size, lsmem_summary,
                            memmap_knob)

ALL_COLUMNS = "RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE,ZONES"
JSON_KEYS = ("range", "size", "state", "removable", "block", "node", "zones")
MEM = "sys/devices/system/memory"


@pytest.fixture(scope="module")
def lsmem():
    path = shutil.which("lsmem")
    if path is None:
        pytest.fail("lsmem not found on PATH: these tests compare against the real util-linux "
                    "lsmem. Install it with `apt-get install -y util-linux` (Debian/Ubuntu) "
                    "and run the tests again.")
    return path


def run_lsmem(lsmem, root, *args):
    proc = subprocess.run([lsmem, "--sysroot", str(root), *args], capture_output=True,
                          text=True, env={**os.environ, "LC_ALL": "C"})
    assert proc.returncode == 0, f"lsmem {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def lsmem_json(lsmem, root, *args):
    return json.loads(run_lsmem(lsmem, root, "--json", "--bytes", *args))["memory"]


def two_node_machine(**kw):
    """x86_64, 128 MiB blocks. Node 0: boot [0, 1 GiB); node 1: boot [1, 2 GiB). Hot-added:
      4 GiB   +512M node 0  block strategy, online_movable           (blocks 32-35)
      4.5 GiB +256M node 0  block strategy, online (kernel zone)    (36-37: zones split)
      5 GiB   +512M node 0  boot strategy: 2 blocks online_movable, 2 offline (40-43)
      6 GiB   +256M node 0  offline, then 6.25 GiB +256M node 1 offline   (node split)
      7 GiB   +256M node 1  block strategy, online                  (56-57)
    """
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB)]),
                                     NodeConfig(boot=[(1 * GiB, 1 * GiB)])],
                              phys_bits=36, **kw))
    m.add_memory(0, 4 * GiB, 512 * MiB, strategy="block", online="online_movable")
    m.add_memory(0, 4 * GiB + 512 * MiB, 256 * MiB, strategy="block", online="online")
    m.add_memory(0, 5 * GiB, 512 * MiB, strategy="boot")
    m.online_memory_block(40, "online_movable")
    m.online_memory_block(41, "online_movable")
    m.add_memory(0, 6 * GiB, 256 * MiB, strategy="block")
    m.add_memory(1, 6 * GiB + 256 * MiB, 256 * MiB, strategy="block")
    m.add_memory(1, 7 * GiB, 256 * MiB, strategy="block", online="online")
    return m


@pytest.fixture(scope="module")
def machine():
    return two_node_machine()


@pytest.fixture
def exported(machine, tmp_path):
    export_sysfs(machine, tmp_path)
    return machine, tmp_path


# ---- the tree itself -----------------------------------------------------------------
def test_tree_files_are_kernel_formatted(exported):
    m, root = exported
    mem = root / MEM
    assert (mem / "block_size_bytes").read_text() == "8000000\n"      # "%lx\n", no 0x
    assert (mem / "auto_online_blocks").read_text() == "offline\n"
    blk = mem / "memory42"
    assert (blk / "state").read_text() == "offline\n"
    assert (blk / "online").read_text() == "0\n"
    assert (blk / "phys_index").read_text() == "0000002a\n"            # "%08lx\n"
    assert (blk / "phys_device").read_text() == "0\n"
    assert (blk / "removable").read_text() == "1\n"                    # v5.7+: always 1
    assert (blk / "valid_zones").read_text() == "Normal Movable\n"
    assert (mem / "memory32" / "valid_zones").read_text() == "Movable\n"
    assert (mem / "memory0" / "valid_zones").read_text() == "none\n"   # DMA + DMA32
    assert os.readlink(blk / "node0") == "../../node/node0"
    assert (blk / "node0").resolve() == (root / "sys/devices/system/node/node0").resolve()
    back = root / "sys/devices/system/node/node1/memory50"
    assert back.resolve() == (mem / "memory50").resolve()
    assert not (root / "sys/devices/system/node/node1/memory48").exists()
    present = sorted(int(p.name[6:]) for p in mem.glob("memory[0-9]*"))
    assert present == list(range(16)) + list(range(32, 38)) + list(range(40, 44)) + \
        list(range(48, 52)) + [56, 57]
    assert (root / "sys/devices/system/node/has_memory").read_text() == "0-1\n"
    assert (root / "sys/module/memory_hotplug/parameters/memmap_on_memory").read_text() == "Y\n"


def test_reexport_drops_removed_blocks(tmp_path):
    m = two_node_machine()
    export_sysfs(m, tmp_path)
    assert (tmp_path / MEM / "memory48").is_dir()
    m.remove_memory(6 * GiB, 256 * MiB)
    export_sysfs(m, tmp_path)
    assert not (tmp_path / MEM / "memory48").exists()
    assert not (tmp_path / "sys/devices/system/node/node0/memory48").exists()


@pytest.mark.parametrize("strategy, kernel, expect", [
    ("boot", (6, 12), ("sys/module/memory_hotplug/parameters/memmap_on_memory", "N\n")),
    ("boot", (5, 10), None),
    ("block-5.13", (6, 12), ("sys/module/memory_hotplug/parameters/memmap_on_memory", "Y\n")),
    ("block-6.6", (6, 12), ("sys/module/memory_hotplug/parameters/memmap_on_memory", "Y\n")),
    ("block", (6, 12), ("sys/module/memory_hotplug/parameters/memmap_on_memory", "Y\n")),
    ("force", (6, 12), ("sys/module/memory_hotplug/parameters/memmap_on_memory", "force\n")),
    ("range", (5, 3), ("sys/devices/system/memory/vmemmap_hotplug", "enabled\n")),
])
def test_memmap_knob_per_generation(tmp_path, strategy, kernel, expect):
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB)])], phys_bits=36,
                              kernel=kernel, strategy=strategy))
    export_sysfs(m, tmp_path)
    knob = memmap_knob(m)
    if expect is None:
        assert knob is None
        assert not (tmp_path / "sys/module").exists()
        assert not (tmp_path / MEM / "vmemmap_hotplug").exists()
        return
    assert (str(knob[0]), knob[1]) == expect
    assert (tmp_path / expect[0]).read_text() == expect[1]


# ---- lsmem ---------------------------------------------------------------------------
def test_lsmem_json_all_columns(lsmem, exported):
    m, root = exported
    got = lsmem_json(lsmem, root, "--output", ALL_COLUMNS)
    want = [r.lsmem_json() for r in block_table(m)]
    assert got == want
    # the machine was built so that every split rule shows up
    states = [(r["block"], r["state"], r["node"], r["zones"]) for r in got]
    assert ("32-35", "online", 0, "Movable") in states
    assert ("36-37", "online", 0, "Normal") in states            # split by zones
    assert ("40-41", "online", 0, "Movable") in states
    assert ("42-43", "offline", 0, "Normal/Movable") in states   # split by state
    assert ("48-49", "offline", 0, "Normal/Movable") in states
    assert ("50-51", "offline", 1, "Normal/Movable") in states   # split by node
    assert got[0]["zones"] == "None"                             # kernel "none"


@pytest.mark.parametrize("args, columns, split, list_all", [
    (["--output", "RANGE,SIZE,STATE,REMOVABLE,BLOCK"], JSON_KEYS[:5], ("state", "removable"), False),
    (["--output", ALL_COLUMNS, "--split", "STATE"], JSON_KEYS, ("state",), False),
    (["--output", ALL_COLUMNS, "--split", "NODE,ZONES"], JSON_KEYS, ("node", "zones"), False),
    (["--output", ALL_COLUMNS, "--split", "none"], JSON_KEYS, (), False),
    (["--output", ALL_COLUMNS, "--all"], JSON_KEYS, (), True),
])
def test_lsmem_merge_rules(lsmem, exported, args, columns, split, list_all):
    m, root = exported
    got = lsmem_json(lsmem, root, *args)
    want = [r.lsmem_json(columns) for r in block_table(m, split=split, list_all=list_all)]
    assert got == want


def test_lsmem_plain_default_output(lsmem, exported):
    """`lsmem` with no options: RANGE SIZE STATE REMOVABLE BLOCK (human sizes), split by
    state and removable, then the summary."""
    m, root = exported
    lines = run_lsmem(lsmem, root).splitlines()
    assert lines[0].split() == ["RANGE", "SIZE", "STATE", "REMOVABLE", "BLOCK"]
    blank = lines.index("")
    rows = [ln.split() for ln in lines[1:blank]]
    want = []
    for r in block_table(m, split=("state", "removable")):
        removable = [] if r.removable is None else ["yes" if r.removable else "no"]
        want.append([r.range_str, human_size(r.size), r.state, *removable, r.block_str])
    assert rows == want
    s = lsmem_summary(m)
    summary = dict(ln.split(":") for ln in lines[blank + 1:] if ln)
    assert {k: v.strip() for k, v in summary.items()} == {
        "Memory block size": human_size(s["block_size"]),
        "Total online memory": human_size(s["online"]),
        "Total offline memory": human_size(s["offline"])}
    bytes_summary = run_lsmem(lsmem, root, "--summary=only", "--bytes").split()
    assert [int(x) for x in bytes_summary if x.isdigit()] == [s["block_size"], s["online"], s["offline"]]


def test_lsmem_going_offline_block(lsmem, tmp_path):
    m = two_node_machine()
    m.blocks["state"][33] = MEM_GOING_OFFLINE      # caught mid-offline, as sysfs may show it
    export_sysfs(m, tmp_path)
    blk = tmp_path / MEM / "memory33"
    assert (blk / "state").read_text() == "going-offline\n"
    assert (blk / "online").read_text() == "1\n"   # the device is not offline yet
    got = lsmem_json(lsmem, tmp_path, "--output", ALL_COLUMNS)
    assert got == [r.lsmem_json() for r in block_table(m)]
    assert {"block": "33", "state": "on->off", "removable": False} == \
        {k: v for k, v in next(r for r in got if r["block"] == "33").items()
         if k in ("block", "state", "removable")}


def test_lsmem_without_memory0_has_no_zones(lsmem, tmp_path):
    """lsmem looks for memory0/valid_zones only: without block 0 it prints no zones."""
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(1 * GiB, 1 * GiB)])], phys_bits=36))
    m.add_memory(0, 4 * GiB, 256 * MiB, strategy="block", online="online_movable")
    export_sysfs(m, tmp_path)
    assert (tmp_path / MEM / "memory8" / "valid_zones").exists()
    got = lsmem_json(lsmem, tmp_path, "--output", ALL_COLUMNS)
    assert got == [r.lsmem_json() for r in block_table(m)]
    assert all(r["zones"] is None for r in got)


def test_lsmem_seed_v3_removable_heuristic(lsmem, tmp_path):
    """Seed v3 is a v5.3 kernel: `removable` is still the is_mem_section_removable()
    heuristic. Blocks holding reserved pages (boot memmap, kernel image) say "no"; the
    self-hosted vmemmap run (PageVmemmap) is skipped and does not make a block unremovable."""
    m = Machine(MachineConfig(nodes=[NodeConfig(boot=[(0, 1 * GiB)]),
                                     NodeConfig(boot=[(1 * GiB, 1 * GiB)])],
                              phys_bits=36, strategy="range", kernel=(5, 3)))
    m.add_memory(0, 4 * GiB, 384 * MiB, online="online_kernel")
    m.add_memory(1, 5 * GiB, 256 * MiB)
    export_sysfs(m, tmp_path)
    assert (tmp_path / MEM / "vmemmap_hotplug").read_text() == "enabled\n"
    assert (tmp_path / MEM / "memory7" / "removable").read_text() == "0\n"   # boot memmap
    assert (tmp_path / MEM / "memory32" / "removable").read_text() == "1\n"  # vmemmap run
    default = lsmem_json(lsmem, tmp_path, "--output", "RANGE,SIZE,STATE,REMOVABLE,BLOCK")
    assert default == [r.lsmem_json(JSON_KEYS[:5])
                       for r in block_table(m, split=("state", "removable"))]
    got = lsmem_json(lsmem, tmp_path, "--output", ALL_COLUMNS)
    assert got == [r.lsmem_json() for r in block_table(m)]
    assert any(r["removable"] is False for r in got)
    assert any(r["removable"] is True for r in got)


# ---- helpers -------------------------------------------------------------------------
@pytest.mark.parametrize("n, s", [(0, "0B"), (1023, "1023B"), (1024, "1K"), (1536, "1.5K"),
                                  (128 * MiB, "128M"), (2952790016, "2.8G"),
                                  (3 * GiB + 512 * MiB, "3.5G"), (1536 * GiB, "1.5T"),
                                  (2 * GiB - 1, "2G")])
def test_human_size(n, s):
    assert human_size(n) == s
