"""The simple way to sweep, a contender in `bench --sweep`: a multiprocessing Pool of single runs.

`python -m grok_tui.bench.pool EXPERIMENT VALUES_JSON PROCESSES` trains every member of the grid that
`grok-tui sweep` builds from the same value lists, each with the project's own single-run Trainer on
one torch thread, PROCESSES at once, one member after another in each (how the seeds' own code
sweeps); it writes no files, and prints one JSON line per member: its name and its last row's train
loss and test accuracy, so the bench can check that both contenders trained the same members.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from typing import Any


def train(cfg: dict[str, Any]) -> tuple[float, float]:
    """One member as one run: its last row's train loss and test accuracy."""
    import torch

    from grok_tui.config import RunConfig
    from grok_tui.train.trainer import Trainer

    torch.set_num_threads(1)
    metrics = Trainer(RunConfig.from_dict(cfg)).run().metrics
    return metrics.train_loss, metrics.test_acc


def main(argv: list[str]) -> int:
    from grok_tui.sweep.grid import build_grid

    experiment, values, processes = argv[0], json.loads(argv[1]), int(argv[2])
    grid = build_grid(experiment, values)
    with multiprocessing.Pool(processes) as pool:
        results = pool.map(train, [member.cfg.to_dict() for member in grid.members], chunksize=1)
    for name, (loss, acc) in zip(grid.names(), results, strict=True):
        print(json.dumps({"name": name, "train_loss": loss, "test_acc": acc}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
