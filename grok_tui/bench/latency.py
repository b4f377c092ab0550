"""A key's command over a run's channel, as `grok-tui attach` sends it: milliseconds until a frame
shows it applied."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grok_tui.bench.experiment import config_for, run_flags


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
