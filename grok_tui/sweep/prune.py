"""`grok-tui sweep --prune P`: end a member once its forecast says it will not generalize.

A member is pruned at an evaluation at or after its forecast point (forecast/point.py, the one definition)
where the probability that it generalizes within its budget (forecast.forecast) is below P; before the point
it never is. A pruned member keeps its rows up to that evaluation and its checkpoint there, is recorded in
members.jsonl with the forecast that ended it, and is counted as pruned, never as a phase.

The decision is made in the shard, where the member trains (sweep/shard.py): the shard has every row it
emits, the full rows (the norm among them, which the monitor does not keep), and can drop the member from
its batch at once, so its compute is saved from the next step. Made in the driver, it would need a way back
to the shard that neither transport has (a Ray task reads only a stop flag), and the member would train on
until the message came. Both engines run the same shard, so both honour it; the fit is loaded once a shard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from grok_tui.config import RunConfig, is_finite, is_int
from grok_tui.forecast import Fit, forecast, forecast_index, load_fit

# The range --prune takes: a probability strictly between 0 and 1 (0 would prune nothing, 1 everything).
ALLOWED = "a probability between 0 and 1, exclusive (e.g. 0.1)"


def prune_problem(value: Any) -> str | None:
    """Why `value` is not a --prune threshold (None: it is one)."""
    if is_finite(value) and 0 < value < 1:
        return None
    return f"expected {ALLOWED}"


# What a checkpoint's pruning reads back as: the members pruned (their forecasts), the others' rows.
Taken = tuple[dict[int, dict[str, Any]], dict[int, list[dict[str, Any]]]]


class Pruner:
    """Each member's rows so far and the members pruned, by sweep member index; `see` decides."""

    def __init__(self, threshold: float, cfgs: Mapping[int, RunConfig], fit: Fit | None = None):
        self.threshold = threshold
        self.fit = load_fit() if fit is None else fit
        self.settings = {member: cfg.to_dict() for member, cfg in cfgs.items()}
        self.budget = {member: cfg.steps for member, cfg in cfgs.items()}
        self.rows: dict[int, list[dict[str, Any]]] = {member: [] for member in cfgs}
        self.pruned: dict[int, dict[str, Any]] = {}  # member -> the forecast that ended it (Forecast.to_json)

    def see(self, member: int, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """Take the member's newest row (an evaluation on the sweep's cadence); the forecast that prunes
        it there, or None. At the budget's end there is nothing left to save: never pruned there."""
        rows = self.rows[member]
        rows.append(dict(row))
        if int(row["step"]) >= self.budget[member] or forecast_index(rows) is None:
            return None
        outlook = forecast(rows, self.settings[member], self.fit)
        if outlook.p_generalize >= self.threshold:
            return None
        self.pruned[member] = outlook.to_json()
        return self.pruned[member]

    def state(self) -> dict[str, Any]:
        """For the shard's checkpoint: who was pruned, with what, and the rows the forecasts go on reading."""
        return {
            "pruned": {str(m): dict(f) for m, f in self.pruned.items()},
            "rows": {str(m): rows for m, rows in self.rows.items() if m not in self.pruned},
        }

    def read_state(self, state: Any, step: int) -> Taken:
        """`state()` read back from a checkpoint of `step`, changing nothing (ValueError if it is not one of
        these members'): the members pruned, and the others' rows before `step` (the driver cuts the
        members' logs at `step`, and the shard measures it again)."""
        if not isinstance(state, dict):
            raise ValueError("its pruning is not a record of members")
        pruned, rows = state.get("pruned"), state.get("rows")
        if not isinstance(pruned, dict) or not isinstance(rows, dict):
            raise ValueError("its pruning holds no members pruned and rows")
        taken_pruned = {_member(k, self.rows): _forecast(f, self.budget) for k, f in pruned.items()}
        taken_rows = {_member(k, self.rows): _rows(r, step) for k, r in rows.items()}
        if set(taken_rows) | set(taken_pruned) != set(self.rows) or set(taken_rows) & set(taken_pruned):
            raise ValueError("its pruning does not account for each of this shard's members once")
        return taken_pruned, taken_rows

    def restore(self, taken: Taken) -> None:
        """Take what `read_state` read."""
        self.pruned, rows = taken
        self.rows = {m: rows.get(m, []) for m in self.rows}


def _member(key: Any, members: Mapping[int, Any]) -> int:
    if not (isinstance(key, str) and key.isdigit() and int(key) in members):
        raise ValueError(f"its pruning names {key!r}, not one of this shard's members")
    return int(key)


def _forecast(record: Any, budget: Mapping[int, int]) -> dict[str, Any]:
    problem = forecast_problem(record, max(budget.values()))
    if problem is not None:
        raise ValueError(f"its pruning holds a forecast that {problem}")
    return dict(record)


def _rows(rows: Any, step: int) -> list[dict[str, Any]]:
    if not (isinstance(rows, list) and all(isinstance(r, dict) and is_int(r.get("step")) for r in rows)):
        raise ValueError("its pruning holds rows that are not metrics rows")
    return [r for r in rows if r["step"] < step]


def forecast_problem(record: Any, steps: int) -> str | None:
    """What keeps `record` from being a pruning forecast of a sweep of `steps` steps (None: nothing)."""
    if not isinstance(record, dict) or set(record) != {"step", "p_generalize", "expected_step"}:
        return "is not an object of step, p_generalize and expected_step"
    step, p, expected = record["step"], record["p_generalize"], record["expected_step"]
    if not (is_int(step) and 0 <= step <= steps):
        return f"has step {step!r}, not a step from 0 to {steps}"
    if not (is_finite(p) and 0 <= p <= 1):
        return f"has p_generalize {p!r}, not a probability"
    if expected is not None and not (is_int(expected) and expected >= 0):
        return f"has expected_step {expected!r}, not a step or null"
    return None


def saved_steps(records: Sequence[Mapping[str, Any]], steps: int) -> int:
    """The member-steps the pruned members of `records` (members.jsonl's) did not train."""
    return sum(steps - int(r["pruned"]["step"]) for r in records if r.get("pruned"))


__all__ = ["ALLOWED", "Pruner", "forecast_problem", "prune_problem", "saved_steps"]
