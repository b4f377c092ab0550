"""`python -m grok_tui.bench`: what the monitor costs the training loop, and what each pane costs.

Why: the monitor shares the machine with the training loop. DESIGN.md ("Data
flow") measured that a loop in a thread of the UI process runs at 0.45-0.55 of
its bare speed, because every millisecond of Python spent rendering holds the
GIL; so the loop runs in a child process and the UI draws the newest frame, each
pane at its own pace (grok_tui/ui/pacing.py). The goals: training with the monitor
open runs at >= 0.97 of `grok-tui --headless`; the UI takes at most a quarter of a
core; at 120x40 it writes at most 50 KB/s to the terminal while training and under
1 KB/s paused or finished. This prints the figures to check them:

1. Training steps/s, in one run, on the same experiment and device:
   - headless: the trainer built exactly as `grok-tui --headless` builds it
     (new_run(cfg, run_dir).build(), then trainer.run(callback)), in this process;
   - monitor (tmux WxH): the real app in a real terminal (a detached tmux session
     of each size in --sizes), under `script`, which keeps every byte the app
     writes to its terminal; quit with `q` as a user would;
   - monitor (run_test): the same app under Textual's headless driver, in this
     process, which is what CI-like machines without a terminal run (it
     composes every frame but skips writing the escape sequences out).
   Each rate comes from the run directory's metrics rows over the same window
   of training time, [WARMUP_S, WARMUP_S + seconds], so start-up (imports, the
   child process, the first evaluations) is left out of every mode alike. Over
   the same window the CPU time of each process is read from /proc: with the
   loop in its own process, the question is whether the UI leaves it a core.
2. Bytes per second written to the terminal (what an SSH link must carry), at
   each size: over the same training window; then paused (space), and in a
   second, short run once it has finished, over IDLE_WINDOW_S after
   IDLE_SETTLE_S. Colour is 24-bit (COLORTERM=truecolor), the dearest kind.
3. Milliseconds per frame of each pane: a realistic snapshot stream (the
   experiment trained for ~2,000 steps) is fed, one new snapshot per frame, to
   the app under run_test; each pane's `show()` is timed together with the
   rendering it triggers (the panes' widgets cache their render until new data
   arrives, so the work is forced the way Textual's compositor would do it).
   This runs in a fresh process, so that its heap (and so the cost of Python's
   garbage collector, shown on a row of its own) is the app's, not this one's.
   Each pane's time at the rate it is drawn (grok_tui/ui/pacing.py) sums to the
   share of one core the panes take; the tmux rows measure the whole UI process.

It is a benchmark, not a test: it prints figures and exits 0 (2 on a bad flag).
Heavy imports (torch, textual) stay inside functions: the child processes are
started with "spawn", which re-imports this module.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib.metadata
import multiprocessing as mp
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

PROG = "python -m grok_tui.bench"
# Start-up is not what we measure: the first second of training time is dropped in every mode.
WARMUP_S = 1.0
# How often the harness looks at metrics.jsonl (the trainer flushes it every 0.5 s).
POLL_S = 0.25
# Generous limits, so that a broken app is reported instead of hanging the benchmark.
START_TIMEOUT_S = 60.0
QUIT_TIMEOUT_S = 20.0
# The pane benchmark's snapshot stream and how many consecutive frames are timed.
PANE_TRAIN_STEPS = 2000
PANE_TRAIN_MAX_S = 30.0
PANE_FRAMES = 50
GOAL_RATIO = 0.97
# Bytes written while paused or finished: counted over IDLE_WINDOW_S, once the last frame has reached
# every pane (the slowest redraws every `inspection` seconds) and IDLE_SETTLE_S more have passed.
# The finished run trains FINISHED_STEPS steps.
IDLE_SETTLE_S = 0.5
IDLE_WINDOW_S = 3.0
FINISHED_STEPS = 200
DEFAULT_SIZES = ((80, 24), (120, 40), (200, 60))
# Above this much CPU used by processes not ours, a window's figure is not comparable.
OTHERS_WARN_CORES = 0.25
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# ---- flags -------------------------------------------------------------------------------


class UsageError(Exception):
    """One line for the user; main prints it and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a number of seconds > 0 and < 3600")
    return value


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or int(width) < 40 or int(height) < 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected WIDTHxHEIGHT, at least 40x12, e.g. 160x48")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    from grok_tui.config import DEFAULT_EXPERIMENT

    parser = _Parser(
        prog=PROG, description="Measure what the monitor costs the training loop, and what each pane costs."
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        metavar="NAME",
        help=f"preset to train (default {DEFAULT_EXPERIMENT})",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("auto", "cpu", "cuda"),
        help="cpu (default); auto or cuda also measure on CUDA when torch sees it",
    )
    parser.add_argument(
        "--seconds",
        type=_positive_seconds,
        default=15.0,
        metavar="N",
        help=f"seconds of training per measurement, after a {WARMUP_S:g} s warm-up (default 15)",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=(160, 48),
        metavar="WxH",
        help="terminal size in cells for the run_test and per-pane figures (default 160x48)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        metavar="WxH,...",
        help="terminal sizes for the runs in a real terminal (default 80x24,120x40,200x60)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="measure batched sweeps instead (grok_tui/bench_sweep.py): N = 1, 8, 64, 256 members against one run",
    )
    parser.add_argument(
        "--system",
        action="store_true",
        help="measure what the system line costs the trainer instead (grok_tui/bench_system.py)",
    )
    parser.add_argument(
        "--refresh",
        type=_refresh,
        default=None,
        metavar="SECONDS",
        help="the monitor's --refresh (default: the monitor's own default)",
    )
    return parser


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(_size(part) for part in text.split(","))


