"""Steps per second over a window of training time, read from a run directory's metrics rows.

Every mode is measured over the same window, [WARMUP_S, WARMUP_S + seconds] of training
time, so that start-up (imports, the child process, the first evaluations) falls on none.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
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
    # Over alternated rounds: each round's steps/s over the same round's headless run. This box's speed
    # drifts by a quarter over minutes (headless 308-419 steps/s in three runs of one afternoon), so a
    # ratio is only fair between windows measured side by side.
    ratios: list[float] = field(default_factory=list)

    def ratio(self, base: Rate) -> float | None:
        """To headless: the median of the rounds' ratios, or one window over the other's."""
        if self.ratios:
            return statistics.median(self.ratios)
        return self.steps_per_s / base.steps_per_s if self.steps_per_s and base.steps_per_s else None

    def add_cpu(self, cpu: CpuSampler) -> None:
        self.cores = cpu.cores
        self.notes.append(cpu.describe())


def over_rounds(rounds: Sequence[Sequence[Rate]]) -> list[Rate]:
    """Each mode's rounds (one list of modes a round, headless first) as one Rate: the round whose
    steps/s is the median (its window, cores and bytes), with every round's ratio to headless."""
    out = []
    for i, mode in enumerate(zip(*rounds, strict=True)):
        measured = sorted((r for r in mode if r.steps_per_s is not None), key=lambda r: r.steps_per_s or 0.0)
        if not measured:
            out.append(mode[-1])  # failed in every round: its last reason
            continue
        # A round without both figures says nothing of the ratio.
        pairs = [(r[i].steps_per_s, r[0].steps_per_s) for r in rounds]
        ratios = [rate / base for rate, base in pairs if rate is not None and base]
        median = measured[(len(measured) - 1) // 2]
        notes = [*median.notes]
        if len(measured) < len(mode):
            notes.append(f"failed in {len(mode) - len(measured)} of {len(mode)} rounds")
        if i > 0 and len(ratios) > 1:
            notes.append(f"ratio per round {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)} rounds")
        out.append(dataclasses.replace(median, ratios=ratios if i > 0 else [], notes=notes))
    return out


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
