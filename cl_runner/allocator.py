"""glibc allocator settings for training loops that free and reallocate the same blocks.

``cl-run`` applies them at start. They change the whole process's C allocator, so a library
constructor never does; a library user who wants the speed-up calls ``keep_freed_memory()``
once at the start of a script.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

# glibc's mallopt parameters; 32 MiB is the largest mmap threshold it accepts on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 << 20, 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc reuse freed blocks instead of returning them to the OS after every step.

    Every step frees and reallocates the same activations, gradients and optimizer
    temporaries (0.1-2 MB). glibc serves blocks above its mmap threshold (128 KiB, until
    freeing a large block happens to raise it) with fresh pages that it unmaps on free: ~450
    page faults and unmaps per SimpleMLP step, a fifth of the step time on 2 cores. Raising
    the mmap and trim thresholds once per process removes them; the process keeps its peak
    working set instead of shrinking between steps. Skipped off Linux and when the user sets
    either threshold in the environment; returns whether glibc took the settings.
    """
    if sys.platform != "linux" or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(
        os.environ
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )
