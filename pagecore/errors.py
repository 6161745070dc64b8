"""pagecore's exceptions: one class per kernel failure kind, raised once at the Python edge.

Kernels return kernel status codes (0, -ENOENT, -EBUSY, -ENOMEM, -EINVAL); `raise_for()`
maps a code to the exception below (each class's `errno` is the other direction). Messages name the bad value and the rule, with pfn
ranges in hex as the kernel prints them.
"""
import errno as _errno


class PagecoreError(Exception):
    """Base of every pagecore error. `errno` is the kernel's code for the failure."""
    errno = _errno.EINVAL

    def __init__(self, message, *, pfn=None, reason=None):
        super().__init__(message)
        self.pfn = pfn              # first offending pfn, when there is one
        self.reason = reason        # the kernel's short reason string, e.g. "unmovable page"


class ConfigError(PagecoreError, ValueError):
    """An impossible machine or an unknown option (unsupported geometry, bad preset)."""


class RangeError(PagecoreError, ValueError):
    """Misaligned, out-of-range or overlapping physical range (-EINVAL / -EEXIST)."""


class StateError(PagecoreError):
    """The operation does not fit the current state (block online, not present, ...)."""


class GranularityError(PagecoreError):
    """Removal does not match how the self-hosted memmap was added (seed v3:
    check_hotplug_granularity() BUG; v5.13+: -EINVAL "wrong granularity")."""


class BusyError(PagecoreError):
    """-EBUSY: an unmovable page, an isolated pageblock, memory still online."""
    errno = _errno.EBUSY


class InvariantError(PagecoreError, AssertionError):
    """Machine.check() found the machine in a state no kernel could be in (the model's
    CONFIG_DEBUG_VM: a VM_BUG_ON() or bad_page() report). Never raised by a verb: a
    refused call leaves the machine as it was, so this means a bug in pagecore."""


class OutOfMemoryError(PagecoreError, MemoryError):
    """-ENOMEM: the allocation the operation needs cannot be satisfied."""
    errno = _errno.ENOMEM


def pfn_range(start_pfn, end_pfn):
    """The kernel's way of printing a range: [mem 0x...-0x...] in pfns."""
    return f"[{start_pfn:#x}-{end_pfn - 1:#x}]"


def raise_for(rc, message, *, pfn=None, reason=None):
    """Raise the exception of kernel status code `rc` (a negative errno; no-op for rc >= 0)
    with `message`, which says what failed and where: the one map from kernel status codes
    to exceptions, the inverse of each class's `errno`."""
    if rc >= 0:
        return
    raise _BY_ERRNO.get(-rc, PagecoreError)(message, pfn=pfn, reason=reason)


#: errno -> exception: BusyError for -EBUSY, OutOfMemoryError for -ENOMEM, StateError for
#: -EINVAL (ConfigError and RangeError are refusals of the caller's arguments, not kernel
#: status codes).
_BY_ERRNO = {cls.errno: cls for cls in (StateError, BusyError, OutOfMemoryError)}
