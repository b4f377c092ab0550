"""`python -m grok_tui.bench --sweep`: what batching buys a sweep, against one run and the machine's ceiling.

All in one run, on one experiment and device:
1. the ceiling: the FLOP rate of a large matmul (2048^3 on the CPU with one
   thread per worker; 8192^3 on CUDA), the most this device does;
2. one run: `Trainer` steps per second with one thread, evaluating every
   eval_every steps as a run does, and the FLOPs one step costs (counted by
   torch.utils.flop_counter over a step and its share of an evaluation);
3. the batched engine (sweep/engine.py, the worker processes and all) on
   N = 1, 8, 64, 256 members differing in seed: model-steps per second, from
   the members' own training clocks (the rows' elapsed_s, so process start-up
   is left out), as a ratio to the single run, and the FLOP rate it reaches as
   a share of the ceiling. Memory per member is the estimate the sweep's own
   check uses (train/memory.py member_bytes).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = (1, 8, 64, 256)
# Training seconds per batch size (roughly: steps are chosen from the single run's rate).
TARGET_S = 12.0


def ceiling_flops(device: str, threads: int) -> float:
    import torch

    n = 8192 if device == "cuda" else 2048
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    start, reps = time.perf_counter(), 3 if device == "cuda" else 5
    for _ in range(reps):
        a @ b
    _sync(device)
    return reps * 2 * n**3 / (time.perf_counter() - start)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def single_run(experiment: str, device: str, steps: int = 400) -> tuple[float, float]:
    """One run's steps per second (one thread) and the FLOPs of one step with its share of evaluation."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from grok_tui.config import PRESETS
    from grok_tui.train.trainer import Trainer

    torch.set_num_threads(1)
    cfg = PRESETS[experiment].config(device=device)
    trainer = Trainer(cfg)
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step()
    step_flops = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.evaluate()
    flops = step_flops + counter.get_total_flops() / cfg.eval_every
    for _ in range(20):
        trainer.train_step()
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        trainer.train_step()
        if (i + 1) % cfg.eval_every == 0:
            trainer.evaluate()
    _sync(device)
    return steps / (time.perf_counter() - start), flops


def batched(experiment: str, device: str, n: int, steps: int, workers: int, root: Path) -> tuple[float, int]:
    """The engine's model-steps per second on n members, and the memory estimate per member."""
    from grok_tui.runlog import read_jsonl
    from grok_tui.sweep.engine import Driver
    from grok_tui.sweep.phases import PhaseRule
    from grok_tui.sweep.store import create_sweep
    from grok_tui.train.memory import member_bytes

    given: dict[str, list[Any]] = {"seed": list(range(n)), "steps": [steps], "device": [device]}
    info = create_sweep(root / f"n{n}", experiment, given, PhaseRule(), workers)
    Driver(info, out=io.StringIO()).run()
    clocks = [read_jsonl(info.member_dir(m) / "metrics.jsonl")[-1]["elapsed_s"] for m in info.grid.members]
    return n * steps / max(clocks), member_bytes(info.grid.members[0].cfg)


def run(experiment: str, device: str, sizes: tuple[int, ...] = SIZES) -> None:
    from grok_tui.train.memory import human_size

    workers = 1 if device == "cuda" else len(os.sched_getaffinity(0))
    print(f"# batched sweeps: {experiment} on {device}, {workers} worker process(es), one torch thread each")
    ceiling = ceiling_flops(device, workers)
    rate, flops = single_run(experiment, device)
    print(f"ceiling (a large matmul, {workers} thread(s)): {ceiling / 1e9:,.1f} GFLOP/s")
    print(
        f"one run: {rate:,.0f} steps/s, {flops / 1e6:,.1f} MFLOP a step (with its share of evaluation): "
        f"{rate * flops / 1e9:,.1f} GFLOP/s, {rate * flops / ceiling:.0%} of the ceiling"
    )
    print("\n| members | model-steps/s | vs one run | GFLOP/s | of the ceiling | memory a member |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="grok-bench-sweep-") as tmp:
        for n in sizes:
            steps = max(30, round(TARGET_S * rate * workers / n / 10) * 10)
            started = time.perf_counter()
            model_rate, per_member = batched(experiment, device, n, steps, workers, Path(tmp))
            wall = time.perf_counter() - started
            print(
                f"| {n} | {model_rate:,.0f} | {model_rate / rate:.2f}x | {model_rate * flops / 1e9:,.1f} | "
                f"{model_rate * flops / ceiling:.0%} | {human_size(per_member)} |  ({steps} steps, {wall:.0f} s wall)",
                flush=True,
            )


def main(args: Any) -> int:
    for device in args.devices:
        run(args.experiment, device)
    return 0
