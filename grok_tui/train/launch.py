"""A run's own process (runner.py): its command line, waiting until it serves its channel, reaching it,
and stopping it through it. What every grok-tui process shares (starting one, its last words) is in
process.py."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grok_tui import process
from grok_tui.train.channel import KEY, SOCKET, ChannelError, Client, KeyRefused, NotServed, is_served
from grok_tui.train.control import Stop
from grok_tui.train.messages import Bye, Frame, Hello

# Imports and building the model come before the channel opens: a cold start takes a few seconds.
START_TIMEOUT_S = 120.0
# A stop waits for the last checkpoint to be written.
STOP_TIMEOUT_S = 60.0


class StartError(Exception):
    """The run's process ended before it served its channel: its last words, as one line."""


def start(spec: Any) -> subprocess.Popen[bytes]:
    """Start the run in a process of its own (process.start: its own session, so no hang-up reaches it)."""
    assert spec.run_dir is not None
    run_dir = spec.run_dir.resolve()
    args = [str(run_dir), "--config", json.dumps(spec.cfg.to_dict())]
    args += ["--resume"] if spec.resume else []
    args += ["--values", json.dumps(dict(spec.values))] if spec.values else []
    return process.start(run_dir, "run", "grok_tui.runner", args)


def wait_until_served(
    run_dir: Path,
    child: subprocess.Popen[bytes],
    timeout: float = START_TIMEOUT_S,
    cancelled: Callable[[], bool] = lambda: False,
) -> bool:
    """Wait until the run's channel is open (True) or the wait is cancelled (False). False too if its
    process ran to its end cleanly before the channel was seen: a short run's whole life can fit in
    one poll. StartError if it failed first or never opened the channel."""
    deadline = time.monotonic() + timeout
    while not is_served(run_dir) and not cancelled():
        if child.poll() is not None:
            words = process.last_words(run_dir)
            if child.returncode == 0 and words is None:
                return False
            raise StartError(words or f"the run's process exited with status {child.returncode}")
        if time.monotonic() > deadline:
            raise StartError(f"the run's process did not start within {timeout:.0f} s; see {run_dir / process.OUTPUT}")
        time.sleep(0.05)
    return not cancelled()


def reach(run_dir: Path) -> Client:
    """A client of the process training the run. NotServed when none is training it; ChannelError, saying
    what is true and what to do, when its process lives but cannot be reached."""
    run_dir = Path(run_dir)
    try:
        return Client.connect(run_dir)
    except NotServed:
        pid = process.running_pid(run_dir)
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
        pid = process.running_pid(run_dir)
        if pid is None:
            raise
        raise ChannelError(
            f"{run_dir / KEY} is not the key its process (pid {pid}) serves with (was the file replaced?); "
            f"{_kill(run_dir, pid)}"
        ) from None


def _kill(run_dir: Path, pid: int) -> str:
    # SIGTERM stops a run as `grok-tui stop` does (process.stop_on_signals): flushed and checkpointed.
    return f"kill {pid} stops it cleanly (checkpointed), then grok-tui --resume {run_dir} continues it"


def stop(run_dir: Path, timeout: float = STOP_TIMEOUT_S) -> tuple[str, int | None]:
    """Ask the process training the run to stop, and wait for its goodbye (sent once it has flushed
    and checkpointed): how it ended, and at which step. NotServed if no process trains the run,
    ChannelError (see reach) if its process cannot be reached."""
    step = None
    with reach(run_dir) as client:
        try:
            client.send(Stop())
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                match client.receive(0.1):
                    case Hello(snapshot=snapshot) | Frame(snapshot=snapshot) if snapshot is not None:
                        step = snapshot.step
                    case Bye(reason):
                        return reason, step
        except (EOFError, OSError):
            return "ended without saying goodbye", step
    raise TimeoutError(f"{run_dir} did not stop within {timeout:.0f} s")


__all__ = ["START_TIMEOUT_S", "STOP_TIMEOUT_S", "StartError", "reach", "start", "stop", "wait_until_served"]
