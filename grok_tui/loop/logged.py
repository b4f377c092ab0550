"""What `m.log(step, **metrics)` takes (loop/session.py): each refusal a ValueError saying what would do.

A step is an integer after the last one logged. A metric is one finite number (a Python or numpy number, or a
one-element tensor) under a name: one of KNOWN, an accuracy in SHARES as a share from 0 to 1, or a name of
the script's own (at most MAX_EXTRA of them a row, each name at most MAX_EXTRA_NAME characters), never one of
the FILLED names that grok-tui fills in itself.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from grok_tui.train.snapshot import MAX_EXTRA, MAX_EXTRA_NAME, Metrics

# The names m.log knows; any other finite number is stored beside them in metrics.jsonl.
KNOWN = ("train_loss", "train_acc", "test_loss", "test_acc")
SHARES = ("train_acc", "test_acc")
# What grok-tui fills in itself: a script cannot log these.
FILLED = tuple(f.name for f in fields(Metrics) if f.name not in KNOWN and f.name != "step")


def checked_step(step: int, last: int | None) -> int:
    """`step` as an int, where it is one after `last` (the last step logged, or None)."""
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or not 0 <= step <= 2**53:
        raise ValueError(f"m.log: step must be an integer >= 0, not {step!r}")
    step = int(step)
    if last is not None and step <= last:
        raise ValueError(
            f"m.log: step {step} is not after the last step logged ({last}); "
            "log each step once, with all its metrics in one call"
        )
    return step


def checked_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Each metric as a float, in the order given."""
    values: dict[str, float] = {}
    custom = [name for name in metrics if name not in KNOWN]
    if len(custom) > MAX_EXTRA:
        raise ValueError(f"m.log: {len(custom)} metrics of your own; at most {MAX_EXTRA} a row are kept")
    for name, value in metrics.items():
        if name in FILLED:
            raise ValueError(f"m.log: {name} is filled in by grok-tui; log yours under another name")
        if len(name) > MAX_EXTRA_NAME:
            raise ValueError(f"m.log: the name {name[:20]}… is longer than {MAX_EXTRA_NAME} characters")
        values[name] = _number(name, value)
        if name in SHARES and not 0 <= values[name] <= 1:
            raise ValueError(f"m.log: {name} is {values[name]:g}; give an accuracy as a share from 0 to 1")
    return values


def _number(name: str, value: Any) -> float:
    """A logged value as a float: a Python or numpy number, or a one-element tensor (read from its device)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"m.log: {name} is a tensor of {value.numel()} values; log one number")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"m.log: {name} is {type(value).__name__} {str(value)[:60]!r}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"m.log: {name} is {number}, not a finite number")
    return number
