"""Shared helpers for the engine tests: small machines and the "a failed call changes
nothing" check (machine.py module docstring; Machine.snapshot())."""
import pytest

from pagecore import GiB, Machine, MachineConfig, NodeConfig


def small_vm(arch="x86_64", boot=2 * GiB, **kw):
    """A one-node VM with `boot` bytes of RAM from physical address 0."""
    return Machine(MachineConfig(arch=arch, nodes=[NodeConfig(boot=[(0, boot)])], **kw))


def assert_fails_unchanged(machine, exc, fn, *args, **kwargs):
    """`fn(*args, **kwargs)` must raise `exc` and leave machine.snapshot() as it was.
    Returns the exception for further checks of its message."""
    before = machine.snapshot()
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    after = machine.snapshot()
    for key in before:
        assert after[key] == before[key], f"failed call changed the machine: {key}"
    return info.value


@pytest.fixture
def vm():
    """x86_64 VM, 2 GiB of boot RAM (all in ZONE_DMA/DMA32), 128 MiB blocks."""
    return small_vm()
