"""grok-tui for the Hugging Face Trainer: `GrokTuiCallback` makes `Trainer.train` a run that grok-tui watches
and steers.

    from grok_tui.integrations.huggingface import GrokTuiCallback

    trainer = Trainer(model, args, train_dataset=train, eval_dataset=test, callbacks=[GrokTuiCallback(period=p)])
    trainer.train()

It is `grok_tui.monitor` (README, "Your own training loop") started on the Trainer's model and optimizer
when training begins. The Trainer hands its callbacks accelerate's AcceleratedOptimizer, a wrapper whose
own `step` runs no optimizer hooks: the monitor is given the torch optimizer inside it, whose step runs on
each real update (not on an accumulation micro-batch, nor on a step the fp16 scaler skips) and whose param
groups are the very ones the wrapper shows, so the keys reach them. Under torchrun every rank's callback
starts its monitor at on_train_begin (rank 0 serves the run; see `monitor` under torch.distributed).
"""

from __future__ import annotations

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ModuleNotFoundError as missing:
    if missing.name is None or missing.name.split(".")[0] != "transformers":
        raise  # transformers is there, and something it imports is not: its own error says what
    raise ImportError(
        "grok_tui.integrations.huggingface needs transformers: pip install 'grok-tui[huggingface]'"
    ) from None

import atexit
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from grok_tui.integrations.common import Rows, scheduler_of, unwrapped
from grok_tui.loop.record import checked_user_config
from grok_tui.loop.session import Monitor


class TrainingAbandoned(RuntimeError):
    """What a run whose `Trainer.train` never reached on_train_end crashed of, where no exception is known."""


class GrokTuiCallback(TrainerCallback):
    """A TrainerCallback over `grok_tui.monitor`; its arguments are `monitor`'s.

    on_train_begin   starts the run: the monitor on the model, the optimizer inside accelerate's wrapper, and
                     the LR scheduler (the lr keys move its base lrs); "steps" in the config is the
                     Trainer's `max_steps` unless `config` names one
    on_log, on_evaluate   gather the step's row from what the Trainer logs: `loss` (every `logging_steps`),
                     `eval_loss` and the eval metrics of `compute_metrics` (`eval_accuracy`, or with
                     `eval_dataset={"train": ..., "test": ...}` both sets' `eval_train_*` and `eval_test_*`),
                     `grad_norm` and any other number under its own name
    on_step_begin    writes the last step's row, complete (its evaluation, if any, has run)
    on_step_end      `control.should_training_stop` once the monitor asks (q, grok-tui stop, SIGTERM)
    on_train_end     ends the run: finished, or stopped where it was asked to stop

    The Trainer tells its callbacks nothing of an exception: a `train()` that raises leaves the run open
    until `close(error)`, or the interpreter's exit, which ends it crashed (with the uncaught exception's
    traceback in crash.log; stopped for Ctrl-C).
    """

    def __init__(
        self,
        *,
        period: int | None = None,
        config: dict[str, Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        matrices: Callable[[], Mapping[str, torch.Tensor]] | None = None,
        neuron_inputs: Callable[[], torch.Tensor | None] | None = None,
        save: Callable[[], dict[str, Any]] | None = None,
    ):
        self._given: dict[str, Any] = dict(
            period=period, run_dir=run_dir, matrices=matrices, neuron_inputs=neuron_inputs, save=save
        )
        self._config = checked_user_config(config)  # a bad config is one line now, not when training begins
        self.monitor: Monitor | None = None
        self._rows: Rows | None = None

    @property
    def run_dir(self) -> Path | None:
        """The run's directory, once training has begun."""
        return None if self.monitor is None else self.monitor.run_dir

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        lr_scheduler: Any = None,
        **kwargs: Any,
    ) -> None:
        self.close(_last_error())  # a train() before this one that raised (in a notebook) left its run open
        if model is None or optimizer is None:
            raise ValueError("GrokTuiCallback: the Trainer gave its callbacks no model or no optimizer")
        inner = unwrapped(optimizer, "optimizer")
        scheduler = scheduler_of(inner, [lr_scheduler])
        config = {"steps": max(0, int(state.max_steps)), **self._config}
        self.monitor = Monitor(model, inner, scheduler=scheduler, config=config, **self._given)
        self._rows = Rows(self.monitor)
        atexit.register(self._at_exit)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._rows is not None:
            self._rows.flush()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.monitor is not None and self._rows is not None and self.monitor.should_stop:
            control.should_training_stop = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # The summary logged after the last step (train_runtime, the run's mean train_loss) is no step's row.
        if self._rows is not None and logs is not None and "train_runtime" not in logs:
            self._rows.add(state.global_step, logs)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._rows is not None:
            self._rows.add(state.global_step, metrics)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        rows = self._rows
        try:
            if rows is not None:
                rows.flush()
        finally:
            self.close()

    def close(self, error: BaseException | None = None) -> None:
        """End the run, if one is open: finished or stopped, or crashed of `error` (the exception that left
        `trainer.train()`, where you catch it and go on, as in a notebook)."""
        monitor, self._rows = self.monitor, None
        atexit.unregister(self._at_exit)
        if monitor is not None:
            monitor.close(error)

    def _at_exit(self) -> None:
        # Registered after the monitor's own exit handler, so run before it (atexit runs the last registered
        # first): the run ends crashed, not finished.
        self.close(_last_error())


def _last_error() -> BaseException:
    """Why a run still open was abandoned: the uncaught exception the interpreter keeps (it printed its
    traceback), else a TrainingAbandoned."""
    error = getattr(sys, "last_value", None)
    return error if isinstance(error, BaseException) else TrainingAbandoned("Trainer.train never reached its end")


__all__ = ["GrokTuiCallback", "TrainingAbandoned"]
