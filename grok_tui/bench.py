"""`python -m grok_tui.bench`: what the monitor costs the training loop, and what each pane costs.

Why: the monitor shares the machine with the training loop. DESIGN.md ("Data
flow") measured that a loop in a thread of the UI process runs at 0.45-0.55 of
its bare speed, because every millisecond of Python spent rendering holds the
GIL; so the loop runs in a child process and the UI only draws the newest frame
ten times a second. The project's goal is that training with the monitor open
runs at >= 0.90 of `grok-tui --headless`. This prints the figures to check it:

1. Training steps/s, in one run, on the same experiment and device:
   - headless: the trainer built exactly as `grok-tui --headless` builds it
     (new_run(cfg, run_dir).build(), then trainer.run(callback)), in this process;
   - monitor (tmux): the real app in a real terminal (a detached tmux session of
     the given size), quit with `q` as a user would;
   - monitor (run_test): the same app under Textual's headless driver, which is
     what CI-like machines without a terminal run (it composes every frame but
     skips writing the escape sequences out).
   Each rate comes from the run directory's metrics rows over the same window
   of training time, [WARMUP_S, WARMUP_S + seconds], so start-up (imports, the
   child process, the first evaluations) is left out of every mode alike.
2. Milliseconds per frame of each pane: a realistic snapshot stream (the
   experiment trained for ~2,000 steps) is fed, one new snapshot per frame, to
   the app under run_test; each pane's `show()` is timed together with the
   rendering it triggers (the panes' widgets cache their render until new data
   arrives, so the work is forced the way Textual's compositor would do it).
   The sum, at the app's 10 frames/s, is the share of one core the UI takes.

It is a benchmark, not a test: it prints figures and exits 0 (2 on a bad flag).
Heavy imports (torch, textual) stay inside functions: the monitor's training
child is started with "spawn", which re-imports this module when it is __main__.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

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
# The monitor's frame rate (grok_tui.ui.app.FRAME_INTERVAL_S is 0.1 s).
FRAMES_PER_S = 10
GOAL_RATIO = 0.90
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
    if not (value > 0 and value < 3600):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a number of seconds > 0 and < 3600")
    return value


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or int(width) < 40 or int(height) < 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected WIDTHxHEIGHT, at least 40x12, e.g. 160x48")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    from grok_tui.config import DEFAULT_EXPERIMENT

    parser = _Parser(prog=PROG, description="Measure what the monitor costs the training loop, and what each pane costs.")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, metavar="NAME",
                        help=f"preset to train (default {DEFAULT_EXPERIMENT})")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                        help="cpu (default); auto or cuda also measure on CUDA when torch sees it")
    parser.add_argument("--seconds", type=_positive_seconds, default=15.0, metavar="N",
                        help="seconds of training per measurement, after a 1 s warm-up (default 15)")
    parser.add_argument("--size", type=_size, default=(160, 48), metavar="WxH",
                        help="terminal size in cells (default 160x48)")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    from grok_tui.config import PRESETS

    args = build_parser().parse_args(argv)
    if args.experiment not in PRESETS:
        raise UsageError(f"--experiment: {args.experiment!r} is not an experiment; expected one of {', '.join(PRESETS)}")
    args.devices = devices_for(args.device)
    return args


def devices_for(name: str) -> list[str]:
    """cpu always; CUDA as well where it was asked for (auto, cuda) and torch sees it."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: CUDA was asked for but torch sees no CUDA device; use --device cpu or auto")
    return ["cpu", "cuda"] if name != "cpu" and torch.cuda.is_available() else ["cpu"]


# ---- steps/s from metrics rows ---------------------------------------------------------------


@dataclass
class Rate:
    mode: str
    steps_per_s: float | None = None
    steps: int = 0
    seconds: float = 0.0
    note: str = ""


def rate_from_rows(mode: str, rows: list[dict[str, Any]], seconds: float) -> Rate:
    """Steps per second of training time between the first row at or after the warm-up
    and the last row inside the window; `elapsed_s` counts training time only."""
    window = [r for r in rows if isinstance(r.get("elapsed_s"), (int, float))
              and WARMUP_S <= r["elapsed_s"] <= WARMUP_S + seconds]
    if len(window) < 2 or window[-1]["elapsed_s"] <= window[0]["elapsed_s"]:
        return Rate(mode, note=f"too few metrics rows in the window ({len(window)})")
    steps = window[-1]["step"] - window[0]["step"]
    span = window[-1]["elapsed_s"] - window[0]["elapsed_s"]
    return Rate(mode, steps / span, steps, span)


def run_flags(experiment: str, device: str, run_dir: Path) -> list[str]:
    """The same flags for every mode, so that all of them train the same configuration."""
    return ["--experiment", experiment, "--run-dir", str(run_dir), "--steps", "10000000", "--device", device]


