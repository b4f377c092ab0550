"""The forecast as the monitors show it while a run trains: what to say, when, and how often to work it out.

A run's forecast is shown from the step train accuracy fits (point.fit_step) until test accuracy settles:
it reaches LABEL_ACC, or the run ends. Before the fit the curves say nothing yet (the model would fall back
on the settings alone), and after it there is the fact. An experiment the shipped fit has no model for
shows nothing, never a guess. The wording is `Outlook.text`, the one place for it.

`LiveForecast` follows one run (the run monitor): it reads the rows the monitor already holds (a History)
and works the forecast out again only when a new row has come, at most once every INTERVAL_S (measured:
1 ms for the ~250 rows of the default run's open question, 6.5 ms at the 2,048 a History keeps).
`MemberForecasts` follows a sweep's members, each again only when its rows moved; it runs where the sweep
is read, in a thread.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grok_tui.forecast.model import Fit, FitError, forecast, load_fit
from grok_tui.forecast.point import FIT_ACC, LABEL_ACC, Row, first_step, fit_step
from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot

if TYPE_CHECKING:  # the sweep's store brings torch with it: a run's monitor has no need of it
    from grok_tui.sweep.store import MemberView

# The most often a run's forecast is worked out again (seconds): evidence moves slower than frames.
INTERVAL_S = 1.0
# The series of a History a forecast reads (features.py): the rest of a row is the settings in force.
READ = ("train_loss", "test_loss", "train_acc", "test_acc", "param_norm", "purity")


def _round(step: int) -> int:
    """A step to two significant figures: the forecast is no finer than that."""
    if step < 100:
        return step
    digits = int(math.floor(math.log10(step))) - 1
    return int(round(step, -digits))


def _shown(p: float) -> str:
    """A probability as the monitor writes it: never 1.00, which a forecast is not."""
    return f"{min(p, 0.99):.2f}"


@dataclass(frozen=True)
class Outlook:
    """The forecast at `step`: the probability that test accuracy reaches LABEL_ACC within the run's budget,
    and the step it is expected to (None where the fit has no step model, or p < 0.5)."""

    step: int
    p_generalize: float
    expected_step: int | None = None

    @property
    def groks(self) -> bool:
        return self.p_generalize >= 0.5

    @property
    def marker_step(self) -> int | None:
        """Where the curves mark the step expected (only where it lies ahead)."""
        if not self.groks or self.expected_step is None or self.expected_step <= self.step:
            return None
        return self.expected_step

    @property
    def text(self) -> str:
        """`groks ~step 3,100 · p 0.92`, `stays memorized · p 0.97`: the outcome likelier, and its probability."""
        p = self.p_generalize
        if p < 0.5:
            return f"stays memorized · p {_shown(1 - p)}"
        if self.expected_step is None:
            when = ""
        elif self.expected_step <= self.step:
            when = " ~now"  # the model thinks it is due: said so until it happens
        else:
            when = f" ~step {_round(self.expected_step):,}"
        return f"groks{when} · p {_shown(p)}"


def open_question(rows: Sequence[Row]) -> bool:
    """Whether a forecast has something to say: train accuracy has fitted and test accuracy has not yet
    reached LABEL_ACC."""
    return bool(rows) and fit_step(rows) is not None and first_step(rows, "test_acc", LABEL_ACC) is None


def outlook(rows: Sequence[Row], settings: Mapping[str, Any], fit: Fit | None) -> Outlook | None:
    """What to show at the last of `rows` (oldest first): None before the fit, once test accuracy has
    reached LABEL_ACC, for an experiment the fit has no model for (`fit` None: no fit could be loaded at
    all), and where these rows give no forecast."""
    if fit is None or not open_question(rows):
        return None
    try:
        made = forecast(rows, settings, fit)
    except FitError:  # no model for this experiment: nothing is guessed
        return None
    except (ValueError, ArithmeticError):  # rows a forecast cannot read: nothing shown, never a traceback
        return None
    return Outlook(int(rows[-1]["step"]), made.p_generalize, made.expected_step)


def history_rows(history: History, upto: int | None = None) -> list[dict[str, float]]:
    """The rows a History holds (one per bucket: its last values), up to step `upto`."""
    series = {name: history.series(name) for name in READ if name in history.names}
    if not series:
        return []
    steps = next(iter(series.values())).steps
    count = len(steps) if upto is None else int((steps <= upto).sum())
    return [{"step": int(steps[i]), **{name: float(s.values[i]) for name, s in series.items()}} for i in range(count)]


def _open_in(history: History, upto: int | None) -> bool:
    """`open_question` of a History's rows up to step `upto`, read off its arrays (no rows are built)."""
    train, test = history.series("train_acc"), history.series("test_acc")
    kept = slice(None) if upto is None else train.steps <= upto
    return bool((train.values[kept] >= FIT_ACC).any() and not (test.values[kept] >= LABEL_ACC).any())


