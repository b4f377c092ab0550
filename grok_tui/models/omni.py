"""Omnigrok's models (Liu, Michaud, Tegmark 2022): plain MLPs, made to grok by a large init scale alpha."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from grok_tui.models.base import GrokModel


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


class OmniMLP(ThreeLayerMLP):
    """Omnigrok's MNIST model: depth 3, ReLU; here on 8×8 digits: 64 -> width -> width -> 10."""

    def __init__(self, in_dim: int = 64, width: int = 200, n_out: int = 10):
        super().__init__(in_dim, width, n_out, torch.relu)


class TeacherMLP(ThreeLayerMLP):
    """The teacher-student toy's architecture, tanh (5-100-100-5 in the paper)."""

    def __init__(self, in_dim: int = 5, width: int = 100, n_out: int = 5):
        super().__init__(in_dim, width, n_out, torch.tanh)
