"""mm/sparse-vmemmap.c (with include/linux/memremap.h and the x86 vmemmap code in
arch/x86/mm/init_64.c): the virtual memmap's backing.

The memmap of a section is mapped by "granules" (vmemmap leaves): PMD mappings where the
memmap of one section fills whole PMDs (x86 PSE, arm64 4K, s390 segments), else base
pages; and by page-table pages, one PMD table per PUD_SIZE of vmemmap VA (x86: 1 GiB of VA
maps 64 GiB of memory). A granule comes from memblock (boot), from the buddy (the classic
hot-add path) or from a vmem_altmap (memmap on memory). Modelled: which granules and
tables a section needs, vmemmap_populate() with its fallbacks, altmap_alloc_block_buf()'s
bump allocator, and the teardown's in-use tests. Not modelled: the vmemmap's own
struct page optimisation (HVO, hugetlb_vmemmap.c).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pagecore.kernels import page as P
from pagecore.errors import OutOfMemoryError
from pagecore.mm import mmzone, page_alloc
from pagecore.mm.mmzone import SECTION_MARKED_PRESENT
from pagecore.mm.page_owner import OWNER_VMEMMAP
from pagecore.util import flat_ranges

#: Page-table ids above this tag PTE tables (base-page leaves), below it PMD tables.
PTE_TABLE_TAG = 1 << 40


@dataclass
class VmemAltmap:
    """struct vmem_altmap (include/linux/memremap.h) with the bump allocator of
    altmap_alloc_block_buf() (mm/sparse-vmemmap.c)."""
    base_pfn: int
    end_pfn: int = 0
    reserve: int = 0
    free: int = 0
    align: int = 0
    alloc: int = 0

    @property
    def next_pfn(self):
        return self.base_pfn + self.reserve + self.alloc + self.align

    @property
    def nr_free(self):
        return max(0, self.free - (self.alloc + self.align))

    def alloc_block_buf(self, nr_pfns):
        """Hand out `nr_pfns` naturally aligned pfns, or None (-> -ENOMEM, no fallback)."""
        pfn = self.next_pfn
        natural = nr_pfns & -nr_pfns
        pad = (-pfn) % natural
        if nr_pfns + pad > self.nr_free:
            return None
        self.alloc += nr_pfns
        self.align += pad
        return pfn + pad

    def free_pages(self, nr_pfns):
        """vmem_altmap_free(): only the counter moves."""
        self.alloc -= nr_pfns

    def __str__(self):
        return f"altmap(base_pfn={self.base_pfn:#x}, free={self.free}, alloc={self.alloc})"


def granule_buddy_pages(kind, order, granule_pages):
    """Buddy pages a granule holds: its block, or its base pages and their PTE table."""
    if kind == "buddy":
        return 1 << order
    if kind == "buddy-base":
        return granule_pages + 1
    return 0


def section_vmemmap(arch, secs):
    """The vmemmap geometry of sections `secs` (an int64 array): which leaves (granules)
    and which page-table pages map their memmap, as ((granule ids, index into secs of
    each), (table ids, index into secs of each)), in section order. The one rule for it:

      leaves   the memmap of section s is VA [s * PAGES_PER_SECTION * sizeof(struct page),
               + PAGES_PER_SECTION * sizeof(struct page)); granule g maps
               [g * granule_bytes, + granule_bytes) (arch.vmemmap_granule_bytes);
      tables   PMD leaves need one PMD table per PUD_SIZE of that VA (x86: 1 GiB of VA,
               64 GiB of memory); base-page leaves need a PTE table per PMD of VA, tagged
               apart with PTE_TABLE_TAG (vmemmap_populate_hugepages() /
               vmemmap_populate_basepages(), mm/sparse-vmemmap.c)."""
    a = arch
    gb, mb = a.vmemmap_granule_bytes, a.memmap_bytes(a.pages_per_section)
    va0 = np.asarray(secs, dtype=np.int64) * mb
    va1 = va0 + mb
    leaves = flat_ranges(va0 // gb, -(-va1 // gb))
    if gb == a.pmd_size:
        pud_shift = a.pmd_shift + (a.page_shift - 3)
        tables = flat_ranges(va0 >> pud_shift, ((va1 - 1) >> pud_shift) + 1)
    else:
        tables = flat_ranges(PTE_TABLE_TAG + (va0 >> a.pmd_shift),
                             PTE_TABLE_TAG + ((va1 - 1) >> a.pmd_shift) + 1)
    return leaves, tables


def granules_of_section(m, sec):
    """The vmemmap leaves that map section `sec`'s memmap (section_vmemmap())."""
    (g, _), _ = section_vmemmap(m.arch, [sec])
    return g.tolist()


