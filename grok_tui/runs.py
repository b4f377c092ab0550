"""The runs under a directory, and the truth about each: `grok-tui ls`.

A process that trains a run records itself in the run's `process.json`: its
pid, when it started, and, when it ends, how. A record that says "running"
is believed only while that very process lives (the pid alone could have been
reused), so a run whose process was killed shows as crashed, never as running.
While it runs, the process also says there whether the run is paused (a monitor's
`space`, a fault that paused it): `record_pauses` keeps that in step with the
run's snapshots, so `ls` can tell a paused run from one that trains.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from grok_tui.files import WriteError, write_atomic
from grok_tui.history import History
from grok_tui.runlog import CONFIG, METRICS, RunDirError, load_config, read_jsonl
from grok_tui.system import SystemStats, sample_now

if TYPE_CHECKING:
    from grok_tui.train.snapshot import Snapshot

PROCESS = "process.json"
# Ways a run's process ends, as process.json records them.
ENDINGS = ("finished", "stopped", "fault", "crashed")
# Why a running run is paused, as process.json records it: a pause command (a monitor's `space`), a fault.
PAUSES = ("command", "fault")
# How `ls` says each.
PAUSED_AS = {"command": "paused", "fault": "paused by a fault"}


def mark_running(run_dir: Path) -> None:
    me = psutil.Process()
    _write(
        run_dir,
        {
            "state": "running",
            "pid": me.pid,
            "created": me.create_time(),
            "host": socket.gethostname(),
            "started": time.time(),
        },
    )


def mark_ended(run_dir: Path, state: str, step: int | None) -> None:
    assert state in ENDINGS, state
    record = read_record(run_dir) or {}
    record.pop("paused", None)  # an ended run is not paused, whatever it was last
    _write(run_dir, {**record, "state": state, "step": step, "ended": time.time()})


def mark_paused(run_dir: Path, why: str | None) -> None:
    """Say in process.json that the run this process trains is paused, and why (one of PAUSES), or
    that it is not (None). Only the process that marked itself running there writes it (a stale call
    does nothing); `mark_running` starts each process unpaused, as a trainer starts."""
    assert why is None or why in PAUSES, why
    record = read_record(run_dir)
    if record is None or record["state"] != "running" or record.get("pid") != os.getpid():
        return
    _write(run_dir, {**record, "paused": why})


def record_pauses(run_dir: Path, then: Callable[[Snapshot], None]) -> Callable[[Snapshot], None]:
    """`then`, with process.json's `paused` kept in step with the snapshots passed to it: the process
    that serves a run passes its snapshots through this (runner.py). A trainer sends a snapshot on
    every pause and resume, so each is recorded at once; process.json is written only on a change."""
    last: list[str | None] = [None]  # mark_running's: not paused

    def see(snapshot: Snapshot) -> None:
        why = None if not snapshot.paused else "fault" if snapshot.fault is not None else "command"
        if why != last[0]:
            last[0] = why
            mark_paused(run_dir, why)
        then(snapshot)

    return see


def _write(run_dir: Path, record: dict[str, Any]) -> None:
    # On a full disk the run has its own way to stop and say so; a record it cannot update must not
    # turn that into a crash (ls then reads the dead process as crashed, and --resume still works).
    with contextlib.suppress(WriteError):
        write_atomic(Path(run_dir) / PROCESS, json.dumps(record) + "\n")


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """process.json, or None where there is none or it is not a record we wrote."""
    try:
        record = json.loads((Path(run_dir) / PROCESS).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("state"), str) else None


def running_pid(run_dir: Path) -> int | None:
    """The pid of the process training the run now, or None."""
    record = read_record(run_dir)
    if record is None or record["state"] != "running":
        return None
    pid, created = record.get("pid"), record.get("created")
    if not (isinstance(pid, int) and isinstance(created, (int, float))):
        return None
    if record.get("host") not in (None, socket.gethostname()):
        return pid  # another machine's process (a shared disk): take its word
    try:
        process = psutil.Process(pid)
        # A killed process nobody has reaped yet is a zombie: dead all the same.
        alive = abs(process.create_time() - created) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None
    return pid if alive else None


@dataclass(frozen=True)
class RunInfo:
    """One line of `grok-tui ls`."""

    run_dir: Path
    experiment: str
    state: str  # running, finished, stopped, fault, crashed
    pid: int | None
    step: int | None
    total: int
    phase: str | None
    test_acc: float | None
    age_s: float
    paused: str | None = None  # while running: why it is paused (one of PAUSES), or None
    system: SystemStats | None = None  # while running on this box: what its process takes (with_system)


def process_state(run_dir: Path, finished: bool) -> tuple[int | None, str]:
    """The pid training it now (or None), and its state: running, an ending, or crashed; `finished`
    says what its files say, for a directory from before process.json."""
    pid = running_pid(run_dir)
    record = read_record(run_dir)
    if pid is not None:
        return pid, "running"
    if record is not None and record["state"] in ENDINGS:
        return None, str(record["state"])
    if record is not None or (Path(run_dir) / "crash.log").exists():
        return None, "crashed"  # it said it was running, and its process is gone
    return None, "finished" if finished else "stopped"


def paused_why(run_dir: Path) -> str | None:
    """Why the run is paused (one of PAUSES) as its process last said, or None; read it while it runs."""
    why = (read_record(run_dir) or {}).get("paused")
    return why if why in PAUSES else None


def describe(run_dir: Path) -> RunInfo:
    """What is known of one run (RunDirError if it is not a readable run directory)."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    history = History()
    for row in read_jsonl(run_dir / METRICS):
        if isinstance(row.get("step"), int):
            history.add(row)
    step = history.last_step
    pid, state = process_state(run_dir, finished=step is not None and step >= cfg.steps)
    test_acc = history.value_at("test_acc", step) if step is not None else None
    age = 0.0
    with contextlib.suppress(OSError):
        age = time.time() - (run_dir / CONFIG).stat().st_mtime
    paused = paused_why(run_dir) if state == "running" else None
    return RunInfo(run_dir, cfg.experiment, state, pid, step, cfg.steps, history.phase(), test_acc, age, paused)


