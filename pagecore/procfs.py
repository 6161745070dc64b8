"""The kernel's text views of a Machine: /proc/meminfo, zoneinfo, buddyinfo, pagetypeinfo,
vmstat, and util-linux `lsmem`.

Every view has a text form (`meminfo(m)`, ...) laid out as the kernel prints it, and a
JSON-able form (`meminfo_dict(m)`, ...). `VIEWS` maps a view name to both.

What is modelled, and what is not:

* meminfo (fs/proc/meminfo.c, show_val_kb(): label padded to 16 columns, value "%8lu",
  " kB"). The fields of MEMINFO_FIELDS are printed, in the kernel's order; the others
  (MEMINFO_NOT_MODELLED: swap, LRU activity, dirty/writeback, vmalloc, per-cpu,
  hugetlb pools, direct map) are named on a last line as not modelled. Allocations say
  what they are (machine.KINDS, by accounting flags on their pages), and each kind
  counts where the kernel counts it: anonymous pages in AnonPages, page cache in
  Cached, slab in SReclaimable or SUnreclaim (Slab and KReclaimable are their sums as
  in meminfo_proc_show()), other kernel pages only in MemFree; the numbers come from
  pagecore/mm/show_mem.py. MemAvailable is si_mem_available() (mm/show_mem.c):
  ``NR_FREE_PAGES - totalreserve_pages``, plus the page cache less
  ``min(pagecache / 2, Σ low wmark)``, plus reclaimable slab less
  ``min(reclaimable / 2, Σ low wmark)``; anonymous memory is never available (no swap).
  totalreserve_pages is calculate_totalreserve_pages() (per zone: the largest
  lowmem_reserve plus the high watermark, capped at managed).
* zoneinfo (mm/vmstat.c zoneinfo_show_print(), v6.x): every zone of every node, with
  pages free/boost/min/low/high/promo/spanned/present/managed/cma, protection
  (lowmem_reserve, 4 zones: pagecore has no ZONE_DEVICE), nr_free_pages as the only zone
  stat item, the pagesets block (per online CPU: count, the pages on the lists of the
  CPU pagecore runs on and 0 on the others, high and batch from mm/page_alloc.c's rules,
  the vmstat threshold), node_unreclaimable and start_pfn. The per-node stats block and the other
  zone stat items are not printed (not modelled). `promo`
  (WMARK_PROMO = high + the watermark step) is not printed by v6.1's
  zoneinfo_show_print() and is by v6.12's (both sources, and the recorded guests);
  pagecore prints it from v6.2, the first release after 6.1 that can have it.
* buddyinfo / pagetypeinfo: pagecore.fragmentation's formatters over zone records made
  from the zones' free areas and the pageblock flags, counting pageblocks as
  pagetypeinfo_showblockcount_print() does (online first page, same zone; an isolated
  pageblock counts as Isolate, the v6.16 standalone-bit reading).
* vmstat: nr_free_pages, and from v6.11 nr_memmap_pages and nr_memmap_boot_pages, in
  vmstat_text order.
* lsmem: the util-linux table with RANGE, SIZE, STATE, REMOVABLE, BLOCK, NODE, ZONES
  and the three totals, over the ranges pagecore.sysfs.block_table() computes with
  lsmem's merge rules (REMOVABLE: "1" for every block since v5.7, the
  is_mem_section_removable() heuristic before; empty for ranges that are not online).
"""
from __future__ import annotations

import textwrap

import numpy as np

from pagecore.kernels import page as P
from pagecore.fragmentation import (MIGRATETYPE_NAMES, ZoneFreeInfo, format_buddyinfo,
                                    format_pagetypeinfo, zone_nr_free)
from pagecore.mm.mmzone import SECTION_IS_ONLINE, num_online_cpus
from pagecore.mm import page_alloc, show_mem
from pagecore.mm.show_mem import MEMINFO_FIELDS, lru_pages, page_kinds, totalreserve_pages

__all__ = ["meminfo", "meminfo_dict", "page_kinds", "MEMINFO_FIELDS", "MEMINFO_NOT_MODELLED",
           "zoneinfo", "zoneinfo_dict", "buddyinfo",
           "buddyinfo_dict", "pagetypeinfo", "pagetypeinfo_dict", "vmstat", "vmstat_dict",
           "lsmem", "lsmem_dict", "zone_records", "VIEWS", "human_size", "lru_pages",
           "totalreserve_pages"]



# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def human_size(nbytes):
    """Short binary size for report tables: "128M", "1.5G", "0B" (one decimal, rounded)."""
    if nbytes < 1024:
        return f"{nbytes}B"
    units = "KMGTPE"
    exp = 0
    while exp < len(units) - 1 and nbytes >= 1024 ** (exp + 2):
        exp += 1
    div = 1024 ** (exp + 1)
    whole, frac = divmod(nbytes, div)
    tenth = (frac * 10 + div // 2) // div      # rounded to one decimal
    if tenth == 10:
        whole, tenth = whole + 1, 0
    return f"{whole}.{tenth}{units[exp]}" if tenth else f"{whole}{units[exp]}"


def _kb(m, pages):
    return pages << (m.arch.page_shift - 10)


# ---------------------------------------------------------------------------------------
# /proc/meminfo
# ---------------------------------------------------------------------------------------
#: The fields the kernel prints (v6.12, x86_64) that pagecore does not model.
MEMINFO_NOT_MODELLED = (
    "Buffers", "SwapCached", "Active", "Inactive", "Active(anon)", "Inactive(anon)",
    "Active(file)", "Inactive(file)", "Unevictable", "Mlocked", "SwapTotal", "SwapFree",
    "Zswap", "Zswapped", "Dirty", "Writeback", "Mapped", "Shmem", "KernelStack",
    "PageTables", "SecPageTables", "NFS_Unstable", "Bounce", "WritebackTmp", "CommitLimit",
    "Committed_AS", "VmallocTotal", "VmallocUsed", "VmallocChunk", "Percpu",
    "HardwareCorrupted", "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped",
    "FileHugePages", "FilePmdMapped", "CmaTotal", "CmaFree", "Unaccepted",
    "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "Hugepagesize",
    "Hugetlb", "DirectMap4k", "DirectMap2M", "DirectMap1G")


def meminfo_dict(m, pagecache_pages=None, reclaimable_pages=None):
    """The MEMINFO_FIELDS in kB: pagecore/mm/show_mem.py's meminfo() (si_meminfo(),
    si_mem_available()); `pagecache_pages` / `reclaimable_pages` override the page-cache
    and reclaimable-slab counts."""
    return show_mem.meminfo(m, pagecache_pages, reclaimable_pages)


def meminfo(m, pagecache_pages=None):
    """Text of /proc/meminfo: the modelled lines as the kernel prints them, then one line
    naming the fields that are not modelled."""
    lines = "".join(f"{k + ':':<16}{v:>8} kB\n"
                    for k, v in meminfo_dict(m, pagecache_pages).items())
    rest = textwrap.wrap("not modelled: " + ", ".join(MEMINFO_NOT_MODELLED), 88)
    return lines + "".join(f"# {x}\n" for x in rest)


# ---------------------------------------------------------------------------------------
# /proc/zoneinfo
# ---------------------------------------------------------------------------------------
def online_nodes(m):
    """for_each_online_pgdat(): nodes with CPUs, memory, or hot-added memory blocks."""
    present = set(m.blocks["nid"][m.blocks["state"] != 0].tolist())
    return [n for n in m.nodes if n.cpus or n.has_memory or n.nid in present]


def zoneinfo_dict(m):
    out = []
    for node in online_nodes(m):
        for z in node.zones:
            wmin, low, high = z.watermark
            out.append({
                "node": node.nid, "zone": z.name, "populated": z.present_pages > 0,
                "free": int(z.free_pages), "boost": 0, "min": wmin, "low": low, "high": high,
                "promo": high + (high - low), "spanned": z.spanned_pages,
                "present": z.present_pages, "managed": z.managed_pages, "cma": 0,
                "protection": [int(x) for x in z.lowmem_reserve],
                "nr_free_pages": int(z.free_pages), "pagesets": pagesets(m, z),
                "node_unreclaimable": 0, "start_pfn": z.zone_start_pfn,
            })
    return out


def pagesets(m, zone):
    """The pagesets block of a populated zone, one row per online CPU (CPU ids in node
    order): count (pages on the lists of the CPU pagecore runs on, page_alloc.RUNNING_CPU;
    0 on the others), high (page_alloc.pcp_high()), batch, and the zone's vmstat
    threshold."""
    if not zone.populated:
        return []
    pcp = zone.per_cpu_pageset
    high = page_alloc.pcp_high(m, zone)
    count = zone.free_area.pcp_count
    return [{"cpu": cpu, "count": count if cpu == page_alloc.RUNNING_CPU else 0, "high": high,
             "batch": pcp.batch, "stat_threshold": zone.stat_threshold}
            for cpu in range(num_online_cpus(m))]


def zoneinfo(m):
    """Text of /proc/zoneinfo (zoneinfo_show_print(), modelled lines only)."""
    promo = m.kernel >= (6, 2)
    out = []
    for r in zoneinfo_dict(m):
        out.append("Node %d, zone %8s" % (r["node"], r["zone"]))
        out.append("\n  pages free     %d" % r["free"])
        out.append("\n        boost    %d" % r["boost"])
        out.append("\n        min      %d" % r["min"])
        out.append("\n        low      %d" % r["low"])
        out.append("\n        high     %d" % r["high"])
        if promo:
            out.append("\n        promo    %d" % r["promo"])
        out.append("\n        spanned  %d" % r["spanned"])
        out.append("\n        present  %d" % r["present"])
        out.append("\n        managed  %d" % r["managed"])
        out.append("\n        cma      %d" % r["cma"])
        out.append("\n        protection: (" + ", ".join(str(x) for x in r["protection"]) + ")")
        if not r["populated"]:
            out.append("\n")
            continue
        out.append("\n      %-12s %d" % ("nr_free_pages", r["nr_free_pages"]))
        out.append("\n  pagesets")
        for c in r["pagesets"]:
            out.append("\n    cpu: %d" % c["cpu"])
            out.append("\n              count: %d" % c["count"])
            out.append("\n              high:  %d" % c["high"])
            out.append("\n              batch: %d" % c["batch"])
            out.append("\n  vm stats threshold: %d" % c["stat_threshold"])
        out.append("\n  node_unreclaimable:  %d" % r["node_unreclaimable"])
        out.append("\n  start_pfn:           %d" % r["start_pfn"])
        out.append("\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------
# /proc/buddyinfo and /proc/pagetypeinfo
# ---------------------------------------------------------------------------------------
def pageblock_counts(m, zone):
    """Pageblocks per migratetype in `zone`: pagetypeinfo_showblockcount_print() walks
    the zone span in pageblock steps, skips pfns without an online page and pages of
    another zone, and counts get_pageblock_migratetype()."""
    m.own_zone(zone, "pageblock_counts: zone")
    counts = np.zeros(len(MIGRATETYPE_NAMES), dtype=np.int64)
    if not zone.spanned_pages:
        return counts
    a = m.arch
    pbo = a.pageblock_order
    first = zone.zone_start_pfn >> pbo
    last = -(-zone.zone_end_pfn >> pbo)
    want = (zone.nid << P.NODES_PGSHIFT) | (zone.zid << P.ZONES_PGSHIFT)
    mask = (P.NODES_MASK << P.NODES_PGSHIFT) | (P.ZONES_MASK << P.ZONES_PGSHIFT)
    step = 1 << 20                  # pageblocks per numpy pass
    for b0 in range(first, last, step):
        pbs = np.arange(b0, min(b0 + step, last), dtype=np.int64)
        pfns = pbs << pbo
        online = (m.sections[pfns // a.pages_per_section] & SECTION_IS_ONLINE) > 0
        pbs, pfns = pbs[online], pfns[online]
        mine = (m.mem_map["flags"][pfns] & np.uint32(mask)) == want
        f = m.pageblock_flags[pbs[mine]]
        mt = np.where(f & P.PB_migrate_isolate, P.MIGRATE_ISOLATE, f & P.MIGRATETYPE_MASK)
        counts += np.bincount(mt.astype(np.int64), minlength=len(counts))[:len(counts)]
    return counts


def zone_records(m):
    """ZoneFreeInfo records for pagecore.fragmentation, nodes then zones in index order."""
    return [ZoneFreeInfo(nid=z.nid, name=z.name,
                         free_counts=np.asarray(z.free_area.counts(), dtype=np.int64),
                         pageblock_counts=pageblock_counts(m, z),
                         populated=z.present_pages > 0)
            for z in m.zones()]


def buddyinfo(m):
    """Text of /proc/buddyinfo."""
    return format_buddyinfo(zone_records(m))


def buddyinfo_dict(m):
    return [{"node": r.nid, "zone": r.name, "free": zone_nr_free(r.free_counts).tolist()}
            for r in zone_records(m) if r.populated]


def pagetypeinfo(m):
    """Text of /proc/pagetypeinfo (CONFIG_CMA off, CONFIG_MEMORY_ISOLATION on)."""
    return format_pagetypeinfo(zone_records(m), m.arch.pageblock_order)


def pagetypeinfo_dict(m):
    rows = [i for i, n in enumerate(MIGRATETYPE_NAMES) if n != "CMA"]
    zones = []
    for r in zone_records(m):
        if not r.populated:
            continue
        zones.append({"node": r.nid, "zone": r.name,
                      "free": {MIGRATETYPE_NAMES[i]: r.free_counts[i].tolist() for i in rows},
                      "blocks": {MIGRATETYPE_NAMES[i]: int(r.pageblock_counts[i]) for i in rows}})
    return {"pageblock_order": m.arch.pageblock_order,
            "pages_per_block": m.arch.pageblock_nr_pages, "zones": zones}


# ---------------------------------------------------------------------------------------
# /proc/vmstat
# ---------------------------------------------------------------------------------------
def vmstat_dict(m):
    out = {"nr_free_pages": int(m.mem_free_pages)}
    if m.kernel >= (6, 11):
        out["nr_memmap_pages"] = int(m.nr_memmap_pages)
        out["nr_memmap_boot_pages"] = int(m.nr_memmap_boot_pages)
    return out


def vmstat(m):
    """Text of /proc/vmstat (the modelled subset, in vmstat_text order)."""
    return "".join(f"{k} {v}\n" for k, v in vmstat_dict(m).items())


# ---------------------------------------------------------------------------------------
# lsmem
# ---------------------------------------------------------------------------------------
LSMEM_COLUMNS = ("range", "size", "state", "removable", "block", "node", "zones")


def lsmem_dict(m):
    """`lsmem --json --bytes -o RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE,ZONES` of the
    machine's sysfs tree, plus lsmem's summary. The ranges and merge rules are
    pagecore.sysfs.block_table() (lsmem's own rules over the tree export_sysfs() writes)."""
    from pagecore.sysfs import block_table, lsmem_summary
    summ = lsmem_summary(m)
    return {"memory": [r.lsmem_json(LSMEM_COLUMNS) for r in block_table(m)],
            "block_size": summ["block_size"], "online_bytes": summ["online"],
            "offline_bytes": summ["offline"]}


def lsmem(m):
    """Text of `lsmem -o RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE,ZONES` (libsmartcols
    layout: one space between columns, RANGE left-aligned, the others right-aligned),
    then the three summary lines (print_summary(): "%-23s %5s")."""
    from pagecore.sysfs import block_table, human_size as lsmem_size, lsmem_summary
    head = ["RANGE", "SIZE", "STATE", "REMOVABLE", "BLOCK", "NODE", "ZONES"]
    table = []
    for r in block_table(m):
        table.append([r.range_str, lsmem_size(r.size), r.state,
                      "" if r.removable is None else ("yes" if r.removable else "no"),
                      r.block_str, "" if r.node is None else str(r.node), r.zones or ""])
    hints = [0, 5, 0, 0, 0, 0, 0]      # lsmem's coldescs width hints (SIZE: 5)
    widths = [max(h, *(len(x) for x in col)) for h, col in zip(hints, zip(head, *table))]
    lines = []
    for cells in [head] + table:
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        lines.append(" ".join(parts).rstrip())
    summ = lsmem_summary(m)
    lines.append("")
    lines.append("%-23s %5s" % ("Memory block size:", lsmem_size(summ["block_size"])))
    lines.append("%-23s %5s" % ("Total online memory:", lsmem_size(summ["online"])))
    lines.append("%-23s %5s" % ("Total offline memory:", lsmem_size(summ["offline"])))
    return "\n".join(lines) + "\n"


#: view name -> (text function, dict function)
VIEWS = {
    "meminfo": (meminfo, meminfo_dict),
    "zoneinfo": (zoneinfo, zoneinfo_dict),
    "buddyinfo": (buddyinfo, buddyinfo_dict),
    "pagetypeinfo": (pagetypeinfo, pagetypeinfo_dict),
    "vmstat": (vmstat, vmstat_dict),
    "lsmem": (lsmem, lsmem_dict),
}
