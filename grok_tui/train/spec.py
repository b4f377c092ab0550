"""What a run is before it trains: its config and directory (`RunSpec`), checked and created.

`new_run` and `resume_run` check everything that can be checked before a
process is started (the device, the memory, the checkpoint's shapes), so a bad
run is one line at the prompt, never a process that dies on its first step.
A RunSpec builds the same Trainer in any process: the run's own (runner.py),
or the caller's (sources/in_process.py).
"""

from __future__ import annotations

from dataclasses import dataclass
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
from grok_tui.train.checkpoint import CheckpointError, check_state
from grok_tui.train.control import Control, SetHyper, check_hyper
from grok_tui.train.memory import check_fits
from grok_tui.train.snapshot import Event, RecordError
from grok_tui.train.trainer import Trainer, resolve_device


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
            params: dict[str, torch.Tensor] = dict(build_model(cfg).named_parameters())
        try:
            check_state(state, params)
        except CheckpointError as e:
            raise RunDirError(f"{Path(run_dir) / CHECKPOINT}: {e}") from None
    return RunSpec(cfg, Path(run_dir), resume=True, values=checked)


__all__ = ["RunSpec", "new_run", "resume_run"]