def _refresh(text: str) -> float:
    from grok_tui.ui.pacing import parse_refresh

    try:
        return parse_refresh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    from grok_tui.config import PRESETS

    args = build_parser().parse_args(argv)
    if args.experiment not in PRESETS:
        raise UsageError(
            f"--experiment: {args.experiment!r} is not an experiment; expected one of {', '.join(PRESETS)}"
        )
    args.devices = devices_for(args.device)
    return args


def devices_for(name: str) -> list[str]:
    """cpu always; CUDA as well where it was asked for (auto, cuda) and torch sees it."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: CUDA was asked for but torch sees no CUDA device; use --device cpu or auto")
    return ["cpu", "cuda"] if name != "cpu" and torch.cuda.is_available() else ["cpu"]


# ---- CPU time per process, from /proc ---------------------------------------------------------


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command line), for every process we can read."""
    table = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmdline)
    return table


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, ours or not)."""
    # The first line of /proc/stat: user nice system idle iowait irq softirq steal ... (in ticks).
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    busy = sum(ticks[0:3]) + sum(ticks[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds of a process tree, split into the training child and everything else (the UI).

    The trainer is the run's own process (`python -m grok_tui.runner`, which the monitor starts;
    a multiprocessing "spawn" child in older versions); a resource tracker is left out;
    `script`, which copies the app's output into the typescript, is "pty".
    `extra` names single processes counted on their own (the tmux server). "others" is
    the rest of the machine: on a shared 2-core box a test suite running beside the
    benchmark takes a core from someone, and the figures mean little without knowing it.
    """

    def __init__(self, root: int, root_label: str = "ui", extra: dict[str, int] | None = None):
        self.root, self.root_label, self.extra = root, root_label, extra or {}
        self.available = Path("/proc/self/stat").exists()
        self.start: tuple[float, dict[str, float]] | None = None
        self.cores: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        totals = {self.root_label: 0.0}
        stack = [self.root]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, []))
            if pid not in table:
                continue
            _, cpu, cmdline = table[pid]
            if "resource_tracker" in cmdline:
                continue
            trainer = "grok_tui.runner" in cmdline or "spawn_main" in cmdline
            label = "trainer" if trainer else "pty" if cmdline.startswith("script ") else self.root_label
            totals[label] = totals.get(label, 0.0) + cpu
        for label, pid in self.extra.items():
            totals[label] = table[pid][1] if pid in table else 0.0
        totals["others"] = _machine_busy_s() - sum(totals.values())
        return totals

    def begin(self) -> None:
        if self.available and self.start is None:
            self.start = (time.monotonic(), self.sample())

    def end(self) -> None:
        if self.available and self.start is not None and not self.cores:
            wall = time.monotonic() - self.start[0]
            if wall > 0:
                now = self.sample()
                before = self.start[1]
                self.cores = {label: max(0.0, now.get(label, 0.0) - cpu) / wall for label, cpu in before.items()}

    def describe(self) -> str:
        if not self.cores:
            return ""
        return "cores: " + ", ".join(f"{label} {value:.2f}" for label, value in self.cores.items())


# ---- steps/s from metrics rows ---------------------------------------------------------------


