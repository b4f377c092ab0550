"""A sweep's own process: start it in the background, and stop it.

The sweep monitor, like the single-run monitor, never trains: it starts the
sweep's engine as a process of its own session (so a hang-up does not reach
it, and `d` leaves it training) and reads the sweep directory. A sweep is
stopped by a signal to that process, which only its owner may send: it
checkpoints every shard and ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from grok_tui.runs import read_record, running_pid
from grok_tui.train.launch import OUTPUT

# Stopping waits for every shard's checkpoint.
STOP_TIMEOUT_S = 60.0


def start_sweep(root: Path, engine_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Train the sweep in `root` in the background (`engine_args`: on Ray, engine.RayOptions.argv());
    its output goes to root/output.log."""
    root = Path(root).resolve()
    with open(root / OUTPUT, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "grok_tui.sweep.engine", str(root), *engine_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def stop_sweep(root: Path, timeout: float = STOP_TIMEOUT_S) -> str | None:
    """Ask the sweep's process to stop and wait until it has: how it ended ("stopped", "finished"...),
    or None if no process was training it. TimeoutError if it does not end in time."""
    pid = running_pid(root)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(root) == pid:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sweep in {root} did not stop within {timeout:.0f} s")
        time.sleep(0.05)
    record = read_record(root) or {}
    return str(record.get("state", "stopped"))


__all__ = ["start_sweep", "stop_sweep"]