def config_for(flags: list[str]):
    """The RunConfig the CLI would build from `flags`."""
    from grok_tui.cli import build_parser as cli_parser, config_from_args

    return config_from_args(cli_parser().parse_args(flags))


class MetricsWatch:
    """Follows a run directory's metrics.jsonl: how much training time it has recorded."""

    def __init__(self, run_dir: Path):
        from grok_tui.runlog import JsonlFollower

        self._follower = JsonlFollower(run_dir / "metrics.jsonl")
        self.elapsed_s: float | None = None

    def poll(self) -> float | None:
        for row in self._follower.poll():
            if isinstance(row.get("elapsed_s"), (int, float)):
                self.elapsed_s = row["elapsed_s"]
        return self.elapsed_s


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    from grok_tui.runlog import read_jsonl

    return read_jsonl(run_dir / "metrics.jsonl")


# ---- 1a. headless ----------------------------------------------------------------------------


def measure_headless(experiment: str, device: str, seconds: float, workdir: Path) -> Rate:
    """What `grok-tui --headless` runs, stopped from its callback once the window is covered."""
    from grok_tui.headless import format_metrics
    from grok_tui.train import Snapshot, new_run

    run_dir = workdir / f"headless-{device}"
    trainer = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir).build()
    with open(os.devnull, "w") as sink:
        def on_snapshot(snapshot: Snapshot) -> None:
            # --headless prints one line per evaluation; print them too, so its cost is counted.
            print(format_metrics(snapshot.metrics), file=sink, flush=True)
            if snapshot.metrics.elapsed_s >= WARMUP_S + seconds:
                trainer.control.stop()

        trainer.run(on_snapshot)
    return rate_from_rows("headless", read_rows(run_dir), seconds)


# ---- 1b. the app in a real terminal (tmux) ------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket), so that nothing of the user's tmux is touched."""

    def __init__(self, workdir: Path):
        self.conf = workdir / "tmux.conf"
        # remain-on-exit: a crashed app leaves its screen and exit status to read.
        # status off: the status line would take one of the terminal's rows.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\nset -g default-terminal tmux-256color\n")
        self.base = ["tmux", "-L", f"grok-bench-{os.getpid()}", "-f", str(self.conf)]

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def pane_exit(self, target: str) -> int | None:
        """The app's exit status once it has ended, else None."""
        dead, _, status = self("display-message", "-p", "-t", target, "#{pane_dead} #{pane_dead_status}").strip().partition(" ")
        return int(status or 0) if dead == "1" else None

    def size(self, target: str) -> str:
        return self("display-message", "-p", "-t", target, "#{pane_width}x#{pane_height}").strip()

    def screen_tail(self, target: str, lines: int = 3) -> str:
        text = [line.strip() for line in self("capture-pane", "-p", "-t", target, check=False).splitlines()]
        return " | ".join([line for line in text if line][-lines:])

    def kill_server(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True, timeout=10)