@dataclass
class Rate:
    mode: str
    steps_per_s: float | None = None
    steps: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    cores: dict[str, float] = field(default_factory=dict)  # CPU use over the window, by process
    size: tuple[int, int] | None = None  # the terminal's, for a run in a real terminal
    bytes_per_s: dict[str, float | None] = field(default_factory=dict)  # "training", "paused", "finished"
    idle_cores: dict[str, float] = field(default_factory=dict)  # CPU use while paused, by process

    def add_cpu(self, cpu: CpuSampler) -> None:
        self.cores = cpu.cores
        self.notes.append(cpu.describe())


def rate_from_rows(mode: str, rows: list[dict[str, Any]], seconds: float) -> Rate:
    """Steps per second of training time between the first row at or after the warm-up
    and the last row inside the window; `elapsed_s` counts training time only."""
    window = [
        r
        for r in rows
        if isinstance(r.get("elapsed_s"), (int, float)) and WARMUP_S <= r["elapsed_s"] <= WARMUP_S + seconds
    ]
    if len(window) < 2 or window[-1]["elapsed_s"] <= window[0]["elapsed_s"]:
        return Rate(mode, notes=[f"too few metrics rows in the window ({len(window)})"])
    steps = window[-1]["step"] - window[0]["step"]
    span = window[-1]["elapsed_s"] - window[0]["elapsed_s"]
    return Rate(mode, steps / span, steps, span)


def run_flags(experiment: str, device: str, run_dir: Path) -> list[str]:
    """The same flags for every mode, so that all of them train the same configuration."""
    return ["--experiment", experiment, "--run-dir", str(run_dir), "--steps", "10000000", "--device", device]


def config_for(flags: list[str]):
    """The RunConfig the CLI would build from `flags`."""
    from grok_tui.cli import build_parser as cli_parser
    from grok_tui.cli import config_from_args

    return config_from_args(cli_parser().parse_args(flags))


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    from grok_tui.runlog import read_jsonl

    return read_jsonl(run_dir / "metrics.jsonl")


class WindowError(Exception):
    """The run never covered the window; the reason in one line."""


class ByteCounter:
    """Bytes written to a terminal over a window, read from the typescript `script -f` keeps of it."""

    def __init__(self, typescript: Path):
        self.typescript = typescript
        self.start: tuple[float, int] | None = None
        self.per_s: float | None = None

    def _size(self) -> int:
        return self.typescript.stat().st_size if self.typescript.exists() else 0

    def begin(self) -> None:
        if self.start is None:
            self.start = (time.monotonic(), self._size())

    def end(self) -> None:
        if self.start is not None and self.per_s is None:
            wall = time.monotonic() - self.start[0]
            self.per_s = (self._size() - self.start[1]) / wall if wall > 0 else None


class WindowWatch:
    """Follows a run directory's metrics.jsonl until it has recorded the window's training
    time; each sampler (CPU time, bytes) begins when the window opens and ends when it closes."""

    def __init__(self, run_dir: Path, seconds: float, *samplers: CpuSampler | ByteCounter):
        from grok_tui.runlog import JsonlFollower

        self._follower = JsonlFollower(run_dir / "metrics.jsonl")
        self.target = WARMUP_S + seconds
        self.samplers = samplers
        self.elapsed_s: float | None = None
        self.started = time.monotonic()
        self.deadline: float | None = None

    def done(self) -> bool:
        for row in self._follower.poll():
            if isinstance(row.get("elapsed_s"), (int, float)):
                self.elapsed_s = row["elapsed_s"]
        now = time.monotonic()
        if self.elapsed_s is None:
            if now - self.started > START_TIMEOUT_S:
                raise WindowError(f"no metrics after {START_TIMEOUT_S:.0f} s")
            return False
        if self.deadline is None:
            # Training may be slower under the monitor, but never this much slower.
            self.deadline = now + 4 * self.target + 10
        if self.elapsed_s >= WARMUP_S:
            for sampler in self.samplers:
                sampler.begin()
        if self.elapsed_s >= self.target:
            for sampler in self.samplers:
                sampler.end()
            return True
        if now > self.deadline:
            raise WindowError(f"only {self.elapsed_s:.1f} s of training recorded by the deadline")
        return False


# ---- 1a. headless ----------------------------------------------------------------------------


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


