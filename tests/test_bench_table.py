"""benchmarks/table.py: every kind of benchmark row becomes a table, and --write replaces
only the README's marked blocks. No timing is judged here: the rows are made up."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "benchmarks" / "table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LOAD = {"other_cpu": 0.5, "loadavg": 1.5}
ROWS = [
    ("test_add_online[1T-block-cython-fresh]",
     dict(size="1T", strategy="block", backend="cython", memmap="fresh", wall_s=0.5,
          pages_per_s=5e8, gib_per_s=2000.0, fill2_s=0.2, vs_fill2=2.5, cpu_per_wall=1.8,
          host_bytes_per_page=16.0, peak_rss_mib=4300.0)),
    ("test_add_remove[1T-block]",
     dict(size="1T", strategy="block", add_s=0.015, remove_s=0.007, us_per_block=2.7)),
    ("test_kernel[online_memory_blocks-64G-cython-2]",
     dict(kernel="online_memory_blocks", size="64G", backend="cython", threads=2,
          wall_s=0.01, write_gb_per_s=25.0, vs_fill1=1.0, vs_fill2=1.2, cpu_per_wall=1.9,
          speedup_vs_1_thread=1.6)),
    ("test_has_unmovable_pages[64G]",
     dict(scan="has_unmovable_pages", pages=1 << 24, threads=2, read_loop_pages_per_s=2e9,
          read_loop2_pages_per_s=3.5e9, numba_pages_per_s=2.6e8, cython_pages_per_s=3.4e9,
          cython_1t_pages_per_s=1.9e9)),
    ("test_free_scanner[64G]",
     dict(scan="isolate_freepages_block", pages=1 << 24, simd="avx512",
          read_loop_pages_per_s=2e9, numba_pages_per_s=2.7e8, cython_pages_per_s=1.2e9,
          cython_sse2_pages_per_s=8e8, touch_pages_per_s=1.8e9)),
    ("test_compact_zone[1G]",
     dict(size="1G", pages=262144, migrated_pages=60000, cython_s=0.0026,
          cython_pages_per_s=1e8, cython_migrated_per_s=2.3e7, numpy_s=0.6,
          numba_s=0.23, cython_vs_numpy=230.0, cython_vs_numba=88.0, peak_rss_mib=300.0)),
    ("test_lifecycle[64G]",
     dict(size="64G", offline_blocks=256, **{f"{p}_{k}": v for p in
          ("add_online", "workload", "compact", "offline", "remove")
          for k, v in (("s", 0.5), ("pages_per_s", 1e7), ("cpu_per_wall", 1.0),
                       ("peak_rss_mib", 340.0))})),
]


@pytest.fixture
def run_json(tmp_path):
    data = {"datetime": "2026-12-07T03:00:00+00:00", "commit_info": {"id": "0123456789ab"},
            "benchmarks": [{"name": n, "extra_info": dict(i, **LOAD)} for n, i in ROWS]}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    return path


def test_every_kind_of_row_has_its_table(table, run_json):
    rows = table.collect([str(run_json)])
    assert {k for k, v in rows.items() if v} == set(table.TABLES)
    assert rows["compaction_scan"][1][0] == "isolate_freepages_block (sse2)"
    assert len(rows["lifecycle"]) == 5
    assert rows["run"] == [["run.json", "2026-12-07 03:00", "0123456", 7, "0.50", "0.50",
                            "1.5-1.5"]]
    for name, r in rows.items():
        md = table.markdown(name, r).splitlines()
        width = len(table.TABLES[name][0])
        assert all(line.count("|") == width + 1 for line in md), name


def test_write_replaces_only_the_marked_blocks(table, run_json, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table.py: kernel -->\nold\n<!-- /table.py -->\nmiddle\n"
                      "<!-- table.py: lifecycle -->\n<!-- /table.py -->\nend\n")
    table.main([str(run_json), "--write", str(readme)])
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| online_memory_blocks | 64G | cython | 2 |" in text
    assert "| 64G | written | compact_zone(movable, order -1) |" in text
    again = text
    table.main([str(run_json), "--write", str(readme)])
    assert readme.read_text() == again                      # regenerating changes nothing


def test_readme_blocks_name_known_tables(table):
    text = (ROOT / "benchmarks" / "README.md").read_text()
    names = re.findall(r"<!-- table\.py: (\w+) -->", text)
    assert names and set(names) <= set(table.TABLES)
    assert text.count("<!-- /table.py -->") == len(names)


def test_readme_tables_are_those_of_the_committed_run(table):
    """The README's tables are what table.py makes of the newest benchmarks/results/<date>/
    (so they are regenerated, not edited by hand)."""
    runs = sorted(p for p in (ROOT / "benchmarks" / "results").iterdir() if p.is_dir())
    rows = table.collect(sorted(str(p) for p in runs[-1].glob("*.json")))
    text = (ROOT / "benchmarks" / "README.md").read_text()
    for m in table.BLOCK.finditer(text):
        name = m.group(2)
        assert rows[name], f"README block {name}: no such rows in {runs[-1].name}"
        assert m.group(3) == table.markdown(name, rows[name]) + "\n", name
