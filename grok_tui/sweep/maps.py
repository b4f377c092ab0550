"""The seeds' maps as sweeps: `grok-tui sweep --map NAME` (any flag given beside it overrides that list).

Each map names the experiment, its axes and what the seeds say it should show;
the README quotes the diagram measured here, and tests/test_sweep.py (lr-wd:
tests/test_map_lr_wd.py; norm-lu and norm-lu-ts: tests/test_norm_lu.py) checks the same phases, or
the same curves, on a smaller grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SweepMap:
    name: str
    summary: str
    experiment: str
    values: dict[str, list[Any]] = field(default_factory=dict)


MAPS = {
    m.name: m
    for m in (
        SweepMap(
            "wd-frac",
            "mod-add, weight decay x training fraction, 2 seeds, 3,000 steps (40 members): memorization below a "
            "critical fraction, grokking at moderate weight decay (sooner as it grows, ~1/wd), comprehension at "
            "large weight decay and data, confusion at too much weight decay",
            "mod-add",
            {
                "weight_decay": [0.1, 0.3, 1.0, 3.0, 10.0],
                "train_frac": [0.1, 0.2, 0.3, 0.5],
                "seed": [0, 1],
                "steps": [3000],
            },
        ),
        SweepMap(
            "parity-l1-data",
            "PAIR's sparse parity (30 bits, the first 3), L1 weight decay x training sequences, 2 seeds, 3,000 "
            "steps (36 members): no L1 memorizes, a little groks, more generalizes at once (sooner with more "
            "data), too much learns nothing",
            "parity",
            {"l1": [0.0, 1e-5, 3e-5, 1e-4, 1e-3, 1e-2], "n_train": [300, 600, 1200], "seed": [0, 1], "steps": [3000]},
        ),
        SweepMap(
            "init-data",
            "Omnigrok's teacher-student, init scale x training points, 2 seeds, 6,000 steps (30 members): the "
            "standard init generalizes with the fit, a larger one groks, a much larger one only memorizes within "
            "the budget",
            "teacher-student",
            {"init_scale": [0.5, 1.0, 2.0, 3.0, 5.0], "n_train": [50, 100, 400], "seed": [0, 1], "steps": [6000]},
        ),
        SweepMap(
            "lr-wd",
            "Liu et al.'s four phases, mod-add with half the pairs, learning rate x weight decay, 2 seeds, 2,000 "
            "steps (60 members): no weight decay memorizes, too much (or too large a learning rate) learns "
            "nothing, grokking between, comprehension where both are moderate to large",
            "mod-add",
            {
                "lr": [3e-3, 1e-2, 3e-2, 1e-1, 1.0],
                "weight_decay": [0.0, 0.1, 0.3, 1.0, 3.0, 10.0],
                "train_frac": [0.5],
                "seed": [0, 1],
                "steps": [2000],
            },
        ),
        SweepMap(
            "norm-lu",
            "Omnigrok's LU landscape on mod-add: the weight norm held at 10 to 300 (the init's is ~93) after every "
            "step, no weight decay, 2 seeds, 2,000 steps (18 members): train loss L-shaped against the norm (high "
            "below ~45, near zero from 90 up), test loss U-shaped (lowest at 90; memorizes from 135 up)",
            "mod-add",
            {
                "constrain_norm": [10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 135.0, 200.0, 300.0],
                "weight_decay": [0.0],
                "seed": [0, 1],
                "steps": [2000],
            },
        ),
        SweepMap(
            "norm-lu-ts",
            "Omnigrok's LU landscape on its teacher-student toy: the weight norm held at 1 to 50 around the "
            "standard init's ~8.7, no weight decay, 2 seeds, 2,000 steps (20 members): train loss L-shaped (fits "
            "from 4 up), test loss U-shaped with its lowest at 6-8.7, about the standard init's norm",
            "teacher-student",
            {
                "constrain_norm": [1.0, 2.0, 4.0, 6.0, 8.7, 12.0, 17.0, 25.0, 35.0, 50.0],
                "init_scale": [1.0],
                "weight_decay": [0.0],
                "seed": [0, 1],
                "steps": [2000],
            },
        ),
        SweepMap(
            "parity-pair",
            "PAIR's own sparse-parity sweep at its size: 30 bits, the first 3, AdamW (lr 0.003, betas 0.99, 0.98, "
            "no L1), weight decay 0.01-1 x width 16-258 x 750-1,750 training sequences x 9 seeds, 20,000 steps "
            "(1,125 members; hours on a CPU, see the README): too little weight decay memorizes, more groks, more "
            "still generalizes at once, too much learns nothing; fewer sequences or a narrower model, later",
            "parity",
            {
                "weight_decay": [0.01, 0.03, 0.1, 0.3, 1.0],
                "width": [16, 32, 64, 128, 258],
                "n_train": [750, 1000, 1250, 1500, 1750],
                "seed": list(range(9)),
                "steps": [20000],
                "eval_every": [100],
                "lr": [3e-3],
                "beta1": [0.99],
                "beta2": [0.98],
                "l1": [0.0],
                "n_test": [5000],
            },
        ),
    )
}

__all__ = ["MAPS", "SweepMap"]
