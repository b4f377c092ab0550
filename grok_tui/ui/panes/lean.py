"""The same picture in fewer bytes.

Textual writes each segment of a line as `ESC[<style>m<text>ESC[0m`, the full style
again every time: a plotext line, whose every run (often every cell) comes with its
colours, costs ~40 bytes a run in 24-bit colour. Two neighbouring segments that look
the same on screen can be one: those of equal style, and blanks, whose foreground
colour (and boldness, italics, dimness) no one can see.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from functools import lru_cache
from pickle import loads

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip


@lru_cache(maxsize=16384)
def _meta_sans_offset(meta: bytes | None) -> str | None:
    # Textual marks every segment with its offset in the widget (for text selection); the
    # offsets of neighbours run on, so the first one's offset stands for the merged segment.
    if meta is None:
        return None
    rest = {key: value for key, value in loads(meta).items() if key != "offset"}  # Rich pickles its meta
    return repr(sorted(rest.items())) if rest else None


def look(style: Style | None) -> Hashable:
    """What the terminal is told for this style (what Textual's Strip.render writes of it)."""
    if style is None:
        return None
    return (
        style.color,
        style.bgcolor,
        style._attributes & style._set_attributes,
        style.link,
        _meta_sans_offset(style._meta),
    )


def blank_look(style: Style | None) -> Hashable:
    """What a run of spaces in this style shows: the background, unless a line or reverse video draws on it."""
    if style is None:
        return None
    if style.reverse or style.underline or style.underline2 or style.strike or style.overline:
        return look(style)
    return style.bgcolor, style.link, _meta_sans_offset(style._meta)


def _is_blank(text: str) -> bool:
    return not text.strip(" ")


def merge_segments(segments: Iterable[Segment]) -> list[Segment]:
    """Neighbouring segments that look alike, as one segment."""
    merged: list[Segment] = []
    for segment in segments:
        text, style, control = segment
        last = merged[-1] if merged else None
        if last is None or control or last.control or not text:
            merged.append(segment)
        elif look(style) == look(last.style) or (_is_blank(text) and blank_look(style) == blank_look(last.style)):
            merged[-1] = Segment(last.text + text, last.style)
        elif _is_blank(last.text) and blank_look(style) == blank_look(last.style):
            merged[-1] = Segment(last.text + text, style)
        else:
            merged.append(segment)
    return merged


def changed_lines(before: Text, after: Text) -> list[int] | None:
    """The lines of `after` that differ from `before`; None if they don't line up (another count of lines)."""
    old, new = before.split("\n", allow_blank=True), after.split("\n", allow_blank=True)
    if len(old) != len(new):
        return None
    return [y for y, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]


def lean_strip(strip: Strip) -> Strip:
    return Strip(merge_segments(strip), strip.cell_length)


class LeanLines:
    """A widget mixin: the lines it hands to the screen, merged (see merge_segments).

    The screen asks again for lines it already has whenever a neighbour repaints; the
    merged line is kept per source line, so the work is done once per new line and the
    strip's own caches (its rendered escape codes) are kept too.
    """

    _lean: dict[int, tuple[Strip, Strip]]

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = super().render_lines(crop)  # type: ignore[misc]
        cache = self.__dict__.setdefault("_lean", {})
        if len(cache) > 8 * max(len(lines), 16):
            cache.clear()  # holds the source strips, so an id is never reused while cached
        lean = []
        for strip in lines:
            hit = cache.get(id(strip))
            if hit is None or hit[0] is not strip:
                hit = cache[id(strip)] = (strip, lean_strip(strip))
            lean.append(hit[1])
        return lean
