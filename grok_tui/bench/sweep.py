"""`python -m grok_tui.bench --sweep`: the sweep engine against the simple way, one run and the machine's ceiling.

All in one run, on one experiment, for each grid in GRIDS (seeds alone; weight decay x training
fraction, whose members differ in data size):

1. the ceiling: the FLOP rate of a large float32 matmul (2048^3 on the CPU, on every core; 8192^3 on
   CUDA), measured, the most this device does;
2. one run: `Trainer` steps per second on one thread, evaluating every eval_every steps as a run does,
   in this process;
3. the contenders, each timed as a whole process from start to exit (python's start, torch's import,
   the members built, trained and, for the engine, written), alternated round by round (and which goes
   first alternated too) so that a busy machine slows both alike:
   - the engine: `grok-tui sweep --headless` on the grid (sweep/engine.py, its workers and all);
   - the simple way: a multiprocessing Pool of single runs, one thread and one member at a time per
     process, as many processes as cores (bench/pool.py), as the seeds' own code sweeps. On CUDA the
     engine alone runs (a Pool of processes sharing one GPU is not the simple way there).

Printed: each contender's member-steps per second (members x steps / the process's wall time, median
over the rounds), the engine's ratio to the Pool in each round (median and range), both against one
run, and their FLOP rate (torch's flop counter over a step and its share of evaluation, per member)
as a share of the ceiling. The members' last train loss and test accuracy are compared across the
contenders and the largest difference printed: a faster engine that trained something else would not
count. It is a benchmark: it prints figures and exits 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROUNDS = 3
STEPS = 400
# 64 members each: seeds alone, and a weight decay x training fraction grid of 4 seeds a cell.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "seeds": {"seed": list(range(64))},
    "wd-frac": {"weight_decay": [0.1, 0.3, 1.0, 3.0], "train_frac": [0.2, 0.3, 0.4, 0.5], "seed": [0, 1, 2, 3]},
}
CUDA_MEMBERS = 256


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


def step_flops(cfg: Any) -> float:
    """The FLOPs of one training step of `cfg` with its share of an evaluation."""
    from torch.utils.flop_counter import FlopCounterMode

    from grok_tui.train.trainer import Trainer

    trainer = Trainer(cfg)
    with FlopCounterMode(display=False) as step:
        trainer.train_step()
    with FlopCounterMode(display=False) as evaluation:
        trainer.evaluate()
    return step.get_total_flops() + evaluation.get_total_flops() / cfg.eval_every


def single_run(experiment: str, device: str, steps: int = STEPS) -> float:
    """One run's steps per second on one thread, evaluating as a run does."""
    import torch

    from grok_tui.config import PRESETS
    from grok_tui.train.trainer import Trainer

    torch.set_num_threads(1)
    cfg = PRESETS[experiment].config(device=device)
    trainer = Trainer(cfg)
    for _ in range(20):
        trainer.train_step()
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        trainer.train_step()
        if (i + 1) % cfg.eval_every == 0:
            trainer.evaluate()
    _sync(device)
    return steps / (time.perf_counter() - start)


@dataclass(frozen=True)
class Timing:
    """One contender's whole process in one round, and what its members ended at (name -> loss, acc)."""

    wall_s: float
    ends: dict[str, tuple[float, float]]


def _timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} … exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return wall, done.stdout


def _flags(values: dict[str, list[Any]]) -> list[str]:
    from grok_tui.config import flag_name

    return [part for field, given in values.items() for part in (flag_name(field), ",".join(map(str, given)))]


def run_engine(experiment: str, values: dict[str, list[Any]], workers: int, root: Path) -> Timing:
    from grok_tui.runlog import read_jsonl
    from grok_tui.sweep.grid import build_grid

    sweep_dir = root / f"engine-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--experiment", experiment]
    wall, _ = _timed([*argv, "--sweep-dir", str(sweep_dir), "--workers", str(workers), *_flags(values)])
    grid = build_grid(experiment, values)
    ends = {}
    for name in grid.names():
        last = read_jsonl(sweep_dir / "members" / name / "metrics.jsonl")[-1]
        ends[name] = (last["train_loss"], last["test_acc"])
    return Timing(wall, ends)


def run_pool(experiment: str, values: dict[str, list[Any]], processes: int) -> Timing:
    argv = [sys.executable, "-m", "grok_tui.bench.pool", experiment, json.dumps(values), str(processes)]
    wall, out = _timed(argv)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return Timing(wall, {row["name"]: (row["train_loss"], row["test_acc"]) for row in rows})


