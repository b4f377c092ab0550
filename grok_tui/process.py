"""A grok-tui process's life, in one place, for a run's (runner.py) and a sweep's (sweep/engine.py) alike.

It is started in a session of its own (no terminal, so no hang-up reaches it), its output appended to
DIR/output.log after one start line; it records itself in DIR/process.json: its pid, when it started,
whether it is paused and, when it ends, how; it takes the signals that stop it, cleanly; whoever
started it reads its last words in output.log; and it is stopped by a signal to the pid it recorded.

A record that says "running" is believed only while that very process lives (the pid alone could have
been reused), so a process that was killed reads as crashed, never as running.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from grok_tui.files import WriteError, write_atomic

if TYPE_CHECKING:
    from grok_tui.train.snapshot import Snapshot

OUTPUT = "output.log"
PROCESS = "process.json"
# Ways a process ends, as process.json records them.
ENDINGS = ("finished", "stopped", "fault", "crashed")
# Why a running run is paused, as process.json records it: a pause command (a monitor's `space`), a fault.
PAUSES = ("command", "fault")
# A start's line in output.log; the log is appended to by every start (a resume, a sweep resumed).
_STARTED = "# grok-tui: {what} process started {when}"
# Start lines of every version: this one's, and those each process used to print itself
# ("# grok-tui: run process PID for DIR", "# grok-tui: sweep process PID").
_START_LINE = re.compile(r"# grok-tui: \w+ process\b")
_ERROR = "grok-tui: error: "


# ---- starting, stopping ---------------------------------------------------------------------------------


def start(directory: Path, what: str, module: str, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start `python -m module args` in a session of its own, its output appended to directory/output.log
    after a start line naming `what` ("run", "sweep"), from which `last_words` reads."""
    with open(Path(directory) / OUTPUT, "ab", buffering=0) as log:
        # Written here, before the process exists, not by the process: one that dies before it can print
        # (a broken install) is not then blamed on an earlier start's last words. A disk too full for this
        # line is the process's to meet and report.
        with contextlib.suppress(OSError):
            log.write(_STARTED.format(what=what, when=datetime.now().isoformat(timespec="seconds")).encode() + b"\n")
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def last_words(directory: Path) -> str | None:
    """The last `grok-tui: error:` line the process wrote to output.log since it was last started, if any."""
    try:
        lines = (Path(directory) / OUTPUT).read_text(errors="replace").splitlines()
    except OSError:
        return None
    since = max((i for i, line in enumerate(lines) if _START_LINE.match(line)), default=0)
    errors = [line for line in lines[since:] if line.startswith(_ERROR)]
    return errors[-1].removeprefix(_ERROR) if errors else None


def stop(directory: Path, timeout: float, what: str) -> str | None:
    """Stop the process that recorded itself running in `directory` with SIGTERM (stop_on_signals: it
    flushes and checkpoints), and wait until it has ended: how it ended ("stopped", "finished"...), or
    None if no process was running. TimeoutError, naming `what`, if it does not end in time."""
    pid = running_pid(directory)
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):  # it ended just now, on its own
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(directory) == pid:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not stop within {timeout:.0f} s")
        time.sleep(0.05)
    return str((read_record(directory) or {}).get("state", "stopped"))


