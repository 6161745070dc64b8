"""Sweeps: local parallel run, resume after an interruption, and a Dask LocalCluster run."""
import csv

import pytest

from pagecore import ConfigError
from pagecore.sweep import load_grid, run_point, run_sweep

GRID = """
scenarios = ["one-block-dimms"]
strategies = ["boot", "block"]
scale = 0.0625
[params]
boot = ["1G", "2G"]
workload = ["0"]
"""


@pytest.fixture
def grid(tmp_path):
    p = tmp_path / "grid.toml"
    p.write_text(GRID)
    return p


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_figures(rs):
    # 512 MiB hot-added in 128 MiB ACPI DIMMs; memmap 1/64 of it, wherever it lives
    for r in rs:
        assert r["ok"] == "True", r["error"]
        assert int(r["added_bytes"]) == 512 << 20 and int(r["memmap_bytes"]) == 8 << 20
        where = "boot_memory_bytes" if r["strategy"] == "boot" else "self_hosted_bytes"
        assert int(r[where]) == 8 << 20
        delta_total = int(r["memtotal_delta_kB"]) << 10
        assert delta_total == (512 << 20) - (0 if r["strategy"] == "boot" else 8 << 20)


def test_local_parallel_run_then_resume(grid, tmp_path):
    out = tmp_path / "res.csv"
    s = run_sweep(grid, out, workers=2)
    assert (s["points"], s["ran"], s["skipped"], s["failed"]) == (4, 4, 0, 0)
    first = rows(out)
    assert len({r["key"] for r in first}) == 4
    assert {(r["strategy"], r["param.boot"]) for r in first} == {
        (st, b) for st in ("boot", "block") for b in ("1G", "2G")}
    check_figures(first)

    # interruption: half the rows lost, the last one torn mid-write by a kill
    lines = out.read_text().splitlines(keepends=True)
    kept, lost = lines[:3], lines[3:]
    out.write_text("".join(kept) + lost[0][:25])
    lost_keys = {next(csv.reader([ln]))[0] for ln in lost}
    s = run_sweep(grid, out, workers=1)
    assert (s["ran"], s["skipped"]) == (2, 2)
    assert set(s["ran_keys"]) == lost_keys
    again = rows(out)
    assert sorted(r["key"] for r in again) == sorted(r["key"] for r in first)
    assert out.read_text().startswith("".join(kept))        # finished rows left untouched
    check_figures(again)

    s = run_sweep(grid, out, workers=2)                     # nothing left to do
    assert (s["ran"], s["skipped"]) == (0, 4)


def test_resume_refuses_a_file_from_another_grid(grid, tmp_path):
    out = tmp_path / "res.csv"
    out.write_text("key,scenario,strategy,other\nx,y,z,w\n")
    with pytest.raises(ConfigError, match="different grid"):
        run_sweep(grid, out, workers=1)


@pytest.mark.parametrize("text, match", [
    ('scenarios = ["one-block-dimms"]\n[params]\nnope = ["1"]\n', "params.nope: unknown parameter"),
    ('scenarios = ["one-block-dimms"]\nstrategies = ["warp"]\n', "unknown strategy 'warp'"),
    ('scenarios = "default"\n', "scenarios: expected a non-empty list"),
    ('scenarios = ["one-block-dimms"]\n[params]\nboot = "1G"\n', "params.boot: expected a non-empty list"),
    ('scenarios = ["one-block-dimms"]\nscale = -1\n', "scale: expected a finite number > 0"),
    ('scenarios = ["nosuch.toml"]\n', "does not exist"),
])
def test_grid_validation(tmp_path, text, match):
    p = tmp_path / "g.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_grid(p)
    assert str(p) in str(info.value)


def test_failed_point_gets_a_row(tmp_path):
    (tmp_path / "tiny.toml").write_text(
        '[params]\nsize = "128G"\n[machine]\n[[machine.node]]\nboot = "1G"\n'
        '[[step]]\naction = "add"\ndriver = "acpi"\nsize = "${size}"\n')
    g = tmp_path / "g.toml"
    g.write_text('scenarios = ["tiny.toml"]\nstrategies = ["boot"]\n')
    points, _ = load_grid(g)
    row = run_point(points[0])
    assert row["ok"] is False and "OutOfMemoryError" in row["error"]


def test_dask_local_cluster(grid, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    out_local, out_dask = tmp_path / "local.csv", tmp_path / "dask.csv"
    run_sweep(grid, out_local, workers=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        s = run_sweep(grid, out_dask, scheduler=cluster.scheduler_address)
        assert "run_point" in cluster.scheduler.task_prefixes    # the points ran on Dask
    assert (s["ran"], s["failed"]) == (4, 0)
    skip = {"wall_s"}
    local = {r["key"]: {k: v for k, v in r.items() if k not in skip} for r in rows(out_local)}
    dask = {r["key"]: {k: v for k, v in r.items() if k not in skip} for r in rows(out_dask)}
    assert dask == local


def test_nan_scale_is_refused(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text('scenarios = ["one-block-dimms"]\nscale = [nan]\n')
    with pytest.raises(ConfigError, match="scale: expected a finite number > 0"):
        load_grid(p)


def test_second_sweep_on_one_out_is_refused(grid, tmp_path):
    # a sweep holds OUT.lock for its whole run; a second one on the same --out would read
    # the same resume state and write every point again
    import fcntl
    out = tmp_path / "r.csv"
    with open(tmp_path / "r.csv.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)       # as a running sweep does
        with pytest.raises(ConfigError, match="another sweep is writing it"):
            run_sweep(grid, out, workers=1)
    assert not out.exists()
    assert run_sweep(grid, out, workers=1)["ran"] == 4        # free again: it runs
