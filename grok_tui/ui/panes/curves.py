"""Loss and accuracy against step, with a marker wherever the run was changed.

Other runs can be overlaid on the same two plots (`grok-tui watch A B`, the ghost
a restart leaves, the members of a sweep): each is an `Overlay`, drawn in a colour
of its own with one legend entry, its test curve solid and its train curve dotted.
With no overlays the pane draws exactly what it always has, at the same cost.

A replayed step (`grok-tui watch` of a run that kept its views) is marked by a vertical line in a colour of
its own (`.plot--replay`), over the whole height of each plot's data; so is the step at which the forecast
(grok_tui/forecast/live.py) expects test accuracy to reach 90% (`.plot--forecast`), while that lies ahead.

A run's own metrics (a script's `m.log(step, grad_norm=...)`, History.custom) are drawn beside its
curves, each named in the legend: on the accuracy plot where every value so far lies in [0, 1], else on
the loss plot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize

from grok_tui.compare import fit
from grok_tui.history import History, Series
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.base import Pane, component_rgb
from grok_tui.ui.panes.plot import Color, Line, SeriesPlot

# Pausing is not a change to the run's course: no marker for it.
UNMARKED_EVENTS = {"paused"}
# Run i of a comparison is drawn in palette colour i (mod its length): the same run, the same colour,
# whatever else is shown. The colours themselves are the theme's (themes/*.tcss, `.plot--run-I`).
PALETTE_SIZE = 6
# How far a faded overlay's colour moves toward the pane's background (0: not at all, 1: invisible).
FADE = 0.6
# The curves each run contributes: (plot id, series key), and the splits drawn in each.
PLOTS = (("loss", "loss"), ("acc", "acc"))
SPLITS = ("train", "test")
# Every series the pane draws: what a frozen copy of a run (a ghost) must hold.
CURVE_SERIES = tuple(f"{split}_{key}" for _, key in PLOTS for split in SPLITS)
# The columns of a plot that its legend's text cannot have: the frame (2), the y tick labels and the
# space after them (up to 8: `compact` writes at most `1.5e-10`), and the legend's marker and padding
# (5). plotext drops the whole legend when its widest label does not fit, so labels are cut to fit.
LEGEND_MARGIN = 2 + 8 + 5
# A run's own metrics (History.custom) take the run palette's colours from this one on (0 and 1 look like
# the train and test curves).
CUSTOM_COLOR_FROM = 2


def event_markers(history: History) -> list[float]:
    return [e.step for e in history.events if e.kind not in UNMARKED_EVENTS]


@dataclass(frozen=True, eq=False)
class Overlay:
    """Another run drawn over the pane's own.

    `source`: a live History, or a frozen copy of its series (`History.freeze()`), holding
    train_loss, test_loss, train_acc and test_acc. `color`: an int picks that colour of the
    theme's run palette (run i of a comparison gets colour i); a colour (a name or an RGB
    triple) is used as it is; None draws it in the pane's own train and test colours (a
    ghost of the run before). `faded`: blended toward the background and drawn behind the
    other runs, for a run that is there for reference.
    """

    label: str
    source: History | Mapping[str, Series]
    color: Color | int | None = None
    faded: bool = False

    def series(self, name: str) -> Series:
        if isinstance(self.source, History):
            return self.source.series(name)
        return self.source[name]


class CurvesPane(Pane):
    COMPONENT_CLASSES = {
        "plot--train",
        "plot--test",
        "plot--marker",
        "plot--fade",
        "plot--replay",
        "plot--forecast",
    } | {f"plot--run-{i}" for i in range(PALETTE_SIZE)}
    # Fallbacks for an app without the theme files; every theme in themes/ sets its own.
    DEFAULT_CSS = """
    CurvesPane > .plot--train { color: dodgerblue; }
    CurvesPane > .plot--test { color: orange; }
    CurvesPane > .plot--marker { color: gray; }
    CurvesPane > .plot--fade { color: black; }
    CurvesPane > .plot--replay { color: $accent; }
    CurvesPane > .plot--forecast { color: teal; }
    CurvesPane > .plot--run-0 { color: dodgerblue; }
    CurvesPane > .plot--run-1 { color: orange; }
    CurvesPane > .plot--run-2 { color: limegreen; }
    CurvesPane > .plot--run-3 { color: violet; }
    CurvesPane > .plot--run-4 { color: tomato; }
    CurvesPane > .plot--run-5 { color: gold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("curves: loss and accuracy", **kwargs)
        self.log_x = False
        self._overlaid = False  # whether the last frame drew other runs (its subtitle says how to read them)
        self._forecast = False  # whether the last frame marked a forecast step (its subtitle says what the line is)
        # What the last call of `show` with a legend of runs drew: drawn again when the pane is resized,
        # since its labels were cut to the width the plots had then.
        self._legend_of_runs: tuple | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield SeriesPlot(title="loss (log)", log_y=True, id="loss")
            yield SeriesPlot(title="accuracy", y_limits=(0.0, 1.0), id="acc")

    def toggle_log_x(self) -> bool:
        self.log_x = not self.log_x
        for plot in self.query(SeriesPlot):
            plot.log_x = self.log_x
        self._set_subtitle()
        return self.log_x

    def _set_subtitle(self) -> None:
        parts = (["log step"] if self.log_x else []) + (["solid: test, dotted: train"] if self._overlaid else [])
        parts += ["line: forecast grokking"] if self._forecast else []
        subtitle = " · ".join(parts)
        # Only a new subtitle is set: each assignment repaints the whole pane.
        if (self.border_subtitle or "") != subtitle:
            self.border_subtitle = subtitle

    def run_color(self, index: int) -> tuple[int, int, int]:
        """Colour `index` of the theme's run palette (it wraps round after PALETTE_SIZE runs)."""
        return component_rgb(self, f"plot--run-{index % PALETTE_SIZE}")

    def show(
        self,
        snapshot: Snapshot | None,
        history: History,
        overlays: Sequence[Overlay] = (),
        *,
        label: str | None = None,
        color: Color | int = 0,
        at: int | None = None,
        forecast: int | None = None,
    ) -> None:
        """Draw `history` (the run the other panes show; its events mark the plots) and each overlay.
        The snapshot is not read (the curves are all in the histories): None where there is none, as in a sweep.

        `label` names the pane's own run in the legend as one of several compared runs, drawn in
        `color` (palette colour 0 unless told) like an overlay; without it the run is drawn as a
        single run is, train and test in their own colours. Faded overlays go behind it, the rest
        over it, in the order given (which is the legend's). `at`: the step a replay shows, marked;
        `forecast`: the step the forecast expects the run to generalize at, marked in a colour of its own.
        """
        markers = event_markers(history)
        self._forecast = forecast is not None
        if not overlays and label is None:
            # The single run, as it has always been drawn: nothing here costs more than before.
            train, test = component_rgb(self, "plot--train"), component_rgb(self, "plot--test")
            custom = self._custom_lines(history)
            for plot_id, key in PLOTS:
                lines = []
                for split, split_color in (("train", train), ("test", test)):
                    s = history.series(f"{split}_{key}")
                    lines.append(Line(split, s.steps, s.values, split_color))
                plot = self.query_one(f"#{plot_id}", SeriesPlot)
                if custom[key]:
                    lines = _fitted(lines + custom[key], plot.size.width - LEGEND_MARGIN)
                plot.set_data(lines + self._marks(lines, at, forecast, plot.log_y), markers)
            self._overlaid = False
            self._legend_of_runs = None
            self._set_subtitle()
            return
        self._legend_of_runs = (history, tuple(overlays), label, color, at, forecast)
        own = Overlay(label, history, color) if label is not None else None
        behind = [o for o in overlays if o.faded]
        front = [o for o in overlays if not o.faded]
        for plot_id, key in PLOTS:
            lines = [line for o in behind for line in self._lines(o, key)]
            if own is None:
                lines += self._lines(Overlay("", history), key, split_labels=True)
                lines += self._custom_lines(history)[key]  # the run's own metrics, as drawn alone
            else:
                lines += self._lines(own, key)
            lines += [line for o in front for line in self._lines(o, key)]
            plot = self.query_one(f"#{plot_id}", SeriesPlot)
            fitted = _fitted(lines, plot.size.width - LEGEND_MARGIN)
            plot.set_data(fitted + self._marks(lines, at, forecast, plot.log_y), markers)
        self._overlaid = any(o.color is not None for o in (*overlays, *([own] if own else [])))
        self._set_subtitle()

    def on_resize(self, event: Resize) -> None:
        if self._legend_of_runs is not None:
            history, overlays, label, color, at, forecast = self._legend_of_runs
            self.show(None, history, overlays, label=label, color=color, at=at, forecast=forecast)

    def _marks(self, lines: list[Line], at: int | None, forecast: int | None, log_y: bool) -> list[Line]:
        """The forecast step's mark, and the replayed step's over it."""
        forecast_mark = self._vertical(lines, forecast, "plot--forecast", log_y)
        return forecast_mark + self._vertical(lines, at, "plot--replay", log_y)

    def _vertical(self, lines: list[Line], step: int | None, component: str, log_y: bool) -> list[Line]:
        """A step's mark: a vertical line from the lowest to the highest value drawn (none where nothing is
        drawn yet, or on a log axis nothing is above 0), in the component class's colour."""
        if step is None:
            return []
        values = [y[np.isfinite(y) & (y > 0 if log_y else True)] for y in (np.asarray(line.y, float) for line in lines)]
        found = [v for v in values if v.size]
        if not found:
            return []
        lo, hi = min(float(v.min()) for v in found), max(float(v.max()) for v in found)
        return [Line("", np.array([step, step], float), np.array([lo, hi]), component_rgb(self, component))]

    def _custom_lines(self, history: History) -> dict[str, list[Line]]:
        """The run's own metrics (History.custom), each named in the legend in a colour of the run palette
        after the two the train and test curves take: on the accuracy plot a metric whose every value so
        far lies in [0, 1], on the loss plot (log scale) any other."""
        out: dict[str, list[Line]] = {key: [] for _, key in PLOTS}
        for i, name in enumerate(history.custom):
            s = history.series(name)
            finite = np.isfinite(s.values)
            if not finite.any():
                continue
            share = bool(np.nanmin(s.lo) >= 0 and np.nanmax(s.hi) <= 1)
            color = self.run_color(CUSTOM_COLOR_FROM + i % (PALETTE_SIZE - CUSTOM_COLOR_FROM))
            out["acc" if share else "loss"].append(Line(name, s.steps, s.values, color))
        return out

    def _lines(self, overlay: Overlay, key: str, split_labels: bool = False) -> list[Line]:
        """One run's train and test curves; the legend names it once, on its test curve."""
        if overlay.color is None:
            colors: dict[str, Color] = {
                "train": component_rgb(self, "plot--train"),
                "test": component_rgb(self, "plot--test"),
            }
            markers: dict[str, str | None] = {"train": None, "test": None}
        else:
            one = self.run_color(overlay.color) if isinstance(overlay.color, int) else overlay.color
            colors = {"train": one, "test": one}
            markers = {"train": "dot", "test": None}
        if overlay.faded:
            colors = {split: self._faded(c) for split, c in colors.items()}
        lines = []
        for split in SPLITS:
            s = overlay.series(f"{split}_{key}")
            name = split if split_labels else (overlay.label if split == "test" else "")
            lines.append(Line(name, s.steps, s.values, colors[split], markers[split]))
        return lines

    def _faded(self, color: Color) -> Color:
        if not isinstance(color, tuple):
            return color  # a colour by name: plotext's own, which has no RGB to blend
        toward = component_rgb(self, "plot--fade")
        r, g, b = (round(c + FADE * (t - c)) for c, t in zip(color, toward, strict=True))
        return (r, g, b)


def _fitted(lines: list[Line], room: int) -> list[Line]:
    """`lines` with their legend labels cut to `room` columns (no room known yet: as they are)."""
    named = [i for i, line in enumerate(lines) if line.label]
    if room < 1 or not named:
        return lines
    labels = fit([lines[i].label for i in named], room)
    out = list(lines)
    for i, text in zip(named, labels, strict=True):
        if text != out[i].label:
            out[i] = dataclasses.replace(out[i], label=text)
    return out
