"""The training loop: full-batch AdamW, steered through a Control channel.

Read it top to bottom: a Trainer owns the data, model and optimizer; `step`
does one update without reading anything back from the device; `evaluate`
reads everything back at once, at the evaluation cadence; `run` ties them to
the control channel, the run directory and whoever wants the snapshots.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from grok_tui.config import HYPER_RANGES, NORM_TARGET, RunConfig
from grok_tui.files import WriteError
from grok_tui.metrics import ParityMass, Spectrum, neuron_spectrum, parity_mass
from grok_tui.models import GrokModel, build_model
from grok_tui.runlog import RunLog
from grok_tui.tasks import build_dataset
from grok_tui.train.checkpoint import as_rng_state, check_state
from grok_tui.train.control import (
    Command,
    Control,
    Pause,
    Resume,
    SaveCheckpoint,
    ScaleHyper,
    SetGrokfast,
    SetHyper,
    SetNormConstraint,
    SetTrainSize,
    Stop,
    Toggle,
    check_hyper,
    scaled,
)
from grok_tui.train.interventions import GrokfastFilter, GrokfastSettings, constrain_norm, global_norm
from grok_tui.train.objective import example_correct, example_losses
from grok_tui.train.replay import Recorder, ReplayError
from grok_tui.train.snapshot import Event, Metrics, Settings, Snapshot

# How long a paused loop sleeps between looks at the control channel.
PAUSE_POLL_S = 0.05
# What torch says when a Python number does not fit the tensor's dtype (c10's checked_convert): a value
# that overflows, met mid-update, rather than a bug.
OVERFLOW = "without overflow"


class DeviceError(Exception):
    pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(name)


@dataclass
class _Finite:
    """The trainer's state at its last evaluation that found every value finite: where a run whose
    loss, weights or AdamW moments overflowed goes back to, so that lowering a value and resuming
    trains on from there (with the settings of now, the one that overflowed among them)."""

    step: int
    weights: list[torch.Tensor]
    moments: list[dict[str, Any] | None]  # AdamW's state of each parameter (None before its first step)
    ema: list[torch.Tensor] | None  # Grokfast's


def _cloned(entry: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's state of one parameter, its tensors copied (its step count among them)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in entry.items()}


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path | None = None, control: Control | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            # One thread: a second buys at most ~1.4x on models this small, and slows training 12-50x
            # while another process keeps the other core busy (docs/design.md, "Threads on small models").
            torch.set_num_threads(cfg.threads)
        self.control = control or Control()
        self.data = build_dataset(cfg).to(self.device)
        # Seed the model's init without disturbing the process-wide RNG, which
        # another thread (a UI, a test) may be using.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = build_model(cfg, self.data.n_classes).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
        )
        # The warm-up (Nanda et al.'s): the lr is 0 at the first step and the set one from step warmup_steps
        # on. The set lr is the scheduler's base: the lr keys move it (see _set_hyper).
        self.scheduler = (
            torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: min(step / cfg.warmup_steps, 1.0))
            if cfg.warmup_steps
            else None
        )
        self.l1 = cfg.l1
        self._params: list[torch.Tensor] = list(self.model.parameters())
        self._l1_params = [p for p in self._params if p.dim() >= 2]
        # Interventions (interventions.py): a training subset, a fixed norm, a gradient filter.
        self.train_size: int | None = cfg.train_size or None
        self.norm_target: float | None = cfg.constrain_norm or None
        self.grokfast: GrokfastFilter | None = (
            GrokfastFilter(self._params, GrokfastSettings(cfg.grokfast_alpha, cfg.grokfast_lamb))
            if cfg.grokfast
            else None
        )
        self.step = 0
        self.elapsed_s = 0.0
        self.events: list[Event] = []
        self.paused = False
        self.stopped = False
        self.fault: str | None = None
        self.last: Snapshot | None = None
        self.log = RunLog(run_dir) if run_dir is not None else None
        # The views at each evaluation, a bounded history of them, saved with each checkpoint (train/replay.py).
        self.recorder = Recorder() if run_dir is not None else None
        self.checkpoint_step: int | None = None
        self.checkpoints = 0
        # The step of the last metrics row logged: a resumed run does not log its first row twice.
        self._logged_step: int | None = None
        # Changes a killed run made after its checkpoint, made again at their steps (see `replay`).
        self._replay: list[tuple[int, Command]] = []
        self._rate_mark = (0, time.monotonic())
        self._steps_per_s = 0.0
        self._finite: _Finite | None = None
        # The largest |value| in AdamW's moments at the last evaluation (NaN if any is NaN).
        self._moments_max = 0.0

    # ---- checkpoints (session.py creates and resumes run directories) -------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "l1": self.l1,
            "train_size": self.train_size,
            "norm_target": self.norm_target,
            "grokfast": None
            if self.grokfast is None
            else {
                "alpha": self.grokfast.settings.alpha,
                "lamb": self.grokfast.settings.lamb,
                "ema": self.grokfast.ema,
            },
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "logged_step": self._logged_step,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Take a checkpoint's state; CheckpointError names the first value that does not fit this trainer."""
        check_state(state, dict(self.model.named_parameters()))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.l1 = float(state.get("l1", self.cfg.l1))
        self.train_size = state.get("train_size", self.train_size)
        self.norm_target = state.get("norm_target", self.norm_target)
        grokfast = state.get("grokfast", None)
        self.grokfast = None
        if grokfast is not None:
            self.grokfast = GrokfastFilter(self._params, GrokfastSettings(grokfast["alpha"], grokfast["lamb"]))
            self.grokfast.ema = grokfast.get("ema")
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "python_rng" in state:
            random.setstate(as_rng_state(state["python_rng"]))
        self._logged_step = state.get("logged_step", None)
        self.checkpoint_step = self.step
        if self.log is not None:
            self.recorder = _resumed_views(self.log.root, self.step)
        if self.scheduler is not None:
            # The set lr is the groups' initial_lr, which the optimizer's state carries.
            self.scheduler.base_lrs = [g.get("initial_lr", g["lr"]) for g in self.optimizer.param_groups]
            self._warm_up()

    # ---- hyperparameters ----------------------------------------------------

    def hyper(self, name: str) -> float:
        if name == "l1":
            return self.l1
        if name == "lr" and self.scheduler is not None:
            return float(self.scheduler.base_lrs[0])  # the set lr, not the warm-up's ramp of it
        return float(self.optimizer.param_groups[0][name])

    def _set_hyper(self, name: str, value: float) -> None:
        if name == "l1":
            self.l1 = value
        elif name == "lr" and self.scheduler is not None:
            # The scheduler's base and each group's initial_lr, or its next step would put the old lr back.
            self.scheduler.base_lrs = [value] * len(self.optimizer.param_groups)
            for group in self.optimizer.param_groups:
                group["initial_lr"] = value
            self._warm_up()
        else:
            for group in self.optimizer.param_groups:
                group[name] = value

    def _warm_up(self) -> None:
        """The lr the next step takes: the set lr times the warm-up's factor at this step."""
        if self.scheduler is not None:
            self.scheduler.last_epoch = self.step
            factor = self.scheduler.lr_lambdas[0](self.step)
            for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
                group["lr"] = base * factor

    # ---- one step, one evaluation -----------------------------------------

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return example_losses(self.cfg.loss, out, y).mean()

    def train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples trained on: all of them, or the first `train_size` while ungrokking."""
        n = self.train_size
        return (self.data.x_train, self.data.y_train) if n is None else (self.data.x_train[:n], self.data.y_train[:n])

    def train_step(self) -> None:
        """One full-batch update. Reads nothing back from the device."""
        self.model.train()
        x, y = self.train_batch()
        loss = self._loss(self.model(x), y)
        if self.l1 > 0:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self._l1_params)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is not annotated
        if self.grokfast is not None:
            self.grokfast.apply()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.norm_target is not None:
            constrain_norm(self._params, self.norm_target)
        self.step += 1

    @torch.no_grad()
    def evaluate(self) -> Metrics:
        """Loss, accuracy and norms, read back in one transfer; and the matrices for the views."""
        self.model.eval()
        values = []
        for x, y in (self.train_batch(), (self.data.x_test, self.data.y_test)):
            out = self.model(x)
            values += [self._loss(out, y), self._accuracy(out, y)]
        names = [name for name, _ in self.model.named_parameters()]
        norms = torch.stack([p.detach().norm() for p in self.model.parameters()])
        values.append(norms.square().sum().sqrt())
        moments = self._moments()
        values.append(torch.stack(torch._foreach_norm(moments, ord=math.inf)).amax() if moments else norms[0] * 0)
        train_loss, train_acc, test_loss, test_acc, param_norm, self._moments_max, *tensor_norms = torch.cat(
            [torch.stack(values), norms]
        ).tolist()
        self._tensor_norms = dict(zip(names, tensor_norms, strict=True))
        self._matrices, self._spectrum, self._parity, self._neuron_inputs = inspect_model(self.model, self.cfg)

        now = time.monotonic()
        mark_step, mark_time = self._rate_mark
        if self.step > mark_step and now > mark_time:
            self._steps_per_s = (self.step - mark_step) / (now - mark_time)
        self._rate_mark = (self.step, now)
        return Metrics(
            step=self.step,
            train_loss=train_loss,
            train_acc=train_acc,
            test_loss=test_loss,
            test_acc=test_acc,
            param_norm=param_norm,
            weight_decay=self.hyper("weight_decay"),
            lr=self.hyper("lr"),
            l1=self.l1,
            elapsed_s=round(self.elapsed_s, 3),
            steps_per_s=round(self._steps_per_s, 2),
            purity=None if self._spectrum is None else round(self._spectrum.median_purity, 4),
            parity_share=None if self._parity is None else round(self._parity.share, 4),
            train_size=len(self.train_batch()[1]),
            norm_target=self.norm_target,
            grokfast=self.grokfast is not None,
        )

    def _accuracy(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return example_correct(out, y, self.cfg.acc_tol).mean()

    def _moments(self) -> list[torch.Tensor]:
        """AdamW's running moments and Grokfast's average: the state besides the weights that a step
        can overflow."""
        tensors = [
            t for entry in self.optimizer.state.values() for key, t in entry.items() if key in ("exp_avg", "exp_avg_sq")
        ]
        if self.grokfast is not None and self.grokfast.ema is not None:
            tensors += self.grokfast.ema
        return tensors

    def settings(self) -> Settings:
        return Settings(
            weight_decay=self.hyper("weight_decay"),
            lr=self.hyper("lr"),
            l1=self.l1,
            train_size=self.train_size,
            norm_target=self.norm_target,
            grokfast=self.grokfast is not None,
        )

    def snapshot(self, metrics: Metrics) -> Snapshot:
        return Snapshot(
            experiment=self.cfg.experiment,
            device=str(self.device),
            total_steps=self.cfg.steps,
            metrics=metrics,
            paused=self.paused,
            finished=self.step >= self.cfg.steps,
            events=tuple(self.events),
            tensor_norms=self._tensor_norms,
            matrices=self._matrices,
            spectrum=self._spectrum,
            parity=self._parity,
            fault=self.fault,
            settings=self.settings(),
            checkpoint_step=self.checkpoint_step,
            checkpoints=self.checkpoints,
            neuron_inputs=self._neuron_inputs,
        )

    # ---- commands -------------------------------------------------------------

    def _record(self, kind: str, old: Any, new: Any) -> None:
        event = Event(self.step, kind, old, new)
        self.events.append(event)
        self._write(lambda log: log.event(event.to_dict()))

    def _write(self, write: Callable[[RunLog], None]) -> None:
        """One write to the run directory. A failed write (a full disk) pauses the run with a fault
        instead of ending it: what was not written stays pending, and resuming retries it."""
        if self.log is None:
            return
        try:
            write(self.log)
        except WriteError as e:
            self._fault(str(e))

    def _fault(self, message: str) -> None:
        """Pause, and say why; the first fault is the one worth reading."""
        if self.fault is not None:
            return
        self.fault = message
        self.paused = True
        event = Event(self.step, "fault", None, message)
        self.events.append(event)
        if self.log is not None:
            self.log.queue_event(event.to_dict())

    def request_stop(self) -> None:
        """Stop between two steps. Safe from a signal handler: it only sets a flag."""
        self.stopped = True

    def apply(self, command: Command) -> None:
        """Carry out one command between two steps; it acts from the next step."""
        if isinstance(command, (SetHyper, ScaleHyper)):
            old = self.hyper(command.name)
            # A key pressed past the rule's top stops at it (held there); one that would reach 0 for lr does nothing.
            new = (
                command.value
                if isinstance(command, SetHyper)
                else HYPER_RANGES[command.name].clamp(scaled(old, command.factor))
            )
            if new is not None and new != old:
                self._set_hyper(command.name, new)
                self._record(command.name, old, new)
        elif isinstance(command, Toggle):
            self.apply(self._toggled(command.what))
        elif isinstance(command, Pause) and not self.paused:
            self.paused = True
            self._record("paused", False, True)
        elif isinstance(command, Resume) and self.paused:
            self.paused = False
            self.fault = None
            self._rate_mark = (self.step, time.monotonic())
            self._record("paused", True, False)  # its write also retries what a full disk held back
        elif isinstance(command, Stop):
            self.stopped = True
        elif isinstance(command, SaveCheckpoint):
            self.save_checkpoint()
        elif isinstance(command, SetTrainSize):
            size = None if command.size is None or command.size >= len(self.data.y_train) else command.size
            if size != self.train_size:
                self._record("train_size", self.train_size, size)
                self.train_size = size
        elif isinstance(command, SetNormConstraint):
            target = float(global_norm(self._params)) if command.current else command.norm
            # Today's norm, taken between two evaluations, may be one that has just overflowed (or be past
            # the rule's top): held, it would overwrite every weight each step; the next evaluation says why.
            if target is not None and not NORM_TARGET(target):
                return
            if target != self.norm_target:
                self._record("norm_constraint", self.norm_target, target)
                self.norm_target = target
        elif isinstance(command, SetGrokfast):
            old = self.grokfast is not None
            if command.on != old or (
                command.on
                and self.grokfast is not None
                and self.grokfast.settings != GrokfastSettings(command.alpha, command.lamb)
            ):
                settings = GrokfastSettings(command.alpha, command.lamb)
                self.grokfast = GrokfastFilter(self._params, settings) if command.on else None
                self._record("grokfast", old, command.on)

    def replay(self, events: list[Event]) -> None:
        """Make again, each at its own step, the changes a killed run made after the checkpoint this
        trainer resumed from: the steps trained again are then trained as they were the first time."""
        for event in events:
            command = _remade(event, self.cfg)
            if command is not None and event.step >= self.step:
                self._replay.append((event.step, command))
        self._replay.sort(key=lambda item: item[0])

    def set_from_now(self, commands: list[SetHyper]) -> None:
        """Values given on resuming (`--resume DIR --lr X`): each holds from this step on, as a key
        pressed now would. What was given last wins: a change of the same value that the killed run
        made after its checkpoint is not made again."""
        names = {command.name for command in commands}
        self._replay = [
            (step, c) for step, c in self._replay if not (isinstance(c, (SetHyper, ScaleHyper)) and c.name in names)
        ]
        for command in commands:
            self.apply(command)

    def _toggled(self, what: str) -> Command:
        """The command a toggle means, from the state the trainer is in now."""
        if what == "pause":
            return Resume() if self.paused else Pause()
        if what == "norm_constraint":
            return SetNormConstraint(None) if self.norm_target is not None else SetNormConstraint(current=True)
        return SetGrokfast(self.grokfast is None, self.cfg.grokfast_alpha, self.cfg.grokfast_lamb)

    def save_checkpoint(self) -> None:
        def save(log: RunLog) -> None:
            log.save_checkpoint(self.state())
            self.checkpoint_step, self.checkpoints = self.step, self.checkpoints + 1
            if self.recorder is not None:
                self.recorder.save(log.root)

        self._write(save)

    # ---- the loop -------------------------------------------------------------------

    def run(self, on_snapshot: Callable[[Snapshot], None] | None = None) -> Snapshot:
        """Train until `cfg.steps` or a Stop command; return the last snapshot.

        A fault pauses the loop (a full disk; a loss, weight or AdamW moment that
        overflowed, after going back to the last finite state); the caller decides
        whether to resume or stop.
        """
        emit = on_snapshot or (lambda snapshot: None)
        metrics = self._evaluate_and_log()
        if self.checkpoint_step != self.step:
            self.save_checkpoint()  # at once: a run killed from here on can be resumed
        emit(self._frame(metrics))
        last_checkpoint = clock = time.monotonic()
        try:
            while True:
                changed = self._drain(timeout=PAUSE_POLL_S if self.paused else 0)
                if self.stopped or (self.step >= self.cfg.steps and not self.paused):
                    break
                if self.paused:
                    if changed:
                        emit(self._frame(metrics))
                    clock = time.monotonic()
                    continue
                try:
                    self.train_step()
                except RuntimeError as e:
                    if OVERFLOW not in str(e):
                        raise
                    # Met mid-update, some weights already changed: going back to the last finite state undoes it.
                    metrics = self._overflowed(f"a value overflowed float32 in step {self.step + 1}")
                    emit(self._frame(metrics))
                    clock = time.monotonic()
                    continue
                now = time.monotonic()
                self.elapsed_s += now - clock
                clock = now
                if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps:
                    metrics = self._evaluate_and_log()
                    if now - last_checkpoint >= self.cfg.checkpoint_every_s:
                        self.save_checkpoint()
                        last_checkpoint = now
                elif not changed:
                    continue
                # A change shows at once, with the last measured metrics.
                emit(self._frame(metrics))
            if metrics.step != self.step:
                # Stopped between two evaluations: measure where we stand.
                metrics = self._evaluate_and_log()
                emit(self._frame(metrics))
        finally:
            self.close()
        return self._frame(metrics)

    def _frame(self, metrics: Metrics) -> Snapshot:
        """The snapshot of now, with `metrics` the last measured; kept as `last`."""
        self.last = self.snapshot(metrics)
        return self.last

    def _drain(self, timeout: float) -> bool:
        """Apply the replayed commands due now, then every pending one, waiting up to `timeout` for the first."""
        changed = False
        while self._replay and self._replay[0][0] <= self.step:
            self.apply(self._replay.pop(0)[1])
            changed = True
        command = self.control.get(timeout=0 if changed else timeout)
        while command is not None:
            self.apply(command)
            changed = True
            command = self.control.get(timeout=0)
        return changed

    def _evaluate_and_log(self) -> Metrics:
        m = self.evaluate()
        if not (math.isfinite(m.train_loss) and math.isfinite(m.test_loss)):
            return self._overflowed(
                f"the loss is not finite at step {m.step} (train {m.train_loss}, test {m.test_loss})", m
            )
        if not math.isfinite(m.param_norm):
            return self._overflowed(f"the weights are not finite at step {m.step} (norm {m.param_norm})", m)
        if not math.isfinite(self._moments_max):
            return self._overflowed(f"AdamW's moments are not finite at step {m.step}", m)
        self._log_metrics(m)
        self._keep_finite()
        if self.recorder is not None:
            self.recorder.add(m.step, self._matrices, self._neuron_inputs)
        return m

    def _log_metrics(self, metrics: Metrics) -> None:
        if metrics.step != self._logged_step:
            self._logged_step = metrics.step
            self._write(lambda log: log.metrics(metrics.to_dict()))

    # ---- a value that overflows: a fault, and back to the last finite state ----------------

    def _keep_finite(self) -> None:
        """Copy the state of now (just found finite) as the one to go back to; a few copies of the
        weights' size at the evaluation cadence, on the device, with no transfer."""
        self._finite = None  # the old copy freed before the new one is made: one copy at most, never two
        state = self.optimizer.state
        self._finite = _Finite(
            step=self.step,
            weights=[p.detach().clone() for p in self._params],
            moments=[_cloned(state[p]) if p in state else None for p in self._params],
            ema=None if self.grokfast is None or self.grokfast.ema is None else [t.clone() for t in self.grokfast.ema],
        )

    def _overflowed(self, what: str, metrics: Metrics | None = None) -> Metrics:
        """A fault, not an exception: go back to the last finite state and checkpoint it at once, so
        that the checkpoint, and any resume from it, never holds what overflowed; say what did, with
        which settings, and what to do. `metrics` are those measured on what overflowed, if any."""
        settings = f"lr {self.hyper('lr'):g}, weight decay {self.hyper('weight_decay'):g}"
        if self.l1 > 0:
            settings += f", l1 {self.l1:g}"
        if self.norm_target is not None:
            settings += f", norm held at {self.norm_target:g}"
        if self.grokfast is not None:
            settings += f", grokfast lamb {self.grokfast.settings.lamb:g}"
        good = self._finite
        if good is None:
            # Nothing measured finite yet (the first evaluation): the run stays where it is.
            if self.cfg.init_scale != 1:
                settings += f", init scale {self.cfg.init_scale:g}"
            if metrics is not None:
                self._log_metrics(metrics)
            self._fault(f"{what} with {settings}: start again with lower values")
            self._write(lambda log: log.flush())
            return metrics if metrics is not None else self.evaluate()
        self._go_back(good)
        self._fault(
            f"{what} with {settings}; back at step {good.step}, the last finite state: lower a value, then resume"
        )
        self.save_checkpoint()
        return self.evaluate()

    @torch.no_grad()
    def _go_back(self, good: _Finite) -> None:
        for p, w in zip(self._params, good.weights, strict=True):
            p.copy_(w)
        self.optimizer.state.clear()
        for p, entry in zip(self._params, good.moments, strict=True):
            if entry is not None:
                self.optimizer.state[p] = _cloned(entry)
        if self.grokfast is not None:
            self.grokfast.ema = None if good.ema is None else [t.clone() for t in good.ema]
        self.step = good.step
        self._warm_up()
        self._rate_mark = (self.step, time.monotonic())

    def close(self) -> None:
        """Flush and checkpoint; called on every way out of `run`, and never raises for a full disk."""
        self.save_checkpoint()


