"""Loss and accuracy against step, with a marker wherever the run was changed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.base import Pane, component_rgb
from grok_tui.ui.panes.plot import Line, SeriesPlot

# Pausing is not a change to the run's course: no marker for it.
UNMARKED_EVENTS = {"paused"}


def event_markers(history: History) -> list[float]:
    return [e.step for e in history.events if e.kind not in UNMARKED_EVENTS]


class CurvesPane(Pane):
    COMPONENT_CLASSES = {"plot--train", "plot--test", "plot--marker"}
    DEFAULT_CSS = """
    CurvesPane > .plot--train { color: dodgerblue; }
    CurvesPane > .plot--test { color: orange; }
    CurvesPane > .plot--marker { color: gray; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("curves: loss and accuracy", **kwargs)
        self.log_x = False

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield SeriesPlot(title="loss (log)", log_y=True, id="loss")
            yield SeriesPlot(title="accuracy", y_limits=(0.0, 1.0), id="acc")

    def toggle_log_x(self) -> bool:
        self.log_x = not self.log_x
        for plot in self.query(SeriesPlot):
            plot.log_x = self.log_x
        self.border_subtitle = "log step" if self.log_x else ""
        return self.log_x

    def show(self, snapshot: Snapshot, history: History) -> None:
        train, test = component_rgb(self, "plot--train"), component_rgb(self, "plot--test")
        markers = event_markers(history)
        for plot_id, key in (("loss", "loss"), ("acc", "acc")):
            lines = []
            for split, color in (("train", train), ("test", test)):
                s = history.series(f"{split}_{key}")
                lines.append(Line(split, s.steps, s.values, color))
            self.query_one(f"#{plot_id}", SeriesPlot).set_data(lines, markers)
