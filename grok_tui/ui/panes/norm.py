"""The parameter norm: it rises while the network memorizes and falls as it generalizes."""

from __future__ import annotations

from textual.app import ComposeResult

from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.base import Pane, component_rgb
from grok_tui.ui.panes.curves import CurvesPane, event_markers
from grok_tui.ui.panes.plot import Line, SeriesPlot


class NormPane(Pane):
    COMPONENT_CLASSES = {"plot--norm"}
    DEFAULT_CSS = "NormPane > .plot--norm { color: violet; }"

    def __init__(self, **kwargs) -> None:
        super().__init__("parameter norm", **kwargs)

    def compose(self) -> ComposeResult:
        yield SeriesPlot(id="norm-plot")

    def show(self, snapshot: Snapshot, history: History) -> None:
        s = history.series("param_norm")
        start = s.values[0] if len(s) else snapshot.metrics.param_norm
        now = snapshot.metrics.param_norm
        self.set_title(f"norm {now:.1f} ({now / start:.0%})" if start else "norm")
        line = Line("norm", s.steps, s.values, component_rgb(self, "plot--norm"))
        plot = self.query_one(SeriesPlot)
        plot.log_x = self.app.query_one(CurvesPane).log_x
        plot.set_data([line], event_markers(history))
