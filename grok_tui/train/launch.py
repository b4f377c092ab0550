"""Starting a run's own process (runner.py), waiting until it serves its channel, reaching it, and stopping it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from grok_tui.runs import running_pid
from grok_tui.train.channel import (
    KEY,
    SOCKET,
    ChannelError,
    KeyRefused,
    NotServed,
    connect,
    encode_command,
    is_served,
)

OUTPUT = "output.log"
# The first line each run process writes to OUTPUT (the log is appended to by every resume).
STARTED = "# grok-tui: run process"
# Imports and building the model come before the channel opens: a cold start takes a few seconds.
START_TIMEOUT_S = 120.0
# A stop waits for the last checkpoint to be written.
STOP_TIMEOUT_S = 60.0


class StartError(Exception):
    """The run's process ended before it served its channel: its last words, as one line."""


def start(spec: Any) -> subprocess.Popen[bytes]:
    """Start the run in a process of its own session: no terminal, so no hang-up reaches it."""
    assert spec.run_dir is not None
    run_dir = spec.run_dir.resolve()
    command = [sys.executable, "-m", "grok_tui.runner", str(run_dir), "--config", json.dumps(spec.cfg.to_dict())]
    with open(run_dir / OUTPUT, "ab") as log:
        return subprocess.Popen(
            command
            + (["--resume"] if spec.resume else [])
            + (["--values", json.dumps(dict(spec.values))] if spec.values else []),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def wait_until_served(
    run_dir: Path,
    process: subprocess.Popen[bytes],
    timeout: float = START_TIMEOUT_S,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Return once the run's channel is open (or the wait is cancelled); StartError if its process
    ended first or never opened it."""
    deadline = time.monotonic() + timeout
    while not is_served(run_dir) and not cancelled():
        if process.poll() is not None:
            raise StartError(last_words(run_dir) or f"the run's process exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise StartError(f"the run's process did not start within {timeout:.0f} s; see {run_dir / OUTPUT}")
        time.sleep(0.05)


def last_words(run_dir: Path) -> str | None:
    """The error line the run's process left in its output, if any."""
    try:
        lines = (Path(run_dir) / OUTPUT).read_text(errors="replace").splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if line.startswith(STARTED)]
    errors = [line for line in lines[starts[-1] if starts else 0 :] if line.startswith("grok-tui: error: ")]
    return errors[-1].removeprefix("grok-tui: error: ") if errors else None


def reach(run_dir: Path) -> Connection:
    """An authenticated connection to the process training the run. NotServed when none is training it;
    ChannelError, saying what is true and what to do, when its process lives but cannot be reached."""
    run_dir = Path(run_dir)
    try:
        return connect(run_dir)
    except NotServed:
        pid = running_pid(run_dir)
        if pid is None:
            raise
        if not (run_dir / SOCKET).exists():
            lost = f"its channel {run_dir / SOCKET} is gone"
        elif not (run_dir / KEY).exists():
            lost = f"its key {run_dir / KEY} is gone"
        else:
            lost = f"nothing answers on its channel {run_dir / SOCKET}"
        raise ChannelError(f"{run_dir}: its process (pid {pid}) is alive, but {lost}; {_kill(run_dir, pid)}") from None
    except KeyRefused:
        pid = running_pid(run_dir)
        if pid is None:
            raise
        raise ChannelError(
            f"{run_dir / KEY} is not the key its process (pid {pid}) serves with (was the file replaced?); "
            f"{_kill(run_dir, pid)}"
        ) from None


def _kill(run_dir: Path, pid: int) -> str:
    # SIGTERM stops a run as `grok-tui stop` does (session.stop_on_signals): flushed and checkpointed.
    return f"kill {pid} stops it cleanly (checkpointed), then grok-tui --resume {run_dir} continues it"


def stop(run_dir: Path, timeout: float = STOP_TIMEOUT_S) -> tuple[str, int | None]:
    """Ask the process training the run to stop, and wait for its goodbye (sent once it has flushed
    and checkpointed): how it ended, and at which step. NotServed if no process trains the run,
    ChannelError (see reach) if its process cannot be reached."""
    step = None
    with reach(run_dir) as conn:
        try:
            conn.send_bytes(encode_command({"command": "stop"}))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not conn.poll(0.1):
                    continue
                message = conn.recv()
                kind = message[0]
                snapshot = message[3] if kind == "hello" else message[1] if kind == "frame" else None
                if snapshot is not None:
                    step = snapshot.step
                if kind == "bye":
                    return message[1], step
        except (EOFError, OSError):
            return "ended without saying goodbye", step
    raise TimeoutError(f"{run_dir} did not stop within {timeout:.0f} s")
