"""Markdown tables from the pytest-benchmark JSON files of one benchmark run.

    python benchmarks/table.py out/*.json                           # print every table
    python benchmarks/table.py out/*.json --write benchmarks/README.md

Reads the files of bench_hotplug.py, bench_kernels.py, bench_scans.py,
bench_compaction.py and bench_lifecycle.py (any subset, any number of files; rows come in
file order, then in the order the benchmarks ran) and makes one table per kind of row
the files hold, plus a table of the run itself (date, commit, host, load). With
`--write README`, each table replaces the block of the README between the lines
`<!-- table.py: NAME -->` and `<!-- /table.py -->` (NAME: one of TABLES); blocks whose
table the files do not hold are left as they are, and nothing else in the file changes.
"""
import argparse
import json
import re
import statistics
import sys

M = 1e6

#: rows key -> (column heads, alignment per column: l or r)
TABLES = {
    "run": (("file", "date (UTC)", "commit", "benchmarks", "other CPU median", "other CPU max",
             "load avg"), "lllrrrr"),
    "add_online": (("size", "strategy", "backend", "memmap", "wall ms", "M pages/s",
                    "GiB sim/s", "2-thread fill ms", "wall / fill2", "cpu/wall",
                    "host B/page", "peak RSS MiB"), "llllrrrrrrrr"),
    "add_remove": (("size", "strategy", "add ms", "remove ms", "µs per block (add+remove)"),
                   "llrrr"),
    "kernel": (("kernel", "size", "backend", "threads", "ms", "GB/s written", "/ fill1",
                "/ fill2", "cpu/wall", "speedup 2 vs 1"), "lllrrrrrrr"),
    "isolation_scan": (("kernel", "size", "read 1t", "read 2t", "numba (1t)", "Cython 1t",
                        "/ read 1t", "Cython 2t", "/ read 2t", "2 vs 1"), "llrrrrrrrr"),
    "compaction_scan": (("kernel (view build)", "size", "read 1t", "numba (1t)", "Cython 1t",
                         "/ read 1t", "write ceiling", "/ write ceiling"), "llrrrrrr"),
    "compaction": (("size", "zone M pages", "migrated M pages", "Cython ms", "M zone pages/s",
                    "M migrated/s", "numpy ms", "numba ms", "Cython vs numpy",
                    "Cython vs numba", "peak RSS MiB"), "lrrrrrrrrrr"),
    "lifecycle": (("size", "memmap", "phase", "s", "M pages/s", "cpu/wall", "peak RSS MiB",
                   "host MiB", "host B/page"), "lllrrrrrr"),
}

ISOLATION_SCANS = ("has_unmovable_pages", "scan_movable_pages", "test_pages_isolated",
                   "pfn_range_valid_contig")
LIFECYCLE_PHASES = (
    ("add_online", "add_memory + online_movable"),
    ("workload", "Workload(fill {fill:g}, orders {{0: 0.9, 9: 0.1}})"),
    ("compact", "compact_zone(movable, order -1)"),
    ("offline", "offline_memory_block() of {blocks} blocks"),
    ("remove", "remove_memory() of those {blocks} blocks"),
)


def _fmt(x, digits=3):
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _rate(x):
    return f"{x / M:.0f}" if x else ""


def _size(pages):
    b = pages * 4096
    return f"{b / 2**30:.0f}G" if b < 2**40 else f"{b / 2**40:g}T"


def _add_online(i):
    return [i["size"], i["strategy"], i["backend"], i["memmap"], f"{i['wall_s'] * 1e3:.1f}",
            f"{i['pages_per_s'] / M:.0f}", f"{i['gib_per_s']:.0f}", f"{i['fill2_s'] * 1e3:.2f}",
            f"{i['vs_fill2']:.2f}", f"{i['cpu_per_wall']:.2f}",
            f"{i['host_bytes_per_page']:.1f}", f"{i['peak_rss_mib']:.0f}"]


def _add_remove(i):
    return [i["size"], i["strategy"], f"{i['add_s'] * 1e3:.1f}", f"{i['remove_s'] * 1e3:.1f}",
            f"{i['us_per_block']:.2f}"]


def _kernel(i):
    return [i["kernel"], i["size"], i["backend"], i["threads"], f"{i['wall_s'] * 1e3:.1f}",
            f"{i['write_gb_per_s']:.1f}", f"{i['vs_fill1']:.2f}", f"{i['vs_fill2']:.2f}",
            f"{i['cpu_per_wall']:.2f}", _fmt(i.get("speedup_vs_1_thread", ""))]


def _isolation_scan(i):
    """The isolation scans and pfn_range_valid_contig: one thread against the one-thread
    read loop, the default call (two threads from 2^20 pages) against the two-thread read
    loop, both measured in the same run."""
    read1, read2 = i["read_loop_pages_per_s"], i.get("read_loop2_pages_per_s")
    row = [i["scan"], _size(i["pages"]), _rate(read1), _rate(read2),
           _rate(i.get("numba_pages_per_s"))]
    one = i.get("cython_1t_pages_per_s", i["cython_pages_per_s"])
    row += [_rate(one), f"{one / read1:.2f}"]
    if "cython_1t_pages_per_s" in i and i.get("threads", 1) > 1:
        two = i["cython_pages_per_s"]
        row += [_rate(two), f"{two / read2:.2f}", f"{two / one:.2f}"]
    else:
        row += ["-", "", ""]
    return row


