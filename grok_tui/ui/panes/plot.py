"""A cheap, live line plot of a few named series against training step.

The monitor redraws about ten times a second in the same process as the
training loop, and a plotext build costs milliseconds of pure Python, so this
widget only rebuilds when its data, size, flags or theme changed, and caps the
points it hands to plotext at about two per column.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual.geometry import Region
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from grok_tui.ui.panes.lean import LeanLines, changed_lines

Color = str | tuple[int, int, int]


# eq=False: the generated __eq__/__hash__ would compare arrays element-wise and
# raise ("truth value of an array is ambiguous"); identity is what we want.
@dataclass(frozen=True, eq=False)
class Line:
    label: str
    x: np.ndarray
    y: np.ndarray
    color: Color
    # plotext's marker; None is its default (the solid "hd" line). Overlaid runs draw train dotted.
    marker: str | None = None


def compact(v: float) -> str:
    """A short tick label: 0.01, 0.25, 1, 250, 2.5k, 1M, 1e-3."""
    if v == 0:
        return "0"
    a = abs(v)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{v / scale:.3g}{suffix}"
    if a < 0.01 - 1e-12:
        mantissa, exponent = f"{v:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{v:.3g}"


def linear_ticks(lo: float, hi: float, max_ticks: int = 5) -> tuple[list[float], list[str]]:
    """Ticks at round numbers (1, 2, 2.5 or 5 times a power of ten) within [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    if hi <= lo:
        return [lo], [compact(lo)]
    raw = (hi - lo) / max(1, max_ticks - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    positions = [k * step for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]
    # Rounding kills float noise such as 0.30000000000000004 in the labels.
    positions = [round(p, 12) for p in positions]
    return positions, [compact(p) for p in positions]


def log_ticks(lo: float, hi: float, max_ticks: int | None = None) -> tuple[list[float], list[str]]:
    """Ticks for an axis drawn in log10 space, spanning log10 values [lo, hi].

    Positions are log10 values; labels are the real values (see `compact`).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return [], []
    powers = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    if len(powers) < 2:
        # Less than a decade of range: round numbers read better than a lone power.
        values, labels = linear_ticks(10.0**lo, 10.0**hi, max_ticks or 4)
        kept = [(math.log10(v), s) for v, s in zip(values, labels, strict=True) if v > 0]
        return [p for p, _ in kept], [s for _, s in kept]
    if max_ticks and len(powers) > max_ticks:
        stride = math.ceil(len(powers) / max_ticks)
        powers = [p for p in powers if p % stride == 0]
    return [float(p) for p in powers], [compact(10.0**p) for p in powers]


def downsample(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most n finite points, evenly spread along x, keeping the first and last.

    Spreading along x rather than along the index keeps the density even on a
    log axis too (where the early steps take up most of the width).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) <= n:
        return x, y
    if n <= 1:
        return x[-1:][:n], y[-1:][:n]
    if np.all(np.diff(x) >= 0):
        idx = np.searchsorted(x, np.linspace(x[0], x[-1], n))
    else:
        idx = np.linspace(0, len(x) - 1, n).round().astype(int)
    idx = np.unique(np.append(idx[:-1], len(x) - 1))
    return x[idx], y[idx]


def _checksum(values: np.ndarray) -> tuple[str, int, int]:
    # crc32 reads the buffer in place (no copy) at several GB/s.
    values = np.ascontiguousarray(values)
    return values.dtype.str, values.size, zlib.crc32(values.data)


def _fingerprint(lines: Sequence[Line], markers: Sequence[float]) -> int:
    """A hash of everything drawn: cheap next to a build, and immune to callers
    mutating their arrays in place between calls (so not identity-based)."""
    parts: list[tuple[object, ...]] = [tuple(float(m) for m in markers)]
    for line in lines:
        parts.append((line.label, line.color, line.marker, _checksum(line.x), _checksum(line.y)))
    return hash(tuple(parts))


class SeriesPlot(LeanLines, PlotextPlot):
    """Named series against training step, with optional log axes and markers."""

    log_x: reactive[bool] = reactive(False)
    log_y: reactive[bool] = reactive(False)

    marker_color: Color = "gray"
    """Colour of the vertical hyperparameter-change lines; muted so data stays in front."""

    def __init__(
        self,
        title: str = "",
        log_y: bool = False,
        y_limits: tuple[float, float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.y_limits = y_limits
        self.set_reactive(SeriesPlot.log_y, log_y)
        self._lines: list[Line] = []
        self._markers: list[float] = []
        self._fingerprint: int | None = None
        self._version = 0
        self._cache_key: tuple | None = None
        self._cached: Text = Text()

    def set_data(self, lines: list[Line], markers: Sequence[float] = ()) -> None:
        """Replace what is drawn; a no-op when nothing changed, so callers may
        push the same history every tick."""
        fingerprint = _fingerprint(lines, markers)
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        self._lines = list(lines)
        self._markers = [float(m) for m in markers]
        self._version += 1
        self._repaint_changed_lines()

    def _repaint_changed_lines(self) -> None:
        """Build the new plot now and repaint only its lines that differ from those on screen
        (the title, the frame, a flat curve's rows often stay the same)."""
        before, key_before = self._cached, self._cache_key
        if key_before is None or not self.is_mounted or not self.size.area:
            self.refresh()
            return
        after, key_after = self.render(), self._cache_key
        lines = None
        if isinstance(after, Text) and key_after is not None and key_after[1:] == key_before[1:]:
            lines = changed_lines(before, after)
        if lines is None:
            self.refresh()
        elif lines:
            self.refresh(*(Region(0, y, self.size.width, 1) for y in lines))

    def render(self) -> RenderResult:
        width, height = self.size.width, self.size.height
        theme = self._get_plotext_theme_name(self.app.theme)
        key = (
            self._version,
            width,
            height,
            self.log_x,
            self.log_y,
            theme,
            self.title,
            self.y_limits,
            self.marker_color,
        )
        if key != self._cache_key:
            self._cached = self._build(width, height, theme)
            self._cache_key = key
        return self._cached

    def _build(self, width: int, height: int, theme: str) -> Text:
        # Below this plotext has no room for a frame, let alone data.
        if width < 8 or height < 3:
            return Text()
        plt = self.plt
        # clf rather than clear_data: ticks, limits and tick frequency survive
        # clear_data, and a stale log-tick set would leak into a linear rebuild.
        plt.clf()
        # What PlotextPlot.render does, including its belt-and-braces _set_size.
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(theme)
        plt.title(self.title)
        plt.xlabel("")
        try:
            self._draw(width, height)
            return Text.from_ansi(plt.build())
        except (ValueError, ZeroDivisionError, IndexError, OverflowError):
            # A live display must not take the app down over an odd frame.
            return Text()

    def _draw(self, width: int, height: int) -> None:
        plt = self.plt
        drawn: list[tuple[np.ndarray, np.ndarray, Line]] = []
        for line in self._lines:
            x = np.asarray(line.x, dtype=float)
            y = np.asarray(line.y, dtype=float)
            if self.log_x:
                # log10(step + 1) so step 0 is drawable and sits at the origin.
                with np.errstate(invalid="ignore", divide="ignore"):
                    x = np.where(x >= 0, np.log10(x + 1), np.nan)
            if self.log_y:
                with np.errstate(invalid="ignore", divide="ignore"):
                    y = np.where(y > 0, np.log10(y), np.nan)
            x, y = downsample(x, y, max(2, 2 * width))
            if len(x):
                drawn.append((x, y, line))
        if not drawn:
            return  # an empty frame under the title

        for x, y, line in drawn:
            plt.plot(x.tolist(), y.tolist(), color=line.color, label=line.label or None, marker=line.marker)

        x_lo = min(float(x[0]) for x, _, _ in drawn)
        x_hi = max(float(x[-1]) for x, _, _ in drawn)
        self._draw_markers(x_lo, x_hi)
        self._set_xticks(x_lo, x_hi, max_ticks=max(2, width // 9))

        y_lo = min(float(y.min()) for _, y, _ in drawn)
        y_hi = max(float(y.max()) for _, y, _ in drawn)
        y_lo, y_hi = self._apply_y_limits(y_lo, y_hi)
        y_max_ticks = max(2, height // 3)
        if self.log_y:
            positions, labels = log_ticks(y_lo, y_hi, y_max_ticks)
        else:
            positions, labels = linear_ticks(y_lo, y_hi, y_max_ticks)
        if positions:
            plt.yticks(positions, labels)

    def _draw_markers(self, x_lo: float, x_hi: float) -> None:
        for step in self._markers:
            x = math.log10(step + 1) if self.log_x and step >= 0 else step
            # plotext widens the x axis to include a vline; one outside the
            # data would squash the curves.
            if not x_lo <= x <= x_hi:
                continue
            self.plt.vline(x, self.marker_color)

    def _set_xticks(self, lo: float, hi: float, max_ticks: int) -> None:
        if self.log_x:
            # Ticks at round steps; positions go through the same log10(step + 1).
            step_lo = math.log10(max(10.0**lo - 1, 1.0))
            step_hi = math.log10(max(10.0**hi - 1, 1.0))
            positions, labels = log_ticks(step_lo, step_hi, max_ticks)
            positions = [math.log10(10.0**p + 1) for p in positions]
        else:
            positions, labels = linear_ticks(lo, hi, max_ticks)
        if positions:
            self.plt.xticks(positions, labels)

    def _apply_y_limits(self, lo: float, hi: float) -> tuple[float, float]:
        """Fix the y range if asked; returns the range the ticks should span."""
        if self.y_limits is None:
            return lo, hi
        lower, upper = self.y_limits
        if self.log_y:
            # Non-positive limits have no log; fall back to the data there.
            lower = math.log10(lower) if lower > 0 else lo
            upper = math.log10(upper) if upper > 0 else hi
        self.plt.ylim(lower, upper)
        return lower, upper
