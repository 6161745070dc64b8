"""A QEMU guest driven by the harness: QMP for the machine (DIMMs), the agent on ttyS1
for the kernel's view (sysfs writes and /proc reads), the console (ttyS0) to a log.

One Guest is one boot. KVM is used when /dev/kvm works, TCG otherwise. Every wait has
a deadline; when the guest dies (panic, OOM killing PID 1, the wall-clock limit), calls
raise GuestDied, which the runner records as the run's result instead of crashing.
"""
from __future__ import annotations

import errno
import json
import os
import select
import socket
import subprocess
import tempfile
import time

from pagecore.validate import initramfs

MiB, GiB = 1 << 20, 1 << 30
_ERRNO_BY_TEXT = {os.strerror(n).lower(): name for n, name in errno.errorcode.items()}
# ACPI _OST status codes for an eject request (ACPI 6.x, table "Status Codes"): 0x84 is
# "ejection in progress", the others refuse; success is 0.
OST_EJECT_IN_PROGRESS = 0x84
OST_SOURCE_EJECT = 3


class GuestDied(RuntimeError):
    """The guest stopped answering: `reason` is "panic", "oom", "timeout" or "exit"."""

    def __init__(self, reason, detail=""):
        super().__init__(f"guest {reason}: {detail}".strip())
        self.reason, self.detail = reason, detail


def kvm_usable():
    """/dev/kvm opens and KVM_CREATE_VM succeeds (a nested VM without VT-x fails here)."""
    try:
        import fcntl
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    try:
        vm = fcntl.ioctl(fd, 0xAE01, 0)          # KVM_CREATE_VM
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


_KVM_FAILED = []


def boot(vmlinuz, **kw):
    """A booted Guest: KVM when it works, else TCG.

    /dev/kvm can open and create a VM and still fail at the first vCPU run (nested
    setups without VT-x: "failed to set MSR"); such a boot dies before the agent's
    READY, and the boot is retried under TCG, once per process."""
    if kw.get("accel") or _KVM_FAILED or not kvm_usable():
        return Guest(vmlinuz, **{**kw, "accel": kw.get("accel") or "tcg"})
    try:
        return Guest(vmlinuz, **{**kw, "accel": "kvm"})
    except GuestDied:
        _KVM_FAILED.append(True)
        return Guest(vmlinuz, **{**kw, "accel": "tcg"})


