"""The sweep monitor: the phase map of a sweep as it trains, and the curves of the cell under the cursor.

A sweep with one axis besides its seeds (`--map norm-lu`) shows, under its one row of cells, its
members' latest losses and accuracies against that axis (ui/panes/axis_plot.py): the figure the sweep
is for, filling in as it trains.

Like the run monitor it never trains: the sweep's own process does, and this
screen reads the sweep directory through its source (sources/sweep.py) in a
thread worker, at the pace `--refresh` sets, so a slow disk never freezes the
keys. Only the selected cell's members are followed for their curves.

`enter` opens the chosen member: a run screen over this one (read-only, as
`grok-tui watch MEMBER_DIR`), and `esc` or `q` there comes back to the map,
its cursor and theme as they were.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.widgets import Footer, ProgressBar, Static

from grok_tui.runlog import RunDirError
from grok_tui.sources.sweep import State, SweepFrame, SweepSource
from grok_tui.sources.watched import CurvesFollower
from grok_tui.sweep.axis import axis_points, line_axis
from grok_tui.sweep.phases import PHASES
from grok_tui.sweep.store import SweepView
from grok_tui.sweep.text import LETTERS, duration
from grok_tui.ui import keys
from grok_tui.ui.pacing import DEFAULT_REFRESH_S, Cadence
from grok_tui.ui.panes.axis_plot import AxisPlotPane
from grok_tui.ui.panes.curves import CurvesPane, Overlay
from grok_tui.ui.panes.phase_map import Cell, PhaseMapPane, cell_key
from grok_tui.ui.screens.help import HelpScreen
from grok_tui.ui.screens.monitor import MonitorScreen
from grok_tui.ui.screens.run import RunScreen

PROG = "grok-tui"
# At least this wide, the map and the curves sit side by side.
WIDE = 140
# Below this many lines, and narrower than WIDE, a one-axis sweep shows the map and the plot against its
# axis only: three panes stacked would leave each too few lines to read (a member's curves: enter).
SHORT = 32

PANES = """\
[b]phase map[/b]  one cell per pair of values of the first two axes (first across, second up); \
a block per member inside it, for the other axes and the seeds, in their order. \
A decided member shows its phase's colour and letter: C comprehension, G grokking, S semi-grokking, \
M memorization, X confusion; an undecided one a shade from dim to bright by its forecast once it has fitted \
(the probability that it generalizes; g or m, the phase expected), else by its test accuracy (and the \
accuracy itself where there is room).
[b]curves[/b]  the loss and accuracy of the selected cell's members, one colour each (test solid, train dotted)
[b]against the axis[/b]  a sweep with one axis besides its seeds (grok-tui sweep --map norm-lu): each value's \
latest train and test loss (log) and accuracy, a line through the means over its seeds and a point per seed; \
the selected value marked. With the weight norm held as the axis it is Omnigrok's LU figure.
[b]q[/b]  over a sweep this monitor started, q stops it (its shards checkpoint; grok-tui sweep --resume \
continues it). Over a sweep watched with grok-tui watch SWEEP_DIR, q only closes the monitor: the sweep \
trains on, as d leaves it.
"""


class SweepStatus(Static):
    """The first line: the sweep, its members, its phases so far, and the state of its process."""

    DEFAULT_CSS = "SweepStatus { height: 1; padding: 0 1; }"


class SweepScreen(MonitorScreen):
    DEFAULT_CSS = """
    SweepScreen #progress { height: 1; padding: 0 1; }
    SweepScreen #progress ProgressBar { width: 1fr; }
    SweepScreen #progress Bar { width: 1fr; }
    SweepScreen #eta { width: auto; padding: 0 0 0 1; }
    SweepScreen #body { height: 1fr; layout: vertical; }
    SweepScreen.-wide #body { layout: horizontal; }
    SweepScreen PhaseMapPane { height: 1fr; width: 1fr; }
    SweepScreen CurvesPane { height: 1fr; width: 1fr; }
    SweepScreen #side { height: 2fr; width: 1fr; }
    SweepScreen.-wide #side { height: 1fr; }
    SweepScreen #side PhaseMapPane { height: 7; }
    SweepScreen.-short.-one-axis CurvesPane { display: none; }
    SweepScreen AxisPlotPane { height: 1fr; width: 1fr; }
    SweepStatus > .status--alert { color: red; text-style: bold; }
    """
    KEYS = keys.SWEEP_KEYS
    BINDINGS = keys.SWEEP_KEYS

    def __init__(self, source: SweepSource, *, refresh: float = DEFAULT_REFRESH_S) -> None:
        """`source.process`: the sweep's process, when this monitor started it (then `q` stops it)."""
        super().__init__()
        self.source = source
        self.info = source.info
        self.root = self.info.root
        self.refresh_s = refresh
        self.cadence = Cadence.for_refresh(refresh)
        self.state = State("training" if source.process is not None else "reading")
        self.view: SweepView | None = None
        # The sweep's one axis besides its seeds, if that is all it has: drawn against as well as mapped.
        self.line_axis = line_axis(self.info.grid.axes)
        self.curves: list[CurvesFollower] = []
        self._polling = False
        self._again = False  # the selection changed during a poll: poll again at once
        self._curves_news = True
        self._stopping = False
        self._reported: str | None = None

    # ---- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SweepStatus("reading the sweep…")
        with Horizontal(id="progress"):
            yield ProgressBar(total=max(1, self.source.follower.view().total_steps), show_eta=False)
            yield Static("", id="eta")
        with Horizontal(id="body"):
            if self.line_axis is None:
                yield PhaseMapPane(self.info.grid.axes, self.info.names)
            else:
                with Vertical(id="side"):
                    yield PhaseMapPane(self.info.grid.axes, self.info.names)
                    yield AxisPlotPane(self.line_axis)
            yield CurvesPane()
        yield Footer()

    @property
    def map(self) -> PhaseMapPane:
        return self.query_one(PhaseMapPane)

    def on_mount(self) -> None:
        self._apply_size()
        self.map.focus()
        self._follow_cell()
        self.set_interval(self.cadence.plots, self._tick)
        self._tick()

    def on_screen_resume(self) -> None:
        # Back from a member: the map may have moved on meanwhile (it is not read while hidden).
        self._apply_size()
        self._tick()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size)

    def _apply_size(self, size: Size | None = None) -> None:
        width, height = size or self.app.size
        self.set_class(width >= WIDE, "-wide")
        self.set_class(self.line_axis is not None, "-one-axis")
        self.set_class(width < WIDE and height < SHORT, "-short")

    # ---- reading the sweep ---------------------------------------------------------------------

    def _tick(self) -> None:
        if self._polling or not self.is_current:
            return  # one reading at a time, and none while a member's screen hides the map
        self._polling = True
        curves = list(self.curves)
        self.run_worker(lambda: self._read(curves), thread=True, group="poll", exit_on_error=False)

    def _read(self, curves: list[CurvesFollower]) -> None:
        """In a thread: what the sweep wrote since the last reading, and how its process stands."""
        frame = self.source.read(curves)
        self.app.call_from_thread(self._apply, frame, curves)

    def _apply(self, frame: SweepFrame, curves: list[CurvesFollower]) -> None:
        self._polling = False
        first = self.view is None
        view, state, problem = frame.view, frame.state, frame.problem
        self.view = view
        if not self._stopping:
            self.state = state
        if state.failure and state.failure != self._reported:
            self._reported = state.failure
            self.notify(state.failure, title="the sweep stopped", severity="error", timeout=30)
        if problem and problem != self._reported:
            self._reported = problem
            self.notify(problem, severity="warning")
        for line in frame.notices:  # records that could not be read: named once each
            self.notify(line, severity="warning")
        if frame.changed or first:
            self.map.show(view, frame.forecasts)
            self._draw_axis()
        if curves == self.curves:  # still the selected cell's
            for follower in curves:
                for notice in follower.take_notices():
                    self.notify(notice, severity="warning")
            if frame.curves_added or self._curves_news:
                self._draw_curves()
        self._draw_status()
        if self._again:
            self._again = False
            self._tick()

    def _follow_cell(self) -> None:
        """Follow the curves of the selected cell's members (and no others)."""
        cell = self.map.cell
        axes = self.info.grid.axes
        self.curves = self.source.curves(
            [v for v in self.source.follower.views if cell_key(axes, v.member.values) == cell]
        )
        self._curves_news = True
        self.query_one(CurvesPane).set_title(f"curves: {self.map.describe()}")
        if self._polling:
            self._again = True
        else:
            self._tick()

    def on_phase_map_pane_selected(self, message: PhaseMapPane.Selected) -> None:
        self._draw_axis()
        if not self.curves or Path(self.curves[0].run_dir) not in self._cell_dirs(message.cell):
            self._follow_cell()

    def _cell_dirs(self, cell: Cell) -> list[Path]:
        axes = self.info.grid.axes
        views = self.source.follower.views
        return [self.info.member_dir(v.member) for v in views if cell_key(axes, v.member.values) == cell]

    # ---- drawing -----------------------------------------------------------------------------------

    def _draw_axis(self) -> None:
        """The latest figures against the one axis, the cursor's value marked (a sweep with one axis only)."""
        if self.line_axis is None or self.view is None:
            return
        latest = ((m.member.values, {**m.rows[-1], "pruned": m.pruned}) for m in self.view.members if m.rows)
        self.query_one(AxisPlotPane).show_points(axis_points(self.line_axis, latest), self.map.cursor[0])

    def _draw_curves(self) -> None:
        self._curves_news = False
        pane = self.query_one(CurvesPane)
        if not self.curves:
            return
        first, *rest = self.curves
        overlays = [Overlay(c.label, c.history, i + 1) for i, c in enumerate(rest)]
        pane.show(None, first.history, overlays, label=first.label, color=0)

    def status_text(self) -> Text:
        """`mod-add sweep · 16 members · C 3 G 5 · 5 undecided · 3 pruned · training`."""
        view = self.view
        value = self.map.get_component_rich_style("phase-map--label")
        parts: list[Any] = [(f"{self.info.grid.experiment} sweep", "bold"), f" · {len(self.info.grid.members)} members"]
        if view is not None:
            counts = Counter(m.phase for m in view.members)
            decided = [(p, counts[p]) for p in PHASES if counts[p]]
            if decided:
                parts.append(" · ")
            for i, (phase, count) in enumerate(decided):
                parts += [
                    " " if i else "",
                    (f" {LETTERS[phase]} ", self.map.get_component_rich_style(f"phase-map--{phase}")),
                ]
                parts.append(f"{count}")
            if counts[None]:
                parts.append((f" · {counts[None]} undecided", value))
            # Ended without a phase: counted apart, or the counts would not add up to the members.
            for kind in ("pruned", "failed"):
                if counts[kind]:
                    parts.append((f" · {counts[kind]} {kind}", value))
        word = "stopping…" if self._stopping else self.state.word
        if self.state.word == "training" and self.source.process is None and not self._stopping:
            word = "training (not started here)"
        alert = self.state.failure is not None
        parts.append(" · ")
        parts.append((word.upper() if alert else word, "bold red" if alert else "bold"))
        if self.state.failure:
            parts.append((f": {self.state.failure}", "red"))
        text = Text.assemble(*parts)
        text.truncate(max(1, self.size.width - 2), overflow="ellipsis")
        return text

    def _draw_status(self) -> None:
        status = self.query_one(SweepStatus)
        text = self.status_text()
        if text != status.content:
            status.update(text)
        view = self.view
        if view is None:
            return
        bar = self.query_one(ProgressBar)
        total, done = max(1, view.total_steps), view.done_steps
        if bar.total != total or bar.progress != done:
            bar.update(total=total, progress=done)
        eta = view.eta_s()
        words = f"{done:,}/{total:,} steps · {duration(view.elapsed_s)}"
        if eta is not None and not view.finished and self.state.word == "training":
            words += f" · eta {duration(eta)}"
        label = self.query_one("#eta", Static)
        if str(label.content) != words:
            label.update(words)

    # ---- keys ----------------------------------------------------------------------------------------

    def action_open_member(self) -> None:
        blocks = self.map.cell_blocks()
        if not blocks:
            self.notify("no member in this cell", severity="warning")
            return
        block = blocks[min(self.map.chosen, len(blocks) - 1)]
        try:
            member = self.source.member(block.name)
        except RunDirError as e:
            self.notify(f"cannot open {block.name}: {e}", severity="warning")
            return
        self.app.push_screen(RunScreen(member, refresh=self.refresh_s))

    def action_screenshot_svg(self) -> None:
        self.write_screenshot(self.root / f"phase-map-{time.strftime('%Y%m%d-%H%M%S')}.svg")

    def action_log_x(self) -> None:
        self.query_one(CurvesPane).toggle_log_x()
        self._draw_curves()

    def redraw(self) -> None:
        # Colours drawn into the map's text and the curves come from the theme: draw them again.
        self.map.refresh()
        self.call_after_refresh(self._draw_curves)
        self.call_after_refresh(self._draw_axis)
        self.call_after_refresh(self._draw_status)

    def action_help(self) -> None:
        rows = self.help_rows()
        self.app.push_screen(HelpScreen(rows[:1] + keys.MAP_KEYS + rows[1:], title="grok-tui sweep", panes=PANES))

    async def action_quit_app(self) -> None:
        if self._stopping:
            return
        if not self.source.can_detach:
            self.leave(self._status())
            return
        self._stopping = True
        self._draw_status()
        self.run_worker(self._stop, thread=True, group="stop", exit_on_error=False)

    def _stop(self) -> None:
        try:
            ending = self.source.stop()
        except (TimeoutError, OSError) as e:
            self.app.call_from_thread(self.leave, 1, f"{PROG}: error: {e}")
            return
        message = f"{PROG}: the sweep {ending}"
        if ending != "finished":
            message += f"; {PROG} sweep --resume {self.root} continues it"
        self.app.call_from_thread(self.leave, self._status(), message)

    def _status(self) -> int:
        return 1 if self.source.state().failure else 0

    def action_detach(self) -> None:
        """Leave the sweep training on its own; `grok-tui watch SWEEP_DIR` comes back to it."""
        if not self.source.can_detach:
            self.leave(self._status())
            return
        self.leave(0, f"{PROG}: detached; {self.root} trains on. Come back with: {PROG} watch {self.root}")

    def hang_up(self) -> None:
        self.call_later(self.action_detach)

    def crash_dir(self) -> Path | None:
        return self.root if self.source.process is not None else None  # the sweep's directory, if it is ours


def run_sweep_monitor(
    root: Path,
    start: bool = False,
    theme: str | None = None,
    refresh: float = DEFAULT_REFRESH_S,
    engine_args: Sequence[str] = (),
) -> int:
    """The monitor over the sweep in `root` (SweepDirError if it is not one), its exit status.

    `start`: train it first, in a process of its own (the CLI has just created it), with `engine_args`
    (Ray's, say); `q` then stops it. Without, this is `grok-tui watch SWEEP_DIR`: it follows the sweep
    and leaves its process be.
    """
    from grok_tui.ui.app import run_monitor

    source = SweepSource.start(root, engine_args) if start else SweepSource(root)
    return run_monitor(SweepScreen(source, refresh=refresh), theme=theme)


__all__ = ["SweepScreen", "run_sweep_monitor"]
