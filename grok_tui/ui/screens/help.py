"""`?`: every key the monitor answers to, and what the panes show."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

PANES = """\
[b]curves[/b]  train (blue) and test (orange) loss, log scale, and accuracy; grey lines mark each change you made;
  a script's own metrics are named in the legend (on the accuracy plot where every value is in [0, 1]); in a
  replay (←/→ over a watched run) a line of its own colour marks the step the other panes show
[b]weights[/b]  a weight matrix, red positive, blue negative, white-ish zero; sorted, periodic neurons form bands
[b]frequencies[/b]  each neuron's dominant Fourier frequency over the inputs; purity near 1 means periodic
[b]embedding[/b]  a point per residue, coloured by it: a cloud that becomes an ordered circle as the model groks;
  e cycles its axes (the dominant frequency's cos and sin, the top two principal components, those held)
[b]norm[/b]  the parameter norm: it rises while memorizing and falls as the model generalizes
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    """
    BINDINGS = [Binding("escape,question_mark,q", "dismiss_help", "Close")]

    def __init__(self, bindings: list[tuple[str, str]], title: str = "grok-tui", panes: str = PANES) -> None:
        """`title`: whose keys these are; `panes`: what each pane shows (markup)."""
        super().__init__()
        self.key_rows = bindings
        self.title_text, self.panes = title, panes

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, description in self.key_rows:
            table.add_row(key, description)
        with VerticalScroll():
            yield Static(f"[b]{self.title_text}[/b] — keys (also in the command palette, ctrl+p)\n")
            yield Static(table)
            yield Static("\n" + self.panes)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
