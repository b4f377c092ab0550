"""`grok-tui watch RUN_DIR [RUN_DIR ...]`: a Source that reads run directories instead of training.

It follows metrics.jsonl and events.jsonl as they grow, and reloads the
checkpoint whenever it changes to show the weights; it never writes. Every
record is checked as it is read: a bad one is skipped and named in one line.
The runs compared with the first (`watch A B`) give only their curves: a
CurvesFollower each, which reads metrics.jsonl alone.

Where the run kept the history of its views (RUN/replay.npz, train/replay.py),
`replay` steps through it: the views of a recorded step, with that step's
metrics, while the curves stay whole. A run without one (an older grok-tui's)
opens as before; a damaged one is named in one line and the run opens without.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil

from grok_tui.compare import labels
from grok_tui.config import RunConfig
from grok_tui.history import History
from grok_tui.loop.record import ScriptConfig
from grok_tui.metrics import neuron_spectrum
from grok_tui.models import build_model
from grok_tui.process import local_pid
from grok_tui.runlog import CHECKPOINT, EVENTS, METRICS, JsonlFollower, RunDirError, load_checkpoint, load_run_config
from grok_tui.sources.base import CannotRestart, Curves, Mode
from grok_tui.system import SAMPLE_INTERVAL_S, SystemSampler, SystemStats
from grok_tui.train.checkpoint import CheckpointError, check_state
from grok_tui.train.frames import Mailbox
from grok_tui.train.replay import REPLAY, Frame, Recorder, ReplayError, step_index
from grok_tui.train.snapshot import Event, Metrics, RecordError, Snapshot, checked
from grok_tui.train.trainer import Inside, inspect_model, read_views

POLL_S = 0.25

T = TypeVar("T")


class WatchedRun:
    """A Source over a run directory: its files as they grow, never written; with `compare`, other runs'
    curves drawn over its own (those runs named in the legend by what sets them apart)."""

    control = None  # read-only: nothing to steer
    can_detach = False  # nothing trains here to go on without us

    def __init__(self, run_dir: Path, compare: Sequence[Path] = ()):
        self.run_dir = Path(run_dir)
        self.cfg: RunConfig | ScriptConfig = load_run_config(self.run_dir)  # a preset's run or a script's
        self.label: str | None = None
        self.others: list[Curves] = []
        if compare:
            dirs = [self.run_dir, *map(Path, compare)]
            names = labels(
                [self.cfg.to_dict()] + [load_run_config(d).to_dict() for d in dirs[1:]],
                [d.resolve().name for d in dirs],
            )
            self.label = names[0]
            self.others = [CurvesFollower(d, name) for d, name in zip(dirs[1:], names[1:], strict=True)]
        self.mode = Mode.COMPARING if self.others else Mode.WATCHED
        self.mailbox = Mailbox()
        self._bad: set[Path] = set()  # files already reported: one line each, not one per poll
        self._sampler: SystemSampler | None = None
        self._sampled_at = -SAMPLE_INTERVAL_S
        self._system: SystemStats | None = None
        # What a frame is made of, kept for a replayed step's frame too (the worker and a key both make one).
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._last: Metrics | None = None
        self._rows: dict[int, Metrics] = {}
        self._inside = Inside({}, None, None, None)
        self._replay_mtime: float | None = None
        self.replay: Replayed | None = None
        self._load_replay()

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        metrics, events_file = JsonlFollower(self.run_dir / METRICS), JsonlFollower(self.run_dir / EVENTS)
        # A script's model cannot be built from its files: its checkpoint carries the views themselves.
        model = build_model(self.cfg) if isinstance(self.cfg, RunConfig) else None
        events = self._events
        last: Metrics | None = None
        inside = Inside({}, None, None, None)
        checkpoint_mtime = None
        while not cancelled():
            rows = self._checked(METRICS, metrics.poll(), Metrics.from_dict)
            new_events = self._checked(EVENTS, events_file.poll(), Event.from_dict)
            replay_changed = self._load_replay()
            mtime = _mtime(self.run_dir / CHECKPOINT)
            weights_changed = mtime is not None and mtime != checkpoint_mtime
            if weights_changed:
                checkpoint_mtime = mtime
                try:
                    state = load_checkpoint(self.run_dir)
                    if model is None or not isinstance(self.cfg, RunConfig):
                        inside = script_views(state)
                    else:
                        check_state(state, dict(model.named_parameters()))
                        model.load_state_dict(state["model"])
                        inside = inspect_model(model, self.cfg)
                except RunDirError:
                    checkpoint_mtime = None  # caught mid-rename: try again next time
                except CheckpointError as e:
                    path = self.run_dir / CHECKPOINT
                    self._report(path, f"{path}: {e}; the weights are not shown")
            if rows:
                last = rows[-1]
            sampled = self._sample_system()
            with self._lock:
                events += new_events
                self._rows.update((row.step, row) for row in rows)
                self._last, self._inside = last, inside
                if last is not None and (rows or new_events or weights_changed or sampled or replay_changed):
                    self.mailbox.put(self._frame(), rows)
            time.sleep(POLL_S)

    @property
    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def stop(self) -> None:
        """Nothing to stop: the run is not ours. The monitor's leaving (the worker cancelled) ends the reading."""

    refused: Mapping[str, str] = {}  # read-only: no control, and every key that would steer says so

    @property
    def restart_refusal(self) -> str:
        return f"read-only: this view follows {self.run_dir}"

    def restarted(self) -> WatchedRun:
        raise CannotRestart(self.restart_refusal)

    def _sample_system(self) -> bool:
        """Sample the figures of the process training the run, where it trains on this box; whether it
        is time to show a new sample (once a second)."""
        now = time.monotonic()
        if now - self._sampled_at < SAMPLE_INTERVAL_S:
            return False
        self._sampled_at = now
        pid = local_pid(self.run_dir)
        if pid is None:
            self._sampler = None
        elif self._sampler is None or self._sampler.pid != pid:
            with contextlib.suppress(psutil.Error):
                self._sampler = SystemSampler(pid, interval=0.0)
        before, self._system = self._system, self._sampler.sample() if self._sampler else None
        return self._system is not None or before is not None

    def _checked(self, name: str, records: list[dict[str, Any]], parse: Callable[[dict[str, Any]], T]) -> list[T]:
        """The records that parse; the first bad one in each file is reported, the rest skipped quietly."""
        return checked(records, parse, self.run_dir / name, self._report)

    def _report(self, path: Path, line: str) -> None:
        if path not in self._bad:
            self._bad.add(path)
            self.mailbox.notice(line)

    def _load_replay(self) -> bool:
        """(Re)read the run's history of views when its file changed; whether it did. A damaged one: one line,
        and no replay (or the last one read, for a file caught being replaced)."""
        path = self.run_dir / REPLAY
        mtime = _mtime(path)
        if mtime == self._replay_mtime:
            return False
        self._replay_mtime = mtime
        try:
            recorder = Recorder.load(self.run_dir)
        except ReplayError as e:
            self._report(path, f"{e}; this run opens without its replay")
            return False
        if recorder is None or not len(recorder):
            return False
        with self._lock:
            if self.replay is None:
                self.replay = Replayed(recorder, self._read_frame, self._show_replayed)
            else:
                self.replay.update(recorder)
        return True

    def _read_frame(self, frame: Frame) -> Inside:
        """The views of a recorded frame, read as those of a checkpoint are."""
        if isinstance(self.cfg, RunConfig):
            return read_views(frame.matrices, frame.neuron_inputs, self.cfg)
        inputs = frame.neuron_inputs
        if inputs is not None and inputs.shape[0] >= 3:
            return Inside(frame.matrices, neuron_spectrum(inputs), None, inputs)
        return Inside(frame.matrices, None, None, None)

    def _show_replayed(self) -> None:
        """The frame of the step the replay moved to, at once (called by a key, in the monitor's thread)."""
        with self._lock:
            if self._last is not None:
                self.mailbox.put(self._frame(), [])

    def _frame(self) -> Snapshot:
        """The frame of now: the newest one, or the replayed step's (its views and its metrics). Under the lock."""
        assert self._last is not None
        replayed = self.replay.shown() if self.replay is not None else None
        if replayed is None:
            return self._snapshot(self._last, self._events, self._inside)
        step, inside = replayed
        row = self._rows.get(step)
        if row is None:  # a step with no row of its own (a record skipped): the one before it
            steps = sorted(self._rows)
            row = self._rows[steps[step_index(steps, step)]] if steps else self._last
        return self._snapshot(self._last, self._events, inside, row)

    def _snapshot(self, last: Metrics, events: list[Event], inside: Inside, shown: Metrics | None = None) -> Snapshot:
        """`last`: the newest metrics; `shown`: those the frame shows, where they are another step's (a replay)."""
        matrices, spectrum, parity, neuron_inputs = inside
        paused = next((bool(e.new) for e in reversed(events) if e.kind == "paused"), False)
        fault = next((str(e.new) for e in reversed(events) if e.kind == "fault"), None)
        return Snapshot(
            experiment=self.cfg.experiment,
            device=self.cfg.device,
            total_steps=self.cfg.steps or last.step,  # a script that names no step budget: as far as it got
            metrics=shown or last,
            paused=paused,
            finished=last.step >= (self.cfg.steps or last.step),
            events=tuple(events),
            matrices=matrices,
            spectrum=spectrum,
            parity=parity,
            neuron_inputs=neuron_inputs,
            fault=fault,
            system=self._system,
            optimizer=(self.cfg.optimizer or None) if isinstance(self.cfg, ScriptConfig) else None,
            spectrum_note=NO_NEURON_INPUTS if spectrum is None and isinstance(self.cfg, ScriptConfig) else None,
        )


