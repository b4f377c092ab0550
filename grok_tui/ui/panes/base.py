from __future__ import annotations

from rich.color import Color as RichColor
from textual.containers import Vertical
from textual.widget import Widget

from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot


class Pane(Vertical):
    """A bordered pane that draws itself from the latest snapshot and the history."""

    DEFAULT_CSS = """
    Pane { border: round $primary-darken-2; height: 1fr; width: 1fr; padding: 0; }
    """

    def __init__(self, title: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_class("pane")
        self.border_title = title

    def show(self, snapshot: Snapshot, history: History) -> None:
        raise NotImplementedError


def component_rgb(widget: Widget, component: str) -> tuple[int, int, int]:
    """A theme colour (from a component class) as the RGB triple plotext takes."""
    color = widget.get_component_rich_style(component).color or RichColor.parse("white")
    triplet = color.get_truecolor()
    return (triplet.red, triplet.green, triplet.blue)
