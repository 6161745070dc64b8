"""mm/show_mem.c (v6.12; mm/page_alloc.c in v6.1): si_meminfo() and si_mem_available(), the
numbers behind /proc/meminfo, and the page-kind counts (the vmstat counters NR_ANON_MAPPED,
NR_FILE_PAGES, NR_SLAB_RECLAIMABLE_B, NR_SLAB_UNRECLAIMABLE_B) read off the page array.

Allocations say what they are by accounting flags on their pages (page_alloc.KINDS):
anonymous pages count in AnonPages, page cache in Cached, slab in SReclaimable or SUnreclaim
(Slab and KReclaimable are their sums as in meminfo_proc_show()), other kernel pages only in
MemFree. MemAvailable is si_mem_available(): NR_FREE_PAGES - totalreserve_pages, plus the
page cache less min(pagecache / 2, the sum of the low watermarks), plus reclaimable slab
less min(reclaimable / 2, the same); anonymous memory is never available (no swap). Not
modelled: swap, LRU activity, dirty/writeback, vmalloc, per-cpu, hugetlb pools (procfs
names them as not modelled).
"""
from __future__ import annotations

import numpy as np

from pagecore.drivers.base.memory import MEM_ONLINE
from pagecore.kernels import page as P
from pagecore.mm.page_alloc import PG_reclaimable, PG_slab, PG_swapbacked

_CHUNK = 1 << 20          # pages per numpy pass when scanning the mem_map

#: The /proc/meminfo fields pagecore models, in the kernel's order (meminfo_proc_show()).
MEMINFO_FIELDS = ("MemTotal", "MemFree", "MemAvailable", "Cached", "AnonPages",
                  "KReclaimable", "Slab", "SReclaimable", "SUnreclaim")

def online_block_runs(m):
    """[start_pfn, end_pfn) runs of online memory blocks (boot and hot-added)."""
    online = m.blocks["state"] == MEM_ONLINE
    d = np.diff(np.concatenate(([0], online.view(np.int8), [0])))
    nb = m.block_pages
    return [(int(s) * nb, int(e) * nb)
            for s, e in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0])]


def page_kinds(m):
    """Allocated pages of online memory by kind, the way the kernel's vmstat counters
    see them: {"anon", "file", "slab_reclaimable", "slab_unreclaimable"} (pages).
    anon: PG_lru with PG_swapbacked; file: PG_lru without it (page cache); slab: PG_slab
    pages, reclaimable when PG_reclaimable."""
    out = dict.fromkeys(("anon", "file", "slab_reclaimable", "slab_unreclaimable"), 0)
    lru, sb, sl, rc = (np.uint64(x) for x in (P.PG_lru, PG_swapbacked, PG_slab, PG_reclaimable))
    kinds = lru | sl
    # Word 0 of a page is flags | page_type << 32 | order << 40 | refcount << 48
    # (pagecore/kernels/page.pxd): one pass picks the pages with an LRU or slab bit, usually few, and
    # only those are classified.
    for s, e in online_block_runs(m):
        for p in range(s, e, _CHUNK):
            w = m.mem_map[p:min(p + _CHUNK, e)].view(np.uint64)[::2]
            w = w[(w & kinds) != 0]
            w = w[(w >> np.uint64(48)) != 0]                 # allocated (refcount > 0)
            is_lru = (w & lru) != 0
            anon = int(np.count_nonzero(is_lru & ((w & sb) != 0)))
            nlru = int(np.count_nonzero(is_lru))
            out["anon"] += anon
            out["file"] += nlru - anon
            is_slab = (w & sl) != 0
            rec = int(np.count_nonzero(is_slab & ((w & rc) != 0)))
            out["slab_reclaimable"] += rec
            out["slab_unreclaimable"] += int(np.count_nonzero(is_slab)) - rec
    return out


def lru_pages(m):
    """Allocated pages on an LRU list (PG_lru, refcount > 0), anonymous and file, over
    online memory."""
    k = page_kinds(m)
    return k["anon"] + k["file"]


def totalreserve_pages(m):
    """calculate_totalreserve_pages() (mm/page_alloc.c)."""
    total = 0
    for z in m.zones():
        mx = max(z.lowmem_reserve[z.zid:] + [0]) + z.watermark[2]
        total += min(mx, z.managed_pages)
    return total


def meminfo(m, pagecache_pages=None, reclaimable_pages=None):
    """The MEMINFO_FIELDS in kB (see the module docstring for the model).
    `pagecache_pages` overrides the page-cache count (Cached and MemAvailable; the kernel
    counts the file LRU lists), `reclaimable_pages` the reclaimable slab and misc memory
    (KReclaimable). si_mem_available() (mm/page_alloc.c v6.1, mm/show_mem.c v6.12): each
    of the two counts less min(half of it, the sum of the zones' low watermarks)."""
    kinds = page_kinds(m)
    free = m.mem_free_pages
    wmark_low = sum(z.watermark[1] for z in m.zones())
    available = free - totalreserve_pages(m)
    file_pages = kinds["file"] if pagecache_pages is None else int(pagecache_pages)
    available += file_pages - min(file_pages // 2, wmark_low)
    reclaimable = kinds["slab_reclaimable"] if reclaimable_pages is None else int(reclaimable_pages)
    # (+ NR_KERNEL_MISC_RECLAIMABLE, 0 in the model)
    available += reclaimable - min(reclaimable // 2, wmark_low)
    available = max(available, 0)
    slab = kinds["slab_reclaimable"] + kinds["slab_unreclaimable"]
    pages = {"MemTotal": m.mem_total_pages, "MemFree": free, "MemAvailable": available,
             "Cached": file_pages, "AnonPages": kinds["anon"], "KReclaimable": reclaimable,
             "Slab": slab, "SReclaimable": kinds["slab_reclaimable"],
             "SUnreclaim": kinds["slab_unreclaimable"]}
    kb = m.arch.page_shift - 10
    return {k: pages[k] << kb for k in MEMINFO_FIELDS}


