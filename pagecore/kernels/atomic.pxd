# Relaxed atomics for the two-thread scans: each chunk publishes its first offender with
# an atomic minimum, and later chunks read it to stop early (the kernel's answer is the
# lowest offending pfn, whichever thread finds it).
from pagecore.kernels.ktypes cimport int64_t

cdef extern from *:
    """
    static inline int64_t pc_atomic_load(int64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    }
    static inline void pc_atomic_min(int64_t *p, int64_t v) {
        int64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
        while (v < cur && !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELAXED,
                                                       __ATOMIC_RELAXED)) {}
    }
    """
    int64_t pc_atomic_load(int64_t *p) noexcept nogil
    void pc_atomic_min(int64_t *p, int64_t v) noexcept nogil
