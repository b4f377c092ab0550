"""A sweep's own process: start it in the background, say where it stands, and stop it.

The sweep monitor, like the single-run monitor, never trains: it starts the
sweep's engine as a process of its own session (so a hang-up does not reach
it, and `d` leaves it training) and reads the sweep directory. A sweep is
stopped by a signal to that process, which only its owner may send: it
checkpoints every shard and ends. What it shares with a run's process
(starting, process.json, last words, stopping) is process.py's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grok_tui import process

# Stopping waits for every shard's checkpoint.
STOP_TIMEOUT_S = 60.0


def start_sweep(root: Path, engine_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Train the sweep in `root` in the background (`engine_args`: on Ray, engine.RayOptions.argv());
    its output goes to root/output.log."""
    root = Path(root).resolve()
    return process.start(root, "sweep", "grok_tui.sweep.engine", [str(root), *engine_args])


def stop_sweep(root: Path, timeout: float = STOP_TIMEOUT_S) -> str | None:
    """Ask the sweep's process to stop and wait until it has: how it ended ("stopped", "finished"...),
    or None if no process was training it. TimeoutError if it does not end in time."""
    return process.stop(root, timeout, _named(root))


@dataclass(frozen=True)
class State:
    """Where the sweep's process stands: training, finished, stopped, fault, crashed, or not started."""

    word: str
    failure: str | None = None  # its last error line, for a process that failed


def sweep_state(root: Path, child: subprocess.Popen[bytes] | None) -> State:
    """What the process training the sweep is doing (`child`, a process of ours, or whatever process.json says)."""
    if child is not None:
        if child.poll() is None:
            return State("training")
    elif process.running_pid(root) is not None:
        return State("training")
    record = process.read_record(root)
    if record is None and child is None:
        return State("not started")
    word = record["state"] if record is not None and record["state"] in process.ENDINGS else "crashed"
    if word in ("finished", "stopped"):
        return State(word)
    status = f" (exit status {child.returncode})" if child is not None else ""
    ended = f"the sweep's process ended{status}; see {Path(root) / process.OUTPUT}"
    return State(word, process.last_words(root) or ended)


def stop_own(root: Path, child: subprocess.Popen[bytes]) -> str:
    """Stop the sweep's process we started, and wait until it has checkpointed and ended: how it ended."""
    process.stop_child(root, child, STOP_TIMEOUT_S, _named(root))
    return sweep_state(root, child).word


def _named(root: Path) -> str:
    return f"the sweep in {root}"


__all__ = ["STOP_TIMEOUT_S", "State", "start_sweep", "stop_own", "stop_sweep", "sweep_state"]
