"""The one registry of kernel backends: each backend is a pair of modules with the same
functions, the page kernels (KERNELS) and the compaction scanner kernels
(COMPACTION_KERNELS).

    "cython" (default)  pagecore.kernels.hotplug,  pagecore.kernels.compaction          compiled, OpenMP
    "numpy"             pagecore.kernels.hotplug_numpy, pagecore.kernels.compaction_numpy plain numpy twins
    "numba"             pagecore.kernels.hotplug_numba,    pagecore.kernels.compaction_numba    numba twins

numba is imported only when its backend is asked for (it costs a second at import). The
default comes from the PAGECORE_BACKEND environment variable, read at each call.
"""
import os

from pagecore.errors import ConfigError

BACKENDS = ("cython", "numpy", "numba")
KERNELS = ("mark_vmemmap_pages", "online_memory_blocks", "online_image_blocks",
           "offline_isolated_pages",
           "has_unmovable_pages", "scan_movable_pages", "test_pages_isolated")
COMPACTION_KERNELS = ("isolate_migratepages_block", "isolate_migratepages_range",
                      "isolate_freepages_block", "suitable_migration_target",
                      "suitable_migration_source", "pfn_range_valid_contig", "migrate_folio",
                      "compact_zone_run")
DEFAULT = "cython"


def _modules(name):
    """(page kernels, compaction kernels) of backend `name`, imported on first use."""
    if name == "cython":
        from pagecore.kernels import compaction, hotplug
        return hotplug, compaction
    if name == "numpy":
        from pagecore.kernels import compaction_numpy, hotplug_numpy
        return hotplug_numpy, compaction_numpy
    if name == "numba":
        from pagecore.kernels import compaction_numba, hotplug_numba
        return hotplug_numba, compaction_numba
    raise KeyError(name)


def backend_name(name=None):
    """`name`, or $PAGECORE_BACKEND, or "cython"; ConfigError for an unknown one."""
    source = ""
    if name is None:
        name = os.environ.get("PAGECORE_BACKEND") or DEFAULT
        source = " (from PAGECORE_BACKEND)" if "PAGECORE_BACKEND" in os.environ else ""
    if name not in BACKENDS:
        raise ConfigError(f"unknown pagecore backend {name!r}{source}: "
                          f"expected one of {', '.join(map(repr, BACKENDS))}")
    return name


def get_backend(name=None):
    """The page-kernel module of backend `name` (default: $PAGECORE_BACKEND, else "cython")."""
    return _modules(backend_name(name))[0]


def get_compaction_backend(name=None):
    """The compaction-kernel module of backend `name` (the same default rule)."""
    return _modules(backend_name(name))[1]
