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


def refresh_cpu_vm_stats(m):
    """refresh_cpu_vm_stats(true) of the running CPU (mm/vmstat.c), its pageset half:
    decay_pcp_high() of every populated zone (v6.7+; v6.1 has none). pagecore keeps no
    per-cpu stat deltas, and the remote-node drain (drain_zone_pages() after 3 idle
    seconds) is not modelled. Returns whether anything changed."""
    changed = False
    for z in m.zones():
        if z.populated and z.free_area.py_decay_pcp_high():
            changed = True
    return changed


def vmstat_update(m, max_passes=None):
    """vmstat_update() every sysctl_stat_interval (1 s) while refresh_cpu_vm_stats()
    finds work: `max_passes` seconds of a quiet CPU, or until it settles (pcp->high back
    at high_min, the pages above it given back). Returns the passes run."""
    n = 0
    while max_passes is None or n < max_passes:
        n += 1
        if not refresh_cpu_vm_stats(m):
            break
    return n
