"""pagecore: how Linux manages the memmap of hot-plugged memory, simulated at TiB scale.

The public surface is small:

    Machine, MachineConfig, NodeConfig      a booted machine and its description
    m.add_memory / m.remove_memory          hot-add and hot-remove a physical range
    m.online_memory_block / offline_memory_block, offline_and_remove_memory
    m.alloc_pages / m.free_pages            the page allocator (Allocation handles)
    m.check()                               the invariants, as CONFIG_DEBUG_VM would
    get_strategy, all_strategies, MemmapStrategy, register   memmap strategies
    pagecore.procfs.meminfo(m), zoneinfo(m), ...   the kernel's text views
    compare(scenario, strategies)           the side-by-side report of `pagecore compare`
"""
from pagecore.arch import GiB, KiB, MiB, TiB, PRESETS, get_arch
from pagecore.errors import (BusyError, ConfigError, GranularityError, InvariantError,
                             OutOfMemoryError, PagecoreError, RangeError, StateError)
from pagecore.machine import Allocation, Machine, MachineConfig, NodeConfig, VmemAltmap
from pagecore.strategies import MemmapStrategy, all_strategies, get_strategy, register

__all__ = ["Machine", "MachineConfig", "NodeConfig", "VmemAltmap", "Allocation", "MemmapStrategy",
           "all_strategies", "get_strategy", "register", "get_arch", "PRESETS",
           "PagecoreError", "ConfigError", "RangeError", "StateError", "BusyError",
           "GranularityError", "InvariantError", "OutOfMemoryError", "KiB", "MiB", "GiB", "TiB", "compare"]
__version__ = "0.1.0"


def compare(scenario="default", strategies=None, **kwargs):
    """Run a scenario (built-in name, TOML path or Scenario) once per strategy and return
    the report of `pagecore compare` as a dict (pagecore.report.compare; imported on use
    to keep `import pagecore` light)."""
    from pagecore import report
    return report.compare(scenario, strategies, **kwargs)
