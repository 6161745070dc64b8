"""The lifecycle runs of a results directory as one figure: per phase, the wall time and
the peak host memory (benchutil.HostMemory), one bar per run (size, memmap written or
images).

    python benchmarks/plot_lifecycle.py benchmarks/results/2026-12-08 out.png
"""
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PHASES = ("add_online", "workload", "compact", "offline", "remove")


def runs(directory):
    out = []
    for path in sorted(pathlib.Path(directory).glob("lifecycle*.json")):
        for b in json.loads(path.read_text())["benchmarks"]:
            i = b["extra_info"]
            if "workload_host_mib" in i:
                out.append((f"{i['size']} {'images' if i['memmap_images'] else 'written'}"
                            f" (offline {i['offline_blocks']} blocks)", i))
    return sorted(out, key=lambda r: (_bytes(r[1]["size"]), r[0]))


def _bytes(label):
    return float(label[:-1]) * 1024 ** "KMGT".index(label[-1])


def main(argv):
    directory, png = argv
    rs = runs(directory)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.5))
    w = 0.8 / len(rs)
    for k, (label, i) in enumerate(rs):
        xs = [p + k * w for p in range(len(PHASES))]
        ax_t.bar(xs, [i[f"{p}_s"] for p in PHASES], w, label=label)
        ax_m.bar(xs, [i[f"{p}_host_mib"] / 1024 for p in PHASES], w, label=label)
    for ax, title in ((ax_t, "wall time per phase (s)"),
                      (ax_m, "peak host memory during the phase (GiB)")):
        ax.set_xticks([p + 0.4 - w / 2 for p in range(len(PHASES))], PHASES)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    ax_m.axhline(24, color="k", lw=0.8, ls="--")
    ax_m.text(-0.3, 24.3, "host: 24 GiB", fontsize=8)
    ax_t.legend(fontsize=8)
    fig.suptitle("bench_lifecycle.py: memmap written vs images (pagecore/host_memmap.py)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1:])
