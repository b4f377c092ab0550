"""The one-layer transformer of Nanda et al., "Progress measures for grokking".

Input "a b =" (the "=" token is p), logits read at the last position;
4 heads, ReLU MLP, no LayerNorm, no biases in attention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from grok_tui.models.base import GrokModel
from grok_tui.models.footprint import INDEX, Activations, linear, loss_floats
from grok_tui.models.registry import Family, modular_classes

if TYPE_CHECKING:
    from grok_tui.config import RunConfig

N_CTX = 3  # the tokens: "a b ="


class OneLayerTransformer(GrokModel):
    causal: torch.Tensor  # a buffer (register_buffer), which nn.Module's typing cannot see

    def __init__(self, p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, n_ctx: int = N_CTX):
        super().__init__()
        assert d_model % n_heads == 0
        self.p, self.n_heads = p, n_heads
        self.embed = nn.Embedding(p + 1, d_model)
        self.pos = nn.Parameter(torch.randn(n_ctx, d_model) / d_model**0.5)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.attn_out = nn.Linear(d_model, d_model, bias=False)
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.unembed = nn.Linear(d_model, p, bias=False)
        self.register_buffer("causal", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)), persistent=False)
        self._init_as_the_paper()

    @torch.no_grad()
    def _init_as_the_paper(self) -> None:
        """As the paper's code (progress-measures-paper, transformers.py) draws them: every matrix from
        N(0, 1/d_model), the unembedding from N(0, 1/d_vocab) (d_vocab = p + 1, "=" included), the
        MLP's biases at zero. PyTorch's defaults would start the token embedding ~11x larger."""
        std = self.embed.embedding_dim**-0.5
        for layer in (self.qkv, self.attn_out, self.mlp_in, self.mlp_out):
            layer.weight.normal_(0, std)
        self.embed.weight.normal_(0, std)
        self.unembed.weight.normal_(0, (self.p + 1) ** -0.5)
        self.mlp_in.bias.zero_()
        self.mlp_out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        equals = torch.full_like(x[:, :1], self.p)
        tokens = torch.cat([x, equals], dim=1)
        batch, n_ctx = tokens.shape
        resid = self.embed(tokens) + self.pos[:n_ctx]
        q, k, v = self.qkv(resid).view(batch, n_ctx, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        attn = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.causal[:n_ctx, :n_ctx])
        resid = resid + self.attn_out(attn.transpose(1, 2).reshape(batch, n_ctx, -1))
        resid = resid + self.mlp_out(torch.relu(self.mlp_in(resid)))
        return self.unembed(resid[:, -1])

    def neuron_inputs(self) -> torch.Tensor:
        return self.embed.weight[: self.p]

    def matrices(self) -> dict[str, torch.Tensor]:
        return {
            "embedding": self.embed.weight[: self.p],
            "mlp in": self.mlp_in.weight.T,
            "output": self.unembed.weight.T,
        }


def _activations(cfg: RunConfig, classes: int) -> Activations:
    d, m = cfg.embed_dim, cfg.width
    # Saved per token: the residual stream three times, q k v, the attention output and its
    # reshaped copy (8D), and the MLP's relu (M). Backward adds two M-sized gradients and one D
    # at the MLP, and at the attention the q, k, v gradients and their stacked copy (6D) beside
    # what the attention saved.
    train = N_CTX * max(9 * d + 3 * m, 13 * d) + loss_floats(cfg, classes, True) + N_CTX * INDEX
    # no_grad: q, k, v and the attention output are locals of forward, alive to its end, so the
    # MLP runs beside them (5D + 2M), then its output and the last residual beside the relu.
    forward = max(
        N_CTX * max(7 * d + m, 5 * d + 2 * m),
        N_CTX * 7 * d + classes,
        loss_floats(cfg, classes, False),
    )
    return Activations(train, forward)


def _parameters(cfg: RunConfig, classes: int) -> int:
    d, m = cfg.embed_dim, cfg.width
    embed = (cfg.p + 1) * d + N_CTX * d  # the tokens with "=", and the positions
    attention = linear(d, 3 * d, bias=False) + linear(d, d, bias=False)
    return embed + attention + linear(d, m) + linear(m, d) + linear(d, classes, bias=False)


FAMILY = Family(
    build=lambda cfg, classes: OneLayerTransformer(cfg.p, d_model=cfg.embed_dim, d_mlp=cfg.width),
    classes=modular_classes,
    parameters=_parameters,
    activations=_activations,
    views=lambda cfg, classes: {
        "embedding": (cfg.p, cfg.embed_dim),
        "mlp in": (cfg.embed_dim, cfg.width),
        "output": (cfg.embed_dim, classes),
    },
    drivers=("p", "embed_dim", "width"),
    neurons=lambda cfg: (cfg.p, cfg.embed_dim),
)
