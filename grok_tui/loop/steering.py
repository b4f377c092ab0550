"""The keys on a script's run: which commands its loop accepts, and a key's change made to the user's optimizer.

`ScriptControl` is the run's Control (its channel's threads send into it): what a foreign loop cannot carry
out is refused as it is sent, with why. `Steering` makes a weight decay or lr key's change in the
optimizer's param_groups (and its LR scheduler's base, so the scheduler does not undo it), and reads the
settings in force back for the frames. Both run where loop/session.py calls them: `send` on the channel's
threads, the rest on the training thread between two optimizer steps.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from grok_tui.config import HYPER_RANGES
from grok_tui.loop.record import NO_WEIGHT_DECAY, NOT_FOR_A_SCRIPT
from grok_tui.train.control import (
    Command,
    Control,
    ScaleHyper,
    SetGrokfast,
    SetHyper,
    SetNormConstraint,
    SetTrainSize,
    Stop,
    Toggle,
    check,
    scaled,
)


class ScriptControl(Control):
    """The run's Control: a command a script's loop cannot carry out is refused as it is sent (the
    client's reply says why); Stop is also a flag that `should_stop` reads at once. `pending` is raised
    after each command is queued, so the step hook reads one attribute where nothing was sent."""

    def __init__(self, can_weight_decay: bool):
        super().__init__()
        self.stop_asked = threading.Event()
        self.pending = False
        self._can_weight_decay = can_weight_decay

    def send(self, command: Command) -> None:
        command = check(command)
        why = self.refusal(command)
        if why is not None:
            raise ValueError(f"a script's run: {why}")
        if isinstance(command, Stop):
            self.stop_asked.set()
        super().send(command)
        self.pending = True  # after the put: whoever lowers the flag and then drains finds the command

    def drain(self, timeout: float = 0) -> list[Command]:
        """Every command queued, the first waited for up to `timeout` seconds. The flag is lowered before the
        queue is read: a command sent meanwhile raises it again, so none waits unseen past the next step."""
        self.pending = False
        command = self.get(timeout=timeout)
        commands = []
        while command is not None:
            commands.append(command)
            command = self.get(timeout=0)
        return commands

    def refusal(self, command: Command) -> str | None:
        if isinstance(command, (SetHyper, ScaleHyper)):
            if command.name == "weight_decay" and not self._can_weight_decay:
                return NO_WEIGHT_DECAY
            return NOT_FOR_A_SCRIPT.get(command.name)
        if isinstance(command, Toggle):
            return NOT_FOR_A_SCRIPT.get(command.what)
        if isinstance(command, SetTrainSize):
            return NOT_FOR_A_SCRIPT["train_size"]
        if isinstance(command, SetNormConstraint):
            return NOT_FOR_A_SCRIPT["norm_constraint"]
        if isinstance(command, SetGrokfast):
            return NOT_FOR_A_SCRIPT["grokfast"]
        return None

    def refused(self) -> dict[str, str]:
        """What this run refuses, by command name, with why: told to each client in its hello."""
        return {**NOT_FOR_A_SCRIPT, **({} if self._can_weight_decay else {"weight_decay": NO_WEIGHT_DECAY})}


class Steering:
    """The weight decay and lr keys on `optimizer` (and `scheduler`, an LR scheduler of it, or None)."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any):
        self.optimizer, self.scheduler = optimizer, scheduler
        # The groups weight decay keys change: those with a non-zero one now (biases and norms kept at 0 stay 0).
        self.wd_groups = [g for g in optimizer.param_groups if _as_float(g.get("weight_decay", 0.0)) != 0.0]

    def change(self, command: SetHyper | ScaleHyper) -> tuple[float, float] | None:
        """Make a weight decay or lr key's change; the first group's (old, new) value, or None where nothing
        changed (nor any other name: ScriptControl refuses them)."""
        if command.name == "weight_decay":
            return self._change("weight_decay", self.wd_groups, command)
        if command.name == "lr":
            return self._change("lr", list(self.optimizer.param_groups), command)
        return None

    def _change(
        self, name: str, groups: list[dict[str, Any]], command: SetHyper | ScaleHyper
    ) -> tuple[float, float] | None:
        """Set or scale `name` in each of `groups` (each by the same factor: their ratios kept), and for lr
        the scheduler's base too, so its next step does not undo the change."""
        if not groups:
            return None
        rule = HYPER_RANGES[name]
        olds = [_as_float(g[name]) for g in groups]
        news: list[float | None] = [
            command.value if isinstance(command, SetHyper) else rule.clamp(scaled(old, command.factor)) for old in olds
        ]
        if all(new is None or new == old for new, old in zip(news, olds, strict=True)):
            return None
        index = {id(g): i for i, g in enumerate(self.optimizer.param_groups)}
        for group, old, new in zip(groups, olds, news, strict=True):
            if new is None or new == old:
                continue
            if isinstance(group[name], torch.Tensor):
                group[name].fill_(new)  # in place: a compiled or fused step holds this very tensor
            else:
                group[name] = new
            if name == "lr" and self.scheduler is not None:
                i = index[id(group)]
                base = self.scheduler.base_lrs[i]
                self.scheduler.base_lrs[i] = _rescaled(base, old, new)
                if "initial_lr" in group:
                    group["initial_lr"] = _rescaled(group["initial_lr"], old, new)
        first = next(new for new in news if new is not None)
        return olds[0], first if news[0] is None else news[0]

    def settings(self) -> tuple[float, float]:
        """Weight decay and lr as the keys change them: those of the first group the keys reach."""
        groups = self.optimizer.param_groups
        weight_decay = _as_float(self.wd_groups[0]["weight_decay"]) if self.wd_groups else 0.0
        lr = next((_as_float(g["lr"]) for g in groups if "lr" in g), 0.0)
        return max(weight_decay, 0.0), max(lr, 0.0)

    def groups(self) -> tuple[tuple[float, float], ...]:
        """Each param group's (weight decay, lr) as it holds them now, where the groups differ; empty where
        they agree (the status line's wd and lr then say it all). Host values only: nothing from the device
        but a tensor lr, which is a CPU scalar wherever the optimizer keeps it (as `settings` reads it)."""
        values = tuple(
            (max(_as_float(g.get("weight_decay", 0.0)), 0.0), max(_as_float(g.get("lr", 0.0)), 0.0))
            for g in self.optimizer.param_groups
        )
        return values if len(set(values)) > 1 else ()


def _as_float(value: Any) -> float:
    """A param group's value as a float: a number, or a tensor (a compiled or fused step's lr)."""
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def _rescaled(value: Any, old: float, new: float) -> Any:
    """A scheduler's base lr moved as the lr was: by the same factor (or to `new` where lr was 0)."""
    factor_new = new / old if old > 0 else None
    if isinstance(value, torch.Tensor):
        if factor_new is None:
            value.fill_(new)
        else:
            value.mul_(factor_new)
        return value
    return float(value) * factor_new if factor_new is not None else new