def largest_differences(a: Timing, b: Timing) -> tuple[float, float]:
    """The largest relative difference of the members' last train losses, and absolute of their test
    accuracies, between two contenders (inf if they did not train the same members)."""
    if a.ends.keys() != b.ends.keys():
        return float("inf"), float("inf")
    loss = max(abs(a.ends[n][0] - b.ends[n][0]) / max(abs(b.ends[n][0]), 1e-12) for n in a.ends)
    acc = max(abs(a.ends[n][1] - b.ends[n][1]) for n in a.ends)
    return loss, acc


def ratios(engine: list[Timing], pool: list[Timing]) -> list[float]:
    """The engine's speed over the Pool's in each round (the same work: the inverse ratio of wall times)."""
    return [p.wall_s / e.wall_s for e, p in zip(engine, pool, strict=True)]


def table(
    member_steps: int,
    flops: float,
    one_run: float,
    ceiling: float,
    timings: dict[str, list[Timing]],
) -> list[str]:
    """The grid's rows: member-steps/s (median over rounds), against the Pool round by round, against one
    run, and the FLOP rate as a share of the ceiling."""
    lines = [
        "| contender | member-steps/s | vs the Pool (per round: median, range) | vs one run | GFLOP/s "
        "| of the ceiling |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in timings.items():
        rate = statistics.median(member_steps / t.wall_s for t in runs)
        if "pool" in timings and name != "pool":
            each = ratios(runs, timings["pool"])
            versus = f"{statistics.median(each):.2f}x ({min(each):.2f}-{max(each):.2f})"
        else:
            versus = "1" if name == "pool" else "-"
        lines.append(
            f"| {name} | {rate:,.0f} | {versus} | {rate / one_run:.2f}x | {rate * flops / 1e9:,.1f} | "
            f"{rate * flops / ceiling:.0%} |"
        )
    return lines


def measure_grid(
    experiment: str, device: str, values: dict[str, list[Any]], workers: int, rounds: int, root: Path
) -> dict[str, list[Timing]]:
    timings: dict[str, list[Timing]] = {"engine": []} if device == "cuda" else {"engine": [], "pool": []}
    for i in range(rounds):
        order = list(timings) if i % 2 == 0 else list(reversed(timings))
        for name in order:
            if name == "engine":
                timings[name].append(run_engine(experiment, values, workers, root))
            else:
                timings[name].append(run_pool(experiment, values, workers))
    return timings


def run(experiment: str, device: str, rounds: int = ROUNDS, steps: int = STEPS) -> None:
    from grok_tui.sweep.grid import build_grid

    cores = len(os.sched_getaffinity(0))
    workers = 1 if device == "cuda" else cores
    print(f"# sweeps: {experiment} on {device}, {steps} steps, {rounds} alternated rounds, whole processes")
    ceiling = ceiling_flops(device, cores if device == "cpu" else 1)
    one_run = single_run(experiment, "cpu", steps)
    print(f"ceiling (a large matmul on {cores if device == 'cpu' else 'the GPU'}): {ceiling / 1e9:,.1f} GFLOP/s")
    print(f"one run on the CPU (one thread): {one_run:,.0f} steps/s")
    grids = {"seeds": {"seed": list(range(CUDA_MEMBERS))}} if device == "cuda" else GRIDS
    with tempfile.TemporaryDirectory(prefix="grok-bench-sweep-") as tmp:
        for name, axes in grids.items():
            values = {**axes, "steps": [steps], "device": [device]}
            grid = build_grid(experiment, values)
            members = grid.members
            flops = statistics.mean(step_flops(m.cfg.replace(device="cpu")) for m in _one_per_shape(members))
            timings = measure_grid(experiment, device, values, workers, rounds, Path(tmp))
            print(f"\n## grid {name}: {len(members)} members x {steps} steps, {workers} worker process(es)")
            for line in table(len(members) * steps, flops, one_run, ceiling, timings):
                print(line, flush=True)
            if "pool" in timings:
                loss, acc = largest_differences(timings["engine"][0], timings["pool"][0])
                print(f"members' ends, engine vs Pool: train loss within {loss:.1e} relative, test acc {acc:.1e}")


def _one_per_shape(members: Any) -> list[Any]:
    """A member of each distinct setting but the seed (a step's FLOPs depend on the data size, not the seed)."""
    chosen: dict[tuple[Any, ...], Any] = {}
    for member in members:
        key = tuple(sorted((k, v) for k, v in member.values.items() if k != "seed"))
        chosen.setdefault(key, member)
    return list(chosen.values())


def main(args: Any) -> int:
    for device in args.devices:
        run(args.experiment, device, rounds=args.rounds or ROUNDS)
    return 0
