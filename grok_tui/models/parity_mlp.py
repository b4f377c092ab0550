"""The sparse-parity MLP (the parity experiment)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from grok_tui.models.base import GrokModel
from grok_tui.models.footprint import Activations, linear, loss_floats
from grok_tui.models.registry import Family

if TYPE_CHECKING:
    from grok_tui.config import RunConfig


class ParityMLP(GrokModel):
    """One hidden ReLU layer on the ±1 bits."""

    def __init__(self, n_bits: int, width: int, n_classes: int = 2):
        super().__init__()
        self.hidden = nn.Linear(n_bits, width)
        self.out = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"hidden": self.hidden.weight.T, "output": self.out.weight.T}


def _activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # The ±1 inputs need no gradient: the relu (W) is saved, and its backward holds two more W.
    train = max(3 * w, w + loss_floats(cfg, classes, True))
    forward = max(2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


FAMILY = Family(
    build=lambda cfg, classes: ParityMLP(cfg.n_bits, cfg.width, classes),
    classes=lambda cfg: 2,  # the parity of the first k bits
    parameters=lambda cfg, classes: linear(cfg.n_bits, cfg.width) + linear(cfg.width, classes),
    activations=_activations,
    views=lambda cfg, classes: {"hidden": (cfg.n_bits, cfg.width), "output": (cfg.width, classes)},
    drivers=("n_train", "n_test", "n_bits", "width"),
)
