/* numpy's PCG64 stream, drawn four steps at a time (pagecore/kernels/buddy.pyx: the
 * random frees of a workload, free_owned_passes()).
 *
 * Why: an aging free draws one Generator.random() per owned block and pass, ~50 million
 * draws for a 64 GiB zone, and through the BitGenerator's function pointer each draw
 * waits for the previous one: the 128-bit LCG step state = state * M + inc is one
 * dependency chain (~2.2 ns a draw here, numpy's own rate). The stream is the same
 * with interleaved chains, each stepping by M^k (state_{n+k} = Ak state_n + Ck, Ak =
 * M^k, Ck = inc (M^(k-1) + ... + M + 1), mod 2^128): four chains in scalar code, whose
 * multiplies overlap (but three 64-bit multiplies a step still take ~1.9 ns a draw on the
 * 2-vCPU host), or eight in AVX-512 IFMA (52-bit multiply-adds) where the CPU has it,
 * ~0.6 ns a draw: pc_pcg64_refill_ifma(), picked at import like the compaction
 * scanners' AVX-512 (PAGECORE_SIMD=scalar or sse2 asks for the scalar steps).
 *
 * The numbers are numpy's, bit for bit: PCG64 is PCG XSL-RR 128/64 (pcg64.h in numpy:
 * step, then output rotr64(hi ^ lo, hi >> 58)), and Generator.random() is
 * (next64 >> 11) * 2^-53 (uint64_to_double()). The state is read and written through
 * the public `bit_generator.state` dict, so only the algorithm is relied on, which numpy
 * keeps stable (NEP 19); tests/test_workload.py checks the draws against rng.random().
 * A draw is only ever compared with the pass's p, so each batch of 64 is compared at
 * once, into a 64-bit mask (`hits`): x * 2^-53 < p exactly when x < ceil(p * 2^53)
 * (pc_pcg64_threshold()), with x = next64 >> 11 and both sides exact. The frees read the
 * mask a word of owned blocks at a time (pc_pcg64_take()).
 */
#ifndef PAGECORE_PCG64_H
#define PAGECORE_PCG64_H
#include <stdint.h>
#include <math.h>

typedef unsigned __int128 pc_u128;

#define PC_PCG64_BATCH 64

typedef struct {
    pc_u128 lane[4];                  /* the states that give the next four outputs */
    pc_u128 a4, c4;                   /* four steps at once */
    pc_u128 m, inc;                   /* one step */
    pc_u128 init;                     /* the state before the first draw */
    pc_u128 first;                    /* the state that gave out[0] */
    uint64_t out[PC_PCG64_BATCH];     /* the batch's outputs >> 11 */
    uint64_t hits;                    /* bit i: out[i] < below */
    uint64_t below;                   /* pc_pcg64_threshold() of the pass's p */
    int pos;                          /* next output of the batch; BATCH: none left */
    int drawn;                        /* a batch was made */
    int wide;                         /* batches from pc_pcg64_refill_ifma() */
    /* pc_pcg64_refill_ifma(): eight chains stepping by M^8, as 52-bit limbs (state =
     * l0 + l1 2^52 + l2 2^104), and M^8, C8 likewise */
    uint64_t l0[8], l1[8], l2[8];
    uint64_t a8[3], c8[3];
} pc_pcg64;

#define PC_PCG64_MULT (((pc_u128)2549297995355413924ULL << 64) + 4865540595714422341ULL)

static inline void pc_pcg64_init(pc_pcg64 *g, uint64_t state_hi, uint64_t state_lo,
                                 uint64_t inc_hi, uint64_t inc_lo) {
    pc_u128 m = PC_PCG64_MULT, inc = ((pc_u128)inc_hi << 64) | inc_lo;
    pc_u128 s = ((pc_u128)state_hi << 64) | state_lo;
    int i;
    g->init = s;
    g->m = m;
    g->inc = inc;
    for (i = 0; i < 4; i++) {
        s = s * m + inc;
        g->lane[i] = s;
    }
    g->a4 = m * m * m * m;
    g->c4 = inc * (m * m * m + m * m + m + 1);
    g->pos = PC_PCG64_BATCH;
    g->drawn = 0;
    g->hits = 0;
    g->below = 0;
    g->wide = 0;
    {
        const uint64_t m52 = ((uint64_t)1 << 52) - 1;
        pc_u128 a8 = 1, c8 = 0, p = 1;
        s = g->init;
        for (i = 0; i < 8; i++) {
            s = s * m + inc;
            g->l0[i] = (uint64_t)s & m52;
            g->l1[i] = (uint64_t)(s >> 52) & m52;
            g->l2[i] = (uint64_t)(s >> 104);
            a8 *= m;
            c8 += p;
            p *= m;
        }
        c8 *= inc;
        g->a8[0] = (uint64_t)a8 & m52;
        g->a8[1] = (uint64_t)(a8 >> 52) & m52;
        g->a8[2] = (uint64_t)(a8 >> 104);
        g->c8[0] = (uint64_t)c8 & m52;
        g->c8[1] = (uint64_t)(c8 >> 52) & m52;
        g->c8[2] = (uint64_t)(c8 >> 104);
    }
}

