"""Calibration: the pagecore machine that reproduces a real machine's boot.

`calibrate(texts)` reads a machine's /proc/meminfo, /proc/zoneinfo and, when given,
/proc/vmstat, /proc/iomem and its memory block listing, and returns a MachineConfig
whose booted Machine has, zone by zone, the kernel's start_pfn, spanned, present and
managed pages (so MemTotal), the same free pages (so MemFree) and, where the inputs
allow it, the same boot watermarks, protection and min_free_kbytes. It also returns the
notes of what the files did not determine and was assumed.

How each number is reproduced:

  nodes, spans, present   the top-level "System RAM" ranges of /proc/iomem (the e820
                          usable map, as the kernel registered it), rounded inward to
                          whole pages as memblock does (0x9fc00 -> 0x9f000), minus the
                          memory of offline blocks. On a PC, pfn 0 (BIOS data) and
                          [640 KiB, 1 MiB) are no RAM, so ZONE_DMA starts at pfn 1 and
                          spans 4095 pages of which 3998 are present, as the kernel says.
                          Without iomem, each zone's span is taken as one range (holes
                          cannot be known).
  managed                 per zone, what the boot memmap, x86's reserved first 1 MiB and
                          the probe machine leave, minus the kernel's managed count, is
                          memblock-reserved (kernel image, page tables, percpu, hash
                          tables, swiotlb, ...): NodeConfig.reserved, top-down.
  boot watermarks         computed by the kernel before the initrd and __init memory
                          were freed (init_per_zone_wmark_min() is a postcore_initcall,
                          hugepage_init() a subsys_initcall; free_initrd_mem() and
                          free_initmem() come later): NodeConfig.late_free is the page
                          count, in the zone of the kernel image, that makes the boot
                          watermarks come out as recorded (the smallest such count, or
                          the one the boot log's "Freeing ..." lines give when it fits).
  protection              lowmem_reserve is computed with the late-freed pages too,
                          unless something read /proc/sys/vm/lowmem_reserve_ratio after
                          boot: lowmem_reserve_ratio_sysctl_handler() recomputes it even
                          on a read (v6.1 and v6.12). Whichever matches is kept
                          (MachineConfig.sysctl_read_lowmem_reserve_ratio).
  MemFree                 pages in use after boot: LRU pages (meminfo Active + Inactive
                          + Unevictable) become boot_used_movable; the rest of each
                          zone's managed - free, per-cpu list pages (zoneinfo "count")
                          included, becomes NodeConfig.used (unmovable), so every zone's
                          free count matches, not only the sum.
  THP, block size, wsf    from the texts "thp" (/sys/kernel/mm/transparent_hugepage/
                          enabled), "block_size_bytes" and "watermark_scale_factor" when
                          given; else Debian's defaults (always; the arch's probe; 10).

`from_record(rec)` calibrates a run recorded by pagecore.validate.record from its
baseline and sets the kernel series, THP mode and memmap strategy of that run.
`MachineConfig.from_proc(DIR)` reads the files from a directory.
"""
from __future__ import annotations

import os
import re
from dataclasses import replace

from pagecore.arch import ZONE_NAMES, get_arch
from pagecore.errors import ConfigError
from pagecore.config import MachineConfig, NodeConfig
from pagecore.mm import huge_memory, page_alloc
from pagecore.mm.huge_memory import THP_MODES
from pagecore.machine import Machine
from pagecore.mm.page_alloc import LOWMEM_RESERVE_RATIO
from pagecore.validate import procparse

__all__ = ["calibrate", "calibrate_dir", "from_record", "read_proc_dir", "machine_toml",
           "strategy_for"]

BOOT_ZONES = ("DMA", "DMA32", "Normal")
# What the recorded Debian 6.1/6.12 guests show (memory_hotplug.kernel_allocs_after_online(),
# memory.create_memory_block_devices()); a calibrated machine models a real kernel, so it has both.
ONLINE_KERNEL_ALLOCS = 80
KOBJ_BYTES_PER_BLOCK = 5 * 1024

