"""Milliseconds per frame of each pane: a realistic snapshot stream fed, one snapshot a frame, to the
app under run_test, each pane's `show()` timed with the rendering it triggers, in a process of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from grok_tui.bench.experiment import config_for, run_flags

# The snapshot stream (the experiment trained for about PANE_TRAIN_STEPS steps, at most PANE_TRAIN_MAX_S)
# and how many consecutive frames are timed.
PANE_TRAIN_STEPS = 2000
PANE_TRAIN_MAX_S = 30.0
PANE_FRAMES = 50


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
    from grok_tui.ui.app import MonitorApp
    from grok_tui.ui.panes.curves import CurvesPane
    from grok_tui.ui.panes.embedding import EmbeddingPane
    from grok_tui.ui.panes.frequencies import FrequenciesPane
    from grok_tui.ui.panes.norm import NormPane
    from grok_tui.ui.panes.status import StatusPane
    from grok_tui.ui.panes.weights import WeightsPane
    from grok_tui.ui.screens.run import RunScreen

    earlier, timed = snapshots[:-PANE_FRAMES], snapshots[-PANE_FRAMES:]
    if not earlier:  # a very slow experiment: keep one snapshot back to start the history
        earlier, timed = snapshots[:1], snapshots[1:]
    times: dict[str, list[float]] = {}
    session, clock = ManualSource(), GcClock()

    async def drive() -> None:
        screen = RunScreen(session)
        app = MonitorApp(screen)
        async with app.run_test(size=size) as pilot:
            # The history up to the first timed frame arrives as one frame, drawn by the screen itself.
            session.mailbox.put(earlier[-1], [s.metrics for s in earlier])
            screen.draw_frame()
            await pilot.pause()
            kinds = (CurvesPane, EmbeddingPane, WeightsPane, FrequenciesPane, NormPane, StatusPane)
            panes = [app.query_one(kind) for kind in kinds]
            gc.collect()  # start clean: the set-up's garbage is not the frames' cost
            for snapshot in timed:
                session.mailbox.put(snapshot, [snapshot.metrics])
                time_one_frame(screen, panes, times, clock)
                await pilot.pause()  # let the app paint (untimed) before the next frame

    asyncio.run(drive())
    return times


def time_one_frame(screen, panes: list, times: dict[str, list[float]], clock: GcClock) -> None:
    """What RunScreen.draw_frame does, with a clock around each pane, then the screen update.

    A garbage collection falls on whichever pane happens to allocate at the time, so its
    pause is taken out of that pane's figure and shown on a row of its own.
    """
    gc_at_start = clock.total

    def timed(name: str, work: Callable[[], Any]) -> None:
        gc_before, start = clock.total, time.perf_counter()
        work()
        spent = time.perf_counter() - start - (clock.total - gc_before)
        times.setdefault(name, []).append(spent * 1000)

    snapshot, rows, _ = screen.source.mailbox.take()
    for row in rows:
        screen.history.add(row.to_dict())
    screen.snapshot = snapshot
    screen.history.sync_events(snapshot.events)
    for pane in panes:
        if pane.display:  # the compact layout hides the norm pane

            def draw(pane: Any = pane) -> None:
                pane.show(snapshot, screen.history)
                render_now(pane)

            timed(type(pane).__name__, draw)
    # Putting the panes' lines together into one screen update and encoding it as escape
    # sequences: a real terminal pays this every frame (the run_test driver skips the encoding).
    compositor = getattr(screen, "_compositor", None)
    if compositor is not None and hasattr(compositor, "render_full_update"):
        timed("screen: composite + encode", lambda: compositor.render_full_update().render_segments(screen.app.console))
    times.setdefault("garbage collection", []).append((clock.total - gc_at_start) * 1000)


def measure_panes(experiment: str, size: tuple[int, int]) -> tuple[dict[str, list[float]], int, int]:
    """Times the panes in a fresh process (spawn), whose heap is like the app's own."""
    snapshots = collect_snapshots(experiment)
    frames = min(PANE_FRAMES, len(snapshots) - 1)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        times = pool.submit(pane_frame_times, snapshots, size).result()
    return times, snapshots[-frames].metrics.step, snapshots[-1].metrics.step
