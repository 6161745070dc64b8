"""drivers/base/: the memory block devices (memory.py)."""