class Replayed:
    """The steps a run recorded (sources/base.py, `Replay`), and the one shown: `position` None is the run as its
    files say now, else an index into `steps`. A few frames read back are kept, so stepping to and fro reads each
    once and the panes see the same arrays for the same step."""

    CACHED = 8

    def __init__(self, recorder: Recorder, read: Callable[[Frame], Inside], moved: Callable[[], None]):
        self._recorder, self._read, self._moved = recorder, read, moved
        self._steps = recorder.steps
        self.position: int | None = None
        self._cache: dict[int, Inside] = {}

    @property
    def steps(self) -> list[int]:
        return self._steps

    def seek(self, index: int | None) -> None:
        """Show the frame at `index` (clamped to the frames there are), or with None the run as it is now."""
        self.position = None if index is None else max(0, min(index, len(self._steps) - 1))
        self._moved()

    def shown(self) -> tuple[int, Inside] | None:
        """The step shown and its views; None: not replaying."""
        index = self.position
        if index is None:
            return None
        step = self._steps[index]
        if step not in self._cache:
            if len(self._cache) >= self.CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[step] = self._read(self._recorder.frame(index))
        return step, self._cache[step]

    def update(self, recorder: Recorder) -> None:
        """A newer history of a run still training: the step shown stays shown (or the nearest before it)."""
        step = self._steps[self.position] if self.position is not None else None
        self._recorder, self._steps, self._cache = recorder, recorder.steps, {}
        if step is not None:
            self.position = step_index(self._steps, step)


