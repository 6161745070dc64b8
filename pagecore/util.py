"""Argument checks and array helpers shared by the model: every public entry point turns
its arguments into plain ints or int64 arrays here, or raises a PagecoreError naming the
value and the rule (never a raw TypeError from deep inside)."""
from __future__ import annotations

from itertools import pairwise

import numpy as np

from pagecore.errors import ConfigError, RangeError


def is_int(value):
    """An integer argument: a Python or numpy integer, never a bool (True is not block 1),
    a float (32.5 is not block 32) or a string."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def int_arg(value, what, lo=None, hi=None, cls=None):
    """`value` as a Python int, or a PagecoreError naming the value and the rule: ConfigError
    for a wrong type, `cls` (default RangeError) for a value outside [lo, hi)."""
    if not is_int(value):
        raise ConfigError(f"{what}={value!r} is not an integer ({type(value).__name__})")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v >= hi):
        rule = (f"{lo}..{hi - 1}" if lo is not None and hi is not None else
                f">= {lo}" if lo is not None else f"< {hi}")
        raise (cls or RangeError)(f"{what}={v} is out of range (expected {rule})")
    return v


def int_array(values, what):
    """A sequence of integers (list, tuple, range, numpy integer array, one integer) as a
    1-D int64 array; floats, bools, strings and nested sequences are refused whole."""
    if isinstance(values, np.ndarray):
        if values.ndim > 1 or (values.size and values.dtype.kind not in "iu"):
            raise ConfigError(f"{what}: expected integers, got an array of {values.dtype} "
                              f"with shape {values.shape}")
        if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
            raise RangeError(f"{what}: {int(values.max())} is out of range")
        return np.asarray(values, dtype=np.int64).ravel()
    if isinstance(values, range):
        return np.arange(values.start, values.stop, values.step, dtype=np.int64)
    if is_int(values):
        return np.array([int(values)], dtype=np.int64)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{what}: expected a sequence of integers, got {values!r}")
    out = list(values)
    bad = next((v for v in out if not is_int(v)), None)
    if bad is not None:
        raise ConfigError(f"{what}: {bad!r} is not an integer ({type(bad).__name__})")
    try:
        return np.array([int(v) for v in out], dtype=np.int64)
    except OverflowError:
        raise RangeError(f"{what}: a value is beyond 64 bits") from None


def first_duplicate(arr):
    """The first value that appears twice in `arr` (in sorted order), or None."""
    if len(arr) < 2:
        return None
    s = np.sort(arr)
    d = np.flatnonzero(s[1:] == s[:-1])
    return int(s[d[0]]) if len(d) else None



def runs(mask):
    """[start, end) runs of True in a bool array."""
    d = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def flat_ranges(lo, hi):
    """The concatenated range(lo[i], hi[i]) of two int64 arrays, and the i of each element:
    the vectorised form of a nested loop over ranges."""
    c = np.maximum(hi - lo, 0)
    idx = np.repeat(np.arange(len(lo)), c)
    return lo[idx] + np.arange(int(c.sum())) - (np.cumsum(c) - c)[idx], idx


def equal_runs(a):
    """(i, j) of each maximal run a[i:j] of equal values, in order."""
    a = np.asarray(a)
    if not len(a):
        return []
    cut = np.flatnonzero(a[1:] != a[:-1]) + 1
    edges = [0, *cut.tolist(), len(a)]
    return list(pairwise(edges))
