"""Live runs on a real kernel (deselected by default: `pytest -m qemu`).

Each boots a Debian kernel under QEMU through pagecore.validate and needs
qemu-system-x86, busybox-static and the kernel unpacked in the cache (`pagecore
validate` downloads it); a test skips when one is missing. They check the harness
itself against the recorded runs (a fresh recording of kv-one-block gives the same exact
counters as the stored one) and pagecore against the fresh recording.
"""
import shutil

import pytest

from pagecore import scenario
from pagecore.errors import ConfigError
from pagecore.validate import compare as vc
from pagecore.validate import kernels, record

pytestmark = pytest.mark.qemu

EXACT = ("spanned", "present", "managed", "min", "low", "high", "protection")


def _kernel(series):
    if not shutil.which("qemu-system-x86_64") or not shutil.which("busybox"):
        pytest.skip("qemu-system-x86 or busybox-static is not installed")
    try:
        return kernels.find_kernel(series, download=False)
    except ConfigError:
        pytest.skip(f"no {series} kernel in {kernels.cache_dir()} (pagecore validate downloads it)")


@pytest.mark.parametrize("series,mode", [("6.1", "0"), ("6.1", "1"), ("6.12", "1"), ("6.12", "force")])
def test_live_run_matches_recording_and_pagecore(series, mode, tmp_path):
    _kernel(series)
    rec = record.record(scenario.load("kv-one-block"), series, mode, timeout=600)
    assert rec["result"]["status"] == "ok", rec["result"]
    stored = record.load_run(record.recorded_path("kv-one-block", series, mode))
    assert [o["op"] for o in rec["ops"]] == [o["op"] for o in stored["ops"]]
    for new, old in zip(rec["ops"], stored["ops"]):
        assert new["error"] == old["error"]
        assert new["meminfo"]["MemTotal"] == old["meminfo"]["MemTotal"]
        assert new["vmstat"].get("nr_memmap_pages") == old["vmstat"].get("nr_memmap_pages")
        for zone, z in old["zones"].items():
            assert {f: new["zones"][zone][f] for f in EXACT} == {f: z[f] for f in EXACT}, zone
    res = vc.compare(rec)
    assert res["ok"], vc.format_report(res)


@pytest.mark.parametrize("series,mode", [("6.1", "0"), ("6.12", "1")])
def test_live_node_compaction_matches_recording_and_pagecore(series, mode):
    """A fresh node compaction (pagecore.validate.compact) gives the stored record's
    counts and buddyinfo, and pagecore's replay of it the same."""
    from pagecore.validate import compact
    _kernel(series)
    rec = compact.record(series, mode, timeout=600)
    stored = compact.load(compact.recorded_path(series, mode))
    for key in ("zones", "buddyinfo_before", "buddyinfo_after", "vmstat_delta"):
        assert rec[key] == stored[key], key
    got = compact.replay(rec)
    assert got["vmstat_delta"] == {k: rec["vmstat_delta"][k] for k in got["vmstat_delta"]}
