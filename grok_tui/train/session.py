"""A training session seen from outside: start it, steer it, read its latest frame.

The UI shares the GIL with anything in its process, and every millisecond it
spends rendering is taken from training (DESIGN.md measures 0.45-0.55 of the
bare loop's speed with the loop in a thread). So a run trains in a process of
its own (runner.py), which serves its channel in the run directory; the
monitor is an `AttachSession`, a client of that channel like any other: a
thread (the UI's worker) relays frames, at most `FRAME_INTERVAL_S` apart, into
a Mailbox, from which the UI takes the latest frame when it next draws, and
keys go out as commands, applied by the trainer between two steps; neither
side ever waits on the other. `ThreadSession` runs the loop in the calling
thread, for tests and for runs with no run directory.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from grok_tui.config import RunConfig, validate
from grok_tui.models import build_model
from grok_tui.runlog import (
    CHECKPOINT,
    RunDirError,
    RunLog,
    has_checkpoint,
    load_checkpoint,
    load_config,
    read_jsonl,
)
from grok_tui.tasks import n_classes
from grok_tui.train.channel import ChannelError, encode_command
from grok_tui.train.checkpoint import CheckpointError, check_state
from grok_tui.train.control import Control, SetHyper, check_hyper, to_wire
from grok_tui.train.launch import StartError, last_words, reach, wait_until_served
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
    # Values given with --resume (`--lr 0.01`): each holds from the step the run resumes at.
    values: tuple[tuple[str, float], ...] = ()

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
            trainer.set_from_now([SetHyper(name, value) for name, value in self.values])
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


def resume_run(run_dir: Path, values: dict[str, float] | None = None, **changes: Any) -> RunSpec:
    """Check that `run_dir` can be resumed, its checkpoint included (RunDirError, ConfigError, DeviceError,
    WontFit), before anything is started. `changes` are config fields that leave the run's course alone
    (steps, device, threads); `values` are hyperparameters set anew from the resume step on, as a key
    would set them (an event, not a new config: the run's curves show where they changed)."""
    checked = tuple((name, check_hyper(name, value)) for name, value in (values or {}).items())
    cfg = validate(load_config(run_dir).replace(**changes))
    check_fits(cfg, resolve_device(cfg.device))
    if has_checkpoint(run_dir):
        state = load_checkpoint(run_dir)
        # The shapes a trainer of this config has (a CPU build takes well under a millisecond; the
        # meta device would take a second to initialise its weights), the process RNG left alone.
        with torch.random.fork_rng(devices=[]):
            params: dict[str, torch.Tensor] = dict(build_model(cfg, n_classes(cfg)).named_parameters())
        try:
            check_state(state, params)
        except CheckpointError as e:
            raise RunDirError(f"{Path(run_dir) / CHECKPOINT}: {e}") from None
    return RunSpec(cfg, Path(run_dir), resume=True, values=checked)


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
            self.mailbox.fail(_describe(e))


def _stop_when(condition: Callable[[], bool], stop: Callable[[], None], every: float = 0.05) -> None:
    while not condition():
        time.sleep(every)
    stop()


class AttachSession:
    """A client of a run's channel (train/channel.py): its frames into a Mailbox, keys out as commands.

    The monitor is this client whether it started the run a moment ago (`process`, the run's own
    process, which it watches start) or attaches to one started elsewhere. Leaving (cancelled) only
    detaches; the run goes on until a Stop command or its step budget.
    """

    CONNECT_POLL_S = 0.05

    def __init__(self, run_dir: Path, process: Any = None, conn: Connection | None = None):
        self.run_dir = Path(run_dir)
        self.process = process  # a subprocess.Popen while the run's own process is starting, or None
        self._reached = conn  # a connection already made (`grok-tui attach` checks with the one it keeps)
        self.mailbox = Mailbox()
        self.control = Control(_Commands(self))
        self.ended: str | None = None  # the run's goodbye: "finished", "stopped", "fault: ..."
        self.info: dict[str, Any] = {}
        self._conn: Any = None
        self._send_lock = threading.Lock()
        self._next_id = 0

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        try:
            self._conn = self._connect(cancelled)
        except ChannelError as e:
            self.mailbox.fail(str(e))
            return
        if self._conn is None:
            return
        try:
            while not cancelled():
                if not self._conn.poll(0.1):
                    continue
                if not self._take(self._receive()):
                    return
        except (EOFError, OSError):
            self.mailbox.fail(self._gone())
        finally:
            # Not while a key's command is on its way out: closed under that write, the fd's number could
            # be reused by a file of the UI's, and the rest of the command go there.
            with self._send_lock:
                self._conn.close()

    def _connect(self, cancelled: Callable[[], bool]) -> Any:
        if self._reached is not None:
            return self._reached
        if self.process is not None:
            try:
                wait_until_served(self.run_dir, self.process, cancelled=cancelled)
            except StartError as e:
                raise ChannelError(str(e)) from None
            if cancelled():
                return None
        return reach(self.run_dir)

    def _receive(self) -> Any:
        """The next message, unpickled: the server has proved it holds the run's key, so it is the run's own
        process; but one of another grok-tui version may send what this one cannot rebuild."""
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise
        except Exception as e:  # whatever pickle raises for a class or field this version lacks
            return _Unreadable(f"{type(e).__name__}: {e}")

    def _take(self, message: Any) -> bool:
        """Act on one message from the run (channel.py lists them); False once it has said goodbye, or has
        sent what this client cannot read (said in one line: the monitor shows the run as ended)."""
        match message:
            case ("hello", dict() as info, list() as rows, snapshot) if _is_frame(snapshot, rows, optional=True):
                self.info = info
                if snapshot is not None:
                    self.mailbox.put(snapshot, rows)
                elif rows:
                    self.mailbox.put_rows(rows)
            case ("frame", snapshot, list() as rows) if _is_frame(snapshot, rows):
                self.mailbox.put(snapshot, rows)
            case ("reply", _, None):
                pass
            case ("reply", _, str() as error):
                self.mailbox.notice(f"the run refused a command: {error}")
            case ("bye", str() as reason):
                self.ended = reason
                if reason != "finished":  # stopped from elsewhere (another terminal, grok-tui stop), or a fault
                    self.mailbox.notice(f"the run has ended: {reason}")
                return False
            case _:
                what = message.why if isinstance(message, _Unreadable) else _kind(message)
                self.mailbox.fail(
                    f"the run sent a message this grok-tui cannot read ({what}); is the run's grok-tui the same "
                    f"version as this one? grok-tui watch {self.run_dir} reads its files"
                )
                return False
        return True

    def _gone(self) -> str:
        if self.process is not None and self.process.poll() is not None:
            return last_words(self.run_dir) or f"the run's process ended (exit status {self.process.returncode})"
        return "the run's process ended without saying goodbye (killed?); grok-tui ls tells its state"

    def send(self, command: Any) -> None:
        """Send a command (control.py checks it first); a run that has gone is said once, not raised."""
        if self._conn is None:
            self.mailbox.notice("not connected to the run yet")
            return
        with self._send_lock:
            self._next_id += 1
            try:
                self._conn.send_bytes(encode_command({"id": self._next_id, **to_wire(command)}))
            except (OSError, ValueError):
                self.mailbox.notice("the run is not reachable: the command was not sent")


@dataclass(frozen=True)
class _Unreadable:
    why: str


def _is_frame(snapshot: Any, rows: list[Any], optional: bool = False) -> bool:
    return (isinstance(snapshot, Snapshot) or (optional and snapshot is None)) and all(
        isinstance(row, Metrics) for row in rows
    )


def _kind(message: Any) -> str:
    """What a message that is not one of ours looks like, in a few words."""
    if isinstance(message, tuple) and message and isinstance(message[0], str):
        return f"a {message[0][:20]!r} message of {len(message)} parts"
    return f"a {type(message).__name__}"


class _Commands:
    """The queue Control puts on: commands go to the run's channel."""

    def __init__(self, session: AttachSession):
        self.session = session

    def put(self, command: Any) -> None:
        self.session.send(command)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        raise queue.Empty  # commands go out, never in


def _describe(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(e).__name__}: {e}{at}"
