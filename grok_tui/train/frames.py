"""How a run's frames travel: a trainer's snapshots thinned into frames, and the mailbox a reader takes them from.

A `Batcher` sits on the training side: it passes a frame on at most every
`FRAME_INTERVAL_S` (any change of state at once) with every metrics row since
the last, so curves have no gaps. A `Mailbox` sits between a writer thread and
a reader: it keeps only the newest frame and the rows since the last take, so a
slow reader never holds up the writer (docs/design.md, "Frames and pacing").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grok_tui.train.snapshot import Metrics, Snapshot

FRAME_INTERVAL_S = 0.05


@dataclass
class Mailbox:
    """The latest frame and every metrics row since the last take; thread-safe, never blocks for long."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _latest: Snapshot | None = None
    _rows: list[Metrics] = field(default_factory=list)
    _error: str | None = None
    _notices: list[str] = field(default_factory=list)

    def put(self, snapshot: Snapshot, rows: list[Metrics]) -> None:
        with self._lock:
            self._latest = snapshot
            self._rows.extend(rows)

    def fail(self, message: str) -> None:
        with self._lock:
            self._error = message

    def notice(self, message: str) -> None:
        """A line worth showing once (a bad record skipped, say) that stops nothing."""
        with self._lock:
            self._notices.append(message)

    def take_notices(self) -> list[str]:
        with self._lock:
            notices, self._notices = self._notices, []
            return notices

    def put_rows(self, rows: list[Metrics]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def take(self) -> tuple[Snapshot | None, list[Metrics], str | None]:
        with self._lock:
            latest, rows, error = self._latest, self._rows, self._error
            self._latest, self._rows = None, []
            return latest, rows, error


class Batcher:
    """Collects a trainer's snapshots and passes one frame on at most every interval."""

    def __init__(self, send: Callable[[Snapshot, list[Metrics]], None], interval: float = FRAME_INTERVAL_S):
        self.send, self.interval = send, interval
        self.rows: list[Metrics] = []
        self.last_sent = 0.0
        self.last_state: tuple[Any, ...] | None = None
        self.held: Snapshot | None = None

    def __call__(self, snapshot: Snapshot) -> None:
        if not self.rows or self.rows[-1].step != snapshot.metrics.step:
            self.rows.append(snapshot.metrics)
        # Any change of state goes out at once; plain progress at the frame rate.
        state = (
            len(snapshot.events),
            snapshot.paused,
            snapshot.finished,
            snapshot.fault,
            snapshot.settings,
            snapshot.checkpoints,
        )
        now = time.monotonic()
        if state != self.last_state or now - self.last_sent >= self.interval:
            self.send(snapshot, self.rows)
            self.rows, self.last_sent, self.last_state = [], now, state
        else:
            self.held = snapshot

    def flush(self) -> None:
        """Pass on the frame held back, if any: the last one of a run must not be lost."""
        if self.rows and self.held is not None:
            self.send(self.held, self.rows)
            self.rows = []


__all__ = ["FRAME_INTERVAL_S", "Batcher", "Mailbox"]