# A script's checkpoint without the neurons' inputs: its monitor had no period (or no embedding to cut).
NO_NEURON_INPUTS = (
    "this script's run kept no neuron inputs: pass period= (or neuron_inputs=) to grok_tui.monitor to see "
    "each neuron's dominant frequency"
)


class CurvesFollower:
    """The curves of a run compared with the watched one, read as its metrics.jsonl grows.

    Only the metrics: no model, no checkpoint, so a comparison of several runs costs
    little more than one. `poll` is cheap enough for the monitor's timer: it reads
    what was appended since the last call, nothing when nothing was.
    """

    def __init__(self, run_dir: Path, label: str):
        self.run_dir = Path(run_dir)
        self.label = label
        self.history = History()
        self._metrics = JsonlFollower(self.run_dir / METRICS)
        self._reported = False
        self._notices: list[str] = []

    def poll(self) -> bool:
        """Take in the new records; whether there were any."""
        added = False
        try:
            records = self._metrics.poll()
        except OSError as e:  # unreadable now (permissions, a vanished disk): say so once, try again later
            self._report(f"cannot read it ({e.strerror or e})")
            return False
        for record in records:
            try:
                row = Metrics.from_dict(record)
            except RecordError as e:
                self._report(f"{e}; record skipped")
                continue
            self.history.add(row.to_dict())
            added = True
        return added

    def _report(self, problem: str) -> None:
        if not self._reported:  # one line a file, not one a poll
            self._reported = True
            self._notices.append(f"{self.run_dir / METRICS}: {problem}")

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices


def script_views(state: dict[str, Any]) -> Inside:
    """The views a script's checkpoint carries (loop/session.py writes them under "views"): its matrices and
    the neuron inputs whose spectrum the frequencies pane shows. What is not a 2-D tensor is left out."""
    import torch

    views = state.get("views")
    if not isinstance(views, dict):
        return Inside({}, None, None, None)
    found = views.get("matrices")
    matrices = {
        str(name): t.detach().float().numpy()
        for name, t in (found.items() if isinstance(found, dict) else ())
        if isinstance(t, torch.Tensor) and t.dim() == 2 and t.numel() > 0
    }
    inputs = views.get("neuron_inputs")
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 2 and inputs.shape[0] >= 3 and inputs.numel() > 0:
        neuron_inputs = inputs.detach().float().numpy()
        return Inside(matrices, neuron_spectrum(neuron_inputs), None, neuron_inputs)
    return Inside(matrices, None, None, None)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


__all__ = ["CurvesFollower", "Replayed", "WatchedRun", "script_views"]
