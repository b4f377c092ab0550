"""a ∘ b mod p over every pair (or the unordered ones), split into train and test by a seeded permutation."""

from __future__ import annotations

import numpy as np
import torch

from grok_tui.tasks.dataset import Dataset


def modular_table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs (a, b) and their labels; for ÷ the pairs with b = 0 are left out."""
    a, b = torch.cartesian_prod(torch.arange(p), torch.arange(p)).unbind(1)
    if op == "/":
        keep = b != 0
        a, b = a[keep], b[keep]
        # Fermat: b^(p-2) is b's inverse for prime p (validated in the config).
        inverse = torch.tensor([pow(int(v), p - 2, p) for v in range(p)])
        y = (a * inverse[b]) % p
    elif op == "+":
        y = (a + b) % p
    elif op == "-":
        y = (a - b) % p
    elif op == "*":
        y = (a * b) % p
    else:
        raise ValueError(f"unknown operation {op!r}")
    return torch.stack([a, b], dim=1), y


def unordered_table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs with a <= b, in the PAIR notebook's order (a, then b); only for + and ×."""
    x, y = modular_table(p, op)
    keep = x[:, 0] <= x[:, 1]
    return x[keep], y[keep]


def modular_dataset(p: int, op: str, train_frac: float, seed: int, pairs: str = "all") -> Dataset:
    if pairs == "unordered":
        # As the PAIR notebook draws it: np.random.seed(seed), np.random.permutation, and the
        # fraction rounded down; so a run with the notebook's seed trains on the notebook's split.
        x, y = unordered_table(p, op)
        order = torch.from_numpy(np.random.RandomState(seed).permutation(len(x)))
        n_train = int(train_frac * len(x))
        train, test = order[:n_train], order[n_train:]
        return Dataset(x[train], y[train], x[test], y[test], n_classes=p)
    x, y = modular_table(p, op)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    n_train = round(train_frac * len(x))
    train, test = order[:n_train], order[n_train:]
    return Dataset(x[train], y[train], x[test], y[test], n_classes=p)
