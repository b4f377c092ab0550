"""What the framework callbacks share: a framework's metric names read as `m.log`'s, and the row of one step
gathered from the framework's several reports (training, then validation) into one `m.log` call, since a
monitor takes each step once."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from grok_tui.loop.session import FILLED, KNOWN, SHARES, Monitor
from grok_tui.train.snapshot import MAX_EXTRA, MAX_EXTRA_NAME

TRAIN = {"train", "training"}
TEST = {"val", "valid", "validation", "test", "eval", "evaluation"}
KINDS = {"loss": "loss", "acc": "acc", "accuracy": "acc"}
# A framework's bookkeeping in its metric reports: not a measure of the model, or one grok-tui fills in.
BOOKKEEPING = {"epoch", "step", "global_step", "learning_rate", "total_flos", "num_input_tokens_seen"}
BOOKKEEPING_ENDS = ("_runtime", "_per_second")


def known_name(key: str) -> tuple[str, int] | None:
    """The `m.log` name a framework's metric key stands for, with its rank among keys naming the same (lower
    wins): `train_loss`, `val_acc`, `val/accuracy`, `loss/val`, `eval_loss`, `eval_test_accuracy`, and
    Lightning's `_step` / `_epoch` forks after the plain name; `loss` alone is the training loss, last."""
    words = [w for w in re.split(r"[/._\-\s]+", key.lower()) if w]
    rank = 0
    if len(words) > 1 and words[-1] in ("step", "epoch"):
        rank = 1 if words[-1] == "step" else 2
        words = words[:-1]
    if words == ["loss"]:
        return "train_loss", 3 + rank
    # Hugging Face prefixes each eval set's name: eval_dataset={"train": ..., "test": ...} gives eval_train_loss.
    if len(words) == 3 and words[0] == "eval" and words[1] in TRAIN | TEST:
        words = words[1:]
    if len(words) != 2:
        return None
    split, kind = words if words[0] in TRAIN | TEST else words[::-1]
    if split not in TRAIN | TEST or kind not in KINDS:
        return None
    return f"{'train' if split in TRAIN else 'test'}_{KINDS[kind]}", rank


def scalar(value: Any) -> float | None:
    """A reported value as a finite float, or None where it is not one number (a framework reports strings,
    lists and NaN losses too; none of them stops the run)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def unwrapped(wrapper: Any, inner: str) -> Any:
    """The object inside a framework's wrappers (accelerate's AcceleratedOptimizer and AcceleratedScheduler
    hold theirs in `.optimizer` and `.scheduler`): the one whose step is the real step."""
    while getattr(wrapper, inner, None) is not None and getattr(wrapper, inner) is not wrapper:
        found = getattr(wrapper, inner)
        if inner == "optimizer" and not isinstance(found, torch.optim.Optimizer):
            break
        wrapper = found
    return wrapper


def scheduler_of(optimizer: torch.optim.Optimizer, candidates: list[Any]) -> Any:
    """The first LR scheduler of `optimizer` whose base lrs the keys can move (one per param group), or None:
    a plateau scheduler has none, and its changes of lr are the groups' own, which the keys then change."""
    for candidate in candidates:
        scheduler = unwrapped(candidate, "scheduler")
        base_lrs = getattr(scheduler, "base_lrs", None)
        owner = unwrapped(getattr(scheduler, "optimizer", None), "optimizer")
        if owner is optimizer and isinstance(base_lrs, list) and len(base_lrs) == len(optimizer.param_groups):
            return scheduler
    return None


class Rows:
    """The row of one step, gathered from the framework's reports at that step and written as one `m.log`
    when the step is over (`flush`, called before the next optimizer step, so the monitor counts the changes
    made from there at the right step)."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor
        self.step: int | None = None
        self._known: dict[str, tuple[int, float]] = {}
        self._extra: dict[str, float] = {}
        self._logged: int | None = None
        self._warned: set[str] = set()

    def add(self, step: int, report: Mapping[str, Any] | None) -> None:
        """Take a framework's report of `step` into that step's row (a pending row of another step is written
        first). A report of a step already written is dropped: a monitor takes each step once."""
        if self.step is not None and step != self.step:
            self.flush()
        if self._logged is not None and step <= self._logged:
            return
        self.step = step
        for key, value in (report or {}).items():
            number = scalar(value)
            if number is None:
                continue
            named = known_name(str(key))
            if named is not None:
                self._take_known(str(key), named, number)
            elif self._is_extra(str(key)):
                self._extra[str(key)] = number

    def _take_known(self, key: str, named: tuple[str, int], number: float) -> None:
        name, rank = named
        if name in SHARES and not 0 <= number <= 1:
            if key not in self._warned:
                self._warned.add(key)
                print(f"grok-tui: {key} is {number:g}, not a share from 0 to 1: not logged as {name}", file=sys.stderr)
            return
        held = self._known.get(name)
        if held is None or rank <= held[0]:  # of equal rank, the later report is the newer
            self._known[name] = (rank, number)

    def _is_extra(self, key: str) -> bool:
        if key in KNOWN or key in FILLED or key in BOOKKEEPING or key.endswith(BOOKKEEPING_ENDS):
            return False
        return 0 < len(key) <= MAX_EXTRA_NAME and (key in self._extra or len(self._extra) < MAX_EXTRA)

    def flush(self) -> None:
        """Write the pending row, if any."""
        if self.step is None:
            return
        step, values = self.step, {name: value for name, (_, value) in self._known.items()}
        values.update(self._extra)
        self.step, self._known, self._extra = None, {}, {}
        self.monitor.log(step, **values)
        self._logged = step
