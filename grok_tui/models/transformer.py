"""The one-layer transformer of Nanda et al., "Progress measures for grokking".

Input "a b =" (the "=" token is p), logits read at the last position;
4 heads, ReLU MLP, no LayerNorm, no biases in attention.

114 outputs for p = 113, as the paper's code has: its unembedding has a column for every token, "="
included (d_vocab = p + 1). "=" is never a label, so training only pushes its logit down; keeping it
keeps the paper's init scale and loss. The task's labels stay 0..p-1 (the family's `classes`, p).
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


def outputs(classes: int) -> int:
    """The unembedding's columns: one per answer and one for the "=" token."""
    return classes + 1


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
        self.unembed = nn.Linear(d_model, outputs(p), bias=False)
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
        self.unembed.weight.normal_(0, outputs(self.p) ** -0.5)
        self.mlp_in.bias.zero_()
        self.mlp_out.bias.zero_()

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stream at each of the three positions: token and position embeddings."""
        equals = torch.full_like(x[:, :1], self.p)
        tokens = torch.cat([x, equals], dim=1)
        return self.embed(tokens) + self.pos[: tokens.shape[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits at the last position, the only ones the loss reads. With one layer, the other
        positions feed the last only through their keys and values: their queries, attention outputs,
        MLP and unembedding reach nothing, so they are not computed. The same function and gradients
        as `forward_all_positions(x)[:, -1]` (tests/test_transformer.py) in ~0.4x of its time
        (docs/design.md, "The transformer's last position")."""
        resid = self._residual(x)
        batch, n_ctx, d_model = resid.shape
        w_q, w_kv = self.qkv.weight[:d_model], self.qkv.weight[d_model:]
        q = (resid[:, -1] @ w_q.T).view(batch, self.n_heads, 1, -1)
        k, v = (resid @ w_kv.T).view(batch, n_ctx, 2, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        # The last position attends to every position: the causal mask hides nothing from it. One query
        # against three keys is a product and a sum; as such it runs in half the time of
        # scaled_dot_product_attention on this CPU, backward included.
        pattern = ((q * k).sum(-1, keepdim=True) * q.shape[-1] ** -0.5).softmax(dim=-2)
        attn = (pattern * v).sum(-2)  # (batch, head, d_head)
        last = resid[:, -1] + self.attn_out(attn.reshape(batch, d_model))
        last = last + self.mlp_out(torch.relu(self.mlp_in(last)))
        return self.unembed(last)

    def forward_all_positions(self, x: torch.Tensor) -> torch.Tensor:
        """The logits at every position, as the paper's code computes them (causal attention over all
        three): what `forward` is checked against."""
        resid = self._residual(x)
        batch, n_ctx, _ = resid.shape
        q, k, v = self.qkv(resid).view(batch, n_ctx, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        attn = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.causal[:n_ctx, :n_ctx])
        resid = resid + self.attn_out(attn.transpose(1, 2).reshape(batch, n_ctx, -1))
        resid = resid + self.mlp_out(torch.relu(self.mlp_in(resid)))
        return self.unembed(resid)

    def neuron_inputs(self) -> torch.Tensor:
        return self.embed.weight[: self.p]

    def matrices(self) -> dict[str, torch.Tensor]:
        return {
            "embedding": self.embed.weight[: self.p],
            "mlp in": self.mlp_in.weight.T,
            # The answers' columns: the "=" column only learns to lose (the paper's analysis drops it too).
            "output": self.unembed.weight[: self.p].T,
        }


def _activations(cfg: RunConfig, classes: int) -> Activations:
    d, m, n = cfg.embed_dim, cfg.width, outputs(classes)
    # Per example. Saved for backward: the residual stream and the keys and values at the three positions
    # (3 x 3D); at the last alone the query, the attention output, the residual after it and after the
    # MLP (4D), and the MLP's relu (M); backward adds two M-sized gradients at the MLP. (Measured, p 127
    # at d_model 128 and 512 neurons: 3,196 floats an example; this says 3,590.)
    train = N_CTX * 3 * d + 4 * d + 3 * m + loss_floats(cfg, n, True) + N_CTX * INDEX
    # no_grad: the residuals, keys and values (3 x 3D), a product beside them, then the MLP at the
    # last position beside its input (3D + 2M), then the logits. (Measured as above: 2,603; this: 2,944.)
    forward = max(N_CTX * 4 * d + 3 * d + 2 * m, N_CTX * 3 * d + 2 * d + n, loss_floats(cfg, n, False))
    return Activations(train, forward)


def _parameters(cfg: RunConfig, classes: int) -> int:
    d, m = cfg.embed_dim, cfg.width
    embed = (cfg.p + 1) * d + N_CTX * d  # the tokens with "=", and the positions
    attention = linear(d, 3 * d, bias=False) + linear(d, d, bias=False)
    return embed + attention + linear(d, m) + linear(m, d) + linear(d, outputs(classes), bias=False)


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
