/* The struct page stores of the page-initialising kernels (pagecore/kernels/hotplug.pyx):
 * mark_vmemmap_pages() (mhp_mark_vmemmap_pages(), seed v3 patch 4/5) and the page init
 * of online_memory_blocks() (__init_single_page() for a run, memory_block_online() in
 * drivers/base/memory.c).
 *
 * Why C: a page_t is a packed 16-byte struct (pagecore/kernels/page.pxd), and what gcc makes of
 * a loop over packed-struct assignments is not one 16-byte store per page.
 *   * `vm[i] = tail` after `tail.vmemmap_head = i` (the first mark_vmemmap_pages()):
 *     a 4-byte store of i into the template on the stack, a 16-byte load of the template
 *     (movdqa), a 16-byte store. The load overlaps the narrower store still in flight, so
 *     store-to-load forwarding fails on every page and the loop ran at the store-buffer
 *     drain rate (2.5-10x the one-thread fill of the same bytes).
 *   * `mem_map[p] = tmpl` (init_pages()): gcc's vectoriser split the record into its
 *     fields - a 4-byte, two 2-byte (re-zeroed through a register each time) and an
 *     8-byte store per page: four stores where one does.
 * Here each page is one 16-byte register store of a template held in a register: SSE2
 * (baseline on x86_64, no -march needed) `movdqu`; the Vmemmap run's tail index is a
 * 32-bit lane of that register, advanced by `paddd` (it wraps modulo 2^32 exactly like
 * the `<uint32_t> i` it replaces). The scalar twins (the build without SSE2) store each
 * record as two 8-byte values held in registers (memcpy, which gcc turns into plain
 * moves).
 *
 * Measured (benchmarks/kernel_ratios.py, one run, 64 GiB and 1 TiB of simulated memory
 * on a touched array): mark_vmemmap_pages() 9.6-10.1x -> 1.00-1.01x the one-thread
 * fill of the same bytes (numba twin 1.16-1.18x); online_memory_blocks() one thread
 * 1.16x -> 1.05x (numba 1.26-1.29x).
 *
 * Byte layout relied on (pagecore/kernels/page.pxd): vmemmap_page_t's vmemmap_head at bytes
 * 8..11 (PC_VMEMMAP_HEAD_OFFSET, checked when _kernels is imported); the SSE2 lane
 * arithmetic assumes little-endian (x86), the scalar twins do not. The template is the
 * caller's record, so no other field offset is assumed here.
 *
 * All functions: no Python objects, no failure; `dst` need not be 16-byte aligned.
 */
#ifndef PAGECORE_PAGEINIT_H
#define PAGECORE_PAGEINIT_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define PC_INIT_SIMD 1
#else
#define PC_INIT_SIMD 0
#endif

#define PC_VMEMMAP_HEAD_OFFSET 8      /* offsetof(vmemmap_page_t, vmemmap_head) */

/* ---- scalar twins: what builds without SSE2 use; tests/test_kernel_parity.py compares
 * them with the SSE2 forms through _kernels._page_store_twins() ------------------------ */

/* n copies of the 16-byte record `tmpl` from `dst` on: init_pages(). */
static inline void pc_store_pages_scalar(void *dst, int64_t n, const void *tmpl)
{
    unsigned char *d = (unsigned char *) dst;
    uint64_t lo, hi;
    int64_t i;
    memcpy(&lo, tmpl, 8);
    memcpy(&hi, (const unsigned char *) tmpl + 8, 8);
    for (i = 0; i < n; i++) {
        memcpy(d + 16 * i, &lo, 8);
        memcpy(d + 16 * i + 8, &hi, 8);
    }
}

/* n copies of the 16-byte vmemmap_page_t `tmpl` from `dst` on, record i with
 * vmemmap_head = (uint32_t) i: the tails of mark_vmemmap_pages() (the caller then writes
 * the head over record 0). */
static inline void pc_store_vmemmap_run_scalar(void *dst, int64_t n, const void *tmpl)
{
    unsigned char *d = (unsigned char *) dst;
    unsigned char t[16];
    const uint32_t zero = 0;
    uint64_t lo, hi;
    int64_t i;
    memcpy(t, tmpl, 16);
    memcpy(t + PC_VMEMMAP_HEAD_OFFSET, &zero, 4);
    memcpy(&lo, t, 8);
    memcpy(&hi, t + 8, 8);
    for (i = 0; i < n; i++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        const uint64_t h = hi | (uint64_t) (uint32_t) i << 32;  /* bytes 8..11: high half */
#else
        const uint64_t h = hi | (uint64_t) (uint32_t) i;        /* bytes 8..11: low half */
#endif
        memcpy(d + 16 * i, &lo, 8);
        memcpy(d + 16 * i + 8, &h, 8);
    }
}

/* ---- SSE2: one movdqu of a register per record --------------------------------------- */
#if PC_INIT_SIMD
static inline void pc_store_pages(void *dst, int64_t n, const void *tmpl)
{
    unsigned char *d = (unsigned char *) dst;
    const __m128i v = _mm_loadu_si128((const __m128i *) tmpl);
    int64_t i;
    for (i = 0; i < n; i++)
        _mm_storeu_si128((__m128i *) (d + 16 * i), v);
}

static inline void pc_store_vmemmap_run(void *dst, int64_t n, const void *tmpl)
{
    /* lane 2 (bytes 8..11) is vmemmap_head: cleared, then +1 per record (paddd wraps
       modulo 2^32, as (uint32_t) i does) */
    unsigned char *d = (unsigned char *) dst;
    const __m128i lane = _mm_set_epi32(0, -1, 0, 0);
    const __m128i one = _mm_set_epi32(0, 1, 0, 0);
    __m128i v = _mm_andnot_si128(lane, _mm_loadu_si128((const __m128i *) tmpl));
    int64_t i;
    for (i = 0; i < n; i++) {
        _mm_storeu_si128((__m128i *) (d + 16 * i), v);
        v = _mm_add_epi32(v, one);
    }
}
#else
#define pc_store_pages pc_store_pages_scalar
#define pc_store_vmemmap_run pc_store_vmemmap_run_scalar
#endif

#endif /* PAGECORE_PAGEINIT_H */
