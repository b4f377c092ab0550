"""Omnigrok's teacher-student toy: a fixed random tanh MLP 5-100-100-5 labels Gaussian inputs.

The targets are the teacher's 5-vectors (a regression task: y is float). The teacher is
built from its own seed (`seed + TEACHER_SEED_OFFSET`), so teacher and student differ
even though both use PyTorch's standard init.
"""

from __future__ import annotations

import torch

from grok_tui.tasks.dataset import Dataset

IN_DIM, HIDDEN, OUT_DIM = 5, 100, 5
TEACHER_SEED_OFFSET = 1_000_003


def teacher_net(seed: int) -> torch.nn.Module:
    from grok_tui.models.teacher_mlp import TeacherMLP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + TEACHER_SEED_OFFSET)
        return TeacherMLP(IN_DIM, HIDDEN, OUT_DIM)


@torch.no_grad()
def teacher_dataset(n_train: int, n_test: int, seed: int) -> Dataset:
    teacher = teacher_net(seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, IN_DIM, generator=generator)
    y = teacher(x)
    # n_classes: the output dimension (there are no classes; y is float).
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes=OUT_DIM)
