"""One glance: where the run is, how fast, with which settings, in which phase, and what it is forecast to do
(grok_tui/forecast/live.py: from the fit until test accuracy settles)."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from grok_tui.forecast.live import Outlook
from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.lean import LeanLines


def _clock(seconds: float) -> str:
    minutes, s = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{s:04.1f}" if hours else f"{minutes}:{s:04.1f}"


def _interventions(snapshot: Snapshot, style: Style) -> list[tuple[str, Style]]:
    """The interventions in force, loud: they change what the curves mean."""
    now = snapshot.now
    active = []
    if now.train_size is not None:
        active.append(f"UNGROK {now.train_size}")
    if now.norm_target is not None:
        active.append(f"NORM={now.norm_target:.1f}")
    if now.grokfast:
        active.append("GROKFAST")
    return [(" ".join(active), style)] if active else []


# At most this many param groups' values on the status line; more end in "…".
MAX_GROUPS_SHOWN = 4


def _per_group(snapshot: Snapshot, index: int, held: float) -> str:
    """A setting as the status line writes it: one value, or where the param groups hold different ones,
    each group's in order, `|` between them (index 0: weight decay, 1: lr)."""
    values = [group[index] for group in snapshot.groups]
    if len(set(values)) <= 1:
        return f"{held:.4g}"
    shown = "|".join(f"{v:.4g}" for v in values[:MAX_GROUPS_SHOWN])
    return shown + ("|…" if len(values) > MAX_GROUPS_SHOWN else "")


class StatusPane(LeanLines, Static):
    DEFAULT_CSS = """
    StatusPane { height: 2; padding: 0 1; }
    """
    COMPONENT_CLASSES = {
        "status--label",
        "status--value",
        "status--memorizing",
        "status--generalizing",
        "status--generalized",
        "status--partly-generalized",
        "status--alert",
        "status--forecast",
    }

    def __init__(self, **kwargs) -> None:
        super().__init__("starting the trainer…", **kwargs)
        self.note: str | None = None  # a line from the app (read-only, faults) shown in place of nothing
        # How this run is seen ("watch", "comparing 3 runs") and from where (its directory), when not trained here.
        self.view: str | None = None
        self.where: str | None = None
        # The forecast to show beside the phase (its wording is Outlook.text), set by the screen; None: nothing.
        self.forecast: Outlook | None = None
        self._shown: tuple[Snapshot, History, str | None] | None = None

    def on_resize(self) -> None:
        # What fits on the first line depends on the width: lay it out again.
        if self._shown is not None:
            self.show(*self._shown)

    def show_failure(self, error: str) -> None:
        """A trainer that failed before its first frame: nothing to show but why."""
        alert = self.get_component_rich_style("status--alert")
        self._update(Text.assemble(("STOPPED", alert), "\n", (error, alert)))

    def show(self, snapshot: Snapshot, history: History, error: str | None = None) -> None:
        self._shown = (snapshot, history, error)
        label = self.get_component_rich_style("status--label")
        value = self.get_component_rich_style("status--value")
        alert = self.get_component_rich_style("status--alert")
        m = snapshot.metrics
        if error or snapshot.fault:
            state, state_style = "STOPPED" if error else "PAUSED (fault)", alert
        elif snapshot.paused:
            state, state_style = "PAUSED", alert
        else:
            # The phase from the curves (history.py): as it was at the step shown, where that is an earlier one
            # (a replay).
            word = history.phase(m.step if m.step < (history.last_step or 0) else None) or "learning"
            state = word.upper() + (" · finished" if snapshot.finished else "")
            state_style = (
                self.get_component_rich_style(f"status--{word.replace(' ', '-')}") if word != "learning" else value
            )

        def pair(name: str, text: str) -> list[tuple[str, Style]]:
            return [(f"{name} ", label), (text, value), ("  ", label)]

        pieces = {
            "name": [(f"{snapshot.experiment}{f' [{self.view}]' if self.view else ''} ", value)],
            "device": [(f"on {self.where or snapshot.device}  ", label)],
            "step": pair("step", f"{m.step:,}/{snapshot.total_steps:,}"),
            "speed": pair("speed", f"{m.steps_per_s:,.0f}/s"),
            "time": pair("time", _clock(m.elapsed_s)),
            # The run process's own figures, from its frames (or sampled by pid for a run read from its files);
            # a finished run's process has ended, and its last figures would be read as today's.
            "system": [(f"{snapshot.system.describe()}  ", label)] if snapshot.system and not snapshot.finished else [],
            "state": [(state, state_style)],
            "forecast": [("  ", label), (self.forecast.text, self.get_component_rich_style("status--forecast"))]
            if self.forecast is not None
            else [],
        }
        # A narrow terminal drops the least telling pieces rather than wrapping
        # the phase onto the second line, which has no room for it.
        for optional in ("", "system", "speed", "device", "time", "forecast"):  # "": first try with every piece
            pieces.pop(optional, None)
            first = Text.assemble(*(part for parts in pieces.values() for part in parts))
            if not self.content_size.width or first.cell_len <= self.content_size.width:
                break
        # The settings as the trainer holds them now; the accuracies as last measured. A script's run also
        # names its optimizer and, where its param groups differ, each group's values (dropped, in that
        # order, when the line is too wide: the values the keys change are still there).
        now = snapshot.now
        optimizer = [(f"{snapshot.optimizer}  ", value)] if snapshot.optimizer else []
        for named, per_group in ((optimizer, True), ([], True), ([], False)):
            second = Text.assemble(
                *named,
                *pair("wd", _per_group(snapshot, 0, now.weight_decay) if per_group else f"{now.weight_decay:.4g}"),
                *pair("lr", _per_group(snapshot, 1, now.lr) if per_group else f"{now.lr:.4g}"),
                *(pair("l1", f"{now.l1:.3g}") if now.l1 else []),
                *pair("train", f"{m.train_acc:.1%} ({m.train_loss:.2g})"),
                *pair("test", f"{m.test_acc:.1%} ({m.test_loss:.2g})"),
                *pair("norm", f"{m.param_norm:.1f}"),
                *_interventions(snapshot, alert),
            )
            if not (snapshot.optimizer or snapshot.groups):
                break  # a preset's run: the line it has always had
            if not self.content_size.width or second.cell_len <= self.content_size.width:
                break
        problem = error or snapshot.fault or self.note
        if problem:
            second = Text(problem, style=alert)
        self._update(Text("\n").join([first, second]))

    def _update(self, text: Text) -> None:
        # Paused, or between two evaluations, the same two lines come again: don't send them.
        # Its height is fixed (2), so a new text never calls for a new layout of the screen.
        if text != self.content:
            self.update(text, layout=False)
