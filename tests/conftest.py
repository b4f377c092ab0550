"""What several test modules share: a tiny run, the one way to run an async test body, the waiters, and the
app over a live trainer.

Helpers about processes and the CLI are in tests/processes.py; synthetic data (a fixed run, the fuzzers'
strategies) in tests/fakes.py. No test module imports from another test module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import psutil
import pytest
import torch

from grok_tui.config import PRESETS, RunConfig
from grok_tui.process import PROCESS, local_pid
from grok_tui.sources.in_process import InProcessRun
from grok_tui.train import new_run
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.panes.status import StatusPane

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_run_left_behind(tmp_path):
    """A test that fails half-way can leave a run it started training in a session of its own (as every run's
    process is), for ever: end it, so that it takes no core from the tests after it."""
    yield
    for record in tmp_path.rglob(PROCESS):
        pid = local_pid(record.parent)
        if pid is None or pid == os.getpid():  # a monitor in this very process is the test's to close
            continue
        # Only a process of this test's: some tests write a record naming another pid on purpose.
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if str(tmp_path) in " ".join(process.cmdline()):
                process.kill()


# ---- a tiny run -------------------------------------------------------------------------------------------


def tiny_config(**changes) -> RunConfig:
    """A modular run small enough to train in well under a second."""
    base = dict(
        experiment="tiny",
        task="modular",
        op="+",
        p=23,
        train_frac=0.5,
        model="sum_mlp",
        width=32,
        lr=1e-2,
        weight_decay=1.0,
        steps=60,
        eval_every=10,
        device="cpu",
    )
    return PRESETS["mod-add"].config().replace(**{**base, **changes})


@pytest.fixture
def tiny():
    return tiny_config


# The same run as flags of `python -m grok_tui`: the default experiment shrunk to train in about a second.
TINY = [
    "--p",
    "23",
    "--width",
    "32",
    "--train-frac",
    "0.5",
    "--weight-decay",
    "1.0",
    "--eval-every",
    "10",
    "--seed",
    "0",
    "--device",
    "cpu",
]


def one_line(message: str) -> bool:
    # A terminal line ends at any of Python's line breaks (\n, \r, \x0b, \x85, \u2028, ...).
    return len(message.splitlines()) == 1


# ---- an async test body -----------------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run an async test body in a fresh event loop (no pytest async plugin here); its result."""
    return asyncio.run(coro)


# ---- waiting ----------------------------------------------------------------------------------------------
# Two waiters with one clock: `wait_until` sleeps (a process, a thread, a file), `wait_for` lets the app's
# event loop run between tries (time.sleep there would freeze the very app it waits on).


class _Deadline:
    """`timeout` seconds from now; `check` then raises an AssertionError saying `what` (or what it returns)."""

    def __init__(self, timeout: float, what: str | Callable[[], str]) -> None:
        self.at = time.monotonic() + timeout
        self.what = what

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise AssertionError(self.what if isinstance(self.what, str) else self.what())


class _Condition:
    """A condition read from outside what it waits on (an app, a thread, a process), which can meet that
    state half-made: a widget not mounted yet, a line not drawn yet, a file half-written. Raising there
    means "not yet"; at the deadline the last error is raised, so one that persists still fails the test
    (a raise on the first try had failed CI once: StopIteration from a plot not yet drawn). A failed
    assert is the condition's own verdict (the process ended first, the session failed) and fails at once."""

    def __init__(self, condition: Callable[[], object], deadline: _Deadline) -> None:
        self.condition = condition
        self.deadline = deadline

    def holds(self) -> bool:
        try:
            if self.condition():
                return True
        except AssertionError:
            raise
        except Exception:
            if time.monotonic() > self.deadline.at:
                raise
            return False
        self.deadline.check()
        return False


def wait_until(
    condition: Callable[[], object],
    timeout: float = 30.0,
    every: float = 0.01,
    what: str | Callable[[], str] = "condition not met in time",
) -> None:
    """Sleep until `condition()` holds; `what` (or what it returns) is the failure's message."""
    waiting = _Condition(condition, _Deadline(timeout, what))
    while not waiting.holds():
        time.sleep(every)


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the app under `pilot` run until `condition()` holds."""
    waiting = _Condition(condition, _Deadline(timeout, "condition not met in time"))
    while not waiting.holds():
        await pilot.pause(0.05)


async def training_past(pilot, app: MonitorApp, step: int) -> None:
    await wait_for(pilot, lambda: app.home.snapshot is not None and app.home.snapshot.step >= step)


# ---- the app over a trainer -------------------------------------------------------------------------------


@pytest.fixture
def live_app(tmp_path) -> Callable[..., MonitorApp]:
    """`live_app(**changes)`: the app over a tiny run (`changes` to tiny_config) that trains in a thread of
    this process into tmp_path / "run", for as long as the test lasts."""

    def make(**changes) -> MonitorApp:
        cfg = tiny_config(**{"steps": 10_000_000, "eval_every": 10, **changes})
        return MonitorApp.for_run(InProcessRun(new_run(cfg, tmp_path / "run")), frame_interval=0.05)

    return make


@contextlib.asynccontextmanager
async def opened(app: MonitorApp, size: tuple[int, int] = (120, 40), timeout: float = 10.0) -> AsyncIterator[Any]:
    """The app run under Textual's Pilot: the pilot, once the app's first frame is in."""
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.home.snapshot is not None, timeout=timeout)
        yield pilot


def status_text(app: MonitorApp) -> str:
    return str(app.query_one(StatusPane).render())


def notes(app: MonitorApp) -> list[str]:
    """The messages of the notifications the app shows."""
    return [n.message for n in app._notifications]


# ---- runs in the background -------------------------------------------------------------------------------


@pytest.fixture
def detached(tmp_path):
    """`detached(name="run", root=tmp_path)` starts a run in the background (`--detach`) and gives its
    directory; whatever is still running at the end is killed."""
    from tests.processes import background_runs  # processes.py builds on this module: imported here, not above

    with background_runs(tmp_path) as start:
        yield start
