"""The curves a view draws, in bounded memory however long the run.

Each series is a list of buckets (step, last value, min, max). When the number
of buckets reaches the capacity, neighbouring pairs merge: the step span of a
bucket doubles, its min and max keep every spike, and memory stays at
`capacity` buckets per series for a run of any length. Events are kept exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grok_tui.metrics import FIT_ACC, phase
from grok_tui.train.snapshot import Event, Metrics

SERIES = ("train_loss", "test_loss", "train_acc", "test_acc", "param_norm", "purity", "parity_share")
# The most custom series a History keeps (those first seen); a row's other names are not drawn.
MAX_CUSTOM = 8
# A row's keys that are no custom metric: the fields grok-tui writes itself.
_OWN_KEYS = frozenset(Metrics.__dataclass_fields__)


@dataclass(frozen=True)
class Series:
    """A read-only view of one series: arrays of equal length, oldest first."""

    steps: np.ndarray
    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def __len__(self) -> int:
        return self.steps.size


class History:
    def __init__(self, capacity: int = 2048, series: Iterable[str] = SERIES):
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number >= 4")
        self.capacity = capacity
        self.names = tuple(series)
        # Column 0 holds the step; per series: value, min, max.
        self._data = np.full((capacity, 1 + 3 * len(self.names)), np.nan)
        self._n = 0
        # Points arriving while the last bucket is still being filled merge into it.
        self._span = 1
        self._fill = 0
        self.events: list[Event] = []
        self.custom: list[str] = []  # the run's own metrics kept as series, in the order first seen

    def __len__(self) -> int:
        return self._n

    @property
    def last_step(self) -> int | None:
        return int(self._data[self._n - 1, 0]) if self._n else None

    def add(self, row: Mapping[str, Any]) -> None:
        """Add one evaluation (a metrics.jsonl record or Metrics.to_dict())."""
        if len(self.custom) < MAX_CUSTOM:
            self._take_custom(row)
        values = np.array([_num(row.get(name)) for name in self.names])
        triple = np.stack([values, values, values], axis=1).ravel()
        if self._fill and self._fill < self._span:
            bucket = self._data[self._n - 1]
            bucket[0] = row["step"]
            old = bucket[1:].reshape(-1, 3)
            new = triple.reshape(-1, 3)
            old[:, 0] = new[:, 0]
            old[:, 1] = np.fmin(old[:, 1], new[:, 1])
            old[:, 2] = np.fmax(old[:, 2], new[:, 2])
            self._fill += 1
            return
        if self._n == self.capacity:
            self._halve()
        self._data[self._n, 0] = row["step"]
        self._data[self._n, 1:] = triple
        self._n += 1
        self._fill = 1

    def _take_custom(self, row: Mapping[str, Any]) -> None:
        """A series, empty so far, for each custom metric `row` brings first."""
        for key, value in row.items():
            if len(self.custom) >= MAX_CUSTOM:
                return
            if key in _OWN_KEYS or key in self.names or not isinstance(key, str) or math.isnan(_num(value)):
                continue
            self.custom.append(key)
            self.names = (*self.names, key)
            self._data = np.concatenate([self._data, np.full((self.capacity, 3), np.nan)], axis=1)

    def _halve(self) -> None:
        a, b = self._data[0 : self._n : 2], self._data[1 : self._n : 2]
        merged = b.copy()  # the later bucket's step and last value stand for the pair
        cols = merged[:, 1:].reshape(len(merged), -1, 3)
        a3, b3 = a[:, 1:].reshape(len(a), -1, 3), b[:, 1:].reshape(len(b), -1, 3)
        cols[:, :, 1] = np.fmin(a3[:, :, 1], b3[:, :, 1])
        cols[:, :, 2] = np.fmax(a3[:, :, 2], b3[:, :, 2])
        self._n = len(merged)
        self._data[: self._n] = merged
        self._data[self._n :] = np.nan
        self._span *= 2
        self._fill = self._span  # the last bucket is complete: start a new one

    def add_event(self, event: Event | Mapping[str, Any]) -> None:
        if not isinstance(event, Event):
            event = Event(int(event["step"]), str(event["kind"]), event.get("old"), event.get("new"))
        self.events.append(event)

    def sync_events(self, events: tuple[Event, ...]) -> None:
        """Take the trainer's full event list (a snapshot carries all of them)."""
        if len(events) != len(self.events):
            self.events = list(events)

    def series(self, name: str) -> Series:
        i = 1 + 3 * self.names.index(name)
        rows = self._data[: self._n]
        return Series(rows[:, 0].copy(), rows[:, i].copy(), rows[:, i + 1].copy(), rows[:, i + 2].copy())

    def freeze(self, names: Iterable[str] | None = None) -> dict[str, Series]:
        """Copies of these series as they stand now, which later points never change
        (the ghost a restart leaves): at most `capacity` points each, whatever the run's length."""
        return {name: self.series(name) for name in (self.names if names is None else names)}

    def value_at(self, name: str, step: float) -> float | None:
        """The series' value at the last point at or before `step`."""
        s = self.series(name)
        i = np.searchsorted(s.steps, step, side="right") - 1
        return None if i < 0 or math.isnan(s.values[i]) else float(s.values[i])

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def phase(self, at: int | None = None) -> str | None:
        """Where the run stands, from its curves: test accuracy now against a while back, and at the fit; `at`:
        where it stood at that step (a replay's), from the curves up to it."""
        if not self._n:
            return None
        step = self.last_step if at is None else at
        assert step is not None
        train_acc, test_acc = self.value_at("train_acc", step), self.value_at("test_acc", step)
        if train_acc is None or test_acc is None:
            return None
        train = self.series("train_acc")
        fit = np.flatnonzero((train.values >= FIT_ACC) & (train.steps <= step))
        fit_step = None if fit.size == 0 else float(train.steps[fit[0]])
        at_fit = None if fit_step is None else self.value_at("test_acc", fit_step)
        # The rise that means generalizing is counted from the fit on: test accuracy climbs a little
        # beside train accuracy while the set is being learned, which a window reaching back before
        # the fit read as generalizing just after it (the default run, steps 200-400).
        since: float = step - max(200, step // 10)
        if fit_step is not None:
            since = max(since, fit_step)
        earlier = self.value_at("test_acc", since) if since >= 0 else None
        return phase(train_acc, test_acc, earlier, at_fit)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
