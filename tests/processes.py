"""Helpers for tests that drive real processes: the CLI in a subprocess, runs in the background, and a
monitor attached to one (the `detached` fixture in conftest.py starts them)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from grok_tui.sources.attached import AttachedRun
from grok_tui.train.snapshot import Snapshot
from tests.conftest import TINY, wait_until

# Steps enough for a run to train on until it is stopped.
FOREVER = ["--steps", "100000000"]


def cli(*args, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m grok_tui ARGS` to its end (in `cwd`, if given): its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "grok_tui", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def pid_of(run_dir: Path) -> int:
    """The pid the run's process recorded in its process.json."""
    return json.loads((run_dir / "process.json").read_text())["pid"]


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


def monitor_pid(exe: Path, run_dir: Path) -> int:
    """The monitor's own process (tmux's command line names it too: only python's counts)."""
    found = subprocess.run(
        ["pgrep", "-f", f"python[0-9.]* {exe} .*--run-dir {run_dir}"], capture_output=True, text=True
    )
    return int(found.stdout.split()[0])


@contextlib.contextmanager
def background_runs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """`start(name="run", root=tmp_path)` starts a tiny run that trains on in the background (`--detach`)
    and gives its directory; whatever is still running at the end is killed."""
    started: list[tuple[Path, int]] = []

    def start(name: str = "run", root: Path = tmp_path) -> Path:
        run_dir = root / name
        proc = cli(*TINY, *FOREVER, "--run-dir", str(run_dir), "--detach")
        assert proc.returncode == 0, proc.stderr
        started.append((run_dir, pid_of(run_dir)))
        return run_dir

    try:
        yield start
    finally:
        # The pid it started with, and the one its directory names now (a test may have resumed it): a
        # directory removed under a live run must not hide it, or it trains on, a core's worth, for the
        # rest of the suite.
        for run_dir, first in started:
            pids = {first}
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
                pids.add(pid_of(run_dir))
            for pid in pids:
                if _runs(pid, run_dir):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def _runs(pid: int, run_dir: Path) -> bool:
    """Whether process `pid` is one training `run_dir` (its pid not yet reused by another)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(str(form).encode() in cmdline for form in (run_dir, run_dir.resolve()))


def attached(run_dir: Path) -> AttachedRun:
    """A client of the run's channel, reading its frames in a thread of its own."""
    session = AttachedRun(run_dir)
    threading.Thread(target=session.run, daemon=True).start()
    return session


def next_frame(
    session: AttachedRun, condition: Callable[[Snapshot], bool] = lambda snapshot: True, timeout: float = 20
) -> Snapshot:
    """The next frame the session takes that meets `condition` (a session that fails fails the test)."""
    found: list[Snapshot] = []

    def arrived() -> bool:
        snapshot, _, error = session.mailbox.take()
        assert error is None, error
        if snapshot is not None and condition(snapshot):
            found.append(snapshot)
        return bool(found)

    wait_until(arrived, timeout=timeout, what="no such frame in time")
    return found[0]


def wait_while_running(
    process: subprocess.Popen, condition: Callable[[], object], timeout: float = 60.0, every: float = 0.05
) -> None:
    """Wait until `condition()` holds; fail at once if `process` ends first."""

    def ready() -> bool:
        if condition():
            return True
        assert process.poll() is None, f"the process ended first (exit status {process.returncode})"
        return False

    wait_until(ready, timeout=timeout, every=every)
