# 64-page block tests of the isolation scans (pagecore/kernels/hotplug.pyx): has_unmovable_pages()
# (mm/page_isolation.c), scan_movable_pages() (mm/memory_hotplug.c) and
# test_pages_isolated() (mm/page_isolation.c) ask of one aligned block of BLK pages
# "does the scan, entering it, meet no offender and leave it exactly at its end?". A yes
# lets the scan pass the block in one step; a no sends it to the original per-page loop
# (the answer may be a conservative no, never a wrong yes).
#
# Why C with SSE2 intrinsics: a page_t is 16 bytes and the tests read its first 8 (flags,
# page_type, order, refcount). Four pages are transposed into one register of flags and
# one of "type | order << 8 | refcount << 16" words (two unpacks, two shuffles), and
# each rule is then one or two byte/lane operations on four pages at once, accumulated
# over the block with OR; one branch per block. gcc's own vectorisation of the scalar
# form spent ~10 instructions per page; these spend ~3.5 (has_unmovable_pages: 0.26 ns
# per page from L2 against ~0.5 for a DRAM read of the page).
#
# Every test has a scalar twin (pc_blk_*_scalar) with the same answer for every block;
# it is what builds without SSE2 use, and tests/test_kernel_parity.py compares the two
# on random blocks through _kernels._block_tests().
#
# Byte layout relied on (little-endian, pagecore/kernels/page.pxd): flags at 0..3, page_type 4,
# order 5, refcount 6..7. The flag and type constants below are checked against
# page.pxd when hotplug is imported.
#
# All functions: noexcept nogil (no Python objects, no failure).
from pagecore.kernels.ktypes cimport uint8_t, uint32_t, uint64_t, int64_t
from pagecore.kernels.page cimport page_t

cdef extern from "scanblock.h":
    enum: PC_BLK_SIMD
    uint8_t pc_blk_fit[64]
    uint8_t pc_blk_align[64]
    void pc_blk_init() noexcept nogil
    bint pc_blk_hup(const page_t *pages) noexcept nogil
    bint pc_blk_hup_movable(const page_t *pages) noexcept nogil
    bint pc_blk_smp(const page_t *pages) noexcept nogil
    bint pc_blk_tpi(const page_t *pages, int entry) noexcept nogil
    bint pc_blk_hup_scalar(const page_t *pages) noexcept nogil
    bint pc_blk_hup_movable_scalar(const page_t *pages) noexcept nogil
    bint pc_blk_smp_scalar(const page_t *pages) noexcept nogil
    bint pc_blk_tpi_scalar(const page_t *pages, int entry) noexcept nogil
    void pc_blk_stream(const page_t *pages, int64_t nr_pages) noexcept nogil
    # the compaction scanners' block view and block functions
    ctypedef struct pc_cview_t:
        uint64_t buddy, head, tail, cand, nz, o0, o1, o2, fit, ge, vmm
        uint8_t od[64]
    int pc_cblk_max_level() noexcept nogil
    int pc_cblk_select(int level) noexcept nogil
    int pc_cblk_level
    void pc_cview_at(int level, const page_t *pages, uint32_t skip_order,
                     pc_cview_t *v) noexcept nogil
    uint64_t pc_view_isolatable(const pc_cview_t *v) noexcept nogil
    int pc_popcount64(uint64_t x) noexcept nogil
    int64_t pc_mig_run(page_t *pages, int64_t b, int64_t nblk, int entry, uint32_t skip_order,
                       int64_t room, int64_t *out_pfns, int64_t *nr, int *stop,
                       uint64_t *take, pc_cview_t *v) noexcept nogil
    int64_t pc_mig_run32(page_t *pages, int64_t b, int64_t base, int64_t nblk, int entry,
                         uint32_t skip_order, int64_t room, uint32_t *out, int64_t *nr,
                         int *stop, uint64_t *take, pc_cview_t *v) noexcept nogil
    int pc_free_block(const page_t *pages, int64_t b, int entry, int64_t room,
                      int64_t *out_pfns, uint8_t *out_orders, int64_t *nr_pages,
                      uint64_t *rec, pc_cview_t *v) noexcept nogil
    # the constants the C code names, checked against _page.pxd by _kernels
    enum:
        PC_PG_RESERVED
        PC_PG_LRU
        PC_PG_HEAD
        PC_PG_MOVABLE
        PC_PG_TAIL
        PC_PG_ISOLATED
        PC_PGTY_BUDDY
        PC_PGTY_OFFLINE
        PC_PGTY_VMEMMAP