def run_settings(snapshot: Snapshot, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's settings as they stand: its config, with the budget, the experiment, and the values the
    trainer holds now (a key changes them) and the training-set size from the last row."""
    out = dict(config or {})
    now = snapshot.now
    out.update(experiment=snapshot.experiment, steps=snapshot.total_steps)
    out.update(weight_decay=now.weight_decay, lr=now.lr, l1=now.l1)
    out["train_size"] = now.train_size if now.train_size is not None else snapshot.metrics.train_size
    return out


@functools.cache
def shipped_fit() -> Fit | None:
    """The fit shipped in the package, loaded once; None where it cannot be used (nothing then is guessed)."""
    try:
        return load_fit()
    except FitError:
        return None


# The fit itself, or how to load it when first needed (the shipped one is read from the package once).
FitSource = Fit | None | Callable[[], Fit | None]


class _Paced:
    """What both followers share: the fit (or how to load it), and how often, by which clock, a forecast
    may be worked out again."""

    def __init__(
        self, fit: FitSource = shipped_fit, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fit_or_loader = fit
        self.interval_s = interval_s
        self._clock = clock

    def _fit(self) -> Fit | None:
        fit = self._fit_or_loader
        return fit() if callable(fit) else fit


class LiveForecast(_Paced):
    """One run's forecast, worked out again when a new row has come (or the settings moved), at most once
    every `interval_s`: in between, the last one stands. The first, once train accuracy fits, is worked out
    at once, and so is a replay's step moved."""

    def __init__(
        self, fit: FitSource = shipped_fit, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(fit, interval_s, clock)
        self._key: tuple[Any, ...] | None = None
        self._at = -math.inf
        self.shown: Outlook | None = None

    def update(
        self, history: History, snapshot: Snapshot, config: Mapping[str, Any] | None, at: int | None = None
    ) -> Outlook | None:
        """What to show of the run in `history` now (`at`: as it stood at that step, a replay's)."""
        if snapshot.finished and at is None:
            self._key, self.shown = None, None  # the run has ended: its outcome is what happened
            return None
        if not _open_in(history, at):
            self._key, self.shown = None, None  # nothing to say yet, or any more: nothing to work out
            return None
        settings = run_settings(snapshot, config)
        key = (history.last_step, len(history), at, tuple(sorted((k, str(v)) for k, v in settings.items())))
        if key == self._key:
            return self.shown
        now = self._clock()
        if self._key is not None and self._key[2] == at and now - self._at < self.interval_s:
            return self.shown  # worked out a moment ago: a call after the interval takes the news
        fit = self._fit()
        self.shown = outlook(history_rows(history, at), settings, fit)
        self._key, self._at = key, now
        return self.shown


class MemberForecasts(_Paced):
    """The forecasts of a sweep's undecided members, each worked out again when its rows moved, at most once
    every `interval_s` (a sweep of 60 members at ~1 ms each would otherwise take its reader's thread for
    60 ms at every reading)."""

    def __init__(
        self, fit: FitSource = shipped_fit, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(fit, interval_s, clock)
        # By member name: (its row count and last step, when it was worked out, what to show).
        self._made: dict[str, tuple[tuple[int, int], float, Outlook | None]] = {}

    def update(self, members: Sequence[MemberView]) -> dict[str, Outlook]:
        """Member name -> what to show, for the undecided members a forecast speaks for."""
        fit = self._fit()
        now = self._clock()
        out: dict[str, Outlook] = {}
        for m in members:
            if m.phase is not None or m.finished or not m.rows:
                self._made.pop(m.name, None)
                continue
            key = (len(m.rows), m.step)
            made = self._made.get(m.name)
            if made is None or (made[0] != key and now - made[1] >= self.interval_s):
                made = (key, now, outlook(m.rows, m.member.cfg.to_dict(), fit))
                self._made[m.name] = made
            if made[2] is not None:
                out[m.name] = made[2]
        return out


__all__ = [
    "INTERVAL_S",
    "LiveForecast",
    "MemberForecasts",
    "Outlook",
    "history_rows",
    "open_question",
    "outlook",
    "run_settings",
    "shipped_fit",
]
