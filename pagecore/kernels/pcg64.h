/* numpy's PCG64 stream, drawn four steps at a time (pagecore/kernels/buddy.pyx: the
 * random frees of a workload, free_owned_passes()).
 *
 * Why: an aging free draws one Generator.random() per owned block and pass, ~50 million
 * draws for a 64 GiB zone, and through the BitGenerator's function pointer each draw
 * waits for the previous one: the 128-bit LCG step state = state * M + inc is one
 * dependency chain (~2.2 ns a draw here, numpy's own rate). The stream is the same
 * with four interleaved chains, each stepping by M^4 (state_{n+4} = A4 state_n + C4,
 * A4 = M^4, C4 = inc (M^3 + M^2 + M + 1), mod 2^128): the multiplies of the four overlap.
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
        pc_pcg64_refill(g);
    return (int)((g->hits >> g->pos++) & 1);
}

/* the next n draws (1 <= n <= 64): bit i set when draw i is below p */
static inline uint64_t pc_pcg64_take(pc_pcg64 *g, int n) {
    int avail = PC_PCG64_BATCH - g->pos;
    uint64_t got;
    if (avail == 0) {
        pc_pcg64_refill(g);
        avail = PC_PCG64_BATCH;
    }
    if (n <= avail) {
        got = g->hits >> g->pos;
        g->pos += n;
        return n == 64 ? got : got & (((uint64_t)1 << n) - 1);
    }
    got = g->hits >> g->pos;          /* avail bits, 1 <= avail < n <= 64 */
    pc_pcg64_refill(g);
    got |= (g->hits & (((uint64_t)1 << (n - avail)) - 1)) << avail;
    g->pos = n - avail;
    return got;
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