def _compaction_scan(i):
    """The compaction scanners (one thread): a row per build of their block view, the
    build the CPU runs by default first; the write ceiling (the page-array pass plus the
    fill of the outputs the scanner wrote) is that of the default build's run."""
    read1 = i["read_loop_pages_per_s"]
    touch = i.get("touch_pages_per_s")
    rate = i["cython_pages_per_s"]
    rows = [[f"{i['scan']} ({i.get('simd', '?')})", _size(i["pages"]), _rate(read1),
             _rate(i.get("numba_pages_per_s")), _rate(rate), f"{rate / read1:.2f}",
             _rate(touch), f"{rate / touch:.2f}" if touch else ""]]
    for level in ("avx512", "sse2", "scalar"):
        other = i.get(f"cython_{level}_pages_per_s")
        if other and level != i.get("simd"):
            rows.append([f"{i['scan']} ({level})", _size(i["pages"]), _rate(read1), "",
                         _rate(other), f"{other / read1:.2f}", "", ""])
    return rows


def _compaction(i):
    row = [i["size"], f"{i['pages'] / M:.1f}", f"{i['migrated_pages'] / M:.2f}",
           f"{i['cython_s'] * 1e3:.1f}", _rate(i["cython_pages_per_s"]),
           f"{i['cython_migrated_per_s'] / M:.1f}"]
    row += [f"{i[f'{t}_s'] * 1e3:.0f}" if f"{t}_s" in i else "-" for t in ("numpy", "numba")]
    row += [f"{i[f'cython_vs_{t}']:.0f}x" if f"cython_vs_{t}" in i else "-"
            for t in ("numpy", "numba")]
    return row + [f"{i['peak_rss_mib']:.0f}"]


def _lifecycle(i):
    # memmap: "images" when blocks were onlined from a shared image (pagecore/
    # host_memmap.py), "written" when every struct page was (runs before it: written)
    rows = []
    memmap = "images" if i.get("memmap_images") else "written"
    for key, label in LIFECYCLE_PHASES:
        if f"{key}_s" not in i:
            continue
        label = label.format(blocks=i.get("offline_blocks", "?"), fill=i.get("fill", 0.5))
        host = i.get(f"{key}_host_mib")
        rows.append([i["size"], memmap, label, f"{i[f'{key}_s']:.3f}",
                     f"{i[f'{key}_pages_per_s'] / M:.1f}", f"{i[f'{key}_cpu_per_wall']:.2f}",
                     f"{i[f'{key}_peak_rss_mib']:.0f}",
                     "-" if host is None else f"{host:.0f}",
                     "-" if host is None else f"{i[f'{key}_host_b_per_page']:.2f}"])
    return rows


def _run_row(path, data):
    infos = [b["extra_info"] for b in data["benchmarks"]]
    other = [i["other_cpu"] for i in infos if "other_cpu" in i]
    load = [i["loadavg"] for i in infos if "loadavg" in i]
    commit = data.get("commit_info", {})
    cid = commit.get("id", "")[:7] + (" (dirty)" if commit.get("dirty") else "")
    return [path.rsplit("/", 1)[-1], data.get("datetime", "")[:16].replace("T", " "), cid,
            len(infos), f"{statistics.median(other):.2f}" if other else "?",
            f"{max(other):.2f}" if other else "?",
            f"{min(load):.1f}-{max(load):.1f}" if load else "?"]


def collect(paths):
    """{table name: [row, ...]} from the JSON files."""
    rows = {k: [] for k in TABLES}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        if data["benchmarks"]:
            rows["run"].append(_run_row(path, data))
        for b in data["benchmarks"]:
            i, name = b["extra_info"], b["name"]
            if name.startswith("test_add_online"):
                rows["add_online"].append(_add_online(i))
            elif name.startswith("test_add_remove"):
                rows["add_remove"].append(_add_remove(i))
            elif name.startswith("test_lifecycle"):
                rows["lifecycle"] += _lifecycle(i)
            elif name.startswith("test_compact_zone"):
                rows["compaction"].append(_compaction(i))
            elif "scan" in i and i["scan"] in ISOLATION_SCANS:
                rows["isolation_scan"].append(_isolation_scan(i))
            elif "scan" in i:
                rows["compaction_scan"] += _compaction_scan(i)
            elif "kernel" in i:
                rows["kernel"].append(_kernel(i))
    return rows


def markdown(name, rows):
    head, align = TABLES[name]
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if c == "r" else "---" for c in align) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


BLOCK = re.compile(r"(<!-- table\.py: (\w+) -->\n)(.*?)(<!-- /table\.py -->)", re.S)


def write(readme, rows):
    """Replace the README's generated blocks; returns the names of those replaced."""
    with open(readme) as f:
        text = f.read()
    done = []

    def sub(m):
        name = m.group(2)
        if name not in TABLES:
            raise SystemExit(f"{readme}: no table named {name!r} (known: {', '.join(TABLES)})")
        if not rows[name]:
            return m.group(0)
        done.append(name)
        return m.group(1) + markdown(name, rows[name]) + "\n" + m.group(4)

    text = BLOCK.sub(sub, text)
    with open(readme, "w") as f:
        f.write(text)
    return done


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+", help="pytest-benchmark JSON files of one run")
    ap.add_argument("--write", metavar="README",
                    help="replace the generated blocks of this file instead of printing")
    args = ap.parse_args(argv)
    rows = collect(args.json)
    if args.write:
        done = write(args.write, rows)
        print(f"{args.write}: {', '.join(done) or 'no block'} regenerated", file=sys.stderr)
        return
    for name in TABLES:
        if rows[name]:
            print(f"<!-- table.py: {name} -->")
            print(markdown(name, rows[name]))
            print("<!-- /table.py -->\n")


if __name__ == "__main__":
    main()
