"""A training session seen from outside: start it, steer it, read its latest frame.

The UI shares the GIL with anything in its process, and every millisecond it
spends rendering is taken from training (DESIGN.md measures 0.45-0.55 of the
bare loop's speed with the loop in a thread). So the loop runs in a child
process: commands go in through a multiprocessing queue (read between two
steps) and frames come back through another, at most `FRAME_INTERVAL_S` apart.
A thread in the parent (the UI's worker) relays them into a Mailbox, from which
the UI takes the latest frame when it next draws; neither side ever waits on
the other. `ThreadSession` runs the same loop in the calling thread, for
tests and for machines where a child process is not wanted.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from grok_tui.config import RunConfig, validate
from grok_tui.models import build_model
from grok_tui.runlog import (
    CHECKPOINT, RunDirError, RunLog, has_checkpoint, load_checkpoint, load_config, read_jsonl,
)
from grok_tui.tasks import n_classes
from grok_tui.train.checkpoint import CheckpointError, check_state
from grok_tui.train.control import Control
from grok_tui.train.memory import check_fits
from grok_tui.train.snapshot import Event, Metrics, RecordError, Snapshot
from grok_tui.train.trainer import Trainer, resolve_device

FRAME_INTERVAL_S = 0.05


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to build a Trainer anywhere, this process or a child."""

    cfg: RunConfig
    run_dir: Path | None
    resume: bool = False

    def build(self, control: Control | None = None) -> Trainer:
        trainer = Trainer(self.cfg, run_dir=self.run_dir, control=control)
        if self.resume:
            assert self.run_dir is not None and trainer.log is not None
            # No checkpoint: killed before the first one, so the run starts again from step 0.
            state = load_checkpoint(self.run_dir) if has_checkpoint(self.run_dir) else None
            if state is not None:
                trainer.load_state(state)
            since = trainer.log.rewind(state)
            # The changes made before the checkpoint stay marked on the curves of the resumed run;
            # those made after it are made again, at their steps.
            trainer.events = [event for event in map(_event, read_jsonl(trainer.log.events_path)) if event]
            trainer.replay([event for event in map(_event, since) if event])
        return trainer


def _event(record: dict[str, Any]) -> Event | None:
    try:
        return Event.from_dict(record)
    except RecordError:
        return None


def new_run(cfg: RunConfig, run_dir: Path | None) -> RunSpec:
    """Check the device and the memory, then create the run directory (DeviceError, WontFit, RunDirError)."""
    check_fits(cfg, resolve_device(cfg.device))
    if run_dir is not None:
        RunLog(run_dir).create(cfg.to_dict())
    return RunSpec(cfg, run_dir)


def resume_run(run_dir: Path, **changes: Any) -> RunSpec:
    """Check that `run_dir` can be resumed, its checkpoint included (RunDirError, ConfigError, DeviceError,
    WontFit), before anything is started."""
    cfg = validate(load_config(run_dir).replace(**changes))
    check_fits(cfg, resolve_device(cfg.device))
    if has_checkpoint(run_dir):
        state = load_checkpoint(run_dir)
        # The shapes a trainer of this config has (a CPU build takes well under a millisecond; the
        # meta device would take a second to initialise its weights), the process RNG left alone.
        with torch.random.fork_rng(devices=[]):
            params = dict(build_model(cfg, n_classes(cfg)).named_parameters())
        try:
            check_state(state, params)
        except CheckpointError as e:
            raise RunDirError(f"{Path(run_dir) / CHECKPOINT}: {e}") from None
    return RunSpec(cfg, Path(run_dir), resume=True)


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
    """While inside, SIGINT, SIGTERM and SIGHUP (the terminal closed) stop the run cleanly, so it
    flushes and checkpoints; yields the signals received."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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

    def take(self) -> tuple[Snapshot | None, list[Metrics], str | None]:
        with self._lock:
            latest, rows, error = self._latest, self._rows, self._error
            self._latest, self._rows = None, []
            return latest, rows, error


class _Batcher:
    """Collects a trainer's snapshots and passes one frame on at most every interval."""

    def __init__(self, send: Callable[[Snapshot, list[Metrics]], None], interval: float = FRAME_INTERVAL_S):
        self.send, self.interval = send, interval
        self.rows: list[Metrics] = []
        self.last_sent = 0.0
        self.last_state: tuple[Any, ...] | None = None

    def __call__(self, snapshot: Snapshot) -> None:
        if not self.rows or self.rows[-1].step != snapshot.metrics.step:
            self.rows.append(snapshot.metrics)
        # Any change of state goes out at once; plain progress at the frame rate.
        state = (len(snapshot.events), snapshot.paused, snapshot.finished, snapshot.fault, snapshot.settings,
                 snapshot.checkpoints)
        now = time.monotonic()
        if state != self.last_state or now - self.last_sent >= self.interval:
            self.send(snapshot, self.rows)
            self.rows, self.last_sent, self.last_state = [], now, state


