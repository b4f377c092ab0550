"""What a `grok-tui sweep` command decides before anything is written: the sweep's experiment and value
lists (a map's, with the flags given beside it), its phase rule, its workers, its grid, whether it fits,
where it goes; and what a `--resume` may not change.

The CLI only parses: it hands the flags over as typed (run values already read as their fields' types),
asks `plan_sweep` for a `Plan`, makes its own last check (a Ray cluster's, the slow one), and has the plan
create the directory. Every refusal is one PlanError line that names the flag.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grok_tui.config import DEFAULT_EXPERIMENT, Range, clip, flag_name
from grok_tui.forecast import FitError, load_fit
from grok_tui.runlog import default_run_dir
from grok_tui.sweep.grid import WORKERS, Grid, GridError, build_grid
from grok_tui.sweep.maps import MAPS
from grok_tui.sweep.phases import SETTINGS, PhaseRule, rule_from_flags
from grok_tui.sweep.prune import ALLOWED, prune_problem
from grok_tui.sweep.store import SweepDirError, SweepInfo, create_sweep
from grok_tui.train.memory import WontFit, check_sweep_fits
from grok_tui.train.trainer import DeviceError, resolve_device

# What one shard takes of a Ray cluster (`--shard-cpus`, `--shard-gpus`); Ray takes fractions of both.
SHARD_CPUS = Range(0, 1024, above=True, words="a number of CPUs above 0 and at most 1024, e.g. 1 or 0.5")
SHARD_GPUS = Range(0, 1024, words="a number of GPUs from 0 to 1024, e.g. 0, 1 or 0.5")
SWEEPS = Path("sweeps")  # where a sweep goes unless --sweep-dir says


class PlanError(ValueError):
    """One line for the user: the flag, what was given, what would be right."""


def number(flag: str, text: str | None, rule: Range, default: float) -> float:
    """A flag's number, by its rule (`default` when the flag was left out)."""
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not rule(value):
        raise PlanError(f"{flag}: {clip(repr(text))} is not allowed; expected {rule.allowed}")
    return value


def workers(text: str | None) -> int:
    """--workers: by default as many as this process may use CPU cores."""
    if text is None:
        return max(1, len(os.sched_getaffinity(0)))
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not WORKERS(value):
        raise PlanError(f"--workers: {clip(repr(text))} is not allowed; expected {WORKERS.allowed}")
    return value


def check_resume(
    fields: Iterable[str],
    *,
    experiment: str | None = None,
    map_name: str | None = None,
    rule_flags: Mapping[str, str] | None = None,
    workers_text: str | None = None,
    sweep_dir: str | None = None,
    prune_text: str | None = None,
) -> None:
    """A resumed sweep is the sweep as it was created: PlanError naming the first of what `plan_sweep`
    takes (its values, by field; experiment or map, rule, workers, directory, pruning) that was given all
    the same."""
    given = [flag_name(field) for field in fields]
    given += [SETTINGS[name].flag for name in rule_flags or {}]
    sweep = {
        "--experiment": experiment,
        "--map": map_name,
        "--workers": workers_text,
        "--sweep-dir": sweep_dir,
        "--prune": prune_text,
    }
    given += [flag for flag, text in sweep.items() if text is not None]
    if given:
        raise PlanError(f"--resume keeps the sweep as it was created; leave out {given[0]}")


def with_map(
    map_name: str | None, experiment: str | None, values: Mapping[str, list[Any]]
) -> tuple[str, dict[str, list[Any]]]:
    """The experiment and value lists a sweep trains: a map's, where one is named, each list of it replaced
    by the flag given beside it (a new axis goes after the map's); the default experiment otherwise."""
    if map_name is None:
        return DEFAULT_EXPERIMENT if experiment is None else experiment, dict(values)
    if map_name not in MAPS:
        raise PlanError(f"--map: {clip(repr(map_name))} is not a map; expected one of {', '.join(MAPS)}")
    sweep_map = MAPS[map_name]
    return sweep_map.experiment if experiment is None else experiment, {**sweep_map.values, **values}


@dataclass(frozen=True)
class Plan:
    """A sweep checked in full and not yet written."""

    root: Path
    experiment: str
    values: dict[str, list[Any]]
    rule: PhaseRule
    workers: int
    grid: Grid
    prune: float | None = None

    def create(self) -> SweepInfo:
        """Write the sweep directory (PlanError if `root` is taken)."""
        try:
            return create_sweep(self.root, self.experiment, self.values, self.rule, self.workers, self.prune)
        except (GridError, SweepDirError) as e:
            raise PlanError(str(e)) from None


def plan_sweep(
    values: Mapping[str, list[Any]],
    *,
    experiment: str | None = None,
    map_name: str | None = None,
    rule_flags: Mapping[str, str] | None = None,
    workers_text: str | None = None,
    sweep_dir: str | None = None,
    prune_text: str | None = None,
) -> Plan:
    """The sweep the flags ask for, every check made that can be made before anything is written.

    `values` are the run flags' value lists, each read as its field's type, in the order typed (the first
    axis runs across the diagram); `rule_flags` the phase rule's settings as typed, by setting name;
    `prune_text` --prune as typed.
    """
    experiment, values = with_map(map_name, experiment, values)
    try:
        rule = rule_from_flags(rule_flags or {})
    except ValueError as e:
        raise PlanError(str(e)) from None
    n_workers = workers(workers_text)
    try:
        grid = build_grid(experiment, values)
    except GridError as e:
        raise PlanError(str(e)) from None
    prune = None if prune_text is None else threshold(prune_text, grid.base.experiment)
    check_memory(grid, n_workers)
    root = Path(sweep_dir) if sweep_dir else default_run_dir(map_name or experiment, SWEEPS)
    return Plan(root, experiment, values, rule, n_workers, grid, prune)


def threshold(text: str, experiment: str) -> float:
    """--prune: a probability, for an experiment the forecaster has a fit for (else no forecast to prune by)."""
    try:
        value: float | None = float(text)
    except ValueError:
        value = None
    if value is None or prune_problem(value) is not None:
        raise PlanError(f"--prune: {clip(repr(text))} is not allowed; expected {ALLOWED}")
    try:
        load_fit().of(experiment)
    except FitError as e:
        raise PlanError(f"--prune: {e}") from None
    return value


def check_memory(grid: Grid, n_workers: int) -> None:
    """PlanError if the members training at once will not fit on the sweep's device (memory.check_sweep_fits)."""
    try:
        device = resolve_device(grid.base.device)
    except DeviceError as e:
        raise PlanError(f"--device: {e}") from None
    try:
        check_sweep_fits([[m.cfg for m in shard] for shard in grid.shards(n_workers)], n_workers, device)
    except WontFit as e:
        raise PlanError(str(e)) from None


__all__ = [
    "SHARD_CPUS",
    "SHARD_GPUS",
    "Plan",
    "PlanError",
    "check_memory",
    "check_resume",
    "number",
    "plan_sweep",
    "threshold",
    "with_map",
    "workers",
]
