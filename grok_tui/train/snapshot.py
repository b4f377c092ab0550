"""What the trainer hands to the world: immutable records, no live tensors.

Records read back from a run directory are checked field by field
(`Metrics.from_dict`, `Event.from_dict`): a file can hold anything, and a bad
value must become one line naming the field, never a crash in a view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grok_tui.config import clip
from grok_tui.metrics import ParityMass, Spectrum
from grok_tui.system import SystemStats


@dataclass(frozen=True)
class Event:
    """One change to a run, at the step from which it acts."""

    step: int
    kind: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "old": self.old, "new": self.new}

    @classmethod
    def from_dict(cls, row: Any) -> Event:
        """From an events.jsonl record; RecordError names the first bad field."""
        if not isinstance(row, dict):
            raise RecordError("record", row, "a JSON object")
        step = _field(row, "step", _is_step, "an integer from 0 to 2**53")
        kind = _field(row, "kind", lambda v: isinstance(v, str) and 0 < len(v) <= 64, "a short non-empty string")
        old, new = row.get("old"), row.get("new")
        for name, value in (("old", old), ("new", new)):
            if not _is_scalar(value):
                raise RecordError(name, value, "a number, a string, true/false or null")
        return cls(step, kind, old, new)


class RecordError(ValueError):
    """A record read from a file with a value that is not allowed."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        shown = clip(repr(value))
        super().__init__(f"{field}: {shown} is not allowed; expected {allowed}")


def checked(
    records: Iterable[Any], parse: Callable[[Any], Any], path: Path, report: Callable[[Path, str], None]
) -> list[Any]:
    """The records `parse` takes; each one it refuses (RecordError) is skipped and reported, naming the file."""
    good = []
    for record in records:
        try:
            good.append(parse(record))
        except RecordError as e:
            report(path, f"{path}: {e}; record skipped")
    return good


def _is_num(v: Any) -> bool:
    # An int past 2**63 is no count we write, and past float's range it would overflow every check.
    return isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**63)


