"""How often each pane may redraw: over a slow SSH link every byte the monitor writes counts.

Redrawing every pane ten times a second wrote 400 to 600 KB/s at 120x40 (24-bit
colour), most of it the heatmap, whose cells each carry two colours of their own (~40
bytes a cell). The eye needs far less: the status line reads best a few times a second, the
curves twice, and the weights and their frequencies move slowly. So the panes come in
three groups, each with its own interval, all set by one number, `--refresh SECONDS`:

- plots (the curves and the norm): every SECONDS (default 0.5);
- inspection (the weights heatmap, the frequencies and the embedding): every 4 x SECONDS;
- status: every SECONDS / 2, kept between 0.1 and 1 s.

A pane is drawn only when it has news (a new frame arrived since it was last drawn) and
its interval has passed; the panes themselves then skip a redraw whose picture would not
change. Paused or finished, no frames arrive, so nothing is written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_REFRESH_S = 0.5
MIN_REFRESH_S, MAX_REFRESH_S = 0.1, 60.0
INSPECTION_FACTOR = 4
STATUS_MIN_S, STATUS_MAX_S = 0.1, 1.0
GROUPS = ("status", "plots", "inspection")

REFRESH_HELP = (
    f"seconds between two redraws of the curves and the norm (default {DEFAULT_REFRESH_S:g}, "
    f"{MIN_REFRESH_S:g} to {MAX_REFRESH_S:g}); the weights and frequencies redraw every "
    f"{INSPECTION_FACTOR}x that, the status line twice as often (every {STATUS_MIN_S:g} to "
    f"{STATUS_MAX_S:g} s). Larger values send fewer bytes over a slow link: at 120x40 about 40 KB/s "
    f"at 0.5, 11 at 2, 5 at 5 (python -m grok_tui.bench measures them)"
)


@dataclass(frozen=True)
class Cadence:
    """Seconds between two redraws of each group of panes."""

    status: float
    plots: float
    inspection: float

    @classmethod
    def for_refresh(cls, refresh: float = DEFAULT_REFRESH_S) -> Cadence:
        return cls(
            status=min(max(refresh / 2, STATUS_MIN_S), STATUS_MAX_S),
            plots=refresh,
            inspection=refresh * INSPECTION_FACTOR,
        )

    def interval(self, group: str) -> float:
        return getattr(self, group)


def parse_refresh(text: str) -> float:
    """The value of --refresh; ValueError says what is allowed."""
    allowed = f"a number of seconds from {MIN_REFRESH_S:g} to {MAX_REFRESH_S:g}"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not allowed; expected {allowed}") from None
    if not (math.isfinite(value) and MIN_REFRESH_S <= value <= MAX_REFRESH_S):
        raise ValueError(f"{text!r} is not allowed; expected {allowed}")
    return value


class Pacer:
    """Which groups of panes to draw now: those with news whose interval has passed."""

    def __init__(self, cadence: Cadence, tick: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.cadence, self.clock = cadence, clock
        self.tick = min(tick or cadence.status, cadence.status)  # how often the app's timer asks
        self._drawn: dict[str, float] = {}
        self._news: set[str] = set()
        # A group due within half a tick counts as due, or the timer's jitter would push
        # a 0.5 s group from every second 0.25 s tick onto every third.
        self._slack = self.tick / 2

    def news(self, at_once: bool = False) -> None:
        """A new frame: every group has something new to show (`at_once`: now, whatever their turn)."""
        self._news.update(GROUPS)
        if at_once:
            self._drawn.clear()

    def due(self) -> set[str]:
        """The groups to draw now; they count as drawn from this moment."""
        now = self.clock()
        due = {
            group
            for group in self._news
            if now - self._drawn.get(group, -math.inf) >= self.cadence.interval(group) - self._slack
        }
        for group in due:
            self._drawn[group] = now
        self._news -= due
        return due
