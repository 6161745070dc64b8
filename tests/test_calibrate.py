"""Calibration against real kernels: every recorded baseline (pagecore/validate/runs/,
recorded by pagecore.validate on Debian 6.1 and 6.12 guests) calibrated and booted must
show the kernel's own numbers. The expected values are read from the JSON files, i.e.
from the kernel's /proc texts; nothing here recomputes them with pagecore.

PAGECORE_RUNS=DIR points the tests at another directory of recorded runs.
"""
import glob
import json
import os

import pytest

from pagecore import Machine, MachineConfig
from pagecore.arch import ZONE_NAMES
from pagecore.errors import ConfigError
from pagecore.validate import calibrate as cal
from pagecore.validate import procparse

RUNS = os.environ.get("PAGECORE_RUNS") or os.path.join(
    os.path.dirname(cal.__file__), "runs")
FILES = sorted(glob.glob(os.path.join(RUNS, "*.json")))


def _baseline_files():
    """One run per distinct baseline (scenario guest x kernel x mode): the runs of one
    guest shape share a boot, but each run is its own boot, so all are checked."""
    out = []
    for f in FILES:
        with open(f) as fh:
            rec = json.load(fh)
        if rec.get("baseline_raw"):
            out.append(pytest.param(f, id=os.path.basename(f)[:-5]))
    return out or [pytest.param(None, marks=pytest.mark.skip(reason=f"no recorded runs in {RUNS}"))]


@pytest.fixture(scope="module")
def booted():
    cache = {}

    def get(path):
        if path not in cache:
            with open(path) as fh:
                rec = json.load(fh)
            notes = []
            cfg = cal.from_record(rec, notes)
            cache[path] = rec, cfg, Machine(cfg), notes
        return cache[path]
    return get


@pytest.mark.parametrize("path", _baseline_files())
def test_calibrated_zones_are_the_kernels(path, booted):
    rec, cfg, m, notes = booted(path)
    raw = rec["baseline_raw"]
    zi = procparse.zoneinfo(raw["zoneinfo"])
    mi = procparse.meminfo(raw["meminfo"])
    for name, want in zi.items():
        _, nid, zname = name.split()
        if zname not in ZONE_NAMES:
            assert not want.get("present"), name          # ZONE_DEVICE: always empty
            continue
        z = m.zone(int(nid), ZONE_NAMES.index(zname))
        assert z.spanned_pages == want["spanned"], name
        assert z.present_pages == want["present"], name
        assert z.managed_pages == want["managed"], name
        if want["spanned"]:
            assert z.zone_start_pfn == want["start_pfn"], name
        assert z.free_pages == want["free"], name
        # boot watermarks, set before the initrd and __init memory were freed
        assert tuple(z.watermark) == (want["min"], want["low"], want["high"]), name
        assert z.lowmem_reserve == want["protection"][:4], name
    kb = m.arch.page_size >> 10
    assert m.mem_total_pages * kb == mi["MemTotal"]
    assert m.mem_free_pages * kb == mi["MemFree"]
    assert m.min_free_kbytes == int(raw["min_free_kbytes"])
    vm = procparse.vmstat(raw["vmstat"])
    if "nr_memmap_boot_pages" in vm:                       # v6.11+
        assert m.nr_memmap_boot_pages == vm["nr_memmap_boot_pages"]
    assert m.block_size == int(rec["params"]["block_size_bytes"], 16)
    # min_free_kbytes comes from the model (THP), not from a sysctl override
    assert cfg.min_free_kbytes is None, notes


@pytest.mark.parametrize("path", _baseline_files())
def test_calibrated_machine_round_trips_through_the_scenario_format(path, booted, tmp_path):
    from pagecore import scenario
    rec, cfg, m, notes = booted(path)
    f = tmp_path / "cal.toml"
    f.write_text(cal.machine_toml(cfg, notes))
    sc = scenario.load(str(f))
    m2 = Machine(sc.machine_config("boot"))
    assert [z.counters() for z in m2.zones()] == [z.counters() for z in m.zones()]
    assert [z.watermark for z in m2.zones()] == [z.watermark for z in m.zones()]
    assert [z.lowmem_reserve for z in m2.zones()] == [z.lowmem_reserve for z in m.zones()]


