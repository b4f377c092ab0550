"""The small MLPs in which grokking was first made easy to watch."""

from __future__ import annotations

import torch
from torch import nn

from grok_tui.models.base import GrokModel


class SumMLP(GrokModel):
    """relu(E[a] + E[b]) @ U: one embedding shared by both operands, their rows summed.

    Taken from the PAIR article's description of its model, without the factoring its
    notebook has (that model is models/article.py): the embedding's width is the layer
    of neurons itself.
    """

    def __init__(self, p: int, width: int):
        super().__init__()
        self.embed = nn.Embedding(p, width)
        self.unembed = nn.Linear(width, p, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unembed(torch.relu(self.embed(x).sum(dim=1)))

    def neuron_inputs(self) -> torch.Tensor:
        return self.embed.weight

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"embedding": self.embed.weight, "output": self.unembed.weight.T}


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
