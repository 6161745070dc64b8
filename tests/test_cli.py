"""The `pagecore` console script, run as `python -m pagecore.cli` in a subprocess."""
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pagecore.cli import Progress

ROOT = Path(__file__).resolve().parents[1]


def pagecore(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pagecore.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=120)


def assert_clean_error(r, *words):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("pagecore: error: ") and "Traceback" not in r.stderr
    for w in words:
        assert w in lines[-1]


def test_scenarios_lists_builtins():
    r = pagecore("scenarios")
    assert r.returncode == 0
    for name in ("default", "balloon", "cxl", "tib", "ppc64-force"):
        assert any(line.startswith(name + " ") for line in r.stdout.splitlines()), name


def test_compare_json_schema_and_figures():
    r = pagecore("compare", "one-block-dimms", "--strategies", "boot,block", "--scale", "0.0625",
                 "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""                       # no progress bar when stderr is not a TTY
    res = json.loads(r.stdout)
    assert res["schema"] == "pagecore.compare/1"
    assert res["ok"] is True and res["exit_status"] == 0 and res["failed"] == []
    assert list(res["strategies"]) == ["boot", "block"]
    assert res["scenario"]["name"] == "one-block-dimms" and res["scenario"]["scale"] == 0.0625
    for s in res["strategies"].values():
        assert s["added_bytes"] == 512 * 2**20 and s["memmap"]["bytes"] == 8 * 2**20
        assert {"steps", "hugepages", "offline", "time", "meminfo", "hotadd"} <= set(s)


def test_compare_without_arguments_runs_the_default_scenario():
    r = pagecore("compare")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("scenario default:")
    # the table: after the three title lines and a blank one, up to the footer
    table = [x for x in r.stdout.split("Strategies:")[0].splitlines()[4:] if x.strip()]
    rows = {" ".join(line.split()[:-6]): line.split()[-6:] for line in table}
    assert rows[""] == ["boot", "range", "block-5.13", "block-6.6", "block", "force"]
    # The 4 GiB DIMM's memmap is 4G / 4K * 64 B = 64M; each 512M DIMM's 8M, each 128M
    # DIMM's 2M: 88M in all. Classic: all of it from boot memory; v5.13-v6.7 self-host
    # only the four one-block DIMMs (8M); the seed series and v6.8 self-host all of it.
    assert rows["in boot memory, taken when added"] == ["88M", "0", "80M", "80M", "0", "0"]
    assert rows["self-hosted, inside the added blocks"] == ["0", "88M", "8M", "8M", "88M", "88M"]
    # 1 GiB windows of the 4 GiB DIMM at 4 GiB: all four with a classic memmap, three
    # when the seed series puts its 64M at the DIMM's start, none with one per block
    assert rows["1G pages possible"] == ["4", "3", "4", "4", "0", "0"]
    # a self-hosted memmap never enters MemTotal: 88M less than the classic path's, 8M
    # less for v5.13-v6.7 (only the one-block DIMMs self-host)
    total = rows["MemTotal at the end"]
    assert len(set(total)) == 3 and total[1] == total[4] == total[5] and total[2] == total[3]
    assert "What the rows mean" in r.stdout and "spec" not in r.stdout


def test_compare_units_are_exact_and_delta_shows_differences():
    r = pagecore("compare", "--strategies", "boot,block", "--units", "kB", "--delta", "--quiet")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("MemTotal at the end"))
    boot, block = line.split()[-2:]
    # the self-hosted memmap (88M = 90112 kB) is not in MemTotal
    assert block == "-90112" and int(boot) > 0
    line = next(x for x in r.stdout.splitlines() if x.startswith("MemFree at boot"))
    assert line.split()[-1] == "="


def test_run_views():
    r = pagecore("run", "default", "--view", "zoneinfo", "--step", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Node 0, zone      DMA\n") and "Movable" in r.stdout
    r = pagecore("run", "one-block-dimms", "--scale", "0.0625", "--view", "meminfo", "--json",
                 "--strategy", "boot")
    d = json.loads(r.stdout)
    assert d["strategy"] == "boot" and d["step"] == 2 and d["view"] == "meminfo"
    assert d["ok"] is True and d["exit_status"] == 0 and "SwapTotal" in d["not_modelled"]
    assert d["data"]["MemTotal"] == d["steps"][-1]["MemTotal_kB"]
    # the 1G workload is anonymous: counted in AnonPages, not in MemAvailable
    assert d["data"]["AnonPages"] == 1048576
    assert d["data"]["MemAvailable"] < d["data"]["MemFree"]
    r = pagecore("run", "ppc64-force", "--view", "lsmem", "--strategy", "force")
    assert "Memory block size:       256M" in r.stdout and "Total online memory:       8G" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["run", "nosuch"], ["unknown scenario 'nosuch'"]),
    (["compare", "default", "--strategies", "boot,nope"], ["unknown memmap strategy 'nope'"]),
    (["run", "default", "--step", "9"], ["--step 9"]),
    (["compare", "default", "--param", "nope=1"], ["params.nope"]),
    (["sweep", "--grid", "missing.toml", "--out", "x.csv"], ["missing.toml"]),
    (["compare", "--scale", "nan"], ["--scale nan", "finite"]),
    (["compare", "--scale", "inf"], ["--scale inf", "finite"]),
    (["run", "default", "--strategy", "nosuch"], ["--strategy nosuch", "'nosuch'"]),
    # the user typed dimm=100M: name it, and the rule it breaks, not the 8G of the file
    (["compare", "one-block-dimms", "--param", "dimm=100M"],
     ["--param dimm=100M", "scenario one-block-dimms", "multiple"]),
    (["compare", "default", "--param", "small=100M"],
     ["--param small=100M", "step[2].size", "memory block size (128M)"]),
    (["plot", "map", "default", "--step", "99", "--out", "m.png"], ["--step 99"]),
    (["plot", "map", "default", "--out", "/missing/dir/m.png"], ["/missing/dir"]),
    (["export-sysfs", "default", "--out", "/missing/dir/root"], ["/missing/dir"]),
    (["sweep", "--grid", "missing.toml", "--out", "/tmp"], ["--out /tmp", "directory"]),
])
def test_errors_are_one_clean_line(args, words):
    assert_clean_error(pagecore(*args), *words)


