"""A sweep along one axis, drawn: each value's latest train and test loss (log) and accuracy.

With the weight norm as the axis (`grok-tui sweep --map norm-lu`) this is Omnigrok's LU figure, the
train loss L-shaped and the test loss U-shaped, filling in as the members train. The axis's values
sit evenly spaced and labelled as given (they are usually a geometric range, and may hold 0); a line
joins each value's mean over its seeds, and each seed's own point is drawn on it. The value under the
phase map's cursor is marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal

from grok_tui.sweep.axis import AxisPoint
from grok_tui.sweep.grid import Axis, value_text
from grok_tui.ui.panes.base import Pane, component_rgb
from grok_tui.ui.panes.plot import Line, SeriesPlot, linear_ticks, log_ticks

# The plots: (id, title, the figures' suffix, log y, y limits).
PLOTS = (("axis-loss", "loss (log)", "loss", True, None), ("axis-acc", "accuracy", "acc", False, (0.0, 1.0)))
SPLITS = ("train", "test")
# Each seed's own point: a mark plotext draws in one character cell.
SEED_MARK = "•"


@dataclass(frozen=True, eq=False)
class Points(Line):
    """Points drawn unjoined (each seed's), where a Line is joined."""


def axis_lines(points: Sequence[AxisPoint], key: str, colors: dict[str, tuple[int, int, int]]) -> list[Line]:
    """For one figure (`loss` or `acc`): per split, the line of the means over seeds and each seed's points,
    at the values' places on the axis (0, 1, 2...); values with no figure yet are left out."""
    lines: list[Line] = []
    for split in SPLITS:
        name = f"{split}_{key}"
        means = [(p.index, mean) for p in points if (mean := p.mean(name)) is not None]
        lines.append(Line(split, *_columns(means), colors[split]))
        seeds = [(p.index, m[name]) for p in points for m in p.members if name in m]
        lines.append(Points("", *_columns(seeds), colors[split], SEED_MARK))
    return lines


def _columns(pairs: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pairs as two float arrays (both empty for none)."""
    table = np.asarray(pairs, dtype=float).reshape(-1, 2)
    return table[:, 0], table[:, 1]


class AxisPlot(SeriesPlot):
    """Lines and points against an axis's values, evenly spaced: the markers are places on it (0, 1, 2...)."""

    def __init__(self, title: str, labels: Sequence[str], **kwargs) -> None:
        super().__init__(title, **kwargs)
        self.labels = list(labels)

    def _draw(self, width: int, height: int) -> None:
        plt = self.plt
        drawn = []
        for line in self._lines:
            x, y = np.asarray(line.x, dtype=float), np.asarray(line.y, dtype=float)
            if self.log_y:
                with np.errstate(invalid="ignore", divide="ignore"):
                    y = np.where(y > 0, np.log10(y), np.nan)
            keep = np.isfinite(x) & np.isfinite(y)
            x, y = x[keep], y[keep]
            if not len(x):
                continue
            if isinstance(line, Points):
                plt.scatter(x.tolist(), y.tolist(), color=line.color, marker=line.marker)
            else:
                # No label: plotext's legend sits over the first values, where it hid the cursor's mark;
                # the pane's subtitle names the colours instead.
                plt.plot(x.tolist(), y.tolist(), color=line.color, marker=line.marker)
            drawn.append(y)
        n = len(self.labels)
        plt.xlim(-0.5, n - 0.5)
        for place in self._markers:
            if 0 <= place < n:
                plt.vline(place, self.marker_color)
        # As many value labels as fit, the first and every stride-th after it.
        widest = max((len(label) for label in self.labels), default=1) + 2
        stride = max(1, math.ceil(n / max(1, (width - 10) // widest)))
        places = [float(i) for i in range(0, n, stride)]
        plt.xticks(places, [self.labels[int(i)] for i in places])
        if not drawn:
            return
        lo, hi = self._apply_y_limits(min(float(y.min()) for y in drawn), max(float(y.max()) for y in drawn))
        ticks = log_ticks(lo, hi, max(2, height // 3)) if self.log_y else linear_ticks(lo, hi, max(2, height // 3))
        if ticks[0]:
            plt.yticks(*ticks)


class AxisPlotPane(Pane):
    """The latest losses and accuracies against the sweep's one axis: a line of means, a point per seed."""

    COMPONENT_CLASSES = {"plot--train", "plot--test", "plot--marker"}
    # Fallbacks for an app without the theme files; every theme in themes/ sets its own.
    DEFAULT_CSS = """
    AxisPlotPane > .plot--train { color: dodgerblue; }
    AxisPlotPane > .plot--test { color: orange; }
    AxisPlotPane > .plot--marker { color: gray; }
    """

    def __init__(self, axis: Axis, **kwargs) -> None:
        super().__init__(f"latest loss and accuracy against {axis.short}", **kwargs)
        self.axis = axis
        self._subtitle = ""

    def compose(self) -> ComposeResult:
        labels = [value_text(v) for v in self.axis.values]
        with Horizontal():
            for plot_id, title, _, log_y, limits in PLOTS:
                yield AxisPlot(title, labels, log_y=log_y, y_limits=limits, id=plot_id)

    def show_points(self, points: Sequence[AxisPoint], selected: int | None = None) -> None:
        """Draw `points` (sweep/axis.py), marking the value at place `selected`; a no-op when nothing changed."""
        colors = {split: component_rgb(self, f"plot--{split}") for split in SPLITS}
        legend = " ".join(f"[#{r:02x}{g:02x}{b:02x}]━ {split}[/]" for split, (r, g, b) in colors.items())
        subtitle = f"{legend} · line: mean over seeds · {SEED_MARK} each seed · │ the selected value"
        # Kept, not read back (the title reads back as its own markup): setting it repaints the pane.
        if self._subtitle != subtitle:
            self.border_subtitle = self._subtitle = subtitle
        for plot_id, _, key, _, _ in PLOTS:
            plot = self.query_one(f"#{plot_id}", AxisPlot)
            plot.marker_color = component_rgb(self, "plot--marker")
            plot.set_data(axis_lines(points, key, colors), [] if selected is None else [selected])


__all__ = ["AxisPlot", "AxisPlotPane", "Points", "axis_lines"]
