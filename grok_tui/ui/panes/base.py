from __future__ import annotations

from typing import ClassVar

from rich.color import Color as RichColor
from textual.containers import Vertical
from textual.geometry import Region
from textual.widget import Widget

from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.lean import LeanLines


class Pane(LeanLines, Vertical):
    """A bordered pane that draws itself from the latest snapshot and the history."""

    DEFAULT_CSS = """
    Pane { border: round $primary-darken-2; height: 1fr; width: 1fr; padding: 0; }
    """
    # Which of the app's redraw intervals this pane keeps to (grok_tui/ui/pacing.py).
    cadence: ClassVar[str] = "plots"

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_class("pane")
        self._shown_title = title
        self.border_title = title

    def set_title(self, title: str) -> None:
        # Setting border_title repaints the whole pane, children and all, even to the same
        # text: only a new title is set, and only the top border line, which holds it, repainted.
        if title == self._shown_title:
            return
        self._shown_title = title
        self._title_only = True
        try:
            self.border_title = title
        finally:
            self._title_only = False

    def refresh(self, *regions: Region, **kwargs) -> Pane:
        if getattr(self, "_title_only", False) and not regions and not kwargs:
            # Regions are in content coordinates: the border line lies one gutter above and to the left.
            left, top = self.content_offset
            regions = (Region(-left, -top, self.outer_size.width, 1),)
        return super().refresh(*regions, **kwargs)

    def show(self, snapshot: Snapshot, history: History) -> None:
        raise NotImplementedError


def component_rgb(widget: Widget, component: str) -> tuple[int, int, int]:
    """A theme colour (from a component class) as the RGB triple plotext takes."""
    color = widget.get_component_rich_style(component).color or RichColor.parse("white")
    triplet = color.get_truecolor()
    return (triplet.red, triplet.green, triplet.blue)
