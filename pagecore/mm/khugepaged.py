"""mm/khugepaged.c: the min_free_kbytes khugepaged asks for. Modelled:
set_recommended_min_free_kbytes() and khugepaged_min_free_kbytes_update(). Not
modelled: collapsing pages (khugepaged's scan).
"""
from __future__ import annotations

from pagecore.kernels import page as P
from pagecore.mm import page_alloc
from pagecore.mm.mmzone import MIGRATE_PCPTYPES


def set_recommended_min_free_kbytes(m):
    """set_recommended_min_free_kbytes() (mm/khugepaged.c, v6.1 and v6.12): with THP
    enabled, at least 2 + MIGRATE_PCPTYPES^2 = 11 pageblocks per populated zone that
    GFP_USER may use (ZONE_MOVABLE is not counted: it holds only movable pages), but
    no more than 5% of nr_free_buffer_pages(); it only ever raises min_free_kbytes.
    THP off: calculate_min_free_kbytes(). Then the watermarks again."""
    if not m.thp_enabled:
        page_alloc.calculate_min_free_kbytes(m)
    else:
        nr_zones = sum(1 for z in m.zones() if z.present_pages and z.zid <= P.ZONE_NORMAL)
        pb = m.arch.pageblock_nr_pages
        rec = pb * nr_zones * 2 + pb * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
        rec = min(rec, page_alloc.nr_free_buffer_pages(m) // 20)
        rec <<= m.arch.page_shift - 10
        if rec > m.min_free_kbytes:
            m.min_free_kbytes = rec
    page_alloc.setup_per_zone_wmarks(m)

