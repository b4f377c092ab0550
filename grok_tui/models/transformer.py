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
        self._init_as_the_paper()

    @torch.no_grad()
    def _init_as_the_paper(self) -> None:
        """As the paper's code (progress-measures-paper, transformers.py) draws them: every matrix from
        N(0, 1/d_model), the unembedding from N(0, 1/d_vocab) (d_vocab = p + 1, "=" included), the
        MLP's biases at zero. PyTorch's defaults would start the token embedding ~11x larger."""
        std = self.embed.embedding_dim**-0.5
        for linear in (self.qkv, self.attn_out, self.mlp_in, self.mlp_out):
            linear.weight.normal_(0, std)
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
