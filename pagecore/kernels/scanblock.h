/* scanblock.h: the 64-page block tests of the isolation scans and the compaction
 * scanners' block view, in C with SSE2 / AVX-512 intrinsics. Declared for Cython in
 * scanblock.pxd, which says why these are C and what they promise.
 */
#ifndef PAGECORE_SCANBLOCK_H
#define PAGECORE_SCANBLOCK_H

#include <stdint.h>
#include <string.h>
#include <stddef.h>
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

/* The interiors of the naturally aligned blocks headed at the bits of h whose
   orders (1..6) are given by the order bits o0..o2: a head of order k at bit i
   covers bits i+1 .. i+2^k-1, i.e. its bit times 2^(2^k) - 2; heads of one order
   head disjoint blocks, so their products never carry into each other. Heads of
   order 0 or >= 7 cover nothing here (callers rule out the latter). */
static inline uint64_t pc_cover(uint64_t h, uint64_t o0, uint64_t o1, uint64_t o2) {
    return (h & o0 & ~o1 & ~o2) * 0x2u
         | (h & ~o0 & o1 & ~o2) * 0xeu
         | (h & o0 & o1 & ~o2) * 0xfeu
         | (h & ~o0 & ~o1 & o2) * 0xfffeu
         | (h & o0 & ~o1 & o2) * 0xfffffffeull
         | (h & ~o0 & o1 & o2) * 0xfffffffffffffffeull;
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
   left to the per-page loop. Interiors: pc_cover(). */
static inline int pc_blk_tpi_decide(uint64_t bd, uint64_t ok, uint64_t o0, uint64_t o1,
                                    uint64_t o2, uint64_t fit, int entry) {
    uint64_t ge = ~(uint64_t) 0 << entry, heads = bd & ge, in;
    if (heads & ~fit)
        return 0;
    in = pc_cover(heads, o0, o1, o2);
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

/* ---- compaction scanners' block view (pagecore/kernels/compaction.pyx) ---------------
   Not a yes/no test but per-page bitmaps of one aligned block of 64 pages, bit r for
   page r, from which the scanners decide a whole block with bit operations
   (pc_mig_decide, pc_free_decide below), and then act on it: pc_mig_run() and
   pc_free_block() do blocks whole when they can. Three builds of the same view,
   chosen once at import (pc_cblk_select): scalar (the twin the tests hold the
   others to), SSE2 (16 pages per step: page words narrowed to bytes of flags, type
   and order, one movemask per bitmap) and AVX-512 (VBMI, VBMI2) where the CPU has it: 64
   pages transposed to one register each of flags, type and order bytes by a tree of
   19 two-register byte permutes, each bitmap then one compare into a mask
   register; its block functions also write their results with compress stores. */
/* Both SIMD views prefetch the block eight blocks ahead: the scanners write between
   reads (PG_isolated, their out arrays), and without it the block's loads wait on
   DRAM (64 GiB bench zone: 0.72 -> 0.96 G pages/s for the free scanner, 0.80 ->
   0.88 for the migrate scanner, AVX-512, two blocks ahead). Eight instead of two,
   once the free scanner's stores got cheaper (uint8 orders): free +6 %, migrate
   +2.6 % in one run, SSE2 unchanged; four gained nothing, sixteen lost 8-13 %. */
#define PC_CBLK_AHEAD 24576
#define PC_CBLK_HINT _MM_HINT_T1
typedef struct {
    uint64_t buddy;     /* page_type == PGTY_BUDDY */
    uint64_t head;      /* PG_head */
    uint64_t tail;      /* PG_tail */
    uint64_t cand;      /* PG_lru or PG_movable, and not PG_isolated */
    uint64_t nz;        /* order != 0 */
    uint64_t o0, o1, o2;  /* order bits 0, 1, 2 */
    uint64_t fit;       /* order <= pc_blk_align[r]: naturally aligned inside the block */
    uint64_t ge;        /* order >= skip_order (none when skip_order > 255) */
    uint64_t vmm;       /* page_type == PGTY_VMEMMAP */
    uint8_t od[64];     /* the orders */
} pc_cview_t;

static inline void pc_cview_scalar(const void *pages, uint32_t skip_order,
                                   pc_cview_t *v) {
    const unsigned char *p = (const unsigned char *) pages;
    uint64_t bit;
    uint32_t f, ty, od;
    int r;
    memset(v, 0, sizeof *v);
    for (r = 0; r < PC_BLK; r++, p += 16) {
        bit = (uint64_t) 1 << r;
        f = p[0]; ty = p[4]; od = p[5];
        v->buddy |= ty == PC_PGTY_BUDDY ? bit : 0;
        v->vmm |= ty == PC_PGTY_VMEMMAP ? bit : 0;
        v->head |= f & PC_PG_HEAD ? bit : 0;
        v->tail |= f & PC_PG_TAIL ? bit : 0;
        v->cand |= (f & (PC_PG_LRU | PC_PG_MOVABLE)) && !(f & PC_PG_ISOLATED) ? bit : 0;
        v->nz |= od ? bit : 0;
        v->o0 |= od & 1 ? bit : 0;
        v->o1 |= od & 2 ? bit : 0;
        v->o2 |= od & 4 ? bit : 0;
        v->fit |= od <= pc_blk_align[r] ? bit : 0;
        v->ge |= skip_order <= 255 && od >= skip_order ? bit : 0;
        v->od[r] = (uint8_t) od;
    }
}

#if PC_BLK_SIMD
/* Pages r..r+15 at p: bytes of their flags (low byte), page_type and order, exact
   (no saturation). */
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

/* Flag bit k of a byte is its sign bit after a shift left by 7 - k. */
static inline void pc_cview_sse2(const void *pages, uint32_t skip_order, pc_cview_t *v) {
    const unsigned char *p = (const unsigned char *) pages;
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(PC_PGTY_BUDDY);
    const __m128i vm = _mm_set1_epi8(PC_PGTY_VMEMMAP);
    const __m128i so = _mm_set1_epi8((char) (skip_order > 255 ? 255 : skip_order));
    const __m128i sok = skip_order > 255 ? zero : _mm_cmpeq_epi8(zero, zero);
    __m128i fl, ty, od;
    uint64_t z = 0;
    int q;
    memset(v, 0, offsetof(pc_cview_t, od));
    for (q = 0; q < 16; q++)
        _mm_prefetch((const char *) p + PC_CBLK_AHEAD + 64 * q, PC_CBLK_HINT);
    for (q = 0; q < PC_BLK; q += 16, p += 256) {
        pc_blk_bytes16(p, &fl, &ty, &od);
        _mm_storeu_si128((__m128i *) (v->od + q), od);
        #define PC_MM(x) ((uint64_t) (uint32_t) _mm_movemask_epi8(x) << q)
        v->buddy |= PC_MM(_mm_cmpeq_epi8(ty, one));
        v->vmm |= PC_MM(_mm_cmpeq_epi8(ty, vm));
        v->head |= PC_MM(_mm_slli_epi16(fl, 5));
        v->tail |= PC_MM(_mm_slli_epi16(fl, 1));
        v->cand |= PC_MM(_mm_andnot_si128(fl, _mm_or_si128(_mm_slli_epi16(fl, 6),
                                                           _mm_slli_epi16(fl, 4))));
        z |= PC_MM(_mm_cmpeq_epi8(od, zero));
        v->o0 |= PC_MM(_mm_slli_epi16(od, 7));
        v->o1 |= PC_MM(_mm_slli_epi16(od, 6));
        v->o2 |= PC_MM(_mm_slli_epi16(od, 5));
        v->fit |= PC_MM(_mm_cmpeq_epi8(_mm_subs_epu8(
            od, _mm_loadu_si128((const __m128i *) (pc_blk_align + q))), zero));
        v->ge |= PC_MM(_mm_and_si128(_mm_cmpeq_epi8(_mm_subs_epu8(so, od), zero), sok));
        #undef PC_MM
    }
    v->nz = ~z;
}
#endif

static inline int pc_popcount64(uint64_t x) {
#if defined(__POPCNT__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (int) ((x * 0x0101010101010101ull) >> 56);
#endif
}

/* The pages the migrate scanner isolates when it visits them: not free, LRU or
   __PageMovable, neither PG_isolated nor a tail, not a head of order >= skip_order
   (skip_isolation_on_order()). */
static inline uint64_t pc_view_isolatable(const pc_cview_t *v) {
    return v->cand & ~v->buddy & ~v->tail & ~(v->head & v->ge);
}

/* The migrate scanner (isolate_migratepages_block()) entering the block at `entry`,
   decided without its walk. The walk steps one page at a time except at free blocks
   (past 2^order), folio heads it isolates or skip_isolation_on_order() skips (past
   the folio) and tails (to the folio's end). When every such head at or after the
   entry is naturally aligned inside the block (orders <= 6), no folio head there
   fails alone (its tails would be walked), and every tail there lies inside the
   block of such a head, the walk visits exactly the pages outside those heads'
   interiors (aligned blocks nest) and leaves at the block's end. Returns how many
   pages it isolates (*take: which), or -1 when the block needs the walk. */
static inline int pc_mig_decide(const pc_cview_t *v, int entry, uint64_t *take) {
    const uint64_t ge = ~(uint64_t) 0 << entry, iso = pc_view_isolatable(v);
    const uint64_t folio = v->head & ~v->buddy & ~v->tail & v->nz & ge;
    const uint64_t heads = (v->buddy & v->nz & ge) | folio;
    uint64_t in;
    if (v->vmm || (folio & ~iso & ~v->ge) || (heads & ~v->fit))
        return -1;
    in = pc_cover(heads, v->o0, v->o1, v->o2);
    if (v->tail & ge & ~in)
        return -1;
    *take = iso & ge & ~in;
    return pc_popcount64(*take);
}

/* The non-strict free scanner (isolate_freepages_block()) entering the block at
   `entry`: in a block with no compound page whose free block heads are all
   naturally aligned inside it, the walk records the heads at or after the entry
   outside the interiors of those heads (aligned blocks nest), and leaves at the
   block's end. Returns how many (*rec: which), or -1 when the block needs the
   walk. */
static inline int pc_free_decide(const pc_cview_t *v, int entry, uint64_t *rec) {
    const uint64_t heads = v->buddy & (~(uint64_t) 0 << entry);
    if ((v->head | v->tail) || (v->buddy & ~v->fit))
        return -1;
    *rec = heads & ~pc_cover(heads & v->nz, v->o0, v->o1, v->o2);
    return pc_popcount64(*rec);
}
/* Sets PG_isolated on the pages of `take` and writes `off` + their offsets in the
   block to out in pfn order: pfns (off = the block's pfn, int64 out) or offsets from
   a base pfn (off = the block's offset from it, uint32 out). */
#define PC_DEF_ISOLATE_SCALAR(NAME, OUT_T)                                            \
static inline void NAME(void *pages, int64_t off, uint64_t take, OUT_T *out) {        \
    unsigned char *p = (unsigned char *) pages;                                       \
    int h;                                                                            \
    while (take) {                                                                    \
        h = __builtin_ctzll(take);                                                    \
        take &= take - 1;                                                             \
        p[16 * h] |= PC_PG_ISOLATED;          /* flags' low byte, little-endian */    \
        *out++ = (OUT_T) (off + h);                                                   \
    }                                                                                 \
}
PC_DEF_ISOLATE_SCALAR(pc_isolate_scalar, int64_t)
PC_DEF_ISOLATE_SCALAR(pc_isolate32_scalar, uint32_t)

/* Writes the free blocks headed at the bits of `rec` (block at b) to out_pfns /
   out_orders in pfn order; returns the pages they hold. */
static inline int64_t pc_emit_free_scalar(const pc_cview_t *v, int64_t b, uint64_t rec,
                                          int64_t *out_pfns, uint8_t *out_orders) {
    int64_t pages = 0;
    int h;
    while (rec) {
        h = __builtin_ctzll(rec);
        rec &= rec - 1;
        *out_pfns++ = b + h;
        *out_orders++ = v->od[h];
        pages += (int64_t) 1 << v->od[h];
    }
    return pages;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define PC_CBLK_AVX512 1
#include <immintrin.h>
#define PC_AVX512_TARGET target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,popcnt,bmi2")
#define PC_AVX512_FN __attribute__((PC_AVX512_TARGET)) static
#define PC_AVX512_INL __attribute__((PC_AVX512_TARGET, always_inline)) static inline
/* byte permutes of the transposition (pc_cblk_perm_init): a layer takes two
   registers holding N pages each as [flags(N) type(N) order(N)] to 2N pages */
static uint8_t pc_cblk_t1[64], pc_cblk_t2[64], pc_cblk_t3a[64], pc_cblk_t3b[64],
               pc_cblk_t4a[64], pc_cblk_t4b[64];
/* bytes 0..63: the offsets in a block, compressed by a bitmap to its bits' offsets */
static uint8_t pc_cblk_iota[64];

static void pc_cblk_layer(uint8_t *t, int n, int f_in, int f_out, int nfields) {
    int f, r;
    for (f = 0; f < nfields; f++)
        for (r = 0; r < 2 * n; r++)
            t[f_out + f * 2 * n + r] = (uint8_t) ((r < n ? 0 : 64) + f_in + f * n + r % n);
}

static void pc_cblk_perm_init(void) {
    int r, k;
    memset(pc_cblk_t1, 0, 64);
    for (r = 0; r < 8; r++) {             /* 8 pages of 16 bytes -> [fl ty od] x 8 */
        pc_cblk_t1[r] = (uint8_t) (16 * r);
        pc_cblk_t1[8 + r] = (uint8_t) (16 * r + 4);
        pc_cblk_t1[16 + r] = (uint8_t) (16 * r + 5);
    }
    memset(pc_cblk_t2, 0, 64);
    pc_cblk_layer(pc_cblk_t2, 8, 0, 0, 3);            /* 16 pages: fl ty od */
    pc_cblk_layer(pc_cblk_t3a, 16, 0, 0, 2);          /* 32 pages: fl ty */
    memset(pc_cblk_t3b, 0, 64);
    pc_cblk_layer(pc_cblk_t3b, 16, 32, 0, 1);         /* 32 pages: od */
    pc_cblk_layer(pc_cblk_t4a, 32, 0, 0, 1);          /* 64 pages: fl (or od) */
    pc_cblk_layer(pc_cblk_t4b, 32, 32, 0, 1);         /* 64 pages: ty */
    for (k = 0; k < 64; k++)
        pc_cblk_iota[k] = (uint8_t) k;
}

/* The permute tables and iota, loaded into registers once per run of blocks: the
   compiler cannot keep loads of the static tables across the blocks' stores, which go
   through char pointers and so may alias them. */
typedef struct {
    __m512i t1, t2, t3a, t3b, t4a, t4b, align, iota;
} pc_cblk_k_t;

PC_AVX512_INL void pc_cblk_k_load(pc_cblk_k_t *k) {
    k->t1 = _mm512_loadu_si512(pc_cblk_t1);
    k->t2 = _mm512_loadu_si512(pc_cblk_t2);
    k->t3a = _mm512_loadu_si512(pc_cblk_t3a);
    k->t3b = _mm512_loadu_si512(pc_cblk_t3b);
    k->t4a = _mm512_loadu_si512(pc_cblk_t4a);
    k->t4b = _mm512_loadu_si512(pc_cblk_t4b);
    k->align = _mm512_loadu_si512(pc_blk_align);
    k->iota = _mm512_loadu_si512(pc_cblk_iota);
}

PC_AVX512_INL void pc_cview_avx512_k(const pc_cblk_k_t *k, const void *pages,
                                     uint32_t skip_order, pc_cview_t *v) {
    const char *p = (const char *) pages;
    __m512i l1[8], l2[4], x[2], y[2], fl, ty, od;
    int i;
    for (i = 0; i < 16; i++)
        _mm_prefetch(p + PC_CBLK_AHEAD + 64 * i, PC_CBLK_HINT);
    for (i = 0; i < 8; i++)
        l1[i] = _mm512_permutex2var_epi8(_mm512_loadu_si512(p + 128 * i), k->t1,
                                         _mm512_loadu_si512(p + 128 * i + 64));
    for (i = 0; i < 4; i++)
        l2[i] = _mm512_permutex2var_epi8(l1[2 * i], k->t2, l1[2 * i + 1]);
    for (i = 0; i < 2; i++) {
        x[i] = _mm512_permutex2var_epi8(l2[2 * i], k->t3a, l2[2 * i + 1]);
        y[i] = _mm512_permutex2var_epi8(l2[2 * i], k->t3b, l2[2 * i + 1]);
    }
    fl = _mm512_permutex2var_epi8(x[0], k->t4a, x[1]);
    ty = _mm512_permutex2var_epi8(x[0], k->t4b, x[1]);
    od = _mm512_permutex2var_epi8(y[0], k->t4a, y[1]);
    _mm512_storeu_si512(v->od, od);
    v->buddy = _mm512_cmpeq_epi8_mask(ty, _mm512_set1_epi8(PC_PGTY_BUDDY));
    v->vmm = _mm512_cmpeq_epi8_mask(ty, _mm512_set1_epi8(PC_PGTY_VMEMMAP));
    v->head = _mm512_test_epi8_mask(fl, _mm512_set1_epi8(PC_PG_HEAD));
    v->tail = _mm512_test_epi8_mask(fl, _mm512_set1_epi8(PC_PG_TAIL));
    v->cand = _mm512_mask_testn_epi8_mask(
        _mm512_test_epi8_mask(fl, _mm512_set1_epi8(PC_PG_LRU | PC_PG_MOVABLE)), fl,
        _mm512_set1_epi8((char) PC_PG_ISOLATED));
    v->nz = _mm512_test_epi8_mask(od, od);
    v->o0 = _mm512_test_epi8_mask(od, _mm512_set1_epi8(1));
    v->o1 = _mm512_test_epi8_mask(od, _mm512_set1_epi8(2));
    v->o2 = _mm512_test_epi8_mask(od, _mm512_set1_epi8(4));
    v->fit = _mm512_cmple_epu8_mask(od, k->align);
    v->ge = skip_order > 255 ? 0 : _mm512_cmpge_epu8_mask(
        od, _mm512_set1_epi8((char) skip_order));
}

PC_AVX512_FN void pc_cview_avx512(const void *pages, uint32_t skip_order, pc_cview_t *v) {
    pc_cblk_k_t k;
    pc_cblk_k_load(&k);
    pc_cview_avx512_k(&k, pages, skip_order, v);
}

/* pc_isolate_scalar() with stores: PG_isolated ORed into the flag dwords of the pages
   of `take` under a mask of their flag dwords (16 bits per 4 pages, spread by pdep; a
   line with no page taken gets an empty mask and stays clean); the offsets of `take`
   compressed in one vpcompressb (VBMI2) and widened to pfns (vpmovzxbq, 8 at a time)
   or uint32 offsets (vpmovzxbd, 16 at a time) for as many masked stores as there are
   pages to record. The version before compressed int64 pfns 8 pages at a time, 8 rounds
   per block whatever `take`, with a table per 4-page mask: 1.16-1.19 -> 1.40-1.45 G
   pages/s for the migrate scanner over a 64 Ki-page range in cache (best of 300 calls,
   three interleaved runs); a branch that skipped lines with no page taken, a scalar
   byte OR per page, and full-line stores in place of the masked ones were no faster.
   The uint32 output of isolate_migratepages_range() halves the out stream, which the
   page stream evicts from the caches between calls: over the 64 GiB bench zone, a
   throwaway C loop over its decided blocks took 1.02 ns per page with int64 pfns, 0.90
   with uint32 offsets and 0.84 with no out stream at all (best of five passes, one
   run); aligning the int64 stores to lines or writing them through a buffer in L1
   (with or without streaming stores) was slower. Four masked stores whatever the
   count, with no loop on it, were faster in such a C loop but slower in the scanner as
   built (1.08-1.35 against 1.15-1.52 G pages/s over a range in cache), and came out. */
PC_AVX512_INL void pc_set_isolated_avx512(void *pages, uint64_t take) {
    char *p = (char *) pages;
    const __m512i iso = _mm512_set1_epi32(PC_PG_ISOLATED);
    uint64_t k4;
    int j, z;
    for (z = 0; z < 4; z++) {
        k4 = _pdep_u64((take >> (16 * z)) & 0xffff, 0x1111111111111111ull);
        for (j = 0; j < 4; j++, p += 64) {
            const __mmask16 k = (__mmask16) (k4 >> (16 * j));
            const __m512i x = _mm512_loadu_si512(p);
            _mm512_mask_storeu_epi32(p, k, _mm512_or_si512(x, iso));
        }
    }
}

PC_AVX512_INL void pc_isolate_avx512_k(const pc_cblk_k_t *kt, void *pages, int64_t off,
                                       uint64_t take, int64_t *out) {
    const int n = (int) _mm_popcnt_u64(take);
    const __m512i base = _mm512_set1_epi64(off);
    __m512i idx = _mm512_maskz_compress_epi8(take, kt->iota);
    int j;
    for (j = 0; j < n; j += 8) {
        _mm512_mask_storeu_epi64(out + j, n - j >= 8 ? 0xff : (__mmask8) ((1u << (n - j)) - 1),
                                 _mm512_add_epi64(base, _mm512_cvtepu8_epi64(
                                     _mm512_castsi512_si128(idx))));
        idx = _mm512_alignr_epi64(_mm512_setzero_si512(), idx, 1);
    }
    pc_set_isolated_avx512(pages, take);
}

PC_AVX512_INL void pc_isolate32_avx512_k(const pc_cblk_k_t *kt, void *pages, int64_t off,
                                         uint64_t take, uint32_t *out) {
    const int n = (int) _mm_popcnt_u64(take);
    const __m512i base = _mm512_set1_epi32((int) (uint32_t) off);
    __m512i idx = _mm512_maskz_compress_epi8(take, kt->iota);
    int j;
    for (j = 0; j < n; j += 16) {
        _mm512_mask_storeu_epi32(out + j,
                                 n - j >= 16 ? 0xffff : (__mmask16) ((1u << (n - j)) - 1),
                                 _mm512_add_epi32(base, _mm512_cvtepu8_epi32(
                                     _mm512_castsi512_si128(idx))));
        idx = _mm512_alignr_epi32(_mm512_setzero_si512(), idx, 4);
    }
    pc_set_isolated_avx512(pages, take);
}

/* pc_emit_free_scalar() with stores: the orders (bytes, as the view has them, so
   out_orders is uint8) and the heads' offsets compressed in one vpcompressb (VBMI2)
   each; the orders one masked store; the offsets widened 8 at a time to pfns
   (vpmovzxbq, + b) for as many stores as there are heads; the pages as the sum of
   1 << order over the compressed orders (vpshufb of powers of two, orders <= 6 here:
   pc_free_decide() took only heads aligned inside the block; vpsadbw). The version
   it replaces compressed pfns and int64 orders 8 pages at a time, 8 rounds per
   block whatever the heads: free scanner 0.47 -> 0.55-0.57 of the read loop (64 GiB
   bench zone, one run, prefetch distance unchanged). */
PC_AVX512_INL int64_t pc_emit_free_avx512(const pc_cview_t *v, int64_t b, uint64_t rec,
                                          int64_t *out_pfns, uint8_t *out_orders) {
    const int n = (int) _mm_popcnt_u64(rec);
    const __mmask64 m = n == 64 ? ~(__mmask64) 0 : ((__mmask64) 1 << n) - 1;
    const __m512i od = _mm512_maskz_compress_epi8(rec, _mm512_loadu_si512(v->od));
    const __m512i pow2 = _mm512_broadcast_i32x4(
        _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char) 128, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m512i base = _mm512_set1_epi64(b);
    __m512i idx = _mm512_maskz_compress_epi8(rec, _mm512_loadu_si512(pc_cblk_iota));
    int j;
    _mm512_mask_storeu_epi8(out_orders, m, od);
    for (j = 0; j < n; j += 8) {
        _mm512_mask_storeu_epi64(out_pfns + j, n - j >= 8 ? 0xff : (__mmask8) ((1u << (n - j)) - 1),
                                 _mm512_add_epi64(base, _mm512_cvtepu8_epi64(
                                     _mm512_castsi512_si128(idx))));
        idx = _mm512_alignr_epi64(_mm512_setzero_si512(), idx, 1);
    }
    return _mm512_reduce_add_epi64(_mm512_sad_epu8(
        _mm512_maskz_shuffle_epi8(m, pow2, od), _mm512_setzero_si512()));
}
#else
#define PC_CBLK_AVX512 0
static void pc_cblk_perm_init(void) {}
#endif

/* 0 scalar, 1 SSE2, 2 AVX-512: what this CPU and build can run, and what runs. */
static int pc_cblk_level = 0;

static int pc_cblk_max_level(void) {
#if PC_CBLK_AVX512
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi")
            && __builtin_cpu_supports("avx512vbmi2")
            && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi2"))
        return 2;
#endif
    return PC_BLK_SIMD ? 1 : 0;
}

/* Runs `level` (clamped to what can run) from now on; returns the level set. */
__attribute__((unused)) static int pc_cblk_select(int level) {
    int top = pc_cblk_max_level();
    if (top == 2)
        pc_cblk_perm_init();
    pc_cblk_level = level < 0 ? 0 : (level > top ? top : level);
    return pc_cblk_level;
}

static inline void pc_cview_at(int level, const void *pages, uint32_t skip_order,
                               pc_cview_t *v) {
#if PC_CBLK_AVX512
    if (level == 2) { pc_cview_avx512(pages, skip_order, v); return; }
#endif
#if PC_BLK_SIMD
    if (level == 1) { pc_cview_sse2(pages, skip_order, v); return; }
#endif
    pc_cview_scalar(pages, skip_order, v);
}

/* ---- blocks whole ---------------------------------------------------------
   pc_mig_run(): the migrate scanner over the `nblk` blocks from pfn b, the first
   entered at `entry`, the others at 0, with room for `room` more pages: while
   pc_mig_decide() decides a block and its pages fit, isolates them (PG_isolated; to
   out in pfn order, as pfns or, pc_mig_run32(), as uint32 offsets from `base`).
   Returns how many blocks it did whole, *nr the pages it isolated; when that is fewer
   than nblk, *stop says why the next block was not done: -1 (it needs the walk) or -2
   (decided, *take, but its pages would fill the batch), with *v its view.
   pc_free_block(): the non-strict free scanner entering one block at `entry`: when
   pc_free_decide() decides it and its free blocks fit, writes them to out_pfns /
   out_orders in pfn order, their pages to *nr_pages, and returns how many; else -1 or
   -2 as above, with *rec and *v.
   Written once for every build (PC_DEF_BLOCKS), so that the AVX-512 view, decision
   and stores compile into one function whose view stays in registers; a run keeps
   the view's tables in registers across its blocks (KT) and builds the view of the
   block it stops at again into *v rather than storing every block's. */
#define PC_DEF_MIG_RUN(NAME, ATTR, KT, KLOAD, VIEWK, ISOLATEK, OUT_T)                 \
ATTR int64_t NAME(void *pages, int64_t b, int64_t base, int64_t nblk, int entry,       \
                  uint32_t skip_order, int64_t room, OUT_T *out, int64_t *nr,         \
                  int *stop, uint64_t *take, pc_cview_t *v) {                         \
    KT k;                                                                             \
    pc_cview_t w;                                                                     \
    char *pg = (char *) pages;                                                        \
    int64_t i, n = 0;                                                                 \
    int cnt;                                                                          \
    KLOAD(&k);                                                                        \
    for (i = 0; i < nblk; i++, entry = 0, pg += 16 * 64) {                            \
        VIEWK(&k, pg, skip_order, &w);                                                \
        cnt = pc_mig_decide(&w, entry, take);                                         \
        if (cnt < 0 || cnt >= room - n) {                                             \
            VIEWK(&k, pg, skip_order, v);                                             \
            *stop = cnt < 0 ? -1 : -2;                                                \
            break;                                                                    \
        }                                                                             \
        ISOLATEK(&k, pg, b + 64 * i - base, *take, out + n);                          \
        n += cnt;                                                                     \
    }                                                                                 \
    *nr = n;                                                                          \
    return i;                                                                         \
}
#define PC_DEF_BLOCKS(SUFFIX, ATTR, KT, KLOAD, VIEWK, ISOLATEK, ISOLATE32K, EMIT)      \
PC_DEF_MIG_RUN(pc_mig_run##SUFFIX, ATTR, KT, KLOAD, VIEWK, ISOLATEK, int64_t)         \
PC_DEF_MIG_RUN(pc_mig_run32##SUFFIX, ATTR, KT, KLOAD, VIEWK, ISOLATE32K, uint32_t)    \
ATTR int pc_free_block##SUFFIX(const void *pages, int64_t b, int entry, int64_t room, \
                               int64_t *out_pfns, uint8_t *out_orders,                \
                               int64_t *nr_pages, uint64_t *rec, pc_cview_t *v) {     \
    KT k;                                                                             \
    pc_cview_t w;                                                                     \
    int cnt;                                                                          \
    KLOAD(&k);                                                                        \
    VIEWK(&k, pages, 256, &w);                                                        \
    cnt = pc_free_decide(&w, entry, rec);                                             \
    if (cnt >= 0 && cnt < room) {                                                     \
        *nr_pages = EMIT(&w, b, *rec, out_pfns, out_orders);                          \
        return cnt;                                                                   \
    }                                                                                 \
    *v = w;                                                                           \
    return cnt < 0 ? -1 : -2;                                                         \
}

/* the builds without AVX-512: the view of the level selected, no tables */
typedef struct { int unused; } pc_cblk_gk_t;
static inline void pc_cblk_gk_load(pc_cblk_gk_t *k) { (void) k; }
static inline void pc_cview_gk(const pc_cblk_gk_t *k, const void *pages,
                               uint32_t skip_order, pc_cview_t *v) {
    (void) k;
    pc_cview_at(pc_cblk_level, pages, skip_order, v);
}
static inline void pc_isolate_gk(const pc_cblk_gk_t *k, void *pages, int64_t off,
                                 uint64_t take, int64_t *out) {
    (void) k;
    pc_isolate_scalar(pages, off, take, out);
}
static inline void pc_isolate32_gk(const pc_cblk_gk_t *k, void *pages, int64_t off,
                                   uint64_t take, uint32_t *out) {
    (void) k;
    pc_isolate32_scalar(pages, off, take, out);
}
PC_DEF_BLOCKS(_generic, static inline, pc_cblk_gk_t, pc_cblk_gk_load, pc_cview_gk,
              pc_isolate_gk, pc_isolate32_gk, pc_emit_free_scalar)
#if PC_CBLK_AVX512
PC_DEF_BLOCKS(_avx512, PC_AVX512_FN, pc_cblk_k_t, pc_cblk_k_load, pc_cview_avx512_k,
              pc_isolate_avx512_k, pc_isolate32_avx512_k, pc_emit_free_avx512)
#define PC_CBLK_PICK(name) (pc_cblk_level == 2 ? name##_avx512 : name##_generic)
#else
#define PC_CBLK_PICK(name) name##_generic
#endif

static inline int64_t pc_mig_run(void *pages, int64_t b, int64_t nblk, int entry,
                                 uint32_t skip_order, int64_t room, int64_t *out_pfns,
                                 int64_t *nr, int *stop, uint64_t *take, pc_cview_t *v) {
    return PC_CBLK_PICK(pc_mig_run)(pages, b, 0, nblk, entry, skip_order, room, out_pfns,
                                    nr, stop, take, v);
}

static inline int64_t pc_mig_run32(void *pages, int64_t b, int64_t base, int64_t nblk,
                                   int entry, uint32_t skip_order, int64_t room,
                                   uint32_t *out, int64_t *nr, int *stop, uint64_t *take,
                                   pc_cview_t *v) {
    return PC_CBLK_PICK(pc_mig_run32)(pages, b, base, nblk, entry, skip_order, room, out,
                                      nr, stop, take, v);
}

static inline int pc_free_block(const void *pages, int64_t b, int entry, int64_t room,
                                int64_t *out_pfns, uint8_t *out_orders,
                                int64_t *nr_pages, uint64_t *rec, pc_cview_t *v) {
    return PC_CBLK_PICK(pc_free_block)(pages, b, entry, room, out_pfns, out_orders,
                                       nr_pages, rec, v);
}

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

#endif /* PAGECORE_SCANBLOCK_H */
