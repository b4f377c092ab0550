"""a + b mod 113 with the one-layer transformer of Nanda et al., "Progress measures for grokking via
mechanistic interpretability" (2023), as their code (progress-measures-paper, transformers.py) trains it.

    grok-tui run examples/transformer_nanda.py                  # the monitor over it: ] [ w } { l space c q d
    python examples/transformer_nanda.py --steps 2000           # the same loop on its own
    python examples/transformer_nanda.py --no-monitor           # the bare loop, nothing of grok-tui

Their setting: inputs "a b =" (token p is '='), d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm,
learned positional embeddings, every weight drawn from N(0, 1/d_model) (the unembedding's from N(0, 1/d_vocab)),
full-batch AdamW lr 1e-3, weight decay 1.0 on every parameter, betas (0.9, 0.98), a 10-step linear warm-up
(LambdaLR min(step/10, 1)), 30% of the p² pairs trained on (their split: Python's random.shuffle seeded
with the seed), cross-entropy in float64 on the last position only, 50,000 steps.

114 outputs, as their code: d_vocab = p + 1, and the unembedding has one column per token, '=' included.
'=' is never a label, so training only pushes its logit down; keeping it keeps their init scale
(1/sqrt(d_vocab)) and their loss, so the curves compare with their paper's. (Their analysis drops that
column: logits[..., :-1].)

How long it takes. The paper's run memorizes by ~1.4k steps, builds the Fourier circuit until ~9.4k and
cleans up the memorizing weights until ~13k, when test loss falls and test accuracy reaches ~100%. Here a
step takes ~0.21 s of one CPU core (300 steps with the monitor, evaluating every 10: 64 s of CPU; 2.3 steps/s
of wall clock on a busy shared 2-core box), and the training set is fitted by step ~150 with test accuracy
at chance: ~45 minutes of a free core to the end of cleanup, ~3 hours for all 50,000 steps. This script was
not run to the end here; the same model and setting as grok-tui's `transformer-add` preset (its split and
init seeded otherwise) reached 99% test accuracy at step 8,200, ~18.5 minutes of one core (README, "Nanda
et al.'s transformer"). --device cuda runs it on a GPU (not tried here).

What the panes show: `matrices()` gives the heatmap W_E, W_in, W_out, W_U and the neurons' inputs, and
`neuron_inputs()` the frequencies pane's matrix (the grok_tui.monitor protocol: a model's own methods are
read first). As the circuit forms, each MLP neuron settles on one of a handful of key frequencies.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random

import torch
from torch import nn


class Transformer(nn.Module):
    """One attention layer and one MLP, both adding into the residual stream.

    The weights are named and shaped as in their code (W_E is d_model x d_vocab, W_in d_mlp x d_model),
    so their analysis reads these the same way.
    """

    def __init__(self, p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, n_ctx: int = 3):
        super().__init__()
        d_vocab, d_head = p + 1, d_model // n_heads
        self.p, self.d_head = p, d_head
        # Drawn in their order: after the same torch.manual_seed, the same init.
        self.W_E = nn.Parameter(torch.randn(d_model, d_vocab) / math.sqrt(d_model))
        self.W_pos = nn.Parameter(torch.randn(n_ctx, d_model) / math.sqrt(d_model))
        self.W_K = nn.Parameter(torch.randn(n_heads, d_head, d_model) / math.sqrt(d_model))
        self.W_Q = nn.Parameter(torch.randn(n_heads, d_head, d_model) / math.sqrt(d_model))
        self.W_V = nn.Parameter(torch.randn(n_heads, d_head, d_model) / math.sqrt(d_model))
        self.W_O = nn.Parameter(torch.randn(d_model, n_heads * d_head) / math.sqrt(d_model))
        self.W_in = nn.Parameter(torch.randn(d_mlp, d_model) / math.sqrt(d_model))
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = nn.Parameter(torch.randn(d_model, d_mlp) / math.sqrt(d_model))
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.W_U = nn.Parameter(torch.randn(d_model, d_vocab) / math.sqrt(d_vocab))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The logits at the last position, the only one read. Theirs computes every position and keeps the
        last; with one layer, the MLP and unembedding of the others feed nothing, and skipping them (and
        their queries) gives the same logits and gradients in well under half the time."""
        n_ctx = tokens.shape[1]
        x = self.W_E.T[tokens] + self.W_pos[:n_ctx]  # (batch, pos, d_model)
        q = torch.einsum("ihd,bd->bih", self.W_Q, x[:, -1])
        k = torch.einsum("ihd,bpd->bihp", self.W_K, x)
        v = torch.einsum("ihd,bpd->biph", self.W_V, x)
        # The last position attends to every position: the causal mask hides nothing from it.
        pattern = (torch.einsum("bih,bihp->bip", q, k) / math.sqrt(self.d_head)).softmax(dim=-1)
        z = torch.einsum("bip,biph->bih", pattern, v)  # (batch, head, d_head)
        x = x[:, -1] + z.flatten(1) @ self.W_O.T
        x = x + torch.relu(x @ self.W_in.T + self.b_in) @ self.W_out.T + self.b_out
        return x @ self.W_U

    @torch.no_grad()
    def neuron_inputs(self) -> torch.Tensor:
        """(p, d_mlp): what the token a adds to each MLP neuron's input at the '=' position, where the logits
        are read. a reaches '=' only through attention, so its path is W_E, then every head's OV circuit
        (summed as if each head attended to a alone: the true attention weights rescale each head's term but
        add no frequency the embedding lacks), then W_in."""
        ov = self.W_O @ self.W_V.reshape(-1, self.W_V.shape[-1])  # (d_model, d_model), the heads summed
        return self.W_E[:, : self.p].T @ ov.T @ self.W_in.T

    def matrices(self) -> dict[str, torch.Tensor]:
        return {
            "neuron inputs (W_E OV W_in)": self.neuron_inputs(),
            "W_E (tokens x d_model)": self.W_E[:, : self.p].T,
            "W_in (d_model x neurons)": self.W_in.T,
            "W_out (neurons x d_model)": self.W_out.T,
            "W_U (d_model x outputs)": self.W_U,
        }


