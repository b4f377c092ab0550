"""The benchmark's printed figures: a header on the machine, then one table per measurement."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import sys
from pathlib import Path

from grok_tui.bench.experiment import config_for, run_flags
from grok_tui.bench.rates import WARMUP_S, Rate
from grok_tui.bench.terminal import cadence

GOAL_RATIO = 0.97
# Above this much CPU used by processes not ours, a window's figure is not comparable.
OTHERS_WARN_CORES = 0.25


def progress(message: str) -> None:
    """A line on stderr, so that a long run shows where it is without mixing into the figures."""
    print(f"# {message}", file=sys.stderr, flush=True)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def print_header(args: argparse.Namespace) -> None:
    import torch

    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    cuda = torch.cuda.get_device_name(0) if "cuda" in args.devices else "not measured"
    threads = config_for(run_flags(args.experiment, "cpu", Path("unused"))).threads
    print(
        f"# grok-tui bench: experiment {args.experiment}, {args.seconds:g} s of training per measurement "
        f"after a {WARMUP_S:g} s warm-up, {args.rounds} alternated round(s) of the training-speed modes"
    )
    print(
        f"# python {platform.python_version()}, torch {torch.__version__}, "
        f"textual {importlib.metadata.version('textual')}; the trainer uses {threads} torch thread(s) on CPU"
    )
    print(f"# devices: {', '.join(args.devices)} (CUDA: {cuda}); CPUs: {cpus} ({usable} usable); load average {load}")
    sizes = ", ".join(f"{w}x{h}" for w, h in args.sizes)
    print(f"# terminal sizes {sizes} (tmux); {args.size[0]}x{args.size[1]} (run_test, panes)", flush=True)


def print_rates(device: str, rates: list[Rate]) -> None:
    print(
        f"\n## training speed on {device} (steps per second of training time, the median round's; ratio: the "
        f"median over rounds of each round's ratio to its headless run; cores = CPU time / wall time over the window)"
    )
    print(f"{'mode':<23} {'steps/s':>8} {'ratio':>6}  {'window':<18} notes")
    for r in rates:
        notes = "; ".join(n for n in r.notes if n)
        if r.steps_per_s is None:
            print(f"{r.mode:<23} {'-':>8} {'-':>6}  {'':<18} {notes}")
            continue
        ratio = r.ratio(rates[0])
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
        "EmbeddingPane": "inspection",
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
        ratio = "-" if (value := r.ratio(rates[0])) is None else f"{value:.2f}"
        ui, idle = r.cores.get("ui"), r.idle_cores.get("ui")
        size = f"{r.size[0]}x{r.size[1]}"
        print(
            f"{size:<8} {kb(r.bytes_per_s.get('training')):>11} {kb(r.bytes_per_s.get('paused')):>10} "
            f"{kb(finished.get(r.size)):>10}  {'-' if ui is None else f'{ui:.2f}':>8} "
            f"{'-' if idle is None else f'{idle:.2f}':>7}  {ratio:>13}",
            flush=True,
        )


def print_latency(device: str, times: list[float]) -> None:
    print(f"\n## {device}: a key's command over the run's channel, until a frame shows it applied")
    print(
        f"{len(times)} presses: median {statistics.median(times):.1f} ms, p95 {p95(times):.1f} ms, "
        f"max {max(times):.1f} ms (goal: within 100 ms)"
    )
