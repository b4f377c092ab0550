"""A modal that asks for one number and refuses a bad one, saying why; and the parsers it uses.

Each parser takes whatever was typed and returns a value the trainer accepts, or raises ValueError with
one line that says what is wrong and what to type: the value's own rule from config.py, and its words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from grok_tui.config import HYPER_RANGES, NORM_TARGET, TRAIN_SUBSET, Range, clip


def parse_hyper(name: str, text: str) -> float:
    """A value for one of the hyperparameters a run changes live."""
    return _in_range(HYPER_RANGES[name], text) + 0.0  # -0 reads as 0


def parse_norm(text: str) -> float:
    return _in_range(NORM_TARGET, text)


def parse_subset(text: str, size: int) -> int:
    """How many of the `size` training examples to keep while ungrokking: fewer than all of them."""
    return int(_in_range(dataclasses.replace(TRAIN_SUBSET, high=size - 1), text))


def _in_range(rule: Range, text: str) -> float:
    text = text.strip()
    if not text:
        raise ValueError(f"empty: type {rule.allowed}")
    try:
        value = int(text) if rule.integer else float(text)
    except ValueError:
        what = "a whole number" if rule.integer else "a number"
        raise ValueError(f"{_shown(text)} is not {what}: type {rule.allowed}") from None
    if not rule(value):
        raise ValueError(f"{_shown(text)} is not allowed: type {rule.allowed}")
    return value


def _shown(text: str) -> str:
    return clip(repr(text), 26)  # repr first: it may lengthen what it escapes; 26 fits the modal's line


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
