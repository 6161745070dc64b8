"""Memmap allocation strategies: where the `struct page` array of hot-added memory lives.

A strategy answers three questions for `add_memory()` and one for `remove_memory()`:
  * `plan()`: how the range is cut into arch_add_memory() calls and which of them get a
    vmem_altmap of how many pages (mm/memory_hotplug.c: add_memory_resource());
  * the kernel generation whose rules apply (`kernel`): page states of self-hosted
    vmemmap pages, their pageblock migratetype, the seed v3 page type;
  * `check_remove()`: the removal granularity rule of that generation.

Write your own by subclassing `MemmapStrategy` and passing an instance (or registering it
with `register()`); see README "Strategies of your own".
"""
from dataclasses import dataclass

from pagecore.errors import ConfigError, GranularityError

_REGISTRY = {}


@dataclass(frozen=True)
class AddUnit:
    """One arch_add_memory() call: [start_pfn, start_pfn + nr_pages), with an altmap of
    `altmap_free` pages (None: memmap from the buddy allocator, the classic path)."""
    start_pfn: int
    nr_pages: int
    altmap_free: int | None = None
    waste: int = 0          # pages reserved for alignment and never used (force mode)


class MemmapStrategy:
    """Base class. Subclasses set `name`, `kernel` and implement `plan`."""
    name = "?"
    kernel = (6, 12)
    description = ""
    #: seed v3: self-hosted vmemmap pages carry PGTY_VMEMMAP and head/tail metadata.
    seed_v3 = False

    def plan(self, machine, start_pfn, nr_pages):
        raise NotImplementedError

    def check_remove(self, machine, start_pfn, nr_pages):
        """Raise GranularityError when [start_pfn, +nr_pages) may not be removed at once."""

    def __repr__(self):
        return f"<strategy {self.name}: {self.description}>"


def register(strategy):
    """Make a strategy instance available by name (for scenarios and the CLI)."""
    _REGISTRY[strategy.name] = strategy
    return strategy


def get_strategy(name_or_strategy):
    if isinstance(name_or_strategy, MemmapStrategy):
        return name_or_strategy
    try:
        return _REGISTRY[name_or_strategy]
    except KeyError:
        raise ConfigError(f"unknown memmap strategy {name_or_strategy!r}; known: "
                          f"{', '.join(_REGISTRY)}") from None


def all_strategies():
    return dict(_REGISTRY)


