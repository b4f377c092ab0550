"""A widget whose picture is built whole, as lines, and repainted only where a line changed.

The heatmap and the scatter draw a new picture for each new inspection. Over SSH the
bytes sent are what counts (README, "Long runs on a remote box"), so a new picture
repaints only the cells between the first and the last that differ on each line:
a matrix that moved a little costs a few cells, not the pane.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.style import Style
from textual.events import Resize
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

RGB = tuple[int, int, int]


class PictureKey(NamedTuple):
    """What a picture depends on: which picture (a version), the pane's size, its theme's colours."""

    version: int
    width: int
    height: int
    colours: tuple[RGB, ...]
    base: Style


def _cells(strip: Strip) -> list[tuple[str, Style | None]]:
    return [(char, segment.style) for segment in strip for char in segment.text]


def changed_span(before: Strip, after: Strip) -> tuple[int, int] | None:
    """The first and one past the last cell at which two lines differ; None if they don't."""
    if before == after:
        return None
    old, new = _cells(before), _cells(after)
    if len(old) != len(new):
        return 0, max(len(old), len(new))
    differ = [x for x, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    return (differ[0], differ[-1] + 1) if differ else None


class Picture(Widget):
    """Subclasses name their colours' component classes (`COLOUR_CLASSES`, with a `FALLBACK` where a theme
    sets none), build the lines of a picture in `_build`, and call `_changed` when it is a new one."""

    COLOUR_CLASSES: ClassVar[tuple[str, ...]] = ()
    FALLBACK: ClassVar[dict[str, RGB]] = {}

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._version = 0
        self._strips: list[Strip] = []
        self._key: PictureKey | None = None

    def _build(self, key: PictureKey) -> list[Strip]:
        raise NotImplementedError

    def _colours(self) -> tuple[RGB, ...]:
        """The colours the theme gives the component classes now."""
        rgbs = []
        for name in self.COLOUR_CLASSES:
            colour = self.get_component_rich_style(name).color
            rgbs.append(tuple(colour.get_truecolor()) if colour is not None else self.FALLBACK[name])
        return tuple(rgbs)  # type: ignore[arg-type]

    def _current_key(self) -> PictureKey:
        width, height = self.size
        return PictureKey(self._version, width, height, self._colours(), self.rich_style)

    def _changed(self) -> None:
        """A new picture: build it now and repaint the cells that differ from the one on screen."""
        self._version += 1
        old, old_key = self._strips, self._key
        key = self._current_key()
        if old_key is None or old_key._replace(version=key.version) != key:
            self._invalidate()  # nothing on screen in this size and these colours to compare with
            return
        self._key, self._strips = key, self._build(key)
        if len(old) != len(self._strips):
            self.refresh()
            return
        regions = [
            Region(span[0], y, span[1] - span[0], 1)
            for y, (before, after) in enumerate(zip(old, self._strips, strict=True))
            if (span := changed_span(before, after)) is not None
        ]
        if regions:
            self.refresh(*regions)

    def on_resize(self, event: Resize) -> None:
        self._invalidate()

    def _invalidate(self) -> None:
        self._key, self._strips = None, []
        self.refresh()

    def render_line(self, y: int) -> Strip:
        key = self._current_key()
        if key != self._key:
            self._strips, self._key = self._build(key), key
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
