"""mm/page_owner.c: who allocated a page. pagecore keeps page_owner's idea as an owner tag
in page->private of every allocated page, so that an allocation can be followed when
migration moves it (copy_page_owner() since v4.6; __folio_copy_owner() in 6.1 and 6.12).

Modelled: the tag, its copy on migration, the lookup of an allocation's blocks. Not
modelled: stack traces, the debugfs dump format.
"""
from __future__ import annotations

import numpy as np

from pagecore.kernels import page as P
from pagecore.kernels.buddy import owned_heads
from pagecore.errors import ConfigError
from pagecore.mm.mmzone import present_section_runs
from pagecore.util import int_arg

#: Owner tags (page->private of an allocated page, what page_owner would record as the
#: allocation's stack) that name the machine's own allocations: the vmemmap and its page
#: tables populated from the buddy (vmemmap_alloc_block(), mm/sparse-vmemmap.c) and the
#: kernel's memory after boot. Only remove_memory() frees OWNER_VMEMMAP pages.
OWNER_BOOT, OWNER_VMEMMAP = 1, 2
#: alloc_pages() without an owner tags the call's blocks with a fresh tag from here on,
#: so that the returned Allocation names exactly its own blocks.
OWNER_AUTO_BASE = 1 << 48


class Allocation(np.ndarray):
    """What alloc_pages() returns: the head pfns of the blocks at allocation time (an int64
    array, used as before) and the owner tag they carry in page->private.

    Migration (offline, compaction) moves a block's owner tag with its contents, as the
    kernel's page_owner does on migration (copy_page_owner() since v4.6, __folio_copy_owner()
    in 6.1 and 6.12, mm/page_owner.c), so free_pages(allocation) frees the blocks wherever they are now, and
    Machine.find_allocation() says where that is. Slices and other arrays derived from an
    Allocation are plain pfns (owner None): they name pages, not the allocation. A tag
    given to several alloc_pages() calls names all their blocks together."""

    def __new__(cls, pfns, owner, order):
        obj = np.asarray(pfns, dtype=np.int64).view(cls)
        obj.owner, obj.order = int(owner), int(order)
        return obj

    def __array_finalize__(self, obj):
        self.owner = None
        self.order = getattr(obj, "order", None)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # ufunc results (heads + 1, ...) are pfns, not the allocation
        out = np.asarray(arr)
        return out[()] if return_scalar else out

    def __reduce__(self):
        return (Allocation, (np.asarray(self), self.owner, self.order)) if self.owner is not None \
            else (np.asarray, (np.asarray(self),))



def find_allocation(m, allocation):
    """The head pfns where the blocks of an Allocation (or an owner tag) are now, in pfn
    order: what page_owner's dump would list for the allocation (mm/page_owner.c)."""
    owner = owner_of(m, allocation)
    out = []
    for z in m.zones():
        if not z.spanned_pages:
            continue
        bits = (z.nid << P.NODES_PGSHIFT) | (z.zid << P.ZONES_PGSHIFT)
        for lo, hi in present_section_runs(m, z.zone_start_pfn, z.zone_end_pfn):
            idx, _ = owned_heads(m.mem_map[lo:hi], bits, owner, 1)
            out.append(idx + lo)
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def owner_of(m, allocation):
    if isinstance(allocation, Allocation):
        if allocation.owner is None:
            raise ConfigError("a slice of an Allocation is plain pfns, not an allocation: "
                              "pass the Allocation alloc_pages() returned")
        return allocation.owner
    return int_arg(allocation, "owner", 0, 1 << 64)

