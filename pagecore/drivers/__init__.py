"""Device-side code, as the kernel's drivers/ tree: `base/memory.py` is the memory block
device (drivers/base/memory.c); `hotplug.py` the drivers that call add_memory() (ACPI,
virtio-mem, dax/kmem, the balloons, ppc64 DLPAR)."""
