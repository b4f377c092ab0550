"""The app under Textual's headless driver (run_test), in this process: what CI-like machines without
a terminal run. It composes every frame but skips writing the escape sequences out."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from grok_tui.bench.cpu import CpuSampler
from grok_tui.bench.experiment import config_for, run_flags
from grok_tui.bench.rates import POLL_S, Rate, WindowError, WindowWatch, rate_from_rows, read_rows


def measure_run_test(
    experiment: str, device: str, seconds: float, size: tuple[int, int], workdir: Path, refresh: float | None = None
) -> Rate:
    from grok_tui.sources.attached import AttachedRun
    from grok_tui.train import new_run
    from grok_tui.ui.app import MonitorApp
    from grok_tui.ui.pacing import DEFAULT_REFRESH_S

    mode = "monitor (run_test)"
    run_dir = workdir / f"run-test-{device}"
    spec = new_run(config_for(run_flags(experiment, device, run_dir)), run_dir)
    cpu = CpuSampler(os.getpid())  # the UI is this process; the trainer, its spawned child

    async def drive() -> None:
        app = MonitorApp.for_run(AttachedRun.start(spec), refresh=refresh or DEFAULT_REFRESH_S)
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