def tables_of_section(m, sec):
    """The page-table pages that map section `sec`'s vmemmap leaves (section_vmemmap())."""
    _, (t, _) = section_vmemmap(m.arch, [sec])
    return t.tolist()


def vmemmap_populate(m, nid, alt, sec):
    """vmemmap_populate() for one leaf: from the altmap if there is one (no fallback:
    -ENOMEM), else alloc_pages_node(nid, GFP_KERNEL|__GFP_RETRY_MAYFAIL, order) with
    zonelist fallback, then base pages (vmemmap_populate_hugepages())."""
    gp = m.arch.vmemmap_granule_pages
    order = gp.bit_length() - 1
    if alt is not None:
        pfn = alt.alloc_block_buf(gp)
        if pfn is None:
            raise OutOfMemoryError(f"add_memory: altmap of {alt} exhausted populating "
                                   f"section {sec}: -ENOMEM")
        return ("altmap", pfn, order, alt.base_pfn // m.block_pages)
    got = page_alloc.__alloc_pages(m, nid, order, "kernel", 1, OWNER_VMEMMAP)
    if len(got):
        return ("buddy", int(got[0]), order, int(mmzone.page_to_nid(m, got[0])))
    if order:
        base = page_alloc.__alloc_pages(m, nid, 0, "kernel", gp + 1, OWNER_VMEMMAP)   # + the PTE table
        if len(base) == gp + 1:
            return ("buddy-base", base.tolist(), 0, int(mmzone.page_to_nid(m, base[0])))
        page_alloc.free_pages_ok(m, base)
    raise OutOfMemoryError(f"add_memory: cannot allocate the memmap of section {sec} "
                           f"({gp} pages) on node {nid} or its fallbacks: -ENOMEM")


def vmemmap_free(m, g):
    kind, pfn, order, owner = m.vmemmap_granules.pop(g)
    if kind == "altmap":
        m.blocks["altmap_alloc"][owner] -= 1 << order     # vmem_altmap_free()
    elif kind == "buddy":
        page_alloc.free_pages_ok(m, [pfn])
    elif kind == "buddy-base":
        page_alloc.free_pages_ok(m, pfn)


def free_pagetable(m, t):
    pfn = m.vmemmap_tables.pop(t)
    if pfn >= 0:
        m.mem_map[pfn]["page_type"] = P.PGTY_NONE
        page_alloc.free_pages_ok(m, [pfn])
        m.pagetable_pages -= 1


def granule_in_use(m, g):
    a = m.arch
    gb = m.arch.vmemmap_granule_bytes
    first = g * gb // a.struct_page_size // a.pages_per_section
    last = ((g + 1) * gb - 1) // a.struct_page_size // a.pages_per_section
    return bool((m.sections[first:last + 1] & SECTION_MARKED_PRESENT).any())


def table_in_use(m, t):
    return any(granule_in_use(m, g) for g in granules_of_table(m, t))


def granules_of_table(m, t):
    a = m.arch
    gb = m.arch.vmemmap_granule_bytes
    if t >= PTE_TABLE_TAG:
        va0, va1 = (t - PTE_TABLE_TAG) << a.pmd_shift, ((t - PTE_TABLE_TAG) + 1) << a.pmd_shift
    else:
        pud_shift = a.pmd_shift + (a.page_shift - 3)
        va0, va1 = t << pud_shift, (t + 1) << pud_shift
    return [g for g in m.vmemmap_granules if va0 <= g * gb < va1]

