"""Hotplug drivers: who passes MHP_MEMMAP_ON_MEMORY in which generation (docs/model.md#who-passes-mhp_memmap_on_memory),
their add_memory() granularity, and the auto-online policy with its delay."""
import pytest

from pagecore import GiB, MiB, ConfigError, Machine, MachineConfig, NodeConfig, OutOfMemoryError, RangeError
from pagecore.drivers.hotplug import DRIVERS, Hotplug, generation
from pagecore.machine import MEM_OFFLINE, MEM_ONLINE


def vm(strategy="block", boot=2 * GiB, arch="x86_64"):
    return Machine(MachineConfig(arch=arch, strategy=strategy, nodes=[NodeConfig(boot=[(0, boot)])]))


@pytest.mark.parametrize("strategy, gen", [("boot", "off"), ("range", "v3"),
                                           ("block-5.13", "5.13"), ("block-6.6", "6.6"),
                                           ("block", "6.8"), ("force", "6.8")])
def test_generation_of_each_strategy(strategy, gen):
    assert generation(strategy) == gen


# (driver, generation) -> (flag for a one-block call, flag for a two-block call)
FLAGS = {
    "acpi": {"off": (0, 0), "v3": (1, 1), "5.13": (1, 0), "6.6": (1, 0), "6.8": (1, 1)},
    "virtio-mem": {g: (0, 0) for g in ("off", "v3", "5.13", "6.6", "6.8")},
    "hv-balloon": {g: (0, 0) for g in ("off", "v3", "5.13", "6.6", "6.8")},
    "xen-balloon": {g: (0, 0) for g in ("off", "v3", "5.13", "6.6", "6.8")},
    "probe": {g: (0, 0) for g in ("off", "v3", "5.13", "6.6", "6.8")},
    "ppc64-dlpar": {"off": (0, 0), "v3": (0, 0), "5.13": (0, 0), "6.6": (1, 1), "6.8": (1, 1)},
    "s390-standby": {"off": (0, 0), "v3": (0, 0), "5.13": (0, 0), "6.6": (0, 0), "6.8": (1, 1)},
}


@pytest.mark.parametrize("driver", sorted(FLAGS))
def test_flag_table(driver):
    m = vm()
    d = DRIVERS[driver]
    for gen, (one, two) in FLAGS[driver].items():
        assert d.passes_flag(m, gen, m.block_size, {}) == bool(one), (driver, gen)
        assert d.passes_flag(m, gen, 2 * m.block_size, {}) == bool(two), (driver, gen)


def test_dax_kmem_needs_its_knob_and_v68():
    m = vm()
    d = DRIVERS["dax-kmem"]
    assert not d.passes_flag(m, "6.8", 8 * m.block_size, {})
    assert d.passes_flag(m, "6.8", 8 * m.block_size, {"memmap_on_memory": True})
    for gen in ("v3", "5.13", "6.6"):
        assert not d.passes_flag(m, gen, m.block_size, {"memmap_on_memory": True})


def test_granularity_of_calls():
    m = vm()
    calls = {n: d.calls(m, 4 * GiB, 512 * MiB) for n, d in DRIVERS.items()}
    assert calls["acpi"] == calls["xen-balloon"] == calls["dax-kmem"] == [(4 * GiB, 512 * MiB)]
    for n in ("virtio-mem", "hv-balloon", "ppc64-dlpar", "s390-standby", "probe"):
        assert calls[n] == [(4 * GiB + i * 128 * MiB, 128 * MiB) for i in range(4)], n
    assert DRIVERS["xen-balloon"].calls(m, 4 * GiB, 100 * MiB) == [(4 * GiB, 128 * MiB)]
    with pytest.raises(RangeError, match="not aligned to the memory block size"):
        Hotplug(m).add("acpi", 100 * MiB)          # check_hotplug_memory_range(): -EINVAL


def test_hv_balloon_chunks_must_hold_whole_blocks():
    m = Machine(MachineConfig(block_size=256 * MiB))
    with pytest.raises(ConfigError, match="128 MiB add_memory"):
        DRIVERS["hv-balloon"].calls(m, 4 * GiB, 1 * GiB)