static inline uint64_t pc_pcg64_output(pc_u128 s) {
    uint64_t hi = (uint64_t)(s >> 64), lo = (uint64_t)s, x = hi ^ lo;
    unsigned rot = (unsigned)(hi >> 58);
    return (x >> rot) | (x << ((-rot) & 63));
}

static inline void pc_pcg64_refill(pc_pcg64 *g) {
    pc_u128 s0 = g->lane[0], s1 = g->lane[1], s2 = g->lane[2], s3 = g->lane[3];
    pc_u128 a = g->a4, c = g->c4;
    uint64_t below = g->below, hits = 0, o0, o1, o2, o3;
    int i;
    g->first = s0;
    for (i = 0; i < PC_PCG64_BATCH; i += 4) {
        o0 = pc_pcg64_output(s0) >> 11;
        o1 = pc_pcg64_output(s1) >> 11;
        o2 = pc_pcg64_output(s2) >> 11;
        o3 = pc_pcg64_output(s3) >> 11;
        g->out[i] = o0;
        g->out[i + 1] = o1;
        g->out[i + 2] = o2;
        g->out[i + 3] = o3;
        hits |= ((uint64_t)(o0 < below) << i) | ((uint64_t)(o1 < below) << (i + 1))
              | ((uint64_t)(o2 < below) << (i + 2)) | ((uint64_t)(o3 < below) << (i + 3));
        s0 = s0 * a + c;
        s1 = s1 * a + c;
        s2 = s2 * a + c;
        s3 = s3 * a + c;
    }
    g->lane[0] = s0; g->lane[1] = s1; g->lane[2] = s2; g->lane[3] = s3;
    g->hits = hits;
    g->pos = 0;
    g->drawn = 1;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define PC_PCG64_IFMA 1
#include <immintrin.h>
/* pc_pcg64_refill() with AVX-512 IFMA (52-bit multiply-adds, eight lanes): the 128-bit
 * LCG step of eight chains at once. A product mod 2^128 of 52-bit limbs needs the terms
 * with i + j <= 2: position 0 lo(l0 a0); 1 hi(l0 a0) + lo(l0 a1) + lo(l1 a0); 2 hi(l0 a1)
 * + hi(l1 a0) + lo(l0 a2) + lo(l1 a1) + lo(l2 a0), then the carries and the top limb cut
 * to 24 bits. Same numbers as the scalar steps (tests/test_workload.py compares both
 * with rng.random()). */
__attribute__((target("avx512f,avx512ifma"))) static void
pc_pcg64_refill_ifma(pc_pcg64 *g) {
    const __m512i m52 = _mm512_set1_epi64((long long)(((uint64_t)1 << 52) - 1));
    const __m512i m24 = _mm512_set1_epi64((long long)(((uint64_t)1 << 24) - 1));
    const __m512i a0 = _mm512_set1_epi64((long long)g->a8[0]);
    const __m512i a1 = _mm512_set1_epi64((long long)g->a8[1]);
    const __m512i a2 = _mm512_set1_epi64((long long)g->a8[2]);
    const __m512i c0 = _mm512_set1_epi64((long long)g->c8[0]);
    const __m512i c1 = _mm512_set1_epi64((long long)g->c8[1]);
    const __m512i c2 = _mm512_set1_epi64((long long)g->c8[2]);
    const __m512i below = _mm512_set1_epi64((long long)g->below);
    __m512i l0 = _mm512_loadu_si512((const void *)g->l0);
    __m512i l1 = _mm512_loadu_si512((const void *)g->l1);
    __m512i l2 = _mm512_loadu_si512((const void *)g->l2);
    uint64_t hits = 0;
    int j;
    g->first = (pc_u128)g->l0[0] | ((pc_u128)g->l1[0] << 52) | ((pc_u128)g->l2[0] << 104);
    for (j = 0; j < PC_PCG64_BATCH / 8; j++) {
        __m512i lo = _mm512_or_si512(l0, _mm512_slli_epi64(l1, 52));
        __m512i hi = _mm512_or_si512(_mm512_srli_epi64(l1, 12), _mm512_slli_epi64(l2, 40));
        __m512i x = _mm512_xor_si512(hi, lo);
        __m512i out = _mm512_srli_epi64(_mm512_rorv_epi64(x, _mm512_srli_epi64(hi, 58)), 11);
        __m512i s0, s1, s2;
        _mm512_storeu_si512((void *)&g->out[8 * j], out);
        hits |= (uint64_t)_mm512_cmplt_epu64_mask(out, below) << (8 * j);
        s0 = _mm512_madd52lo_epu64(c0, l0, a0);
        s1 = _mm512_madd52hi_epu64(c1, l0, a0);
        s1 = _mm512_madd52lo_epu64(s1, l0, a1);
        s1 = _mm512_madd52lo_epu64(s1, l1, a0);
        s2 = _mm512_madd52hi_epu64(c2, l0, a1);
        s2 = _mm512_madd52hi_epu64(s2, l1, a0);
        s2 = _mm512_madd52lo_epu64(s2, l0, a2);
        s2 = _mm512_madd52lo_epu64(s2, l1, a1);
        s2 = _mm512_madd52lo_epu64(s2, l2, a0);
        s1 = _mm512_add_epi64(s1, _mm512_srli_epi64(s0, 52));
        s2 = _mm512_add_epi64(s2, _mm512_srli_epi64(s1, 52));
        l0 = _mm512_and_si512(s0, m52);
        l1 = _mm512_and_si512(s1, m52);
        l2 = _mm512_and_si512(s2, m24);
    }
    _mm512_storeu_si512((void *)g->l0, l0);
    _mm512_storeu_si512((void *)g->l1, l1);
    _mm512_storeu_si512((void *)g->l2, l2);
    g->hits = hits;
    g->pos = 0;
    g->drawn = 1;
}

static int pc_pcg64_ifma_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}
#else
#define PC_PCG64_IFMA 0
static void pc_pcg64_refill_ifma(pc_pcg64 *g) { pc_pcg64_refill(g); }
static int pc_pcg64_ifma_ok(void) { return 0; }
#endif