def cross_entropy_float64(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # As theirs: in float32 the log-probabilities of confident logits come in steps of ~1.2e-7, and once the
    # train loss is that small (long before grokking ends) the loss and its gradient turn to spikes.
    return -logits.double().log_softmax(dim=-1).gather(-1, labels[:, None]).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--frac", type=float, default=0.3, help="share of the pairs trained on")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--wd", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--run-dir", default=None, help="where grok-tui writes the run (default runs/<time>-...)")
    parser.add_argument("--no-monitor", action="store_true", help="train without grok-tui")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # the monitor draws in a process of its own: leave it a core
    p, device = args.p, torch.device(args.device)
    pairs = [(a, b, p) for a in range(p) for b in range(p)]
    random.Random(args.seed).shuffle(pairs)  # their gen_train_test: random.seed(seed); random.shuffle(pairs)
    n_train = int(args.frac * len(pairs))
    data = torch.tensor(pairs, device=device)
    labels = (data[:, 0] + data[:, 1]) % p
    x_train, y_train, x_test, y_test = data[:n_train], labels[:n_train], data[n_train:], labels[n_train:]

    model = Transformer(p).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd, betas=(0.9, 0.98))
    # As theirs: the lr is 0 at the first step and reaches its value at the 10th.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / 10, 1))
    config = {"p": p, "frac": args.frac, "lr": args.lr, "wd": args.wd, "seed": args.seed, "steps": args.steps}

    if args.no_monitor:
        watching = contextlib.nullcontext(None)
    else:
        import grok_tui

        # scheduler=: the lr keys scale its base lr too, or LambdaLR would put the old lr back at its next step.
        watching = grok_tui.monitor(model, optimizer, scheduler=scheduler, config=config, run_dir=args.run_dir)

    with watching as m:
        for step in range(1, args.steps + 1):
            model.train()
            loss = cross_entropy_float64(model(x_train), y_train)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if step % args.eval_every == 0:
                model.eval()
                with torch.no_grad():
                    out_train, out_test = model(x_train), model(x_test)
                    tl = cross_entropy_float64(out_train, y_train).item()
                    vl = cross_entropy_float64(out_test, y_test).item()
                    ta = (out_train.argmax(-1) == y_train).float().mean().item()
                    va = (out_test.argmax(-1) == y_test).float().mean().item()
                if m is not None:
                    m.log(step, train_loss=tl, train_acc=ta, test_loss=vl, test_acc=va)
                elif step % 500 == 0:
                    print(f"step {step}  train {ta:.1%}  test {va:.1%}  test loss {vl:.3g}", flush=True)
            if m is not None and m.should_stop:
                break


if __name__ == "__main__":
    main()
