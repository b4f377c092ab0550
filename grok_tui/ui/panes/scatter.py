"""Points in a plane as terminal cells, each in a colour of a cyclic ramp, labelled where there is room.

A cell is about twice as tall as it is wide, so a row counts two units of x: a circle
stays round. The origin sits in the middle, so a cloud centred on its mean (the
embedding pane's) turns about the centre of the pane. Only the lines whose picture
changed are repainted (a `Picture`, ui/panes/picture.py).
"""

from __future__ import annotations

import colorsys
import textwrap
from typing import ClassVar

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from grok_tui.ui.panes.picture import RGB, Picture, PictureKey

POINT = "●"
ORIGIN = "+"
RAMP_STEPS = 24  # colours around the ramp: enough for the eye, few enough to share styles
HUES = ("scatter--hue-0", "scatter--hue-1", "scatter--hue-2")
FALLBACK: dict[str, RGB] = {
    "scatter--hue-0": (0xFF, 0x7B, 0x72),
    "scatter--hue-1": (0x3F, 0xB9, 0x50),
    "scatter--hue-2": (0x58, 0xA6, 0xFF),
    "scatter--axis": (0x6E, 0x76, 0x81),
}


def cyclic_ramp(anchors: tuple[RGB, ...], steps: int = RAMP_STEPS) -> list[RGB]:
    """`steps` colours going round the anchors and back to the first: interpolated in hue, lightness and
    saturation (the short way round the hue circle), so that red to green passes yellow, not brown."""
    hls = [colorsys.rgb_to_hls(*(c / 255 for c in rgb)) for rgb in anchors]
    ramp = []
    for i in range(steps):
        t = i / steps * len(hls)
        j, f = int(t), t - int(t)
        (h0, l0, s0), (h1, l1, s1) = hls[j], hls[(j + 1) % len(hls)]
        dh = (h1 - h0 + 0.5) % 1.0 - 0.5
        r, g, b = colorsys.hls_to_rgb((h0 + f * dh) % 1.0, l0 + f * (l1 - l0), s0 + f * (s1 - s0))
        ramp.append((round(r * 255), round(g * 255), round(b * 255)))
    return ramp


def cells(points: np.ndarray, width: int, height: int) -> list[tuple[int, int]]:
    """The (column, line) of each point in a `width` × `height` area, the origin in its middle."""
    pts = np.nan_to_num(np.asarray(points, dtype=np.float64)).reshape(-1, 2)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    reach = np.abs(pts).max(axis=0) if pts.size else np.zeros(2)
    # Units per column: the larger of what x and y need (a line holds two columns' worth of y).
    unit = max(reach[0] / cx if cx > 0 else 0.0, reach[1] / (2 * cy) if cy > 0 else 0.0)
    if unit <= 0:
        return [(round(cx), round(cy))] * len(pts)
    cols = np.clip(np.rint(cx + pts[:, 0] / unit), 0, width - 1).astype(int)
    lines = np.clip(np.rint(cy - pts[:, 1] / (2 * unit)), 0, height - 1).astype(int)
    return list(zip(cols.tolist(), lines.tolist(), strict=True))


def layout(
    points: np.ndarray, labels: list[str], width: int, height: int
) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], tuple[str, int]]]:
    """Where each point and each label that fits go: {cell: point} for the points (a later point hides an
    earlier one in the same cell), and {first cell: (label, point)} for the labels placed.

    A label goes right of its point, else left, never over a point, another label or the cell beside one
    (so that two labels never read as one number); the points are taken in order, so the first win."""
    placed = cells(points, width, height)
    dots = {cell: i for i, cell in enumerate(placed)}
    taken: set[tuple[int, int]] = set(dots)
    written: dict[tuple[int, int], tuple[str, int]] = {}
    for i, ((x, y), label) in enumerate(zip(placed, labels, strict=False)):
        if dots.get((x, y)) != i:
            continue  # hidden under a later point: its label would name the wrong dot
        n = len(label)
        for start in (x + 1, x - n):
            span = [(c, y) for c in range(start - 1, start + n + 1)]
            inside = 0 <= start and start + n <= width
            if inside and not any(cell in taken for cell in span if cell != (x, y)):
                written[(start, y)] = (label, i)
                taken.update(span[1:-1])
                break
    return dots, written


class Scatter(Picture):
    """Points drawn as dots in a cyclic colour ramp (by the position given to each), with labels."""

    COLOUR_CLASSES = (*HUES, "scatter--axis")
    COMPONENT_CLASSES: ClassVar[set[str]] = set(COLOUR_CLASSES)
    FALLBACK = FALLBACK
    DEFAULT_CSS = """
    Scatter { height: 1fr; width: 1fr; }
    Scatter > .scatter--hue-0 { color: #ff7b72; }
    Scatter > .scatter--hue-1 { color: #3fb950; }
    Scatter > .scatter--hue-2 { color: #58a6ff; }
    Scatter > .scatter--axis { color: #6e7681; }
    """

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._points: np.ndarray | None = None
        self._positions = np.zeros(0)
        self._labels: list[str] = []
        self._note = ""

    def set_points(self, points: np.ndarray, positions: np.ndarray, labels: list[str]) -> None:
        """Draw `points` (n × 2), point i in the ramp's colour at `positions[i]` (in [0, 1), going round)."""
        self._points, self._positions, self._labels, self._note = points, positions, labels, ""
        self._changed()

    def set_note(self, note: str) -> None:
        """Nothing to draw, and why."""
        if self._points is None and note == self._note:
            return
        self._points, self._note = None, note
        self._changed()

    def _build(self, key: PictureKey) -> list[Strip]:
        width, height, base = key.width, key.height, key.base
        if width <= 0 or height <= 0:
            return []
        if self._points is None or width < 3 or height < 3:
            lines = textwrap.wrap(self._note, width)[:height] if width > 0 else []
            lines += [""] * (height - len(lines))
            return [Strip([Segment(line.ljust(width), base)], width) for line in lines]
        ramp = [base + Style(color=Color.from_rgb(*rgb)) for rgb in cyclic_ramp(key.colours[:3])]
        axis = base + Style(color=Color.from_rgb(*key.colours[3]))
        styles = [ramp[int(t * len(ramp)) % len(ramp)] for t in np.asarray(self._positions, dtype=float)]
        grid: list[list[tuple[str, Style]]] = [[(" ", base)] * width for _ in range(height)]
        grid[int(np.rint((height - 1) / 2))][int(np.rint((width - 1) / 2))] = (ORIGIN, axis)  # where cells() puts 0
        dots, written = layout(self._points, self._labels, width, height)
        for (x, y), i in dots.items():
            grid[y][x] = (POINT, styles[i])
        for (x, y), (label, i) in written.items():
            for j, char in enumerate(label):
                grid[y][x + j] = (char, styles[i])
        return [_strip(row, width) for row in grid]


def _strip(row: list[tuple[str, Style]], width: int) -> Strip:
    # Runs of one style as one segment: fewer escape codes written.
    segments: list[Segment] = []
    text, style = "", row[0][1]
    for char, s in row:
        if s is not style and text:
            segments.append(Segment(text, style))
            text = ""
        text, style = text + char, s
    segments.append(Segment(text, style))
    return Strip(segments, width)
