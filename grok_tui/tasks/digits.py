"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, shipped inside the package: no download).

Omnigrok's MNIST experiment in miniature: a small seeded training subset, the rest as test.
Pixels (0..16) are scaled to [0, 1] and flattened to 64 floats.
"""

from __future__ import annotations

import torch

from grok_tui.tasks.dataset import Dataset

PIXELS = 64  # an image, flattened
DIGIT_CLASSES = 10


def digits_dataset(n_train: int, seed: int) -> Dataset:
    from sklearn.datasets import load_digits  # imported here: only this task needs scikit-learn

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    if not 1 <= n_train < len(y):
        raise ValueError(f"n_train must be from 1 to {len(y) - 1}, got {n_train}")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train, test = perm[:n_train], perm[n_train:]
    return Dataset(x[train], y[train], x[test], y[test], n_classes=DIGIT_CLASSES)
