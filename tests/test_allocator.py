"""The allocator setting a sweep's shard takes (train/allocator.py): freed activations are reused, not
faulted back in from the kernel every step."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# A step's pattern: six activations of 5.5 MB alive at once, written, then freed; 20 steps. Printed: the
# page faults the steps after the first took.
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
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_is_reused_where_glibc_faulted_it_in_anew_each_time():
    default, kept = _faults("default"), _faults("keep")
    pages = 6 * 1_400_000 * 4 // 4096  # one step's activations
    assert default > 10 * pages  # the pages came from the kernel again, step after step
    assert kept < default / 5
