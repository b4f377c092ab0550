"""A sweep as plain text: the progress line the headless engine prints, and the phase diagram at the end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from grok_tui.sweep.grid import Axis, value_text
from grok_tui.sweep.phases import PHASES
from grok_tui.sweep.prune import saved_steps

# One letter a phase, for the text diagram (the monitor colours its cells instead).
LETTERS = {
    "comprehension": "C",
    "grokking": "G",
    "semi-grokking": "S",
    "memorization": "M",
    "confusion": "X",
    "failed": "!",  # its shard was lost (a worker that died for good): members.jsonl says why
    "pruned": "p",  # ended by --prune, its forecast below the threshold (sweep/prune.py): no phase
    None: ".",
}


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def progress_line(records: Sequence[Mapping[str, Any]], elapsed_s: float, steps: int | None = None) -> str:
    """`[ 40%] 12/32 members done  phases: grokking 5, memorization 3  eta 1m20s`."""
    budget = steps if steps is not None else max((int(r.get("budget", 0)) for r in records), default=0)
    # A pruned member is done: the steps it will not train count as done.
    done_steps = sum(budget if r.get("pruned") else int(r.get("step") or 0) for r in records)
    total = budget * len(records) if budget else 0
    share = done_steps / total if total else (1.0 if all(r.get("finished") for r in records) else 0.0)
    counts = Counter(r.get("phase") for r in records if r.get("phase"))
    phases = ", ".join(f"{p} {counts[p]}" for p in PHASES if counts[p]) or "none decided yet"
    pruned = sum(1 for r in records if r.get("pruned"))
    phases += f"; pruned {pruned}" if pruned else ""
    finished = sum(1 for r in records if r.get("finished"))
    eta = f"  eta {duration(elapsed_s * (1 - share) / share)}" if 0 < share < 1 else ""
    return f"[{share:4.0%}] {finished}/{len(records)} members done  phases: {phases}  {duration(elapsed_s)}{eta}"


def map_axes(axes: Sequence[Axis]) -> tuple[Axis | None, Axis | None, tuple[Axis, ...]]:
    """The diagram's axes: the first two settings across and down; the rest, seeds always among them
    (a seed is a repeat of a setting, not a setting), split each cell into one block per member."""
    settings = [a for a in axes if a.field != "seed"]
    x = settings[0] if settings else None
    y = settings[1] if len(settings) > 1 else None
    return x, y, tuple(a for a in axes if a is not x and a is not y)


def cell_of(axes: Sequence[Axis], values: Mapping[str, Any]) -> tuple[Any, Any]:
    """The (x, y) cell a member with these axis values falls in (None where the diagram has no such axis)."""
    x, y, _ = map_axes(axes)
    return (values.get(x.field) if x else None, values.get(y.field) if y else None)


def cells(axes: Sequence[Axis], records: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, Any], list[Mapping[str, Any]]]:
    """The members of each (x, y) cell of the diagram."""
    out: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for record in records:
        out.setdefault(cell_of(axes, record.get("values") or {}), []).append(record)
    return out


def diagram(info: Any, records: Sequence[Mapping[str, Any]]) -> str:
    """The phase diagram: one row per value of the second axis, one column per value of the first; each
    cell the phase letters of its members (the other axes, seeds included)."""
    axes: tuple[Axis, ...] = info.grid.axes
    grouped = cells(axes, records)
    x_axis, y_axis, rest_axes = map_axes(axes)
    xs = x_axis.values if x_axis else (None,)
    ys = y_axis.values if y_axis else (None,)
    body = {key: "".join(LETTERS.get(_state(r), "?") for r in members) for key, members in grouped.items()}
    width = max([len(v) for v in body.values()] + [len(value_text(x)) for x in xs if x is not None] + [1])
    label_w = max([len(value_text(y)) for y in ys if y is not None] + [len(y_axis.short) if y_axis else 0])
    lines = []
    if axes:
        rest = ", ".join(a.short for a in rest_axes)
        title = "phases: " + (f"{x_axis.short} across" if x_axis else "one cell")
        title += f", {y_axis.short} down" if y_axis else ""
        lines.append(title + (f"; each cell one letter per {rest} value" if rest else ""))
    header = " " * label_w + " | " + " ".join(f"{value_text(x) if x is not None else '':>{width}}" for x in xs)
    lines.append(header)
    lines.append("-" * len(header))
    for y in reversed(ys):  # larger values up, as a plot reads
        label = value_text(y) if y is not None else ""
        row = " ".join(f"{body.get((x, y), ''):>{width}}" for x in xs)
        lines.append(f"{label:>{label_w}} | {row}")
    legend = "  ".join(f"{LETTERS[phase]} {phase}" for phase in PHASES)
    shown = {_state(r) for r in records}
    lines.append(legend + "  . undecided" + "".join(f"  {LETTERS[s]} {s}" for s in ("pruned", "failed") if s in shown))
    return "\n".join(lines)


def _state(record: Mapping[str, Any]) -> str | None:
    """What a member's letter shows: failed or pruned before any phase (a pruned member has none)."""
    return "failed" if record.get("failed") else "pruned" if record.get("pruned") else record.get("phase")


def pruned_line(records: Sequence[Mapping[str, Any]], steps: int, threshold: float) -> str:
    """`pruned 12 of 40 members (p < 0.1 at or after their forecast point): 21,340 member-steps saved of
    120,000 (18%)`: the headless sweep's last line when it prunes."""
    pruned = [r for r in records if r.get("pruned")]
    saved = saved_steps(records, steps)
    total = steps * len(records)
    share = f" ({saved / total:.0%})" if total else ""
    return (
        f"pruned {len(pruned)} of {len(records)} members (p < {threshold:g} at or after their forecast point): "
        f"{saved:,} member-steps saved of {total:,}{share}"
    )


__all__ = ["LETTERS", "cell_of", "cells", "diagram", "duration", "map_axes", "progress_line", "pruned_line"]
