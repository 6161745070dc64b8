"""The numpy face of `struct page`: dtypes derived from the C structs in _page.pxd.

Never write these dtypes by hand: they are read off one-element typed memoryviews of the
C structs (scikit-learn's NODE_DTYPE pattern), so the C and numpy layouts cannot drift.
"""
import numpy as np

from pagecore.kernels.page cimport page_t, vmemmap_page_t

cdef page_t _one_page
cdef vmemmap_page_t _one_vmemmap_page

#: Storage dtype of the mem_map: non-overlapping, exportable as a buffer to Cython.
PAGE_DTYPE = np.asarray(<page_t[:1]> &_one_page).dtype
#: The v3 vmemmap union arm, same size as PAGE_DTYPE.
VMEMMAP_PAGE_DTYPE = np.asarray(<vmemmap_page_t[:1]> &_one_vmemmap_page).dtype


def _union_dtype(*arms):
    """One dtype holding every field of every arm at its offset: `mem_map.view(...)`."""
    names, formats, offsets = [], [], []
    for arm in arms:
        for name, (fmt, off) in arm.fields.items():
            if name not in names:
                names.append(name)
                formats.append(fmt)
                offsets.append(off)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": arms[0].itemsize})


#: Union-style view (overlapping fields; numba accepts it, Cython buffers do not).
PAGE_UNION_DTYPE = _union_dtype(PAGE_DTYPE, VMEMMAP_PAGE_DTYPE)
PBFLAGS_DTYPE = np.dtype(np.uint8)
PFN_DTYPE = np.dtype(np.int64)

assert PAGE_DTYPE.itemsize == sizeof(page_t) == 16
assert VMEMMAP_PAGE_DTYPE.itemsize == sizeof(vmemmap_page_t) == 16
