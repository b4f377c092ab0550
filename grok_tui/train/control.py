"""The control channel: how another thread (the UI, a test) steers a running trainer.

Commands are small frozen dataclasses put on a queue; the trainer drains the
queue between two steps, so a command takes effect at the next step. The queue
is anything with `put` and `get(timeout=...)`: a `queue.SimpleQueue` for a
thread, a `multiprocessing.Queue` when the loop runs in a child process.
"""

from __future__ import annotations

import math
import queue
from dataclasses import dataclass
from typing import Any, Protocol, Union

HYPERPARAMETERS = ("weight_decay", "lr", "l1")


@dataclass(frozen=True)
class SetHyper:
    name: str
    value: float


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class SaveCheckpoint:
    pass


Command = Union[SetHyper, Pause, Resume, Stop, SaveCheckpoint]


class _Queue(Protocol):
    def put(self, item: Any) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


def check_hyper(name: str, value: float) -> float:
    """The value as a float, or ValueError saying what is allowed."""
    if name not in HYPERPARAMETERS:
        raise ValueError(f"unknown hyperparameter {name!r}; expected one of {', '.join(HYPERPARAMETERS)}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value}")
    if name == "lr" and value <= 0:
        raise ValueError(f"lr must be > 0, not {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return value


class Control:
    def __init__(self, channel: _Queue | None = None):
        self._queue: _Queue = channel if channel is not None else queue.SimpleQueue()

    def send(self, command: Command) -> None:
        if isinstance(command, SetHyper):
            command = SetHyper(command.name, check_hyper(command.name, command.value))
        self._queue.put(command)

    def set(self, name: str, value: float) -> None:
        self.send(SetHyper(name, value))

    def pause(self) -> None:
        self.send(Pause())

    def resume(self) -> None:
        self.send(Resume())

    def stop(self) -> None:
        self.send(Stop())

    def save_checkpoint(self) -> None:
        self.send(SaveCheckpoint())

    def get(self, timeout: float | None = None) -> Command | None:
        """The next command, waiting up to `timeout` seconds (0: don't wait)."""
        try:
            if timeout == 0:
                return self._queue.get(block=False)
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
