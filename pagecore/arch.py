"""Architecture presets: the constants and rules of docs/model.md#architectures.

Each preset is what a kernel of that architecture derives from its Kconfig:
PAGE_SHIFT, SECTION_SIZE_BITS (arch/*/include/asm/sparsemem.h), PMD_SHIFT, pageblock_order
(include/linux/pageblock-flags.h), MAX_PAGE_ORDER (include/linux/mmzone.h, inclusive as
since v6.4), and the memory block size rule (memory_block_size_bytes()).
"""
from dataclasses import dataclass, replace

from pagecore.errors import ConfigError

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

#: Zone names as /proc/zoneinfo prints them, by ZONE_* index.
ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable")


@dataclass(frozen=True)
class Arch:
    name: str
    page_shift: int
    section_size_bits: int
    pmd_shift: int
    pageblock_order: int
    max_page_order: int
    struct_page_size: int = 64
    #: Upper physical limits of ZONE_DMA and ZONE_DMA32 in bytes (0: the zone does not
    #: exist). x86_64: MAX_DMA_PFN = 16 MiB, MAX_DMA32_PFN = 4 GiB (arch/x86/include/asm/dma.h).
    zone_limits: tuple = (0, 0)
    #: Whether vmemmap leaves can be PMD mappings (x86 PSE, arm64 4K, ppc64 radix 2M).
    vmemmap_pmd: bool = True
    #: First kernel with ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE (docs/model.md#who-passes-mhp_memmap_on_memory).
    memmap_on_memory_since: tuple = (5, 13)
    #: Default memory block size when not probed (ppc64 LMB, s390 rzm); 0 = one section.
    default_block_size: int = 0

    # ---- derived constants (include/linux/mmzone.h) ---------------------------------
    @property
    def page_size(self):
        return 1 << self.page_shift

    @property
    def section_size(self):
        return 1 << self.section_size_bits

    @property
    def pages_per_section(self):
        return 1 << (self.section_size_bits - self.page_shift)

    @property
    def pageblock_nr_pages(self):
        return 1 << self.pageblock_order

    @property
    def nr_page_orders(self):
        return self.max_page_order + 1

    @property
    def pmd_size(self):
        return 1 << self.pmd_shift

    @property
    def pages_per_subsection(self):
        # PAGES_PER_SUBSECTION: 2 MiB subsections, never more than a section.
        return min(2 * MiB, self.section_size) >> self.page_shift

    @property
    def vmemmap_granule_bytes(self):
        """Size of one vmemmap leaf mapping: a PMD when the memmap of one section fills
        whole PMDs (vmemmap_populate_hugepages(): x86 PSE, arm64 4K, s390 segments), else
        a base page (vmemmap_populate_basepages())."""
        if self.vmemmap_pmd and self.memmap_bytes(self.pages_per_section) >= self.pmd_size:
            return self.pmd_size
        return self.page_size

    @property
    def vmemmap_granule_pages(self):
        return self.vmemmap_granule_bytes >> self.page_shift

    def memmap_bytes(self, nr_pages):
        """Bytes of struct page for nr_pages pages."""
        return nr_pages * self.struct_page_size

    def memmap_pages(self, nr_pages):
        """DIV_ROUND_UP(nr_pages * sizeof(struct page), PAGE_SIZE)."""
        return -(-self.memmap_bytes(nr_pages) // self.page_size)

    def validate(self):
        if self.section_size_bits - self.page_shift < self.max_page_order:
            raise ConfigError(f"{self.name}: a section of 2^{self.section_size_bits} bytes cannot "
                              f"hold a MAX_PAGE_ORDER={self.max_page_order} buddy block "
                              "(include/linux/mmzone.h build check)")
        if self.pageblock_order > self.max_page_order:
            raise ConfigError(f"{self.name}: pageblock_order={self.pageblock_order} > "
                              f"MAX_PAGE_ORDER={self.max_page_order}")
        if self.struct_page_size < 16 or self.struct_page_size % 8:
            raise ConfigError(f"struct_page_size={self.struct_page_size}: must be a multiple "
                              "of 8 bytes and at least 16")
        return self

    # ---- memory block size (drivers/base/memory.c, arch/x86/mm/init_64.c) ------------
    def memory_block_size(self, boot_mem_end, *, is_vm=True, forced=None, advised=None,
                          kernel=(6, 12)):
        """memory_block_size_bytes() for this machine.

        x86_64: probe_memory_block_size() (v4.17 alignment loop, v5.8 bare-metal 2 GiB,
        ~v6.15 CXL advice). Others: the preset's default, else one section.
        """
        size = forced or self._probe(boot_mem_end, is_vm, advised, kernel)
        check_block_size(self, size)
        return size

    def _probe(self, boot_mem_end, is_vm, advised, kernel):
        if self.name != "x86_64":
            return self.default_block_size or self.section_size
        if boot_mem_end < 64 * GiB:                     # MEM_SIZE_FOR_LARGE_BLOCK
            return 128 * MiB
        if kernel >= (6, 15) and advised:
            bz = max(min(advised, 2 * GiB), 128 * MiB)
        else:
            bz = 2 * GiB                                # MAX_BLOCK_SIZE
            if not is_vm and kernel >= (5, 8):
                return bz
        while bz > 128 * MiB and boot_mem_end % bz:
            bz //= 2
        return bz


def check_block_size(arch, size):
    """A memory block is a power-of-two number of whole sections (sections_per_block)."""
    if size < arch.section_size or size % arch.section_size or size & (size - 1):
        raise ConfigError(f"memory block size {size:#x} is not a power-of-two multiple of "
                          f"the {arch.name} section size {arch.section_size:#x}")


PRESETS = {
    "x86_64": Arch("x86_64", 12, 27, 21, 9, 10, zone_limits=(16 * MiB, 4 * GiB)),
    "arm64-4k": Arch("arm64-4k", 12, 27, 21, 9, 10, zone_limits=(4 * GiB, 0)),
    "arm64-64k": Arch("arm64-64k", 16, 29, 29, 13, 13, zone_limits=(4 * GiB, 0),
                      vmemmap_pmd=False),
    "ppc64-64k": Arch("ppc64-64k", 16, 24, 21, 5, 8, memmap_on_memory_since=(6, 6),
                      default_block_size=256 * MiB),
    "s390x": Arch("s390x", 12, 28, 20, 8, 10, zone_limits=(2 * GiB, 0),
                  memmap_on_memory_since=(6, 8), default_block_size=256 * MiB),
}


def get_arch(name="x86_64", *, struct_page_size=64):
    """A preset by name, with `struct page` size overridden when asked."""
    try:
        arch = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown architecture {name!r}; presets: {', '.join(PRESETS)}") from None
    return replace(arch, struct_page_size=struct_page_size).validate()
