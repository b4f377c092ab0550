"""What the trainer hands to the world: immutable records, no live tensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grok_tui.metrics import ParityMass, Spectrum


@dataclass(frozen=True)
class Event:
    """One change to a run, at the step from which it acts."""

    step: int
    kind: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "old": self.old, "new": self.new}


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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Metrics":
        """From a metrics.jsonl record; a missing or null number reads as NaN."""
        def num(key: str) -> float:
            value = row.get(key)
            return float(value) if isinstance(value, (int, float)) else float("nan")

        return cls(
            step=int(row["step"]), **{k: num(k) for k in (
                "train_loss", "train_acc", "test_loss", "test_acc", "param_norm", "weight_decay", "lr", "l1",
                "elapsed_s", "steps_per_s")},
            purity=row.get("purity"), parity_share=row.get("parity_share"),
            train_size=row.get("train_size"), norm_target=row.get("norm_target"), grokfast=bool(row.get("grokfast")),
        )


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

    @property
    def step(self) -> int:
        return self.metrics.step

    @property
    def ungrokking(self) -> bool:
        """Training on a subset of the training set (the last train_size change set one)."""
        changes = [e for e in self.events if e.kind == "train_size"]
        return bool(changes) and changes[-1].new is not None
