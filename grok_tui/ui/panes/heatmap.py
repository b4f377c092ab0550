"""A half-block heatmap of a signed weight matrix.

Each terminal cell shows two stacked pixels ("▀": foreground is the upper
pixel, background the lower), so a pane of H lines shows 2·H matrix rows.
The matrix is resampled to fit the pane: block means when shrinking (every
weight counts, nothing is cropped), nearest neighbour when enlarging.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from grok_tui.ui.panes.picture import RGB, Picture, PictureKey

UPPER_HALF = "▀"
LEVELS = 33  # odd, so that 0 lands exactly on the middle level
MIN_LINES = 3  # title + one matrix line + colour bar
MIN_COLS = 8
BAR_MAX_CELLS = 24

FALLBACK: dict[str, RGB] = {
    "heatmap--negative": (0x3B, 0x6F, 0xD9),
    "heatmap--zero": (0x1E, 0x1E, 0x1E),
    "heatmap--positive": (0xE0, 0x53, 0x3D),
}


def _resample_axis(matrix: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = matrix.shape[axis]
    if size == n:
        return matrix
    if size < n:
        # Integer block boundaries; with a step >= 1 the starts strictly
        # increase, so reduceat never sees an empty block and the last block
        # runs to the end: every row/column lands in exactly one block.
        bounds = np.linspace(0, n, size + 1).astype(np.int64)
        sums = np.add.reduceat(matrix, bounds[:-1], axis=axis)
        counts = np.diff(bounds).astype(matrix.dtype)
        shape = [1] * matrix.ndim
        shape[axis] = size
        return sums / counts.reshape(shape)
    return np.take(matrix, (np.arange(size) * n) // size, axis=axis)


def fit(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Resample ``matrix`` to exactly ``rows`` × ``cols``.

    Shrinks by block averaging (uneven sizes still cover every element) and
    enlarges by nearest neighbour; the two axes are handled independently.
    """
    rows, cols = max(rows, 0), max(cols, 0)
    data = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    if data.ndim != 2 or data.size == 0 or rows == 0 or cols == 0:
        return np.zeros((rows, cols))
    return _resample_axis(_resample_axis(data, rows, 0), cols, 1)


def colour_levels(values: np.ndarray, vmax: float, levels: int = LEVELS) -> np.ndarray:
    """Map values in [-vmax, +vmax] to integer levels 0 … levels-1.

    The middle level is 0; non-finite values and a non-positive vmax give the
    middle level, so degenerate matrices draw neutral instead of raising.
    """
    values = np.asarray(values, dtype=np.float64)
    middle = (levels - 1) / 2
    if not np.isfinite(vmax) or vmax <= 0:
        return np.full(values.shape, round(middle), dtype=np.int64)
    normed = np.nan_to_num(values / vmax, nan=0.0, posinf=1.0, neginf=-1.0)
    scaled = np.rint((np.clip(normed, -1.0, 1.0) + 1.0) * middle)
    return scaled.astype(np.int64)


def level_rgb(level: int, levels: int, negative: RGB, zero: RGB, positive: RGB) -> RGB:
    """The colour of one level: linear in RGB from ``zero`` to the end colour."""
    x = 2 * level / (levels - 1) - 1
    end = positive if x > 0 else negative
    t = abs(x)
    return tuple(round(z + (e - z) * t) for z, e in zip(zero, end, strict=True))  # type: ignore[return-value]


def format_limit(value: float) -> str:
    return "0" if value == 0 else f"{value:+.3g}"


