"""The runs under a directory, and the truth about each: `grok-tui ls`.

What a run's files say (its config, its metrics) beside what its process says of itself in
process.json (process.py): running, paused, or how it ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from grok_tui.history import History
from grok_tui.process import (
    local_pid,
    paused_why,
    process_state,
    running_pid,
)
from grok_tui.runlog import CONFIG, METRICS, RunDirError, load_run_config, read_jsonl
from grok_tui.system import SystemStats, sample_now

# How `ls` says why a running run is paused (each of process.PAUSES).
PAUSED_AS = {"command": "paused", "fault": "paused by a fault"}


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
    paused: str | None = None  # while running: why it is paused (one of process.PAUSES), or None
    system: SystemStats | None = None  # while running on this box: what its process takes (with_system)


def describe(run_dir: Path) -> RunInfo:
    """What is known of one run (RunDirError if it is not a readable run directory)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)  # a preset's run or a script's
    history = History()
    for row in read_jsonl(run_dir / METRICS):
        if isinstance(row.get("step"), int):
            history.add(row)
    step = history.last_step
    # A script that names no step budget (steps 0): its last step is as far as it is known to go.
    total = cfg.steps or (step or 0)
    pid, state = process_state(run_dir, finished=step is not None and step >= total)
    test_acc = history.value_at("test_acc", step) if step is not None else None
    age = 0.0
    with contextlib.suppress(OSError):
        age = time.time() - (run_dir / CONFIG).stat().st_mtime
    paused = paused_why(run_dir) if state == "running" else None
    return RunInfo(run_dir, cfg.experiment, state, pid, step, total, history.phase(), test_acc, age, paused)


def find_runs(root: Path) -> list[RunInfo]:
    """Every run directory directly under `root`, oldest first; what is not a run is skipped."""
    infos = []
    for path in sorted(_run_dirs(root)):
        with contextlib.suppress(RunDirError):
            infos.append(describe(path))
    return infos


def with_system(infos: list[RunInfo]) -> list[RunInfo]:
    """The same runs (and sweeps), each running on this box with its process's figures, sampled at once."""
    here = {info.pid for info in infos if info.pid is not None and local_pid(info.run_dir) == info.pid}
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
    "PAUSED_AS",
    "RunInfo",
    "describe",
    "find_runs",
    "format_table",
    "newest_running",
    "with_system",
]
