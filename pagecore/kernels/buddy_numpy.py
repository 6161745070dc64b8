"""Plain-Python twin of pagecore.kernels.buddy.FreeArea: the buddy free area of one zone.

Contract: `FreeArea` here takes the same constructor arguments as the Cython class, has the
same Python face (counts, nr_free_pages, blocks, snapshot, py_*, alloc_bulk, free_bulk,
claim_ranges) plus the cdef algorithms under their own names (free_one_page, expand,
rmqueue, ...), and leaves the mem_map, the pageblock flags and every free list in the
same state, list order and free-list slots in `private` included, for every input the
Cython class accepts. tests/test_buddy.py holds the two to this. Readability first: one
method per kernel function, in the kernel's words; speed is of no concern (tests only).

Kernel counterparts are mm/page_alloc.c and mm/page_isolation.c (v6.12 unless named).
Where pagecore deliberately differs from the kernel, the method says so; the differences
that hold for the whole class:

  * Free lists are stacks of pfns, not doubly linked lists through page->lru (a 16-byte
    page has no room for two links). A block's slot is kept so it can be removed in O(1)
    (the last entry moves into its slot): below pageblock_order in its head's `private`
    as `slot << 3 | migratetype`; from pageblock_order up `private` is the migratetype
    alone and the slot sits beside the page array (the Cython class's `side` arrays, a
    dict here), so that a freshly onlined memory block's struct pages do not depend on
    list positions (pagecore/mm/memmap_template.py shares them). Pushing
    is the kernel's list_add() (head); pop takes the top, which is the list head that
    get_page_from_free_area() takes. The kernel's tail additions (FPI_TO_TAIL when
    onlining, buddy_merge_likely(), move_to_free_list()) and the order that list_del()
    keeps have no counterpart: which block of a list is taken next may differ from the
    kernel, never which list.
  * One CPU's per-cpu lists (the CPU pagecore runs on), as Python lists of head pfns,
    list head first; the kernel function per call (no runs). No MIGRATE_HIGHATOMIC
    reserves, no CMA fallback
    (__rmqueue_cma_fallback()), no ALLOC_NOFRAGMENT, no watermark boost, no guard pages,
    no compaction capture, no page reporting, no shuffling.
  * NR_FREE_PAGES is not a counter kept by account_freepages(): nr_free_pages() sums the
    lists, ISOLATE excluded (the kernel's rule for what NR_FREE_PAGES counts).
"""
import numpy as np

from pagecore.kernels.page import (FLAGS_MASK, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE,
                            MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_TYPES,
                            MIGRATE_UNMOVABLE, MIGRATETYPE_MASK, PB_migrate_isolate, PG_head,
                            PG_tail, PGTY_BUDDY, PGTY_NONE)

__all__ = ["FreeArea", "FALLBACKS", "MAX_ORDERS", "migratetype_is_mergeable"]

# The per-cpu lists (include/linux/mmzone.h, mm/page_alloc.c; the Cython class's enums)
PAGE_ALLOC_COSTLY_ORDER = 3
MIGRATE_PCPTYPES = 3
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 2          # + NR_PCP_THP
PCP_BATCH_SCALE_MAX = 5                           # CONFIG_PCP_BATCH_SCALE_MAX
PCPF_PREV_FREE_HIGH_ORDER = 1


def clamp(v, lo, hi):
    """The kernel's clamp(): min(max(v, lo), hi)."""
    return min(max(v, lo), hi)

#: Free lists per migratetype (MAX_ORDERS in _buddy.pxd): >= NR_PAGE_ORDERS of every preset.
MAX_ORDERS = 16

#: fallbacks[] (mm/page_alloc.c): the lists a pcp migratetype steals from, in order.
FALLBACKS = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
}

ZONE_NODE_BITS = 0xFFFFFFFF & ~FLAGS_MASK       # the upper bits of page->flags


def migratetype_is_mergeable(mt):
    """migratetype_is_mergeable() (include/linux/mmzone.h): only the pcp types
    (UNMOVABLE, MOVABLE, RECLAIMABLE) merge with a buddy of another type."""
    return mt < MIGRATE_HIGHATOMIC


