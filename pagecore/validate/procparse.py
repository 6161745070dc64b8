"""Parsers for the kernel's text views, as a real kernel prints them.

Each returns plain dicts of ints, keyed by the names the kernel prints, so recorded
runs, `pagecore calibrate` and `pagecore validate` read a real machine and a pagecore
machine through the same keys:

    meminfo(text)    {"MemTotal": kB, ...}                        fs/proc/meminfo.c
    zoneinfo(text)   {"Node 0 DMA32": {"free": pages, "min": ..., "protection": [...],
                      "pcp_count": pages summed over CPUs, "pcp_high": ...,
                      "pcp_batch": ..., "stat_threshold": ...}}      mm/vmstat.c
    vmstat(text)     {"nr_free_pages": pages, ...}                   mm/vmstat.c
    buddyinfo(text)  {"Node 0 DMA32": [count per order]}             mm/vmstat.c
    iomem(text)      [(start, end_exclusive)] of "System RAM"        kernel/resource.c
"""
from __future__ import annotations

import re

ZONE_FIELDS = ("free", "boost", "min", "low", "high", "promo", "spanned", "present",
               "managed", "cma")


def meminfo(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"(\S+):\s+(\d+)", line)
        if m:
            out[m[1]] = int(m[2])
    return out


def vmstat(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if v.strip().lstrip("-").isdigit():
            out[k] = int(v)
    return out


def zoneinfo(text):
    """Per zone: the "pages" block (free, min, low, high, promo, spanned, present,
    managed, cma), protection (lowmem_reserve), the zone's stat items (nr_free_pages,
    nr_zone_*, ...), start_pfn, and from the pagesets: pcp_count, the pages on the zone's
    per-cpu lists ("count", summed over CPUs), which the buddy does not count as free;
    pcp_cpus, the CPUs listed; pcp_high, pcp_batch and stat_threshold of the first CPU
    (batch and the threshold are the same on every CPU).
    The per-node stats printed in a node's first zone go to that zone's "node" dict."""
    zones, cur, part = {}, None, None
    for line in text.splitlines():
        m = re.match(r"Node (\d+), zone\s+(\S+)", line)
        if m:
            cur = zones.setdefault(f"Node {m[1]} {m[2]}", {"pcp_count": 0})
            part = "zone"
            continue
        if cur is None:
            continue
        s = line.strip()
        if s == "per-node stats":
            part = "node"
            cur["node"] = {}
            continue
        if s == "pagesets":
            part = "pcp"
            continue
        m = re.match(r"pages free\s+(\d+)", s)
        if m:
            cur["free"], part = int(m[1]), "pages"
            continue
        m = re.match(r"protection: \((.*)\)", s)
        if m:
            cur["protection"], part = [int(x) for x in m[1].split(",")], "zone"
            continue
        m = re.match(r"vm stats threshold:\s+(-?\d+)$", s)
        if m:
            cur.setdefault("stat_threshold", int(m[1]))     # the first CPU's
            continue
        m = re.match(r"([\w]+):?\s+(-?\d+)$", s)
        if not m:
            continue
        key, val = m[1], int(m[2])
        if part == "pcp" and key in ("start_pfn", "node_unreclaimable"):
            cur[key] = val
        elif part == "pcp":
            if key == "cpu":
                cur["pcp_cpus"] = cur.get("pcp_cpus", 0) + 1
            elif key == "count":
                cur["pcp_count"] += val
            elif key in ("high", "batch"):
                cur.setdefault(f"pcp_{key}", val)               # the first CPU's
        elif part == "node":
            cur["node"][key] = val
        elif part == "pages" and key not in ZONE_FIELDS:
            part = "zone"
            cur[key] = val
        else:
            cur[key] = val
    return zones


def buddyinfo(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"Node (\d+), zone\s+(\S+)\s+(.*)", line)
        if m:
            out[f"Node {m[1]} {m[2]}"] = [int(x) for x in m[3].split()]
    return out


def iomem(text):
    """Top-level "System RAM" ranges of /proc/iomem as [start, end) byte pairs (the
    e820 usable map as the kernel registered it; read as root, or the addresses are 0)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) : System RAM", line)
        if m:
            out.append((int(m[1], 16), int(m[2], 16) + 1))
    return out


def blocks(text):
    """The harness's block listing ("id phys_index state valid_zones...") as
    {id: {"state": ..., "valid_zones": [...]}}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            out[int(parts[0])] = {"phys_index": int(parts[1], 16), "state": parts[2],
                                  "valid_zones": parts[3:]}
    return out
