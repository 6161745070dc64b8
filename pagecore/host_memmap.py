"""Host memory under the simulated memmap: what backs `Machine.mem_map`, and images of
onlined memory blocks shared copy-on-write.

The page array is one anonymous MAP_NORESERVE mapping of 16 B per pfn of the physical
address space, so host memory goes only where struct pages are written. Onlining writes
every struct page of a block, 2 MiB of host memory per 128 MiB block (16 GiB per TiB of
4 KiB pages): more than this host has at 16 TiB.

The kernel has the same problem at boot and does not write every struct page either:
with DEFERRED_STRUCT_PAGE_INIT, memmap_init_range() initialises only part of each node
and deferred_init_memmap() / deferred_grow_zone() (mm/mm_init.c, v6.4+; mm/page_alloc.c
before) the rest when it is needed. pagecore's counterpart is on the host side and keeps
every rule exact: a block freshly onlined into a zone reads, page for page, like any
other block of that zone with the same vmemmap layout (same flags, the free chunks of
online_pages_range() as PageBuddy heads of the same orders; a free block of order >=
pageblock_order keeps its list slot beside the page, buddy.pxd). So the first such block
is onlined the ordinary way, its struct pages are copied once into a memfd (its
"image"), and every later block like it is backed by a private (copy-on-write) mapping
of that image: it reads as the image, costs no host memory, and the first write to a
host page (4 KiB: 256 struct pages) gives that block its own copy of that page alone.
No kernel, view or test reads the page array any differently: the bytes are the bytes
the ordinary path writes, and tests/test_host_memmap.py holds snapshot() of both paths
equal. What remains to pay is a page-table entry per host page read (8 B per 4 KiB of
memmap); and since ru_maxrss counts a shared page once per mapping that has read it,
the whole-zone scans pass the pageblocks the free lists prove free without reading
them (FreeArea.listed_block(): compaction, pageblock_pfn_to_page(), the workload's
scan), so those images are never read.

Which blocks qualify (online_pages_image_ok()): those whose free chunks all go to the
buddy at order >= the free area's side order with no merge, that is nr_vmemmap a
multiple of a pageblock and the block whole max-order blocks (true for every x86 and
arm64 preset here), and not the v3 seed's layout (its vmemmap run spans the whole added
range, so blocks differ). The mapping is undone by release_host_pages() (offline and
remove): MADV_DONTNEED would bring the image back, so the range is mapped afresh.

When: copy-on-write costs a fault and a 4 KiB copy per host page written later, where
the ordinary path's first touch is one fault per 2 MiB (THP), so a workload that goes on
to write most of the memory runs slower from images (the 4 TiB lifecycle of
benchmarks/bench_lifecycle.py: 51 s against 33 s). The default, "auto", therefore writes
a batch while its struct pages fit the host with room to spare and maps images only when
they would not: when writing them would leave less than max(2 GiB, MemTotal / 8) of
MemAvailable (/proc/meminfo, read at each online_pages() call, so a machine onlined block
by block turns to images as the host fills). PAGECORE_MEMMAP_IMAGES=1 (or
Machine(..., memmap_images=True)) always maps images where a block qualifies, =0 (False)
never does; the environment is read at Machine creation. The choice changes host memory
and speed, never an observable.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from pagecore.errors import ConfigError
from pagecore.kernels import page as P

#: Bytes of memfd per image: copies of one block's struct pages, so that one mapping
#: covers a run of that many blocks (2 MiB images: 32 blocks, 4 GiB, per mapping; a
#: 16 TiB zone then takes 4096 mappings, well under vm.max_map_count = 65530).
IMAGE_FILE_BYTES = 64 << 20


def images_default():
    """The image mode of a new Machine from $PAGECORE_MEMMAP_IMAGES: "0" False, "1"
    True, unset or "auto" "auto"."""
    v = os.environ.get("PAGECORE_MEMMAP_IMAGES", "auto")
    if v not in ("0", "1", "auto"):
        raise ConfigError(f"PAGECORE_MEMMAP_IMAGES={v!r}: expected 0, 1 or auto")
    return {"0": False, "1": True}.get(v, "auto")


def host_headroom_bytes():
    """(MemAvailable, the headroom "auto" keeps: max(2 GiB, MemTotal / 8)) in bytes."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            info[k] = int(v.split()[0]) << 10
    return info["MemAvailable"], max(2 << 30, info["MemTotal"] // 8)


class MemmapImages:
    """The images of one machine: key -> (memfd, blocks it holds, bytes per block)."""

    def __init__(self, mode):
        if mode not in (True, False, "auto"):
            raise ConfigError(f"memmap_images={mode!r}: expected True, False or 'auto'")
        self.mode = mode if hasattr(os, "memfd_create") else False
        self.files = {}
        self.mapped_blocks = 0          # blocks ever backed by an image (for reports)

    def wanted(self, nr_pages):
        """Whether a batch onlining `nr_pages` struct pages should map images."""
        if self.mode != "auto":
            return self.mode
        try:
            avail, headroom = host_headroom_bytes()
        except (OSError, KeyError, ValueError):
            return False
        return avail - nr_pages * P.PAGE_DTYPE.itemsize < headroom

    def __del__(self):
        for fd, _, _ in self.files.values():
            try:
                os.close(fd)
            except OSError:
                pass

    def image_fd(self, key, nr_blocks, image=None):
        """The memfd of `key` holding at least min(nr_blocks, its cap) copies of its
        image (`image`, the struct pages of one block as bytes, makes a new one); made
        or grown here. Returns (fd, copies)."""
        fd, have, size = self.files.get(key, (None, 0, len(image or b"")))
        want = max(1, min(nr_blocks, IMAGE_FILE_BYTES // size))
        if fd is None:
            fd = os.memfd_create("pagecore-memmap-image", os.MFD_CLOEXEC)
        if have < want:
            image = image or os.pread(fd, size, 0)
            os.ftruncate(fd, want * size)
            for i in range(have, want):
                os.pwrite(fd, image, i * size)
            have = want
        self.files[key] = (fd, have, size)
        return fd, have


def online_pages_image_ok(m, zone, strategy, nr_vmemmap):
    """Whether blocks with these nr_vmemmap values (one per block of the batch) are
    onlined into `zone` from an image (module docstring: which blocks qualify, and when
    images are wanted)."""
    fa, nb = zone.free_area, m.block_pages
    host = mmap.PAGESIZE // P.PAGE_DTYPE.itemsize
    return (not strategy.seed_v3 and nb % host == 0
            and nb % (1 << (fa.nr_orders - 1)) == 0
            and not (np.asarray(nr_vmemmap) % (1 << fa.side_order)).any()
            and m.memmap_images.wanted(nb * len(nr_vmemmap)))


def map_block_images(m, key, starts, image_pfn=None):
    """Back the struct pages of the blocks at `starts` (block start pfns, ascending) by
    the image `key`; a new image is first taken from the block at `image_pfn`, which the
    ordinary path has just onlined."""
    nb = m.block_pages
    starts = np.asarray(starts, dtype=np.int64)
    image = None if image_pfn is None else m.mem_map[image_pfn:image_pfn + nb].tobytes()
    # runs of consecutive blocks, each mapped in pieces of at most `copies` blocks
    pieces = np.split(starts, np.flatnonzero(np.diff(starts) != nb) + 1) if len(starts) else []
    fd, copies = m.memmap_images.image_fd(key, max((len(r) for r in pieces), default=1), image)
    for run in pieces:
        for i in range(0, len(run), copies):
            k = min(copies, len(run) - i)
            P.map_image(m.mem_map, int(run[i]), k * nb, fd, 0)
    m.memmap_images.mapped_blocks += len(starts)


def release_host_pages(m, s, e):
    """Give the host memory under the struct pages of [s, e) back and leave them zero:
    whole host pages are mapped afresh (an image mapping goes with them), the partial
    ones at the edges are zeroed."""
    isz = P.PAGE_DTYPE.itemsize
    per = mmap.PAGESIZE // isz                  # struct pages per host page
    lo, hi = -(-s // per) * per, e // per * per
    if hi > lo:
        P.map_zero(m.mem_map, lo, hi - lo)
        m.mem_map[s:lo] = 0
        m.mem_map[hi:e] = 0
    else:
        m.mem_map[s:e] = 0