class Inside(NamedTuple):
    """What an inspection of the model gives the views."""

    matrices: dict[str, np.ndarray]
    spectrum: Spectrum | None
    parity: ParityMass | None
    neuron_inputs: np.ndarray | None  # p × H, float32; the same array as a matrix where the model shows it


def inspect_model(model: GrokModel, cfg: RunConfig) -> Inside:
    """The weights as small numpy arrays, and what they say: the per-neuron spectrum or the parity mass."""
    with torch.no_grad():
        tensors = model.matrices()
        matrices = {name: w.detach().float().cpu().numpy() for name, w in tensors.items()}
        inputs = model.neuron_inputs()
        # Where the model shows that matrix already (sum_mlp's embedding), the frame carries one array, and a
        # pickled frame stores it once.
        shown = next((matrices[name] for name, w in tensors.items() if w is inputs), None)
        if inputs is None or shown is not None:
            neuron_inputs = shown
        else:
            neuron_inputs = inputs.detach().float().cpu().numpy()
    return read_views(matrices, neuron_inputs, cfg)


def read_views(matrices: dict[str, np.ndarray], neuron_inputs: np.ndarray | None, cfg: RunConfig) -> Inside:
    """What the views' arrays say: the neurons' spectrum, or for parity the mass on the relevant bits (a frame
    read back from a run's replay history is read here too)."""
    spectrum = None if neuron_inputs is None else neuron_spectrum(neuron_inputs)
    parity = parity_mass(matrices["hidden"], cfg.k_bits) if cfg.task == "parity" else None
    return Inside(matrices, spectrum, parity, neuron_inputs)