def app_command() -> list[str]:
    """`grok-tui` from this interpreter's environment (python -m grok_tui where the script is missing)."""
    script = Path(sys.executable).with_name("grok-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "grok_tui"]


def measure_tmux(experiment: str, device: str, seconds: float, size: tuple[int, int], workdir: Path) -> Rate:
    mode = "monitor (tmux)"
    if shutil.which("tmux") is None:
        return Rate(mode, note="skipped: tmux is not installed")
    run_dir = workdir / f"tmux-{device}"
    tmux, target = Tmux(workdir), "bench"
    command = shlex.join(app_command() + run_flags(experiment, device, run_dir))
    try:
        # COLORTERM: a modern terminal takes 24-bit colour, the dearer escape sequences.
        tmux("new-session", "-d", "-s", target, "-x", str(size[0]), "-y", str(size[1]),
             "-c", str(PROJECT_ROOT), "-e", "COLORTERM=truecolor", command)
        problem = wait_for_training(MetricsWatch(run_dir), WARMUP_S + seconds, lambda: tmux.pane_exit(target) is None)
        if problem:
            return Rate(mode, note=f"{problem}; screen: {tmux.screen_tail(target)}")
        real_size = tmux.size(target)
        tmux("send-keys", "-t", target, "q")
        code = wait_for_exit(lambda: tmux.pane_exit(target))
        rate = rate_from_rows(mode, read_rows(run_dir), seconds)
        rate.note = f"{real_size} terminal" + ("" if code == 0 else f"; app exit status {code}")
        return rate
    finally:
        tmux.kill_server()


def wait_for_training(watch: MetricsWatch, target_s: float, alive: Callable[[], bool]) -> str | None:
    """Block until the run has recorded `target_s` of training; a reason if it never will."""
    started = time.monotonic()
    deadline = None
    while True:
        elapsed = watch.poll()
        if elapsed is not None and elapsed >= target_s:
            return None
        if not alive():
            return "the app ended before the window was covered"
        now = time.monotonic()
        if elapsed is None and now - started > START_TIMEOUT_S:
            return f"no metrics after {START_TIMEOUT_S:.0f} s"
        if elapsed is not None and deadline is None:
            # Training is slower under the monitor, never this much slower.
            deadline = now + 4 * target_s + 10
        if deadline is not None and now > deadline:
            return f"only {elapsed:.1f} s of training recorded by the deadline"
        time.sleep(POLL_S)


def wait_for_exit(exit_code: Callable[[], int | None]) -> int | None:
    deadline = time.monotonic() + QUIT_TIMEOUT_S
    while time.monotonic() < deadline:
        code = exit_code()
        if code is not None:
            return code
        time.sleep(POLL_S)
    return None


# ---- 1c. the app under Textual's headless driver (run_test) ------------------------------------------


def measure_run_test(experiment: str, device: str, seconds: float, size: tuple[int, int], workdir: Path) -> Rate:
    from grok_tui.train import new_run
    from grok_tui.ui.app import GrokApp

    mode = "monitor (run_test)"
    run_dir = workdir / f"run-test-{device}"
    spec = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir)

    async def drive() -> str | None:
        app = GrokApp(spec, backend="process")
        async with app.run_test(size=size) as pilot:
            watch, started, deadline = MetricsWatch(run_dir), time.monotonic(), None
            while (watch.poll() or 0.0) < WARMUP_S + seconds:
                now = time.monotonic()
                if watch.elapsed_s is None and now - started > START_TIMEOUT_S:
                    return f"no metrics after {START_TIMEOUT_S:.0f} s ({app.error or 'no error shown'})"
                deadline = deadline or (now + 4 * (WARMUP_S + seconds) + 10 if watch.elapsed_s is not None else None)
                if deadline is not None and now > deadline:
                    return f"only {watch.elapsed_s:.1f} s of training recorded by the deadline"
                await asyncio.sleep(POLL_S)  # the app runs on this loop while we wait
            await pilot.press("q")
            await pilot.pause()
        return None

    problem = asyncio.run(drive())
    if problem:
        return Rate(mode, note=problem)
    return rate_from_rows(mode, read_rows(run_dir), seconds)


# ---- 2. milliseconds per frame of each pane -------------------------------------------------------------


def collect_snapshots(experiment: str) -> list:
    """Train the experiment in this process for ~PANE_TRAIN_STEPS steps, keeping every snapshot."""
    from grok_tui.train import Trainer

    cfg = config_for(run_flags(experiment, "cpu", Path("unused")))
    trainer = Trainer(cfg, run_dir=None)
    snapshots: list = []
    started = time.monotonic()

    def keep(snapshot) -> None:
        snapshots.append(snapshot)
        enough = snapshot.metrics.step >= PANE_TRAIN_STEPS and len(snapshots) > PANE_FRAMES
        if enough or time.monotonic() - started > PANE_TRAIN_MAX_S:
            trainer.control.stop()

    trainer.run(keep)
    # A stop between two evaluations repeats the last step; one snapshot per step is enough.
    unique = {s.metrics.step: s for s in snapshots}
    return [unique[step] for step in sorted(unique)]


class FeedSession:
    """Stands in for a training session: the benchmark fills the mailbox, nothing trains."""

    def __init__(self) -> None:
        from grok_tui.train.session import Mailbox

        self.mailbox = Mailbox()
        self.control = None  # read-only, like `grok-tui watch`

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        return None  # the app's worker calls this; there is no loop to run


def render_now(widget) -> None:
    """Do the rendering that `show()` scheduled, as the compositor would: every line of the
    widget and its children (content, borders, titles). Caches are still used where valid."""
    from textual.geometry import Region

    for node in (widget, *widget.query("*")):
        if node.display and node.region.area:
            node.render_lines(Region(0, 0, node.region.width, node.region.height))


def pane_frame_times(snapshots: list, size: tuple[int, int]) -> tuple[dict[str, list[float]], int]:
    """Milliseconds per frame for each pane, over the last PANE_FRAMES snapshots."""
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
    session = FeedSession()

    async def drive() -> None:
        app = GrokApp(session=session)
        async with app.run_test(size=size) as pilot:
            # The history up to the first timed frame arrives as one frame, drawn by the app itself.
            session.mailbox.put(earlier[-1], [s.metrics for s in earlier])
            app.draw_frame()
            await pilot.pause()
            panes = [app.query_one(kind) for kind in (CurvesPane, WeightsPane, FrequenciesPane, NormPane, StatusPane)]
            for snapshot in timed:
                session.mailbox.put(snapshot, [snapshot.metrics])
                time_one_frame(app, panes, times)
                await pilot.pause()  # let the app paint (untimed) before the next frame

    asyncio.run(drive())
    return times, len(timed)


