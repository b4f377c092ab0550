"""A fixed, deterministic snapshot stream for UI tests: no torch, no clock."""

from __future__ import annotations

import numpy as np

from grok_tui.metrics import neuron_spectrum
from grok_tui.train.snapshot import Event, Metrics, Snapshot


def synthetic_run(steps: int = 3000, every: int = 50, p: int = 31, width: int = 48) -> tuple[list[Metrics], Snapshot]:
    """A run that memorizes by step 100 and generalizes around step 2,000, with one wd change at 1,500."""
    rows = []
    for step in range(0, steps + 1, every):
        wd = 0.3 if step < 1500 else 0.6
        train_acc = min(1.0, 0.03 + step / 100)
        test_acc = 0.03 + 0.95 / (1 + np.exp(-(step - 2000) / 150))
        rows.append(
            Metrics(
                step=step,
                train_loss=4.0 * np.exp(-step / 60) + 1e-4,
                train_acc=train_acc,
                test_loss=4.0 * (1 - test_acc) + 0.01,
                test_acc=float(test_acc),
                param_norm=60 + 30 * np.exp(-(((step - 1200) / 700) ** 2)),
                weight_decay=wd,
                lr=0.01,
                l1=0.0,
                elapsed_s=step / 400,
                steps_per_s=400.0,
                purity=0.1 + 0.8 * float(test_acc),
            )
        )
    n = np.arange(p)[:, None]
    freqs = np.array([3, 5, 7, 11])[np.arange(width) % 4]
    embedding = np.cos(2 * np.pi * freqs * n / p + np.arange(width) * 0.7)
    output = embedding.T[:, ::-1] * 0.5
    snapshot = Snapshot(
        experiment="synthetic",
        device="cpu",
        total_steps=steps,
        metrics=rows[-1],
        paused=False,
        finished=False,
        events=(Event(1500, "weight_decay", 0.3, 0.6),),
        tensor_norms={"embed.weight": 50.0, "unembed.weight": 40.0},
        matrices={"embedding": embedding, "output": output},
        spectrum=neuron_spectrum(embedding),
    )
    return rows, snapshot
