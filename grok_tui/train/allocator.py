"""The C allocator's settings for a process whose every step allocates and frees tensors of megabytes.

glibc's malloc hands an allocation above its mmap threshold fresh pages from the kernel and returns them
on free, and gives back the top of its heap once more than the trim threshold lies free there. A chunk of
a sweep allocates its activations (5.5 MB each for 8 members of the default experiment) and frees them
every step, so every step faulted the same pages back in: the relu and its backward ran at a tenth of
their speed inside a step. Holding freed memory in the process instead cut a shard's time by ~10%
(docs/design.md). The process's peak is unchanged: it keeps what it already used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc refuses more on 64-bit
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks for reuse; False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["keep_freed_memory"]
