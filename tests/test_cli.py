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
    r = pagecore("compare", "default", "--strategies", "boot,block", "--scale", "0.0625",
                 "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""                       # no progress bar when stderr is not a TTY
    res = json.loads(r.stdout)
    assert res["schema"] == "pagecore.compare/1"
    assert list(res["strategies"]) == ["boot", "block"]
    assert res["scenario"]["name"] == "default" and res["scenario"]["scale"] == 0.0625
    for s in res["strategies"].values():
        assert s["added_bytes"] == 512 * 2**20 and s["memmap"]["bytes"] == 8 * 2**20
        assert {"steps", "hugepages", "offline", "time", "meminfo", "hotadd"} <= set(s)


def test_compare_without_arguments_runs_the_default_scenario():
    r = pagecore("compare", "--strategies", "boot", "--scale", "0.0625")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("scenario default:")
    assert "memmap" in r.stdout and "boot" in r.stdout.splitlines()[3]


def test_run_views():
    r = pagecore("run", "default", "--view", "zoneinfo", "--step", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Node 0, zone      DMA\n") and "Movable" in r.stdout
    r = pagecore("run", "default", "--scale", "0.0625", "--view", "meminfo", "--json",
                 "--strategy", "boot")
    d = json.loads(r.stdout)
    assert d["strategy"] == "boot" and d["step"] == 2 and d["view"] == "meminfo"
    assert d["data"]["MemTotal"] == d["steps"][-1]["MemTotal_kB"]
    r = pagecore("run", "ppc64-force", "--view", "lsmem", "--strategy", "force")
    assert "Memory block size:       256M" in r.stdout and "Total online memory:       8G" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["run", "nosuch"], ["unknown scenario 'nosuch'"]),
    (["compare", "default", "--strategies", "boot,nope"], ["unknown memmap strategy 'nope'"]),
    (["run", "default", "--step", "9"], ["--step 9"]),
    (["compare", "default", "--param", "nope=1"], ["params.nope"]),
    (["sweep", "--grid", "missing.toml", "--out", "x.csv"], ["missing.toml"]),
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


def test_export_sysfs_and_plot(tmp_path):
    r = pagecore("export-sysfs", "default", "--scale", "0.0625", "--out", tmp_path / "root")
    assert r.returncode == 0, r.stderr
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
    r = pagecore("compare", "default", "--strategies", "boot,block", "--scale", "0.0625",
                 "--json")
    res.write_text(r.stdout)
    png = tmp_path / "o.png"
    r = pagecore("plot", "overhead", res, "--out", png)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_optional_module_is_a_clean_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = ("import sys; sys.modules['pagecore.plots'] = None; from pagecore.cli import main; "
            "sys.exit(main(['plot', 'overhead', 'x.json', '--out', 'y.png']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert_clean_error(r, "plot overhead needs pagecore.plots")


def test_progress_bar():
    buf = io.StringIO()
    p = Progress(True, width=10, stream=buf)
    p(5, 10, "half")
    p(10, 10, "done")
    p.close()
    assert "[#####-----] 5/10" in buf.getvalue() and "[##########] 10/10" in buf.getvalue()
    buf = io.StringIO()
    q = Progress(False, stream=buf)
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
