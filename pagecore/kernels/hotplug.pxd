# Contract of the hotplug and isolation kernels. Every kernel trusts its inputs: the
# Python layer (pagecore.kernels) validates ranges, alignment, dtypes and state first.
# Status codes are the kernel's: 0, -ENOENT, -EBUSY; an offending pfn goes out through
# a pointer and pagecore.errors turns both into one exception.
from pagecore.kernels.ktypes cimport uint32_t, pfn_t, pbflags_t, count_t
from pagecore.kernels.page cimport page_t

# v3 patch 4/5: vmemmap pages left in the run from `pfn` to its end (vmemmap_nr_pages()).
cdef pfn_t vmemmap_nr_pages(const page_t *mem_map, pfn_t pfn) noexcept nogil

cdef pfn_t has_unmovable_pages_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                   bint zone_movable, bint memory_offline) noexcept nogil
cdef int scan_movable_pages_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                 pfn_t *out_pfn) noexcept nogil
cdef int test_pages_isolated_impl(const page_t *mem_map, const pbflags_t *pageblock_flags,
                                  pfn_t start_pfn, pfn_t end_pfn, int pageblock_order,
                                  pfn_t *out_pfn) noexcept nogil
