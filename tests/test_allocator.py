"""The allocator setting a sweep's shard takes (train/allocator.py): freed activations are reused, not
faulted back in from the kernel every step."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# A step's pattern: six activations of 5.5 MB alive at once, written, then freed; 20 steps. Printed: the
# page faults the steps after the first took (the kernel's huge pages can make these few either way), and
# the free bytes glibc's heap holds at the end (mallinfo2's fordblks): what the next step can reuse.
FAULTS = """
import resource, sys, torch
from grok_tui.train.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():
    held = [torch.empty(1_400_000).fill_(1.0) for _ in range(6)]
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
import ctypes
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in names.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, libc.mallinfo2().fordblks)
"""


def _faults(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    faults, free = out.stdout.split()[-2:]
    return int(faults), int(free)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_is_reused_where_glibc_faulted_it_in_anew_each_time():
    # Only the kept side is asserted: what glibc does by default moves with its history in the process
    # and with the kernel's huge pages (in a bare process it gave back all but 5.9 MB here, under pytest 45).
    _, kept_free = _faults("keep")
    assert kept_free >= 6 * 1_400_000 * 4  # a whole step's activations stay for the next step
