"""Training speed as `grok-tui --headless` trains: the baseline every other mode is a ratio to."""

from __future__ import annotations

import os
from pathlib import Path

from grok_tui.bench.cpu import CpuSampler
from grok_tui.bench.experiment import config_for, run_flags
from grok_tui.bench.rates import WARMUP_S, Rate, rate_from_rows, read_rows


def measure_headless(experiment: str, device: str, seconds: float, workdir: Path) -> Rate:
    """What `grok-tui --headless` runs, stopped from its callback once the window is covered."""
    from grok_tui.headless import format_metrics
    from grok_tui.train import Snapshot, new_run

    run_dir = workdir / f"headless-{device}"
    trainer = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir).build()
    cpu = CpuSampler(os.getpid(), root_label="trainer")
    with open(os.devnull, "w") as sink:

        def on_snapshot(snapshot: Snapshot) -> None:
            # --headless prints one line per evaluation; print them too, so their cost is counted.
            print(format_metrics(snapshot.metrics), file=sink, flush=True)
            elapsed = snapshot.metrics.elapsed_s
            if elapsed >= WARMUP_S:
                cpu.begin()
            if elapsed >= WARMUP_S + seconds:
                cpu.end()
                trainer.control.stop()

        trainer.run(on_snapshot)
    rate = rate_from_rows("headless", read_rows(run_dir), seconds)
    rate.add_cpu(cpu)
    return rate
