"""What a step minimises and what counts as correct, per example: one definition for one run and a batch.

A single run averages these over its training set; the batched engine (batched.py)
weights them per member, so the two train on exactly the same objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def example_losses(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of each example: out is (..., classes), y is (...) labels or (..., outputs) targets."""
    if y.is_floating_point():  # a regression target (teacher-student): squared error, averaged over outputs
        return (out - y).square().mean(dim=-1)
    if kind == "mse":
        return (out - F.one_hot(y, out.shape[-1]).to(out.dtype)).square().mean(dim=-1)
    losses = F.cross_entropy(out.flatten(0, -2), y.flatten(), reduction="none").view(y.shape)
    if kind == "ce_per_class":  # the PAIR notebook's -mean(onehot * log_softmax): averaged over the classes too
        return losses / out.shape[-1]
    return losses


def example_correct(out: torch.Tensor, y: torch.Tensor, acc_tol: float) -> torch.Tensor:
    """1.0 where an example is right: the top class, or (regression) a mean squared error under acc_tol,
    Omnigrok's definition."""
    if y.is_floating_point():
        return ((out - y).square().mean(dim=-1) < acc_tol).to(out.dtype)
    return (out.argmax(dim=-1) == y).to(out.dtype)
