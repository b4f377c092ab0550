"""When a forecast is made, and what it forecasts: defined here once, used by the fit, the score and the CLI.

The forecast point is the first evaluation at which train accuracy is at least FIT_ACC and the step is at
least twice the step at which it first got there, counting only runs whose test accuracy is still below
OPEN_ACC there: a run that generalizes with the fit needs no forecast. The label is whether test accuracy
reached LABEL_ACC within the run's step budget (`steps` in its config).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

FIT_ACC = 0.99  # train accuracy that counts as fitted
OPEN_ACC = 0.5  # test accuracy below which the question is still open at the forecast point
LABEL_ACC = 0.9  # test accuracy that counts as generalized
WAIT = 2.0  # the forecast point comes at this multiple of the fit's step, or later

Row = Mapping[str, Any]


def value(row: Row, key: str) -> float:
    """A row's number, NaN where it is missing or null (a diverged loss is written as null)."""
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def first_step(rows: Sequence[Row], key: str, level: float) -> int | None:
    """The step of the first row whose `key` is at least `level`."""
    return next((int(r["step"]) for r in rows if value(r, key) >= level), None)


def fit_step(rows: Sequence[Row]) -> int | None:
    """The step at which train accuracy first reached FIT_ACC."""
    return first_step(rows, "train_acc", FIT_ACC)


def forecast_index(rows: Sequence[Row]) -> int | None:
    """The index in `rows` of the forecast point, or None: never fitted, not yet twice the fit's step,
    or already generalizing there (test accuracy at least OPEN_ACC)."""
    fitted = fit_step(rows)
    if fitted is None:
        return None
    for i, row in enumerate(rows):
        if int(row["step"]) >= WAIT * fitted and value(row, "train_acc") >= FIT_ACC:
            return i if value(row, "test_acc") < OPEN_ACC else None
    return None


def label(rows: Sequence[Row], budget: int) -> tuple[bool, int | None]:
    """Whether test accuracy reached LABEL_ACC within `budget` steps, and the step it did."""
    step = first_step([r for r in rows if int(r["step"]) <= budget], "test_acc", LABEL_ACC)
    return step is not None, step