# ---- 1b. the app in a real terminal (tmux) ------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket, in the benchmark's temporary directory, so it goes
    with it), so that nothing of the user's tmux is touched."""

    def __init__(self, workdir: Path):
        self.conf = workdir / "tmux.conf"
        # remain-on-exit: a crashed app leaves its screen and exit status to read.
        # status off: the status line would take one of the terminal's rows.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\nset -g default-terminal tmux-256color\n")
        self.base = ["tmux", "-S", str(workdir / "tmux.sock"), "-f", str(self.conf)]

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def show(self, target: str, fmt: str) -> str:
        return self("display-message", "-p", "-t", target, fmt).strip()

    def pane_exit(self, target: str) -> int | None:
        """The app's exit status once it has ended, else None."""
        dead, _, status = self.show(target, "#{pane_dead} #{pane_dead_status}").partition(" ")
        return int(status or 0) if dead == "1" else None

    def screen_tail(self, target: str, lines: int = 3) -> str:
        text = [line.strip() for line in self("capture-pane", "-p", "-t", target, check=False).splitlines()]
        return " | ".join([line for line in text if line][-lines:])

    def kill_server(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True, timeout=10)


def app_command() -> list[str]:
    """`grok-tui` from this interpreter's environment (python -m grok_tui where the script is missing)."""
    script = Path(sys.executable).with_name("grok-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "grok_tui"]


class Terminal:
    """The app in a detached tmux session of a given size, under `script`, which keeps a typescript
    of every byte the app writes to its terminal (what an SSH link would carry)."""

    def __init__(self, workdir: Path, name: str, size: tuple[int, int], app_flags: list[str], refresh: float | None):
        self.tmux, self.target = Tmux(workdir), "bench"
        self.cadence = cadence(refresh)
        self.typescript = workdir / f"{name}.typescript"
        app = shlex.join(app_command() + app_flags + (["--refresh", f"{refresh:g}"] if refresh else []))
        # -e: the session ends with the app's exit status; -f: every write reaches the file at once.
        self.command = shlex.join(["script", "-q", "-f", "-e", "-c", app, str(self.typescript)])
        self.size = size

    def __enter__(self) -> Terminal:
        width, height = self.size
        # COLORTERM: a modern terminal takes 24-bit colour, the dearer escape sequences.
        self.tmux(
            "new-session",
            "-d",
            "-s",
            self.target,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(PROJECT_ROOT),
            "-e",
            "COLORTERM=truecolor",
            self.command,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.tmux.kill_server()

    def cpu(self) -> CpuSampler:
        return CpuSampler(
            int(self.tmux.show(self.target, "#{pane_pid}")), extra={"tmux": int(self.tmux.show(self.target, "#{pid}"))}
        )

    def ended(self) -> int | None:
        return self.tmux.pane_exit(self.target)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.target, *keys)

    def screen_tail(self) -> str:
        return self.tmux.screen_tail(self.target)

    def real_size(self) -> str:
        return self.tmux.show(self.target, "#{pane_width}x#{pane_height}")

    def quit(self) -> int | None:
        self.keys("q")
        return wait_for_exit(self.ended)

    def idle(self) -> tuple[float | None, dict[str, float]]:
        """Bytes per second and CPU cores over IDLE_WINDOW_S, once the last frame is on the screen."""
        time.sleep(self.cadence.inspection + IDLE_SETTLE_S)
        counter, cpu = ByteCounter(self.typescript), self.cpu()
        counter.begin()
        cpu.begin()
        time.sleep(IDLE_WINDOW_S)
        counter.end()
        cpu.end()
        return counter.per_s, cpu.cores


def cadence(refresh: float | None):
    """The monitor's redraw intervals for a --refresh (None: its default)."""
    from grok_tui.ui.pacing import Cadence

    return Cadence.for_refresh(refresh) if refresh else Cadence.for_refresh()


def measure_tmux(
    experiment: str, device: str, seconds: float, size: tuple[int, int], workdir: Path, refresh: float | None = None
) -> Rate:
    """Training speed, CPU and bytes to the terminal over the window; then bytes and CPU while paused."""
    mode = f"monitor (tmux {size[0]}x{size[1]})"
    if shutil.which("tmux") is None or shutil.which("script") is None:
        return Rate(mode, size=size, notes=["skipped: tmux or script is not installed"])
    name = f"tmux-{device}-{size[0]}x{size[1]}"
    run_dir = workdir / name
    with Terminal(workdir, name, size, run_flags(experiment, device, run_dir), refresh) as term:
        cpu, counter = term.cpu(), ByteCounter(term.typescript)
        watch = WindowWatch(run_dir, seconds, cpu, counter)
        try:
            while not watch.done():
                if term.ended() is not None:
                    raise WindowError("the app ended before the window was covered")
                time.sleep(POLL_S)
        except WindowError as e:
            return Rate(mode, size=size, notes=[f"{e}; screen: {term.screen_tail()}"])
        real_size = term.real_size()
        term.keys("space")
        paused, idle_cores = term.idle()
        code = term.quit()
    rate = rate_from_rows(mode, read_rows(run_dir), seconds)
    rate.size, rate.idle_cores = size, idle_cores
    rate.bytes_per_s = {"training": counter.per_s, "paused": paused}
    rate.notes.append(f"{real_size} terminal")
    rate.add_cpu(cpu)
    if code != 0:
        rate.notes.append("the app did not quit on q" if code is None else f"app exit status {code}")
    return rate


def measure_finished(
    experiment: str, device: str, size: tuple[int, int], workdir: Path, refresh: float | None = None
) -> float | None:
    """Bytes per second to the terminal once a short run has finished (its last frame shown)."""
    if shutil.which("tmux") is None or shutil.which("script") is None:
        return None
    name = f"finished-{device}-{size[0]}x{size[1]}"
    run_dir = workdir / name
    flags = run_flags(experiment, device, run_dir) + ["--steps", str(FINISHED_STEPS)]
    with Terminal(workdir, name, size, flags, refresh) as term:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (
            not (run_dir / "metrics.jsonl").exists()
            or max((r.get("step", 0) for r in read_rows(run_dir)), default=0) < FINISHED_STEPS
        ):
            if time.monotonic() > deadline or term.ended() is not None:
                raise WindowError(f"the run did not finish; screen: {term.screen_tail()}")
            time.sleep(POLL_S)
        finished, _ = term.idle()
        term.quit()
    return finished


def wait_for_exit(exit_code: Callable[[], int | None]) -> int | None:
    deadline = time.monotonic() + QUIT_TIMEOUT_S
    while time.monotonic() < deadline:
        code = exit_code()
        if code is not None:
            return code
        time.sleep(POLL_S)
    return None


# ---- 1c. the app under Textual's headless driver (run_test) ------------------------------------------


def measure_run_test(
    experiment: str, device: str, seconds: float, size: tuple[int, int], workdir: Path, refresh: float | None = None
) -> Rate:
    from grok_tui.sources.attached import AttachedRun
    from grok_tui.train import new_run
    from grok_tui.ui.app import GrokApp
    from grok_tui.ui.pacing import DEFAULT_REFRESH_S

    mode = "monitor (run_test)"
    run_dir = workdir / f"run-test-{device}"
    spec = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir)
    cpu = CpuSampler(os.getpid())  # the UI is this process; the trainer, its spawned child

    async def drive() -> None:
        app = GrokApp(AttachedRun.start(spec), refresh=refresh or DEFAULT_REFRESH_S)
        async with app.run_test(size=size) as pilot:
            watch = WindowWatch(run_dir, seconds, cpu)
            while not watch.done():
                await asyncio.sleep(POLL_S)  # the app runs on this loop while we wait
            await pilot.press("q")
            await pilot.pause()

    try:
        asyncio.run(drive())
    except WindowError as e:
        return Rate(mode, notes=[str(e)])
    rate = rate_from_rows(mode, read_rows(run_dir), seconds)
    rate.add_cpu(cpu)
    return rate


# ---- 2. milliseconds per frame of each pane -------------------------------------------------------------


def collect_snapshots(experiment: str) -> list:
    """Train the experiment for ~PANE_TRAIN_STEPS steps, keeping every snapshot."""
    from grok_tui.train import Trainer

    cfg = config_for(run_flags(experiment, "cpu", Path("unused")))
    trainer = Trainer(cfg, run_dir=None)
    snapshots: list = []
    started = time.monotonic()

    def keep(snapshot) -> None:
        # The trainer's matrices are views of its live weights (a child process would pickle them):
        # copies, or every kept snapshot would show the last weights and no frame would redraw them.
        snapshots.append(dataclasses.replace(snapshot, matrices={k: v.copy() for k, v in snapshot.matrices.items()}))
        enough = snapshot.metrics.step >= PANE_TRAIN_STEPS and len(snapshots) > PANE_FRAMES
        if enough or time.monotonic() - started > PANE_TRAIN_MAX_S:
            trainer.control.stop()

    trainer.run(keep)
    # A stop between two evaluations repeats the last step; one snapshot per step is enough.
    unique = {s.metrics.step: s for s in snapshots}
    return [unique[step] for step in sorted(unique)]


class GcClock:
    """Seconds spent in Python's garbage collector so far (gc.callbacks brackets each collection)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


def render_now(widget) -> None:
    """Do the rendering that `show()` scheduled, as the compositor would: every line of the
    widget and its children (content, borders, titles). Caches are still used where valid."""
    from textual.geometry import Region

    for node in (widget, *widget.query("*")):
        if node.display and node.region.area:
            node.render_lines(Region(0, 0, node.region.width, node.region.height))


def pane_frame_times(snapshots: list, size: tuple[int, int]) -> dict[str, list[float]]:
    """Milliseconds per frame for each pane, over the last PANE_FRAMES snapshots."""
    from grok_tui.sources.manual import ManualSource
    from grok_tui.ui.app import GrokApp
    from grok_tui.ui.panes.curves import CurvesPane
    from grok_tui.ui.panes.frequencies import FrequenciesPane
    from grok_tui.ui.panes.norm import NormPane
    from grok_tui.ui.panes.status import StatusPane
    from grok_tui.ui.panes.weights import WeightsPane

    earlier, timed = snapshots[:-PANE_FRAMES], snapshots[-PANE_FRAMES:]
    if not earlier:  # a very slow experiment: keep one snapshot back to start the history
        earlier, timed = snapshots[:1], snapshots[1:]
    times: dict[str, list[float]] = {}
    session, clock = ManualSource(), GcClock()

    async def drive() -> None:
        app = GrokApp(session)
        async with app.run_test(size=size) as pilot:
            # The history up to the first timed frame arrives as one frame, drawn by the app itself.
            session.mailbox.put(earlier[-1], [s.metrics for s in earlier])
            app.draw_frame()
            await pilot.pause()
            panes = [app.query_one(kind) for kind in (CurvesPane, WeightsPane, FrequenciesPane, NormPane, StatusPane)]
            gc.collect()  # start clean: the set-up's garbage is not the frames' cost
            for snapshot in timed:
                session.mailbox.put(snapshot, [snapshot.metrics])
                time_one_frame(app, panes, times, clock)
                await pilot.pause()  # let the app paint (untimed) before the next frame

    asyncio.run(drive())
    return times


def time_one_frame(app, panes: list, times: dict[str, list[float]], clock: GcClock) -> None:
    """What GrokApp.draw_frame does, with a clock around each pane, then the screen update.

    A garbage collection falls on whichever pane happens to allocate at the time, so its
    pause is taken out of that pane's figure and shown on a row of its own.
    """
    gc_at_start = clock.total

    def timed(name: str, work: Callable[[], Any]) -> None:
        gc_before, start = clock.total, time.perf_counter()
        work()
        spent = time.perf_counter() - start - (clock.total - gc_before)
        times.setdefault(name, []).append(spent * 1000)

    snapshot, rows, _ = app.source.mailbox.take()
    for row in rows:
        app.history.add(row.to_dict())
    app.snapshot = snapshot
    app.history.sync_events(snapshot.events)
    for pane in panes:
        if pane.display:  # the compact layout hides the norm pane

            def draw(pane: Any = pane) -> None:
                pane.show(snapshot, app.history)
                render_now(pane)

            timed(type(pane).__name__, draw)
    # Putting the panes' lines together into one screen update and encoding it as escape
    # sequences: a real terminal pays this every frame (the run_test driver skips the encoding).
    compositor = getattr(app.screen, "_compositor", None)
    if compositor is not None and hasattr(compositor, "render_full_update"):
        timed("screen: composite + encode", lambda: compositor.render_full_update().render_segments(app.console))
    times.setdefault("garbage collection", []).append((clock.total - gc_at_start) * 1000)


def measure_panes(experiment: str, size: tuple[int, int]) -> tuple[dict[str, list[float]], int, int]:
    """Times the panes in a fresh process (spawn), whose heap is like the app's own."""
    snapshots = collect_snapshots(experiment)
    frames = min(PANE_FRAMES, len(snapshots) - 1)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        times = pool.submit(pane_frame_times, snapshots, size).result()
    return times, snapshots[-frames].metrics.step, snapshots[-1].metrics.step


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# ---- printing -------------------------------------------------------------------------------------


