"""A sweep along one axis (its seeds aside) as numbers: each value's latest losses and accuracies.

Omnigrok's LU figure is this with the weight norm held fixed (`--constrain-norm` as the axis): the train
loss against the norm is L-shaped, the test loss U-shaped. The headless engine prints it as a table at
the end; the sweep monitor draws it as it fills in (ui/panes/axis_plot.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grok_tui.sweep.grid import Axis, value_text
from grok_tui.sweep.text import map_axes

# What each member contributes, from its latest metrics row.
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


def line_axis(axes: Sequence[Axis]) -> Axis | None:
    """The sweep's one setting axis, if it has exactly one besides its seeds (else None: a phase map)."""
    x, y, _ = map_axes(axes)
    return x if x is not None and y is None else None


@dataclass(frozen=True)
class AxisPoint:
    """One value of the axis: each of its members' latest figures (members without one yet are left out,
    and members --prune ended, whose latest figures are from part-way: they are counted apart)."""

    index: int  # the value's place on the axis
    value: Any
    members: tuple[Mapping[str, float], ...]
    pruned: int = 0

    def mean(self, key: str) -> float | None:
        """The mean over its members (its seeds) of one figure; None while none has a finite one."""
        values = [m[key] for m in self.members if key in m]
        return sum(values) / len(values) if values else None


def axis_points(axis: Axis, members: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[AxisPoint]:
    """Each value of `axis`, in axis order, with the figures of its members: `members` gives each
    member's axis values and its latest metrics (a row, or a members.jsonl record), whose `pruned` is
    the forecast that ended it where --prune did."""
    found: dict[Any, list[Mapping[str, float]]] = {value: [] for value in axis.values}
    pruned = dict.fromkeys(axis.values, 0)
    for values, latest in members:
        value = values.get(axis.field)
        if value not in found:
            continue
        if latest.get("pruned"):
            pruned[value] += 1
            continue
        figures = {k: float(latest[k]) for k in METRICS if _finite(latest.get(k))}
        if figures:
            found[value].append(figures)
    return [AxisPoint(i, value, tuple(found[value]), pruned[value]) for i, value in enumerate(axis.values)]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def axis_table(axis: Axis, points: Sequence[AxisPoint]) -> str:
    """The points as a table, one row per value: the mean over its seeds of each figure."""
    width = max(len(axis.short), *(len(value_text(p.value)) for p in points))
    lines = [
        f"latest losses and accuracies against {axis.short} (mean over seeds)",
        f"{axis.short:>{width}}  {'train loss':>10}  {'test loss':>10}  {'train acc':>9}  {'test acc':>8}  members",
    ]
    for point in points:
        cells = []
        for key, cell in zip(METRICS, (10, 10, 9, 8), strict=True):
            mean = point.mean(key)
            text = "–" if mean is None else (f"{mean:.3g}" if key.endswith("loss") else f"{mean:.1%}")
            cells.append(f"{text:>{cell}}")
        pruned = f" (+{point.pruned} pruned)" if point.pruned else ""
        lines.append(f"{value_text(point.value):>{width}}  {'  '.join(cells)}  {len(point.members)}{pruned}")
    return "\n".join(lines)


__all__ = ["METRICS", "AxisPoint", "axis_points", "axis_table", "line_axis"]
