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
from dataclasses import dataclass
from pathlib import Path

from grok_tui.runs import ENDINGS, read_record, running_pid
from grok_tui.sweep.engine import STARTED  # the first line of each start in output.log
from grok_tui.train.launch import OUTPUT

PROG = "grok-tui"

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


@dataclass(frozen=True)
class State:
    """Where the sweep's process stands: training, finished, stopped, fault, crashed, or not started."""

    word: str
    failure: str | None = None  # its last error line, for a process that failed


def last_error(root: Path) -> str | None:
    """The last `grok-tui: error:` line the sweep's process wrote since it last started."""
    try:
        lines = (Path(root) / OUTPUT).read_text(errors="replace").splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if line.startswith(STARTED)]
    errors = [line for line in lines[starts[-1] if starts else 0 :] if line.startswith(f"{PROG}: error: ")]
    return errors[-1].removeprefix(f"{PROG}: error: ") if errors else None


def sweep_state(root: Path, process: subprocess.Popen[bytes] | None) -> State:
    """What the process training the sweep is doing (a process of ours, or whatever process.json says)."""
    if process is not None:
        code = process.poll()
        if code is None:
            return State("training")
    elif running_pid(root) is not None:
        return State("training")
    record = read_record(root)
    if record is None and process is None:
        return State("not started")
    word = record["state"] if record is not None and record["state"] in ENDINGS else "crashed"
    if word in ("finished", "stopped"):
        return State(word)
    status = f" (exit status {process.returncode})" if process is not None else ""
    return State(word, last_error(root) or f"the sweep's process ended{status}; see {Path(root) / OUTPUT}")


def stop_own(root: Path, process: subprocess.Popen[bytes]) -> str:
    """Stop the sweep's process we started, and wait until it has checkpointed and ended: how it ended."""
    if running_pid(root) == process.pid:
        stop_sweep(root)
    elif process.poll() is None:
        process.terminate()  # it has not recorded itself yet: nothing to checkpoint
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the sweep in {root} did not stop within {STOP_TIMEOUT_S:.0f} s") from None
    return sweep_state(root, process).word


__all__ = ["State", "last_error", "start_sweep", "stop_own", "stop_sweep", "sweep_state"]
