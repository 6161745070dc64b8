# The typedef vocabulary of pagecore's kernels (scikit-learn's _typedefs.pxd pattern).
# Rule: a type matches the dtype of the array it reads; the Python side names the same
# dtypes in pagecore/kernels/page.pyx.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

ctypedef int64_t pfn_t          # page frame number; signed so that "no pfn" can be -1
ctypedef uint8_t pbflags_t      # one pageblock's flags: migratetype bits | PB_skip
ctypedef int64_t count_t        # page and block counters
