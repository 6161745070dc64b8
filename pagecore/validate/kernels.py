"""Debian kernels for the validation harness: find, download (apt-get download) and
unpack (dpkg -x) a linux-image package into a cache, never installing it on the host.

A kernel is named by its series ("6.1", "6.12") or its full Debian version
("6.12.118+deb12-amd64"); the series picks the newest image the archive has. The cache
is $PAGECORE_CACHE or ~/.cache/pagecore; a kernel unpacked there is used without asking
apt again, so recorded runs can be repeated offline.

To add a kernel: any Debian linux-image-*-amd64 package works (its bzImage carries
CONFIG_MEMORY_HOTPLUG, ACPI memory hotplug and the 8250 console built in); name its
series in SERIES below with the memmap_on_memory modes that kernel has.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

from pagecore.errors import ConfigError

# Series this harness knows, with the values memory_hotplug.memmap_on_memory accepts.
# "force" arrived in v6.6 (commit 2d1f649c7c08 "mm/memory_hotplug: support
# memmap_on_memory when memmap is not aligned to pageblocks"); before, the parameter is a
# bool.
SERIES = {
    "6.1": ("0", "1"),
    "6.12": ("0", "1", "force"),
}


HOST_PACKAGES = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static",
                 "apt-get": "apt", "dpkg-deb": "dpkg"}


def check_host():
    """Raise with the install command when a tool the harness needs is missing."""
    missing = [pkg for tool, pkg in HOST_PACKAGES.items() if shutil.which(tool) is None]
    if missing:
        raise ConfigError("pagecore validate needs " + ", ".join(missing) + ": apt-get update && "
                          "apt-get install -y " + " ".join(missing) + " (or use --from/--recorded)")


def cache_dir():
    return os.environ.get("PAGECORE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pagecore")


def series_of(version):
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        raise ConfigError(f"kernel {version!r}: expected a series such as 6.12 or a Debian version")
    return f"{m[1]}.{m[2]}"


def modes(version):
    s = series_of(version)
    if s not in SERIES:
        raise ConfigError(f"kernel {version!r}: the harness knows series {', '.join(SERIES)}")
    return SERIES[s]


def _unpacked():
    """{debian version: vmlinuz path} of the kernels already in the cache."""
    out = {}
    for p in glob.glob(os.path.join(cache_dir(), "kernels", "*", "boot", "vmlinuz-*")):
        out[os.path.basename(p)[len("vmlinuz-"):]] = p
    return out


def _vkey(v):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", v)]


def _archive_candidates(series):
    """Package names of the series' images in the apt archive, newest last."""
    try:
        out = subprocess.run(["apt-cache", "search", "--names-only", f"^linux-image-{re.escape(series)}"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = []
    for line in out.splitlines():
        name = line.split(" ", 1)[0]
        m = re.fullmatch(rf"linux-image-({re.escape(series)}[.\d]*[-+][\w.+-]*?-amd64)(-unsigned)?", name)
        if (m and series_of(m[1]) == series and "dbg" not in name and "-rt-" not in name
                and "cloud" not in name):
            names.append((m[1], name))
    return sorted(names, key=lambda t: _vkey(t[0]))


def find_kernel(version, download=True):
    """Path of the vmlinuz for `version`; download and unpack it when `download`."""
    have = _unpacked()
    if version in have:
        return have[version]
    series = series_of(version)
    mine = sorted((v for v in have if series_of(v) == series and v.startswith(version)), key=_vkey)
    # A bare series takes the newest image of it in the cache, a longer prefix its one match.
    if mine and (version == series or len(mine) == 1):
        return have[mine[-1]]
    if not download:
        raise ConfigError(f"kernel {version}: not in {cache_dir()}/kernels (run with downloads on)")
    cands = [c for c in _archive_candidates(series) if c[0].startswith(version)]
    if not cands:
        raise ConfigError(f"kernel {version}: no linux-image package for it in the apt archive "
                          "(apt-get update first?)")
    kver, pkg = cands[-1]
    dest = os.path.join(cache_dir(), "kernels", kver)
    debs = os.path.join(cache_dir(), "debs")
    os.makedirs(debs, exist_ok=True)
    r = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True)
    if r.returncode:
        raise ConfigError(f"apt-get download {pkg} failed: {r.stderr.strip().splitlines()[-1:]}")
    deb = sorted(glob.glob(os.path.join(debs, f"{pkg}_*.deb")))[-1]
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
    # Only the boot files are kept: the modules are not needed (everything the harness
    # uses is built in) and are most of the package's size.
    shutil.rmtree(os.path.join(tmp, "lib"), ignore_errors=True)
    shutil.rmtree(os.path.join(tmp, "usr"), ignore_errors=True)
    os.replace(tmp, dest)
    return glob.glob(os.path.join(dest, "boot", "vmlinuz-*"))[0]


def kernel_config(vmlinuz):
    """The kernel's .config (the package's boot/config-*) as {name: value}."""
    cfg = {}
    p = vmlinuz.replace("vmlinuz-", "config-")
    if os.path.exists(p):
        for line in open(p):
            if line.startswith("CONFIG_") and "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                cfg[k] = v
    return cfg
