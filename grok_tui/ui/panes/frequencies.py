"""What the neurons have become: their dominant frequencies, or for parity, which bits they read."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.widget import Widget
from textual.widgets import Static

from grok_tui.history import History
from grok_tui.metrics import ParityMass, Spectrum
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.base import Pane
from grok_tui.ui.panes.lean import LeanLines

BLOCKS = " ▁▂▃▄▅▆▇█"


def bar_rows(values: np.ndarray, height: int) -> list[str]:
    """Vertical bars, one column per value, `height` rows of eighth-blocks, top row first."""
    values = np.asarray(values, dtype=float)
    top = values.max() if values.size and values.max() > 0 else 1.0
    eighths = np.round(values / top * height * 8).astype(int)
    rows = []
    for row in range(height - 1, -1, -1):
        level = np.clip(eighths - row * 8, 0, 8)
        rows.append("".join(BLOCKS[v] for v in level))
    return rows


def fit_columns(values: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """Sum neighbouring values until they fit `width` columns; returns the values and the group size."""
    group = max(1, -(-values.size // max(width, 1)))
    padded = np.pad(values, (0, -values.size % group))
    return padded.reshape(-1, group).sum(axis=1), group


class Bars(LeanLines, Widget):
    """Draws the histogram; the text lines above it come from the pane."""

    COMPONENT_CLASSES = {"bars--bar", "bars--key", "bars--axis"}
    DEFAULT_CSS = """
    Bars { height: 1fr; }
    Bars > .bars--bar { color: $secondary; }
    Bars > .bars--key { color: $warning; }
    Bars > .bars--axis { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values = np.zeros(0)
        self.first_label = 1
        self.highlight: set[int] = set()

    def set_values(self, values: np.ndarray, first_label: int, highlight: set[int]) -> None:
        if np.array_equal(values, self.values) and first_label == self.first_label and highlight == self.highlight:
            return  # most frames bring the same histogram: skip the redraw
        self.values, self.first_label, self.highlight = values, first_label, highlight
        self.refresh()

    def render(self) -> RenderResult:
        width, height = self.size.width, self.size.height
        if self.values.size == 0 or width < 4 or height < 2:
            return Text("")
        values, group = fit_columns(self.values, width)
        bar_style = self.get_component_rich_style("bars--bar")
        key_style = self.get_component_rich_style("bars--key")
        axis_style = self.get_component_rich_style("bars--axis")
        highlighted = [i for i in range(len(values)) if i * group in self.highlight]
        lines = []
        for row in bar_rows(values, height - 1):
            line = Text(row, bar_style)
            for i in highlighted:
                line.stylize(key_style, i, i + 1)
            lines.append(line)
        last = self.first_label + self.values.size - 1
        axis = f"{self.first_label}".ljust(len(values) - len(str(last))) + str(last)
        lines.append(Text(axis[:width], axis_style))
        return Text("\n").join(lines)


class Readout(LeanLines, Static):
    """The lines above the bars."""

    def show(self, text: Text | str) -> None:
        if text != self.content:  # rounded figures often stay the same from one inspection to the next
            self.update(text)


class FrequenciesPane(Pane):
    cadence = "inspection"

    def __init__(self, **kwargs) -> None:
        super().__init__("frequencies", **kwargs)
        self._inspection: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Readout(id="freq-text")
        yield Bars()

    def show(self, snapshot: Snapshot, history: History) -> None:
        # Only a new inspection of the model changes this pane (the frame's objects are replaced, never mutated).
        inspection = (snapshot.spectrum, snapshot.parity, snapshot.matrices.get("hidden"))
        if self._inspection is not None and all(a is b for a, b in zip(inspection, self._inspection, strict=True)):
            return
        self._inspection = inspection
        text = self.query_one("#freq-text", Readout)
        bars = self.query_one(Bars)
        if snapshot.spectrum is not None:
            self._show_spectrum(snapshot.spectrum, text, bars)
        elif snapshot.parity is not None:
            self._show_parity(snapshot.parity, snapshot.matrices.get("hidden"), text, bars)
        else:
            text.show(snapshot.spectrum_note or "no input axis to analyse for this model")

    def _show_spectrum(self, s: Spectrum, text: Readout, bars: Bars) -> None:
        self.set_title("frequencies")
        keys = s.key_frequencies
        shown = " ".join(map(str, keys[:8])) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")
        text.show(
            Text.assemble(
                ("purity ", "dim"),
                (f"{s.median_purity:.2f}", "bold"),
                ("  periodic ", "dim"),
                (f"{s.periodic_share:.0%}", "bold"),
                ("  gini ", "dim"),
                (f"{s.gini:.2f}", "bold"),
                ("\nkey ", "dim"),
                (shown or "none yet", "bold"),
            )
        )
        counts = s.neurons_per_frequency()
        bars.set_values(counts.astype(float), first_label=1, highlight={f - 1 for f in keys[:5]})

    def _show_parity(self, mass: ParityMass, w_in: np.ndarray | None, text: Readout, bars: Bars) -> None:
        self.set_title("|w| per input bit")
        text.show(
            Text.assemble(
                ("relevant bits hold ", "dim"),
                (f"{mass.share:.0%}", "bold"),
                (" of |w|", "dim"),
                ("\nper bit ", "dim"),
                (f"{mass.ratio:.1f}×", "bold"),
                (" the others", "dim"),
            )
        )
        if w_in is not None:
            per_bit = np.abs(w_in).sum(axis=1)
            bars.set_values(per_bit, first_label=1, highlight=set(range(mass.k)))
