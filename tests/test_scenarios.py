"""Built-in scenarios, scaled down, against figures derived by hand from
docs/model.md, and malformed scenario files.

Notation: A = hot-added bytes; the memmap of A is A/64 on 4K pages with a 64-byte
struct page (docs/model.md#accounting: "classic: MemTotal +N, MemFree +N-V; self-hosted: both +N-V").
"""
import pytest

from pagecore import GiB, MiB, ConfigError
from pagecore.report import compare
from pagecore.scenario import Scenario, builtin_names, load

SELF_HOSTED = ["range", "block-5.13", "block-6.6", "block", "force"]


@pytest.fixture(autouse=True)
def check_every_step(monkeypatch):
    """Machine.check() after the boot and every step of every scenario run here (compare()
    runs them through Scenario.run too)."""
    run = Scenario.run

    def checked(self, strategy, **kw):
        kw.setdefault("check", True)
        return run(self, strategy, **kw)
    monkeypatch.setattr(Scenario, "run", checked)


def test_builtin_scenarios_are_the_documented_ones():
    # the README's five, and the kernel validation scenarios (pagecore validate)
    assert builtin_names() == ["balloon", "cxl", "default", "kv-large", "kv-many",
                               "kv-multi-block", "kv-one-block", "kv-small-movable",
                               "kv-small-offline", "one-block-dimms", "ppc64-force", "tib"]
    for name in builtin_names():
        sc = load(name)
        assert sc.description and sc.strategies and sc.steps


# ---- one-block-dimms: 2 GiB VM, 128 MiB ACPI DIMMs, online movable ----------------------
@pytest.fixture(scope="module")
def default():
    # scale 1/4: 2 GiB as 16 one-block DIMMs; no workload so free lists stay as onlined
    return compare(load("one-block-dimms", params={"workload": "0"}, scale=0.25))


