"""grok-tui for Lightning: `GrokTuiCallback` makes a `Trainer.fit` a run that grok-tui watches and steers.

    from grok_tui.integrations.lightning import GrokTuiCallback

    trainer = L.Trainer(max_steps=6000, callbacks=[GrokTuiCallback(period=p)])
    trainer.fit(model, train_loader, val_loader)

It is `grok_tui.monitor` (README, "Your own training loop") started on the LightningModule and the Trainer's
first optimizer (with that optimizer's first LR scheduler) when training starts, so the keys act in that
optimizer's step hook as in any loop. Its rows are read from `trainer.callback_metrics`, what the module
logs with `self.log`: see `common.known_name` for the names read as the train and test loss and accuracy.
Under DDP every rank's callback starts its monitor at on_train_start, as `monitor` under torch.distributed
wants: rank 0 serves the run, and every rank applies each command, and sets `should_stop`, at the same step.
"""

from __future__ import annotations

try:
    import lightning.pytorch as pl
except ModuleNotFoundError as missing:
    if missing.name is None or missing.name.split(".")[0] != "lightning":
        raise  # lightning is there, and something it imports is not: its own error says what
    raise ImportError("grok_tui.integrations.lightning needs Lightning: pip install 'grok-tui[lightning]'") from None

import contextlib
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from grok_tui.integrations.common import Rows, scheduler_of, unwrapped
from grok_tui.loop.record import checked_user_config
from grok_tui.loop.session import Monitor


class GrokTuiCallback(pl.Callback):
    """A Lightning Callback over `grok_tui.monitor`. Its arguments are `monitor`'s, and:

    `log_every_n_steps`: a row of metrics.jsonl every that many optimizer steps (default: the Trainer's own
    `log_every_n_steps`); a row is also written after every validation, with its fresh metrics.

    on_train_start   starts the run: the monitor on the module, `trainer.optimizers[0]`, and that optimizer's
                     first LR scheduler (the lr keys move its base lrs); "steps" in the config is the
                     Trainer's step budget unless `config` names one
    on_train_batch_end, on_validation_end   gather the row from `trainer.callback_metrics` (written before
                     the next step); `trainer.should_stop` once the monitor asks (q, grok-tui stop, SIGTERM)
    on_train_end     ends the run: finished, or stopped where it was asked to stop
    on_exception     ends the run crashed, the traceback in crash.log (stopped on Ctrl-C)
    """

    def __init__(
        self,
        *,
        period: int | None = None,
        config: dict[str, Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        log_every_n_steps: int | None = None,
        matrices: Callable[[], Mapping[str, torch.Tensor]] | None = None,
        neuron_inputs: Callable[[], torch.Tensor | None] | None = None,
        save: Callable[[], dict[str, Any]] | None = None,
    ):
        if log_every_n_steps is not None and (
            not isinstance(log_every_n_steps, int) or isinstance(log_every_n_steps, bool) or log_every_n_steps < 1
        ):
            raise ValueError(f"GrokTuiCallback: log_every_n_steps must be an integer >= 1, not {log_every_n_steps!r}")
        self._given: dict[str, Any] = dict(
            period=period, run_dir=run_dir, matrices=matrices, neuron_inputs=neuron_inputs, save=save
        )
        self._config = checked_user_config(config)  # a bad config is one line now, not when training starts
        self._log_every_n_steps = log_every_n_steps
        self._every = 1  # the cadence of the fit under way
        self.monitor: Monitor | None = None
        self._rows: Rows | None = None

    @property
    def run_dir(self) -> Path | None:
        """The run's directory, once training has started."""
        return None if self.monitor is None else self.monitor.run_dir

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.optimizers:
            raise ValueError("GrokTuiCallback: the module's configure_optimizers gave no optimizer to steer")
        optimizer = unwrapped(trainer.optimizers[0], "optimizer")
        scheduler = scheduler_of(optimizer, [c.scheduler for c in trainer.lr_scheduler_configs])
        config = {"steps": _budget(trainer), **self._config}
        self.monitor = Monitor(pl_module, optimizer, scheduler=scheduler, config=config, **self._given)
        self._rows = Rows(self.monitor)
        self._every = self._log_every_n_steps or _log_every_n_steps(trainer)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._rows is not None:
            self._rows.flush()  # the last step's row is complete: its validation, if any, has run

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._rows is None or self.monitor is None:
            return
        step = trainer.global_step  # optimizer steps taken; several batches share one under accumulation
        if step > 0 and step % self._every == 0:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            self._rows.add(step, {"loss": loss, **trainer.callback_metrics})
        if self.monitor.should_stop:
            trainer.should_stop = True

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._rows is None or self.monitor is None or trainer.sanity_checking:
            return
        self._rows.add(trainer.global_step, trainer.callback_metrics)
        if self.monitor.should_stop:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end(None)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._end(exception)

    def _end(self, error: BaseException | None) -> None:
        rows, monitor = self._rows, self.monitor
        self._rows = None
        if monitor is None or rows is None:
            return
        try:
            if error is None:
                rows.flush()
        finally:
            monitor.close(error)


def _log_every_n_steps(trainer: pl.Trainer) -> int:
    """The Trainer's own `log_every_n_steps` (an attribute Lightning sets without declaring it: read with
    getattr), else Lightning's default, 50."""
    every = getattr(trainer, "log_every_n_steps", None)
    return every if isinstance(every, int) and every >= 1 else 50


def _budget(trainer: pl.Trainer) -> int:
    """The fit's step budget for the status line: max_steps, else Lightning's estimate; 0 where unknown."""
    if trainer.max_steps > 0:
        return int(trainer.max_steps)
    with contextlib.suppress(Exception):  # an estimate only: an unsized loader has none, and training goes on
        estimate = float(trainer.estimated_stepping_batches)
        if math.isfinite(estimate) and estimate >= 1:
            return int(estimate)
    return 0


__all__ = ["GrokTuiCallback"]