def find_runs(root: Path) -> list[RunInfo]:
    """Every run directory directly under `root`, oldest first; what is not a run is skipped."""
    infos = []
    for path in sorted(_run_dirs(root)):
        with contextlib.suppress(RunDirError):
            infos.append(describe(path))
    return infos


def local_pid(run_dir: Path) -> int | None:
    """The pid of the process training the run now on this box (one on another box sharing the disk
    cannot be looked at), or None."""
    pid = running_pid(run_dir)
    return pid if pid is not None and _here(read_record(run_dir)) else None


def _here(record: dict[str, Any] | None) -> bool:
    return record is not None and record.get("host") in (None, socket.gethostname())


def with_system(infos: list[RunInfo]) -> list[RunInfo]:
    """The same runs (and sweeps), each running on this box with its process's figures, sampled at once."""
    here = {info.pid for info in infos if info.pid is not None and _here(read_record(info.run_dir))}
    figures = sample_now(here) if here else {}
    return [dataclasses.replace(info, system=figures.get(info.pid)) if info.pid in figures else info for info in infos]


def newest_running(root: Path) -> Path | None:
    """The most recently started run under `root` that is training now."""
    running = [path for path in _run_dirs(root) if running_pid(path) is not None]
    return max(running, key=lambda path: (path / CONFIG).stat().st_mtime, default=None)


def _run_dirs(root: Path) -> list[Path]:
    return [path for path in Path(root).iterdir() if (path / CONFIG).is_file()] if Path(root).is_dir() else []


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def format_table(infos: list[RunInfo]) -> str:
    header = ("RUN", "EXPERIMENT", "STATE", "STEP", "PHASE", "TEST ACC", "AGE", "SYSTEM")
    rows = [header]
    for info in infos:
        state = info.state
        if info.state == "running":
            state = f"{PAUSED_AS.get(info.paused or '', 'running')} (pid {info.pid})"
        step = f"{info.step or 0:,} of {info.total:,}"
        acc = "" if info.test_acc is None else f"{info.test_acc:.1%}"
        system = info.system.describe() if info.system else ""
        rows.append((info.run_dir.name, info.experiment, state, step, info.phase or "", acc, _age(info.age_s), system))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {3, 5, 6}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


__all__ = [
    "PAUSES",
    "PROCESS",
    "RunInfo",
    "describe",
    "find_runs",
    "format_table",
    "local_pid",
    "mark_ended",
    "mark_paused",
    "mark_running",
    "newest_running",
    "paused_why",
    "process_state",
    "record_pauses",
    "running_pid",
    "with_system",
]
