"""The summed-embedding MLP, the model in which grokking is quickest to watch here (mod-add, mod-mul, semi-grok)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from grok_tui.models.base import GrokModel
from grok_tui.models.footprint import INDEX, Activations, linear, loss_floats
from grok_tui.models.registry import Family, modular_classes
from grok_tui.models.stacked import lookup

if TYPE_CHECKING:
    from grok_tui.config import RunConfig


class SumMLP(GrokModel):
    """relu(E[a] + E[b]) @ U: one embedding shared by both operands, their rows summed.

    Taken from the PAIR article's description of its model, without the factoring its
    notebook has (that model is models/factored.py): the embedding's width is the layer
    of neurons itself.
    """

    def __init__(self, p: int, width: int):
        super().__init__()
        self.embed = nn.Embedding(p, width)
        self.unembed = nn.Linear(width, p, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One embedding_bag writes each example's sum once, where a gather per operand and their sum
        # wrote it three times: 0.95x the whole process of a 3,000-step default run (farm-bench).
        return self.unembed(torch.relu(F.embedding_bag(x, self.embed.weight, mode="sum")))

    def neuron_inputs(self) -> torch.Tensor:
        return self.embed.weight

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"embedding": self.embed.weight, "output": self.unembed.weight.T}


def summed_activations(cfg: RunConfig, classes: int) -> Activations:
    """Two operands' rows summed into W neurons by one embedding_bag, then one matrix to the logits."""
    # Forward: the sum (W) beside the relu (W), saved for the loss. Backward: the relu's gradient (W)
    # beside it, then the rows' gradient added into a p x W buffer, with the operands' indices.
    return _two_rows_summed(cfg, classes, rows=2)


def gathered_activations(cfg: RunConfig, classes: int) -> Activations:
    """Two operands' rows gathered, then summed into W neurons (indexing, as the unfactored model does)."""
    # Forward: both operands' rows (2W) beside their sum (W); the relu (W) is saved for the loss.
    # Backward ends the same way round: the rows' gradient made contiguous (2W) beside the relu's
    # gradient (W), with the sorted indices.
    return _two_rows_summed(cfg, classes, rows=3)


def _two_rows_summed(cfg: RunConfig, classes: int, rows: int) -> Activations:
    """A summed-operand MLP whose lookup holds `rows` W-wide rows per example at its peak."""
    w, loss = cfg.width, loss_floats(cfg, classes, True)
    train = max(rows * w, w + loss) + 2 * INDEX
    forward = max(rows * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SumMLP.forward for N stacked members: x (N, rows, 2) operands."""
    table = params["embed.weight"]
    hidden = torch.relu(lookup(table, x))
    return torch.bmm(hidden, params["unembed.weight"].transpose(1, 2))


FAMILY = Family(
    build=lambda cfg, classes: SumMLP(cfg.p, cfg.width),
    classes=modular_classes,
    parameters=lambda cfg, classes: cfg.p * cfg.width + linear(cfg.width, classes, bias=False),
    activations=summed_activations,
    views=lambda cfg, classes: {"embedding": (cfg.p, cfg.width), "output": (cfg.width, classes)},
    drivers=("p", "width"),
    neurons=lambda cfg: (cfg.p, cfg.width),
    stacked=stacked_forward,
)
