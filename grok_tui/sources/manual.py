"""A Source whose frames are put in by hand: for tests and the benchmark, where nothing trains.

`put` hands the monitor a frame as a run's source would; commands, where the
source takes them, are kept in `sent` in the order they came, for the caller to
read back. The worker's `run` lives until the monitor cancels it, as a real
source's does.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grok_tui.sources.base import CannotRestart, Curves, Mode
from grok_tui.train.control import Command, Control
from grok_tui.train.frames import Mailbox
from grok_tui.train.snapshot import Metrics, Snapshot


class ManualSource:
    """A Source over frames the caller puts in: read-only, or (`steerable`) keeping the commands it is sent."""

    can_detach = False

    def __init__(
        self,
        rows: Sequence[Metrics] = (),
        snapshot: Snapshot | None = None,
        *,
        steerable: bool = False,
        error: str | None = None,
        mode: Mode = Mode.OWN,
        run_dir: Path | None = None,
        config: dict[str, Any] | None = None,
        refused: Mapping[str, str] | None = None,
    ):
        self.mailbox = Mailbox()
        self.mode = mode
        self.run_dir = run_dir
        self.config = config
        self.refused: Mapping[str, str] = dict(refused or {})  # commands (by name) shown disabled, with why
        self.label: str | None = None
        self.others: list[Curves] = []
        self.sent: list[Command] = []
        self._commands = _Kept(self.sent)
        self.control: Control | None = Control(self._commands) if steerable else None
        if snapshot is not None:
            self.put(snapshot, rows)
        if error:
            self.mailbox.fail(error)

    def put(self, snapshot: Snapshot, rows: Sequence[Metrics] = ()) -> None:
        self.mailbox.put(snapshot, list(rows))

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        while not cancelled():
            time.sleep(0.02)

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()

    restart_refusal = "this source's frames are put in by hand: there is no run to restart"

    def restarted(self) -> ManualSource:
        raise CannotRestart(self.restart_refusal)


class _Kept:
    """The queue Control puts on: commands are kept, in order, and never taken."""

    def __init__(self, sent: list[Command]):
        self.sent = sent

    def put(self, command: Command) -> None:
        self.sent.append(command)

    def get(self, block: bool = True, timeout: float | None = None) -> Command:
        raise queue.Empty


__all__ = ["ManualSource"]
