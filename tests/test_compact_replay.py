"""Compaction against real kernels: the recorded node compactions
(pagecore/validate/runs/compact/*.json, recorded by `python -m pagecore.validate.compact`
from Debian's 6.1 and 6.12 kernels under QEMU) replayed on pagecore.

Each record: 1 GiB of boot RAM on node 0, one 1 GiB ACPI DIMM on node 1 at 4 GiB onlined
movable (8 blocks of 128 MiB, pfns 0x100000-0x13ffff), then compact_node() of node 1
through /sys/devices/system/node/node1/compact. Nothing is allocated there, so the free
scanner never runs and compact_migrate_scanned is the migrate scanner's count over
free blocks (and self-hosted memmap pages), the rule that v6.1 and v6.12 count apart.
"""
import glob
import os

import pytest

from pagecore.validate import compact, kernels

RUNS = sorted(glob.glob(os.path.join(compact.RUNS_DIR, "*.json")))

# The same counts by hand, from isolate_migratepages() / isolate_migratepages_block()
# (v6.1 and v6.12 mm/compaction.c). The free scanner sits in the zone's last pageblock
# from the start (cc->free_pfn), so the migrate scanner covers the other 511 and the
# scanners meet.
#   memmap in boot memory: 256 free blocks of order 10. v6.12: a block's first pageblock
#     counts its head and the jump ("nr_scanned += (1UL << freepage_order) - 1"), 1024,
#     and the scan, stopped at the pageblock's end, takes the second pageblock's 512
#     tails one by one: 255 * 1536 + 1024 (the last block's second pageblock is the free
#     scanner's) = 392704. v6.1 jumps uncounted: 255 * (1 + 512) + 1 = 130816.
#   memmap on memory (v6.12, one altmap per block): each block's first pageblock is its
#     memmap (512 pages, none on the LRU: each visited), then a free order-9 block (512)
#     and 31 order-10 blocks (1536 each): 8 * (512 + 512 + 31 * 1536) - 512 = 388608.
#     v6.1 self-hosts one-block adds only: this 8-block DIMM takes its memmap from boot
#     memory, as with mode 0.
BY_HAND = {("6.12", "0"): 392704, ("6.12", "1"): 388608, ("6.12", "force"): 388608,
           ("6.1", "0"): 130816, ("6.1", "1"): 130816}


def _key(rec):
    return kernels.series_of(rec["kernel"]), rec["memmap_on_memory"]


def test_every_kernel_and_mode_is_recorded():
    assert sorted(_key(compact.load(p)) for p in RUNS) == sorted(BY_HAND)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
@pytest.mark.parametrize("path", RUNS, ids=[os.path.basename(p)[:-5] for p in RUNS])
def test_node_compaction_matches_the_kernel(path, backend):
    """The Cython loop decides these pageblocks from the free lists; the numpy twin
    reads every page: both against the kernel."""
    rec = compact.load(path)
    assert rec["error"] is None
    got = compact.replay(rec, backend)
    assert got["zones"] == rec["zones"]
    assert got["buddyinfo_before"] == rec["buddyinfo_before"]
    assert got["buddyinfo_after"] == rec["buddyinfo_after"]
    assert got["vmstat_delta"] == {k: rec["vmstat_delta"][k] for k in got["vmstat_delta"]}
    assert rec["vmstat_delta"]["compact_migrate_scanned"] == BY_HAND[_key(rec)]
    # nothing to migrate: no isolation, no free scan, and kcompactd stayed out of it
    assert rec["vmstat_delta"]["compact_isolated"] == 0
    assert rec["vmstat_delta"]["compact_daemon_migrate_scanned"] == 0
