"""mm/huge_memory.c: whether transparent huge pages are on, as hugepage_init() decides at
boot. Modelled: the "enabled" mode and the small-machine default (THP off below 512 MiB).
Not modelled: THP allocation itself (workloads allocate order-9 blocks directly), the
shrinker, deferred splitting.
"""
from __future__ import annotations

from pagecore.arch import MiB
from pagecore.errors import ConfigError
from pagecore.mm import khugepaged

#: /sys/kernel/mm/transparent_hugepage/enabled values (MachineConfig.thp).
THP_MODES = ("always", "madvise", "never")


def thp_enabled(m):
    """hugepage_flags_enabled() (v6.1) / hugepage_pmd_enabled() (v6.12): "always" or
    "madvise", unless hugepage_init() turned THP off on a small machine."""
    return m.thp_mode != "never"


def hugepage_init(m):
    """hugepage_init() (mm/huge_memory.c, v6.1 and v6.12): THP is off by default when
    totalram_pages() < 512 MiB; otherwise start_stop_khugepaged() starts khugepaged
    and calls set_recommended_min_free_kbytes()."""
    if m.config.thp not in THP_MODES:
        raise ConfigError(f"thp={m.config.thp!r}: expected one of {', '.join(THP_MODES)} "
                          "(/sys/kernel/mm/transparent_hugepage/enabled)")
    m.thp_mode = m.config.thp
    if m.mem_total_pages < (512 * MiB) >> m.arch.page_shift:
        m.thp_mode = "never"
        return
    m.khugepaged_running = m.thp_enabled
    khugepaged.set_recommended_min_free_kbytes(m)

