"""The run monitor: six live panes over one source, and the keys that steer it.

The screen never trains and never waits on training. A thread worker runs the
source (sources/), which drops frames into its Mailbox; a 4 Hz timer takes the
newest frame, adds its metrics to the History and redraws the panes that are
due (ui/pacing.py). Keys become commands on the source's control, by meaning
("weight decay ×2", "toggle pause"), never by what the screen last showed; the
trainer applies them to its own state between two steps, and the next frame
shows what it holds. A read-only source (a watched run) has no control, and a
key that would steer says so. A watched run that recorded its views has a replay
(`Source.replay`): the arrow keys step through it, the curves marked at the step shown.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from textual import events
from textual.actions import ActionError, parse
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.widgets import Footer
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState, get_current_worker

from grok_tui.compare import labels
from grok_tui.files import WriteError
from grok_tui.forecast.live import LiveForecast, Outlook
from grok_tui.history import History
from grok_tui.runlog import export_csv
from grok_tui.sources import CannotRestart, Mode, Source
from grok_tui.sources.base import Replay
from grok_tui.train.replay import REPLAY
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui import keys
from grok_tui.ui.pacing import DEFAULT_REFRESH_S, Cadence, Pacer
from grok_tui.ui.panes.curves import CURVE_SERIES, CurvesPane, Overlay
from grok_tui.ui.panes.embedding import EmbeddingPane
from grok_tui.ui.panes.frequencies import FrequenciesPane
from grok_tui.ui.panes.norm import NormPane
from grok_tui.ui.panes.status import StatusPane
from grok_tui.ui.panes.weights import WeightsPane
from grok_tui.ui.screens.help import HelpScreen
from grok_tui.ui.screens.monitor import MonitorScreen
from grok_tui.ui.screens.value_input import ValueInput, parse_hyper, parse_norm, parse_subset

# The longest the screen waits before it looks for a new frame; the panes redraw at their own pace (ui/pacing.py).
FRAME_INTERVAL_S = 0.25
# Below this width or height the panes stack, and the norm and embedding panes give way to the others.
COMPACT_WIDTH, COMPACT_HEIGHT = 100, 30
# What SIGTERM's exit status is (a process ended by a signal, as a shell reports it).
TERMINATED = 128 + 15
# The command (by its name in `Source.refused`) each steering action sends; `scale` and `ask` name theirs
# in their first parameter (`weight_decay`, `lr`).
COMMAND_OF_ACTION = {
    "toggle_pause": "pause",
    "checkpoint": "checkpoint",
    "restart": "restart",
    "ungrok": "train_size",
    "constrain_norm": "norm_constraint",
    "ask_norm": "norm_constraint",
    "grokfast": "grokfast",
}
# The actions that move through a replay: disabled, and a press says why, where the source has none.
REPLAY_ACTIONS = {"replay", "replay_first", "replay_end"}


class RunScreen(MonitorScreen):
    DEFAULT_CSS = """
    RunScreen #top { height: 1fr; }
    RunScreen #bottom { height: 1fr; }
    RunScreen #top CurvesPane { width: 2fr; }
    RunScreen EmbeddingPane { width: 1fr; min-width: 30; }
    RunScreen.-compact EmbeddingPane { display: none; }
    RunScreen WeightsPane { width: 2fr; }
    RunScreen FrequenciesPane { width: 1fr; min-width: 24; }
    RunScreen NormPane { width: 1fr; }
    RunScreen.-compact NormPane { display: none; }
    RunScreen.-compact FrequenciesPane { min-width: 20; }
    """
    KEYS = keys.RUN_KEYS
    BINDINGS = keys.RUN_KEYS

    def __init__(
        self,
        source: Source,
        *,
        frame_interval: float = FRAME_INTERVAL_S,
        refresh: float = DEFAULT_REFRESH_S,
    ) -> None:
        """Runs compared with this one (`source.others`, `grok-tui watch A B`) are drawn on the curves, run
        i + 1 of the comparison in palette colour i + 1; `source.label` names this run in their legend."""
        super().__init__()
        self.pacer = Pacer(Cadence.for_refresh(refresh), tick=frame_interval)
        self.frame_interval = self.pacer.tick
        self.source = source
        self.history = History()
        # The run before the last restart, frozen: drawn faded behind the new one (one, never more).
        self.ghost: Overlay | None = None
        self.snapshot: Snapshot | None = None
        self.error: str | None = None
        self._restarting = False
        self._checkpoint_asked: int | None = None  # the checkpoint count when `c` was pressed
        # Will it grok, and when: shown on the status line and marked on the curves (grok_tui/forecast/live.py).
        self.forecast = LiveForecast()
        self.outlook: Outlook | None = None

    # ---- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusPane()
        with Vertical(id="panes"):
            with Horizontal(id="top"):
                yield CurvesPane()
                yield EmbeddingPane()
            with Horizontal(id="bottom"):
                yield WeightsPane()
                yield FrequenciesPane()
                yield NormPane()
        yield Footer()

    def on_mount(self) -> None:
        # Everything built so far lives as long as the screen: move it out of the
        # collector's sight, or each full collection rescans ~200k objects (~80 ms).
        gc.freeze()
        self._apply_size()
        self._describe_source()
        self.set_interval(self.frame_interval, self.draw_frame)
        self._start_worker()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size)

    def _apply_size(self, size: Size | None = None) -> None:
        width, height = size or self.app.size
        self.set_class(width < COMPACT_WIDTH or height < COMPACT_HEIGHT, "-compact")

    # ---- the source -----------------------------------------------------------------

    def _describe_source(self) -> None:
        """A run read from its directory says so on the status line, with the directory in place of the device."""
        status = self.query_one(StatusPane)
        mode = self.source.mode
        if mode.read_only:
            runs = 1 + len(self.source.others)
            status.view = f"comparing {runs} runs" if mode is Mode.COMPARING else mode.value
            status.where = str(self.run_dir) if self.run_dir is not None else None
        else:
            status.view = status.where = None
        replay = self.replay
        if replay is not None and replay.steps:
            at = replay.position
            if at is None:
                status.view = f"{status.view or mode.value} · ←/→ replay"
            else:
                status.view = f"replay: step {replay.steps[at]:,} ({at + 1}/{len(replay.steps)})"

    @property
    def replay(self) -> Replay | None:
        """The source's recorded steps, where it has them (an optional member of a Source)."""
        return getattr(self.source, "replay", None)

    def _replayed_step(self) -> int | None:
        replay = self.replay
        if replay is None or replay.position is None or not replay.steps:
            return None
        return replay.steps[replay.position]

    def _start_worker(self) -> None:
        self.run_worker(self._follow, name="training", group="training", thread=True, exclusive=True)

    @property
    def _training_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.group == "training" and w.node is self]

    def _follow(self) -> None:
        worker = get_current_worker()
        self.source.run(cancelled=lambda: worker.is_cancelled)

    def draw_frame(self, at_once: bool = False) -> None:
        """Take the newest frame, if any, and redraw the panes that are due (the timer's only job); `at_once`:
        every pane now, whatever its turn (a replay moved)."""
        if not self.query(StatusPane):
            return  # the screen is being torn down (a tick can come after its panes have gone)
        snapshot, rows, error = self.source.mailbox.take()
        for notice in self.source.mailbox.take_notices():
            self.notify(notice, severity="warning", timeout=8)
        for row in rows:
            self.history.add(row.to_dict())
        for other in self.source.others:
            if other.poll() and self.snapshot is not None:
                self.pacer.news()
            for notice in other.take_notices():
                self.notify(notice, severity="warning", timeout=8)
        if error and error != self.error:
            self.error = error
            self.notify(error, title="training stopped", severity="error", timeout=10)
            self.pacer.news()
        if snapshot is None and self.snapshot is None:
            if error:  # it failed before its first frame: say so, don't go on "starting" for ever
                self.query_one(StatusPane).show_failure(error)
            return
        if snapshot is not None:
            if snapshot.fault and (self.snapshot is None or self.snapshot.fault != snapshot.fault):
                self.notify(snapshot.fault, title="training paused", severity="error", timeout=10)
            if self._checkpoint_asked is not None and snapshot.checkpoints > self._checkpoint_asked:
                self._checkpoint_asked = None
                self.notify(f"checkpoint saved at step {snapshot.checkpoint_step:,} in {self.run_dir}")
            first = self.snapshot is None  # of the app, or of a restarted run: no pane waits its turn
            self.snapshot = snapshot
            self.history.sync_events(snapshot.events)
            self.pacer.news(at_once=first or at_once)
            if first:  # the run's hello has come: what it refuses (Source.refused) is known now
                self.refresh_bindings()
            self._describe_source()  # a replay found since, or moved
        # Between two frames a group's news waits for its turn: a pane is never left stale.
        current = self.snapshot
        if current is None:
            return
        if self._update_forecast(current):
            self.pacer.news()  # the forecast moved (at most once a second), maybe after the frame that brought it
        due = self.pacer.due()
        curves = self.query_one(CurvesPane)
        if curves.display and curves.cadence in due:
            self._show_curves(current)
        inspection = (self.query_one(WeightsPane), self.query_one(FrequenciesPane), self.query_one(EmbeddingPane))
        for pane in (self.query_one(NormPane), *inspection):
            if pane.display and pane.cadence in due:
                pane.show(current, self.history)
        if "status" in due:
            self.query_one(StatusPane).show(current, self.history, self.error)

    def _update_forecast(self, snapshot: Snapshot) -> bool:
        """The forecast from the curves so far (as they stood at a replayed step), for the panes to show
        (worked out again only on news, at most once a second: forecast/live.py); whether it changed."""
        before = self.outlook
        self.outlook = self.forecast.update(self.history, snapshot, self.source.config, at=self._replayed_step())
        self.query_one(StatusPane).forecast = self.outlook
        return self.outlook != before

    def _show_curves(self, snapshot: Snapshot) -> None:
        overlays = [Overlay(other.label, other.history, i + 1) for i, other in enumerate(self.source.others)]
        if self.ghost is not None:
            overlays.insert(0, self.ghost)
        # No overlays and no label: the pane's single-run drawing, exactly as before.
        self.query_one(CurvesPane).show(
            snapshot,
            self.history,
            overlays,
            label=self.source.label,
            at=self._replayed_step(),
            forecast=self.outlook.marker_step if self.outlook is not None else None,
        )

    # ---- commands ----------------------------------------------------------------------

    @property
    def run_dir(self) -> Path | None:
        return self.source.run_dir

    def _control(self):
        control = self.source.control
        if control is None:
            self.notify("read-only: this view follows a run directory", severity="warning")
        elif not self.training:
            self.notify("the trainer is not running: nothing to steer", severity="warning")
            return None
        return control

    @property
    def training(self) -> bool:
        """Whether a trainer is there to take commands."""
        return self.error is None and any(w.is_running for w in self._training_workers)

    def _current(self, name: str) -> float | None:
        if self.snapshot is None:
            return None
        return {"weight_decay": self.snapshot.now.weight_decay, "lr": self.snapshot.now.lr}[name]

    def set_hyper(self, name: str, value: float) -> None:
        control = self._control()
        if control is not None:
            control.set(name, value)

    def action_scale(self, name: str, factor: float) -> None:
        # Relative: the trainer multiplies the value it holds when the command arrives,
        # so a burst of presses composes even before any frame shows the first.
        control = self._control()
        if control is not None:
            control.scale(name, factor)

    def action_ask(self, name: str) -> None:
        current = self._current(name)
        if current is None or self._control() is None:
            return
        label = {"weight_decay": "weight decay", "lr": "learning rate"}[name]
        self._ask_number(
            f"New {label} (now {current:g})",
            current,
            lambda text: parse_hyper(name, text),
            lambda value: self.set_hyper(name, value),
        )

    def _ask_number(self, title: str, current: float, parse, apply) -> None:
        """Open the value modal; `parse` turns text into a value or raises ValueError saying why."""

        def done(value: float | None) -> None:
            if value is not None:
                apply(value)

        self.app.push_screen(ValueInput(title, current, parse), done)

    def action_ungrok(self) -> None:
        control = self._control()
        if control is None or self.snapshot is None:
            return
        if self.snapshot.ungrokking:
            control.train_size(None)
            return
        size = self.snapshot.metrics.train_size or 100
        self._ask_number(
            f"Ungrok: train on how many of the {size} examples?",
            max(1, round(0.075 * size)),
            lambda text: parse_subset(text, size),
            control.train_size,
        )

    def action_constrain_norm(self) -> None:
        control = self._control()
        if control is not None:
            control.toggle("norm_constraint")

    def action_ask_norm(self) -> None:
        control = self._control()
        if control is None or self.snapshot is None:
            return
        self._ask_number(
            "Hold the weight norm at",
            self.snapshot.metrics.param_norm,
            parse_norm,
            lambda value: control.constrain_norm(value),
        )

    def action_grokfast(self) -> None:
        control = self._control()
        if control is not None:  # with the run's own alpha and lambda (--grokfast-alpha, --grokfast-lamb)
            control.toggle("grokfast")

    def action_toggle_pause(self) -> None:
        control = self._control()
        if control is not None:
            control.toggle("pause")

    def action_checkpoint(self) -> None:
        """Ask for a checkpoint; the trainer's next frame confirms it (or its fault says why not)."""
        control = self._control()
        if control is not None:
            self._checkpoint_asked = self.snapshot.checkpoints if self.snapshot else 0
            control.save_checkpoint()

    @property
    def exports(self) -> Path:
        """Where `x` and `s` write: the run directory, or for a watched run (read-only) the current one."""
        own = self.run_dir if not self.source.mode.read_only else None
        return own or Path(".")

    def _export_name(self, name: str) -> str:
        watched = self.run_dir if self.source.mode.read_only else None
        return f"{watched.name}-{name}" if watched is not None else name

    def action_export_csv(self) -> None:
        if self.run_dir is None:
            return
        try:
            path = export_csv(self.run_dir, self.exports / self._export_name("metrics.csv"))
        except WriteError as e:
            self.notify(str(e), title="CSV not written", severity="error")
            return
        self.notify(f"metrics exported to {path}")

    def action_screenshot_svg(self) -> None:
        step = self.snapshot.step if self.snapshot else 0
        self.write_screenshot(self.exports / self._export_name(f"screen-step{step}.svg"))

    def action_log_x(self) -> None:
        self.query_one(CurvesPane).toggle_log_x()
        self.draw_frame_now()

    def action_cycle_matrix(self) -> None:
        self.query_one(WeightsPane).cycle()

    def action_sort_neurons(self) -> None:
        self.query_one(WeightsPane).toggle_sort()

    def action_cycle_projection(self) -> None:
        pane = self.query_one(EmbeddingPane)
        pane.cycle()
        if not pane.display:  # it still turns, to be seen once the terminal is large enough
            self.notify(f"the embedding pane needs {COMPACT_WIDTH}x{COMPACT_HEIGHT} or more", severity="warning")

    def action_replay(self, frames: int) -> None:
        """Move the replay `frames` recorded steps (back where negative); from the run as it is now, the first
        step back is the newest recorded one, and stepping on past it comes back to now."""
        replay = self.replay
        if replay is None or not replay.steps:
            return
        end = len(replay.steps)  # the run as it is now counts as one past the last recorded step
        at = end if replay.position is None else replay.position
        to = max(0, min(end, at + frames))
        self._seek(replay, None if to == end else to)

    def action_replay_first(self) -> None:
        if (replay := self.replay) is not None:
            self._seek(replay, 0)

    def action_replay_end(self) -> None:
        if (replay := self.replay) is not None:
            self._seek(replay, None)

    def _seek(self, replay: Replay, index: int | None) -> None:
        if index == replay.position:
            return
        replay.seek(index)  # the source puts that step's frame in its mailbox at once: drawn now
        self.draw_frame(at_once=True)

    def redraw(self) -> None:
        self.draw_frame_now()

    def draw_frame_now(self) -> None:
        """Redraw from the frame in hand (a view setting changed, not the data)."""
        if self.snapshot is not None:
            if self.query_one(CurvesPane).display:
                self._show_curves(self.snapshot)
            norm = self.query_one(NormPane)
            if norm.display:
                norm.show(self.snapshot, self.history)
            # Its colours come from the theme; unchanged text skips the redraw.
            self.query_one(StatusPane).show(self.snapshot, self.history, self.error)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.help_rows()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `esc` only over a sweep's map (the home screen has nowhere to go back to).
        if action == "back":
            return not self.is_home
        if action.partition("(")[0] in REPLAY_ACTIONS and self.replay is None:  # as Textual names it, or a binding
            # A run read from its directory without a history: disabled, and a press says why (on_key); a run
            # trained now has nothing recorded to step through: no such keys.
            return None if self.source.mode.read_only else False
        # A command the run cannot take: shown disabled (None), and a press says why (on_key).
        return None if self._refused(action, parameters) is not None else True

    def refusal(self, action: str) -> str | None:
        try:
            _, name, parameters = parse(action)
        except ActionError:
            return None
        return self._refused(name, parameters)

    def _refused(self, action: str, parameters: tuple[object, ...]) -> str | None:
        """Why the source's run cannot take what `action` sends (Source.refused), or None."""
        if action in REPLAY_ACTIONS:
            return self._no_replay()
        command = parameters[0] if action in ("scale", "ask") and parameters else COMMAND_OF_ACTION.get(action)
        refused = self.source.refused
        return refused.get(command) if isinstance(command, str) else None

    def _no_replay(self) -> str | None:
        """Why the arrow keys do nothing over a run read from its directory, or None (a replay is there, or the
        run trains now: the keys are not there at all)."""
        if self.replay is not None or not self.source.mode.read_only:
            return None
        return (
            f"{self.run_dir} holds no readable {REPLAY}: this run kept no history of its views (a run of an older "
            "grok-tui, a sweep's member); its newest frame is shown"
        )

    def on_key(self, event: events.Key) -> None:
        """A disabled key is never silently ignored: Textual does not run its action, and this says why."""
        for binding in self.KEYS:
            if binding.key == event.key and (why := self.refusal(binding.action)) is not None:
                self.notify(why, title=f"{binding.key_display or binding.key}: not for this run", severity="warning")
                return

    async def action_back(self) -> None:
        await self.action_quit_app()

    async def action_restart(self) -> None:
        if self.source.control is None:
            self._control()  # says read-only
            return
        if self._restarting or self.snapshot is None:
            return  # one restart at a time, and only once the last one has shown a frame
        if self.source.restart_refusal is not None:  # asked first: a run that cannot be remade is left training
            self.notify(self.source.restart_refusal, title="cannot restart", severity="error")
            return
        self._restarting = True
        try:
            await self._stop_training()
            try:
                source = self.source.restarted()
            except CannotRestart as e:
                self.notify(str(e), title="cannot restart", severity="error")
                return
            before, after = self.source.config or {}, source.config or {}
            self.source = source
            self._describe_source()
            if len(self.history):
                # Named by what sets it apart from the new run (its seed, at least), e.g. `seed 0 (previous)`.
                previous = labels([before, after])[0]
                self.ghost = Overlay(f"{previous} (previous)", self.history.freeze(CURVE_SERIES), faded=True)
            self.history = History()
            self.forecast, self.outlook = LiveForecast(), None
            self.snapshot, self.error = None, None
            self._start_worker()
            where = f" in {source.run_dir}" if source.run_dir is not None else ""
            self.notify(f"restarted with seed {after.get('seed')}{where}")
        finally:
            self._restarting = False

    async def action_quit_app(self, status: int = 0) -> None:
        await self._stop_training()
        if self.is_home:
            self.leave(status)
        else:  # a sweep's member: back to the map
            self.dismiss()

    async def terminated(self) -> None:
        await self.action_quit_app(TERMINATED)

    def hang_up(self) -> None:
        self.call_later(self.action_detach)

    async def action_detach(self) -> None:
        """Leave the run training on its own; `grok-tui attach RUN_DIR` comes back to it."""
        if not self.source.can_detach:
            what = (
                "this view only reads a run directory"
                if self.source.control is None
                else "this run trains inside the monitor"
            )
            self.notify(f"cannot detach: {what}", severity="warning")
            return
        farewell = None
        if self.training and self.run_dir is not None:
            farewell = f"grok-tui: detached; {self.run_dir} trains on. Come back with: grok-tui attach {self.run_dir}"
        workers = self._training_workers
        for worker in workers:
            worker.cancel()
        await _wait(workers, 2.0)
        self.leave(0, farewell)

    async def _stop_training(self, timeout: float = 10.0) -> None:
        """Ask the trainer to stop and wait (without blocking the UI) until the run directory is flushed:
        the session ends when the run says goodbye, after its last checkpoint."""
        workers = self._training_workers
        if self.source.control is not None and self.training:
            self.source.stop()
            await _wait(workers, timeout)
        for worker in workers:
            worker.cancel()
        await _wait(workers, timeout)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "training" and event.state == WorkerState.ERROR:
            self.error = f"{type(event.worker.error).__name__}: {event.worker.error}"

    def crash_dir(self) -> Path | None:
        return None if self.source.mode.read_only else self.run_dir  # never a watched run's directory


async def _wait(workers: list[Worker], timeout: float) -> None:
    async def all_done() -> None:
        for worker in workers:
            await worker.wait()

    try:
        await asyncio.wait_for(all_done(), timeout)
    except (asyncio.TimeoutError, WorkerFailed, WorkerCancelled):
        pass  # the run directory is flushed by the trainer's own finally; nothing more to wait for


__all__ = ["FRAME_INTERVAL_S", "RunScreen"]
