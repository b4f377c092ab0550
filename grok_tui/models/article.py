"""The PAIR article's models, built and initialised as its notebook builds them (Haiku's defaults).

The article ("Do machine learning models memorize or generalize?") trains 24 neurons on
a+b mod 67 and warns that the 3,216 weights trained directly do not generalize: "at
least one of the matrices has to be factored". Its notebook factors them through an
embedding E (p x 500) that both inputs and the output share:

    logits = relu(E[a] @ W_in + E[b] @ W_in) @ W_out @ E^T

Initialisation follows Haiku: E is VarianceScaling(2.0) (a truncated normal of variance
2 / fan_in, fan_in = p), each Linear a truncated normal of std 1/sqrt(fan_in); Haiku
truncates at two standard deviations.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grok_tui.models.base import GrokModel

# The std of a unit normal truncated to [-2, 2]: Haiku's VarianceScaling divides by it.
_TRUNCATED_STD = 0.87962566103423978


def truncated_normal(shape: tuple[int, ...], std: float) -> nn.Parameter:
    weight = torch.empty(shape)
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
    return nn.Parameter(weight)


def variance_scaling(shape: tuple[int, int], scale: float) -> nn.Parameter:
    """Haiku's VarianceScaling(scale) with its defaults (fan_in, truncated normal); fan_in = shape[0]."""
    return truncated_normal(shape, math.sqrt(scale / shape[0]) / _TRUNCATED_STD)


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
