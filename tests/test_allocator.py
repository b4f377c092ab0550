"""The allocator setting a sweep's shard takes (train/allocator.py): freed activations are reused, not
faulted back in from the kernel every step."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# A step's pattern: six activations of 5.5 MB alive at once, written, then freed; 20 steps. Printed: the
# bytes of fresh mmapped blocks while a step's activations were alive (mallinfo2's hblkhd, against before
# the first step), and the free bytes glibc's heap holds at the end (fordblks): what the next step reuses.
FAULTS = """
import ctypes, sys, torch
from grok_tui.train.allocator import keep_freed_memory
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in names.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if sys.argv[1] == "keep":
    assert keep_freed_memory()
base = libc.mallinfo2().hblkhd
mapped = 0
for _ in range(20):
    held = [torch.empty(1_400_000).fill_(1.0) for _ in range(6)]
    mapped = max(mapped, libc.mallinfo2().hblkhd - base)
    del held
print(mapped, libc.mallinfo2().fordblks)
"""


def _faults(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    mapped, free = out.stdout.split()[-2:]
    return int(mapped), int(free)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_is_reused_where_glibc_faulted_it_in_anew_each_time():
    # Only the kept side is asserted: what glibc does by default moves with its history in the process
    # (its mmap threshold rises as mapped blocks are freed) and with the kernel's huge pages.
    mapped, kept_free = _faults("keep")
    assert mapped == 0  # no activation got fresh pages from the kernel: all came from the heap
    assert kept_free >= 6 * 1_400_000 * 4  # and a whole step's activations stay there for the next step
