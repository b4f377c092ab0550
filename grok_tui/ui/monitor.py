"""What the run monitor (app.py) and the sweep monitor (sweep_app.py) share.

Themes (every .tcss loaded, switched by a class on the App), the command
palette's entry for each key, notices that quote paths and values (never
markup), an SVG screenshot written whole, a crash as one line (the traceback in
crash.log), and the watchdog that ends the process after a hang-up.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual.app import App, SystemCommand
from textual.screen import Screen

from grok_tui.crash import report_crash
from grok_tui.files import WriteError, write_atomic
from grok_tui.ui.themes import DEFAULT_THEME, available_themes, base_theme, theme_css

# After a hang-up, how long a monitor may take to let go before the process simply ends.
HANG_UP_GRACE_S = 2.0

# (key, shown as, action, footer label, description for help and the palette, in the footer)
KeyRow = tuple[str, str, str, str, str, bool]


class Crash(Exception):
    """Stands in for the error on Textual's way out: it prints nothing (no traceback on the screen)."""

    def __init__(self, line: str, error: Exception):
        super().__init__(line)
        self.__cause__ = error

    def __rich__(self) -> Text:
        return Text("", end="")


ReturnType = TypeVar("ReturnType")


class MonitorApp(App[ReturnType]):
    """A Textual app over training it does not do itself (the run's or the sweep's own process)."""

    KEYS: ClassVar[list[KeyRow]] = []

    def __init__(self, theme: str | None = None) -> None:
        self.theme_names = available_themes()
        # Every theme is loaded; switching is a class change on the App (themes/*.tcss).
        self.CSS = type(self).CSS + "\n".join(theme_css(name) for name in self.theme_names)  # type: ignore[misc]
        super().__init__()
        self.theme_name = theme or DEFAULT_THEME
        self.crash: str | None = None  # the one line a crash leaves (details in crash.log)

    # ---- themes ---------------------------------------------------------------------

    def action_cycle_theme(self) -> None:
        names = self.theme_names
        self._apply_theme(names[(names.index(self.theme_name) + 1) % len(names)])
        self.notify(f"theme: {self.theme_name}")

    def _apply_theme(self, name: str) -> None:
        self.remove_class(f"theme-{self.theme_name}")
        self.theme_name = name
        self.add_class(f"theme-{name}")
        base = base_theme(name)
        self.theme = base if base in self.available_themes else "textual-dark"
        self.redraw()

    def redraw(self) -> None:
        """Draw again what the panes hold (colours drawn into text come from the theme)."""

    # ---- what every monitor does alike ----------------------------------------------------

    def write_screenshot(self, path: Path) -> None:
        try:
            write_atomic(path, self.export_screenshot())
        except WriteError as e:
            self.notify(str(e), title="screenshot not written", severity="error")
            return
        self.notify(f"screenshot saved to {path}")

    def start_hang_up_watchdog(self) -> None:
        """The terminal is gone: Textual's way out may block writing to a terminal that no longer reads,
        and nothing on the screen is worth waiting for, so the process ends after a grace period."""
        threading.Timer(HANG_UP_GRACE_S, os._exit, args=(0,)).start()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for _, display, action, _, description, _ in self.KEYS:
            if action != "help":
                yield SystemCommand(description, f"key {display}", lambda action=action: self.run_action(action))

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        # Our messages quote files and values, whose brackets are not markup.
        super().notify(message, markup=markup, **kwargs)

    def crash_dir(self) -> Path | None:
        """Where this monitor's crash.log goes: a directory it owns, never one it only watches."""
        return None

    def _handle_exception(self, error: Exception) -> None:
        # A bug in the app: the traceback goes to crash.log, and the app exits with status 1 (Textual's
        # own handling) with one line for the caller to print.
        self.crash = report_crash(error, self.crash_dir())
        super()._handle_exception(Crash(self.crash, error))


__all__ = ["HANG_UP_GRACE_S", "Crash", "KeyRow", "MonitorApp"]