class _Lines:
    """Line reader over a stream socket with deadlines."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:
                    raise EOFError from None
                if not chunk:
                    raise EOFError
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")


class Guest:
    """Boot `vmlinuz` with `mem` bytes of boot RAM and room for `slots` DIMMs up to `maxmem`."""

    def __init__(self, vmlinuz, *, mem, maxmem, slots, append="", timeout=600, workdir=None,
                 accel=None, log=None, nodes=1):
        self.workdir = workdir or tempfile.mkdtemp(prefix="pagecore-guest-")
        self.deadline = time.monotonic() + timeout
        self.log = log or (lambda msg: None)
        self.accel = accel or ("kvm" if kvm_usable() else "tcg")
        self.events = []                     # QMP events seen while waiting for replies
        self.console_path = os.path.join(self.workdir, "console.log")
        initrd = initramfs.build(os.path.join(self.workdir, "initrd.cpio"))
        ctl = os.path.join(self.workdir, "ctl.sock")
        qmp = os.path.join(self.workdir, "qmp.sock")
        self.cmdline = ("console=ttyS0 earlyprintk=ttyS0 panic=-1 oops=panic loglevel=6 "
                        "memhp_default_state=offline " + append).strip()
        maxmem = max(maxmem, mem + slots * 128 * MiB)
        args = ["qemu-system-x86_64", "-machine", f"pc,accel={self.accel}", "-nodefaults",
                "-no-reboot", "-display", "none", "-smp", "1",
                "-m", f"{mem // MiB}M,slots={slots},maxmem={maxmem // MiB}M",
                "-kernel", vmlinuz, "-initrd", initrd, "-append", self.cmdline,
                "-serial", f"file:{self.console_path}",
                "-serial", f"unix:{ctl},server=on,wait=on",
                "-qmp", f"unix:{qmp},server=on,wait=off"]
        if nodes > 1:
            # the boot RAM on node 0, nodes 1.. memoryless until a DIMM is added to them
            # (pc-dimm "node"): a node's compaction then sees the hot-added zone alone
            args += ["-object", f"memory-backend-ram,id=ram0,size={mem // MiB}M",
                     "-numa", "node,nodeid=0,cpus=0,memdev=ram0"]
            args += [a for n in range(1, nodes) for a in ("-numa", f"node,nodeid={n}")]
        if self.accel == "kvm":
            args += ["-cpu", "host"]
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.workdir)
        self.ctl = self._connect(ctl)
        self.qmp = self._connect(qmp)
        self._qmp_lines = _Lines(self.qmp)
        self._ctl_lines = _Lines(self.ctl)
        try:
            greeting = self._qmp_read()
        except GuestDied:
            self.close()
            raise
        self.qemu_version = greeting.get("QMP", {}).get("version", {}).get("qemu", {})
        self.qmp_cmd("qmp_capabilities")
        self.seq = 0
        try:
            self.uname = self._wait_ready()
        except GuestDied:
            self.close()
            raise
        self._dmesg_seen = 0

    # -- plumbing ------------------------------------------------------------------------
    def _connect(self, path):
        while True:
            if self.proc.poll() is not None:
                raise GuestDied("exit", self.proc.stdout.read().decode(errors="replace")[-400:])
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                return s
            except OSError:
                if time.monotonic() > self.deadline:
                    raise GuestDied("timeout", "QEMU did not open its sockets")
                time.sleep(0.05)

    def _died(self):
        """Why the guest stopped, from the console log."""
        text = self.console()
        if "Out of memory" in text or "oom-kill" in text:
            reason = "oom"
        elif "Kernel panic" in text:
            reason = "panic"
        elif time.monotonic() >= self.deadline:
            reason = "timeout"
        else:
            reason = "exit"
        lines = [l for l in text.splitlines() if "panic" in l.lower() or "out of memory" in l.lower()]
        return GuestDied(reason, " | ".join(lines[-3:])[:500])

    def console(self):
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _wait_ready(self):
        while True:
            try:
                line = self._ctl_lines.readline(self.deadline)
            except (TimeoutError, EOFError):
                raise self._died() from None
            if line.startswith("@@READY"):
                return line.split(" ", 1)[1]

    def _qmp_read(self):
        try:
            return json.loads(self._qmp_lines.readline(self.deadline))
        except (TimeoutError, EOFError):
            raise self._died() from None

    def qmp_cmd(self, execute, **arguments):
        """Run a QMP command; return its "return" or raise RuntimeError with its "error"."""
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.qmp.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._qmp_read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"QMP {execute}: {r['error'].get('desc', r['error'])}")
            return r.get("return")

    def sh(self, cmd, timeout=120):
        """Run `cmd` in the guest's busybox sh; return (status, output)."""
        if self.proc.poll() is not None:
            raise self._died()
        self.seq += 1
        tag = str(self.seq)
        self.ctl.sendall(f"{tag}\t{cmd}\n".encode())
        deadline = min(self.deadline, time.monotonic() + timeout)
        out, inside = [], False
        while True:
            try:
                line = self._ctl_lines.readline(deadline)
            except (TimeoutError, EOFError):
                raise self._died() from None
            if line == f"@@BEGIN {tag}":
                inside = True
            elif line.startswith(f"@@END {tag} "):
                return int(line.rsplit(" ", 1)[1]), "\n".join(out)
            elif inside:
                out.append(line)

    def read(self, path):
        rc, out = self.sh(f"cat {path}")
        return out if rc == 0 else None

    def write(self, path, value):
        """Write to a sysfs file; return None on success, else the errno name ("EBUSY")."""
        rc, out = self.sh(f"w {path} {value}")
        if rc == 0:
            return None
        msg = out.replace("ERRNO=", "").strip()
        return _ERRNO_BY_TEXT.get(msg.lower(), msg or f"status {rc}")

    def new_dmesg(self):
        """printk lines since the last call (dmesg -c keeps the log from repeating)."""
        rc, out = self.sh("dmesg -c")
        return out.splitlines() if rc == 0 else []

    # -- DIMMs ---------------------------------------------------------------------------
    def add_dimm(self, dimm_id, size, addr=None, node=0):
        self.qmp_cmd("object-add", **{"qom-type": "memory-backend-ram", "id": f"mem-{dimm_id}",
                                      "size": size})
        args = {"driver": "pc-dimm", "id": dimm_id, "memdev": f"mem-{dimm_id}", "node": node}
        if addr is not None:
            args["addr"] = addr
        try:
            self.qmp_cmd("device_add", **args)
        except RuntimeError:
            self.qmp_cmd("object-del", id=f"mem-{dimm_id}")
            raise
        return self.qmp_cmd("qom-get", path=f"/machine/peripheral/{dimm_id}", property="addr")

    def remove_dimm(self, dimm_id, timeout=60):
        """device_del, then wait for the guest to eject it (DEVICE_DELETED) or refuse.

        The guest ejects only after offlining and removing the memory itself
        (acpi_memory_device_remove()); when it cannot, QEMU keeps the DIMM and the
        guest answers _OST with a refusal (or the deadline passes): returned as False."""
        self.events = []
        self.qmp_cmd("device_del", id=dimm_id)
        end = min(self.deadline, time.monotonic() + timeout)
        while time.monotonic() < end:
            for ev in self.events:
                data = ev.get("data", {})
                if ev.get("event") == "DEVICE_DELETED" and data.get("device") == dimm_id:
                    self.qmp_cmd("object-del", id=f"mem-{dimm_id}")
                    return True
                info = data.get("info", {})
                if (ev.get("event") == "ACPI_DEVICE_OST" and info.get("device") == dimm_id
                        and info.get("source") == OST_SOURCE_EJECT
                        and info.get("status") not in (0, OST_EJECT_IN_PROGRESS)):
                    return False
            try:
                r = json.loads(self._qmp_lines.readline(min(end, time.monotonic() + 1)))
                if "event" in r:
                    self.events.append(r)
            except TimeoutError:
                pass
            except EOFError:
                raise self._died() from None
        return False

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.qmp_cmd("quit")
                except Exception:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for s in (getattr(self, "ctl", None), getattr(self, "qmp", None)):
                if s:
                    s.close()