/* batches from the IFMA steps from now on when `wide` and the CPU has them (before the
 * first draw); returns whether they are */
static inline int pc_pcg64_use_ifma(pc_pcg64 *g, int wide) {
    g->wide = wide && !g->drawn && pc_pcg64_ifma_ok();
    return g->wide;
}

static inline void pc_pcg64_next_batch(pc_pcg64 *g) {
    if (g->wide)
        pc_pcg64_refill_ifma(g);
    else
        pc_pcg64_refill(g);
}

/* T with: x * 2^-53 < p  <=>  x < T, for every 53-bit x (p in [0, 1]) */
static inline uint64_t pc_pcg64_threshold(double p) {
    if (!(p > 0.0))
        return 0;
    if (p >= 1.0)
        return (uint64_t)1 << 53;
    return (uint64_t)ceil(p * 9007199254740992.0);
}

/* compare the draws from now on with p (the batch's hit bits follow) */
static inline void pc_pcg64_set_p(pc_pcg64 *g, double p) {
    uint64_t below = pc_pcg64_threshold(p), hits = 0;
    int i;
    g->below = below;
    if (g->drawn) {
        for (i = 0; i < PC_PCG64_BATCH; i++)
            hits |= (uint64_t)(g->out[i] < below) << i;
        g->hits = hits;
    }
}

/* the next draw: whether it is below p (Generator.random() < p) */
static inline int pc_pcg64_next_hit(pc_pcg64 *g) {
    if (g->pos == PC_PCG64_BATCH)
        pc_pcg64_next_batch(g);
    return (int)((g->hits >> g->pos++) & 1);
}

/* the next n draws (1 <= n <= 64): bit i set when draw i is below p */
static inline uint64_t pc_pcg64_take(pc_pcg64 *g, int n) {
    int avail = PC_PCG64_BATCH - g->pos;
    uint64_t got;
    if (avail == 0) {
        pc_pcg64_next_batch(g);
        avail = PC_PCG64_BATCH;
    }
    if (n <= avail) {
        got = g->hits >> g->pos;
        g->pos += n;
        return n == 64 ? got : got & (((uint64_t)1 << n) - 1);
    }
    got = g->hits >> g->pos;          /* avail bits, 1 <= avail < n <= 64 */
    pc_pcg64_next_batch(g);
    got |= (g->hits & (((uint64_t)1 << (n - avail)) - 1)) << avail;
    g->pos = n - avail;
    return got;
}

/* the outputs >> 11 of the last batch made (for tests) */
static inline const uint64_t *pc_pcg64_outputs(const pc_pcg64 *g) {
    return g->out;
}

/* the BitGenerator's state after the draws handed out so far */
static inline pc_u128 pc_pcg64_state(const pc_pcg64 *g) {
    pc_u128 s;
    int i;
    if (!g->drawn)
        return g->init;
    s = g->first;                     /* gave out[0]; pos >= 1 once a batch was made */
    for (i = 1; i < g->pos; i++)
        s = s * g->m + g->inc;
    return s;
}
static inline uint64_t pc_pcg64_state_hi(const pc_pcg64 *g) {
    return (uint64_t)(pc_pcg64_state(g) >> 64);
}
static inline uint64_t pc_pcg64_state_lo(const pc_pcg64 *g) {
    return (uint64_t)pc_pcg64_state(g);
}
#endif
