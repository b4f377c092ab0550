"""The control channel: how another thread (the UI, a test) steers a running trainer.

Commands are small frozen dataclasses put on a queue; the trainer drains the
queue between two steps, so a command takes effect at the next step. The queue
is anything with `put` and `get(timeout=...)`: a `queue.SimpleQueue` for a
thread, a `multiprocessing.Queue` when the loop runs in a child process.

Commands carry meaning, not what a screen last showed: "weight decay ×2" and
"toggle pause" are applied by the trainer to its own current state, so a burst
of keys (or several clients) compose exactly as pressed.
"""

from __future__ import annotations

import math
import queue
from dataclasses import dataclass
from typing import Any, Protocol, Union

HYPERPARAMETERS = ("weight_decay", "lr", "l1")
# What `Toggle` can flip: pause, the norm constraint (held at the current norm), Grokfast (the run's alpha, lambda).
TOGGLES = ("pause", "norm_constraint", "grokfast")


@dataclass(frozen=True)
class SetHyper:
    """Set a hyperparameter to a value."""

    name: str
    value: float


@dataclass(frozen=True)
class ScaleHyper:
    """Multiply a hyperparameter, as the trainer holds it when the command arrives, by `factor`."""

    name: str
    factor: float


@dataclass(frozen=True)
class Toggle:
    """Flip one on/off setting from whatever it is when the command arrives."""

    what: str


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


@dataclass(frozen=True)
class SetTrainSize:
    """Train on the first `size` training examples (ungrokking); None restores the full set."""

    size: int | None


@dataclass(frozen=True)
class SetNormConstraint:
    """Hold the global weight norm at `norm` after every step; None turns it off, `current=True` takes today's norm."""

    norm: float | None = None
    current: bool = False


@dataclass(frozen=True)
class SetGrokfast:
    on: bool
    alpha: float = 0.98
    lamb: float = 2.0


Command = Union[
    SetHyper, ScaleHyper, Toggle, Pause, Resume, Stop, SaveCheckpoint, SetTrainSize, SetNormConstraint, SetGrokfast,
]


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
    return value + 0.0  # -0.0 reads as 0


def scaled(value: float, factor: float) -> float:
    """`value × factor` to 6 significant digits; doubling zero starts from a small value instead."""
    if value == 0 and factor > 1:
        return 1e-3
    return float(f"{value * factor:.6g}")


class Control:
    def __init__(self, channel: _Queue | None = None):
        self._queue: _Queue = channel if channel is not None else queue.SimpleQueue()

    def send(self, command: Command) -> None:
        if isinstance(command, SetHyper):
            command = SetHyper(command.name, check_hyper(command.name, command.value))
        self._queue.put(command)

    def set(self, name: str, value: float) -> None:
        self.send(SetHyper(name, value))

    def scale(self, name: str, factor: float) -> None:
        if name not in HYPERPARAMETERS:
            raise ValueError(f"unknown hyperparameter {name!r}; expected one of {', '.join(HYPERPARAMETERS)}")
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise ValueError(f"the factor must be a finite number > 0, not {factor!r}")
        self.send(ScaleHyper(name, float(factor)))

    def toggle(self, what: str) -> None:
        if what not in TOGGLES:
            raise ValueError(f"cannot toggle {what!r}; expected one of {', '.join(TOGGLES)}")
        self.send(Toggle(what))

    def pause(self) -> None:
        self.send(Pause())

    def resume(self) -> None:
        self.send(Resume())

    def stop(self) -> None:
        self.send(Stop())

    def save_checkpoint(self) -> None:
        self.send(SaveCheckpoint())

    def train_size(self, size: int | None) -> None:
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"the training subset must be a whole number >= 1, not {size!r}")
        self.send(SetTrainSize(size))

    def constrain_norm(self, norm: float | None = None, current: bool = False) -> None:
        if norm is not None and not (math.isfinite(norm) and norm > 0):
            raise ValueError(f"the norm must be a finite number > 0, not {norm}")
        self.send(SetNormConstraint(norm, current))

    def grokfast(self, on: bool, alpha: float = 0.98, lamb: float = 2.0) -> None:
        if not (0 <= alpha < 1 and math.isfinite(lamb) and lamb >= 0):
            raise ValueError("grokfast needs 0 <= alpha < 1 and a finite lamb >= 0")
        self.send(SetGrokfast(on, alpha, lamb))

    def get(self, timeout: float | None = None) -> Command | None:
        """The next command, waiting up to `timeout` seconds (0: don't wait)."""
        try:
            if timeout == 0:
                return self._queue.get(block=False)
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
