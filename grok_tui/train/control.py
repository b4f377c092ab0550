"""The control commands: how the monitor, a test or a client of a run's channel steers a running trainer.

Commands are small frozen dataclasses, checked as they are sent (`check`, by config.py's rule for each
value). A `Control` is where they go. The trainer's own is a queue in its process, which it drains
between two steps, so a command takes effect at the next step; two kinds of sender put commands there:

- a thread of the same process: the monitor's UI thread for a run it trains in-process
  (sources/in_process.py), a test;
- the run's channel server (server.py), for the commands its clients send over the run's socket, each
  read back from its JSON object by `from_wire` and checked again.

A monitor attached to a run trained elsewhere (sources/attached.py) holds a Control whose queue is that
channel: sending a command writes its JSON object (`to_wire`) to the run's socket.

Commands carry meaning, not what a screen last showed: "weight decay ×2" and
"toggle pause" are applied by the trainer to its own current state, so a burst
of keys (or several clients) compose exactly as pressed.
"""

from __future__ import annotations

import math
import queue
from dataclasses import MISSING, dataclass, fields
from typing import Any, Protocol

from grok_tui.config import GROKFAST_LAMB, HYPER_RANGES, NORM_TARGET, RULES, TRAIN_SUBSET, ConfigError, Range

HYPERPARAMETERS = tuple(HYPER_RANGES)
# What a hyperparameter may be multiplied by (the trainer then holds the product within the value's range).
FACTOR = Range(0.0, math.inf, above=True)
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


Command = (
    SetHyper
    | ScaleHyper
    | Toggle
    | Pause
    | Resume
    | Stop
    | SaveCheckpoint
    | SetTrainSize
    | SetNormConstraint
    | SetGrokfast
)


class _Queue(Protocol):
    """Where a Control's commands go: a queue the trainer drains, or a run's channel (sources/attached.py)."""

    def put(self, item: Any) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


def check_hyper(name: str, value: Any) -> float:
    """The value as a float, or ValueError (a ConfigError: the field, the value, what is allowed) when
    config.py's rule for `name` refuses it."""
    if name not in HYPER_RANGES:
        raise ValueError(f"unknown hyperparameter {name!r}; expected one of {', '.join(HYPERPARAMETERS)}")
    rule = HYPER_RANGES[name]
    if not rule(value):
        raise ConfigError(name, value, rule.allowed)
    return float(value) + 0.0  # -0.0 reads as 0


def check(command: Any) -> Command:
    """The command with its values checked (a hyperparameter as a float), or ValueError saying what
    is allowed: commands come from keys, from tests and, through a run's channel, from other processes."""
    if isinstance(command, SetHyper):
        return SetHyper(command.name, check_hyper(command.name, command.value))
    if isinstance(command, ScaleHyper):
        if command.name not in HYPERPARAMETERS:
            raise ValueError(f"unknown hyperparameter {command.name!r}; expected one of {', '.join(HYPERPARAMETERS)}")
        if not FACTOR(command.factor):
            raise ConfigError("factor", command.factor, FACTOR.allowed)
        return ScaleHyper(command.name, float(command.factor))
    if isinstance(command, Toggle):
        if command.what not in TOGGLES:
            raise ValueError(f"cannot toggle {command.what!r}; expected one of {', '.join(TOGGLES)}")
        return command
    if isinstance(command, SetTrainSize):
        if command.size is not None and not TRAIN_SUBSET(command.size):
            raise ConfigError("size", command.size, f"null (the whole training set) or {TRAIN_SUBSET.allowed}")
        return command
    if isinstance(command, SetNormConstraint):
        if command.norm is not None and not NORM_TARGET(command.norm):
            raise ConfigError("norm", command.norm, f"null (off) or {NORM_TARGET.allowed}")
        if not isinstance(command.current, bool):
            raise ValueError(f"current must be true or false, not {command.current!r}")
        return command
    if isinstance(command, SetGrokfast):
        if not isinstance(command.on, bool):
            raise ConfigError("on", command.on, "true or false")
        alpha_ok, alpha_allowed = RULES["grokfast_alpha"]
        if not alpha_ok(command.alpha):
            raise ConfigError("alpha", command.alpha, alpha_allowed)
        if not GROKFAST_LAMB(command.lamb):
            raise ConfigError("lamb", command.lamb, GROKFAST_LAMB.allowed)
        return command
    if isinstance(command, (Pause, Resume, Stop, SaveCheckpoint)):
        return command
    raise ValueError(f"not a command: {command!r}")


# On a run's channel a command is a JSON object: {"command": NAME, ...its fields}.
WIRE_NAMES: dict[str, type] = {
    "set": SetHyper,
    "scale": ScaleHyper,
    "toggle": Toggle,
    "pause": Pause,
    "resume": Resume,
    "stop": Stop,
    "checkpoint": SaveCheckpoint,
    "train_size": SetTrainSize,
    "norm": SetNormConstraint,
    "grokfast": SetGrokfast,
}


def to_wire(command: Command) -> dict[str, Any]:
    name = next(name for name, kind in WIRE_NAMES.items() if isinstance(command, kind))
    return {"command": name, **{f.name: getattr(command, f.name) for f in fields(command)}}


def from_wire(record: Any) -> Command:
    """A command from its JSON object, checked; ValueError says what is wrong with it."""
    if not isinstance(record, dict):
        raise ValueError(f"a command is a JSON object, not {type(record).__name__}")
    name = record.get("command")
    kind = WIRE_NAMES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"unknown command {name!r}; expected one of {', '.join(WIRE_NAMES)}")
    names = {f.name for f in fields(kind)}
    required = {f.name for f in fields(kind) if f.default is MISSING}
    given = set(record) - {"command"}
    if given - names or required - given:
        wrong = sorted(given - names) or sorted(required - given)
        raise ValueError(
            f"{name}: {'unknown' if given - names else 'missing'} field {wrong[0]!r}; "
            f"it takes {', '.join(sorted(names)) or 'no fields'}"
        )
    return check(kind(**{key: record[key] for key in given}))


def scaled(value: float, factor: float) -> float:
    """`value × factor` to 6 significant digits; doubling zero starts from a small value instead."""
    if value == 0 and factor > 1:
        return 1e-3
    return float(f"{value * factor:.6g}")


class Control:
    def __init__(self, channel: _Queue | None = None):
        self._queue: _Queue = channel if channel is not None else queue.SimpleQueue()

    def send(self, command: Command) -> None:
        self._queue.put(check(command))

    def set(self, name: str, value: float) -> None:
        self.send(SetHyper(name, value))

    def scale(self, name: str, factor: float) -> None:
        self.send(ScaleHyper(name, factor))

    def toggle(self, what: str) -> None:
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
        self.send(SetTrainSize(size))

    def constrain_norm(self, norm: float | None = None, current: bool = False) -> None:
        self.send(SetNormConstraint(norm, current))

    def grokfast(self, on: bool, alpha: float = 0.98, lamb: float = 2.0) -> None:
        self.send(SetGrokfast(on, alpha, lamb))

    def get(self, timeout: float | None = None) -> Command | None:
        """The next command, waiting up to `timeout` seconds (0: don't wait)."""
        try:
            command: Command = self._queue.get(block=False) if timeout == 0 else self._queue.get(timeout=timeout)
            return command
        except queue.Empty:
            return None
