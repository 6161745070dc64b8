"""Kernel backend selection: the same six kernels, three implementations.

    "cython" (default)  pagecore._kernels   compiled, OpenMP page init
    "numpy"             pagecore.reference  plain numpy twins: the reference
    "numba"             pagecore._numba     numba twins; imports numba, so only on request

`get_backend()` returns the backend's module; every backend has the functions named in
KERNELS with the same signatures. The default comes from the PAGECORE_BACKEND environment
variable, read at each call.
"""
import importlib
import importlib.util
import os

BACKENDS = {"cython": "pagecore._kernels", "numpy": "pagecore.reference",
            "numba": "pagecore._numba"}
KERNELS = ("mark_vmemmap_pages", "online_memory_blocks", "offline_isolated_pages",
           "has_unmovable_pages", "scan_movable_pages", "test_pages_isolated")
DEFAULT = "cython"


def _config_error():
    # pagecore.errors.ConfigError when that module exists (it subclasses ValueError).
    if importlib.util.find_spec("pagecore.errors") is None:
        return ValueError
    return getattr(importlib.import_module("pagecore.errors"), "ConfigError", ValueError)


def get_backend(name=None):
    """The kernel module of backend `name` (default: $PAGECORE_BACKEND, else "cython")."""
    source = ""
    if name is None:
        name = os.environ.get("PAGECORE_BACKEND") or DEFAULT
        source = " (from PAGECORE_BACKEND)" if "PAGECORE_BACKEND" in os.environ else ""
    module = BACKENDS.get(name)
    if module is None:
        raise _config_error()(f"unknown pagecore backend {name!r}{source}: "
                              f"expected one of {', '.join(map(repr, BACKENDS))}")
    return importlib.import_module(module)
