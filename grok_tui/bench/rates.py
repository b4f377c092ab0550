"""Steps per second over a window of training time, read from a run directory's metrics rows.

Every mode is measured over the same window, [WARMUP_S, WARMUP_S + seconds] of training
time, so that start-up (imports, the child process, the first evaluations) falls on none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from grok_tui.bench.cpu import CpuSampler

# Start-up is not what we measure: the first second of training time is dropped in every mode.
WARMUP_S = 1.0
# How often the harness looks at metrics.jsonl (the trainer flushes it every 0.5 s).
POLL_S = 0.25
# Generous limits, so that a broken app is reported instead of hanging the benchmark.
START_TIMEOUT_S = 60.0


@dataclass
class Rate:
    mode: str
    steps_per_s: float | None = None
    steps: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    cores: dict[str, float] = field(default_factory=dict)  # CPU use over the window, by process
    size: tuple[int, int] | None = None  # the terminal's, for a run in a real terminal
    bytes_per_s: dict[str, float | None] = field(default_factory=dict)  # "training", "paused", "finished"
    idle_cores: dict[str, float] = field(default_factory=dict)  # CPU use while paused, by process

    def add_cpu(self, cpu: CpuSampler) -> None:
        self.cores = cpu.cores
        self.notes.append(cpu.describe())


def rate_from_rows(mode: str, rows: list[dict[str, Any]], seconds: float) -> Rate:
    """Steps per second of training time between the first row at or after the warm-up
    and the last row inside the window; `elapsed_s` counts training time only."""
    window = [
        r
        for r in rows
        if isinstance(r.get("elapsed_s"), (int, float)) and WARMUP_S <= r["elapsed_s"] <= WARMUP_S + seconds
    ]
    if len(window) < 2 or window[-1]["elapsed_s"] <= window[0]["elapsed_s"]:
        return Rate(mode, notes=[f"too few metrics rows in the window ({len(window)})"])
    steps = window[-1]["step"] - window[0]["step"]
    span = window[-1]["elapsed_s"] - window[0]["elapsed_s"]
    return Rate(mode, steps / span, steps, span)


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    from grok_tui.runlog import read_jsonl

    return read_jsonl(run_dir / "metrics.jsonl")


class WindowError(Exception):
    """The run never covered the window; the reason in one line."""


class Sampler(Protocol):
    """What is measured over a window (CPU time, bytes to the terminal)."""

    def begin(self) -> None: ...

    def end(self) -> None: ...


class WindowWatch:
    """Follows a run directory's metrics.jsonl until it has recorded the window's training
    time; each sampler (CPU time, bytes) begins when the window opens and ends when it closes."""

    def __init__(self, run_dir: Path, seconds: float, *samplers: Sampler):
        from grok_tui.runlog import JsonlFollower

        self._follower = JsonlFollower(run_dir / "metrics.jsonl")
        self.target = WARMUP_S + seconds
        self.samplers = samplers
        self.elapsed_s: float | None = None
        self.started = time.monotonic()
        self.deadline: float | None = None

    def done(self) -> bool:
        for row in self._follower.poll():
            if isinstance(row.get("elapsed_s"), (int, float)):
                self.elapsed_s = row["elapsed_s"]
        now = time.monotonic()
        if self.elapsed_s is None:
            if now - self.started > START_TIMEOUT_S:
                raise WindowError(f"no metrics after {START_TIMEOUT_S:.0f} s")
            return False
        if self.deadline is None:
            # Training may be slower under the monitor, but never this much slower.
            self.deadline = now + 4 * self.target + 10
        if self.elapsed_s >= WARMUP_S:
            for sampler in self.samplers:
                sampler.begin()
        if self.elapsed_s >= self.target:
            for sampler in self.samplers:
                sampler.end()
            return True
        if now > self.deadline:
            raise WindowError(f"only {self.elapsed_s:.1f} s of training recorded by the deadline")
        return False
