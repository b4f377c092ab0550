"""A modal that asks for one number and refuses a bad one, saying why."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


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
