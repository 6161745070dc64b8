"""The mutant list for tests/mutants/run.py: one rule each, broken on purpose.

Each entry: name, file, the exact source text (found exactly once) and its replacement,
and optionally the tests to run (default DEFAULT_TESTS). The first six are the changes
issue 12 found surviving the whole suite; the next three break the altmap size and zone
selection, which the recorded real-kernel runs pin; the rest, grouped under comments,
break the vmstat worker's remote drain, the scans that pass listed free blocks unread
compaction's v6.9+ target rule, and the free scanner's stop and list order.
"""
DEFAULT_TESTS = "tests/test_kernel_replay.py tests/test_calibrate.py tests/test_kernel_rules.py tests/test_procfs.py"

MUTANTS = [
    {"name": "wmark-step-tmp>>3", "file": "pagecore/mm/page_alloc.py",
     "old": "step = max(tmp >> 2, z.managed_pages * wsf // 10000)",
     "new": "step = max(tmp >> 3, z.managed_pages * wsf // 10000)"},
    {"name": "lowmem-reserve-normal-ratio-64", "file": "pagecore/mm/page_alloc.py",
     "old": "LOWMEM_RESERVE_RATIO = (256, 256, 32, 0)",
     "new": "LOWMEM_RESERVE_RATIO = (256, 256, 64, 0)"},
    {"name": "movable-min-clamp-16", "file": "pagecore/mm/page_alloc.py",
     "old": "wmin = min(max(z.managed_pages // 1024, 32), 128)",
     "new": "wmin = min(max(z.managed_pages // 1024, 16), 128)"},
    {"name": "min-free-kbytes-sqrt-x8", "file": "pagecore/mm/page_alloc.py",
     "old": "new = math.isqrt(nr_free_buffer_pages(m) * kb * 16)",
     "new": "new = math.isqrt(nr_free_buffer_pages(m) * kb * 8)"},
    {"name": "watermark-scale-factor-20", "file": "pagecore/config.py",
     "old": "watermark_scale_factor: int = 10",
     "new": "watermark_scale_factor: int = 20"},
    {"name": "memavailable-pagecache-not-halved", "file": "pagecore/mm/show_mem.py",
     "old": "available += file_pages - min(file_pages // 2, wmark_low)",
     "new": "available += file_pages - min(file_pages, wmark_low)"},
    {"name": "altmap-size-halved", "file": "pagecore/strategies.py",
     "old": "v = arch.memmap_pages(machine.block_pages)",
     "new": "v = arch.memmap_pages(machine.block_pages) // 2"},
    {"name": "zone-default-online-movable", "file": "pagecore/mm/memory_hotplug.py",
     "old": "return mov if m.config.movable_node else k",
     "new": "return k if m.config.movable_node else mov"},
    {"name": "online-kernel-to-dma32", "file": "pagecore/mm/memory_hotplug.py",
     "old": "    return node.zones[P.ZONE_NORMAL]\n",
     "new": "    return node.zones[P.ZONE_DMA32]\n"},
    # the vmstat worker's remote drain (pagecore/mm/vmstat.py)
    {"name": "remote-drain-countdown-no-work-on-6.12", "file": "pagecore/mm/vmstat.py",
     "old": "REMOTE_EXPIRE_IS_WORK_SINCE = (6, 7)",
     "new": "REMOTE_EXPIRE_IS_WORK_SINCE = (6, 13)",
     "tests": "tests/test_kernel_rules.py"},
    {"name": "remote-drain-local-zone-too", "file": "pagecore/mm/vmstat.py",
     "old": "        if z.nid == nid:                            # never drain a local zone",
     "new": "        if False:",
     "tests": "tests/test_kernel_rules.py"},
    {"name": "remote-drain-whole-list", "file": "pagecore/mm/vmstat.py",
     "old": "        fa.drain_zone_pages()",
     "new": "        fa.drain_pages()",
     "tests": "tests/test_kernel_rules.py"},
    # the scans that pass listed free blocks unread
    {"name": "section-pfn-last-match", "file": "pagecore/mm/memory_hotplug.py",
     "old": "            return int(part[hit[0]])",
     "new": "            return int(part[hit[-1]])"},
    {"name": "valid-pageblocks-listed-shifted", "file": "pagecore/compaction.py",
     "old": "        heads = np.concatenate([fa.blocks(mt, o) for mt in range(P.MIGRATE_TYPES)])",
     "new": "        heads = np.concatenate([fa.blocks(mt, o) for mt in range(P.MIGRATE_TYPES)]) - (1 << pbo)",
     "tests": "tests/test_compaction.py"},
    # v6.9+ suitable_migration_target() in the numpy twin
    {"name": "target-order-is-pageblock-order", "file": "pagecore/kernels/compaction_numpy.py",
     "old": "    return int(cc_order) if cc_order > 0 else int(pageblock_order)",
     "new": "    return int(pageblock_order)",
     "tests": "tests/test_compaction.py"},
    # the twin's free scanner and compaction_alloc() (v6.12 mm/compaction.c)
    {"name": "free-scanner-takes-whole-pageblock", "file": "pagecore/kernels/compaction_numpy.py",
     "old": "                        scanned = stop - isolate_start          # every pfn passed counted once\n                        break",
     "new": "                        scanned = stop - isolate_start          # every pfn passed counted once",
     "tests": "tests/test_compaction.py"},
    {"name": "compaction-alloc-last-isolated-first", "file": "pagecore/kernels/compaction_numpy.py",
     "old": "self.halves[o].pop() if self.halves[o] else self.isolated[o].popleft()",
     "new": "self.halves[o].pop() if self.halves[o] else self.isolated[o].pop()",
     "tests": "tests/test_compaction.py"},
]