@pytest.mark.parametrize("path", _baseline_files())
def test_from_proc_reads_a_directory_of_proc_files(path, tmp_path, booted):
    rec, cfg, m, _ = booted(path)
    raw = rec["baseline_raw"]
    for k in ("meminfo", "zoneinfo", "vmstat", "iomem", "min_free_kbytes"):
        (tmp_path / k).write_text(raw[k])
    mem = tmp_path / "sys" / "devices" / "system" / "memory"
    mem.mkdir(parents=True)
    (mem / "block_size_bytes").write_text(rec["params"]["block_size_bytes"] + "\n")
    for b, row in procparse.blocks(raw["blocks"]).items():
        d = mem / f"memory{b}"
        d.mkdir()
        (d / "state").write_text(row["state"] + "\n")
        (d / "valid_zones").write_text(" ".join(row["valid_zones"]) + "\n")
    thp = tmp_path / "sys" / "kernel" / "mm" / "transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "enabled").write_text(rec["params"]["thp"] + "\n")
    notes = []
    got = MachineConfig.from_proc(str(tmp_path), kernel=rec["series"], notes=notes)
    m2 = Machine(got)
    # Without the boot log the late-freed count is solved from the watermarks: the
    # zones and MemTotal/MemFree stay exact, and so do the boot watermarks.
    assert [z.counters() for z in m2.zones()] == [z.counters() for z in m.zones()]
    assert [z.watermark for z in m2.zones()] == [z.watermark for z in m.zones()]
    assert m2.min_free_kbytes == m.min_free_kbytes


def test_pc_boot_map_rounds_e820_inward_and_starts_dma_at_pfn_1():
    # The e820 map of a QEMU pc guest with 2 GiB (as /proc/iomem shows it): the first
    # range ends at 0x9fc00, not a page boundary; memblock keeps [0x1000, 0x9f000).
    # ZONE_DMA is then pfn 1..4095 (spanned 4095) with 0x9f - 1 + 0x1000 - 0x100 = 158 +
    # 3840 = 3998 present pages, and the whole first 1 MiB (158 present pages) reserved:
    # managed 3840, the numbers the kernel prints for this guest.
    iomem = ("00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n"
             "0009fc00-0009ffff : Reserved\n00100000-7ffdffff : System RAM\n"
             "7ffe0000-7fffffff : Reserved\n")
    zoneinfo = ("Node 0, zone      DMA\n  pages free     3840\n        min      0\n"
                "        low      0\n        high     0\n        spanned  4095\n"
                "        present  3998\n        managed  3840\n"
                "        protection: (0, 0, 0, 0, 0)\n  start_pfn:           1\n"
                "Node 0, zone    DMA32\n  pages free     511968\n        min      0\n"
                "        low      0\n        high     0\n        spanned  520160\n"
                "        present  520160\n        managed  511968\n"
                "        protection: (0, 0, 0, 0, 0)\n  start_pfn:           4096\n")
    meminfo = "MemTotal:        2063232 kB\nMemFree:         2063232 kB\n"
    cfg, notes = cal.calibrate({"meminfo": meminfo, "zoneinfo": zoneinfo, "iomem": iomem},
                               kernel="6.12")
    assert cfg.nodes[0].boot == [(0x1000, 0x9e000), (0x100000, 0x7fee0000)]
    m = Machine(cfg)
    dma = m.zone(0, 0)
    assert (dma.zone_start_pfn, dma.spanned_pages, dma.present_pages, dma.managed_pages) == \
        (1, 4095, 3998, 3840)
    # 2 GiB minus the 128 KiB e820 hole at the top = 0x7ffe0 pfns; the boot memmap of 16
    # sections (16 x 512 pages) is the only reservation above 1 MiB here.
    assert m.zone(0, 1).managed_pages == 0x7ffe0 - 4096 - 16 * 512


def test_ranges_of_one_node_may_share_a_section_but_not_of_two():
    from pagecore import NodeConfig
    Machine(nodes=[NodeConfig(boot=[(0x1000, 0x9e000), (0x100000, 0x7ff00000)])])
    with pytest.raises(ConfigError, match="another node"):
        Machine(nodes=[NodeConfig(boot=[(0, 0x9f000)]), NodeConfig(boot=[(0x100000, 0x7ff00000)])])


