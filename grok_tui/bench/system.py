"""`python -m grok_tui.bench --system`: what the system line costs the trainer.

The run process samples its own CPU, memory and GPU figures (grok_tui/system.py)
and sends them in its frames; the goal is that this costs training nothing
measurable. Two figures, in one run:
1. one sample's cost (psutil, and NVML where there is a driver), the median of
   many; taken once a second, that is the share of a core it takes;
2. training steps per second with frames going out as a served run sends them
   (runner.py's publish, to no client), with and without the figures, in
   alternating windows of one trainer, so that warm-up and drift fall on both alike.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

WINDOWS = 6  # alternating: with, without, with, ...
SAMPLES = 200


def sample_cost_s() -> float:
    """The median seconds of one sample of this process, every figure read afresh."""
    from grok_tui.system import SystemSampler

    sampler = SystemSampler(os.getpid(), interval=0.0)
    times = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        sampler.sample()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def steps_per_s(experiment: str, device: str, seconds: float, workdir: Path) -> dict[bool, list[float]]:
    """Steps per second in alternating windows of `seconds`, keyed by whether frames carried the figures."""
    from grok_tui.bench.experiment import config_for, run_flags
    from grok_tui.runner import SystemFrames
    from grok_tui.train import Snapshot, new_run
    from grok_tui.train.frames import Batcher

    run_dir = workdir / "system"
    trainer = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir).build()
    plain = Batcher(lambda snapshot, rows: None)
    measured = Batcher(SystemFrames(lambda snapshot, rows: None, trainer.device))
    rates: dict[bool, list[float]] = {True: [], False: []}
    state: dict[str, Any] = {"window": -1, "start": None}  # window -1: warm-up, not counted

    def on_snapshot(snapshot: Snapshot) -> None:
        with_figures = state["window"] % 2 == 0
        (measured if with_figures else plain)(snapshot)
        now = time.perf_counter()
        if state["start"] is None:
            state["start"] = (now, trainer.step)
            return
        began, first_step = state["start"]
        if now - began >= seconds:
            if state["window"] >= 0:
                rates[with_figures].append((trainer.step - first_step) / (now - began))
            state["window"] += 1
            state["start"] = (now, trainer.step)
            if state["window"] >= WINDOWS:
                trainer.control.stop()

    trainer.run(on_snapshot)
    return rates


def main(args: Any) -> int:
    from grok_tui.system import Nvml

    print("# grok-tui benchmark: the system line")
    print(f"experiment {args.experiment}; NVML {'present' if Nvml().present else 'absent (no GPU figures)'}")
    cost = sample_cost_s()
    print(f"one sample: {cost * 1e6:.0f} us; once a second: {cost:.4%} of a core")
    with tempfile.TemporaryDirectory(prefix="grok-bench-") as tmp:
        for device in args.devices:
            rates = steps_per_s(args.experiment, device, max(2.0, args.seconds / WINDOWS), Path(tmp))
            with_, without = statistics.median(rates[True]), statistics.median(rates[False])
            print(
                f"{device}: steps/s with the figures {with_:,.0f}, without {without:,.0f}: "
                f"ratio {with_ / without:.3f} (medians of {len(rates[True])} alternating windows each)"
            )
    return 0
