"""The PAIR article's warning (the pair-article-unfactored experiment): its 24 neurons trained directly."""

from __future__ import annotations

import math

import torch

from grok_tui.models.base import GrokModel
from grok_tui.models.haiku_init import truncated_normal
from grok_tui.models.registry import Family, modular_classes
from grok_tui.models.sum_mlp import gathered_activations


class UnfactoredMLP(GrokModel):
    """The same 24 neurons with no embedding: relu(W_in[a] + W_in[b]) @ W_out, 2 x p x 24 weights."""

    def __init__(self, p: int, width: int):
        super().__init__()
        # As Haiku's Linear would start them on one-hot inputs (fan_in p) and on the 24 neurons.
        self.w_in = truncated_normal((p, width), 1 / math.sqrt(p))
        self.w_out = truncated_normal((width, p), 1 / math.sqrt(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.w_in[x].sum(dim=1)) @ self.w_out

    def neuron_inputs(self) -> torch.Tensor:
        return self.w_in

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"inputs to neurons": self.w_in, "neurons to outputs": self.w_out.T}


FAMILY = Family(
    build=lambda cfg, classes: UnfactoredMLP(cfg.p, cfg.width),
    classes=modular_classes,
    parameters=lambda cfg, classes: cfg.p * cfg.width + cfg.width * classes,
    # The summed-embedding MLP's shape of computation, its rows gathered by indexing (no embedding_bag:
    # the batched engine vmaps this model, and embedding_bag has no vmap batching rule).
    activations=gathered_activations,
    views=lambda cfg, classes: {"inputs to neurons": (cfg.p, cfg.width), "neurons to outputs": (classes, cfg.width)},
    drivers=("p", "width"),
    neurons=lambda cfg: (cfg.p, cfg.width),
)