def test_calibrate_refuses_texts_it_cannot_read():
    with pytest.raises(ConfigError, match="zoneinfo text is missing"):
        cal.calibrate({"meminfo": "MemTotal: 1 kB\nMemFree: 1 kB\n"})
    with pytest.raises(ConfigError, match="thp"):
        cal.calibrate({"meminfo": "MemTotal: 1 kB\nMemFree: 1 kB\n",
                       "zoneinfo": "Node 0, zone DMA\n  pages free 0\n", "thp": "bogus"})


def test_node_zone_tables_are_checked():
    from pagecore import NodeConfig
    with pytest.raises(ConfigError, match="unknown zone 'Movable'"):
        Machine(nodes=[NodeConfig(boot=[(0, 1 << 31)], reserved={"Movable": 1})])
    with pytest.raises(ConfigError, match="expected a page count"):
        Machine(nodes=[NodeConfig(boot=[(0, 1 << 31)], used={"DMA32": -1})])
    with pytest.raises(ConfigError, match="present pages left"):
        Machine(nodes=[NodeConfig(boot=[(0, 1 << 31)], reserved={"DMA": 5000})])


def test_strategy_for_each_memmap_on_memory_mode():
    assert cal.strategy_for("0", (6, 1)) == "boot"
    assert cal.strategy_for("1", (6, 1)) == "block-5.13"
    assert cal.strategy_for("1", (6, 12)) == "block"
    assert cal.strategy_for("force", (6, 12)) == "force"
    with pytest.raises(ConfigError, match="v6.6"):
        cal.strategy_for("force", (6, 1))


def test_cpus_come_from_the_pagesets():
    # zoneinfo lists one pagesets row per online CPU: a one-node guest shown with four
    # CPUs calibrates to cpus = 4, which splits pcp->high four ways (zone_highsize())
    import copy
    import re
    from pagecore.procfs import zoneinfo_dict
    path = os.path.join(RUNS, "kv-one-block--6.1--mom1.json")
    if not os.path.exists(path):
        pytest.skip("recorded run not present")
    with open(path) as fh:
        rec = json.load(fh)
    rec = copy.deepcopy(rec)
    row = re.compile(r"(\n    cpu: 0\n(?:.*\n){3}  vm stats threshold: \d+)")
    raw = rec["baseline_raw"]["zoneinfo"]
    four = row.sub(lambda mt: "".join(mt[1].replace("cpu: 0", f"cpu: {i}") for i in range(4)), raw)
    assert four.count("cpu: 3") == raw.count("cpu: 0") > 0
    rec["baseline_raw"]["zoneinfo"] = four
    cfg = cal.from_record(rec)
    assert cfg.nodes[0].cpus == 4
    assert "\ncpus = 4\n" in cal.machine_toml(cfg)
    z = next(r for r in zoneinfo_dict(Machine(cfg)) if r["zone"] == "DMA32")
    assert [c["cpu"] for c in z["pagesets"]] == [0, 1, 2, 3]
    assert z["pagesets"][0]["high"] == z["low"] // 4


def test_boot_wmarks_leaves_the_free_areas_watermarks_as_they_were():
    # _boot_wmarks() runs setup_per_zone_wmarks() on a trial managed count (which copies
    # the trial watermarks into every FreeArea, where the pcp rules read them) and puts
    # the zones' watermarks back: the FreeAreas' copies must go back with them. With
    # 20000 of DMA32's pages held back the trial min is lower than the real one.
    from pagecore import Machine
    from pagecore.validate.calibrate import _boot_wmarks
    m = Machine(kernel=(6, 12))
    before = [(z.free_area.wmark_min, z.free_area.wmark_high, z.free_area.reserve_movable)
              for z in m.zones()]
    trial, _ = _boot_wmarks(m, 0, 1, 20000)
    assert trial[1][0] < m.zone(0, 1).watermark[0]
    after = [(z.free_area.wmark_min, z.free_area.wmark_high, z.free_area.reserve_movable)
             for z in m.zones()]
    assert after == before
    assert [(z.watermark[0], z.watermark[2]) for z in m.zones()] == [b[:2] for b in before]
