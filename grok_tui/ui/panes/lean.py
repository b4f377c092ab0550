"""The same picture in fewer bytes."""

from __future__ import annotations

from rich.text import Text


def changed_lines(before: Text, after: Text) -> list[int] | None:
    """The lines of `after` that differ from `before`; None if they don't line up (another count of lines)."""
    old, new = before.split("\n", allow_blank=True), after.split("\n", allow_blank=True)
    if len(old) != len(new):
        return None
    return [y for y, (a, b) in enumerate(zip(old, new)) if a != b]
