"""What the run screen and the sweep screen share: their keys in help and the palette, the way out.

A monitor screen watches a source it does not train (sources/): the app
(ui/app.py) only holds the screens, the themes and the signals, and asks the
screen at the bottom of its stack (its home) what a signal or a hang-up means.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from grok_tui.files import WriteError, write_atomic
from grok_tui.ui import keys


class MonitorScreen(Screen[None]):
    """A screen of the monitor app; `KEYS` its bindings, in the order help lists them."""

    KEYS: ClassVar[list[Binding]] = []

    class Leave(Message):
        """Asks the app to end with `status`, and `farewell` to print once the terminal is ours again."""

        def __init__(self, status: int, farewell: str | None) -> None:
            super().__init__()
            self.status, self.farewell = status, farewell

    @property
    def is_home(self) -> bool:
        """Whether this is the screen the app opened with (closing it ends the app), not one opened over another."""
        return self.app.screen_stack[:1] == [self]

    def help_rows(self) -> list[tuple[str, str]]:
        """(key as written, what it does) of each key here; a disabled one says why it is."""
        return [
            (written, description if (why := self.refusal(b.action)) is None else f"{description} — disabled: {why}")
            for b in self.KEYS
            if self.check_action(b.action, ()) is not False
            for written, description in keys.rows([b])
        ]

    def commands(self) -> Iterable[tuple[str, str, str]]:
        """(description, key as written, action) of each key, for the command palette (a disabled one marked)."""
        for b in self.KEYS:
            if b.action != "help" and self.check_action(b.action, ()) is not False:
                disabled = self.refusal(b.action) is not None
                yield f"{b.tooltip}{' (disabled)' if disabled else ''}", b.key_display or b.key, b.action

    def refusal(self, action: str) -> str | None:
        """Why the key bound to `action` (as a binding writes it, e.g. `scale('lr', 2)`) is disabled here;
        None where it is not."""
        return None

    async def choose(self, action: str) -> None:
        """`action` chosen in the command palette: run, or, where it is disabled, the reason said."""
        why = self.refusal(action)
        if why is not None:
            self.notify(why, title="not for this run", severity="warning")
            return
        await self.run_action(action)

    def redraw(self) -> None:
        """Draw again what the panes hold (colours drawn into text come from the theme)."""

    def crash_dir(self) -> Path | None:
        """Where a crash's details go: a directory this monitor owns, never one it only watches."""
        return None

    async def action_quit_app(self) -> None:
        """`q`: close, stopping what this monitor started."""

    async def terminated(self) -> None:
        """SIGTERM (`kill PID`): as `q`."""
        await self.action_quit_app()

    def hang_up(self) -> None:
        """The terminal is gone (SIGHUP): leave, with what trains going on."""

    def write_screenshot(self, path: Path) -> None:
        try:
            write_atomic(path, self.app.export_screenshot())
        except WriteError as e:
            self.notify(str(e), title="screenshot not written", severity="error")
            return
        self.notify(f"screenshot saved to {path}")

    def leave(self, status: int = 0, farewell: str | None = None) -> None:
        """End the app with `status`, and `farewell` to print once the terminal is ours again."""
        self.post_message(self.Leave(status, farewell))

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        # Our messages quote files and values, whose brackets are not markup.
        self.app.notify(message, markup=markup, **kwargs)


__all__ = ["MonitorScreen"]