def print_header(args: argparse.Namespace) -> None:
    import torch

    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    cuda = torch.cuda.get_device_name(0) if "cuda" in args.devices else "not measured"
    threads = config_for(run_flags(args.experiment, "cpu", Path("unused"))).threads
    print(
        f"# grok-tui bench: experiment {args.experiment}, {args.seconds:g} s of training per measurement "
        f"after a {WARMUP_S:g} s warm-up"
    )
    print(
        f"# python {platform.python_version()}, torch {torch.__version__}, "
        f"textual {importlib.metadata.version('textual')}; the trainer uses {threads} torch thread(s) on CPU"
    )
    print(f"# devices: {', '.join(args.devices)} (CUDA: {cuda}); CPUs: {cpus} ({usable} usable); load average {load}")
    sizes = ", ".join(f"{w}x{h}" for w, h in args.sizes)
    print(f"# terminal sizes {sizes} (tmux); {args.size[0]}x{args.size[1]} (run_test, panes)", flush=True)


def print_rates(device: str, rates: list[Rate]) -> None:
    base = rates[0].steps_per_s
    print(
        f"\n## training speed on {device} (steps per second of training time; "
        f"cores = CPU time / wall time over the window)"
    )
    print(f"{'mode':<23} {'steps/s':>8} {'ratio':>6}  {'window':<18} notes")
    for r in rates:
        notes = "; ".join(n for n in r.notes if n)
        if r.steps_per_s is None:
            print(f"{r.mode:<23} {'-':>8} {'-':>6}  {'':<18} {notes}")
            continue
        ratio = r.steps_per_s / base if base else None
        if r is not rates[0] and ratio is not None:
            notes += f"; {'meets' if ratio >= GOAL_RATIO else 'below'} the {GOAL_RATIO:.2f} goal"
        window = f"{r.steps} steps/{r.seconds:.1f}s"
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        print(f"{r.mode:<23} {r.steps_per_s:8.1f} {shown:>6}  {window:<18} {notes}".rstrip(), flush=True)
    busy = max((r.cores.get("others", 0.0) for r in rates), default=0.0)
    if busy > OTHERS_WARN_CORES:
        print(
            f"warning: other processes took up to {busy:.2f} cores during a window; "
            f"the ratios are only fair on an otherwise quiet machine",
            flush=True,
        )


