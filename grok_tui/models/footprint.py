"""The units a family's memory formulas count in; train/memory.py sums them into the estimate.

Activations are counted in float32 units per example, each the largest set of tensors alive at
one moment, phase by phase, read off the model's forward and autograd's backward (which frees a
node's saved tensors as soon as it has run). Measured with glibc's mmap threshold pinned, so that
RSS follows the live tensors, the counts are 1.0x to 1.1x of the real peak.

Parameters are counted by formula rather than by building the model on the meta device:
nn.Embedding's normal_ init runs there through torch's Python decompositions, whose first use
imports ~800 modules (~1 s, ~75 MB) into the calling process, the UI's included.
tests/test_registry.py holds each family's formulas to its real model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grok_tui.config import RunConfig

INDEX = 2  # an int64 index, in float32 units


@dataclass(frozen=True)
class Activations:
    """Per example, in float32 units."""

    train: int  # one forward + backward with autograd
    forward: int  # one no_grad forward, including the loss and accuracy on its logits


def linear(n_in: int, n_out: int, bias: bool = True) -> int:
    """The parameters of an nn.Linear."""
    return n_in * n_out + (n_out if bias else 0)


def loss_floats(cfg: RunConfig, classes: int, training: bool) -> int:
    """Per example, the logits and what the loss makes beside them.

    Cross-entropy: log_softmax's output beside the logits; backward, the nll and log_softmax
    gradients beside the saved output (the logits are gone by then). MSE on class labels builds
    an int64 one-hot (two floats' worth) and its float copy; the teacher's targets are floats.
    """
    if cfg.loss in ("ce", "ce_per_class"):
        return 3 * classes if training else 2 * classes + 4 * INDEX
    return 6 * classes


__all__ = ["INDEX", "Activations", "linear", "loss_floats"]
