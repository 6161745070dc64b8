"""mm/vmstat.c: the per-cpu vmstat thresholds and the vmstat worker. Modelled:
calculate_normal_threshold() and refresh_zone_stat_thresholds(), the same in v6.1 and
v6.12, which init_per_zone_wmark_min() calls on every online and offline; the running
CPU's vmstat_update() / refresh_cpu_vm_stats() with its pageset work (decay_pcp_high(),
the remote-zone drain). Not modelled: the per-cpu counter deltas the threshold bounds
(every counter is exact; refresh_cpu_vm_stats() says what stands in for them), and
kswapd's set_pgdat_percpu_threshold(calculate_pressure_threshold) while it runs.
"""
from __future__ import annotations

from pagecore.mm.mmzone import RUNNING_CPU, cpu_to_node, num_online_cpus


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


#: refresh_cpu_vm_stats(): a pass that only counts down a remote zone's pcp->expire is
#: work, so the worker goes on until the drain: v6.7, "mm: fix draining PCP of remote
#: zone". Before it, such a pass found nothing to do and the worker stopped (vmstat:
#: on-demand vmstat workers V8, v4.3), leaving an idle CPU's remote pages on its list.
REMOTE_EXPIRE_IS_WORK_SINCE = (6, 7)


def refresh_cpu_vm_stats(m):
    """refresh_cpu_vm_stats(true) of the running CPU (mm/vmstat.c, v6.1 and v6.12),
    per populated zone in zone order:

    * the fold: a zone whose per-cpu NR_FREE_PAGES diff is not zero has it folded and
      its pcp->expire set to 3 ("3 seconds idle till flush"). pagecore keeps exact
      counters, not per-cpu diffs, so a diff is taken as not zero exactly when the
      zone's NR_FREE_PAGES moved since the last fold (the kernel's residue could be 0
      by chance, or be another counter: pagecore keeps no other zone counter);
    * decay_pcp_high() (v6.7+; v6.1 has none);
    * CONFIG_NUMA (Debian's kernels): a zone of another node than the CPU's with pages
      on its list counts pcp->expire down, and at 0 drain_zone_pages() gives back
      min(count, batch) of them (the drain's frees are the next pass's fold, so an idle
      CPU empties a remote list a batch every third pass on v6.7+); a local zone's
      expire is cleared.

    Returns whether anything changed (v6.1: the folds and drains; v6.7+: also the
    decay and the countdown, REMOTE_EXPIRE_IS_WORK_SINCE)."""
    changed = False
    nid = cpu_to_node(m, RUNNING_CPU)
    countdown_is_work = m.kernel >= REMOTE_EXPIRE_IS_WORK_SINCE
    for z in m.zones():
        if not z.populated:
            continue
        fa = z.free_area
        free = fa.nr_free_pages()
        if free != z.vm_stat_folded_free:           # fold_diff()
            z.vm_stat_folded_free = free
            z.pcp_expire = 3
            changed = True
        if fa.py_decay_pcp_high():
            changed = True
        if not z.pcp_expire or not fa.pcp_count:
            continue
        if z.nid == nid:                            # never drain a local zone
            z.pcp_expire = 0
            continue
        z.pcp_expire -= 1
        if z.pcp_expire:
            changed |= countdown_is_work
            continue
        fa.drain_zone_pages()
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