class Heatmap(Picture):
    """A signed matrix drawn with half blocks and a diverging colormap."""

    COLOUR_CLASSES = ("heatmap--negative", "heatmap--zero", "heatmap--positive")
    COMPONENT_CLASSES: ClassVar[set[str]] = set(COLOUR_CLASSES)
    FALLBACK = FALLBACK

    DEFAULT_CSS = """
    Heatmap {
        height: 1fr;
        width: 1fr;
    }
    Heatmap > .heatmap--negative { color: #3b6fd9; }
    Heatmap > .heatmap--zero { color: #1e1e1e; }
    Heatmap > .heatmap--positive { color: #e0533d; }
    """

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._matrix: np.ndarray | None = None
        self._title = ""
        self._styles_for: tuple[RGB, ...] | None = None
        self._pair_styles: dict[tuple[int, int], Style] = {}
        self._level_colours: list[Color] = []

    @property
    def vmax(self) -> float:
        """Symmetric colour limit: the largest finite |weight| (0 if none)."""
        data = self._matrix
        if data is None or data.size == 0:
            return 0.0
        return float(np.abs(data).max())

    def set_matrix(self, matrix: np.ndarray, title: str = "") -> None:
        """Show ``matrix``, repainting only the lines whose picture changed (none if the same)."""
        # A copy, because callers may hand over a buffer they keep updating.
        data = np.atleast_2d(np.array(matrix, dtype=np.float64))
        if data.ndim != 2:
            data = data.reshape(data.shape[0], -1)
        # NaN/inf would poison the block means and vmax.
        np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        same = self._matrix is not None and self._matrix.shape == data.shape and np.array_equal(self._matrix, data)
        if same and title == self._title:
            return
        self._matrix = data
        self._title = title
        self._changed()

    def _ensure_styles(self, colours: tuple[RGB, ...]) -> None:
        if colours == self._styles_for:
            return
        self._level_colours = [Color.from_rgb(*level_rgb(i, LEVELS, *colours)) for i in range(LEVELS)]
        self._pair_styles = {}
        self._styles_for = colours

    def _pair_style(self, upper: int, lower: int) -> Style:
        style = self._pair_styles.get((upper, lower))
        if style is None:
            style = Style(color=self._level_colours[upper], bgcolor=self._level_colours[lower])
            self._pair_styles[(upper, lower)] = style
        return style

    def _build(self, key: PictureKey) -> list[Strip]:
        width, height, base = key.width, key.height, key.base
        if width <= 0 or height <= 0:
            return []
        data = self._matrix
        if height < MIN_LINES or width < MIN_COLS or data is None:
            return [Strip.blank(width, base)] * height
        self._ensure_styles(key.colours)
        strips: list[Strip] = []
        if self._title:
            rows, cols = data.shape
            strips.append(self._text_line(f"{self._title} {rows}×{cols}", width, base))
        area = height - len(strips) - 1
        vmax = self.vmax
        levels = colour_levels(fit(data, 2 * area, width), vmax)
        for line in range(area):
            strips.append(self._half_block_line(levels[2 * line], levels[2 * line + 1], width))
        strips.append(self._colour_bar(vmax, width, base))
        return strips

    def _half_block_line(self, upper: np.ndarray, lower: np.ndarray, width: int) -> Strip:
        # Runs of equal cells share one segment: far fewer segments for Rich to diff.
        segments: list[Segment] = []
        run_start = 0
        pairs = list(zip(upper.tolist(), lower.tolist(), strict=True))
        for x in range(1, width + 1):
            if x == width or pairs[x] != pairs[run_start]:
                segments.append(Segment(UPPER_HALF * (x - run_start), self._pair_style(*pairs[run_start])))
                run_start = x
        return Strip(segments, width)

    def _text_line(self, text: str, width: int, base: Style) -> Strip:
        text = text[:width]
        return Strip([Segment(text.ljust(width), base)], width)

    def _colour_bar(self, vmax: float, width: int, base: Style) -> Strip:
        low, high = format_limit(-vmax), format_limit(vmax)
        room = width - len(low) - len(high) - 4  # two spaces and the two brackets
        cells = min(room, BAR_MAX_CELLS) if room >= 3 else width
        ramp = np.rint(np.linspace(0, LEVELS - 1, cells)).astype(np.int64).tolist()
        gradient = [Segment("█", base + Style(color=self._level_colours[level])) for level in ramp]
        if room < 3:
            return Strip(gradient, width)  # too narrow for labels: the ramp alone
        segments = [Segment(f"{low} ▕", base), *gradient, Segment(f"▏ {high}", base)]
        used = len(low) + len(high) + 4 + cells
        segments.append(Segment(" " * (width - used), base))
        return Strip(segments, width)