def _is_step(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53


def _is_scalar(v: Any) -> bool:
    if isinstance(v, str):
        return len(v) <= 500
    return v is None or isinstance(v, bool) or (_is_num(v) and math.isfinite(v) and abs(v) <= 2**53)


def _field(row: dict[str, Any], name: str, ok: Callable[[Any], bool], allowed: str) -> Any:
    value = row.get(name)
    if not ok(value):
        raise RecordError(name, value, allowed)
    return value


@dataclass(frozen=True)
class Metrics:
    """One evaluation: the row written to metrics.jsonl."""

    step: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    param_norm: float
    weight_decay: float
    lr: float
    l1: float
    elapsed_s: float
    steps_per_s: float
    purity: float | None = None  # median per-neuron DFT purity, where the model has one
    parity_share: float | None = None  # share of first-layer |w| on the relevant bits
    train_size: int | None = None  # examples trained on (fewer than the training set while ungrokking)
    norm_target: float | None = None  # the fixed weight norm, while the norm constraint is on
    grokfast: bool = False
    # A script's own metrics beyond these (m.log(step, grad_norm=...)), by name, in the order logged:
    # flattened into the record beside the others (metrics.jsonl holds no "extra" key).
    extra: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        extra = row.pop("extra", ())  # a row pickled by an older grok-tui has none (the class default reads ())
        return {**row, **dict(extra)} if extra else row

    @classmethod
    def from_dict(cls, row: Any) -> Metrics:
        """From a metrics.jsonl record: a missing or null measurement reads as NaN (a diverged loss is
        written as null), while the settings and the clock must be finite numbers; anything else out
        of place raises RecordError naming the field."""
        if not isinstance(row, dict):
            raise RecordError("record", row, "a JSON object")
        step = _field(row, "step", _is_step, "an integer from 0 to 2**53")

        def num(key: str, ok: Callable[[float], bool], allowed: str) -> float:
            value = row.get(key)
            if value is None:
                return float("nan")
            if not (_is_num(value) and not math.isinf(value) and (math.isnan(value) or ok(value))):
                raise RecordError(key, value, allowed + " or null")
            return float(value)

        def setting(key: str, ok: Callable[[float], bool], allowed: str) -> float:
            # What the trainer held and its clock are never unknown: only a measurement can diverge.
            value: Any = row.get(key)
            if not (_is_num(value) and math.isfinite(value) and ok(value)):
                raise RecordError(key, value, allowed)
            return float(value)

        def optional(key: str, ok: Callable[[Any], bool], allowed: str) -> Any:
            value = row.get(key)
            if value is not None and not ok(value):
                raise RecordError(key, value, allowed + " or null")
            return value

        share = (lambda v: 0 <= v <= 1, "a number from 0 to 1")
        at_least_0 = (lambda v: v >= 0, "a finite number >= 0")
        anything = (lambda v: True, "a finite number")
        fraction = lambda v: _is_num(v) and 0 <= v <= 1  # noqa: E731
        return cls(
            step=step,
            train_loss=num("train_loss", *anything),
            train_acc=num("train_acc", *share),
            test_loss=num("test_loss", *anything),
            test_acc=num("test_acc", *share),
            param_norm=num("param_norm", *at_least_0),
            weight_decay=setting("weight_decay", *at_least_0),
            lr=setting("lr", *at_least_0),
            l1=setting("l1", *at_least_0),
            elapsed_s=setting("elapsed_s", *at_least_0),
            steps_per_s=setting("steps_per_s", *at_least_0),
            purity=optional("purity", fraction, "a number from 0 to 1"),
            parity_share=optional("parity_share", fraction, "a number from 0 to 1"),
            train_size=optional("train_size", _is_step, "an integer >= 0"),
            norm_target=optional(
                "norm_target", lambda v: _is_num(v) and math.isfinite(v) and v > 0, "a finite number > 0"
            ),
            grokfast=_field(row, "grokfast", lambda v: v is None or isinstance(v, bool), "true, false or null") is True,
            extra=_extra(row),
        )


# The most custom metrics a row keeps (the first, in the record's order), and the longest name.
MAX_EXTRA, MAX_EXTRA_NAME = 16, 64


def _extra(row: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """A record's custom metrics: its other keys whose values are finite numbers (anything else is skipped:
    an older or newer grok-tui may write fields this one does not know)."""
    known = Metrics.__dataclass_fields__
    found = [
        (key, float(value))
        for key, value in row.items()
        if key not in known
        and isinstance(key, str)
        and 0 < len(key) <= MAX_EXTRA_NAME
        and key.isprintable()
        and _is_num(value)
        and math.isfinite(value)
    ]
    return tuple(found[:MAX_EXTRA])


@dataclass(frozen=True)
class Settings:
    """What the trainer holds now: the values the keys change.

    A view shows these, not the settings of the last evaluation: while paused,
    or between two evaluations, a change must show as soon as it is made.
    """

    weight_decay: float
    lr: float
    l1: float = 0.0
    train_size: int | None = None  # a training subset (ungrokking); None: the whole training set
    norm_target: float | None = None
    grokfast: bool = False

    @classmethod
    def from_metrics(cls, m: Metrics, ungrokking: bool = False) -> Settings:
        """What a metrics row says was in force (for a run read from its files)."""
        return cls(m.weight_decay, m.lr, m.l1, m.train_size if ungrokking else None, m.norm_target, m.grokfast)


@dataclass(frozen=True)
class Snapshot:
    """All a view needs to draw one frame."""

    experiment: str
    device: str
    total_steps: int
    metrics: Metrics
    paused: bool
    finished: bool
    events: tuple[Event, ...]
    tensor_norms: dict[str, float] = field(default_factory=dict)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    spectrum: Spectrum | None = None
    parity: ParityMass | None = None
    fault: str | None = None
    settings: Settings | None = None  # None: read from the metrics (a run followed from its files)
    checkpoint_step: int | None = None  # the step of the newest checkpoint this trainer wrote
    checkpoints: int = 0  # how many it wrote: a new one shows even at the same step
    system: SystemStats | None = None  # what the run's process takes from its machine, where known
    # A script's run (grok_tui.monitor): its optimizer's class, and each param group's (weight decay, lr)
    # as it holds them now, where the groups differ (empty where they agree, and for a preset's run).
    optimizer: str | None = None
    groups: tuple[tuple[float, float], ...] = ()
    # Why the frequencies pane has no spectrum to show, where the run knows (a script's run without period=).
    spectrum_note: str | None = None
    # The p × H matrix whose rows the embedding pane lays out (GrokModel.neuron_inputs, float32), where the
    # model has one; a frame pickled by an older grok-tui has none and reads the class default.
    neuron_inputs: np.ndarray | None = None

    @property
    def step(self) -> int:
        return self.metrics.step

    @property
    def now(self) -> Settings:
        """The settings in force: the trainer's own, or what the last metrics row and the events say."""
        if self.settings is not None:
            return self.settings
        changes = [e for e in self.events if e.kind == "train_size"]
        return Settings.from_metrics(self.metrics, ungrokking=bool(changes) and changes[-1].new is not None)

    @property
    def ungrokking(self) -> bool:
        """Training on a subset of the training set."""
        return self.now.train_size is not None
