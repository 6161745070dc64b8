"""Folio operations on the page array that migration needs on both sides of the backend
line (pagecore/compaction.py and the numpy twin pagecore/kernels/compaction_numpy.py):
split_folio() (mm/huge_memory.c) and putback_movable_pages() (mm/migrate.c). Pure numpy
over mem_map; no machine state."""
import numpy as np

from pagecore.kernels.page import PG_head, PG_isolated, PG_lru, PG_tail


def splittable(mem_map, head, order):
    """A large LRU folio: migrate_pages() splits it when no target is left."""
    return order > 0 and bool(mem_map[head]["flags"] & PG_lru)


def split_folio(mem_map, head, order):
    """split_folio() of an isolated LRU folio, as migrate_pages() does on -ENOMEM
    (try_split_folio()): 2^order isolated order-0 pages, each with the folio's refcount
    and owner. Returns their pfns."""
    pages = mem_map[head:head + (1 << order)]
    pages["flags"] = (pages["flags"] & ~np.uint32(PG_head | PG_tail)) | np.uint32(PG_isolated)
    pages["order"] = 0
    pages["refcount"] = pages["refcount"][0]
    pages["private"] = pages["private"][0]
    return list(range(head, head + (1 << order)))


def putback(mem_map, heads):
    """putback_movable_pages(): isolated folios go back (PG_isolated cleared)."""
    if len(heads):
        mem_map["flags"][np.asarray(heads, dtype=np.int64)] &= ~np.uint32(PG_isolated)
