"""`python -m grok_tui.bench --loop`: what `grok_tui.monitor` costs a training loop of your own.

The goal (README, "Your own training loop"): with nobody attached, and with a monitor attached, the
user's loop keeps >= 0.97 of its bare speed. The workload is examples/mod_add_mlp.py, a plain-PyTorch
script of the default model, which times its own loop from its first step to its last and prints it
(so start-up and the monitor's own start and end stay out of that figure; the whole process's wall
time is shown beside it). Three modes, alternated round by round so that a shared machine's drift
falls on each alike:
- bare: `--no-monitor`, nothing of grok-tui imported;
- monitor: the loop under `grok_tui.monitor`, serving its channel, nobody attached;
- attached: the same with a client of the run's channel in this process from the moment the run
  serves (before its first step), taking every frame as `grok-tui attach` does. The screen that
  would draw them is another process, whose cost the main benchmark measures.
Each ratio is a round's mode over the same round's bare run; the median over rounds is printed, with
its range, and beside it the ratio of the modes' median rates. Whole processes of one thread differ
from run to run by up to ±10% on a 2-core box: read the goal against the range, not one round.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mod_add_mlp.py"
STEPS = 3000
ROUNDS = 7
MODES = ("bare", "monitor", "attached")
GOAL = 0.97
_LOOP_LINE = re.compile(r"^the loop: (\d+) steps in ([0-9.]+) s", re.MULTILINE)


class LoopBenchError(Exception):
    """A run of the example that did not finish as it should: one line saying why."""


@dataclass(frozen=True)
class Timing:
    steps_per_s: float  # the loop's own
    wall_s: float  # the whole process, start to exit
    frames: int  # frames the attached client took (0 where none was attached)


class _Client(threading.Thread):
    """Attaches to the run as soon as it serves and takes every frame until the run says goodbye."""

    def __init__(self, run_dir: Path, process: subprocess.Popen[str]):
        super().__init__(name="bench-loop-client", daemon=True)
        self.run_dir, self.process = run_dir, process
        self.frames = 0

    def run(self) -> None:
        from grok_tui.train.channel import ChannelError, Client, is_served
        from grok_tui.train.messages import Bye, Frame

        while not is_served(self.run_dir):
            if self.process.poll() is not None:
                return
            time.sleep(0.002)
        try:
            client = Client.connect(self.run_dir)
        except ChannelError:
            return
        with client:
            while True:
                try:
                    message = client.receive(timeout=1.0)
                except (EOFError, OSError):
                    return
                if isinstance(message, Frame):
                    self.frames += 1
                elif isinstance(message, Bye):
                    return


def run_once(mode: str, run_dir: Path) -> Timing:
    argv = [sys.executable, str(EXAMPLE), "--steps", str(STEPS), "--run-dir", str(run_dir)]
    if mode == "bare":
        argv.append("--no-monitor")
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = _Client(run_dir, process) if mode == "attached" else None
    if client is not None:
        client.start()
    out, err = process.communicate(timeout=900)
    wall = time.perf_counter() - began
    if client is not None:
        client.join(timeout=10)
    found = _LOOP_LINE.search(out)
    if process.returncode != 0 or found is None:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise LoopBenchError(f"{EXAMPLE.name} ({mode}) exited {process.returncode}: {last}")
    steps, seconds = int(found.group(1)), float(found.group(2))
    return Timing(steps / seconds, wall, client.frames if client is not None else 0)


def measure(workdir: Path, rounds: int = ROUNDS) -> dict[str, list[Timing]]:
    timings: dict[str, list[Timing]] = {mode: [] for mode in MODES}
    for index in range(rounds):
        # Each round starts with another mode, so no mode always follows the same one.
        order = MODES[index % len(MODES) :] + MODES[: index % len(MODES)]
        for mode in order:
            timings[mode].append(run_once(mode, workdir / f"{mode}-{index}"))
            print(f"  round {index + 1}/{rounds} {mode}: {timings[mode][-1].steps_per_s:.0f} steps/s", flush=True)
    return timings


def report(timings: dict[str, list[Timing]]) -> list[str]:
    bare = timings["bare"]
    lines = [
        f"The user's own loop ({EXAMPLE.name}, {STEPS} steps, one thread), {len(bare)} alternated rounds:",
        f"  {'mode':<10} {'loop steps/s':>13} {'loop ratio':>11} {'range':>12} {'of medians':>11} "
        f"{'process s':>10} {'ratio':>6}",
    ]
    bare_rate = statistics.median(run.steps_per_s for run in bare)
    for mode in MODES:
        runs = timings[mode]
        ratios = [run.steps_per_s / base.steps_per_s for run, base in zip(runs, bare, strict=True)]
        walls = [run.wall_s / base.wall_s for run, base in zip(runs, bare, strict=True)]
        rate = statistics.median(run.steps_per_s for run in runs)
        wall = statistics.median(run.wall_s for run in runs)
        lines.append(
            f"  {mode:<10} {rate:>13.0f} {statistics.median(ratios):>11.3f} "
            f"{min(ratios):>5.3f}-{max(ratios):.3f} {rate / bare_rate:>11.3f} {wall:>10.2f} "
            f"{1 / statistics.median(walls):>6.3f}"
        )
    frames = statistics.median(run.frames for run in timings["attached"])
    lines.append(f"  (attached: {frames:.0f} frames taken per run; process ratio = bare wall time / mode's)")
    for mode in ("monitor", "attached"):
        ratio = statistics.median(
            run.steps_per_s / base.steps_per_s for run, base in zip(timings[mode], bare, strict=True)
        )
        verdict = "meets" if ratio >= GOAL else "misses"
        lines.append(f"  {mode}: the loop keeps {ratio:.3f} of its bare speed: {verdict} the goal of {GOAL}")
    return lines


def main(args: Any) -> int:
    if not EXAMPLE.exists():
        print(
            f"python -m grok_tui.bench: error: --loop runs {EXAMPLE} from a checkout of grok-tui; it is not there",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="grok-tui-bench-loop-") as workdir:
        try:
            timings = measure(Path(workdir), args.rounds or ROUNDS)
        except LoopBenchError as e:
            print(f"python -m grok_tui.bench: error: {e}", file=sys.stderr)
            return 1
    print("\n".join(report(timings)))
    return 0
