"""Nanda et al.'s progress measures ("Progress measures for grokking via mechanistic interpretability", 2023)
for a model of a+b mod p: which frequencies its MLP neurons use, and how much of its loss they carry.

All three read the model on every pair (a, b), in the order a * p + b:

- key frequencies: each MLP neuron's activation at the "=" position, centred over the pairs, is split
  into the 2-D Fourier terms of (a, b); a neuron's frequency k is the one whose terms (k in a, in b, or
  in both) hold the largest share of its variance. The key frequencies are those at least `min_share` of
  the neurons take (their code keeps every frequency any neuron takes; a grokked model's neurons sit in a
  handful of clusters, a memorizing one's spread over all).
- restricted loss: the logits projected onto cos(k(a+b)) and sin(k(a+b)) for the key frequencies k alone
  (every output's column of p² values), their mean over the pairs added back (their "bias correction"),
  the loss on all p² pairs. It falls when the Fourier circuit can compute the answer on its own.
- excluded loss: the logits with those components taken out, the loss on the training pairs. It rises
  when the training set is answered through the circuit rather than memorized.

As their code (progress-measures-paper, transformers.py and helpers.py) computes them, except the excluded
loss removes all the key frequencies at once (their code keeps one value per frequency; the paper plots
all at once). In float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from grok_tui.models.transformer import OneLayerTransformer


class Measures(NamedTuple):
    restricted_loss: float
    excluded_loss: float


def key_frequencies(neurons: torch.Tensor, p: int, min_share: float = 0.02) -> tuple[list[int], torch.Tensor]:
    """`neurons` (p², H): each neuron's activation on every pair. The key frequencies, and how many neurons
    take each frequency 0..p//2 (index 0 unused)."""
    centred = (neurons.double() - neurons.double().mean(0)).reshape(p, p, -1)
    power = torch.fft.fft2(centred, dim=(0, 1)).abs().square()  # (p, p, H)
    total = power.sum((0, 1)).clamp_min(torch.finfo(torch.float64).tiny)
    shares = []
    for k in range(1, p // 2 + 1):
        terms = [0, k, p - k]  # frequency k in a, in b, or in both (cos and sin: k and p - k)
        shares.append(power[terms][:, terms].sum((0, 1)) / total)
    best = torch.stack(shares).argmax(0) + 1
    counts = torch.bincount(best, minlength=p // 2 + 1)
    return [k for k in range(1, p // 2 + 1) if counts[k] >= min_share * len(best)], counts


def sum_directions(p: int, keys: list[int]) -> torch.Tensor:
    """(2K, p²): cos(k(a+b)) and sin(k(a+b)) for each key frequency k, unit vectors over the pairs."""
    n = torch.arange(p, dtype=torch.float64)
    angle = (n[:, None] + n[None, :]).flatten() * (2 * math.pi / p)
    rows = [f(k * angle) for k in keys for f in (torch.cos, torch.sin)]
    directions = torch.stack(rows) if rows else torch.zeros(0, p * p, dtype=torch.float64)
    return directions / directions.norm(dim=1, keepdim=True)


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(-logits.log_softmax(-1).gather(-1, labels[:, None]).mean())


def progress_measures(logits: torch.Tensor, p: int, is_train: torch.Tensor, keys: list[int]) -> Measures:
    """`logits` (p², p): the answers' logits on every pair; `is_train` (p²,) marks the training pairs."""
    logits = logits.double()
    n = torch.arange(p)
    labels = (n[:, None] + n[None, :]).flatten() % p
    directions = sum_directions(p, keys)
    keyed = directions.T @ (directions @ logits)  # each output's column, projected onto the key frequencies
    restricted = keyed + (logits - keyed).mean(0, keepdim=True)
    excluded = logits - keyed
    return Measures(_loss(restricted, labels), _loss(excluded[is_train], labels[is_train]))


@torch.no_grad()
def read_model(model: OneLayerTransformer, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-layer transformer's answers' logits (p², p) and its MLP neurons' activations at "=" (p², H),
    on every pair."""
    n = torch.arange(p)
    pairs = torch.stack([n.repeat_interleave(p), n.repeat(p)], dim=1)
    seen: dict[str, torch.Tensor] = {}
    hook = model.mlp_in.register_forward_hook(lambda module, args, out: seen.__setitem__("pre", out))
    try:
        logits = model(pairs)[:, :p]
    finally:
        hook.remove()
    return logits, torch.relu(seen["pre"])


def main(argv: list[str] | None = None) -> None:
    """`python -m grok_tui.models.fourier_measures RUN_DIR CHECKPOINT...`: a transformer-add run's measures at
    each checkpoint (copies of RUN_DIR/checkpoint.pt taken as it trained), one JSON line each; the key
    frequencies are the last checkpoint's."""
    import argparse
    import json
    from pathlib import Path

    from grok_tui.config import RunConfig
    from grok_tui.models import build_model
    from grok_tui.tasks import build_dataset

    parser = argparse.ArgumentParser(prog="python -m grok_tui.models.fourier_measures", description=main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        cfg = RunConfig.from_dict(json.loads((args.run_dir / "config.json").read_text()))
    except (OSError, ValueError, TypeError) as e:
        parser.error(f"{args.run_dir / 'config.json'}: {e}; expected a run directory's config")
    if cfg.model != "transformer" or cfg.task != "modular" or cfg.op != "+":
        parser.error(f"{args.run_dir}: a run of the transformer on a+b mod p, not {cfg.model} on a{cfg.op}b")
    p, data = cfg.p, build_dataset(cfg)
    is_train = torch.zeros(p * p, dtype=torch.bool)
    is_train[data.x_train[:, 0] * p + data.x_train[:, 1]] = True

    def load(path: Path) -> tuple[int, OneLayerTransformer]:
        # A run's own checkpoint: its weights only (weights_only), into the model its config builds.
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            model = build_model(cfg)
            model.load_state_dict(state["model"])
            step = int(state["step"])
        except Exception as e:  # torch raises many kinds for a damaged or foreign file
            parser.error(
                f"{path} is not a checkpoint of this run ({type(e).__name__}); expected copies of {args.run_dir}'s"
            )
        assert isinstance(model, OneLayerTransformer)
        return step, model.eval()

    models = dict(sorted((load(path) for path in args.checkpoints), key=lambda item: item[0]))  # one per step
    steps = list(models)
    keys, counts = key_frequencies(read_model(models[steps[-1]], p)[1], p)
    print(json.dumps({"step": steps[-1], "key_frequencies": {k: int(counts[k]) for k in keys}}))
    n = torch.arange(p)
    labels = (n[:, None] + n[None, :]).flatten() % p
    for step, model in models.items():
        logits = read_model(model, p)[0]
        measures = progress_measures(logits, p, is_train, keys)
        right = logits.argmax(-1) == labels
        row = {
            "step": step,
            "restricted_loss": measures.restricted_loss,
            "excluded_loss": measures.excluded_loss,
            "train_acc": float(right[is_train].double().mean()),
            "test_acc": float(right[~is_train].double().mean()),
        }
        print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()


__all__ = ["Measures", "key_frequencies", "progress_measures", "read_model", "sum_directions"]
