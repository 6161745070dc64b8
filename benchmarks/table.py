"""Markdown tables from a pytest-benchmark JSON file of bench_hotplug.py / bench_kernels.py /
bench_scans.py.

    python benchmarks/table.py out/bench.json
"""
import json
import sys


def _fmt(x, digits=3):
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _scan_row(i):
    """bench_scans.py: M pages/s and the ratios to the same-run read loops (one thread
    against the one-thread read, two against the two-thread read)."""
    m = 1e6
    size = f"{i['pages'] * 4096 / 2**30:.0f}G" if i["pages"] * 4096 < 2**40 else \
        f"{i['pages'] * 4096 / 2**40:g}T"
    read1, read2 = i["read_loop_pages_per_s"], i.get("read_loop2_pages_per_s")
    if "cython_1t_pages_per_s" in i and i.get("threads", 1) > 1:     # two-thread scans
        one, two = i["cython_1t_pages_per_s"], i["cython_pages_per_s"]
        tail = (f"{one / m:.0f} | {one / read1:.2f} | {two / m:.0f} | "
                f"{two / read2:.2f} | {two / one:.2f} |")
    else:                                       # one thread (or below 2^20 pages)
        one = i.get("cython_1t_pages_per_s", i["cython_pages_per_s"])
        tail = f"{one / m:.0f} | {one / read1:.2f} | - | | |"
    head = f"| {i['scan']} | {size} | {read1 / m:.0f} | {read2 / m:.0f} | "
    if "simd" not in i:
        return head + f"{i['numba_pages_per_s'] / m:.0f} | " + tail
    # the compaction scanners: a row per build of their block view, best first
    rows = [head.replace(i["scan"], f"{i['scan']} ({i['simd']})", 1)
            + f"{i['numba_pages_per_s'] / m:.0f} | " + tail]
    for level in ("sse2", "scalar"):
        rate = i.get(f"cython_{level}_pages_per_s")
        if rate:
            rows.append(head.replace(i["scan"], f"{i['scan']} ({level})", 1)
                        + f" | {rate / m:.0f} | {rate / read1:.2f} | - | | |")
    return "\n".join(rows)


#: (rows key, column heads, alignment per column: l or r)
_TABLES = [
    ("add_online", ("size", "strategy", "backend", "memmap", "wall ms", "M pages/s", "GiB sim/s",
                    "2-thread fill ms", "wall / fill2", "cpu/wall", "host B/page",
                    "peak RSS MiB"), "llllrrrrrrrr"),
    ("add_remove", ("size", "strategy", "add ms", "remove ms", "µs per block (add+remove)"),
     "llrrr"),
    ("kernel", ("kernel", "size", "backend", "threads", "ms", "GB/s written", "/ fill1",
                "/ fill2", "cpu/wall", "speedup 2 vs 1"), "lllrrrrrrr"),
    ("scan", ("kernel", "size", "read 1t", "read 2t", "numba (1t)", "Cython 1t", "/ read 1t",
              "Cython 2t", "/ read 2t", "2 vs 1"), "llrrrrrrrr"),
]


def main(path):
    data = json.load(open(path))
    rows = {"add_online": [], "add_remove": [], "kernel": [], "scan": []}
    for b in data["benchmarks"]:
        i, name = b["extra_info"], b["name"]
        if name.startswith("test_add_online"):
            rows["add_online"].append(
                f"| {i['size']} | {i['strategy']} | {i['backend']} | {i['memmap']} | {i['wall_s'] * 1e3:.1f} | "
                f"{i['pages_per_s'] / 1e6:.0f} | {i['gib_per_s']:.0f} | {i['fill2_s'] * 1e3:.2f} | "
                f"{i['vs_fill2']:.2f} | {i['cpu_per_wall']:.2f} | {i['host_bytes_per_page']:.1f} | "
                f"{i['peak_rss_mib']:.0f} |")
        elif name.startswith("test_add_remove"):
            rows["add_remove"].append(
                f"| {i['size']} | {i['strategy']} | {i['add_s'] * 1e3:.1f} | "
                f"{i['remove_s'] * 1e3:.1f} | {i['us_per_block']:.2f} |")
        elif "scan" in i:
            rows["scan"].append(_scan_row(i))
        elif "kernel" in i:
            rows["kernel"].append(
                f"| {i['kernel']} | {i['size']} | {i['backend']} | {i['threads']} | "
                f"{i['wall_s'] * 1e3:.1f} | {i['write_gb_per_s']:.1f} | {i['vs_fill1']:.2f} | "
                f"{i['vs_fill2']:.2f} | {i['cpu_per_wall']:.2f} | "
                f"{_fmt(i.get('speedup_vs_1_thread', ''))} |")
    for key, head, align in _TABLES:
        if rows[key]:
            print("| " + " | ".join(head) + " |")
            print("|" + "|".join("---:" if c == "r" else "---" for c in align) + "|")
            print("\n".join(rows[key]))
            print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/bench.json")
