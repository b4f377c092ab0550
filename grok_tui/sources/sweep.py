"""What the sweep monitor watches: a sweep directory as it grows, and the sweep's own process where the monitor
started it.

The sweep trains in a process of its own (sweep/launch.py); the monitor only
reads what it writes (sweep/store.py SweepFollower), in a thread worker, at the
pace `--refresh` sets, and follows the curves of the members it is shown
(sources/watched.py CurvesFollower). A member opened from the map is a run
directory like any other: `member` gives its read-only source. Each reading also
forecasts the undecided members whose rows moved (forecast/live.py), there in
the thread, so the map can shade them by what they are expected to become.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grok_tui.compare import labels
from grok_tui.forecast.live import MemberForecasts, Outlook
from grok_tui.sources.base import Mode
from grok_tui.sources.watched import CurvesFollower, WatchedRun
from grok_tui.sweep.launch import State, start_sweep, stop_own, sweep_state
from grok_tui.sweep.store import MemberView, SweepFollower, SweepView


@dataclass(frozen=True)
class SweepFrame:
    """One reading of the sweep: its members' view, the followed members' new curves, how its process stands."""

    view: SweepView
    changed: bool  # whether any member's view moved since the last reading
    curves_added: bool  # whether any followed member's curves grew
    state: State
    problem: str | None  # the directory could not be read this time (said once)
    notices: list[str]  # records that could not be read, one line each
    forecasts: dict[str, Outlook] = field(default_factory=dict)  # by member name: the undecided it speaks for


class SweepSource:
    """A sweep directory, read; and the process training it, where this monitor started it (then `q` stops it)."""

    def __init__(self, root: Path, process: subprocess.Popen[bytes] | None = None):
        self.follower = SweepFollower(root)  # SweepDirError when `root` is not a sweep
        self.info = self.follower.info
        self.run_dir = self.info.root
        self.process = process
        self.mode = Mode.OWN if process is not None else Mode.WATCHED
        self._lock = threading.Lock()  # one reading at a time
        self.forecasts = MemberForecasts()

    @classmethod
    def start(cls, root: Path, engine_args: Sequence[str] = ()) -> SweepSource:
        """Train the sweep in `root` (just created, or resumed) in a process of its own, and watch it."""
        source = cls(root)  # checked first: a directory that is not a sweep starts nothing
        source.process = start_sweep(root, engine_args)
        source.mode = Mode.OWN
        return source

    @property
    def can_detach(self) -> bool:
        """Whether the sweep trains now in a process this monitor started (which `q` then stops)."""
        return self.process is not None and self.process.poll() is None

    def curves(self, views: Sequence[MemberView]) -> list[CurvesFollower]:
        """Followers of these members' curves, each named by what sets it apart from the others."""
        names = labels([v.member.cfg.to_dict() for v in views], [v.name for v in views]) if views else []
        return [CurvesFollower(self.info.member_dir(v.member), n) for v, n in zip(views, names, strict=True)]

    def member(self, name: str) -> WatchedRun:
        """The read-only source of one member (RunDirError when its directory is not a run yet)."""
        return WatchedRun(self.run_dir / "members" / name)

    def read(self, curves: Sequence[CurvesFollower]) -> SweepFrame:
        """What the sweep wrote since the last reading (called in a worker thread; never raises)."""
        with self._lock:
            problem = None
            try:
                changed = self.follower.poll()
                notices = self.follower.take_notices()
            except OSError as e:
                changed, notices, problem = False, [], f"cannot read {self.run_dir}: {e.strerror or e}"
            except Exception as e:  # a bug in the follower: say so, and keep reading
                changed, notices, problem = False, [], f"cannot read {self.run_dir}: {type(e).__name__}: {e}"
            added = any([c.poll() for c in curves])
            state = self.state()
            view = self.follower.view()
            forecasts = self.forecasts.update(view.members)
        if state.word == "not started" and view.finished:
            state = State("finished")  # a sweep directory written without a process record (by hand, or copied)
        return SweepFrame(view, changed, added, state, problem, notices, forecasts)

    def state(self) -> State:
        return sweep_state(self.run_dir, self.process)

    def stop(self) -> str:
        """Stop the sweep's process this monitor started, and wait until it has checkpointed: how it ended."""
        assert self.process is not None
        return stop_own(self.run_dir, self.process)


__all__ = ["State", "SweepFrame", "SweepSource"]
