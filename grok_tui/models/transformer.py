"""The one-layer transformer of Nanda et al., "Progress measures for grokking".

Input "a b =" (the "=" token is p), logits read at the last position;
4 heads, ReLU MLP, no LayerNorm, no biases in attention.
"""

from __future__ import annotations

import torch
from torch import nn

from grok_tui.models.base import GrokModel


class OneLayerTransformer(GrokModel):
    causal: torch.Tensor  # a buffer (register_buffer), which nn.Module's typing cannot see

    def __init__(self, p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, n_ctx: int = 3):
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