class FreeArea:
    """struct free_area[NR_PAGE_ORDERS] of one zone over the machine-wide mem_map and
    pageblock flags (both numpy arrays, shared with the caller and written in place).

    `lists[mt][order]` is the stack of head pfns of that free list, in list order (the
    order FreeArea.blocks() returns). Invariants (as _buddy.pxd states them):
      * a pfn is on at most one list, and its head page is PGTY_BUDDY with `order` = the
        list's order, refcount 0 and private = slot << 3 | list migratetype (below
        pageblock_order; from it up private = migratetype, slot in `side`);
      * nr_free_pages() counts every list but MIGRATE_ISOLATE.
    """

    def __init__(self, mem_map, pageblock_flags, nr_orders, pageblock_order):
        if not 0 < nr_orders <= MAX_ORDERS:
            raise ValueError(f"nr_orders={nr_orders} outside 1..{MAX_ORDERS}")
        self.mem_map = mem_map
        self.pageblock_flags = pageblock_flags
        self.nr_orders = nr_orders                  # NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
        self.pageblock_order = pageblock_order
        # field views: writes go straight to the shared array
        self._flags = mem_map["flags"]
        self._type = mem_map["page_type"]
        self._order = mem_map["order"]
        self._ref = mem_map["refcount"]
        self._private = mem_map["private"]
        self.lists = [[[] for _ in range(nr_orders)] for _ in range(MIGRATE_TYPES)]
        self.side_order = min(pageblock_order, nr_orders)
        self.side = {o: {} for o in range(self.side_order, nr_orders)}   # pfn -> slot
        # The Cython class keeps 4-byte offsets until a pfn leaves a 2^32 window (a
        # storage detail with no effect on the state); Python lists have no width.
        self.wide = False
        # struct per_cpu_pages of the running CPU (per_cpu_pages_init()) and its lists
        self.pcp = dict(count=0, high=0, high_min=0, high_max=0, batch=1, free_count=0,
                        free_factor=0, alloc_factor=0, flags=0)
        self.pcp_heads = [[] for _ in range(NR_PCP_LISTS)]
        self.pcp_autotune = False           # the v6.7+ rules
        self.below_high = False             # ZONE_BELOW_HIGH
        self.wmark_min = self.wmark_high = self.reserve_movable = 0

    # ---- helpers --------------------------------------------------------------------
    def _is_head(self, pfn, order):
        """PageBuddy(page) && buddy_order(page) == order."""
        return self._type[pfn] == PGTY_BUDDY and self._order[pfn] == order

    def _zone_bits(self, pfn):
        """page_zone_id(): the node and zone bits of page->flags."""
        return int(self._flags[pfn]) & ZONE_NODE_BITS

    def _widen(self):
        """No-op: the twin's lists have no narrow form."""
        self.wide = True

    def _listed_block(self, pfn):
        """listed_block() of the Cython class: (head, order) of the free block of order
        >= side_order on a list that holds `pfn`, or None; here from the side slots."""
        if pfn < 0 or pfn >= len(self.mem_map):
            raise ValueError(f"_listed_block: pfn {pfn} outside the page array")
        for o in range(self.nr_orders - 1, self.side_order - 1, -1):
            h = pfn & ~((1 << o) - 1)
            slot = self.side[o].get(h)
            if slot is not None and any(slot < len(self.lists[mt][o]) and self.lists[mt][o][slot] == h
                                        for mt in range(MIGRATE_TYPES)):
                return h, o
        return None

    # ---- list primitives: __add_to_free_list(), __del_page_from_free_list() ---------
    def add(self, pfn, order, mt):
        """__add_to_free_list() at the head + set_buddy_order(): push `pfn` on the
        (mt, order) list and make it a free head (PageBuddy, order, refcount 0)."""
        stack = self.lists[mt][order]
        self._type[pfn] = PGTY_BUDDY
        self._order[pfn] = order
        self._ref[pfn] = 0
        self._set_slot(pfn, order, len(stack), mt)
        stack.append(pfn)

    def add_listed(self, pfn, order, mt):
        """add() of a block whose head page already reads as add() leaves it (a shared
        memmap image): the list and the side slot only, the page is not written."""
        if not self.side_order <= order < self.nr_orders:
            raise ValueError(f"add_listed: order {order} below the side order")
        stack = self.lists[mt][order]
        self.side[order][pfn] = len(stack)
        stack.append(pfn)

    def _set_slot(self, pfn, order, slot, mt):
        if order >= self.side_order:
            self.side[order][pfn] = slot
            self._private[pfn] = mt
        else:
            self._private[pfn] = (slot << 3) | mt

    def _slot(self, pfn):
        order = int(self._order[pfn])
        if order >= self.side_order:
            return self.side[order][pfn]
        return int(self._private[pfn]) >> 3

    def list_slots(self, pfns):
        """The list slot recorded for each free head in `pfns`."""
        return np.array([self._slot(int(p)) for p in pfns], dtype=np.int64)

    def remove(self, pfn):
        """__del_page_from_free_list(): take the free head `pfn` off its list (read from
        its `private`). pagecore: the list's last entry moves into the freed slot."""
        mt, slot, order = int(self._private[pfn]) & 7, self._slot(pfn), int(self._order[pfn])
        stack = self.lists[mt][order]
        moved = stack.pop()
        if moved != pfn:
            stack[slot] = moved
            self._set_slot(moved, order, slot, mt)
        self._type[pfn] = PGTY_NONE
        self._private[pfn] = 0

    def pop(self, order, mt):
        """get_page_from_free_area() + del_page_from_free_list(): the list head, or -1.
        Like the Cython pop(), the page keeps its `order` (the caller rewrites it)."""
        stack = self.lists[mt][order]
        if not stack:
            return -1
        pfn = stack.pop()
        self._type[pfn] = PGTY_NONE
        self._private[pfn] = 0
        return pfn

    def get_mt(self, pfn):
        """get_pfnblock_migratetype(): the migratetype of the pageblock of `pfn`;
        MIGRATE_ISOLATE when its standalone isolate bit is set (v6.16+, PB_migrate_isolate),
        whatever the stored type."""
        f = int(self.pageblock_flags[pfn >> self.pageblock_order])
        if f & PB_migrate_isolate:
            return MIGRATE_ISOLATE
        return f & MIGRATETYPE_MASK

    # ---- freeing --------------------------------------------------------------------
    def free_one_page(self, pfn, order):
        """free_one_page() -> split_large_buddy() (v6.10+): a block larger than a
        pageblock is freed pageblock by pageblock, each with __free_one_page() under its
        own pageblock's migratetype; a smaller block is freed whole under its own.

        pagecore: when all the pageblocks have one type the block is freed whole. The
        pieces would merge straight back into it, and its list position is the same,
        but the pages inside are left as they were rather than with the stale `order`
        of a piece that was briefly a head."""
        pb = self.pageblock_order
        types = {self.get_mt(q) for q in range(pfn, pfn + (1 << order), 1 << pb)}
        if order > pb and len(types) > 1:
            for q in range(pfn, pfn + (1 << order), 1 << pb):
                self._free_one_page(q, pb, self.get_mt(q))
        else:
            self._free_one_page(pfn, order, self.get_mt(pfn))

    def _free_one_page(self, pfn, order, mt):
        """__free_one_page(): merge `pfn` (a block of 2^order pages, aligned, in a
        pageblock of type `mt`) with its free buddies for as long as they are free heads
        of the same order in the same zone and node (page_is_buddy()), up to
        MAX_PAGE_ORDER; then list the result under `mt`.

        The buddy of a block of order k at pfn p is p ^ 2^k (__find_buddy_pfn()); the merged
        block starts at p & buddy. Below pageblock_order both halves are in one pageblock;
        from pageblock_order on, a buddy of another migratetype merges only if both types
        are mergeable (migratetype_is_mergeable(); so ISOLATE, HIGHATOMIC and CMA blocks
        stay apart from the rest), and its pageblocks then take `mt`
        (change_pageblock_range(): "Match buddy type. This ensures that an expand() down
        the line puts the sub-blocks on the right freelists.").
        """
        zone = self._zone_bits(pfn)
        while order < self.nr_orders - 1:
            buddy = pfn ^ (1 << order)
            if not self._is_head(buddy, order) or self._zone_bits(buddy) != zone:
                break
            buddy_mt = mt
            if order >= self.pageblock_order:
                buddy_mt = self.get_mt(buddy)
                if buddy_mt != mt and not (migratetype_is_mergeable(mt)
                                           and migratetype_is_mergeable(buddy_mt)):
                    break
            self.remove(buddy)
            if buddy_mt != mt:
                self.retag_range(buddy, 1 << order, mt)
            pfn &= buddy
            order += 1
        self.add(pfn, order, mt)

    def free_pages(self, pfn):
        """__free_pages() of the allocated block headed at `pfn`, its order read from the
        head: every page loses its PG_* bits (zone and node bits stay), refcount, owner
        and order, then free_the_page(): orders the pcp lists hold go to
        free_unref_page() (MIGRATE_ISOLATE straight to the buddy, HIGHATOMIC and CMA on
        the movable list), the others to free_one_page(). Returns its pages."""
        order = int(self._order[pfn])
        end = pfn + (1 << order)
        self._flags[pfn:end] &= np.uint32(ZONE_NODE_BITS)
        self._ref[pfn:end] = 0
        self._private[pfn:end] = 0
        self._order[pfn:end] = 0
        if self.pcp_allowed_order(order):
            mt = self.get_mt(pfn)
            if mt != MIGRATE_ISOLATE:
                self._order[pfn] = order
                self.free_unref_page_commit(pfn, mt if mt < MIGRATE_PCPTYPES else MIGRATE_MOVABLE,
                                            order)
                return 1 << order
        self.free_one_page(pfn, order)
        return 1 << order

    # ---- the per-cpu lists: mm/page_alloc.c, v6.1 and v6.7+ (pcp_autotune) -----------
    def pcp_allowed_order(self, order):
        """pcp_allowed_order(): up to PAGE_ALLOC_COSTLY_ORDER, and pageblock_order (THP)."""
        return order <= PAGE_ALLOC_COSTLY_ORDER or order == self.pageblock_order

    def order_to_pindex(self, mt, order):
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS + (mt == MIGRATE_MOVABLE)
        return MIGRATE_PCPTYPES * order + mt

    def pindex_to_order(self, pindex):
        return self.pageblock_order if pindex >= NR_LOWORDER_PCP_LISTS else pindex // MIGRATE_PCPTYPES

    def rmqueue_bulk(self, order, count, mt, pindex):
        """rmqueue_bulk(): up to `count` __rmqueue() to the tail of the list (no
        watermark). The pages are left as rmqueue() leaves them: unreferenced, untyped,
        no list slot; the head's `order` is not kept (the list's pindex gives it)."""
        n = 0
        while n < count:
            pfn = self.rmqueue(order, mt)
            if pfn < 0:
                break
            self.pcp_heads[pindex].append(pfn)
            n += 1
        return n

    def nr_pcp_alloc(self, order):
        """The blocks one refill asks for (v6.1: __rmqueue_pcplist(); v6.7+:
        nr_pcp_alloc(), which also tunes pcp->high and alloc_factor)."""
        pcp = self.pcp
        base_batch = batch = pcp["batch"]
        if not self.pcp_autotune:
            return max(batch >> order, 2) if batch > 1 else batch
        high = pcp["high"] = clamp(pcp["high"], pcp["high_min"], pcp["high_max"])
        if high < base_batch:
            return 1
        batch = base_batch if order else base_batch << pcp["alloc_factor"]
        if pcp["high_min"] != pcp["high_max"] and not self.below_high:
            high = pcp["high"] = min(high + batch, pcp["high_max"])
        if not order:
            max_nr_alloc = max(high - pcp["count"] - base_batch, base_batch)
            if batch <= max_nr_alloc and pcp["alloc_factor"] < PCP_BATCH_SCALE_MAX:
                pcp["alloc_factor"] += 1
            batch = min(batch, max_nr_alloc)
        return max(batch >> order, 2) if batch > 1 else batch

    def rmqueue_pcplist_calls(self, order, mt, count, keep_free):
        """`count` get_page_from_freelist() calls of one zone for blocks the pcp lists
        hold, one by one: the watermark test on NR_FREE_PAGES (v6.7+: at or below the
        high mark sets ZONE_BELOW_HIGH), then rmqueue_pcplist(): the list head, refilled
        first when empty. Returns the head pfns (not yet prepared)."""
        pcp = self.pcp
        pindex = self.order_to_pindex(mt, order)
        lst = self.pcp_heads[pindex]
        out = []
        while len(out) < count:
            free_now = self.nr_free_pages()
            if not free_now - (1 << order) + 1 > keep_free:
                break
            keep_high = keep_free - self.wmark_min + self.wmark_high
            if self.pcp_autotune and not self.below_high and \
                    free_now - (1 << order) + 1 <= keep_high:
                self.below_high = True
            if self.pcp_autotune:
                pcp["free_count"] >>= 1
            else:
                pcp["free_factor"] >>= 1
            if not lst:
                got = self.rmqueue_bulk(order, self.nr_pcp_alloc(order), mt, pindex)
                pcp["count"] += got << order
                if not lst:
                    break
            out.append(lst.pop(0))
            pcp["count"] -= 1 << order
        return out

    def free_pcppages_bulk(self, count, pindex):
        """free_pcppages_bulk(): `count` pages from the tails of the lists, the one at
        `pindex` first, each block under its pageblock's migratetype."""
        pcp = self.pcp
        count = min(count, pcp["count"])
        pindex -= 1
        while count > 0:
            while True:
                pindex = pindex + 1 if pindex < NR_PCP_LISTS - 1 else 0
                if self.pcp_heads[pindex]:
                    break
            order = self.pindex_to_order(pindex)
            lst = self.pcp_heads[pindex]
            while True:
                pfn = lst.pop()
                count -= 1 << order
                pcp["count"] -= 1 << order
                self.free_one_page(pfn, order)
                if count <= 0 or not lst:
                    break

    def nr_pcp_high(self, batch, free_high):
        pcp = self.pcp
        if not self.pcp_autotune:
            return 0 if not pcp["high"] or free_high else pcp["high"]
        high = pcp["high"] = clamp(pcp["high"], pcp["high_min"], pcp["high_max"])
        if not high:
            return 0
        if free_high:
            pcp["high"] = max(high - (batch << PCP_BATCH_SCALE_MAX), pcp["high_min"])
            return 0
        if pcp["high_min"] == pcp["high_max"]:
            return high
        if self.below_high:
            pcp["high"] = max(high - max(pcp["free_count"], batch), pcp["high_min"])
            high = max(pcp["count"], pcp["high_min"])
        elif pcp["count"] >= high:
            need_high = pcp["free_count"] + batch
            if pcp["high"] < need_high:
                pcp["high"] = clamp(need_high, pcp["high_min"], pcp["high_max"])
        return high

    def nr_pcp_free(self, batch, high, free_high):
        pcp = self.pcp
        if free_high:
            return pcp["count"] if not self.pcp_autotune else \
                min(pcp["count"], batch << PCP_BATCH_SCALE_MAX)
        if high < batch:
            return 1
        min_nr_free, max_nr_free = batch, high - batch
        if self.pcp_autotune:
            return clamp(pcp["free_count"], min_nr_free, max_nr_free)
        batch <<= pcp["free_factor"]
        if batch < max_nr_free and pcp["free_factor"] < PCP_BATCH_SCALE_MAX:
            pcp["free_factor"] += 1
        return clamp(batch, min_nr_free, max_nr_free)

    def free_unref_page_commit(self, pfn, mt, order):
        """free_unref_page_commit(): to the head of the list; at pcp->high, the bulk
        free (PCPF_FREE_HIGH_BATCH taken as set, as in the Cython class)."""
        pcp = self.pcp
        pindex = self.order_to_pindex(mt, order)
        batch = pcp["batch"]
        if self.pcp_autotune:
            pcp["alloc_factor"] >>= 1
        self.pcp_heads[pindex].insert(0, pfn)
        pcp["count"] += 1 << order
        free_high = False
        if not self.pcp_autotune:
            free_high = bool(pcp["free_factor"] and order and order <= PAGE_ALLOC_COSTLY_ORDER)
        else:
            if order and order <= PAGE_ALLOC_COSTLY_ORDER:
                free_high = (pcp["free_count"] >= batch
                             and bool(pcp["flags"] & PCPF_PREV_FREE_HIGH_ORDER)
                             and pcp["count"] >= batch)
                pcp["flags"] |= PCPF_PREV_FREE_HIGH_ORDER
            else:
                pcp["flags"] &= ~PCPF_PREV_FREE_HIGH_ORDER
            if pcp["free_count"] < (batch << PCP_BATCH_SCALE_MAX):
                pcp["free_count"] += 1 << order
        high = self.nr_pcp_high(batch, free_high)
        if pcp["count"] >= high:
            self.free_pcppages_bulk(self.nr_pcp_free(batch, high, free_high), pindex)
            if self.pcp_autotune and self.below_high and \
                    self.nr_free_pages() > self.wmark_high + self.reserve_movable:
                self.below_high = False

    def py_decay_pcp_high(self):
        """decay_pcp_high() (v6.7+): high down by an eighth, bounded below by count -
        batch << 5 and high_min; what lies above it drained a batch at a time."""
        if not self.pcp_autotune:
            return False
        pcp, todo = self.pcp, False
        if pcp["high"] > pcp["high_min"]:
            pcp["high"] = max(pcp["count"] - (pcp["batch"] << PCP_BATCH_SCALE_MAX),
                              pcp["high"] - (pcp["high"] >> 3), pcp["high_min"])
            todo = pcp["high"] > pcp["high_min"]
        to_drain = pcp["count"] - pcp["high"]
        while to_drain > 0:
            k = min(to_drain, pcp["batch"])
            self.free_pcppages_bulk(k, 0)
            todo = True
            to_drain -= k
        return todo

    def drain_pages(self):
        """drain_pages_zone(): every pcp page back to the buddy; returns how many."""
        n = self.pcp["count"]
        self.free_pcppages_bulk(n, 0)
        return n

    def drain_zone_pages(self):
        """drain_zone_pages(): free_pcppages_bulk() of min(count, batch) pages; returns
        the pages given back."""
        n = self.pcp["count"]
        if min(n, self.pcp["batch"]) > 0:
            self.free_pcppages_bulk(min(n, self.pcp["batch"]), 0)
        return n - self.pcp["count"]

    def pageset_update(self, high_min, high_max, batch):
        if batch < 1:
            raise ValueError(f"pcp batch {batch} < 1")
        self.pcp.update(batch=batch, high_min=high_min, high_max=high_max)
        if not self.pcp_autotune:
            self.pcp["high"] = high_min

    def per_cpu_pages_init(self):
        if self.pcp["count"]:
            raise ValueError(f"per_cpu_pages_init: {self.pcp['count']} pages on the lists")
        self.pcp.update(count=0, high=0, high_min=0, high_max=0, batch=1, free_count=0,
                        free_factor=0, alloc_factor=0, flags=0)
        self.below_high = False

    def pcp_state(self):
        p = self.pcp
        return (p["count"], p["high"], p["high_min"], p["high_max"], p["batch"],
                p["free_count"], p["free_factor"], p["alloc_factor"], p["flags"])

    @property
    def pcp_count(self):
        return self.pcp["count"]

    def pcp_lists(self):
        return {i: np.array(h, dtype=np.int64) for i, h in enumerate(self.pcp_heads) if h}

    def pcp_list_order(self, pindex):
        return self.pindex_to_order(pindex)

    def free_bulk(self, pfns):
        """free_pages() of each head in `pfns`, in order. Returns the pages freed."""
        return sum(self.free_pages(int(p)) for p in pfns)

    def free_aligned(self, lo, hi, max_order):
        """[lo, hi) to free_one_page() in the largest naturally aligned chunks, none above
        `max_order` (the loop of __free_pages_memory() / free_contig_range())."""
        while lo < hi:
            k = 0
            while k < max_order and lo % (2 << k) == 0 and lo + (2 << k) <= hi:
                k += 1
            self.free_one_page(lo, k)
            lo += 1 << k

    # ---- allocating -----------------------------------------------------------------
    def expand(self, pfn, low, high, mt):
        """expand(): a block of order `high` at `pfn` is cut down to order `low`; each
        upper half, largest first (pfn + 2^(high-1), then pfn + 2^(high-2), ...), goes to
        the (mt, its order) list. The lower part, from `pfn`, is what is handed out."""
        while high > low:
            high -= 1
            self.add(pfn + (1 << high), high, mt)

    def rmqueue_smallest(self, order, mt):
        """__rmqueue_smallest(): the head of the first non-empty list of `mt` at order
        `order` or above, cut down with expand(). Returns the pfn, or -1."""
        for o in range(order, self.nr_orders):
            pfn = self.pop(o, mt)
            if pfn >= 0:
                self.expand(pfn, order, o, mt)
                return pfn
        return -1

    def rmqueue(self, order, mt):
        """__rmqueue(): __rmqueue_smallest() of `mt`, else (pcp types only) the fallback
        path of __rmqueue_claim() / __rmqueue_fallback(): from the largest order down to
        `order`, the first fallback type (FALLBACKS, find_suitable_fallback()) with a free
        block at that order gives the block at its list head:
          * order >= pageblock_order (try_to_steal_block(), try_to_claim_block() in later
            kernels; whole-range ownership since v6.10): the block is taken
            whole, all its pageblocks are retagged `mt` (change_pageblock_range()) and it
            is cut down with expand() onto `mt`'s lists;
          * order >= pageblock_order / 2, or `mt` not MOVABLE (can_steal_fallback()): the
            block's pageblock is claimed for `mt` (move_freepages_block()) and the
            allocation retried with __rmqueue_smallest();
          * else the block is taken and cut down onto the fallback type's lists
            (__rmqueue_steal()).
        Returns the pfn, or -1.

        pagecore differs: the kernel claims a pageblock below pageblock_order only when at
        least half its pages are free or alike (try_to_steal_block()), and otherwise tries
        the next lower order; pagecore always claims. When the kernel cannot claim it
        steals the smallest fallback block (__rmqueue_steal(); find_smallest in older
        kernels); pagecore takes the block found at the largest order.
        """
        pfn = self.rmqueue_smallest(order, mt)
        if pfn >= 0 or mt > MIGRATE_RECLAIMABLE:
            return pfn
        for o in range(self.nr_orders - 1, order - 1, -1):      # largest first
            for fmt in FALLBACKS[mt]:
                if not self.lists[fmt][o]:
                    continue
                pfn = self.lists[fmt][o][-1]                    # the list head
                if o >= self.pageblock_order:
                    self.remove(pfn)
                    self.retag_range(pfn, 1 << o, mt)
                    self.expand(pfn, order, o, mt)
                    return pfn
                if o >= self.pageblock_order // 2 or mt != MIGRATE_MOVABLE:
                    self.claim_blocks(pfn, o, mt)
                    return self.rmqueue_smallest(order, mt)
                self.remove(pfn)
                self.expand(pfn, order, o, fmt)
                return pfn
        return -1

    def retag_range(self, pfn, nr_pages, mt):
        """change_pageblock_range(): store `mt` as the migratetype of every whole
        pageblock of [pfn, pfn + nr_pages); other pageblock bits (skip, isolate) stay."""
        pb = self.pageblock_order
        for b in range(pfn >> pb, (pfn + nr_pages) >> pb):
            self.pageblock_flags[b] = (int(self.pageblock_flags[b]) & ~MIGRATETYPE_MASK) | mt

    def claim_blocks(self, pfn, order, mt):
        """The claiming half of try_to_steal_block() below pageblock_order: every
        pageblock the block [pfn, pfn + 2^order) touches (at least its own) goes to `mt`
        with move_freepages_block()."""
        pb = self.pageblock_order
        start = pfn >> pb << pb
        end = max(pfn + (1 << order), start + (1 << pb))
        for p in range(start, end, 1 << pb):
            self.move_freepages_block(p, mt)

    def alloc_blocks(self, order, mt, count, page_flags, owner, keep_free):
        """rmqueue() up to `count` blocks of `order` for `mt` while the zone keeps more
        than `keep_free` free pages afterwards (__zone_watermark_ok(): free - 2^order + 1 >
        min + lowmem_reserve; the caller passes min + reserve, and `free` is counted once
        and then decremented). Each page of an allocated block gets refcount 1, its zone
        and node bits | `page_flags`, `owner` in private and the block's order; above
        order 0 the block is a folio (PG_head on the first page, PG_tail on the others).
        Returns the head pfns.

        The orders the pcp lists hold go call by call through rmqueue_pcplist_calls().
        Otherwise one rmqueue() per block, as written. The Cython class hands out each block it
        takes off a list as a run of consecutive blocks (rmqueue_bulk() style:
        rmqueue_split_run()) and may write the pages later in pfn order; this loop is
        what it must equal, list slots included."""
        if self.pcp_allowed_order(order) and mt < MIGRATE_PCPTYPES:
            heads = self.rmqueue_pcplist_calls(order, mt, count, keep_free)
        else:
            heads = []
            free_now = self.nr_free_pages()
            while len(heads) < count and free_now - (1 << order) + 1 > keep_free:
                pfn = self.rmqueue(order, mt)
                if pfn < 0:
                    break
                heads.append(pfn)
                free_now -= 1 << order
        for pfn in heads:
            end = pfn + (1 << order)
            bits = self._flags[pfn:end] & np.uint32(ZONE_NODE_BITS)
            self._flags[pfn:end] = bits | np.uint32(page_flags)
            if order:
                self._flags[pfn] |= np.uint32(PG_head)
                self._flags[pfn + 1:end] |= np.uint32(PG_tail)
            self._type[pfn:end] = PGTY_NONE
            self._order[pfn:end] = order
            self._ref[pfn:end] = 1
            self._private[pfn:end] = owner
        return heads

    def alloc_bulk(self, order, mt, count, page_flags, owner, keep_free, out):
        """alloc_blocks() into `out`; returns how many (the Cython face, same checks)."""
        if not 0 <= order < self.nr_orders:
            raise ValueError(f"order={order} outside 0..{self.nr_orders - 1}")
        if not 0 <= mt < MIGRATE_ISOLATE:
            raise ValueError(f"migratetype {mt} cannot be allocated from")
        if count > out.shape[0]:
            raise ValueError(f"count={count} > len(out)={out.shape[0]}")
        if count <= 0:
            return 0
        heads = self.alloc_blocks(order, mt, count, page_flags, owner, keep_free)
        out[:len(heads)] = heads
        return len(heads)

    # ---- pageblocks and isolation: mm/page_alloc.c, mm/page_isolation.c -------------
    def split_large_buddy_at(self, pfn):
        """find_large_buddy() + split_large_buddy(): a free block of order above
        pageblock_order that covers `pfn` is taken off its list and cut into
        pageblock-sized blocks, each freed again with free_one_page() (__free_one_page())
        under its own pageblock's migratetype, in ascending pfn order, so that the pieces
        that may merge merge again. The caller has set the pageblock's new type first
        (move_freepages_block_isolate()). Returns 1 if there was such a block, else 0."""
        pb = self.pageblock_order
        for o in range(pb + 1, self.nr_orders):
            head = pfn >> o << o
            if self._is_head(head, o):
                self.remove(head)
                for q in range(head, head + (1 << o), 1 << pb):
                    self.free_one_page(q, pb)
                return 1
        return 0

    def move_freepages_block(self, pfn, mt):
        """move_freepages_block_isolate() / set_pageblock_migratetype() +
        __move_freepages_block(): the pageblock of `pfn` is retagged, a free block larger
        than a pageblock covering it is split (split_large_buddy_at()), and each free
        block of the pageblock moves to the list of its order under `mt`.
        MIGRATE_ISOLATE sets the standalone isolate bit and keeps the stored type; any
        other `mt` clears the bit and stores `mt` (v6.16+, "page isolation as a standalone
        bit"), so undoing isolation restores the pageblock's own type.
        Returns the free pages in the pageblock (moved or already on `mt`'s lists)."""
        pb = self.pageblock_order
        start = pfn >> pb << pb
        f = int(self.pageblock_flags[start >> pb])
        if mt == MIGRATE_ISOLATE:
            f |= PB_migrate_isolate
        else:
            f = (f & ~(MIGRATETYPE_MASK | PB_migrate_isolate)) | mt
        self.pageblock_flags[start >> pb] = f         # the type first, then the split
        self.split_large_buddy_at(start)
        moved, p = 0, start
        while p < start + (1 << pb):
            if self._type[p] == PGTY_BUDDY:
                o = int(self._order[p])
                if int(self._private[p]) & 7 != mt:
                    self.remove(p)
                    self.add(p, o, mt)
                moved += 1 << o
                p += 1 << o
            else:
                p += 1
        return moved

    def unset_migratetype_isolate(self, pfn):
        """unset_migratetype_isolate() (mm/page_isolation.c): the pageblock of `pfn` goes
        back to its stored migratetype (move_freepages_block()), and a free block of
        exactly pageblock order at its start is freed again (__isolate_free_page() +
        __putback_isolated_page() -> __free_one_page()) so that it merges with what
        isolation kept it from. Returns the free pages of the pageblock.

        pagecore differs, without effect on the result: the kernel re-frees only when the
        block has a buddy outside isolation; re-freeing a block that cannot merge lists
        it where move_freepages_block() had put it."""
        pb = self.pageblock_order
        start = pfn >> pb << pb
        f = int(self.pageblock_flags[pfn >> pb])
        moved = self.move_freepages_block(pfn, f & MIGRATETYPE_MASK)
        if self._is_head(start, pb):
            self.remove(start)
            self.free_one_page(start, pb)
        return moved

    # ---- taking given pages off the lists (alloc_contig_range() rollback) -----------
    def claim_range(self, start, nr_pages):
        """Take [start, start + nr_pages) off the free lists: the free block holding the
        whole range (the largest order first) is removed and the parts of it outside the
        range go back with free_aligned() (as __isolate_free_page() + split, then
        freeing the rest). Returns 0, or 1 (changing nothing) when no one free block
        holds the range. pagecore only: used to undo a migration."""
        end = start + nr_pages
        for o in range(self.nr_orders - 1, -1, -1):
            head = start >> o << o
            if self._is_head(head, o) and head + (1 << o) >= end:
                self.remove(head)
                self.free_aligned(head, start, o)
                self.free_aligned(end, head + (1 << o), o)
                return 0
        return 1

    def claim_ranges(self, starts, nr_pages):
        """claim_range() of each [starts[i], starts[i] + nr_pages), in order, up to the
        first that fails: returns its index, or -1 when all were claimed."""
        for i, s in enumerate(starts):
            if self.claim_range(int(s), nr_pages):
                return i
        return -1

    # ---- the Python face of the Cython class ----------------------------------------
    def counts(self):
        """Free blocks per (migratetype, order): the rows of /proc/pagetypeinfo."""
        out = np.zeros((MIGRATE_TYPES, self.nr_orders), dtype=np.int64)
        for mt in range(MIGRATE_TYPES):
            for o in range(self.nr_orders):
                out[mt, o] = len(self.lists[mt][o])
        return out

    def nr_free_pages(self, include_isolated=False):
        """NR_FREE_PAGES of the zone: free pages outside isolated pageblocks."""
        return sum(len(self.lists[mt][o]) << o for mt in range(MIGRATE_TYPES)
                   for o in range(self.nr_orders)
                   if include_isolated or mt != MIGRATE_ISOLATE)

    def blocks(self, mt, order):
        """The pfns on one list, in list order."""
        return np.array(self.lists[mt][order], dtype=np.int64)

    def snapshot(self):
        """A comparable image of every list (as sorted pfn arrays)."""
        return {(mt, o): np.sort(self.blocks(mt, o)).tobytes()
                for mt in range(MIGRATE_TYPES) for o in range(self.nr_orders)
                if self.lists[mt][o]}

    py_add = add
    py_add_listed = add_listed
    py_remove = remove
    py_free_one_page = free_one_page
    py_rmqueue = rmqueue
    py_move_freepages_block = move_freepages_block
    py_unset_migratetype_isolate = unset_migratetype_isolate
