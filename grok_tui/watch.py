"""`grok-tui watch RUN_DIR`: a session that reads a run directory instead of training.

It follows metrics.jsonl and events.jsonl as they grow, and reloads the
checkpoint whenever it changes to show the weights; it never writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


from grok_tui.config import RunConfig
from grok_tui.models import build_model
from grok_tui.runlog import CHECKPOINT, EVENTS, METRICS, JsonlFollower, RunDirError, load_checkpoint, read_config
from grok_tui.train.session import Mailbox
from grok_tui.train.snapshot import Event, Metrics, Snapshot
from grok_tui.train.trainer import look_inside

POLL_S = 0.25


class WatchSession:
    control = None  # read-only: nothing to steer

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.cfg = RunConfig.from_dict(read_config(self.run_dir))
        self.mailbox = Mailbox()

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        metrics, events_file = JsonlFollower(self.run_dir / METRICS), JsonlFollower(self.run_dir / EVENTS)
        model = build_model(self.cfg, self.cfg.p if self.cfg.task == "modular" else 2)
        events: list[Event] = []
        last: Metrics | None = None
        inside = ({}, None, None)
        checkpoint_mtime = None
        while not cancelled():
            rows = [Metrics.from_dict(r) for r in metrics.poll() if isinstance(r.get("step"), int)]
            new_events = [Event(int(e["step"]), str(e["kind"]), e.get("old"), e.get("new"))
                          for e in events_file.poll() if isinstance(e.get("step"), int) and "kind" in e]
            events += new_events
            mtime = _mtime(self.run_dir / CHECKPOINT)
            weights_changed = mtime is not None and mtime != checkpoint_mtime
            if weights_changed:
                try:
                    model.load_state_dict(load_checkpoint(self.run_dir)["model"])
                    inside = look_inside(model, self.cfg)
                    checkpoint_mtime = mtime
                except (RunDirError, RuntimeError):
                    pass  # caught mid-rename or from another config: try again next time
            if rows:
                last = rows[-1]
            if last is not None and (rows or new_events or weights_changed):
                self.mailbox.put(self._snapshot(last, events, inside), rows)
            time.sleep(POLL_S)

    def _snapshot(self, last: Metrics, events: list[Event], inside: tuple) -> Snapshot:
        matrices, spectrum, parity = inside
        paused = next((bool(e.new) for e in reversed(events) if e.kind == "paused"), False)
        fault = next((str(e.new) for e in reversed(events) if e.kind == "fault"), None)
        return Snapshot(
            experiment=f"{self.cfg.experiment} [watch]", device=str(self.run_dir),
            total_steps=self.cfg.steps, metrics=last, paused=paused, finished=last.step >= self.cfg.steps,
            events=tuple(events), matrices=matrices, spectrum=spectrum, parity=parity, fault=fault,
        )


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


__all__ = ["WatchSession"]
