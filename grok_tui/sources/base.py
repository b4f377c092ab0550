"""The contract between a monitor and what it watches.

A monitor renders frames and sends commands; it never trains, reads files or
talks to a process itself. Whatever it watches is a `Source`: a run it started,
a run it attached to, a run directory it reads (alone or compared with others),
a fixed stream for tests and the benchmark. The monitor runs `Source.run` in a
thread worker, which fills the source's Mailbox until the source ends or the
worker is cancelled, and takes the newest frame from that mailbox on its own
timer: neither side waits on the other.

What the monitor may do follows from the source alone, never from probing its
type: `control` is None for a read-only view; `can_detach` says whether the run
goes on without the monitor; `stop` ends what the source does (the run itself,
where the source may steer it); `restarted` gives the source of a new run; `refused` names the commands its run
cannot take (a script's loop: no ungrokking, no norm constraint), with why. One member is optional, read with
`getattr(source, "replay", None)`: a `Replay` where the source can step through the run's recorded views.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from grok_tui.train.frames import Mailbox

if TYPE_CHECKING:
    from grok_tui.history import History
    from grok_tui.train.control import Control
    from grok_tui.train.spec import RunSpec


class Mode(enum.Enum):
    """How a monitor came to watch what it shows (the status line names it)."""

    OWN = "own"  # a run this monitor started
    ATTACHED = "attached"  # a run started elsewhere (grok-tui attach)
    WATCHED = "watch"  # a run directory, read and never written (grok-tui watch)
    COMPARING = "comparing"  # a run directory with others' curves over it (grok-tui watch A B)
    REPLAY = "replay"  # a finished run, stepped through

    @property
    def read_only(self) -> bool:
        return self in (Mode.WATCHED, Mode.COMPARING, Mode.REPLAY)


class CannotRestart(Exception):
    """A new run could not be made (its directory, its memory): one line saying why."""


@runtime_checkable
class Curves(Protocol):
    """Another run's curves drawn over the watched one's (grok-tui watch A B)."""

    label: str
    history: History

    def poll(self) -> bool:
        """Take in what the run wrote since the last call; whether there was anything."""
        ...

    def take_notices(self) -> list[str]: ...


class Replay(Protocol):
    """A run's recorded steps, stepped through (a watched run that kept RUN/replay.npz, sources/watched.py)."""

    @property
    def steps(self) -> Sequence[int]:
        """The recorded steps, in order."""
        ...

    @property
    def position(self) -> int | None:
        """The index in `steps` of the frame shown; None: the run as it is now, not replayed."""
        ...

    def seek(self, index: int | None) -> None:
        """Show frame `index` (clamped to those there are), or with None the run as it is now; the source's
        mailbox has that frame at once."""
        ...


@runtime_checkable
class Source(Protocol):
    """What a run monitor watches: frames into `mailbox`, commands through `control`."""

    mailbox: Mailbox

    @property
    def mode(self) -> Mode: ...

    @property
    def run_dir(self) -> Path | None:
        """The run's directory: None for a run kept in memory only (tests, the benchmark)."""
        ...

    @property
    def control(self) -> Control | None:
        """Where commands go, applied by the trainer between two steps; None: read-only."""
        ...

    @property
    def can_detach(self) -> bool:
        """Whether the run trains on when the monitor leaves (`d`, a hang-up)."""
        ...

    @property
    def config(self) -> dict[str, Any] | None:
        """The run's settings (config.json's fields), where the source knows them."""
        ...

    @property
    def others(self) -> Sequence[Curves]:
        """Runs whose curves are drawn over this one's, in order (empty unless comparing)."""
        ...

    @property
    def label(self) -> str | None:
        """This run's name in the legend of a comparison (None when it is shown alone)."""
        ...

    def run(self, cancelled: Callable[[], bool]) -> None:
        """Fill the mailbox until the source ends or `cancelled()` turns true (called in a worker thread)."""
        ...

    def stop(self) -> None:
        """Ask what feeds the source to end: the run, where the source steers it; nothing for a view."""
        ...

    @property
    def refused(self) -> Mapping[str, str]:
        """The commands this source's run cannot take, by name (`weight_decay`, `lr`, `pause`, `checkpoint`,
        `restart`, `train_size`, `norm_constraint`, `grokfast`, `l1`), each with a one-line reason: the
        monitor shows their keys disabled and says the reason when one is pressed. Empty for a preset's run."""
        ...

    @property
    def restart_refusal(self) -> str | None:
        """Why `restarted` would refuse, asked before the run is stopped for it (None: it would not)."""
        ...

    def restarted(self) -> Source:
        """The source of a new run of the same config with the next seed (CannotRestart says why not)."""
        ...


def next_seed(spec: RunSpec) -> RunSpec:
    """A new run of `spec`'s config with the next seed, in a new directory beside its own (or, for a run
    kept in memory, in memory again): created and checked as any new run is (CannotRestart says why not)."""
    from grok_tui.runlog import RunDirError, default_run_dir
    from grok_tui.train.memory import WontFit
    from grok_tui.train.spec import new_run

    cfg = spec.cfg.replace(seed=spec.cfg.seed + 1)
    run_dir = default_run_dir(cfg.experiment, spec.run_dir.parent) if spec.run_dir is not None else None
    try:
        return new_run(cfg, run_dir)
    except (RunDirError, WontFit) as e:
        raise CannotRestart(str(e)) from None


__all__ = ["CannotRestart", "Curves", "Mailbox", "Mode", "Replay", "Source", "next_seed"]