# "Freeing ..." lines of the boot log that return memblock-reserved memory to the buddy
# after the boot watermarks were set (init/initramfs.c free_initrd_mem(),
# mm/page_alloc.c free_reserved_area() callers: free_initmem(), mark_rodata_ro(),
# mem_encrypt_free_decrypted_mem()). "Freeing SMP alternatives" is earlier (start_kernel).
_LATE_FREE_RE = re.compile(r"Freeing (?:initrd memory|unused kernel image \([^)]*\) memory|"
                           r"unused decrypted memory): (\d+)K")


def strategy_for(mode, kernel):
    """pagecore strategy of memory_hotplug.memmap_on_memory=`mode` on `kernel`: 0 ->
    "boot" (memmap from boot memory), 1 -> "block-5.13" before v6.8 (whole-range altmap
    rules of v5.13-v6.5) and "block" from v6.8, "force" -> "force" (v6.6+)."""
    mode = str(mode)
    if mode in ("0", "N", "n"):
        return "boot"
    if mode in ("1", "Y", "y"):
        return "block" if tuple(kernel) >= (6, 8) else "block-5.13"
    if mode == "force":
        if tuple(kernel) < (6, 6):
            raise ConfigError(f"memmap_on_memory=force needs v6.6 or later, kernel is "
                              f"{'.'.join(map(str, kernel))}")
        return "force"
    raise ConfigError(f"memmap_on_memory={mode!r}: expected 0, 1 or force")


def _kernel_tuple(kernel):
    if kernel is None:
        return None
    if isinstance(kernel, (tuple, list)):
        return tuple(int(x) for x in kernel[:2])
    m = re.match(r"(\d+)\.(\d+)", str(kernel))
    if not m:
        raise ConfigError(f"kernel {kernel!r}: expected a version such as 6.12")
    return int(m[1]), int(m[2])


def _thp_mode(text):
    m = re.search(r"\[(\w+)\]", text or "")
    if not m or m[1] not in THP_MODES:
        raise ConfigError(f"thp {text!r}: expected the text of /sys/kernel/mm/"
                          "transparent_hugepage/enabled, e.g. \"[always] madvise never\"")
    return m[1]


def _blocks(texts):
    b = texts.get("blocks")
    if b is None:
        return {}
    if isinstance(b, dict):
        return {int(k): v for k, v in b.items()}
    return procparse.blocks(b)


def _zone_key(name):
    nid, zone = name.split()[1], name.split()[2]
    return int(nid), zone


def _late_free_hint(dmesg):
    """Pages the boot log says were freed after the watermarks were set, or None."""
    if not dmesg:
        return None
    lines = dmesg.splitlines() if isinstance(dmesg, str) else dmesg
    kb = [int(m[1]) for line in lines for m in [_LATE_FREE_RE.search(line)] if m]
    return sum(kb) // 4 if kb else None