def draws_per_s(name: str, refresh: float | None) -> float:
    """How often the app draws this row's work (grok_tui/ui/pacing.py)."""
    group = {
        "StatusPane": "status",
        "garbage collection": "status",
        "WeightsPane": "inspection",
        "FrequenciesPane": "inspection",
    }.get(name, "plots")
    return 1 / cadence(refresh).interval(group)


def print_panes(times: dict[str, list[float]], first_step: int, last_step: int, refresh: float | None) -> None:
    frames = len(next(iter(times.values())))
    print(
        f"\n## milliseconds per frame ({frames} frames, snapshots of steps {first_step}-{last_step}; "
        f"show() plus the rendering it triggers; the screen row composes the whole screen, an upper bound)"
    )
    print(f"{'pane':<27} {'mean':>7} {'p95':>7} {'max':>7} {'draws/s':>8}")
    share = 0.0
    for name, values in times.items():
        rate = draws_per_s(name, refresh)
        share += statistics.fmean(values) * rate / 1000
        print(f"{name:<27} {statistics.fmean(values):7.2f} {p95(values):7.2f} {max(values):7.2f} {rate:8.2f}")
    print(
        f"at these rates: {share:.0%} of one core for the panes (the tmux rows above measure the whole "
        f"UI process; the trainer has a process of its own)",
        flush=True,
    )


def kb(per_s: float | None) -> str:
    if per_s is None:
        return "-"
    return f"{per_s / 1000:.1f} KB/s" if per_s >= 1000 else f"{per_s:.0f} B/s"


def print_bytes(
    device: str, rates: list[Rate], finished: dict[tuple[int, int], float | None], refresh: float | None
) -> None:
    paced = cadence(refresh)
    base = rates[0].steps_per_s
    print(
        f"\n## bytes written to the terminal on {device} (24-bit colour; --refresh {paced.plots:g}: status every "
        f"{paced.status:g} s, curves every {paced.plots:g} s, weights every {paced.inspection:g} s)"
    )
    print("goals at 120x40: at most 50 KB/s training, under 1 KB/s paused or finished; ui at most 0.25 cores")
    print(
        f"{'size':<8} {'training':>11} {'paused':>10} {'finished':>10}  {'ui cores':>8} {'paused':>7}  "
        f"{'steps/s ratio':>13}"
    )
    for r in rates:
        if r.size is None:
            continue
        ratio = f"{r.steps_per_s / base:.2f}" if r.steps_per_s and base else "-"
        ui, idle = r.cores.get("ui"), r.idle_cores.get("ui")
        size = f"{r.size[0]}x{r.size[1]}"
        print(
            f"{size:<8} {kb(r.bytes_per_s.get('training')):>11} {kb(r.bytes_per_s.get('paused')):>10} "
            f"{kb(finished.get(r.size)):>10}  {'-' if ui is None else f'{ui:.2f}':>8} "
            f"{'-' if idle is None else f'{idle:.2f}':>7}  {ratio:>13}",
            flush=True,
        )


