"""Kitouni's concat MLP (the concat-add, -sub, -mul and -div experiments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from grok_tui.models.base import GrokModel
from grok_tui.models.footprint import INDEX, Activations, linear, loss_floats
from grok_tui.models.registry import Family, modular_classes
from grok_tui.models.stacked import lookup

if TYPE_CHECKING:
    from grok_tui.config import RunConfig


class ConcatMLP(GrokModel):
    """Kitouni's simple-grokking model: two embeddings, concatenated, one ReLU layer."""

    def __init__(self, p: int, embed_dim: int, width: int):
        super().__init__()
        self.embed_a = nn.Embedding(p, embed_dim)
        self.embed_b = nn.Embedding(p, embed_dim)
        self.hidden = nn.Linear(2 * embed_dim, width)
        self.out = nn.Linear(width, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.embed_a(x[:, 0]), self.embed_b(x[:, 1])], dim=1)
        return self.out(torch.relu(self.hidden(h)))

    def neuron_inputs(self) -> torch.Tensor:
        # How the first operand reaches each hidden neuron: its embedding through
        # the first-operand half of the hidden layer.
        d = self.embed_a.embedding_dim
        return self.embed_a.weight @ self.hidden.weight[:, :d].T

    def matrices(self) -> dict[str, torch.Tensor]:
        return {
            "inputs to neurons": self.neuron_inputs(),
            "embedding": self.embed_a.weight,
            "hidden": self.hidden.weight.T,
            "output": self.out.weight.T,
        }


def _activations(cfg: RunConfig, classes: int) -> Activations:
    e, w, loss = cfg.embed_dim, cfg.width, loss_floats(cfg, classes, True)
    # The concatenation (2E) is saved for the hidden layer's backward, so it sits under every
    # phase: the hidden layer and its relu (2W) forward, the loss beside the relu, two more
    # W-sized gradients at the relu's backward, and at the end its own gradient split back
    # into two contiguous embedding gradients (2E) beside the relu gradient (W).
    train = max(2 * e + 3 * w, 2 * e + w + loss, 4 * e + w) + 2 * INDEX
    # `h` is a local of forward: the concatenation lives until the logits are made.
    forward = max(4 * e, 2 * e + 2 * w, 2 * e + w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ConcatMLP.forward for N stacked members: x (N, rows, 2) operands."""
    h = torch.cat([lookup(params["embed_a.weight"], x[..., :1]), lookup(params["embed_b.weight"], x[..., 1:])], dim=-1)
    h = torch.baddbmm(params["hidden.bias"].unsqueeze(1), h, params["hidden.weight"].transpose(1, 2)).relu_()
    return torch.baddbmm(params["out.bias"].unsqueeze(1), h, params["out.weight"].transpose(1, 2))


FAMILY = Family(
    build=lambda cfg, classes: ConcatMLP(cfg.p, cfg.embed_dim, cfg.width),
    classes=modular_classes,
    parameters=lambda cfg, classes: (
        2 * cfg.p * cfg.embed_dim + linear(2 * cfg.embed_dim, cfg.width) + linear(cfg.width, classes)
    ),
    activations=_activations,
    views=lambda cfg, classes: {
        "inputs to neurons": (cfg.p, cfg.width),
        "embedding": (cfg.p, cfg.embed_dim),
        "hidden": (2 * cfg.embed_dim, cfg.width),
        "output": (cfg.width, classes),
    },
    drivers=("p", "embed_dim", "width"),
    neurons=lambda cfg: (cfg.p, cfg.width),
    # The neuron inputs are a product, made twice per look (for the heatmap and for the spectrum), and the
    # previous look's copy is still held by the last snapshot.
    neuron_copies=3,
    stacked=stacked_forward,
)