def calibrate(texts, kernel=None):
    """(MachineConfig, notes) reproducing the machine whose texts are given.

    texts: "meminfo", "zoneinfo" (required); "vmstat", "iomem", "blocks" (the harness
    listing "id phys_index state valid_zones..." or procparse.blocks() output),
    "block_size_bytes" (hex, as sysfs prints it), "thp", "min_free_kbytes",
    "watermark_scale_factor", "lowmem_reserve_ratio", "dmesg" (optional).
    kernel: "6.12", (6, 12) or a full version; None infers it from the texts.
    """
    notes = []
    for k in ("meminfo", "zoneinfo"):
        if not texts.get(k):
            raise ConfigError(f"calibrate: the {k} text is missing (/proc/{k} is required)")
    meminfo = procparse.meminfo(texts["meminfo"])
    zi = procparse.zoneinfo(texts["zoneinfo"])
    if not zi:
        raise ConfigError("calibrate: zoneinfo has no \"Node N, zone NAME\" sections")
    for k in ("MemTotal", "MemFree"):
        if k not in meminfo:
            raise ConfigError(f"calibrate: meminfo has no {k} line")
    vm = procparse.vmstat(texts["vmstat"]) if texts.get("vmstat") else {}

    # -- kernel --------------------------------------------------------------------------
    k = _kernel_tuple(kernel)
    if k is None:
        promo = any("promo" in z for z in zi.values())
        k = (6, 12) if promo else (6, 1)
        notes.append(f"kernel: not given; assumed {k[0]}.{k[1]} (zoneinfo "
                     f"{'prints' if promo else 'does not print'} the promo watermark)")

    # -- zones as the kernel reports them -------------------------------------------------
    rec_zones = {}
    for name, z in zi.items():
        nid, zname = _zone_key(name)
        if zname in ZONE_NAMES:
            rec_zones[(nid, zname)] = z
        elif z.get("present"):
            raise ConfigError(f"calibrate: zone {name} has present pages; pagecore models "
                              f"{', '.join(ZONE_NAMES)}")
    nids = sorted({n for n, _ in rec_zones})
    if nids != list(range(len(nids))):
        raise ConfigError(f"calibrate: nodes {nids}: pagecore numbers nodes 0..N-1")
    for (nid, zname), z in rec_zones.items():
        if zname == "Movable" and z.get("present"):
            raise ConfigError(f"calibrate: Node {nid} Movable has {z['present']} present pages "
                              "at boot (kernelcore=/movablecore=): not modelled")
    arch = get_arch("x86_64")
    ps = arch.page_size

    # -- boot ranges ------------------------------------------------------------------------
    blocks = _blocks(texts)
    bsz = texts.get("block_size_bytes")
    block_size = int(str(bsz).strip(), 16) if bsz else None
    if block_size is None:
        notes.append("block size: not given; the arch's probe (128 MiB below 64 GiB of boot "
                     "memory on x86_64 VMs)")
    ranges = []
    if texts.get("iomem"):
        for s, e in procparse.iomem(texts["iomem"]):
            s2, e2 = -(-s // ps) * ps, e // ps * ps
            if e2 > s2:
                ranges.append((s2, e2))
        if not ranges or ranges == [(0, 0)]:
            raise ConfigError("calibrate: iomem has no System RAM addresses (read it as root)")
        if blocks and block_size:
            off = [b for b, v in blocks.items() if v.get("state") == "offline"]
            for b in off:
                lo, hi = b * block_size, (b + 1) * block_size
                ranges = [p for s, e in ranges for p in ((s, min(e, lo)), (max(s, hi), e))
                          if p[1] > p[0]]
            if off:
                notes.append(f"memory blocks {off} are offline: left out of the boot memory")
    else:
        notes.append("iomem: not given; each zone's span is taken as one RAM range (present "
                     "pages in holes cannot be known)")
        for (nid, zname), z in rec_zones.items():
            if z.get("spanned"):
                s = z["start_pfn"] * ps
                ranges.append((s, s + z["spanned"] * ps))
    ranges.sort()
    # Each range to the node whose zones span it.
    node_ranges = {n: [] for n in nids}
    for s, e in ranges:
        owner = None
        for (nid, zname), z in rec_zones.items():
            if z.get("spanned") and z["start_pfn"] * ps <= s and e <= (z["start_pfn"] + z["spanned"]) * ps:
                owner = nid
        if owner is None:
            owner = nids[0] if len(nids) == 1 else None
        if owner is None:
            raise ConfigError(f"calibrate: RAM {s:#x}-{e - 1:#x} is in no node's zone span")
        node_ranges[owner].append((s, e - s))

    # -- THP, sysctls ------------------------------------------------------------------------
    if texts.get("thp"):
        thp = _thp_mode(texts["thp"])
    else:
        thp = "always"
        notes.append("thp: not given; assumed \"always\" (Debian's CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS)")
    wsf = int(str(texts.get("watermark_scale_factor") or 10).strip())
    lrr = texts.get("lowmem_reserve_ratio")
    if lrr and [int(x) for x in str(lrr).split()][:4] != list(LOWMEM_RESERVE_RATIO):
        notes.append(f"lowmem_reserve_ratio {lrr.split()}: pagecore uses "
                     f"{list(LOWMEM_RESERVE_RATIO)}; protection will differ")

    # -- CPUs: the pagesets list one row per online CPU (zoneinfo_show_print()) -------------
    ncpu = max((z.get("pcp_cpus", 0) for z in zi.values()), default=0)
    cpus = {n: True for n in nids}
    if ncpu > 1 and len(nids) == 1:
        cpus[nids[0]] = ncpu
    elif ncpu > 1:
        notes.append(f"cpus: zoneinfo lists {ncpu} CPUs but not their nodes; one CPU per "
                     "node assumed (set machine.node.cpus: pcp high and the vmstat "
                     "thresholds depend on it)")
    base = MachineConfig(arch="x86_64", kernel=k,
                         nodes=[NodeConfig(boot=node_ranges[n], cpus=cpus[n]) for n in nids],
                         is_vm=True, block_size=block_size, kernel_reserved=0, thp=thp,
                         watermark_scale_factor=wsf, strategy="boot",
                         online_kernel_allocs=ONLINE_KERNEL_ALLOCS,
                         hotplug_kobj_bytes_per_block=KOBJ_BYTES_PER_BLOCK)

    # -- reservations: probe managed - recorded managed ---------------------------------------
    probe = _boot(base)
    reserved = {n: {} for n in nids}
    for (nid, zname), z in rec_zones.items():
        pz = probe.zone(nid, ZONE_NAMES.index(zname))
        got = (pz.zone_start_pfn if pz.spanned_pages else None, pz.spanned_pages, pz.present_pages)
        want = (z.get("start_pfn") if z.get("spanned") else None, z.get("spanned", 0), z.get("present", 0))
        if got != want:
            notes.append(f"Node {nid} {zname}: start_pfn/spanned/present {want} from the "
                         f"kernel, {got} from the RAM ranges")
        extra = pz.managed_pages - z.get("managed", 0)
        if extra < 0:
            notes.append(f"Node {nid} {zname}: the kernel manages {-extra} pages more than the "
                         "boot memmap and x86's first 1 MiB leave: not reproduced")
        elif extra and zname in BOOT_ZONES:
            reserved[nid][zname] = extra
    cfg = replace(base, nodes=[replace(nc, reserved=reserved[n]) for n, nc in zip(nids, base.nodes)])

    # -- boot watermarks: pages freed after they were set ------------------------------------
    kzone = _kernel_zone(texts.get("iomem"), arch, rec_zones, nids)
    m = _boot(cfg)
    mfk_text = texts.get("min_free_kbytes")
    want_mfk = int(str(mfk_text).strip()) if mfk_text is not None else None
    late = _solve_late_free(m, rec_zones, kzone, _late_free_hint(texts.get("dmesg")), notes,
                            want_mfk)
    if late:
        nid, zname = kzone
        cfg = replace(cfg, nodes=[replace(nc, late_free={zname: late} if n == nid else {})
                                  for n, nc in zip(nids, cfg.nodes)])
    mfk = texts.get("min_free_kbytes")
    m = _boot(cfg)
    if mfk is not None and int(str(mfk).strip()) != m.min_free_kbytes:
        notes.append(f"min_free_kbytes: the kernel has {int(str(mfk).strip())}, pagecore computes "
                     f"{m.min_free_kbytes}; set as if written to the sysctl")
        cfg = replace(cfg, min_free_kbytes=int(str(mfk).strip()))
    # protection: computed before the late frees, or again after boot by a sysctl read
    if late:
        want = {key: z.get("protection", [])[:4] for key, z in rec_zones.items()}
        for flag in (False, True):
            c2 = replace(cfg, sysctl_read_lowmem_reserve_ratio=flag)
            m2 = _boot(c2)
            if all(m2.zone(n, ZONE_NAMES.index(zn)).lowmem_reserve == want[(n, zn)]
                   for (n, zn) in want if want[(n, zn)]):
                cfg = c2
                if flag:
                    notes.append("protection: recomputed after boot with every page managed, as "
                                 "a read of /proc/sys/vm/lowmem_reserve_ratio does")
                break
        else:
            notes.append("protection: matches neither the boot-time nor the recomputed "
                         "lowmem_reserve")

    # -- memory in use after boot -------------------------------------------------------------
    lru_kb = sum(meminfo.get(x, 0) for x in ("Active", "Inactive", "Unevictable"))
    movable = lru_kb * 1024 // ps * ps
    cfg = replace(cfg, boot_used_movable=movable)
    m = _boot(cfg)
    used = {n: {} for n in nids}
    for (nid, zname), z in rec_zones.items():
        if zname not in BOOT_ZONES or not z.get("managed"):
            continue
        extra = m.zone(nid, ZONE_NAMES.index(zname)).free_pages - z.get("free", 0)
        if extra < 0:
            notes.append(f"Node {nid} {zname}: {-extra} more pages free in the kernel than "
                         "pagecore has after the LRU pages: not reproduced")
        elif extra:
            used[nid][zname] = extra
    cfg = replace(cfg, nodes=[replace(nc, used=used[n]) for n, nc in zip(nids, cfg.nodes)])
    pcp = sum(z.get("pcp_count", 0) for z in rec_zones.values())
    notes.append(f"MemFree: {movable // ps} LRU pages (Active + Inactive + Unevictable) booked as "
                 "movable, the rest of managed - free per zone as unmovable, including "
                 f"{pcp} pages on the per-cpu lists (zoneinfo count: not free to the buddy)")

    m = _boot(cfg)
    _check(m, rec_zones, meminfo, vm, notes)
    return cfg, notes


def _boot(cfg):
    try:
        return Machine(cfg)
    except ConfigError as e:
        raise ConfigError(f"calibrate: the calibrated machine does not boot: {e}") from None


def _kernel_zone(iomem, arch, rec_zones, nids):
    """(nid, zone name) of the kernel image ("Kernel code" in iomem); else the largest
    boot zone of node 0."""
    if iomem:
        m = re.search(r"([0-9a-f]+)-[0-9a-f]+ : Kernel code", iomem)
        if m:
            pfn = int(m[1], 16) >> arch.page_shift
            for (nid, zname), z in rec_zones.items():
                if z.get("spanned") and z["start_pfn"] <= pfn < z["start_pfn"] + z["spanned"]:
                    return nid, zname
    best = max(((z.get("managed", 0), nid, zname) for (nid, zname), z in rec_zones.items()
                if zname in BOOT_ZONES and nid == nids[0]), default=(0, 0, "DMA32"))
    return best[1], best[2]


def _boot_wmarks(m, nid, zid, late):
    """The boot watermarks and min_free_kbytes with `late` pages of zone (nid, zid) not yet
    managed: the kernel's boot order on the booted machine's counters."""
    z0 = m.zone(nid, zid)
    saved = ([list(z.watermark) for z in m.zones()], m.min_free_kbytes, m.khugepaged_running,
             m.user_min_free_kbytes, m.thp_mode, [list(z.lowmem_reserve) for z in m.zones()])
    z0.managed_pages -= late
    try:
        for z in m.zones():
            z.watermark = [0, 0, 0]
        m.khugepaged_running, m.user_min_free_kbytes = False, None
        m.setup_per_zone_wmarks()
        huge_memory.hugepage_init(m)
        return [tuple(z.watermark) for z in m.zones()], m.min_free_kbytes
    finally:
        z0.managed_pages += late
        for z, w, r in zip(m.zones(), saved[0], saved[5]):
            z.watermark, z.lowmem_reserve = w, r
        page_alloc.zone_sync_watermarks(m)      # the FreeAreas' copies, as they were
        m.min_free_kbytes, m.khugepaged_running, m.user_min_free_kbytes, m.thp_mode = saved[1:5]


def _solve_late_free(m, rec_zones, kzone, hint, notes, want_mfk=None):
    """Pages of `kzone` freed after the boot watermarks: the boot log's count when it
    reproduces the recorded watermarks (and min_free_kbytes, which int_sqrt() computes
    from the same smaller lowmem when THP is off), else the smallest count that does (0
    when none does, with a note)."""
    want = []
    for z in m.zones():
        r = rec_zones.get((z.nid, z.name))
        want.append((r["min"], r["low"], r["high"]) if r else None)

    def fits(x):
        got, mfk = _boot_wmarks(m, kzone[0], ZONE_NAMES.index(kzone[1]), x)
        return (want_mfk is None or mfk == want_mfk) and \
            all(w is None or g == w for g, w in zip(got, want))

    if fits(0):
        return 0
    if hint is not None and fits(hint):
        notes.append(f"boot watermarks: set before {hint} pages of {kzone[1]} were freed "
                     "(the boot log's \"Freeing ...\" lines)")
        return hint
    zone = m.zone(kzone[0], ZONE_NAMES.index(kzone[1]))
    limit = min(zone.managed_pages, 1 << 18)
    for x in range(1, limit):
        if fits(x):
            notes.append(f"boot watermarks: set before {x} pages of {kzone[1]} were freed (the "
                         "smallest count that reproduces them; initrd and __init memory)")
            return x
    notes.append("boot watermarks: no count of late-freed pages reproduces them; computed "
                 "from the final managed pages")
    return 0


def _check(m, rec_zones, meminfo, vm, notes):
    """Notes for every number the calibrated machine does not reproduce."""
    kb = m.arch.page_size >> 10
    for (nid, zname), r in rec_zones.items():
        z = m.zone(nid, ZONE_NAMES.index(zname))
        for f, got in (("spanned", z.spanned_pages), ("present", z.present_pages),
                       ("managed", z.managed_pages), ("free", z.free_pages)):
            if r.get(f, 0) != got:
                notes.append(f"Node {nid} {zname} {f}: kernel {r.get(f, 0)}, pagecore {got}")
    if meminfo["MemTotal"] != m.mem_total_pages * kb:
        notes.append(f"MemTotal: kernel {meminfo['MemTotal']} kB, pagecore {m.mem_total_pages * kb} kB")
    if meminfo["MemFree"] != m.mem_free_pages * kb:
        notes.append(f"MemFree: kernel {meminfo['MemFree']} kB, pagecore {m.mem_free_pages * kb} kB")
    if "nr_memmap_boot_pages" in vm and vm["nr_memmap_boot_pages"] != m.nr_memmap_boot_pages:
        notes.append(f"nr_memmap_boot_pages: kernel {vm['nr_memmap_boot_pages']}, pagecore "
                     f"{m.nr_memmap_boot_pages}")


# ---------------------------------------------------------------------------------------
# recorded runs and directories
# ---------------------------------------------------------------------------------------
def from_record(rec, notes=None):
    """MachineConfig of a run recorded by pagecore.validate.record, from its baseline:
    kernel series rec["series"], THP mode rec["params"]["thp"], and the strategy of its
    memmap_on_memory mode (strategy_for())."""
    raw = rec.get("baseline_raw")
    if not raw:
        raise ConfigError(f"run {rec.get('scenario')!r}: no baseline_raw (the guest did not boot: "
                          f"{rec.get('result')})")
    params = rec.get("params", {})
    texts = dict(raw)
    texts.update({k: params[k] for k in ("thp", "block_size_bytes", "watermark_scale_factor",
                                         "lowmem_reserve_ratio") if k in params})
    boot = next((o for o in rec.get("ops", []) if o.get("op") == "boot"), None)
    if boot and boot.get("dmesg"):
        texts["dmesg"] = boot["dmesg"]
    kernel = _kernel_tuple(rec["series"])
    cfg, n = calibrate(texts, kernel=kernel)
    if notes is not None:
        notes.extend(n)
    return replace(cfg, strategy=strategy_for(rec["memmap_on_memory"], kernel))


def read_proc_dir(path):
    """The calibrate() texts from a directory holding a machine's meminfo, zoneinfo and
    optionally vmstat, iomem, min_free_kbytes, dmesg and sys/devices/system/memory/ (also
    sys/kernel/mm/transparent_hugepage/enabled, sys/vm/watermark_scale_factor)."""
    if not os.path.isdir(path):
        raise ConfigError(f"calibrate --proc {path}: not a directory")
    texts = {}

    def rd(*parts):
        p = os.path.join(path, *parts)
        if os.path.isfile(p):
            with open(p, errors="replace") as f:
                return f.read()
        return None

    for k in ("meminfo", "zoneinfo", "vmstat", "iomem", "min_free_kbytes", "dmesg"):
        v = rd(k)
        if v is not None:
            texts[k] = v
    for k, parts in (("thp", ("sys", "kernel", "mm", "transparent_hugepage", "enabled")),
                     ("watermark_scale_factor", ("sys", "vm", "watermark_scale_factor")),
                     ("watermark_scale_factor", ("watermark_scale_factor",)),
                     ("lowmem_reserve_ratio", ("sys", "vm", "lowmem_reserve_ratio")),
                     ("thp", ("thp",))):
        v = rd(*parts)
        if v is not None and k not in texts:
            texts[k] = v
    mem = os.path.join(path, "sys", "devices", "system", "memory")
    if os.path.isdir(mem):
        v = rd("sys", "devices", "system", "memory", "block_size_bytes")
        if v:
            texts["block_size_bytes"] = v.strip()
        rows = {}
        for d in os.listdir(mem):
            m = re.fullmatch(r"memory(\d+)", d)
            if not m:
                continue
            st = rd("sys", "devices", "system", "memory", d, "state")
            vz = rd("sys", "devices", "system", "memory", d, "valid_zones") or ""
            if st:
                rows[int(m[1])] = {"phys_index": int(m[1]), "state": st.strip(),
                                   "valid_zones": vz.split()}
        if rows:
            texts["blocks"] = rows
    for k in ("meminfo", "zoneinfo"):
        if k not in texts:
            raise ConfigError(f"calibrate --proc {path}: no {k} file (copy /proc/{k} there)")
    return texts


def calibrate_dir(path, kernel=None):
    """calibrate() of the files in directory `path` (read_proc_dir())."""
    return calibrate(read_proc_dir(path), kernel=kernel)


# ---------------------------------------------------------------------------------------
# TOML
# ---------------------------------------------------------------------------------------
def machine_toml(cfg, notes=()):
    """The [machine] table (and its [[machine.node]] tables) of a scenario file that boots
    `cfg`, with the notes as comments."""
    lines = [f"# {n}" for n in notes]
    lines += ["[machine]", f'arch = "{cfg.arch}"', f'kernel = "{cfg.kernel[0]}.{cfg.kernel[1]}"',
              f"is_vm = {str(cfg.is_vm).lower()}"]
    if cfg.block_size:
        lines.append(f"block_size = {cfg.block_size}              # {cfg.block_size >> 20} MiB")
    lines += [f"kernel_reserved = {cfg.kernel_reserved}",
              f"boot_used_unmovable = {cfg.boot_used_unmovable}",
              f"boot_used_movable = {cfg.boot_used_movable}",
              f'thp = "{cfg.thp}"']
    if cfg.watermark_scale_factor != 10:
        lines.append(f"watermark_scale_factor = {cfg.watermark_scale_factor}")
    if cfg.min_free_kbytes is not None:
        lines.append(f"min_free_kbytes = {cfg.min_free_kbytes}")
    if cfg.sysctl_read_lowmem_reserve_ratio:
        lines.append("sysctl_read_lowmem_reserve_ratio = true")
    lines.append(f"online_kernel_allocs = {cfg.online_kernel_allocs}")
    lines.append(f"hotplug_kobj_bytes_per_block = {cfg.hotplug_kobj_bytes_per_block}")
    for nc in cfg.nodes:
        lines += ["", "[[machine.node]]"]
        boot = ", ".join(f"[{s}, {n}]" for s, n in nc.boot)
        lines.append(f"boot = [{boot}]")
        lines.append("# " + ", ".join(f"[{s:#x}, {s + n:#x})" for s, n in nc.boot))
        if not nc.cpus:
            lines.append("cpus = false")
        elif nc.cpus is not True:
            lines.append(f"cpus = {int(nc.cpus)}")
        for key in ("reserved", "late_free", "used"):
            tab = getattr(nc, key)
            if tab:
                lines.append(f"{key} = {{ " + ", ".join(f"{z} = {v}" for z, v in tab.items()) + " }")
    return "\n".join(lines) + "\n"