# ---- main ----------------------------------------------------------------------------------------------


def progress(message: str) -> None:
    """A line on stderr, so that a long run shows where it is without mixing into the figures."""
    print(f"# {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> None:
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="grok-bench-") as tmp:
        workdir = Path(tmp)
        for device in args.devices:
            progress(f"{device}: headless")
            rates = [guarded("headless", measure_headless, args.experiment, device, args.seconds, workdir)]
            for size in args.sizes:
                progress(f"{device}: the monitor in tmux at {size[0]}x{size[1]}")
                rate = guarded(
                    f"monitor (tmux {size[0]}x{size[1]})",
                    measure_tmux,
                    args.experiment,
                    device,
                    args.seconds,
                    size,
                    workdir,
                    args.refresh,
                )
                rate.size = size
                rates.append(rate)
            progress(f"{device}: the monitor under run_test")
            rates.append(
                guarded(
                    "monitor (run_test)",
                    measure_run_test,
                    args.experiment,
                    device,
                    args.seconds,
                    args.size,
                    workdir,
                    args.refresh,
                )
            )
            print_rates(device, rates)
            finished = {}
            for size in args.sizes:
                progress(f"{device}: a finished run at {size[0]}x{size[1]}")
                try:
                    finished[size] = measure_finished(args.experiment, device, size, workdir, args.refresh)
                except Exception as e:
                    finished[size] = None
                    progress(f"failed: {one_line(e)}")
            print_bytes(device, rates, finished, args.refresh)
            progress(f"{device}: commands over the channel")
            try:
                print_latency(device, measure_command_latency(args.experiment, device, workdir))
            except Exception as e:
                print(f"\n## {device}: command latency: failed: {one_line(e)}")
    progress("the panes")
    try:
        print_panes(*measure_panes(args.experiment, args.size), args.refresh)
    except Exception as e:
        print(f"\n## milliseconds per frame: failed: {one_line(e)}")


def measure_command_latency(experiment: str, device: str, workdir: Path, presses: int = 40) -> list[float]:
    """Milliseconds from a key's command leaving a client to a frame that shows it applied, over a run's
    channel, as `grok-tui attach` sends them (the goal: within 100 ms)."""
    from grok_tui.sources.attached import AttachedRun
    from grok_tui.train import new_run
    from grok_tui.train.launch import start, stop, wait_until_served

    run_dir = workdir / f"latency-{device}"
    spec = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir)
    process = start(spec)
    try:
        wait_until_served(run_dir, process)
        session = AttachedRun(run_dir)
        assert session.control is not None
        threading.Thread(target=session.run, daemon=True).start()
        snapshot = _frame(session, lambda s: s.step > 0)
        times = []
        for i in range(presses):
            before = snapshot.now.weight_decay
            factor = 2.0 if i % 2 == 0 else 0.5  # back and forth: the run is not steered anywhere
            sent = time.perf_counter()
            session.control.scale("weight_decay", factor)

            def applied(s: Any, before: float = before) -> bool:
                return bool(s.now.weight_decay != before)

            snapshot = _frame(session, applied)
            times.append((time.perf_counter() - sent) * 1000)
            time.sleep(0.05)
        return times
    finally:
        try:
            stop(run_dir, timeout=30)
        except Exception:
            process.kill()


def _frame(session, condition: Callable[[Any], bool], timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot, _, error = session.mailbox.take()
        if error:
            raise RuntimeError(error)
        if snapshot is not None and condition(snapshot):
            return snapshot
        time.sleep(0.001)
    raise TimeoutError("no frame showed the change")


def print_latency(device: str, times: list[float]) -> None:
    print(f"\n## {device}: a key's command over the run's channel, until a frame shows it applied")
    print(
        f"{len(times)} presses: median {statistics.median(times):.1f} ms, p95 {p95(times):.1f} ms, "
        f"max {max(times):.1f} ms (goal: within 100 ms)"
    )


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"


def guarded(mode: str, measure: Callable[..., Rate], *args: Any) -> Rate:
    """One broken mode (an app that crashes, say) is a row of the table, not the end of the run."""
    try:
        return measure(*args)
    except Exception as e:
        return Rate(mode, notes=[f"failed: {one_line(e)}"])


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if args.sweep:
        from grok_tui import bench_sweep

        return bench_sweep.main(args)
    if args.system:
        from grok_tui import bench_system

        return bench_system.main(args)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
