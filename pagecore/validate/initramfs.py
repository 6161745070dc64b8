"""The guest's initramfs: busybox-static as PID 1 and a command agent on the second serial port.

The agent reads one command a line from /dev/ttyS1 ("ID<TAB>shell command"), runs it
with busybox sh, and answers with the output framed by markers that carry the exit
status, so the host can tell a failed sysfs write (EBUSY, EINVAL, ENOMEM) from a
success without parsing prose. The kernel console stays on ttyS0, so printk lines never
mix into command output.
"""
from __future__ import annotations

import io
import os
import shutil
import stat

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

# PID 1. `set -m` is off on purpose: the agent must never be stopped by job control.
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
stty -F /dev/ttyS1 raw -echo 115200
# w FILE VALUE: write VALUE to FILE; on failure print "ERRNO=<strerror text>" (the
# shell's "write error: ..." message) and return 1.
w() {
    if ! echo -n "$2" > "$1" 2>/tmp/werr; then
        echo "ERRNO=$(sed -n 's/.*error: //p' /tmp/werr)"; return 1
    fi
    return 0
}
# snap: everything the harness records after a step, as "@@F name" sections.
snap() {
    for f in meminfo zoneinfo vmstat buddyinfo; do echo "@@F $f"; cat /proc/$f; done
    echo "@@F min_free_kbytes"; cat /proc/sys/vm/min_free_kbytes
    echo "@@F blocks"
    for d in /sys/devices/system/memory/memory*; do
        echo "${d##*memory} $(cat $d/phys_index) $(cat $d/state) $(cat $d/valid_zones 2>/dev/null)"
    done
}
# params: the memory_hotplug module parameters and the boot facts calibration needs.
params() {
    for p in /sys/module/memory_hotplug/parameters/*; do echo "@@F param.${p##*/}"; cat $p; done
    echo "@@F block_size_bytes"; cat /sys/devices/system/memory/block_size_bytes
    echo "@@F auto_online_blocks"; cat /sys/devices/system/memory/auto_online_blocks
    echo "@@F thp"; cat /sys/kernel/mm/transparent_hugepage/enabled
    echo "@@F iomem"; cat /proc/iomem
    echo "@@F cmdline"; cat /proc/cmdline
    echo "@@F lowmem_reserve_ratio"; cat /proc/sys/vm/lowmem_reserve_ratio
    echo "@@F watermark_scale_factor"; cat /proc/sys/vm/watermark_scale_factor
}
exec 3<>/dev/ttyS1
echo "@@READY $(uname -r)" >&3
while IFS='	' read -r id cmd <&3; do
    [ -z "$id" ] && continue
    ( eval "$cmd" ) > /tmp/out 2>&1
    rc=$?
    echo "@@BEGIN $id" >&3
    cat /tmp/out >&3
    echo "@@END $id $rc" >&3
done
echo "agent: command channel closed" > /dev/console
poweroff -f
"""


def _cpio_entry(out, ino, name, mode, data=b"", rdev=(0, 0)):
    """One entry of the "newc" cpio format that the kernel's initramfs unpacker reads
    (init/initramfs.c): a 110-byte hex header, the name, the data, each 4-byte aligned."""
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{x:08x}" for x in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def find_busybox():
    for p in BUSYBOX_CANDIDATES:
        if os.path.exists(p):
            with open(p, "rb") as f:
                head = f.read(4096)
            # A dynamically linked busybox would need the host's libc in the guest.
            if b"/lib64/ld-linux" not in head and b"ld-linux" not in head:
                return p
    return None


def build(path, busybox=None):
    """Write the initramfs to `path` (a newc cpio archive, uncompressed); return it."""
    bb = busybox or find_busybox()
    if not bb:
        raise FileNotFoundError("busybox-static is not installed (apt-get install busybox-static)")
    out = io.BytesIO()
    with open(bb, "rb") as f:
        busybox_bytes = f.read()
    entries = [(d, stat.S_IFDIR | 0o755, b"", (0, 0))
               for d in ("bin", "dev", "proc", "sys", "tmp", "sbin", "usr", "usr/bin", "usr/sbin")]
    entries += [("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
                ("bin/busybox", stat.S_IFREG | 0o755, busybox_bytes, (0, 0)),
                ("init", stat.S_IFREG | 0o755, INIT.encode(), (0, 0)),
                ("TRAILER!!!", 0, b"", (0, 0))]
    for ino, (name, mode, data, rdev) in enumerate(entries, 2):
        _cpio_entry(out, ino, name, mode, data, rdev)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(out.getvalue())
    shutil.move(tmp, path)
    return path
