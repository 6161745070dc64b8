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


# ---------------------------------------------------------------------------------------
# Host mappings under the page array (pagecore/host_memmap.py decides what goes where)
# ---------------------------------------------------------------------------------------
cdef extern from "sys/mman.h" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MAP_FIXED
    void *MAP_FAILED

cdef extern from "unistd.h" nogil:
    long sysconf(int name)
    int _SC_PAGESIZE

from libc.errno cimport errno
from libc.string cimport strerror


cdef char *_host_range(page_t[::1] mem_map, Py_ssize_t pfn, Py_ssize_t nr_pages) except NULL:
    cdef long pg = sysconf(_SC_PAGESIZE)
    if pfn < 0 or nr_pages <= 0 or pfn + nr_pages > mem_map.shape[0]:
        raise ValueError(f"pfns [{pfn}, {pfn + nr_pages}) outside the page array")
    cdef char *addr = <char *> &mem_map[pfn]
    if (<size_t> addr) % pg or (nr_pages * sizeof(page_t)) % pg:
        raise ValueError(f"pfns [{pfn}, {pfn + nr_pages}) are not whole host pages")
    return addr


def map_image(page_t[::1] mem_map, Py_ssize_t pfn, Py_ssize_t nr_pages, int fd, long offset):
    """Back the struct pages of [pfn, pfn + nr_pages) by a private (copy-on-write)
    mapping of `fd` at `offset`: they read as the file's bytes, and the first write to a
    host page gives this range its own copy of that page alone."""
    cdef char *addr = _host_range(mem_map, pfn, nr_pages)
    if mmap(addr, nr_pages * sizeof(page_t), PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_FIXED, fd, offset) == MAP_FAILED:
        raise OSError(errno, f"mmap of a memmap image: {strerror(errno).decode()}")


def map_zero(page_t[::1] mem_map, Py_ssize_t pfn, Py_ssize_t nr_pages):
    """Back the struct pages of [pfn, pfn + nr_pages) by fresh anonymous memory: they
    read as zeros and hold no host memory until written (what MADV_DONTNEED gives an
    anonymous mapping, and does not give a private file mapping: there it brings the
    file's bytes back)."""
    cdef char *addr = _host_range(mem_map, pfn, nr_pages)
    if mmap(addr, nr_pages * sizeof(page_t), PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED:
        raise OSError(errno, f"mmap of fresh memmap pages: {strerror(errno).decode()}")
