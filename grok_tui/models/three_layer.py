"""Omnigrok's models (Liu, Michaud, Tegmark 2022): plain MLPs, made to grok by a large init scale alpha.

What the two (models/omni_mlp.py, teacher_mlp.py) share: the network, its parameter count and its activations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from grok_tui.models.base import GrokModel
from grok_tui.models.footprint import Activations, linear, loss_floats

if TYPE_CHECKING:
    from grok_tui.config import RunConfig


class ThreeLayerMLP(GrokModel):
    """in -> width -> width -> out, one activation between layers."""

    def __init__(self, in_dim: int, width: int, n_out: int, activation: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.l1 = nn.Linear(in_dim, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, n_out)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(self.activation(self.l2(self.activation(self.l1(x)))))

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"hidden 1": self.l1.weight.T, "hidden 2": self.l2.weight.T, "output": self.l3.weight.T}


def three_layer_activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # Both activations are saved (2W); the second layer's output sits beside them forward, two
    # gradients beside them backward.
    train = max(4 * w, 2 * w + loss_floats(cfg, classes, True))
    forward = max(2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def three_layer_parameters(in_dim: int, width: int, classes: int) -> int:
    return linear(in_dim, width) + linear(width, width) + linear(width, classes)


def three_layer_views(in_dim: int, width: int, classes: int) -> dict[str, tuple[int, int]]:
    return {"hidden 1": (in_dim, width), "hidden 2": (width, width), "output": (width, classes)}
