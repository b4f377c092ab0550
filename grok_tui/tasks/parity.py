"""Sparse parity: n random bits, the label is the parity of the first k.

Bits are fed to the model as ±1 so that a bit's value and its sign agree
(the parity of ±1 bits is their product's sign).
"""

from __future__ import annotations

import torch

from grok_tui.tasks.dataset import Dataset


def parity_batch(n: int, n_bits: int, k_bits: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    bits = torch.randint(0, 2, (n, n_bits), generator=generator)
    labels = bits[:, :k_bits].sum(dim=1) % 2
    return bits.float() * 2 - 1, labels


def parity_dataset(n_bits: int, k_bits: int, n_train: int, n_test: int, seed: int) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = parity_batch(n_train, n_bits, k_bits, generator)
    x_test, y_test = parity_batch(n_test, n_bits, k_bits, generator)
    return Dataset(x_train, y_train, x_test, y_test, n_classes=2)
