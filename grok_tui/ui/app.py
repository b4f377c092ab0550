"""The monitor app: one Textual App whose screens are the monitors.

It opens on a home screen — a run's (ui/screens/run.py) or a sweep's
(ui/screens/sweep.py) — and a sweep's screen pushes a run screen over itself
to open a member; closing that one pops back to the map as it was left. The
app itself holds only what every screen shares: the themes (every .tcss loaded,
switched by a class on the App), the command palette's entry for each key of
the screen in front, SIGTERM and SIGHUP (passed to the home screen: quit, or
detach), a crash as one line (the traceback in crash.log), and the line to
print once the terminal is ours again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import App, SystemCommand
from textual.screen import Screen

from grok_tui.crash import report_crash
from grok_tui.sources import Source
from grok_tui.ui.screens.monitor import MonitorScreen
from grok_tui.ui.themes import DEFAULT_THEME, available_themes, base_theme, theme_css

# After a hang-up, how long the app may take to let go before the process simply ends.
HANG_UP_GRACE_S = 2.0


class Crash(Exception):
    """Stands in for the error on Textual's way out: it prints nothing (no traceback on the screen)."""

    def __init__(self, line: str, error: Exception):
        super().__init__(line)
        self.__cause__ = error

    def __rich__(self) -> Text:
        return Text("", end="")


class MonitorApp(App[int]):
    TITLE = "grok-tui"

    def __init__(self, home: MonitorScreen, theme: str | None = None) -> None:
        self.theme_names = available_themes()
        # Every theme is loaded; switching is a class change on the App (themes/*.tcss).
        self.CSS = "\n".join(theme_css(name) for name in self.theme_names)  # type: ignore[misc]
        super().__init__()
        self.home = home
        self.theme_name = theme or DEFAULT_THEME
        self.crash: str | None = None  # the one line a crash leaves (details in crash.log)
        self.farewell: str | None = None  # a line to print once the terminal is ours again

    @classmethod
    def for_run(cls, source: Source, *, theme: str | None = None, **options: Any) -> MonitorApp:
        """The app on a run screen over `source` (`options`: RunScreen's, such as `refresh`)."""
        from grok_tui.ui.screens.run import RunScreen

        return cls(RunScreen(source, **options), theme=theme)

    def get_default_screen(self) -> Screen:
        return self.home

    def on_mount(self) -> None:
        self._apply_theme(self.theme_name)
        # `kill PID` quits as `q` does; a hang-up (the terminal closed, the SSH link dropped) detaches.
        # (Only a main thread's loop takes signals; elsewhere the default stands.)
        with contextlib.suppress(RuntimeError, NotImplementedError):
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.call_later, self._terminated)
            loop.add_signal_handler(signal.SIGHUP, self._hang_up)

    def on_unmount(self) -> None:
        with contextlib.suppress(RuntimeError, NotImplementedError):
            for sig in (signal.SIGTERM, signal.SIGHUP):
                asyncio.get_running_loop().remove_signal_handler(sig)

    async def _terminated(self) -> None:
        await self.home.terminated()

    def _hang_up(self) -> None:
        """The terminal is gone: Textual's way out may block writing to a terminal that no longer reads, and
        nothing on the screen is worth waiting for, so the process ends after a grace period."""
        threading.Timer(HANG_UP_GRACE_S, os._exit, args=(0,)).start()
        self.call_later(self.home.hang_up)

    def on_monitor_screen_leave(self, message: MonitorScreen.Leave) -> None:
        self.farewell = message.farewell
        self.exit(message.status, return_code=message.status)

    def run_for_status(self, **options: Any) -> int:
        """Run the app (`options`: App.run's) to its end: its exit status, once its last line is printed."""
        code = self.run(**options)
        if self.crash is not None:  # one line, once the terminal is ours again; non-zero, so a script can tell
            print(f"grok-tui: error: {self.crash}", file=sys.stderr)
            return 1
        if self.farewell:
            with contextlib.suppress(OSError):  # the terminal may be gone (a hang-up)
                print(self.farewell, file=sys.stderr if self.return_code else sys.stdout, flush=True)
        if self.return_code:
            return self.return_code
        return code if isinstance(code, int) else 0

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
        for screen in self.screen_stack:
            if isinstance(screen, MonitorScreen) and screen.is_mounted:  # one not mounted yet draws in the theme
                screen.redraw()

    # ---- what every screen does alike ----------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, MonitorScreen):
            for description, written, action in screen.commands():
                yield SystemCommand(description, f"key {written}", lambda a=action: screen.choose(a))

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        # Our messages quote files and values, whose brackets are not markup.
        super().notify(message, markup=markup, **kwargs)

    def _handle_exception(self, error: Exception) -> None:
        # A bug in the app: the traceback goes to crash.log, and the app exits with status 1 (Textual's
        # own handling) with one line for the caller to print.
        self.crash = report_crash(error, self.home.crash_dir())
        super()._handle_exception(Crash(self.crash, error))


def run_monitor(home: MonitorScreen, theme: str | None = None) -> int:
    """The monitor app on `home` until it is closed: its exit status, its last line printed."""
    return MonitorApp(home, theme=theme).run_for_status()


__all__ = ["HANG_UP_GRACE_S", "Crash", "MonitorApp", "run_monitor"]