def time_one_frame(app, panes: list, times: dict[str, list[float]]) -> None:
    """What GrokApp.draw_frame does, with a clock around each pane, then the screen update."""
    snapshot, rows, _ = app.session.mailbox.take()
    for row in rows:
        app.history.add(row.to_dict())
    app.snapshot = snapshot
    app.history.sync_events(snapshot.events)
    for pane in panes:
        if not pane.display:
            continue  # the compact layout hides the norm pane
        start = time.perf_counter()
        pane.show(snapshot, app.history)
        render_now(pane)
        times.setdefault(type(pane).__name__, []).append((time.perf_counter() - start) * 1000)
    # Putting the panes' lines together into one screen update and encoding it as escape
    # sequences: a real terminal pays this every frame, the run_test driver skips the encoding.
    try:
        start = time.perf_counter()
        app.screen._compositor.render_full_update().render_segments(app.console)
        times.setdefault("screen: composite + encode", []).append((time.perf_counter() - start) * 1000)
    except AttributeError:
        pass  # a Textual internal that moved; the per-pane figures stand without it


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
    print(f"# grok-tui bench: experiment {args.experiment}, {args.seconds:g} s per measurement after a "
          f"{WARMUP_S:g} s warm-up")
    print(f"# python {platform.python_version()}, torch {torch.__version__}, textual {importlib.metadata.version('textual')}")
    print(f"# devices: {', '.join(args.devices)} (CUDA: {cuda}); CPUs: {cpus} ({usable} usable); "
          f"load average {load}")
    print(f"# terminal size {args.size[0]}x{args.size[1]}", flush=True)


def print_rates(device: str, rates: list[Rate]) -> None:
    base = rates[0].steps_per_s
    print(f"\n## training speed on {device} (steps per second of training time)")
    print(f"{'mode':<20} {'steps/s':>8} {'ratio':>6}  {'window':<18} note")
    for r in rates:
        if r.steps_per_s is None:
            print(f"{r.mode:<20} {'-':>8} {'-':>6}  {'':<18} {r.note}")
            continue
        ratio = f"{r.steps_per_s / base:.2f}" if base else "-"
        flag = "" if r is rates[0] or not base else ("  (goal met)" if r.steps_per_s / base >= GOAL_RATIO else "  (below goal)")
        window = f"{r.steps} steps/{r.seconds:.1f}s"
        print(f"{r.mode:<20} {r.steps_per_s:8.1f} {ratio:>6}  {window:<18} {r.note}{flag}".rstrip(), flush=True)


def print_panes(times: dict[str, list[float]], frames: int, first_step: int, last_step: int) -> None:
    print(f"\n## milliseconds per frame ({frames} frames, snapshots of steps {first_step}-{last_step}; "
          f"show() plus the rendering it triggers)")
    print(f"{'pane':<28} {'mean':>7} {'p95':>7}")
    per_frame = [0.0] * frames
    for name, values in times.items():
        print(f"{name:<28} {statistics.fmean(values):7.2f} {p95(values):7.2f}")
        per_frame = [a + b for a, b in zip(per_frame, values)]
    mean = statistics.fmean(per_frame)
    print(f"{'total per frame':<28} {mean:7.2f} {p95(per_frame):7.2f}")
    print(f"at {FRAMES_PER_S} frames/s: {mean * FRAMES_PER_S / 1000:.1%} of one core "
          f"(the UI process's share; training runs in its own process)", flush=True)


# ---- main ----------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="grok-bench-") as tmp:
        workdir = Path(tmp)
        for device in args.devices:
            rates = [measure_headless(args.experiment, device, args.seconds, workdir)]
            print(f"# measured headless on {device}; now the monitor in tmux", file=sys.stderr, flush=True)
            rates.append(measure_tmux(args.experiment, device, args.seconds, args.size, workdir))
            print(f"# now the monitor under run_test", file=sys.stderr, flush=True)
            rates.append(measure_run_test(args.experiment, device, args.seconds, args.size, workdir))
            print_rates(device, rates)
    print("# timing the panes", file=sys.stderr, flush=True)
    snapshots = collect_snapshots(args.experiment)
    times, frames = pane_frame_times(snapshots, args.size)
    print_panes(times, frames, snapshots[-frames].metrics.step, snapshots[-1].metrics.step)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
