# Contract of the compaction and contiguous-allocation scanners (mm/compaction.c,
# mm/page_alloc.c). Like pagecore.kernels.hotplug, every kernel trusts its inputs: the Python
# layer (pagecore.compaction) checks zones, alignment and state first. The scanners only
# read pages and report what they found; free lists change only through the zone's
# FreeArea (pagecore.kernels.buddy), so one buddy implementation serves every backend.
#
# Writes, all stated here: isolate_migratepages_block() sets PG_isolated on the head of
# each folio it isolates (folio_test_clear_lru() / PageIsolated: a second scan cannot take
# it again) and the pageblock skip bit (set_pageblock_skip(), test_and_set_skip());
# migrate_folio() moves one folio's state; compact_zone_run() is the whole compaction
# loop: it moves folios, splits large LRU folios without a target, sets skip bits, and
# takes free blocks off / gives them back to the FreeArea, leaving nothing isolated.
from pagecore.kernels.ktypes cimport uint8_t, uint32_t, pfn_t, pbflags_t, count_t
from pagecore.kernels.page cimport (page_t, PGTY_BUDDY, MIGRATE_MOVABLE, MIGRATE_CMA,
                             MIGRATE_ISOLATE, MIGRATETYPE_MASK, PB_migrate_isolate,
                             PG_head, PG_tail, PG_lru, PG_movable)

cdef enum:
    COMPACT_CLUSTER_MAX = 32          # SWAP_CLUSTER_MAX: folios isolated per batch

cdef enum compact_result:             # enum compact_result (include/linux/compaction.h)
    COMPACT_CONTINUE                  # not finished: isolate and migrate another batch
    COMPACT_COMPLETE                  # the scanners met
    COMPACT_CONTENDED                 # pagecore: migrate_pages() found no target left
    COMPACT_SUCCESS                   # a free block of the requested order is there


# ---- small rules, inline (mm/compaction.c) ----------------------------------------------
cdef inline int pageblock_migratetype(const pbflags_t *pageblock_flags, pfn_t pfn,
                                      int pageblock_order) noexcept nogil:
    # get_pfnblock_migratetype(): the standalone isolate bit (v6.16+) reads as ISOLATE.
    cdef pbflags_t f = pageblock_flags[pfn >> pageblock_order]
    if f & PB_migrate_isolate:
        return MIGRATE_ISOLATE
    return f & MIGRATETYPE_MASK


cdef inline bint is_migrate_movable(int mt) noexcept nogil:
    # is_migrate_movable(): MOVABLE or CMA.
    return mt == MIGRATE_MOVABLE or mt == MIGRATE_CMA


cdef inline int target_free_order(int cc_order, int pageblock_order) noexcept nogil:
    # suitable_migration_target() v6.9+ ("mm: compaction: limit the suitable target page
    # order to be less than cc->order"): the free block order from which a pageblock is
    # no target, cc->order when > 0, else pageblock_order (v6.1: pageblock_order always).
    return cc_order if cc_order > 0 else pageblock_order


cdef inline bint suitable_migration_target_impl(const page_t *mem_map,
                                                const pbflags_t *pageblock_flags, pfn_t pfn,
                                                int pageblock_order,
                                                bint ignore_block_suitable,
                                                int cc_order) noexcept nogil:
    # suitable_migration_target(): `pfn` is the first page of a pageblock. A free block
    # there of target_free_order() or more is not broken up; otherwise MOVABLE/CMA
    # blocks only.
    cdef const page_t *p = &mem_map[pfn]
    if p.page_type == PGTY_BUDDY and p.order >= target_free_order(cc_order, pageblock_order):
        return False
    if ignore_block_suitable:
        return True
    return is_migrate_movable(pageblock_migratetype(pageblock_flags, pfn, pageblock_order))


cdef inline bint suitable_migration_source_impl(const page_t *mem_map,
                                                const pbflags_t *pageblock_flags, pfn_t pfn,
                                                int pageblock_order,
                                                bint async_direct) noexcept nogil:
    # suitable_migration_source() for a MOVABLE request: a pageblock held by a folio of
    # pageblock order or more is never a source (pageblock_skip_persistent()); only async
    # direct compaction filters by migratetype.
    cdef const page_t *p = &mem_map[pfn]
    if p.flags & (PG_head | PG_tail) and p.order >= pageblock_order:
        return False
    if not async_direct:
        return True
    return is_migrate_movable(pageblock_migratetype(pageblock_flags, pfn, pageblock_order))


cdef inline bint skip_isolation_on_order(int order, int target_order,
                                         int pageblock_order) noexcept nogil:
    # skip_isolation_on_order() (v6.9+): a folio as large as the target is not migrated
    # (unless compact_memory, order -1), nor one of pageblock order or more.
    return (target_order != -1 and order >= target_order) or order >= pageblock_order


cdef inline pfn_t block_end_pfn(pfn_t pfn, int order) noexcept nogil:
    # block_end_pfn(): ALIGN(pfn + 1, 1 << order).
    return ((pfn >> order) + 1) << order


# ---- scanners -------------------------------------------------------------------------
# What the migrate scanner records of a folio it isolates, as pfn - base: its head's pfn
# (base 0: compaction's cc->migratepages), or for isolate_migratepages_range() its offset
# from the range's start, which halves the out stream of a scan that records about every
# other page.
ctypedef fused isolated_t:
    pfn_t
    uint32_t

cdef pfn_t isolate_migratepages_block_impl(
        page_t *mem_map, pbflags_t *pageblock_flags, pfn_t low_pfn, pfn_t end_pfn,
        int pageblock_order, bint ignore_skip_hint, isolated_t *out, pfn_t base,
        count_t capacity, int cc_order, bint alloc_contig, bint skip_on_failure, bint v6_1,
        count_t *nr_isolated, count_t *nr_scanned) noexcept nogil

cdef count_t isolate_freepages_block_impl(
        const page_t *mem_map, const pbflags_t *pageblock_flags, pfn_t start_pfn,
        pfn_t end_pfn, bint strict, pfn_t *out_pfns, uint8_t *out_orders, count_t max_blocks,
        int pageblock_order, count_t *nr_blocks, count_t *nr_scanned,
        pfn_t *fail_pfn, int cc_order, bint v6_1, pfn_t stride) noexcept nogil

cdef pfn_t pfn_range_valid_contig_impl(const page_t *mem_map, pfn_t start_pfn, pfn_t end_pfn,
                                       uint32_t zone_bits) noexcept nogil

cdef count_t migrate_folio_impl(page_t *mem_map, pfn_t src, pfn_t dst) noexcept nogil
