"""Mutation testing of pagecore/kernels/buddy.pyx against tests/test_buddy.py.

Each mutant is one deliberate bug in FreeArea, written as (name, old text, new text); the
old text must occur exactly once. For each, the script copies the worktree (sources and
the already built extensions, so only kernels/buddy is compiled again) to a temporary
directory, applies the mutant, builds it in place and runs tests/test_buddy.py there.
A mutant is killed when the tests fail; the script prints the first failing test of each
and exits non-zero if any mutant survives. The worktree itself is never modified.

    python tests/mutants/buddy.py            # every mutant
    python tests/mutants/buddy.py NAME ...   # some of them
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MUTANTS = [
    ("buddy-pfn-plus",                      # __find_buddy_pfn() is pfn ^ (1 << order)
     "            buddy = pfn ^ (1 << order)\n            b = &self.mem_map[buddy]",
     "            buddy = pfn + (1 << order)\n            b = &self.mem_map[buddy]"),
    ("merge-across-unmergeable-types",      # migratetype_is_mergeable() both, not either
     "if buddy_mt != mt and (not mergeable(mt) or not mergeable(buddy_mt)):",
     "if buddy_mt != mt and (not mergeable(mt) and not mergeable(buddy_mt)):"),
    ("merge-ignores-zone",                  # page_is_buddy(): same zone only
     "                break                                   # page_is_buddy(): same zone only",
     "                pass"),
    ("merge-without-retag",                 # change_pageblock_range() of the buddy
     "            if buddy_mt != mt:\n                self.retag_range(buddy,",
     "            if False:\n                self.retag_range(buddy,"),
    ("free-large-block-whole",              # free_one_page() -> split_large_buddy()
     "            if q < end:\n                q = pfn\n",
     "            if False:\n                q = pfn\n"),
    ("expand-wrong-half",                   # expand() gives back pfn + 2^high
     "            self.add(pfn + (1 << high), high, mt)",
     "            self.add(pfn + (1 << low), high, mt)"),
    ("fallback-claims-first-pageblock-only",  # try_to_claim_block(): the whole range
     "                    self.retag_range(pfn, 1 << o, mt)",
     "                    self.retag_range(pfn, 1 << self.pageblock_order, mt)"),
    ("fallback-movable-never-claims",       # can_steal_fallback(): order >= pb / 2 too
     "if o >= self.pageblock_order // 2 or mt != MIGRATE_MOVABLE:",
     "if mt != MIGRATE_MOVABLE:"),
    ("split-large-buddy-without-merge",     # split_large_buddy() frees each piece
     "                    self.free_one_page(q, self.pageblock_order)",
     "                    self.add(q, self.pageblock_order, self.get_mt(q))"),
    ("unisolate-without-remerge",           # __putback_isolated_page() -> __free_one_page()
     "            self.remove(start)\n            self.free_one_page(start, pb)\n        return moved",
     "            pass\n        return moved"),
    ("isolate-bit-ignored",                 # get_pfnblock_migratetype(): the bit wins
     "        if f & PB_migrate_isolate:\n            return MIGRATE_ISOLATE",
     "        if False:\n            return MIGRATE_ISOLATE"),
    ("watermark-off-by-one",                # __zone_watermark_ok(): free - 2^o + 1 > min
     "free_now - (1 << order) + 1 > keep_free:\n            # blocks the watermark",
     "free_now - (1 << order) > keep_free:\n            # blocks the watermark"),
    ("pcp-watermark-off-by-one",            # the same test before a pcp list is read
     "free_now - (1 << order) + 1 > keep_free:\n            if self.pcp_autotune",
     "free_now - (1 << order) > keep_free:\n            if self.pcp_autotune"),
    ("remove-stale-slot",                   # the moved entry's slot in private
     "        set_slot(self, moved, &self.mem_map[moved], order, slot, mt)\n",
     ""),
    # the per-cpu lists (FreeArea.rmqueue_pcplist() and friends)
    ("pcp-refill-not-scaled",               # v6.1: max(batch >> order, 2)
     "            if batch > 1:\n                batch = max(batch >> order, <count_t> 2)\n            return batch",
     "            return batch"),
    ("pcp-alloc-factor-never-grows",        # v6.7+ nr_pcp_alloc(): doubling refills
     "                pcp.alloc_factor += 1",
     "                pass"),
    ("pcp-high-not-raised-on-refill",       # v6.7+: high + batch towards high_max
     "            high = pcp.high = min(high + batch, pcp.high_max)",
     "            high = pcp.high"),
    ("pcp-free-factor-never-grows",         # v6.1 nr_pcp_free(): batch << free_factor
     "            pcp.free_factor += 1",
     "            pass"),
    ("pcp-frees-from-the-head",             # free_pcppages_bulk(): list_last_entry()
     "                pfn = self.pcp_take_tail(pindex, order)",
     "                self.pcp_take_head(pindex, order, 1, &pfn)"),
    ("pcp-isolated-frees-kept",             # free_unref_page(): ISOLATE to the buddy
     "            if mt != MIGRATE_ISOLATE:\n                self.mem_map[pfn].order = order",
     "            if True:\n                self.mem_map[pfn].order = order"),
    ("pcp-no-watermark-after-refill",       # the calls after a refill see it
     "                k = self.pcp_take_head(pindex, order, 1, &pfn)      # this call's block",
     "                k = self.pcp_take_head(pindex, order, count - n, &pfn)"),
    ("pcp-below-high-never-set",            # get_page_from_freelist(): ZONE_BELOW_HIGH
     "                self.below_high = True\n            if not self.pcp.lists[pindex].len:",
     "                pass\n            if not self.pcp.lists[pindex].len:"),
    ("pcp-no-free-high",                    # v6.1 free_high: orders 1..3 all given back
     "            free_high = pcp.free_factor and order and order <= PAGE_ALLOC_COSTLY_ORDER",
     "            free_high = False"),

    ("pcp-decay-by-a-quarter",              # decay_pcp_high(): high - high >> 3
     "                               pcp.high - (pcp.high >> 3)), pcp.high_min)",
     "                               pcp.high - (pcp.high >> 2)), pcp.high_min)"),
    ("listed-block-trusts-stale-slot",      # a side slot proves nothing by itself
     "                if s < self.nr[mt][o] and slot_get(self, mt, o, s) == h:",
     "                if s < self.nr[mt][o]:"),
    ("listed-block-top-order-only",         # every order from side_order up
     "        for o in range(self.nr_orders - 1, self.side_order - 1, -1):\n            h = pfn",
     "        for o in range(self.nr_orders - 1, self.nr_orders - 2, -1):\n            h = pfn"),
]


def run(name, old, new, python=sys.executable):
    tmp = tempfile.mkdtemp(prefix=f"buddy-mutant-{name}-")
    try:
        # copy2 keeps timestamps: the untouched extensions are not rebuilt
        shutil.copytree(os.path.join(ROOT, "pagecore"), os.path.join(tmp, "pagecore"),
                        copy_function=shutil.copy2,
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(tmp, "tests"),
                        ignore=shutil.ignore_patterns("__pycache__", "mutants"))
        shutil.copy2(os.path.join(ROOT, "setup.py"), tmp)
        src = os.path.join(tmp, "pagecore", "kernels", "buddy.pyx")
        text = open(src).read()
        if text.count(old) != 1:
            return "stale", f"old text found {text.count(old)} times"
        open(src, "w").write(text.replace(old, new))
        # build without pyproject.toml (old setuptools reject its license field)
        b = subprocess.run([python, "setup.py", "build_ext", "--inplace"], cwd=tmp,
                           capture_output=True, text=True)
        if b.returncode:
            return "build-failed", b.stderr[-400:]
        shutil.copy2(os.path.join(ROOT, "pyproject.toml"), tmp)
        env = dict(os.environ, PYTHONPATH=tmp)
        t = subprocess.run([python, "-m", "pytest", "-vv", "-x", "-p", "no:cacheprovider",
                            "tests/test_buddy.py"], cwd=tmp, env=env, capture_output=True,
                           text=True)
        if t.returncode == 0:
            return "SURVIVED", ""
        failed = re.findall(r"^FAILED (\S+)", t.stdout, re.M)
        if failed:
            return "killed", failed[0]
        # no summary: the test process died (a mutant can corrupt memory in C)
        crashed = re.findall(r"^(tests/\S+::\S+)", t.stdout, re.M)
        return "killed", (f"pytest exited {t.returncode} (crash) in "
                          f"{crashed[-1] if crashed else 'tests/test_buddy.py'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(names):
    chosen = [m for m in MUTANTS if not names or m[0] in names]
    survived = 0
    for name, old, new in chosen:
        status, detail = run(name, old, new)
        survived += status != "killed"
        print(f"{name:40s} {status:9s} {detail}", flush=True)
    print(f"{len(chosen) - survived}/{len(chosen)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
