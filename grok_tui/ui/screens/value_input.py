"""A modal that asks for one number and refuses a bad one, saying why; and the parsers it uses.

Each parser takes whatever was typed and returns a value the trainer accepts,
or raises ValueError with one line that says what is wrong and what to type.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from grok_tui.train.control import check_hyper


def parse_hyper(name: str, text: str) -> float:
    """A weight decay (>= 0) or learning rate (> 0)."""
    allowed = "a finite number > 0" if name == "lr" else "a finite number >= 0"
    text = text.strip()
    if not text:
        raise ValueError(f"empty: type {allowed}")
    try:
        float(text)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not a number: type {allowed}") from None
    try:
        return check_hyper(name, float(text))
    except ValueError as e:
        raise ValueError(f"{e}: type {allowed}") from None


def parse_norm(text: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not a number: type a finite norm > 0") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError("the norm must be a finite number > 0")
    return value


def parse_subset(text: str, size: int) -> int:
    """How many of the `size` training examples to keep while ungrokking: 1 to size - 1."""
    text = text.strip()
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not a whole number: type how many examples to keep") from None
    if not 1 <= n < size:
        raise ValueError(f"keep between 1 and {size - 1} examples")
    return n


def _shown(text: str) -> str:
    shown = repr(text)  # repr first: it may lengthen what it escapes
    return shown if len(shown) <= 26 else shown[:23] + "..."


class ValueInput(ModalScreen[float | None]):
    """Dismisses with the accepted value, or None on escape."""

    DEFAULT_CSS = """
    ValueInput { align: center middle; }
    ValueInput > Vertical {
        width: 56; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    ValueInput #error { color: $error; width: 100%; height: auto; }
    ValueInput #hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, current: float, check: Callable[[str], float], hint: str = "") -> None:
        super().__init__()
        self.title_text, self.current, self.check, self.hint = title, current, check, hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(value=f"{self.current:g}", id="value", select_on_focus=True)
            yield Label(self.hint or "enter to apply, escape to cancel", id="hint")
            yield Label("", id="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = self.check(event.value)
        except ValueError as e:
            self.query_one("#error", Label).update(str(e))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
