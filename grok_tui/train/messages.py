"""What a run's process says to its clients on the channel (train/channel.py), one class per message.

The server (train/server.py) sends each as its `to_wire()` tuple, pickled; a client reads one back with
`from_wire`, the one place a message from a run is checked. On the wire they stay the tuples that
every grok-tui version has sent, so a run started by an earlier version can still be attached to:
    ("hello", info, rows, snapshot)  on connecting: the run, every metrics row so far, the newest frame
    ("frame", snapshot, rows)        the newest frame and the rows since the last one
    ("reply", id, error)             to each command: error is None, or one line saying what was wrong
    ("bye", reason)                  the run ended ("finished", "stopped", a fault); nothing follows
Rows are lists, not tuples, as the Mailbox takes them: a hello carries the whole history, not copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias, TypeGuard

from grok_tui.train.snapshot import Metrics, Snapshot


@dataclass(frozen=True)
class Hello:
    """The first message on a connection: the run (`info`: pid, run_dir, experiment, steps), every metrics
    row logged so far, and the newest frame (None before the first)."""

    info: dict[str, Any]
    rows: list[Metrics]
    snapshot: Snapshot | None

    def to_wire(self) -> tuple[Any, ...]:
        return ("hello", self.info, self.rows, self.snapshot)


@dataclass(frozen=True)
class Frame:
    """The newest frame, and every row logged since the frame before it."""

    snapshot: Snapshot
    rows: list[Metrics]

    def to_wire(self) -> tuple[Any, ...]:
        return ("frame", self.snapshot, self.rows)


@dataclass(frozen=True)
class Reply:
    """The answer to a command: the id it was sent with (None if it had none, or was not a JSON object), and
    None if it was taken, else one line saying why not."""

    id: int | None
    error: str | None

    def to_wire(self) -> tuple[Any, ...]:
        return ("reply", self.id, self.error)


@dataclass(frozen=True)
class Bye:
    """The run has ended ("finished", "stopped", "fault: ..."); nothing follows."""

    reason: str

    def to_wire(self) -> tuple[Any, ...]:
        return ("bye", self.reason)


@dataclass(frozen=True)
class Unreadable:
    """What a client makes of a message that is none of the above (a run of another grok-tui version's):
    `why`, a few words fit for one line."""

    why: str


Message: TypeAlias = Hello | Frame | Reply | Bye


def from_wire(message: object) -> Message | Unreadable:
    """The message a run sent, checked part by part; anything else is Unreadable, saying what it looks like."""
    match message:
        case ("hello", dict() as info, list() as rows, snapshot) if _rows(rows) and (
            snapshot is None or isinstance(snapshot, Snapshot)
        ):
            return Hello(info, rows, snapshot)
        case ("frame", Snapshot() as snapshot, list() as rows) if _rows(rows):
            return Frame(snapshot, rows)
        case ("reply", ident, error) if _id(ident) and (error is None or isinstance(error, str)):
            return Reply(ident, error)
        case ("bye", str() as reason):
            return Bye(reason)
    return Unreadable(_looks_like(message))


def _rows(rows: list[Any]) -> bool:
    return all(isinstance(row, Metrics) for row in rows)


def _id(ident: object) -> TypeGuard[int | None]:
    return ident is None or (isinstance(ident, int) and not isinstance(ident, bool))


def _looks_like(message: object) -> str:
    """What a message that is not one of ours looks like, in a few words."""
    if isinstance(message, tuple) and message and isinstance(message[0], str):
        return f"a {message[0][:20]!r} message of {len(message)} parts"
    return f"a {type(message).__name__}"


__all__ = ["Bye", "Frame", "Hello", "Message", "Reply", "Unreadable", "from_wire"]
