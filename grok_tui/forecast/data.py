"""Runs as the forecaster's examples: a run directory's config and rows (read with the project's readers,
which skip a bad record with a line), and each member of a sweep at its forecast point, with its label."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grok_tui.forecast.features import features
from grok_tui.forecast.point import OPEN_ACC, forecast_index, label, value
from grok_tui.runlog import CONFIG, METRICS, RunDirError, load_run_config, read_config, read_jsonl
from grok_tui.sweep.store import MEMBER_DIRS, is_sweep, member_rows

# Config fields that do not change a run's course: two runs that differ only here share their trajectory,
# so a member held out of the fit must differ from every fitted one elsewhere.
NOT_THE_COURSE = ("steps", "device", "threads", "checkpoint_every_s")

Report = Callable[[Path, str], None]
LATER = 1.5  # the spacing, as a factor of the step, of the later points a fit learns from


def _ignore(path: Path, line: str) -> None:
    pass


def read_run(run_dir: Path, report: Report = _ignore) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's config (as written) and its rows, oldest first. RunDirError if it is not a run."""
    load_run_config(run_dir)  # a run of a preset or of a script, every field checked
    config = read_config(run_dir)
    path = Path(run_dir) / METRICS
    rows = member_rows(read_jsonl(path), path, report)
    rows.sort(key=lambda r: int(r["step"]))
    return config, rows


def trajectory_key(config: Mapping[str, Any]) -> str:
    """What identifies a run's course: its config without the fields that do not change it."""
    kept = {k: v for k, v in config.items() if k not in NOT_THE_COURSE}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Example:
    """One run at its forecast point: what the forecaster sees there, and what happened."""

    path: Path
    experiment: str
    seed: int
    key: str
    settings_key: str  # the config without its seed: members that differ only by seed share it
    step: int  # the forecast point
    budget: int
    x: dict[str, float]
    generalized: bool
    step_90: int | None
    # The same run later, while still open (test accuracy below OPEN_ACC): (step, features) at each
    # evaluation past LATER times the last. The fit learns from these too, so that a forecast holds as
    # evidence comes in; the score reads the forecast point alone.
    later: tuple[tuple[int, dict[str, float]], ...] = ()


@dataclass
class Skipped:
    """Members that give no example, by reason."""

    unfinished: int = 0
    no_forecast: int = 0  # never fitted, or already generalizing at the forecast point

    def __str__(self) -> str:
        return f"{self.no_forecast} with no forecast point, {self.unfinished} unfinished"


def sweep_members(root: Path) -> Iterator[Path]:
    """A sweep's member run directories, in name order."""
    yield from sorted(p.parent for p in (Path(root) / MEMBER_DIRS).glob(f"*/{CONFIG}"))


def example(run_dir: Path, skipped: Skipped, report: Report = _ignore) -> Example | None:
    """The run at its forecast point, or None (counted in `skipped`): no forecast point, or unfinished
    and not yet generalized (its label unknown)."""
    config, rows = read_run(run_dir, report)
    budget = int(config.get("steps", 0))
    generalized, step_90 = label(rows, budget)
    if not generalized and (not rows or int(rows[-1]["step"]) < budget):
        skipped.unfinished += 1
        return None
    i = forecast_index(rows)
    if i is None:
        skipped.no_forecast += 1
        return None
    later: list[tuple[int, dict[str, float]]] = []
    last = int(rows[i]["step"])
    for j in range(i + 1, len(rows)):
        step = int(rows[j]["step"])
        if step > budget or value(rows[j], "test_acc") >= OPEN_ACC or (step_90 is not None and step >= step_90):
            break
        if step >= LATER * last:
            later.append((step, features(rows[: j + 1], config)))
            last = step
    seed = config.get("seed", 0)
    return Example(
        path=Path(run_dir),
        experiment=str(config.get("experiment")),
        seed=int(seed) if isinstance(seed, int) else 0,
        key=trajectory_key(config),
        settings_key=trajectory_key({k: v for k, v in config.items() if k != "seed"}),
        step=int(rows[i]["step"]),
        budget=budget,
        x=features(rows[: i + 1], config),
        generalized=generalized,
        step_90=step_90,
        later=tuple(later),
    )


def sweep_examples(roots: list[Path], report: Report = _ignore) -> tuple[list[Example], dict[str, Skipped]]:
    """Every member of these sweeps at its forecast point; and, by experiment, those skipped."""
    out: list[Example] = []
    skipped: dict[str, Skipped] = {}
    for root in roots:
        for run_dir in sweep_members(root):
            try:
                experiment = str(read_config(run_dir).get("experiment"))
                found = example(run_dir, skipped.setdefault(experiment, Skipped()), report)
            except RunDirError as e:  # a damaged member: said, and left out
                report(run_dir, f"{e}; member skipped")
                continue
            if found is not None:
                out.append(found)
    return out, skipped


def check_sweep(root: Path) -> str | None:
    """Why `root` cannot be read as a sweep, or None."""
    if not Path(root).is_dir():
        return f"{root} is not a directory"
    if not is_sweep(root):
        return f"{root} is not a sweep (no sweep.json); expected a directory written by grok-tui sweep"
    return None
