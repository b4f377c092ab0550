"""The phase of a finished (or finishing) run, read from its curves: which kind of learning it did.

Liu et al. ("Towards understanding grokking: an effective theory of
representation learning", 2022) draw their phase diagrams from two times: the
step at which train accuracy first reaches 90%, and the step at which test
accuracy does, both within the step budget:

- comprehension: both get there, test within `gap` steps of train (no delay);
- grokking: both get there, test more than `gap` steps after train;
- memorization: train gets there, test never does;
- confusion: train never gets there.

Semi-grokking (Varma et al., "Explaining grokking through circuit efficiency",
2023): a memorizing run whose test accuracy has, since train fit, climbed at
least `semi_rise` and settled part-way, below the level. It is told apart from
memorization only at the end of the budget, by where test accuracy settled
(the mean of the last tenth of its points).

The loss rule reads the same four phases off the losses instead of the
accuracies (for tasks where accuracy saturates early or says little): train
"gets there" when its loss falls to `loss_fit` of its first value, test when,
with train there, its loss is within `loss_ratio` times the train loss (a
memorizing net has a test loss many times its train loss; a generalizing one
has them close). The PAIR article draws its maps from the losses; it states
no exact rule, so this is ours.

Pure functions over metrics rows (dicts with step, train_acc, test_acc,
train_loss, test_loss): the sweep engine, the sweep monitor and the tests
share them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from grok_tui.config import clip, is_finite, is_int

PHASES = ("comprehension", "grokking", "semi-grokking", "memorization", "confusion")
RULES = ("accuracy", "loss")
# The accuracies whose first steps members.jsonl records.
LEVELS = (0.9, 0.95, 0.99)


@dataclass(frozen=True)
class PhaseRule:
    rule: str = "accuracy"
    level: float = 0.9  # accuracy that counts as "got there" (Liu et al.'s 90%)
    gap: int | None = None  # steps from train to test that still count as no delay; None: a tenth of the budget
    semi_rise: float = 0.1  # test accuracy gained since train fit that makes a stalled run semi-grokked
    loss_fit: float = 0.1  # loss rule: train got there at this fraction of its first loss
    loss_ratio: float = 2.0  # loss rule: test got there within this multiple of the train loss

    def gap_for(self, steps: int) -> int:
        return self.gap if self.gap is not None else max(1, steps // 10)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseRule:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return check(cls(**known))


@dataclass(frozen=True)
class Setting:
    """One setting of the rule: its flag, the type its text is read as, what it allows, and its help."""

    flag: str
    kind: type
    ok: Callable[[Any], bool]
    allowed: str
    help: str


def _fraction(v: Any) -> bool:
    return is_finite(v) and 0 < v < 1


# Each setting's one rule: `check` holds a rule to it wherever it came from (flags, sweep.json), and the
# sweep command's flags are made from it.
SETTINGS: dict[str, Setting] = {
    "rule": Setting(
        "--phase-rule",
        str,
        lambda v: v in RULES,
        " or ".join(RULES),
        "accuracy (Liu et al.'s 90% times, the default) or loss (train and test loss)",
    ),
    "level": Setting(
        "--phase-level",
        float,
        lambda v: is_finite(v) and 0 < v <= 1,
        "a number in (0, 1]",
        "the accuracy that counts as learned (default 0.9)",
    ),
    "gap": Setting(
        "--phase-gap",
        int,
        lambda v: v is None or (is_int(v) and v >= 0),
        "an integer number of steps >= 0",
        "steps from train to test still called no delay (default: a tenth of --steps)",
    ),
    "semi_rise": Setting(
        "--semi-rise",
        float,
        _fraction,
        "a number in (0, 1)",
        "test accuracy gained after the fit that calls a stall semi-grokking (0.1)",
    ),
    "loss_fit": Setting(
        "--loss-fit",
        float,
        _fraction,
        "a number in (0, 1)",
        "loss rule: train is learned at this fraction of its first loss (0.1)",
    ),
    "loss_ratio": Setting(
        "--loss-ratio",
        float,
        lambda v: is_finite(v) and v >= 1,
        "a number >= 1",
        "loss rule: test is learned within this multiple of train loss (2)",
    ),
}


def check(rule: PhaseRule) -> PhaseRule:
    """The rule unchanged, or ValueError naming the first setting that is wrong and what is allowed."""
    for name, setting in SETTINGS.items():
        value = getattr(rule, name)
        if not setting.ok(value):
            raise ValueError(f"{setting.flag}: {clip(repr(value))} is not allowed; expected {setting.allowed}")
    return rule


def rule_from_flags(texts: Mapping[str, str]) -> PhaseRule:
    """The rule from its settings' flags as typed (by setting name; those left out keep their defaults), or
    ValueError naming the flag, what was typed and what is allowed."""
    values: dict[str, Any] = {}
    for name, text in texts.items():
        setting = SETTINGS[name]
        try:
            values[name] = setting.kind(text)
        except ValueError:
            raise ValueError(f"{setting.flag}: {clip(repr(text))} is not allowed; expected {setting.allowed}") from None
    return check(PhaseRule(**values))


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if is_finite(value) else None


def first_step(rows: Sequence[Mapping[str, Any]], key: str, level: float) -> int | None:
    """The first step at which rows[key] >= level."""
    for row in rows:
        value = _num(row, key)
        if value is not None and value >= level:
            return int(row["step"])
    return None


def milestones(rows: Sequence[Mapping[str, Any]]) -> dict[str, int | None]:
    """The first steps train and test accuracy reached 90%, 95% and 99%: train_90, test_99, ..."""
    return {
        f"{split}_{round(level * 100)}": first_step(rows, f"{split}_acc", level)
        for split in ("train", "test")
        for level in LEVELS
    }


def _times(rows: Sequence[Mapping[str, Any]], rule: PhaseRule) -> tuple[int | None, int | None]:
    """When train and when test got there, by the rule."""
    if rule.rule == "accuracy":
        return first_step(rows, "train_acc", rule.level), first_step(rows, "test_acc", rule.level)
    start = next((v for v in (_num(r, "train_loss") for r in rows) if v is not None), None)
    if start is None:
        return None, None
    train_at = test_at = None
    for row in rows:
        train, test = _num(row, "train_loss"), _num(row, "test_loss")
        if train is None:
            continue
        if train_at is None and train <= rule.loss_fit * start:
            train_at = int(row["step"])
        if train_at is not None and test is not None and test <= rule.loss_ratio * max(train, 1e-12):
            test_at = int(row["step"])
            break
    return train_at, test_at


def settled(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """The mean of a series over its last tenth of points (at least one): where it settled."""
    values = [v for v in (_num(r, key) for r in rows) if v is not None]
    if not values:
        return None
    tail = values[-max(1, len(values) // 10) :]
    return sum(tail) / len(tail)


def classify(rows: Sequence[Mapping[str, Any]], steps: int, rule: PhaseRule, finished: bool) -> str | None:
    """The member's phase, or None while it cannot be told yet (a running member not yet generalized).

    `steps` is the step budget; `finished` says the member has trained all of it (or stopped for good).
    """
    train_at, test_at = _times(rows, rule)
    if test_at is not None:
        if train_at is None:  # test got there first: no delay at all
            return "comprehension"
        return "comprehension" if test_at - train_at <= rule.gap_for(steps) else "grokking"
    if not finished:
        return None
    if train_at is None:
        return "confusion"
    at_fit = next((_num(r, "test_acc") for r in rows if int(r["step"]) >= train_at), None)
    end = settled(rows, "test_acc")
    if at_fit is not None and end is not None and end - at_fit >= rule.semi_rise:
        return "semi-grokking"
    return "memorization"


__all__ = [
    "LEVELS",
    "PHASES",
    "RULES",
    "SETTINGS",
    "PhaseRule",
    "Setting",
    "check",
    "classify",
    "first_step",
    "milestones",
    "rule_from_flags",
    "settled",
]