def test_bad_scenario_file_names_file_and_key(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[machine]\nkernel = 6.12\n[[machine.node]]\nboot = "1G"\n')
    assert_clean_error(pagecore("compare", p), str(p), "machine.kernel")


def test_usage_errors_exit_2():
    r = pagecore("frobnicate")
    assert r.returncode == 2 and "pagecore: error:" in r.stderr and "Traceback" not in r.stderr


def test_errors_in_builtin_scenarios_name_the_scenario_not_its_path():
    r = pagecore("compare", "default", "--param", "big=64T")
    assert_clean_error(r, "scenario default:", "physical address space")
    assert "site-packages" not in r.stderr and "scenarios/default.toml" not in r.stderr


def test_export_sysfs_refuses_a_file_as_out(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    assert_clean_error(pagecore("export-sysfs", "default", "--out", f), "not a directory")


def test_failed_step_exits_1_and_json_says_so(tmp_path):
    # a 1 GiB VM asked for a 128 GiB classic hot-add: its 2 GiB memmap cannot fit
    p = tmp_path / "big.toml"
    p.write_text('[machine]\n[[machine.node]]\nboot = "1G"\n[[step]]\naction = "add"\n'
                 'driver = "acpi"\nsize = "128G"\n')
    r = pagecore("compare", p, "--strategies", "boot", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] is False and res["exit_status"] == 1
    assert res["failed"][0]["strategy"] == "boot" and res["failed"][0]["step"] == 1
    assert "boot: step 1 (add) failed" in r.stderr
    r = pagecore("run", p, "--strategy", "boot")
    assert r.returncode == 1 and "step 1 (add) failed" in r.stderr
    # declared: the same failure is expected, recorded, and the run goes on
    p.write_text(p.read_text() + "may_fail = true\n")
    r = pagecore("run", p, "--strategy", "boot", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["ok"] and d["expected_failures"][0]["type"] == "OutOfMemoryError"


def test_until_oom_adds_are_expected_to_stop():
    r = pagecore("compare", "balloon", "--scale", "0.125", "--strategies", "boot", "--quiet")
    assert r.returncode == 0, r.stderr


def test_export_sysfs_and_plot(tmp_path):
    r = pagecore("export-sysfs", "one-block-dimms", "--scale", "0.0625", "--out",
                 tmp_path / "root")
    assert r.returncode == 0, r.stderr
    # the command to run, with the directory lsmem wants (the root above sys/)
    assert r.stdout == f"lsmem --sysroot {tmp_path / 'root'}\n"
    mem = tmp_path / "root" / "sys/devices/system/memory"
    assert (mem / "block_size_bytes").read_text() == "8000000\n"
    assert (mem / "memory32" / "state").read_text() == "online\n"
    assert (mem / "auto_online_blocks").read_text() == "online_movable\n"
    if shutil.which("lsmem"):
        out = subprocess.run(["lsmem", "--sysroot", str(tmp_path / "root")],
                             capture_output=True, text=True).stdout
        assert "Total online memory:     2.5G" in out          # 2 GiB boot + 512 MiB
    pytest.importorskip("matplotlib")
    res = tmp_path / "res.json"
    r = pagecore("compare", "one-block-dimms", "--strategies", "boot,block", "--scale", "0.0625",
                 "--json")
    res.write_text(r.stdout)
    png = tmp_path / "o.png"
    r = pagecore("plot", "overhead", res, "--out", png)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar():
    # enabled: tqdm draws to the stream it is given, with the count and the label
    buf = io.StringIO()
    p = Progress(True, stream=buf, mininterval=0)
    p(5, 10, "half")
    p(10, 10, "done")
    p.close()
    assert "5/10" in buf.getvalue() and "10/10" in buf.getvalue() and "done" in buf.getvalue()
    # disabled (--quiet), and left to tqdm on a stream that is not a terminal: nothing
    for enabled in (False, None):
        buf = io.StringIO()
        q = Progress(enabled, stream=buf)
        q(1, 2)
        q.close()
        assert buf.getvalue() == ""


def test_run_check_runs_machine_check_after_every_step():
    """--check: Machine.check() after the boot and each step; the default scenario is
    consistent, so the view is the same as without it."""
    plain = pagecore("run", "default", "--step", "1", "--strategy", "block")
    checked = pagecore("run", "default", "--step", "1", "--strategy", "block", "--check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == plain.stdout and "MemTotal" in checked.stdout


def test_validate_compact_replays_the_recorded_kernel_runs(tmp_path):
    """`validate --compact --recorded`: the node compaction recorded on 6.12 (memmap on
    memory) against pagecore, exit 0; a record whose count is changed by one page
    differs, exit 1; a mode with no recording is a usage error naming it, exit 2."""
    from pagecore.validate import compact
    r = pagecore("validate", "--compact", "--kernel", "6.12", "--memmap-on-memory", "1",
                 "--recorded")
    assert r.returncode == 0, r.stderr
    assert "388608 | 388608" in r.stdout and "pagecore matches the kernel" in r.stdout
    rec = compact.load(compact.recorded_path("6.12", "1"))
    rec["vmstat_delta"]["compact_migrate_scanned"] += 1
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps(rec))
    r = pagecore("validate", "--compact", "--from", bad, "--json")
    assert r.returncode == 1, r.stderr
    rows = {q: (a, b, same) for q, a, b, same in json.loads(r.stdout)["rows"]}
    assert rows["compact_migrate_scanned"] == (388609, 388608, False)
    r = pagecore("validate", "--compact", "--kernel", "6.1", "--memmap-on-memory", "force",
                 "--recorded")
    assert_clean_error(r, "--recorded", "6.1", "memmap_on_memory=force")
