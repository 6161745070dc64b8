"""mm/vmstat.c: the per-cpu vmstat thresholds. Modelled: calculate_normal_threshold()
and refresh_zone_stat_thresholds(), the same in v6.1 and v6.12, which
init_per_zone_wmark_min() calls on every online and offline. Not modelled: the per-cpu
counter deltas the threshold bounds (every counter is exact), and kswapd's
set_pgdat_percpu_threshold(calculate_pressure_threshold) while it runs.
"""
from __future__ import annotations

from pagecore.mm.mmzone import num_online_cpus


def fls(x):
    """fls(): the 1-based index of the last set bit, 0 for 0."""
    return int(x).bit_length()


def calculate_normal_threshold(m, zone):
    """calculate_normal_threshold(): 2 * fls(num_online_cpus()) * (1 + fls(managed in
    128 MiB units)), at most 125. The unit is 2^(27 - PAGE_SHIFT) pages whatever the
    page size."""
    mem = zone.managed_pages >> (27 - m.arch.page_shift)
    return min(125, 2 * fls(num_online_cpus(m)) * (1 + fls(mem)))


def refresh_zone_stat_thresholds(m):
    """refresh_zone_stat_thresholds(): every populated zone's threshold from its managed
    pages now; an unpopulated zone keeps its last one (no view prints it)."""
    for z in m.zones():
        if z.populated:
            z.stat_threshold = calculate_normal_threshold(m, z)
