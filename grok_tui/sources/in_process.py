"""A run trained inside the monitor's own process, in the worker's thread: for tests, and runs with no directory.

The loop shares the GIL with the screen here (docs/design.md measures what that
costs), which is why a real run trains in a process of its own (sources/attached.py).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grok_tui.sources.base import Curves, Mode, next_seed
from grok_tui.train.control import Control
from grok_tui.train.frames import Batcher, Mailbox
from grok_tui.train.spec import RunSpec


class InProcessRun:
    """A Source that runs the loop in the calling thread (a Textual thread worker)."""

    mode = Mode.OWN
    can_detach = False  # the run lives in this process: it ends with the monitor
    others: Sequence[Curves] = ()  # shown alone
    label: str | None = None

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.control: Control | None = Control()
        self.mailbox = Mailbox()

    @property
    def run_dir(self) -> Path | None:
        return self.spec.run_dir

    @property
    def config(self) -> dict[str, Any]:
        return self.spec.cfg.to_dict()

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        try:
            trainer = self.spec.build(self.control)
            done = threading.Event()
            # A paused loop emits nothing, so cancellation is watched from beside it.
            threading.Thread(
                target=_stop_when, args=(lambda: cancelled() or done.is_set(), trainer.request_stop), daemon=True
            ).start()
            frames = Batcher(self.mailbox.put)
            try:
                trainer.run(frames)
                frames.flush()
            finally:
                done.set()
        except Exception as e:  # shown in the app, never a traceback on the screen
            self.mailbox.fail(describe(e))

    def stop(self) -> None:
        assert self.control is not None
        self.control.stop()

    restart_refusal = None
    refused: Mapping[str, str] = {}  # a preset's run takes every command

    def restarted(self) -> InProcessRun:
        return InProcessRun(next_seed(self.spec))


def _stop_when(condition: Callable[[], bool], stop: Callable[[], None], every: float = 0.05) -> None:
    while not condition():
        time.sleep(every)
    stop()


def describe(e: BaseException) -> str:
    """An exception as one line, with where it was raised."""
    where = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(e).__name__}: {e}{at}"


__all__ = ["InProcessRun", "describe"]
