"""The sweep monitor: the phase map of a sweep as it trains, and the curves of the cell under the cursor.

Like the single-run monitor it never trains: the sweep's own process does
(sweep/launch.py), and the monitor reads the sweep directory (SweepFollower)
in a thread worker, at the pace `--refresh` sets, so a slow disk never freezes
the keys. Only the selected cell's members are followed for their curves.

`enter` leaves this app with the member to open; `run_sweep_monitor` then runs
the ordinary read-only monitor over that member (`grok-tui watch MEMBER_DIR`)
and, when it is closed, opens the map again on the same cell.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, ProgressBar, Static

from grok_tui.compare import labels
from grok_tui.sources.watched import CurvesFollower
from grok_tui.sweep.launch import State, start_sweep, stop_own, sweep_state
from grok_tui.sweep.phases import PHASES
from grok_tui.sweep.store import SweepFollower, SweepView
from grok_tui.sweep.text import LETTERS, duration
from grok_tui.ui.monitor import KeyRow, MonitorApp
from grok_tui.ui.pacing import DEFAULT_REFRESH_S, Cadence
from grok_tui.ui.panes.curves import CurvesPane, Overlay
from grok_tui.ui.panes.phase_map import Cell, PhaseMapPane, cell_key
from grok_tui.ui.screens.help import HelpScreen

if TYPE_CHECKING:
    from grok_tui.sweep.store import MemberView

PROG = "grok-tui"
# At least this wide, the map and the curves sit side by side.
WIDE = 140

# (key, shown as, action, footer label, description for help and the palette, in the footer)
KEYS: list[KeyRow] = [
    ("enter", "enter", "open_member", "open", "Open the chosen member of the cell in the ordinary monitor", True),
    ("s", "s", "screenshot_svg", "svg", "Save an SVG screenshot (in the sweep directory)", True),
    ("g", "g", "log_x", "log-x", "Toggle a log-scale step axis on the curves", False),
    ("t", "t", "cycle_theme", "theme", "Switch theme", False),
    ("question_mark", "?", "help", "help", "Show every key", True),
    ("q", "q", "quit_app", "quit", "Quit: stop the sweep if this monitor started it, and close", True),
    ("d", "d", "detach", "detach", "Detach: leave the sweep training (grok-tui watch SWEEP_DIR reopens it)", True),
]
# The map's own keys (ui/panes/phase_map.py), for the help screen.
MAP_KEYS = [
    ("arrows", "Move the cursor over the map (up: larger values of the second axis)"),
    ("m", "Choose the next member of the cell: enter opens it (the first, until m is pressed)"),
]
PANES = """\
[b]phase map[/b]  one cell per pair of values of the first two axes (first across, second up); \
a block per member inside it, for the other axes and the seeds, in their order. \
A decided member shows its phase's colour and letter: C comprehension, G grokking, S semi-grokking, \
M memorization, X confusion; an undecided one a shade from dim to bright by its test accuracy (and the \
accuracy itself where there is room).
[b]curves[/b]  the loss and accuracy of the selected cell's members, one colour each (test solid, train dotted)
[b]q[/b]  over a sweep this monitor started, q stops it (its shards checkpoint; grok-tui sweep --resume \
continues it). Over a sweep watched with grok-tui watch SWEEP_DIR, q only closes the monitor: the sweep \
trains on, as d leaves it.
"""


@dataclass(frozen=True)
class Outcome:
    """How the app ended: quit, detach, or open a member (and come back to this cell)."""

    action: str
    member_dir: Path | None = None
    cell: Cell | None = None
    chosen: int = 0
    message: str | None = None  # a line to print once the terminal is ours again
    status: int = 0


class SweepStatus(Static):
    """The first line: the sweep, its members, its phases so far, and the state of its process."""

    DEFAULT_CSS = "SweepStatus { height: 1; padding: 0 1; }"


class SweepApp(MonitorApp[Outcome]):
    TITLE = "grok-tui sweep"
    CSS = """
    #progress { height: 1; padding: 0 1; }
    #progress ProgressBar { width: 1fr; }
    #progress Bar { width: 1fr; }
    #eta { width: auto; padding: 0 0 0 1; }
    #body { height: 1fr; layout: vertical; }
    App.-wide #body { layout: horizontal; }
    PhaseMapPane { height: 1fr; width: 1fr; }
    CurvesPane { height: 1fr; width: 1fr; }
    SweepStatus > .status--alert { color: red; text-style: bold; }
    """
    KEYS = KEYS
    BINDINGS = [
        Binding(key, action, short, show=show, key_display=display, tooltip=description)
        for key, display, action, short, description, show in KEYS
    ]

    def __init__(
        self,
        follower: SweepFollower,
        *,
        process: subprocess.Popen[bytes] | None = None,
        theme: str | None = None,
        refresh: float = DEFAULT_REFRESH_S,
        cell: Cell | None = None,
        chosen: int = 0,
        lock: threading.Lock | None = None,
        notice: str | None = None,
    ) -> None:
        """`process`: the sweep's process, when this monitor started it (then `q` stops it)."""
        super().__init__(theme)
        self.follower = follower
        self.info = follower.info
        self.root = self.info.root
        self.process = process
        self.cadence = Cadence.for_refresh(refresh)
        self.state = State("training" if process is not None else "reading")
        self.view: SweepView | None = None
        self.curves: list[CurvesFollower] = []
        self._start_cell, self._start_chosen = cell, chosen
        self._lock = lock or threading.Lock()  # one poll of the follower at a time, across reopenings
        self._polling = False
        self._again = False  # the selection changed during a poll: poll again at once
        self._curves_news = True
        self._stopping = False
        self._reported: str | None = None
        self._notice = notice

    # ---- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SweepStatus("reading the sweep…")
        with Horizontal(id="progress"):
            yield ProgressBar(total=max(1, self.follower.view().total_steps), show_eta=False)
            yield Static("", id="eta")
        with Horizontal(id="body"):
            yield PhaseMapPane(self.info.grid.axes, self.info.names)
            yield CurvesPane()
        yield Footer()

    @property
    def map(self) -> PhaseMapPane:
        return self.query_one(PhaseMapPane)

    def on_mount(self) -> None:
        self._apply_theme(self.theme_name)
        self._apply_size()
        if self._start_cell is not None:
            self.map.select(self._start_cell, self._start_chosen)
        self.map.focus()
        self._follow_cell()
        self.set_interval(self.cadence.plots, self._tick)
        self._tick()
        if self._notice:
            self.notify(self._notice, severity="warning")
        with contextlib.suppress(RuntimeError, NotImplementedError):
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.call_later, self.action_quit_app)
            loop.add_signal_handler(signal.SIGHUP, self._hang_up)

    def on_unmount(self) -> None:
        with contextlib.suppress(RuntimeError, NotImplementedError):
            for sig in (signal.SIGTERM, signal.SIGHUP):
                asyncio.get_running_loop().remove_signal_handler(sig)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size.width)

    def _apply_size(self, width: int | None = None) -> None:
        self.set_class((width or self.size.width) >= WIDE, "-wide")

    # ---- reading the sweep ---------------------------------------------------------------------

    def _tick(self) -> None:
        if self._polling:
            return
        self._polling = True
        self.run_worker(lambda: self._poll(list(self.curves)), thread=True, group="poll", exit_on_error=False)

    def _poll(self, curves: list[CurvesFollower]) -> None:
        """In a thread: read what the sweep wrote since the last poll, and how its process stands."""
        with self._lock:
            problem = None
            try:
                changed = self.follower.poll()
                skipped = self.follower.take_notices()  # records that could not be read: named once each
            except OSError as e:
                changed, skipped, problem = False, [], f"cannot read {self.root}: {e.strerror or e}"
            except Exception as e:  # a bug in the follower: say so, and keep polling
                changed, skipped, problem = False, [], f"cannot read {self.root}: {type(e).__name__}: {e}"
            added = any([c.poll() for c in curves])
            state = sweep_state(self.root, self.process)
            view = self.follower.view()
        self.call_from_thread(self._apply, view, changed, curves, added, state, problem, skipped)

    def _apply(
        self,
        view: SweepView,
        changed: bool,
        curves: list[CurvesFollower],
        added: bool,
        state: State,
        problem: str | None,
        skipped: list[str],
    ) -> None:
        self._polling = False
        first = self.view is None
        self.view = view
        if state.word == "not started" and view.finished:
            state = State("finished")  # a sweep directory written without a process record (by hand, or copied)
        if not self._stopping:
            self.state = state
        if state.failure and state.failure != self._reported:
            self._reported = state.failure
            self.notify(state.failure, title="the sweep stopped", severity="error", timeout=30)
        if problem and problem != self._reported:
            self._reported = problem
            self.notify(problem, severity="warning")
        for line in skipped:
            self.notify(line, severity="warning")
        if changed or first:
            self.map.show(view)
        if curves == self.curves:  # still the selected cell's
            for follower in curves:
                for notice in follower.take_notices():
                    self.notify(notice, severity="warning")
            if added or self._curves_news:
                self._draw_curves()
        self._draw_status()
        if self._again:
            self._again = False
            self._tick()

    def _follow_cell(self) -> None:
        """Follow the curves of the selected cell's members (and no others)."""
        cell = self.map.cell
        members: list[MemberView] = [
            v for v in self.follower.views if cell_key(self.info.grid.axes, v.member.values) == cell
        ]
        names = labels([m.member.cfg.to_dict() for m in members], [m.name for m in members]) if members else []
        self.curves = [
            CurvesFollower(self.info.member_dir(m.member), name) for m, name in zip(members, names, strict=True)
        ]
        self._curves_news = True
        self.query_one(CurvesPane).set_title(f"curves: {self.map.describe()}")
        if self._polling:
            self._again = True
        else:
            self._tick()

    def on_phase_map_pane_selected(self, message: PhaseMapPane.Selected) -> None:
        if not self.curves or Path(self.curves[0].run_dir) not in self._cell_dirs(message.cell):
            self._follow_cell()

    def _cell_dirs(self, cell: Cell) -> list[Path]:
        axes = self.info.grid.axes
        return [self.info.member_dir(v.member) for v in self.follower.views if cell_key(axes, v.member.values) == cell]

    # ---- drawing -----------------------------------------------------------------------------------

    def _draw_curves(self) -> None:
        self._curves_news = False
        pane = self.query_one(CurvesPane)
        if not self.curves:
            return
        first, *rest = self.curves
        overlays = [Overlay(c.label, c.history, i + 1) for i, c in enumerate(rest)]
        pane.show(None, first.history, overlays, label=first.label, color=0)

    def status_text(self) -> Text:
        """`mod-add sweep · 16 members · C 3 G 5 · 8 undecided · training`."""
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
        word = "stopping…" if self._stopping else self.state.word
        if self.state.word == "training" and self.process is None and not self._stopping:
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
        self.exit(Outcome("open", self.root / "members" / block.name, self.map.cell, self.map.chosen))

    def action_screenshot_svg(self) -> None:
        self.write_screenshot(self.root / f"phase-map-{time.strftime('%Y%m%d-%H%M%S')}.svg")

    def action_log_x(self) -> None:
        self.query_one(CurvesPane).toggle_log_x()
        self._draw_curves()

    def redraw(self) -> None:
        # Colours drawn into the map's text and the curves come from the theme: draw them again.
        self.map.refresh()
        self.call_after_refresh(self._draw_curves)
        self.call_after_refresh(self._draw_status)

    def action_help(self) -> None:
        rows = [(display, description) for _, display, _, _, description, _ in KEYS]
        self.push_screen(HelpScreen(rows[:1] + MAP_KEYS + rows[1:], title="grok-tui sweep", panes=PANES))

    @property
    def owns_training(self) -> bool:
        """Whether the sweep trains now in a process this monitor started (which `q` then stops)."""
        return self.process is not None and self.process.poll() is None

    async def action_quit(self) -> None:  # ctrl+q, as q
        await self.action_quit_app()

    async def action_quit_app(self) -> None:
        if self._stopping:
            return
        if not self.owns_training:
            self.exit(Outcome("quit", status=self._status()))
            return
        self._stopping = True
        self._draw_status()
        self.run_worker(self._stop, thread=True, group="stop", exit_on_error=False)

    def _stop(self) -> None:
        assert self.process is not None
        try:
            ending = stop_own(self.root, self.process)
        except (TimeoutError, OSError) as e:
            self.call_from_thread(self.exit, Outcome("quit", message=f"{PROG}: error: {e}", status=1))
            return
        message = f"{PROG}: the sweep {ending}"
        if ending != "finished":
            message += f"; {PROG} sweep --resume {self.root} continues it"
        self.call_from_thread(self.exit, Outcome("quit", message=message, status=self._status()))

    def _status(self) -> int:
        return 1 if sweep_state(self.root, self.process).failure else 0

    def action_detach(self) -> None:
        """Leave the sweep training on its own; `grok-tui watch SWEEP_DIR` comes back to it."""
        if not self.owns_training:
            self.exit(Outcome("quit", status=self._status()))
            return
        message = f"{PROG}: detached; {self.root} trains on. Come back with: {PROG} watch {self.root}"
        self.exit(Outcome("detach", message=message))

    def _hang_up(self) -> None:
        """The terminal is gone: detach. Textual's way out may block writing to a terminal that no
        longer reads, so a watchdog ends the process (as the single-run monitor does)."""
        self.start_hang_up_watchdog()
        self.call_later(self.action_detach)

    def crash_dir(self) -> Path | None:
        return self.root if self.process is not None else None  # the sweep's directory, if it is ours


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
    from grok_tui.runlog import RunDirError
    from grok_tui.sources.watched import WatchedRun
    from grok_tui.ui.app import run_monitor

    root = Path(root)
    follower = SweepFollower(root)
    process = start_sweep(root, engine_args) if start else None
    lock = threading.Lock()
    cell: Cell | None = None
    chosen, notice = 0, None
    while True:
        app = SweepApp(
            follower, process=process, theme=theme, refresh=refresh, cell=cell, chosen=chosen, lock=lock, notice=notice
        )
        outcome = app.run()
        theme, notice = app.theme_name, None
        if app.crash is not None:
            print(f"{PROG}: error: {app.crash}", file=sys.stderr)
            return 1
        if outcome is None:  # ended by Textual itself (it never is by our keys)
            return app.return_code or 0
        if outcome.action == "open" and outcome.member_dir is not None:
            cell, chosen = outcome.cell, outcome.chosen
            try:
                run_monitor(WatchedRun(outcome.member_dir), theme=theme, refresh=refresh)
            except RunDirError as e:
                notice = f"cannot open {outcome.member_dir.name}: {e}"
            continue
        if outcome.message:
            with contextlib.suppress(OSError):  # the terminal may be gone (a hang-up)
                print(outcome.message, file=sys.stderr if outcome.status else sys.stdout, flush=True)
        return outcome.status


__all__ = ["Outcome", "SweepApp", "run_sweep_monitor"]
