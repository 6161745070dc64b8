# 64-page block tests of the isolation scans (pagecore/_kernels.pyx): has_unmovable_pages()
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
# Byte layout relied on (little-endian, pagecore/_page.pxd): flags at 0..3, page_type 4,
# order 5, refcount 6..7. The flag and type constants below are checked against
# _page.pxd when _kernels is imported.
#
# All functions: noexcept nogil (no Python objects, no failure).
from pagecore._types cimport uint8_t, uint32_t, uint64_t, int64_t
from pagecore._page cimport page_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__) || defined(_M_X64)
    #include <emmintrin.h>
    #define PC_BLK_SIMD 1
    #else
    #define PC_BLK_SIMD 0
    #endif

    #define PC_BLK 64
    #define PC_PG_RESERVED 0x01u
    #define PC_PG_LRU 0x02u
    #define PC_PG_HEAD 0x04u
    #define PC_PG_MOVABLE 0x08u
    #define PC_PG_TAIL 0x40u
    #define PC_PG_ISOLATED 0x80u
    #define PC_PGTY_BUDDY 1u
    #define PC_PGTY_OFFLINE 2u
    #define PC_PGTY_VMEMMAP 3u

    /* pc_blk_fit[r]: largest order of a free block headed at offset r that ends inside
       the block (r + 2^o <= 64): the step of a buddy head stays in the block.
       pc_blk_align[r]: largest order a naturally aligned block at r can have inside the
       block, min(ctz(r), 6). The per-lane limits of pc_blk_hup/pc_blk_smp are bytes
       (type, order, refcount lo, refcount hi) of one page word. Filled by
       pc_blk_init(), which _kernels calls when imported. */
    static uint8_t pc_blk_fit[PC_BLK], pc_blk_align[PC_BLK];
    static uint32_t pc_blk_lim_hup[PC_BLK], pc_blk_lim_smp[PC_BLK];

    static void pc_blk_init(void) {
        int r, o;
        for (r = 0; r < PC_BLK; r++) {
            for (o = 0; r + (2 << o) <= PC_BLK; o++) {}
            pc_blk_fit[r] = (uint8_t) o;
            for (o = 0; o < 6 && !(r & (1 << o)); o++) {}
            pc_blk_align[r] = (uint8_t) o;
            pc_blk_lim_hup[r] = PC_PGTY_BUDDY | ((uint32_t) pc_blk_fit[r] << 8);
            pc_blk_lim_smp[r] = PC_PGTY_OFFLINE | ((uint32_t) pc_blk_fit[r] << 8) | 0xffff0000u;
        }
    }

    static inline uint32_t pc_w_flags(const unsigned char *pg) {
        uint32_t v; memcpy(&v, pg, 4); return v;
    }
    static inline uint16_t pc_w_ref(const unsigned char *pg) {
        uint16_t v; memcpy(&v, pg + 6, 2); return v;
    }

    /* ---- scalar twins: the rules, page by page ------------------------------------- */

    /* has_unmovable_pages() (mm/page_isolation.c), not ZONE_MOVABLE (hup_step() in
       _kernels.pyx): every page not reserved and not compound, of type NONE or BUDDY,
       its order within pc_blk_fit (a buddy head's step stays in the block; other pages'
       order is not read by the scan, so this is conservative), and refcount 0 (a free
       page: step 1 or 2^order) unless LRU or __PageMovable (step 1). HWPoison and
       PageOffline pages, tolerated with MEMORY_OFFLINE, are left to the per-page loop. */
    static inline int pc_blk_hup_scalar(const void *pages) {
        const unsigned char *p = (const unsigned char *) pages;
        uint32_t bad = 0, f;
        int r;
        for (r = 0; r < PC_BLK; r++, p += 16) {
            f = pc_w_flags(p);
            bad |= (f & (PC_PG_RESERVED | PC_PG_HEAD | PC_PG_TAIL)) | (p[4] > PC_PGTY_BUDDY)
                   | (p[5] > pc_blk_fit[r])
                   | ((pc_w_ref(p) != 0) & ((f & (PC_PG_LRU | PC_PG_MOVABLE)) == 0));
        }
        return bad == 0;
    }

    /* has_unmovable_pages() (mm/page_isolation.c) in ZONE_MOVABLE: every page a step
       of one - not reserved, not a vmemmap page (exact). */
    static inline int pc_blk_hup_movable_scalar(const void *pages) {
        const unsigned char *p = (const unsigned char *) pages;
        uint32_t bad = 0;
        int r;
        for (r = 0; r < PC_BLK; r++, p += 16)
            bad |= (pc_w_flags(p) & PC_PG_RESERVED) | (p[4] == PC_PGTY_VMEMMAP);
        return bad == 0;
    }

    /* scan_movable_pages() (mm/memory_hotplug.c; smp_step() in _kernels.pyx): no page
       LRU, __PageMovable or compound; type NONE, BUDDY or OFFLINE; order within
       pc_blk_fit (conservative as above); an OFFLINE page unreferenced (a referenced
       one is -EBUSY). Slab and page-table pages, passed by the kernel, are left to the
       per-page loop. */
    static inline int pc_blk_smp_scalar(const void *pages) {
        const unsigned char *p = (const unsigned char *) pages;
        uint32_t bad = 0;
        int r;
        for (r = 0; r < PC_BLK; r++, p += 16)
            bad |= (pc_w_flags(p) & (PC_PG_LRU | PC_PG_MOVABLE | PC_PG_HEAD | PC_PG_TAIL))
                   | (p[4] > PC_PGTY_OFFLINE) | (p[5] > pc_blk_fit[r])
                   | ((p[4] == PC_PGTY_OFFLINE) & (pc_w_ref(p) != 0));
        return bad == 0;
    }

    /* test_pages_isolated() (mm/page_isolation.c, __test_page_isolated_in_pageblock();
       tpi_step() in _kernels.pyx) entering the block at offset `entry`. Here the
       interior pages of a free block are offenders if visited, so the test follows the
       scan's trajectory with bitmaps instead of judging every page. heads = free block
       heads at or after the entry; each must be naturally aligned inside the block
       (order <= pc_blk_align, so at most 6: three order bits o0..o2 suffice). Then the
       scan, jumping 2^order from each head it meets, visits exactly the pages at or
       after the entry outside the interiors of these heads (aligned blocks nest or are
       disjoint, so a head it jumps over lies inside the block of one it met); each of
       those must be a head or an unreferenced PageOffline page (step 1), and the scan
       leaves at the block's end. HWPoison pages, also a step of one in the kernel, are
       left to the per-page loop. Interiors: an aligned order-k head at bit h covers bits
       h+1 .. h+2^k-1, i.e. its bit times 2^(2^k) - 2, with no carry between heads. */
    static inline int pc_blk_tpi_decide(uint64_t bd, uint64_t ok, uint64_t o0, uint64_t o1,
                                        uint64_t o2, uint64_t fit, int entry) {
        uint64_t ge = ~(uint64_t) 0 << entry, heads = bd & ge, in;
        if (heads & ~fit)
            return 0;
        in = (heads & o0 & ~o1 & ~o2) * 0x2u
           | (heads & ~o0 & o1 & ~o2) * 0xeu
           | (heads & o0 & o1 & ~o2) * 0xfeu
           | (heads & ~o0 & ~o1 & o2) * 0xfffeu
           | (heads & o0 & ~o1 & o2) * 0xfffffffeull
           | (heads & ~o0 & o1 & o2) * 0xfffffffffffffffeull;
        return (ge & ~in & ~ok) == 0;
    }

    static inline int pc_blk_tpi_scalar(const void *pages, int entry) {
        const unsigned char *p = (const unsigned char *) pages;
        uint64_t bd = 0, ok = 0, o0 = 0, o1 = 0, o2 = 0, fit = 0, bit;
        int32_t w;
        uint16_t s;
        int r, t, o;
        for (r = 0; r < PC_BLK; r++, p += 16) {
            bit = (uint64_t) 1 << r;
            /* the word packed with signed saturation, as pc_blk_tpi() does: a page with a
               refcount (or an order >= 128) reads as neither a head nor tolerated */
            w = (int32_t) ((uint32_t) p[4] | (uint32_t) p[5] << 8
                           | (uint32_t) pc_w_ref(p) << 16);
            s = (uint16_t) (int16_t) (w > 32767 ? 32767 : (w < -32768 ? -32768 : w));
            t = s & 0xff;
            o = s >> 8;
            bd |= (t == PC_PGTY_BUDDY) ? bit : 0;
            ok |= (t == PC_PGTY_BUDDY || t == PC_PGTY_OFFLINE) ? bit : 0;
            o0 |= (o & 1) ? bit : 0;
            o1 |= (o & 2) ? bit : 0;
            o2 |= (o & 4) ? bit : 0;
            fit |= (o <= pc_blk_align[r]) ? bit : 0;
        }
        return pc_blk_tpi_decide(bd, ok, o0, o1, o2, fit, entry);
    }

    /* ---- SSE2 ------------------------------------------------------------------------ */
    #if PC_BLK_SIMD
    /* Pages r..r+3 at p: *f = their flags, *h = their "type | order << 8 | ref << 16". */
    static inline void pc_blk_load4(const unsigned char *p, __m128i *f, __m128i *h) {
        __m128i p0 = _mm_loadu_si128((const __m128i *) p);
        __m128i p1 = _mm_loadu_si128((const __m128i *) (p + 16));
        __m128i p2 = _mm_loadu_si128((const __m128i *) (p + 32));
        __m128i p3 = _mm_loadu_si128((const __m128i *) (p + 48));
        __m128 x = _mm_castsi128_ps(_mm_unpacklo_epi64(p0, p1));     /* f0 h0 f1 h1 */
        __m128 y = _mm_castsi128_ps(_mm_unpacklo_epi64(p2, p3));     /* f2 h2 f3 h3 */
        *f = _mm_castps_si128(_mm_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0)));
        *h = _mm_castps_si128(_mm_shuffle_ps(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
    }

    static inline int pc_blk_allzero(__m128i v) {
        return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) == 0xffff;
    }

    /* pc_blk_hup_scalar(): the refcount bytes' limit is 0xffff for LRU/movable pages, 0
       otherwise; one saturating byte subtraction checks type, order and refcount. */
    static inline int pc_blk_hup(const void *pages) {
        const unsigned char *p = (const unsigned char *) pages;
        const __m128i mov = _mm_set1_epi32(PC_PG_LRU | PC_PG_MOVABLE);
        const __m128i anyref = _mm_set1_epi32((int) 0xffff0000u), zero = _mm_setzero_si128();
        __m128i f, h, lim, accf = zero, acch = zero;
        int r;
        for (r = 0; r < PC_BLK; r += 4, p += 64) {
            pc_blk_load4(p, &f, &h);
            lim = _mm_andnot_si128(_mm_cmpeq_epi32(_mm_and_si128(f, mov), zero), anyref);
            lim = _mm_or_si128(lim, _mm_loadu_si128((const __m128i *) (pc_blk_lim_hup + r)));
            accf = _mm_or_si128(accf, f);
            acch = _mm_or_si128(acch, _mm_subs_epu8(h, lim));
        }
        accf = _mm_and_si128(accf, _mm_set1_epi32(PC_PG_RESERVED | PC_PG_HEAD | PC_PG_TAIL));
        return pc_blk_allzero(_mm_or_si128(accf, acch));
    }

    static inline int pc_blk_hup_movable(const void *pages) {
        const unsigned char *p = (const unsigned char *) pages;
        const __m128i tmask = _mm_set1_epi32(0xff), vm = _mm_set1_epi32(PC_PGTY_VMEMMAP);
        __m128i f, h, accf = _mm_setzero_si128(), accv = _mm_setzero_si128();
        int r;
        for (r = 0; r < PC_BLK; r += 4, p += 64) {
            pc_blk_load4(p, &f, &h);
            accf = _mm_or_si128(accf, f);
            accv = _mm_or_si128(accv, _mm_cmpeq_epi32(_mm_and_si128(h, tmask), vm));
        }
        accf = _mm_and_si128(accf, _mm_set1_epi32(PC_PG_RESERVED));
        return pc_blk_allzero(_mm_or_si128(accf, accv));
    }

    static inline int pc_blk_smp(const void *pages) {
        const unsigned char *p = (const unsigned char *) pages;
        const __m128i tmask = _mm_set1_epi32(0xff), off = _mm_set1_epi32(PC_PGTY_OFFLINE);
        const __m128i zero = _mm_setzero_si128();
        __m128i f, h, accf = zero, acch = zero, accr = zero;
        int r;
        for (r = 0; r < PC_BLK; r += 4, p += 64) {
            pc_blk_load4(p, &f, &h);
            accf = _mm_or_si128(accf, f);
            acch = _mm_or_si128(acch, _mm_subs_epu8(
                h, _mm_loadu_si128((const __m128i *) (pc_blk_lim_smp + r))));
            accr = _mm_or_si128(accr, _mm_and_si128(
                h, _mm_cmpeq_epi32(_mm_and_si128(h, tmask), off)));
        }
        accf = _mm_and_si128(accf, _mm_set1_epi32(PC_PG_LRU | PC_PG_MOVABLE | PC_PG_HEAD
                                                  | PC_PG_TAIL));
        accr = _mm_and_si128(accr, _mm_set1_epi32((int) 0xffff0000u));
        return pc_blk_allzero(_mm_or_si128(_mm_or_si128(accf, acch), accr));
    }

    /* pc_blk_tpi_scalar() with 16 pages per step: their words are packed with signed
       saturation into bytes of type and of order (a referenced page saturates to a type
       that is neither BUDDY nor OFFLINE), and each bitmap is a byte compare or shift and
       a movemask. */
    static inline int pc_blk_tpi(const void *pages, int entry) {
        const unsigned char *p = (const unsigned char *) pages;
        const __m128i lo = _mm_set1_epi16(0xff), one = _mm_set1_epi8(PC_PGTY_BUDDY);
        const __m128i two = _mm_set1_epi8(PC_PGTY_OFFLINE), zero = _mm_setzero_si128();
        __m128i f, h0, h1, h2, h3, wa, wb, ty, od, bd;
        uint64_t mbd = 0, mok = 0, m0 = 0, m1 = 0, m2 = 0, mfit = 0;
        int q;
        for (q = 0; q < 64; q += 16, p += 256) {
            pc_blk_load4(p, &f, &h0);
            pc_blk_load4(p + 64, &f, &h1);
            pc_blk_load4(p + 128, &f, &h2);
            pc_blk_load4(p + 192, &f, &h3);
            wa = _mm_packs_epi32(h0, h1);
            wb = _mm_packs_epi32(h2, h3);
            ty = _mm_packus_epi16(_mm_and_si128(wa, lo), _mm_and_si128(wb, lo));
            od = _mm_packus_epi16(_mm_srli_epi16(wa, 8), _mm_srli_epi16(wb, 8));
            bd = _mm_cmpeq_epi8(ty, one);
            mbd |= (uint64_t) (uint32_t) _mm_movemask_epi8(bd) << q;
            mok |= (uint64_t) (uint32_t) _mm_movemask_epi8(
                _mm_or_si128(bd, _mm_cmpeq_epi8(ty, two))) << q;
            m0 |= (uint64_t) (uint32_t) _mm_movemask_epi8(_mm_slli_epi16(od, 7)) << q;
            m1 |= (uint64_t) (uint32_t) _mm_movemask_epi8(_mm_slli_epi16(od, 6)) << q;
            m2 |= (uint64_t) (uint32_t) _mm_movemask_epi8(_mm_slli_epi16(od, 5)) << q;
            mfit |= (uint64_t) (uint32_t) _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_subs_epu8(
                od, _mm_loadu_si128((const __m128i *) (pc_blk_align + q))), zero)) << q;
        }
        return pc_blk_tpi_decide(mbd, mok, m0, m1, m2, mfit, entry);
    }
    #else
    #define pc_blk_hup pc_blk_hup_scalar
    #define pc_blk_hup_movable pc_blk_hup_movable_scalar
    #define pc_blk_smp pc_blk_smp_scalar
    #define pc_blk_tpi pc_blk_tpi_scalar
    #endif

    /* ---- compaction scanners' block bitmaps (pagecore/_compaction.pyx) -------------
       Not yes/no tests but per-page bitmaps of one aligned block of 64 pages, bit r for
       page r; their scalar twins are isolatable_heads_scalar() and
       free_block_heads_scalar() in _compaction.pyx. 16 pages per step: the page words
       are narrowed exactly (no saturation) to bytes of flags (bits 0..7: every flag the
       rules read), type and order, each rule is a byte operation whose sign bits a
       movemask turns into 16 bits of a bitmap. */
    #if PC_BLK_SIMD
    /* Pages r..r+15 at p: bytes of their flags (low byte), page_type and order. */
    static inline void pc_blk_bytes16(const unsigned char *p, __m128i *fl, __m128i *ty,
                                      __m128i *od) {
        const __m128i lo = _mm_set1_epi16(0xff), lo32 = _mm_set1_epi32(0xff);
        __m128i f0, f1, f2, f3, h0, h1, h2, h3, wa, wb;
        pc_blk_load4(p, &f0, &h0);
        pc_blk_load4(p + 64, &f1, &h1);
        pc_blk_load4(p + 128, &f2, &h2);
        pc_blk_load4(p + 192, &f3, &h3);
        *fl = _mm_packus_epi16(_mm_packs_epi32(_mm_and_si128(f0, lo32), _mm_and_si128(f1, lo32)),
                               _mm_packs_epi32(_mm_and_si128(f2, lo32), _mm_and_si128(f3, lo32)));
        /* type | order << 8 sign-extended from 16 bits: packs_epi32 keeps it exact */
        #define PC_SX16(v) _mm_srai_epi32(_mm_slli_epi32((v), 16), 16)
        wa = _mm_packs_epi32(PC_SX16(h0), PC_SX16(h1));
        wb = _mm_packs_epi32(PC_SX16(h2), PC_SX16(h3));
        #undef PC_SX16
        *ty = _mm_packus_epi16(_mm_and_si128(wa, lo), _mm_and_si128(wb, lo));
        *od = _mm_packus_epi16(_mm_srli_epi16(wa, 8), _mm_srli_epi16(wb, 8));
    }

    /* The migrate scanner (isolatable_heads() in _compaction.pyx): returns the pages it
       would isolate (not free; LRU or __PageMovable; neither isolated nor a tail; not a
       head of order >= skip_order), *jumps = free or compound pages of order >= 1,
       *bad != 0 when a page is a vmemmap page. Flag bit k of a byte is its sign bit after
       a shift left by 7 - k. */
    static inline uint64_t pc_blk_isolatable(const void *pages, uint32_t skip_order,
                                             uint64_t *jumps, uint32_t *bad) {
        const unsigned char *p = (const unsigned char *) pages;
        const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(PC_PGTY_BUDDY);
        const __m128i vm = _mm_set1_epi8(PC_PGTY_VMEMMAP);
        const __m128i so = _mm_set1_epi8((char) (skip_order > 255 ? 255 : skip_order));
        const __m128i sok = skip_order > 255 ? zero : _mm_cmpeq_epi8(zero, zero);
        __m128i fl, ty, od, isb, hd, cmp, ge, nok, accv = zero;
        uint64_t bits = 0, jmp = 0;
        int q;
        for (q = 0; q < PC_BLK; q += 16, p += 256) {
            pc_blk_bytes16(p, &fl, &ty, &od);
            isb = _mm_cmpeq_epi8(ty, one);
            accv = _mm_or_si128(accv, _mm_cmpeq_epi8(ty, vm));
            hd = _mm_slli_epi16(fl, 5);                                  /* PG_head */
            cmp = _mm_or_si128(hd, _mm_slli_epi16(fl, 1));               /* | PG_tail */
            jmp |= (uint64_t) (uint32_t) _mm_movemask_epi8(_mm_andnot_si128(
                _mm_cmpeq_epi8(od, zero), _mm_or_si128(isb, cmp))) << q;
            ge = _mm_and_si128(_mm_cmpeq_epi8(_mm_subs_epu8(so, od), zero), sok);
            nok = _mm_or_si128(_mm_or_si128(isb, fl),                    /* PG_isolated */
                               _mm_or_si128(_mm_slli_epi16(fl, 1),       /* PG_tail */
                                            _mm_and_si128(hd, ge)));
            bits |= (uint64_t) (uint32_t) _mm_movemask_epi8(_mm_andnot_si128(
                nok, _mm_or_si128(_mm_slli_epi16(fl, 6),                 /* PG_lru */
                                  _mm_slli_epi16(fl, 4)))) << q;         /* PG_movable */
        }
        *jumps = jmp;
        *bad = (uint32_t) _mm_movemask_epi8(accv);
        return bits;
    }

    /* The free scanner (free_block_heads() in _compaction.pyx): returns the free block
       heads, *big = those of order >= 1, *bad != 0 when a page is compound or a head is
       not naturally aligned inside the block (order > pc_blk_align). */
    static inline uint64_t pc_blk_free_heads(const void *pages, uint64_t *big,
                                             uint32_t *bad) {
        const unsigned char *p = (const unsigned char *) pages;
        const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(PC_PGTY_BUDDY);
        __m128i fl, ty, od, isb, acc = zero;
        uint64_t heads = 0, large = 0;
        int q;
        for (q = 0; q < PC_BLK; q += 16, p += 256) {
            pc_blk_bytes16(p, &fl, &ty, &od);
            isb = _mm_cmpeq_epi8(ty, one);
            acc = _mm_or_si128(acc, _mm_or_si128(
                _mm_and_si128(fl, _mm_set1_epi8((char) (PC_PG_HEAD | PC_PG_TAIL))),
                _mm_and_si128(isb, _mm_subs_epu8(
                    od, _mm_loadu_si128((const __m128i *) (pc_blk_align + q))))));
            heads |= (uint64_t) (uint32_t) _mm_movemask_epi8(isb) << q;
            large |= (uint64_t) (uint32_t) _mm_movemask_epi8(
                _mm_andnot_si128(_mm_cmpeq_epi8(od, zero), isb)) << q;
        }
        *big = large;
        *bad = (uint32_t) _mm_movemask_epi8(_mm_cmpeq_epi8(acc, zero)) ^ 0xffffu;
        return heads;
    }
    #else
    /* never called (the callers test PC_BLK_SIMD and use their scalar twins); if they
       were, "bad" sends the scan to its per-page loop */
    static inline uint64_t pc_blk_isolatable(const void *pages, uint32_t skip_order,
                                             uint64_t *jumps, uint32_t *bad) {
        (void) pages; (void) skip_order; *jumps = 0; *bad = 1; return 0;
    }
    static inline uint64_t pc_blk_free_heads(const void *pages, uint64_t *big,
                                             uint32_t *bad) {
        (void) pages; *big = 0; *bad = 1; return 0;
    }
    #endif

    /* Keep the stream through a stretch the scan jumps over (a folio, a free block
       larger than a block): one prefetch per cache line. Measured on the bench zone: a
       jump of a few hundred pages in the middle of a sequential scan costs ~1 us (the
       hardware prefetcher's stream restarts, latency bound), more than reading the
       pages jumped over (~0.5 ns per page). */
    static inline void pc_blk_stream(const void *pages, int64_t nr_pages) {
    #if defined(__GNUC__)
        const char *c = (const char *) pages;
        int64_t i;
        for (i = 0; i < nr_pages * 16; i += 64)
            __builtin_prefetch(c + i, 0, 3);
    #endif
    }
    """
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
    # SSE2 builds only (PC_BLK_SIMD): call under `if PC_BLK_SIMD`, which C folds away
    uint64_t pc_blk_isolatable(const page_t *pages, uint32_t skip_order, uint64_t *jumps,
                               uint32_t *bad) noexcept nogil
    uint64_t pc_blk_free_heads(const page_t *pages, uint64_t *big, uint32_t *bad) noexcept nogil
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
