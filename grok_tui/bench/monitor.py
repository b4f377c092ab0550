"""The benchmark of the monitor (`python -m grok_tui.bench` without --sweep or --system): every
measurement in turn, on each device, printed as it comes (the package's docstring says what each is)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grok_tui.bench.headless import measure_headless
from grok_tui.bench.latency import measure_command_latency
from grok_tui.bench.panes import measure_panes
from grok_tui.bench.rates import Rate, over_rounds
from grok_tui.bench.report import print_bytes, print_header, print_latency, print_panes, print_rates, progress
from grok_tui.bench.run_test import measure_run_test
from grok_tui.bench.terminal import measure_finished, measure_tmux

# Alternated rounds of the training-speed modes (--rounds): the ratio to headless is taken round by round.
ROUNDS = 3


def run(args: argparse.Namespace) -> None:
    args.rounds = args.rounds or ROUNDS
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="grok-bench-") as tmp:
        workdir = Path(tmp)
        for device in args.devices:
            rounds = []
            for i in range(args.rounds):
                progress(f"{device}: round {i + 1} of {args.rounds}")
                (fresh := workdir / f"round-{i + 1}").mkdir()  # each mode's run directory is new every round
                rounds.append(speeds(args, device, fresh))
            rates = over_rounds(rounds)
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


def speeds(args: argparse.Namespace, device: str, workdir: Path) -> list[Rate]:
    """One round: headless, the monitor in tmux at each size, the monitor under run_test, in turn."""
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
    return rates


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"


def guarded(mode: str, measure: Callable[..., Rate], *args: Any) -> Rate:
    """One broken mode (an app that crashes, say) is a row of the table, not the end of the run."""
    try:
        return measure(*args)
    except Exception as e:
        return Rate(mode, notes=[f"failed: {one_line(e)}"])
