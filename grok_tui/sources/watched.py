"""`grok-tui watch RUN_DIR [RUN_DIR ...]`: a Source that reads run directories instead of training.

It follows metrics.jsonl and events.jsonl as they grow, and reloads the
checkpoint whenever it changes to show the weights; it never writes. Every
record is checked as it is read: a bad one is skipped and named in one line.
The runs compared with the first (`watch A B`) give only their curves: a
CurvesFollower each, which reads metrics.jsonl alone.
"""

from __future__ import annotations

import contextlib
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
from grok_tui.train.snapshot import Event, Metrics, RecordError, Snapshot, checked
from grok_tui.train.trainer import Inside, inspect_model

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

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        metrics, events_file = JsonlFollower(self.run_dir / METRICS), JsonlFollower(self.run_dir / EVENTS)
        # A script's model cannot be built from its files: its checkpoint carries the views themselves.
        model = build_model(self.cfg) if isinstance(self.cfg, RunConfig) else None
        events: list[Event] = []
        last: Metrics | None = None
        inside = Inside({}, None, None, None)
        checkpoint_mtime = None
        while not cancelled():
            rows = self._checked(METRICS, metrics.poll(), Metrics.from_dict)
            new_events = self._checked(EVENTS, events_file.poll(), Event.from_dict)
            events += new_events
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
            if last is not None and (rows or new_events or weights_changed or sampled):
                self.mailbox.put(self._snapshot(last, events, inside), rows)
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

    def _snapshot(self, last: Metrics, events: list[Event], inside: Inside) -> Snapshot:
        matrices, spectrum, parity, neuron_inputs = inside
        paused = next((bool(e.new) for e in reversed(events) if e.kind == "paused"), False)
        fault = next((str(e.new) for e in reversed(events) if e.kind == "fault"), None)
        return Snapshot(
            experiment=self.cfg.experiment,
            device=self.cfg.device,
            total_steps=self.cfg.steps or last.step,  # a script that names no step budget: as far as it got
            metrics=last,
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


__all__ = ["CurvesFollower", "WatchedRun", "script_views"]