class ThreadSession:
    """Runs the loop in the calling thread (a Textual thread worker)."""

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.control = Control()
        self.mailbox = Mailbox()

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        try:
            trainer = self.spec.build(self.control)
            done = threading.Event()
            # A paused loop emits nothing, so cancellation is watched from beside it.
            threading.Thread(target=_stop_when, args=(lambda: cancelled() or done.is_set(), trainer.request_stop),
                             daemon=True).start()
            try:
                trainer.run(_Batcher(self.mailbox.put))
            finally:
                done.set()
        except Exception as e:  # shown in the app, never a traceback on the screen
            self.mailbox.fail(_describe(e))


def _stop_when(condition: Callable[[], bool], stop: Callable[[], None], every: float = 0.05) -> None:
    while not condition():
        time.sleep(every)
    stop()


class ProcessSession:
    """Runs the loop in a child process and relays its frames from the calling thread."""

    JOIN_TIMEOUT_S = 5.0

    def __init__(self, spec: RunSpec):
        self.spec = spec
        ctx = mp.get_context("spawn")  # fork is unsafe with the UI's threads running
        self._commands: Any = ctx.Queue()
        self._frames: Any = ctx.Queue()
        self.control = Control(self._commands)
        self.mailbox = Mailbox()
        self._process = ctx.Process(
            target=_child_main, args=(spec, self._commands, self._frames, os.getpid()), daemon=True,
            name="grok-tui-trainer",
        )

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        self._process.start()
        stop_sent = False
        try:
            while True:
                if cancelled() and not stop_sent:
                    self.control.stop()
                    stop_sent = True
                try:
                    kind, *payload = self._frames.get(timeout=0.1)
                except queue.Empty:
                    if not self._process.is_alive():
                        self.mailbox.fail(f"the training process ended unexpectedly (exit code {self._process.exitcode})")
                        return
                    continue
                if kind == "frame":
                    self.mailbox.put(*payload)
                elif kind == "error":
                    self.mailbox.fail(payload[0])
                elif kind == "done":
                    return
        finally:
            self._process.join(self.JOIN_TIMEOUT_S)
            if self._process.is_alive():
                self._process.terminate()


def _child_main(spec: RunSpec, commands: Any, frames: Any, parent_pid: int) -> None:
    try:
        trainer = spec.build(Control(commands))
        # A daemon child is not reaped if the parent is SIGKILLed: stop cleanly instead.
        threading.Thread(target=_stop_when, args=(lambda: os.getppid() != parent_pid, trainer.request_stop, 0.5),
                         daemon=True).start()
        # The terminal's hang-up reaches this process too: stop cleanly, don't die mid-step.
        with stop_on_signals(trainer.request_stop):
            trainer.run(_Batcher(lambda snapshot, rows: frames.put(("frame", snapshot, rows))))
    except Exception as e:
        frames.put(("error", _describe(e)))
    finally:
        frames.put(("done",))
        frames.close()
        # Let the frames drain to a parent that reads them, but a parent that is gone, or going
        # without reading, would leave this process waiting on a full pipe for ever.
        drained = threading.Thread(target=frames.join_thread, daemon=True)
        drained.start()
        drained.join(timeout=ProcessSession.JOIN_TIMEOUT_S)
        if drained.is_alive():
            frames.cancel_join_thread()


def _describe(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(e).__name__}: {e}{at}"