def _resumed_views(run_dir: Path, step: int) -> Recorder:
    """The history of views a resumed run goes on with: its own up to `step` (those after are trained again);
    a new one where there is none or it cannot be read (the run's other files are whole all the same)."""
    try:
        recorder = Recorder.load(run_dir)
    except ReplayError:
        recorder = None
    if recorder is None:
        return Recorder()
    recorder.cut(step)
    return recorder


def _remade(event: Event, cfg: RunConfig) -> Command | None:
    """The command that made `event`, or None for what is not a change to training (pause, fault)."""
    new = event.new
    try:
        if event.kind in ("weight_decay", "lr", "l1"):
            return SetHyper(event.kind, check_hyper(event.kind, new))
        if event.kind == "train_size" and (new is None or (isinstance(new, int) and new >= 1)):
            return SetTrainSize(new)
        if event.kind == "norm_constraint" and (new is None or NORM_TARGET(new)):
            return SetNormConstraint(new)
        if event.kind == "grokfast" and isinstance(new, bool):
            return SetGrokfast(new, cfg.grokfast_alpha, cfg.grokfast_lamb)
    except ValueError:
        pass
    return None


def summarize(
    history: list[Metrics] | list[dict[str, Any]], fit: float = 0.99, general: float = 0.95
) -> dict[str, Any]:
    """First step and elapsed seconds at which train and test accuracy crossed their thresholds."""
    rows = [m.to_dict() if isinstance(m, Metrics) else m for m in history]

    def first(key: str, level: float) -> dict[str, Any] | None:
        for row in rows:
            if row.get(key) is not None and row[key] >= level:
                return row
        return None

    train, test = first("train_acc", fit), first("test_acc", general)
    return {
        "train_step": train and train["step"],
        "train_s": train and train["elapsed_s"],
        "test_step": test and test["step"],
        "test_s": test and test["elapsed_s"],
    }


__all__ = ["Trainer", "DeviceError", "read_views", "resolve_device", "summarize"]
