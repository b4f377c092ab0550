"""`grok_tui.monitor(model, optimizer)`: a training loop of your own, as a run that grok-tui watches and steers.

    with grok_tui.monitor(model, optimizer, period=p, config={"p": p}) as m:
        for step in range(steps):
            ...  # your forward, backward, optimizer.step()
            if step % 10 == 0:
                m.log(step, train_loss=tl, train_acc=ta, test_loss=vl, test_acc=va)
            if m.should_stop:
                break

The loop's process becomes the run's process: it writes the run directory a preset's run writes
(config.json saying it is a script's, loop/record.py; metrics.jsonl, events.jsonl, process.json,
checkpoint.pt) and serves the same channel (train/server.py), so `grok-tui attach`, `ls`, `stop` and
`watch` work on it unchanged.

Threads: the channel's threads only queue commands (`ScriptControl.send`, loop/steering.py, checks each,
and refuses what a foreign loop cannot do with a reply saying why). Every command is applied on the training
thread, in a hook the optimizer calls after each `step()` (`register_step_post_hook`), so between two
updates; a pause blocks there. The hook reads nothing from the device: the norms and the views
(loop/views.py) are read in `log`, the views only while a client watches and at most every VIEW_INTERVAL_S.
A step with nothing queued costs the hook one attribute read (`ScriptControl.pending`).

Here: the run's lifecycle (start, serve, log, pause, checkpoint, close). What `log` takes is loop/logged.py,
what a key changes in the optimizer loop/steering.py, what the frames show of the model loop/views.py.

Under torch.distributed (initialized before `monitor`, more than one rank) the user calls `monitor` on
every rank. Rank 0 alone writes the run directory and serves the channel; on the other ranks `log`, the
checkpoints and the files are no-ops. Every rank's hook learns rank 0's commands through one tiny
collective a step (loop/ranks.py), so each command applies at the same step on every rank (one step later
than in a single process), `should_stop` turns true on every rank at the same step (where a single
process sees it at once), and a pause holds every rank.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from grok_tui.crash import report_crash
from grok_tui.files import WriteError
from grok_tui.loop.logged import FILLED, KNOWN, SHARES, checked_metrics, checked_step
from grok_tui.loop.ranks import Ranks
from grok_tui.loop.record import REFUSED_INFO, RUN_DIR_ENV, ScriptConfig, checked_user_config, steps_from
from grok_tui.loop.steering import ScriptControl, Steering
from grok_tui.loop.views import ModelViews
from grok_tui.process import mark_ended, mark_running, record_pauses
from grok_tui.runlog import RunDirError, RunLog, default_run_dir, load_run_config, write_config
from grok_tui.runner import SystemFrames
from grok_tui.train.control import Command, Pause, Resume, SaveCheckpoint, ScaleHyper, SetHyper, Stop, Toggle
from grok_tui.train.frames import Batcher
from grok_tui.train.replay import Recorder
from grok_tui.train.server import RunServer
from grok_tui.train.snapshot import Event, Metrics, Settings, Snapshot

CHECKPOINT_EVERY_S = 30.0
PAUSE_POLL_S = 0.05


class Monitor:
    """Watch and steer the training loop of `model` and `optimizer` (README, "Your own training loop"): a
    script's run, its directory, its channel, and the keys applied to its optimizer.

    The run directory is `run_dir`, else the one `grok-tui run` hands over, else runs/<timestamp>-<script>.
    Use it as a context manager: leaving the block ends the run (finished, stopped, or crashed with the
    exception's traceback in crash.log)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        scheduler: Any = None,
        period: int | None = None,
        matrices: Callable[[], Mapping[str, torch.Tensor]] | None = None,
        neuron_inputs: Callable[[], torch.Tensor | None] | None = None,
        config: dict[str, Any] | None = None,
        save: Callable[[], dict[str, Any]] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise ValueError(f"grok_tui.monitor: model must be a torch.nn.Module, not {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(
                f"grok_tui.monitor: optimizer must be a torch.optim.Optimizer, not {type(optimizer).__name__}"
            )
        if period is not None and (not isinstance(period, int) or isinstance(period, bool) or period < 3):
            raise ValueError(f"grok_tui.monitor: period must be an integer >= 3 (the modulus), not {period!r}")
        for name, given in (("matrices", matrices), ("neuron_inputs", neuron_inputs), ("save", save)):
            if given is not None and not callable(given):
                raise ValueError(f"grok_tui.monitor: {name} must be a function of no arguments")
        if scheduler is not None and len(getattr(scheduler, "base_lrs", ())) != len(optimizer.param_groups):
            raise ValueError(
                "grok_tui.monitor: scheduler must be a torch LR scheduler of this optimizer (its base_lrs)"
            )
        if isinstance(model, DistributedDataParallel):
            model = model.module  # its names, views and checkpoint are the model's, without the "module." prefix
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.period = period
        self._user = checked_user_config(config)
        self._save = save
        self._views = ModelViews(model, period, matrices, neuron_inputs)
        self._steering = Steering(optimizer, scheduler)
        self._control = ScriptControl(bool(self._steering.wd_groups))
        first = next(model.parameters(), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self._events: list[Event] = []
        self._paused = False
        self._finished = False
        self._closed = False
        self._count = 0  # optimizer steps since monitor() started
        self._last_step: int | None = None  # the last step logged, and the optimizer count then
        self._count_at_log = 0
        self._last_row: Metrics | None = None
        self._rate_mark: tuple[int, float] | None = None
        self._steps_per_s = 0.0
        self._paused_s = 0.0
        self._checkpoints = 0
        self._checkpoint_step: int | None = None
        # The views at each checkpoint, the history `grok-tui watch` replays (train/replay.py).
        self._recorder = Recorder()
        self._warned = False
        self._started = time.monotonic()
        self._last_checkpoint = self._started
        self._stack = contextlib.ExitStack()
        # Under torch.distributed, rank 0 serves and the others follow it (loop/ranks.py); None: one process.
        self._ranks = Ranks.joined()
        self._serves = self._ranks is None or self._ranks.leader
        self._stopping = False  # should_stop under torch.distributed, as every rank agreed at a step
        try:
            self._start(run_dir)
        except BaseException:
            self._stack.close()
            raise

    # ---- starting ----------------------------------------------------------------------------------------

    def _make_run_dir(self, given: str | os.PathLike[str] | None) -> tuple[ScriptConfig, Path]:
        script = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else ""
        name = Path(script).stem if script else "python"
        handed = os.environ.pop(RUN_DIR_ENV, None) if given is None else None  # the first monitor takes it
        cfg = ScriptConfig(
            experiment=name[:100] or "python",
            script=str(Path(script).resolve()) if script else "",
            argv=tuple(sys.argv[1:]),
            steps=steps_from(self._user),
            device=str(self.device),
            optimizer=type(self.optimizer).__name__,
            user=self._user,
        )
        if handed is not None:  # made by `grok-tui run`, which waits for this run to serve
            run_dir = Path(handed)
            made = load_run_config(run_dir)
            if not isinstance(made, ScriptConfig) or made.started:
                raise RunDirError(f"{run_dir} (from {RUN_DIR_ENV}) is not a run directory waiting for a script")
            write_config(run_dir, cfg.record())
            return cfg, run_dir
        run_dir = Path(given) if given is not None else default_run_dir(cfg.experiment)
        RunLog(run_dir).create(cfg.record())
        return cfg, run_dir

    def _start(self, given: str | os.PathLike[str] | None) -> None:
        """Make and serve the run directory (rank 0 under torch.distributed, telling the others where it is,
        or why it failed), then hook the optimizer."""
        ranks = self._ranks
        if ranks is not None:
            self._stack.callback(ranks.close)
        if self._serves:
            try:
                self._cfg, self.run_dir = self._make_run_dir(given)
                self._log = RunLog(self.run_dir)
                self._serve()
                self._save_checkpoint()  # at once: watch shows the weights, and a run killed from here has one
            except BaseException as e:
                if ranks is not None:  # the others wait to hear from rank 0: not forever
                    ranks.share(json.dumps({"error": f"{type(e).__name__}: {e}"}))
                raise
            if ranks is not None:
                ranks.share(json.dumps({"run_dir": str(self.run_dir)}))
        else:
            assert ranks is not None
            told = json.loads(ranks.share(None))
            if "error" in told:
                raise RuntimeError(f"grok_tui.monitor: rank 0 could not start the run: {told['error']}")
            self.run_dir = Path(told["run_dir"])
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._stack.callback(signal.signal, signal.SIGTERM, previous)
        handle = self.optimizer.register_step_post_hook(self._after_step if ranks is None else self._after_step_ranks)
        self._stack.callback(handle.remove)
        # A monitor never closed (no with block) still ends its run when the interpreter exits.
        atexit.register(self.close)
        self._stack.callback(atexit.unregister, self.close)

    def _serve(self) -> None:
        self._server = RunServer(self.run_dir, self._control)
        self._stack.enter_context(self._server.bind())  # ChannelError if another process serves this run
        mark_running(self.run_dir)
        info = {"experiment": self._cfg.experiment, "steps": self._cfg.steps, "script": True}
        self._server.start([], {**info, REFUSED_INFO: self._control.refused()})
        publish = self._stack.enter_context(SystemFrames(self._server.publish, self.device).running())
        self._batcher = Batcher(publish)
        self._emit = record_pauses(self.run_dir, self._batcher)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._control.stop_asked.set()  # only a flag: safe in a signal handler

    # ---- the script's side ---------------------------------------------------------------------------------

    def __enter__(self) -> Monitor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close(error)

    @property
    def should_stop(self) -> bool:
        """True once `q`, `grok-tui stop` or SIGTERM asked the run to stop: break out of the loop. Under
        torch.distributed, within two optimizer steps of the asking, on every rank at the same step."""
        if self._ranks is None:
            return self._control.stop_asked.is_set()
        return self._stopping

    def log(self, step: int, **metrics: Any) -> None:
        """One row of metrics.jsonl at `step`: the known names (train_loss, train_acc, test_loss, test_acc)
        and any other finite number; the norm, the settings and the clock are filled in here. Under
        torch.distributed only rank 0's rows are kept: on another rank this returns at once, and it holds no
        collective on any rank, so it may be called on rank 0 alone."""
        if not self._serves:
            if self._closed:
                raise ValueError("m.log: the monitor has ended (log inside its with block)")
            return
        step = checked_step(step, self._last_step)
        values = checked_metrics(metrics)
        if self._closed:
            raise ValueError("m.log: the monitor has ended (log inside its with block)")
        now = time.monotonic()
        param_norm = self._views.norms()
        if self._rate_mark is not None and step > self._rate_mark[0] and now > self._rate_mark[1]:
            self._steps_per_s = (step - self._rate_mark[0]) / (now - self._rate_mark[1])
        self._rate_mark = (step, now)
        spectrum = self._views.look_inside(now, lambda: self._server.clients)
        weight_decay, lr = self._steering.settings()
        nan = math.nan
        row = Metrics(
            step=step,
            train_loss=values.get("train_loss", nan),
            train_acc=values.get("train_acc", nan),
            test_loss=values.get("test_loss", nan),
            test_acc=values.get("test_acc", nan),
            param_norm=param_norm,
            weight_decay=weight_decay,
            lr=lr,
            l1=0.0,
            elapsed_s=round(self._elapsed(now), 3),
            steps_per_s=round(self._steps_per_s, 2),
            purity=None if spectrum is None else round(spectrum.median_purity, 4),
            extra=tuple((name, value) for name, value in values.items() if name not in KNOWN),
        )
        self._last_step, self._count_at_log, self._last_row = step, self._count, row
        self._write(lambda log: log.metrics(row.to_dict()))
        if now - self._last_checkpoint >= CHECKPOINT_EVERY_S:
            self._save_checkpoint()
        self._emit(self._snapshot(row))

    def close(self, error: BaseException | None = None) -> None:
        """End the run: its last frame, checkpoint and goodbye; how it ended in process.json. `error`: the
        exception that left the with block (the run crashed; its traceback goes to crash.log)."""
        if self._closed:
            return
        self._closed = True
        crashed = error is not None and not isinstance(error, (KeyboardInterrupt, SystemExit))
        try:
            if not self._serves:
                return  # another rank's: rank 0 ends the run, and its own hook and group go below
            if crashed:
                assert error is not None
                ending, reason = "crashed", report_crash(error, self.run_dir)
            else:
                ending = "stopped" if self.should_stop or error is not None else "finished"
                reason = ending
                self._finished = ending == "finished"
                if self._last_row is not None:
                    self._emit(self._snapshot(self._last_row))
                self._batcher.flush()
            with contextlib.suppress(Exception):  # a crash may have left what `save` reads half-made
                self._save_checkpoint()
            self._write(lambda log: log.flush())
            mark_ended(self.run_dir, ending, self._last_step)
            self._server.close(reason)
        finally:
            self._stack.close()

    # ---- on the training thread, after each optimizer step -------------------------------------------------

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._count += 1
        if self._control.pending:  # all a step with nothing sent costs (a pause is entered only from here)
            self._take(self._control.drain())

    def _after_step_ranks(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """The hook under torch.distributed: every rank, every step, one tiny collective (loop/ranks.py)."""
        self._count += 1
        if not self._closed:
            self._take(self._agreed())

    def _agreed(self, timeout: float = 0) -> list[Command]:
        """Rank 0's commands (waiting up to `timeout` for one), the same on every rank; and the stop, agreed."""
        assert self._ranks is not None
        wait = timeout if self._serves else 0.0  # the others wait in the collective instead
        mine = self._control.drain(wait) if self._control.pending or wait else []
        commands, stop = self._ranks.agree(mine, self._control.stop_asked.is_set())
        self._stopping = self._stopping or stop
        return commands

    def _take(self, commands: list[Command]) -> None:
        if self._closed:
            return
        changed = False
        for command in commands:
            changed = self._apply(command) or changed
        if self._paused:
            self._wait_paused()
        elif changed and self._last_row is not None:
            self._emit(self._snapshot(self._last_row))

    def _wait_paused(self) -> None:
        """Block the training thread while paused; commands still apply, and a stop ends the pause. Under
        torch.distributed every rank waits here, meeting the others every PAUSE_POLL_S."""
        began = time.monotonic()
        if self._last_row is not None:
            self._emit(self._snapshot(self._last_row))
        while self._paused and not self.should_stop:
            commands = self._control.drain(PAUSE_POLL_S) if self._ranks is None else self._agreed(PAUSE_POLL_S)
            changed = False
            for command in commands:
                changed = self._apply(command) or changed
            if changed and self._last_row is not None:
                self._emit(self._snapshot(self._last_row))
        self._paused_s += time.monotonic() - began
        self._rate_mark = None  # the pause is no part of the speed
        if self._last_row is not None:
            self._emit(self._snapshot(self._last_row))

    def _apply(self, command: Command) -> bool:
        """Carry out one command between two steps; whether anything changed."""
        if isinstance(command, (SetHyper, ScaleHyper)):
            change = self._steering.change(command)  # None for any other name: ScriptControl refused it
            if change is not None:
                self._record(command.name, *change)
            return change is not None
        if isinstance(command, Toggle) and command.what == "pause":
            command = Resume() if self._paused else Pause()
        if isinstance(command, Pause) and not self._paused:
            self._paused = True
            self._record("paused", False, True)
            return True
        if isinstance(command, Resume) and self._paused:
            self._paused = False
            self._record("paused", True, False)
            return True
        if isinstance(command, SaveCheckpoint):
            self._save_checkpoint()
            return True
        return isinstance(command, Stop)  # its flag is set already (ScriptControl.send)

    def _record(self, kind: str, old: Any, new: Any) -> None:
        event = Event(self._event_step(), kind, old, new)
        self._events.append(event)
        self._write(lambda log: log.event(event.to_dict()))

    def _event_step(self) -> int:
        """The step from which a change acts, in the script's own numbering where it has logged one."""
        if self._last_step is None:
            return self._count
        return self._last_step + (self._count - self._count_at_log)

    # ---- what a frame carries ------------------------------------------------------------------------------

    def _elapsed(self, now: float) -> float:
        return max(0.0, now - self._started - self._paused_s)

    def _snapshot(self, row: Metrics) -> Snapshot:
        weight_decay, lr = self._steering.settings()
        matrices, spectrum, neuron_inputs = self._views.latest
        return Snapshot(
            experiment=self._cfg.experiment,
            device=str(self.device),
            total_steps=max(self._cfg.steps, row.step),
            metrics=row,
            paused=self._paused,
            finished=self._finished,
            events=tuple(self._events),
            tensor_norms=self._views.tensor_norms,
            matrices=matrices,
            spectrum=spectrum,
            neuron_inputs=neuron_inputs,
            settings=Settings(weight_decay, lr),
            checkpoint_step=self._checkpoint_step,
            checkpoints=self._checkpoints,
            optimizer=self._cfg.optimizer,
            groups=self._steering.groups(),
            spectrum_note=self._views.spectrum_note if spectrum is None else None,
        )

    # ---- the run directory ---------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        if self._save is not None:
            state = self._save()
            if not isinstance(state, dict):
                raise ValueError(f"grok_tui.monitor: save() must return a dict to checkpoint, not {state!r:.60}")
        else:
            state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
            if self.scheduler is not None:
                state["scheduler"] = self.scheduler.state_dict()
        views = self._views.for_checkpoint()
        matrices = views["matrices"]
        step = self._last_step if self._last_step is not None else self._count
        given = views.get("neuron_inputs")
        self._recorder.add(
            step, {name: t.numpy() for name, t in matrices.items()}, None if given is None else given.numpy()
        )
        # "model" and "optimizer" are what makes a checkpoint a checkpoint to its readers (runlog.load_checkpoint).
        return {"model": {}, "optimizer": {}, **state, "step": step, "views": views}

    def _save_checkpoint(self) -> None:
        if not self._serves:
            return
        state = self._state()

        def save(log: RunLog) -> None:
            log.save_checkpoint(state)
            self._checkpoint_step, self._checkpoints = self._last_step, self._checkpoints + 1
            self._recorder.save(log.root)

        self._write(save)
        self._last_checkpoint = time.monotonic()

    def _write(self, write: Callable[[RunLog], None]) -> None:
        """One write to the run directory. A failed one (a full disk) is said once on stderr and stays
        pending for the next: a script's loop is not paused for it. Rank 0's alone under torch.distributed."""
        if not self._serves:
            return
        try:
            write(self._log)
        except WriteError as e:
            if not self._warned:
                self._warned = True
                print(f"grok-tui: warning: {e}; kept, and tried again at the next write", file=sys.stderr)


# The public name (README, "Your own training loop"): `grok_tui.monitor(model, optimizer, ...)` makes a Monitor.
monitor = Monitor


# FILLED, KNOWN and SHARES (loop/logged.py) stay importable from here: the integrations read them as m.log's names.
__all__ = ["FILLED", "KNOWN", "SHARES", "Monitor", "monitor"]