def test_default_boot_path_accounting(default):
    a = 2 * GiB
    s = default["strategies"]["boot"]
    boot, add = s["steps"][0], s["steps"][1]
    assert add["action"] == "add"
    assert (add["MemTotal_kB"] - boot["MemTotal_kB"]) * 1024 == a
    assert (add["MemFree_kB"] - boot["MemFree_kB"]) * 1024 == a - a // 64
    assert s["memmap"]["where"]["boot_memory_by_node"] == {"0": a // 64}
    assert s["memmap"]["where"]["self_hosted_by_node"] == {}
    assert s["memmap"]["paid"] == {"at_add_bytes": a // 64, "at_online_bytes": 0}


@pytest.mark.parametrize("strategy", SELF_HOSTED)
def test_default_self_hosted_accounting(default, strategy):
    a = 2 * GiB
    s = default["strategies"][strategy]
    boot, add = s["steps"][0], s["steps"][1]
    assert (add["MemTotal_kB"] - boot["MemTotal_kB"]) * 1024 == a - a // 64
    assert (add["MemFree_kB"] - boot["MemFree_kB"]) * 1024 == a - a // 64
    assert s["memmap"]["where"]["self_hosted_by_node"] == {"0": a // 64}
    assert s["memmap"]["where"]["boot_memory_by_node"] == {}
    assert s["memmap"]["paid"] == {"at_add_bytes": 0, "at_online_bytes": a // 64}
    assert s["waste_pages"] == 0


def test_default_hugepages_and_offline(default):
    st = default["strategies"]
    # docs/model.md#the-compare-report: 2 MiB pages per 128 MiB block: 64 traditional, 63 self-hosted
    assert st["boot"]["hugepages"]["pmd"]["free_blocks_hotplugged"] == 16 * 64
    assert st["block"]["hugepages"]["pmd"]["free_blocks_hotplugged"] == 16 * 63
    # 1 GiB windows: every one traditionally, none with a memmap in every 128 MiB block
    assert st["boot"]["hugepages"]["gigantic"]["windows_hotplugged"] == 2
    for name in SELF_HOSTED:
        assert st[name]["hugepages"]["gigantic"]["windows_hotplugged"] == 0
    for name, s in st.items():
        assert s["error"] is None
        assert s["added_bytes"] == 2 * GiB
        assert s["memmap"]["bytes"] == 2 * GiB // 64
        assert s["offline"]["offlinable_blocks"] == s["offline"]["online_hotplugged_blocks"] == 16
        assert s["offline"]["removable_ranges"] == s["offline"]["ranges"] == 16


def test_default_workload_step_takes_its_bytes():
    sc = load("one-block-dimms", params={"workload": "256M"}, scale=0.125)
    run = sc.run("block")
    add, alloc = run.records[1], run.records[2]
    assert alloc["detail"]["allocated"] == alloc["detail"]["requested"] == 256 * MiB // 4096
    # MemFree leaves out the pages the refills left on the pcp lists: with them, exactly
    assert (add["MemFree_kB"] + add["free_pcp_kB"]
            - alloc["MemFree_kB"] - alloc["free_pcp_kB"]) * 1024 == 256 * MiB


# ---- balloon: classic path hits ENOMEM first ---------------------------------------------
def test_balloon_classic_path_hits_enomem_first():
    sc = load("balloon", params={"boot": "160M"}, scale=0.125)      # up to 8 GiB
    res = compare(sc, ["boot", "block"])
    boot, block = res["strategies"]["boot"]["hotadd"][0], res["strategies"]["block"]["hotadd"][0]
    assert block["oom"] is None and block["added"] == block["requested"] == 8 * GiB
    assert boot["oom"] is not None and boot["added"] < block["added"]
    assert boot["oom"]["after_bytes"] == boot["added"]
    # every 128 MiB call took 2 MiB of kernel-zone memory: the limit is 64x what the
    # kernel zones had free above their reserves (GFP_KERNEL never uses ZONE_MOVABLE)
    m = sc.run("boot", stop_after=0).machine
    zones = [z for z in m.zones() if z.zid < 3 and z.managed_pages]
    free = sum(z.free_pages for z in zones) * 4096
    keep = sum(z.watermark[0] + z.lowmem_reserve[2] for z in zones) * 4096
    assert 64 * (free - keep) - 256 * MiB <= boot["added"] <= 64 * free
    assert boot["oom"]["kernel_zones_free_kB"] * 1024 < keep + 2 * 513 * 4096
    assert "ENOMEM" in boot["oom"]["message"]


def test_balloon_with_hv_balloon_never_self_hosts():
    sc = load("balloon", params={"boot": "160M", "driver": "hv-balloon"}, scale=0.125)
    h = compare(sc, ["block"])["strategies"]["block"]["hotadd"][0]
    assert h["flagged_calls"] == h["self_hosted_calls"] == 0
    assert h["oom"] is not None


# ---- cxl: memmap off-node under the classic path -----------------------------------------
def test_cxl_memmap_placement():
    sc = load("cxl", params={"node0": "8G"}, scale=1 / 64)         # 16 GiB on node 1
    st = compare(sc)["strategies"]
    v = 16 * GiB // 64
    for name in ("boot", "block-6.6"):          # dax/kmem passes the flag only from v6.8
        w = st[name]["memmap"]["where"]
        assert w["boot_memory_by_node"] == {"0": v} and w["off_node_bytes"] == v
        assert w["self_hosted_by_node"] == {}
    w = st["block"]["memmap"]["where"]
    assert w["self_hosted_by_node"] == {"1": v}
    assert w["boot_memory_by_node"] == {} and w["off_node_bytes"] == 0
    off = compare(load("cxl", params={"node0": "8G", "knob": "false"}, scale=1 / 64), ["block"])
    assert off["strategies"]["block"]["memmap"]["where"]["boot_memory_by_node"] == {"0": v}


# ---- tib: generations side by side, 2 GiB blocks -----------------------------------------
def test_tib_generations():
    sc = load("tib", params={"boot": "8G"}, scale=1 / 32)          # 8 DIMMs of 4 GiB
    st = compare(sc, contig=True)["strategies"]
    a = 32 * GiB
    for name, s in st.items():
        assert s["block_size"] == 2 * GiB and s["added_bytes"] == a
        assert s["memmap"]["bytes"] == a // 64
    for name in ("boot", "block-5.13", "block-6.6"):   # two-block DIMMs fall back
        assert st[name]["memmap"]["where"]["boot_memory_by_node"] == {"0": a // 64}
    for name in ("range", "block", "force"):
        assert st[name]["memmap"]["where"]["self_hosted_by_node"] == {"0": a // 64}
    g = {n: s["hugepages"]["gigantic"]["windows_hotplugged"] for n, s in st.items()}
    assert g["boot"] == 32                    # every 1 GiB window
    assert g["block"] == g["force"] == 16     # docs/model.md#gigantic-pages: second GiB of each 2 GiB block
    assert g["range"] == 8 * 3                # only the first GiB of each DIMM is lost
    # the measured count (alloc_contig_range() per window) agrees in ZONE_MOVABLE
    assert {n: s["hugepages"]["gigantic_contig"]["windows_movable"] for n, s in st.items()} == g


# ---- ppc64 force: 28 wasted pages per block ------------------------------------------------
def test_ppc64_force_waste():
    st = compare(load("ppc64-force"))["strategies"]
    nblocks, page = 16, 64 * 1024
    f = st["force"]
    assert f["waste_pages"] == 28 * nblocks
    assert f["memmap"]["where"]["waste_bytes"] == 28 * nblocks * page
    assert f["memmap"]["where"]["self_hosted_by_node"] == {"0": 4 * nblocks * page}
    assert f["meminfo"]["delta"]["MemTotal_kB"] * 1024 == nblocks * (256 * MiB - 32 * page)
    # without force the 4-page memmap is not pageblock aligned: classic path
    b = st["block"]
    assert b["waste_pages"] == 0 and b["memmap"]["where"]["self_hosted_by_node"] == {}
    assert b["memmap"]["where"]["boot_memory_by_node"] == {"0": 4 * nblocks * page}


# ---- memtotal / memfree mapping ------------------------------------------------------------
def _write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = """
[machine]
arch = "x86_64"
kernel = "6.12"
{extra}
[[machine.node]]
boot = "2G"
"""


def test_memtotal_memfree_map_onto_the_machine(tmp_path):
    p = _write(tmp_path, BASE.format(extra='memtotal = "1900000 kB"\nmemfree = "1500000 kB"'))
    run = load(p).run("boot")
    assert run.records[0]["MemTotal_kB"] == 1900000
    assert run.records[0]["MemFree_kB"] == 1500000


def test_node_cpus_and_pcp_fraction_reach_the_machine(tmp_path):
    # 4 CPUs on node 0: DMA32's pcp high is its low watermark / 4 (zone_highsize())
    from pagecore.procfs import zoneinfo_dict
    sc = load(_write(tmp_path, BASE.format(extra="") + "cpus = 4\n"))
    run = sc.run("boot")
    m = run.machine
    z = next(r for r in zoneinfo_dict(m) if r["zone"] == "DMA32")
    assert len(z["pagesets"]) == 4 and z["pagesets"][0]["high"] == z["low"] // 4
    sc = load(_write(tmp_path, BASE.format(extra="percpu_pagelist_high_fraction = 16")))
    m = sc.run("boot").machine
    dma32 = m.zone(0, 1)
    assert dma32.per_cpu_pageset.high_min == dma32.managed_pages // 16


def test_memtotal_too_large(tmp_path):
    p = _write(tmp_path, BASE.format(extra='memtotal = "3G"'))
    with pytest.raises(ConfigError, match=r"s\.toml: machine\.memtotal: expected at most"):
        load(p).run("boot")


# ---- malformed files -------------------------------------------------------------------------
GOOD_STEP = '[[step]]\naction = "add"\ndriver = "acpi"\nsize = "128M"\n'


@pytest.mark.parametrize("text, key, what", [
    ("[machine]\narch = \"x86_64\"\n", "machine.node", "missing required key"),
    (BASE.format(extra="") + '[[step]]\naction = "add"\ndriver = "acpi"\n', "step[1].size",
     "missing required key"),
    (BASE.format(extra="") + GOOD_STEP + 'count = "many"\n', "step[1].count", "expected an integer"),
    (BASE.format(extra="is_vm = 3"), "machine.is_vm", "expected true or false"),
    (BASE.format(extra="") + '[[step]]\naction = "explode"\n', "step[1].action", "expected one of"),
    ('strategies = ["boot", "nope"]\n' + BASE.format(extra=""), "strategies",
     "unknown strategy 'nope'"),
    (BASE.format(extra='colour = "red"'), "machine.colour", "unknown key"),
    (BASE.format(extra="") + GOOD_STEP.replace('"128M"', '"${dimm}"'), "step[1].size",
     "not declared in [params]"),
    (BASE.format(extra="") + GOOD_STEP.replace('"128M"', '"12 parsecs"'), "step[1].size",
     "expected a size"),
    (BASE.format(extra="") + '[[step]]\naction = "free"\ntag = "x"\n', "step[1].tag",
     "the tag of an earlier alloc step"),
    (BASE.format(extra="") + GOOD_STEP.replace('"acpi"', '"floppy"'), "step[1].driver",
     "expected one of"),
    ("[machine\n", "not valid TOML", ""),
    (BASE.format(extra="percpu_pagelist_high_fraction = 4"),
     "machine.percpu_pagelist_high_fraction", "expected 0 or >= 8"),
    (BASE.format(extra="") + "cpus = -2\n", "machine.node[0].cpus",
     "expected true, false or a number of CPUs"),
])
def test_malformed_scenarios_name_file_and_key(tmp_path, text, key, what):
    p = _write(tmp_path, text, "broken.toml")
    with pytest.raises(ConfigError) as info:
        load(p)
    msg = str(info.value)
    assert str(p) in msg and key in msg and what in msg


GIGANTIC = GOOD_STEP.replace('"128M"', '"2G"') + """online = "online_movable"
[[step]]
action = "alloc"
gfp = "movable"
bytes = "64M"
[[step]]
action = "compact"
zone = "Movable"
[[step]]
action = "gigantic"
count = 3
gfp = "movable"
"""


@pytest.mark.parametrize("strategy, pages", [("boot", 2), ("block", 0)])
def test_compact_and_gigantic_steps(tmp_path, strategy, pages):
    # 2 GiB hot-added to ZONE_MOVABLE, 64 MiB of it then used by movable pages: with a
    # classic memmap alloc_contig_range() still finds two 1 GiB pages (docs/model.md#gigantic-pages); with a
    # memmap in every 128 MiB block, none
    pytest.importorskip("pagecore.compaction")
    run = load(_write(tmp_path, BASE.format(extra="") + GIGANTIC)).run(strategy)
    assert run.error is None
    compact, gig = run.records[3]["detail"], run.records[4]["detail"]
    assert set(compact["zones"]) == {"Movable"} and compact["zones"]["Movable"] == "complete"
    assert gig["requested"] == 3 and gig["allocated"] == pages


def test_unknown_param_override_and_scenario(tmp_path):
    with pytest.raises(ConfigError, match="params.nope: unknown parameter"):
        load("one-block-dimms", params={"nope": "1"})
    with pytest.raises(ConfigError, match="unknown scenario 'nosuch'"):
        load("nosuch")
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")


def test_run_error_is_recorded_not_raised(tmp_path):
    # a node-0 VM with 1 GiB asks for a 128 GiB classic hot-add: its memmap (2 GiB) cannot fit
    p = _write(tmp_path, BASE.replace('"2G"', '"1G"').format(extra="")
               + GOOD_STEP.replace('"128M"', '"128G"'))
    run = load(p).run("boot")
    assert run.error["step"] == 1 and run.error["type"] == "OutOfMemoryError"
    assert run.records[-1]["detail"]["error"] == run.error["message"]


def test_setting_refuted_by_the_booted_machine_raises(tmp_path):
    # hv_balloon adds 128 MiB chunks: impossible with 256 MiB memory blocks
    p = _write(tmp_path, BASE.format(extra='block_size = "256M"')
               + GOOD_STEP.replace('"acpi"', '"hv-balloon"').replace('"128M"', '"1G"'))
    with pytest.raises(ConfigError) as info:      # the block size is known at load time
        load(p)
    assert str(p) in str(info.value) and "step[1]" in str(info.value)
    assert "128 MiB add_memory() chunks" in str(info.value)


# ---- load-time placement, versions, numbers ---------------------------------------------------
ADD = '[[step]]\naction = "add"\ndriver = "acpi"\nsize = "{size}"\n'


@pytest.mark.parametrize("steps, key, what", [
    # 128 MiB blocks (2 GiB of boot memory < 64 GiB): a 100 MiB DIMM cannot be added
    (ADD.format(size="100M"), "step[1].size", "not a multiple of the memory block size (128M)"),
    (ADD.format(size="128M") + 'start = "4160M"\n', "step[1].start", "not aligned"),
    # boot memory is [0, 2G): a DIMM at 1 GiB overlaps it
    (ADD.format(size="128M") + 'start = "1G"\n', "step[1].start", "overlaps boot memory"),
    # the first add goes at 4 GiB (the cursor); the second, placed there, overlaps it
    (ADD.format(size="1G") + ADD.format(size="128M") + 'start = "4G"\n', "step[2].start",
     "overlaps step[1]"),
    # phys_bits 46: 64 TiB of address space
    (ADD.format(size="64T"), "step[1].size", "beyond the 64T physical address space"),
    (ADD.format(size="128M") + '[[step]]\naction = "remove"\nranges = [1]\n', "step[2].ranges",
     "call 1 does not exist"),
    (ADD.format(size="128M") + '[[step]]\naction = "remove"\nranges = [0]\n'
     + '[[step]]\naction = "remove"\nranges = [0]\n', "step[3].ranges", "removed by an earlier"),
    (ADD.format(size="inf"), "step[1].size", "expected a size"),
    ("", "machine.used_movable_share", "finite"),
])
def test_placement_and_numbers_are_checked_at_load(tmp_path, steps, key, what):
    extra = "used_movable_share = nan" if key == "machine.used_movable_share" else ""
    text = BASE.format(extra=extra) + steps
    text = text.replace('size = "inf"', "size = inf")
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(p)
    msg = str(info.value)
    assert str(p) in msg and key in msg and what in msg, msg


def test_an_explicit_start_may_reuse_a_removed_range(tmp_path):
    p = _write(tmp_path, BASE.format(extra="") + ADD.format(size="128M") + 'start = "4G"\n'
               + '[[step]]\naction = "remove"\nranges = "last"\n'
               + ADD.format(size="128M") + 'start = "4G"\n')
    assert load(p).run("block").error is None


def test_remove_indices_name_calls_in_the_order_made(tmp_path):
    # three 128 MiB DIMMs at 4G, 4G+128M, 4G+256M; removing call 0 then call 1 must
    # leave the third (at 4G+256M = block 34), whatever the first removal shifted
    p = _write(tmp_path, BASE.format(extra="") + ADD.format(size="128M") + "count = 3\n"
               + '[[step]]\naction = "remove"\nranges = [0]\n'
               + '[[step]]\naction = "remove"\nranges = [1]\n')
    run = load(p).run("block")
    assert run.error is None
    present = [int(b) for b in run.hotplug.hotplugged_blocks()]
    assert present == [34]
    assert [r.removed for r in run.hotplug.calls] == [True, True, False]


@pytest.mark.parametrize("version, want", [("6.12.3", (6, 12)), ("6.1.0-28-amd64", (6, 1)),
                                           ("5.13", (5, 13))])
def test_kernel_versions_as_uname_prints_them(tmp_path, version, want):
    p = _write(tmp_path, BASE.replace('"6.12"', f'"{version}"').format(extra=""))
    assert load(p).machine["kernel"] == want


@pytest.mark.parametrize("version", ["99.0", "5.2", "6.17", "six"])
def test_kernel_versions_without_rules_are_refused(tmp_path, version):
    p = _write(tmp_path, BASE.replace('"6.12"', f'"{version}"').format(extra=""))
    with pytest.raises(ConfigError, match="machine.kernel"):
        load(p)


def test_memfree_too_small_blames_memfree(tmp_path):
    p = _write(tmp_path, BASE.format(extra='memfree = "10M"'))
    with pytest.raises(ConfigError) as info:
        load(p).run("boot")
    assert "machine.memfree" in str(info.value) and "boot_used" not in str(info.value)


def test_param_errors_name_the_param(tmp_path):
    with pytest.raises(ConfigError) as info:
        load("one-block-dimms", params={"dimm": "100M"})
    msg = str(info.value)
    assert msg.startswith("--param dimm=100M: scenario one-block-dimms: ")
    assert "site-packages" not in msg


def test_alloc_kinds_and_their_gfps(tmp_path):
    p = _write(tmp_path, BASE.format(extra="") + '[[step]]\naction = "alloc"\nkind = "slab"\n'
               'gfp = "movable"\nbytes = "4M"\n')
    with pytest.raises(ConfigError, match="slab memory is allocated with gfp reclaimable"):
        load(p)
    p = _write(tmp_path, BASE.format(extra="") + '[[step]]\naction = "alloc"\nkind = "pagecache"\n'
               'bytes = "4M"\n')
    run = load(p).run("boot")
    from pagecore.procfs import meminfo_dict
    assert meminfo_dict(run.machine)["Cached"] == 4096        # 4M of page cache, in kB
