"""The benchmark's command line: its flags, one clear line for a bad one, and which benchmark runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from grok_tui.bench.rates import WARMUP_S
from grok_tui.usage import Parser, UsageError

PROG = "python -m grok_tui.bench"
DEFAULT_SIZES = ((80, 24), (120, 40), (200, 60))


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a number of seconds > 0 and < 3600")
    return value


def _rounds(text: str) -> int:
    if not (text.isdigit() and 1 <= int(text) <= 50):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a whole number of rounds from 1 to 50")
    return int(text)


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or int(width) < 40 or int(height) < 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected WIDTHxHEIGHT, at least 40x12, e.g. 160x48")
    return int(width), int(height)


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(_size(part) for part in text.split(","))


def _refresh(text: str) -> float:
    from grok_tui.ui.pacing import parse_refresh

    try:
        return parse_refresh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    from grok_tui.config import DEFAULT_EXPERIMENT

    parser = Parser(
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
        help="measure sweeps instead (grok_tui/bench/sweep.py): the engine against a Pool of single runs, on "
        "two grids of 64 members",
    )
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=None,
        metavar="N",
        help="alternated rounds of each contender for --sweep (default 3), --loop (default 7) and the monitor's "
        "training speed (default 3)",
    )
    parser.add_argument(
        "--system",
        action="store_true",
        help="measure what the system line costs the trainer instead (grok_tui/bench/system.py)",
    )
    parser.add_argument(
        "--loop",
        action="store_true",
        help="measure what grok_tui.monitor costs a loop of your own instead (grok_tui/bench/loop.py)",
    )
    parser.add_argument(
        "--refresh",
        type=_refresh,
        default=None,
        metavar="SECONDS",
        help="the monitor's --refresh (default: the monitor's own default)",
    )
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if args.sweep:
        from grok_tui.bench import sweep

        return sweep.main(args)
    if args.loop:
        from grok_tui.bench import loop

        return loop.main(args)
    if args.system:
        from grok_tui.bench import system

        return system.main(args)
    from grok_tui.bench import monitor

    monitor.run(args)
    return 0