# ---- the rules shared by the upstream generations -----------------------------------
def memory_block_memmap_pages(machine, force=False):
    """memory_block_memmap_on_memory_pages() (mm/memory_hotplug.c, v6.6+): PFN_UP of the
    block's memmap, rounded up to whole pageblocks in force mode."""
    arch = machine.arch
    v = arch.memmap_pages(machine.block_pages)
    if force:
        v = -(-v // arch.pageblock_nr_pages) * arch.pageblock_nr_pages
    return v


def arch_supports_memmap_on_memory(arch, vmemmap_bytes):
    """arch_supports_memmap_on_memory(): generic is PMD alignment (mm/memory_hotplug.c);
    ppc64 radix with 64K pages always says yes (arch/powerpc/mm/book3s64/radix_pgtable.c)."""
    if arch.name == "ppc64-64k":
        return True
    return vmemmap_bytes % arch.pmd_size == 0


def arch_has_memmap_on_memory(machine, generation):
    """ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE in the kernel whose rules apply: both the machine's
    kernel and the strategy's generation must have it (ppc64 from v6.6, s390 from v6.8,
    docs/model.md#who-passes-mhp_memmap_on_memory). A v5.13-6.5 strategy on s390 therefore falls back like the kernels
    of that era did: their s390 arch_add_memory() refused any altmap."""
    arch = machine.arch
    if arch.name == "x86_64":
        return True
    since = arch.memmap_on_memory_since
    return machine.kernel >= since and tuple(generation) >= since


def supports_v66(machine, force=False, size_pages=None, generation=(6, 12)):
    """mhp_supports_memmap_on_memory() of v6.6+ (v6.6-6.7 also take the size). Returns
    (ok, reason)."""
    arch = machine.arch
    if not arch_has_memmap_on_memory(machine, generation):
        return False, f"{arch.name} has no memmap_on_memory before {arch.memmap_on_memory_since}"
    vm_bytes = arch.memmap_bytes(machine.block_pages)
    v = memory_block_memmap_pages(machine, force)
    if size_pages is not None and size_pages != machine.block_pages:
        return False, "range is not exactly one memory block"
    if vm_bytes % arch.page_size:
        return False, "memmap is not whole pages"
    if v % arch.pageblock_nr_pages:
        return False, (f"memmap of {v} pages is not a multiple of pageblock_nr_pages="
                       f"{arch.pageblock_nr_pages} (force mode would pad it)")
    if v == machine.block_pages:
        return False, "memmap would fill the whole block"
    if not arch_supports_memmap_on_memory(arch, vm_bytes):
        return False, f"memmap of {vm_bytes:#x} bytes is not PMD ({arch.pmd_size:#x}) aligned"
    return True, ""


def _uniform_altmaps(machine, start_pfn, nr_pages):
    """memory_blocks_have_altmaps() (v6.8+): all blocks or none self-host their memmap."""
    v = machine.blocks_in(start_pfn, nr_pages)["nr_vmemmap"]
    if (v > 0).any() and not (v > 0).all():
        raise GranularityError(
            f"range {machine.fmt_range(start_pfn, nr_pages)} mixes blocks with and without "
            "a self-hosted memmap (memory_blocks_have_altmaps(): WARN, -EINVAL)")


# ---- the strategies ------------------------------------------------------------------
class Boot(MemmapStrategy):
    name = "boot"
    description = "memmap_on_memory off: memmap from the buddy of online memory at add time"

    def plan(self, machine, start_pfn, nr_pages):
        return [AddUnit(start_pfn, nr_pages)]

    def check_remove(self, machine, start_pfn, nr_pages):
        _uniform_altmaps(machine, start_pfn, nr_pages)


class SeedRange(MemmapStrategy):
    """The seed series v3 (2019, never merged): one memmap at the start of each
    add_memory() range; removal must cover exactly the added range."""
    name = "range"
    kernel = (5, 3)
    seed_v3 = True
    description = "seed v3: one self-hosted memmap per add_memory() range (whole range)"

    def plan(self, machine, start_pfn, nr_pages):
        arch = machine.arch
        per_section = arch.memmap_bytes(arch.pages_per_section)
        # v3 had no pageblock check (docs/model.md#strategies-by-kernel-generation); its vmemmap only
        # makes sense when each section's memmap is whole PMDs and whole pageblocks.
        if per_section % arch.pmd_size or (per_section // arch.page_size) % arch.pageblock_nr_pages:
            raise ConfigError(f"strategy 'range' (seed v3) needs x86_64-like geometry; on "
                              f"{arch.name} a section's memmap is {per_section:#x} bytes")
        return [AddUnit(start_pfn, nr_pages, altmap_free=nr_pages)]

    def check_remove(self, machine, start_pfn, nr_pages):
        # check_hotplug_granularity() (seed patch 3/4): BUG_ON in the kernel. Its vmemmap
        # head sits at the start of the range it was added with, so every self-hosted v3
        # range the removal touches must be exactly the removal, not only the range at
        # the removal's start (boot memory or another range there would hide it).
        import numpy as np
        rids = np.unique(machine.blocks_in(start_pfn, nr_pages)["range_id"]).tolist()
        for rid in rids:
            rng = machine.ranges.get(rid)
            if rng is None or not rng.self_hosted or not rng.strategy.seed_v3:
                continue
            if (rng.start_pfn, rng.nr_pages) == (start_pfn, nr_pages):
                continue
            raise GranularityError(
                f"remove {machine.fmt_range(start_pfn, nr_pages)} does not match the range "
                f"{machine.fmt_range(rng.start_pfn, rng.nr_pages)} added with a whole-range "
                "memmap (check_hotplug_granularity(): vmemmap_nr_sections(head) * "
                "PAGES_PER_SECTION != size)")


class Block513(MemmapStrategy):
    """v5.13-v6.5: the flag works only for a range of exactly one memory block."""
    name = "block-5.13"
    kernel = (5, 13)
    description = "v5.13-6.5: self-hosted only for one-block adds (ACPI falls back otherwise)"

    def __init__(self, einval=False):
        self.einval = einval        # True: the caller insists (-EINVAL), like a forced flag

    def supported(self, machine, nr_pages):
        arch = machine.arch
        if not arch_has_memmap_on_memory(machine, self.kernel):
            return False
        size = nr_pages
        vm = arch.memmap_bytes(size)
        return (size == machine.block_pages and vm % arch.pmd_size == 0 and
                (size * arch.page_size - vm) % (arch.pageblock_nr_pages * arch.page_size) == 0)

    def plan(self, machine, start_pfn, nr_pages):
        if self.supported(machine, nr_pages):
            return [AddUnit(start_pfn, nr_pages, altmap_free=nr_pages)]
        if self.einval:
            raise ConfigError(f"MHP_MEMMAP_ON_MEMORY for {machine.fmt_range(start_pfn, nr_pages)}"
                              " is unsupported: v5.13 needs exactly one memory block (-EINVAL)")
        return [AddUnit(start_pfn, nr_pages)]

    def check_remove(self, machine, start_pfn, nr_pages):
        v = machine.blocks_in(start_pfn, nr_pages)["nr_vmemmap"]
        if (v > 0).any() and nr_pages != machine.block_pages:
            raise GranularityError(f"remove {machine.fmt_range(start_pfn, nr_pages)}: a block "
                                   "hosts its memmap, so removal must be one block at a time "
                                   "(try_remove_memory(): -EINVAL, wrong granularity)")


class Block66(Block513):
    """v6.6-v6.7: altmap stored per block, exact size, silent fallback for other sizes."""
    name = "block-6.6"
    kernel = (6, 6)
    description = "v6.6-6.7: altmap per memory block for one-block adds, silent fallback"
    force = False

    def plan(self, machine, start_pfn, nr_pages):
        ok, _ = supports_v66(machine, self.force, nr_pages, self.kernel)
        if not ok:
            return [AddUnit(start_pfn, nr_pages)]
        v = memory_block_memmap_pages(machine, self.force)
        return [AddUnit(start_pfn, nr_pages, v, v - machine.arch.memmap_pages(nr_pages))]


class Block68(MemmapStrategy):
    """v6.8+: a multi-block add is split into one altmap per memory block (6b8f0798b85a)."""
    name = "block"
    kernel = (6, 12)
    force = False
    description = "v6.8+: one self-hosted memmap per memory block, any add size"

    def plan(self, machine, start_pfn, nr_pages):
        ok, _ = supports_v66(machine, self.force, generation=self.kernel)
        if not ok:
            return [AddUnit(start_pfn, nr_pages)]
        v = memory_block_memmap_pages(machine, self.force)
        waste = v - machine.arch.memmap_pages(machine.block_pages)
        n = machine.block_pages
        return [AddUnit(p, n, v, waste) for p in range(start_pfn, start_pfn + nr_pages, n)]

    def check_remove(self, machine, start_pfn, nr_pages):
        _uniform_altmaps(machine, start_pfn, nr_pages)


class Force(Block68):
    """memmap_on_memory=force (v6.6+): pad the memmap to whole pageblocks; the padding
    is wasted and reported."""
    name = "force"
    force = True
    description = "v6.8+ force: per-block memmap padded to whole pageblocks"


for _s in (Boot(), SeedRange(), Block513(), Block66(), Block68(), Force()):
    register(_s)
