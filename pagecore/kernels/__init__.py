"""The fast kernels and their twins, side by side under matching names: each Cython
module (`<name>.pyx`, with its `.pxd` as the contract and C in `.h` files) has a plain
numpy twin (`<name>_numpy.py`, the reference) and, where it is a hot path, a numba twin
(`<name>_numba.py`); the parity tests hold them to the same answers.

    page.pyx          struct page as a C struct, and the numpy dtypes derived from it
    buddy.pyx         FreeArea: the buddy free lists (buddy_numpy.py)
    hotplug.pyx       mark_vmemmap_pages, online_memory_blocks, the isolation scans
                      (hotplug_numpy.py, hotplug_numba.py; pageinit.h, scanblock.h)
    compaction.pyx    the compaction scanners and compact_zone_run()
                      (compaction_numpy.py, compaction_numba.py; scanblock.h)
    folio.py          split_folio() / putback_movable_pages() on the page array
    backends.py       the one registry: "cython", "numpy", "numba"

Kernels take memoryviews of the machine's arrays and plain integers and return kernel
status codes; they know nothing of the model (pagecore/mm/) above them.
"""
