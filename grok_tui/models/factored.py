"""The PAIR article's model (the pair-article experiment), built and initialised as its notebook builds it.

The article ("Do machine learning models memorize or generalize?") trains 24 neurons on
a+b mod 67 and warns that the 3,216 weights trained directly do not generalize: "at
least one of the matrices has to be factored" (that control is models/unfactored.py). Its
notebook factors them through an embedding E (p x 500) that both inputs and the output share:

    logits = relu(E[a] @ W_in + E[b] @ W_in) @ W_out @ E^T

Initialisation follows Haiku (models/haiku_init.py): E is VarianceScaling(2.0), fan_in = p.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from grok_tui.models.base import GrokModel
from grok_tui.models.footprint import INDEX, Activations, loss_floats
from grok_tui.models.haiku_init import truncated_normal, variance_scaling
from grok_tui.models.registry import Family, modular_classes

if TYPE_CHECKING:
    from grok_tui.config import RunConfig


class FactoredMLP(GrokModel):
    """The notebook's model: 24 neurons between a shared, tied embedding."""

    def __init__(self, p: int, embed_dim: int, width: int):
        super().__init__()
        self.embed = variance_scaling((p, embed_dim), 2.0)
        self.w_in = truncated_normal((embed_dim, width), 1 / math.sqrt(embed_dim))
        self.w_out = truncated_normal((width, embed_dim), 1 / math.sqrt(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The notebook's order of operations, (onehot(x) @ E) @ W_in and (h @ W_out) @ E^T, is
        # the same function as this one, which multiplies the small factors first: p x 24 and
        # 24 x p instead of n x 500 per example, about 30x fewer FLOPs a step.
        neurons = self.embed @ self.w_in  # (p, width)
        readout = self.w_out @ self.embed.T  # (width, p)
        return torch.relu(neurons[x].sum(dim=1)) @ readout

    def neuron_inputs(self) -> torch.Tensor:
        # What the article draws: how each number drives each of the 24 neurons.
        return self.embed @ self.w_in

    def matrices(self) -> dict[str, torch.Tensor]:
        return {
            "inputs to neurons": self.neuron_inputs(),
            "neurons to outputs": (self.w_out @ self.embed.T).T,
            "embedding": self.embed,
        }


def _activations(cfg: RunConfig, classes: int) -> Activations:
    d, w, loss = cfg.embed_dim, cfg.width, loss_floats(cfg, classes, True)
    # Forward: both operands' embedding rows (2D) and their projections (2W), the relu (W), the
    # projection back (D), then the logits; backward mirrors it.
    train = 2 * d + 3 * w + d + loss + 2 * INDEX
    forward = max(2 * d + 3 * w + d, d + classes + loss_floats(cfg, classes, False))
    return Activations(train, forward)


FAMILY = Family(
    build=lambda cfg, classes: FactoredMLP(cfg.p, cfg.embed_dim, cfg.width),
    classes=modular_classes,
    parameters=lambda cfg, classes: cfg.p * cfg.embed_dim + 2 * cfg.embed_dim * cfg.width,
    activations=_activations,
    views=lambda cfg, classes: {
        "inputs to neurons": (cfg.p, cfg.width),
        "neurons to outputs": (classes, cfg.width),
        "embedding": (cfg.p, cfg.embed_dim),
    },
    drivers=("p", "embed_dim", "width"),
    neurons=lambda cfg: (cfg.p, cfg.width),
    # The neuron inputs are a product, made on every look, and the last snapshot still holds the previous one.
    neuron_copies=3,
)