def stop_child(directory: Path, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Stop a process we started (`start`), and wait until it has checkpointed and ended; TimeoutError,
    naming `what`, if it does not end in time."""
    if running_pid(directory) == process.pid:
        stop(directory, timeout, what)
    elif process.poll() is None:
        process.terminate()  # it has not recorded itself yet: nothing to checkpoint
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{what} did not stop within {timeout:.0f} s") from None


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
    """While inside, SIGINT, SIGTERM and SIGHUP (the terminal closed) stop the run cleanly, so it
    flushes and checkpoints; yields the signals received."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---- process.json: written by the process itself ----------------------------------------------------------


def mark_running(directory: Path) -> None:
    me = psutil.Process()
    _write(
        directory,
        {
            "state": "running",
            "pid": me.pid,
            "created": me.create_time(),
            "host": socket.gethostname(),
            "started": time.time(),
        },
    )


def mark_ended(directory: Path, state: str, step: int | None) -> None:
    assert state in ENDINGS, state
    record = read_record(directory) or {}
    record.pop("paused", None)  # an ended run is not paused, whatever it was last
    _write(directory, {**record, "state": state, "step": step, "ended": time.time()})


def mark_paused(directory: Path, why: str | None) -> None:
    """Say in process.json that the run this process trains is paused, and why (one of PAUSES), or
    that it is not (None). Only the process that marked itself running there writes it (a stale call
    does nothing); `mark_running` starts each process unpaused, as a trainer starts."""
    assert why is None or why in PAUSES, why
    record = read_record(directory)
    if record is None or record["state"] != "running" or record.get("pid") != os.getpid():
        return
    _write(directory, {**record, "paused": why})


def record_pauses(directory: Path, then: Callable[[Snapshot], None]) -> Callable[[Snapshot], None]:
    """`then`, with process.json's `paused` kept in step with the snapshots passed to it: the process
    that serves a run passes its snapshots through this (runner.py). A trainer sends a snapshot on
    every pause and resume, so each is recorded at once; process.json is written only on a change."""
    last: list[str | None] = [None]  # mark_running's: not paused

    def see(snapshot: Snapshot) -> None:
        why = None if not snapshot.paused else "fault" if snapshot.fault is not None else "command"
        if why != last[0]:
            last[0] = why
            mark_paused(directory, why)
        then(snapshot)

    return see


def _write(directory: Path, record: dict[str, Any]) -> None:
    # On a full disk the run has its own way to stop and say so; a record it cannot update must not
    # turn that into a crash (ls then reads the dead process as crashed, and --resume still works).
    with contextlib.suppress(WriteError):
        write_atomic(Path(directory) / PROCESS, json.dumps(record) + "\n")


# ---- process.json: read by anyone -------------------------------------------------------------------------


def read_record(directory: Path) -> dict[str, Any] | None:
    """process.json, or None where there is none or it is not a record we wrote."""
    try:
        record = json.loads((Path(directory) / PROCESS).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("state"), str) else None


def running_pid(directory: Path) -> int | None:
    """The pid of the process running there now, or None."""
    record = read_record(directory)
    if record is None or record["state"] != "running":
        return None
    pid, created = record.get("pid"), record.get("created")
    if not (isinstance(pid, int) and isinstance(created, (int, float))):
        return None
    if not _here(record):
        return pid  # another machine's process (a shared disk): take its word
    try:
        process = psutil.Process(pid)
        # A killed process nobody has reaped yet is a zombie: dead all the same.
        alive = abs(process.create_time() - created) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None
    return pid if alive else None


def local_pid(directory: Path) -> int | None:
    """The pid of the process running there now on this box (one on another box sharing the disk cannot
    be looked at), or None."""
    pid = running_pid(directory)
    return pid if pid is not None and _here(read_record(directory)) else None


def _here(record: dict[str, Any] | None) -> bool:
    return record is not None and record.get("host") in (None, socket.gethostname())


def process_state(directory: Path, finished: bool) -> tuple[int | None, str]:
    """The pid running there now (or None), and its state: running, an ending, or crashed; `finished`
    says what its files say, for a directory from before process.json."""
    pid = running_pid(directory)
    record = read_record(directory)
    if pid is not None:
        return pid, "running"
    if record is not None and record["state"] in ENDINGS:
        return None, str(record["state"])
    if record is not None or (Path(directory) / "crash.log").exists():
        return None, "crashed"  # it said it was running, and its process is gone
    return None, "finished" if finished else "stopped"


def paused_why(directory: Path) -> str | None:
    """Why the run is paused (one of PAUSES) as its process last said, or None; read it while it runs."""
    why = (read_record(directory) or {}).get("paused")
    return why if why in PAUSES else None


__all__ = [
    "ENDINGS",
    "OUTPUT",
    "PAUSES",
    "PROCESS",
    "last_words",
    "local_pid",
    "mark_ended",
    "mark_paused",
    "mark_running",
    "paused_why",
    "process_state",
    "read_record",
    "record_pauses",
    "running_pid",
    "start",
    "stop",
    "stop_child",
    "stop_on_signals",
]