def test_flagless_driver_uses_the_classic_path_under_any_mode():
    m = vm("block")
    rep = Hotplug(m).add("hv-balloon", 512 * MiB)
    assert rep["calls"] == 4 and rep["flagged_calls"] == rep["self_hosted_calls"] == 0
    assert rep["strategies"] == {"boot": 4}
    assert m.memmap_summary()["boot_memory_pages"] == 4 * 512
    m2 = vm("block")
    rep = Hotplug(m2).add("acpi", 512 * MiB)
    assert rep["self_hosted_calls"] == 1 and m2.memmap_summary()["self_hosted_pages"] == 4 * 512


def test_auto_online_delay_orders_adds_and_onlines():
    m = vm("boot")
    events = []
    add, online = m.add_memory, m.online_pages_blocks
    m.add_memory = lambda *a, **k: (events.append(("add", a[1] // m.block_size)), add(*a, **k))[1]
    m.online_pages_blocks = lambda bl, t: (events.append(("online", list(bl))), online(bl, t))[1]
    Hotplug(m, online="online_movable", delay=2).add("hv-balloon", 5 * 128 * MiB)
    b = 4 * GiB // m.block_size
    assert events == [("add", b), ("add", b + 1), ("add", b + 2), ("online", [b]),
                      ("add", b + 3), ("online", [b + 1]), ("add", b + 4), ("online", [b + 2]),
                      ("online", [b + 3]), ("online", [b + 4])]
    assert (m.blocks["state"][b:b + 5] == MEM_ONLINE).all()
    assert (m.blocks["zone"][b:b + 5] == 3).all()


def test_policy_offline_leaves_blocks_offline_and_virtio_mem_waits():
    m = vm("block")
    rep = Hotplug(m, online="offline").add("virtio-mem", 2 * GiB)
    assert rep["added"] == 1 * GiB and "offline_threshold" in rep["stopped"]
    hot = ~m.blocks["boot"] & (m.blocks["state"] != 0)
    assert (m.blocks["state"][hot] == MEM_OFFLINE).all() and hot.sum() == 8
    rep = Hotplug(vm("block"), online="online").add("virtio-mem", 2 * GiB)
    assert rep["added"] == 2 * GiB and rep["stopped"] is None


def test_until_oom_records_the_failure_and_rolls_back():
    m = vm("boot", boot=160 * MiB)
    hp = Hotplug(m, online="online_movable")
    rep = hp.add("probe", 16 * GiB, until_oom=True)
    assert rep["oom"] is not None and rep["stopped"] == "ENOMEM"
    assert rep["added"] == rep["oom"]["after_bytes"] == rep["calls"] * m.block_size
    present = int(((m.blocks["state"] != 0) & ~m.blocks["boot"]).sum())
    assert present * m.block_size == rep["added"]          # the failed call left nothing
    with pytest.raises(OutOfMemoryError, match="ENOMEM"):
        Hotplug(m).add("probe", 1 * GiB)                    # without until_oom it raises


def test_unknown_driver_option_and_policy():
    hp = Hotplug(vm())
    with pytest.raises(ConfigError, match="no option 'memmap_on_memory'"):
        hp.add("acpi", 128 * MiB, memmap_on_memory=True)
    with pytest.raises(ConfigError, match="auto-online policy"):
        hp.add("acpi", 128 * MiB, online="sometimes")
    with pytest.raises(ConfigError, match="unknown hotplug driver"):
        hp.add("floppy", 128 * MiB)


def test_remove_at_driver_granularity():
    m = vm("block")
    hp = Hotplug(m, online="online_movable")
    hp.add("acpi", 512 * MiB)
    hp.add("acpi", 256 * MiB)
    total = m.mem_total_pages
    r = hp.remove(0)
    assert r.size == 512 * MiB and len(hp.added) == 1
    assert m.mem_total_pages == total - 4 * (32768 - 512)


@pytest.mark.parametrize("delay, added", [(4, 2 * GiB), (16, 1 * GiB)])
def test_virtio_mem_threshold_counts_blocks_waiting_for_onlining(delay, added):
    # onlining lags `delay` adds: at most delay+1 blocks (128 MiB each) are offline at once
    m = vm("block")
    rep = Hotplug(m, online="online", delay=delay).add("virtio-mem", 2 * GiB)
    assert rep["added"] == added
    assert (rep["stopped"] is None) == (added == 2 * GiB)
    assert not (m.blocks["state"] == MEM_OFFLINE).any()      # flushed at the end
