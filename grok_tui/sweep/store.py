"""The sweep directory, and reading it back live.

    SWEEP/sweep.json         the preset, the flags given (axes are the lists), the phase rule, the workers,
                             and --prune's threshold where it was given
    SWEEP/members/NAME/      one run directory per member (config.json, metrics.jsonl, events.jsonl,
                             checkpoint.pt of its weights): `grok-tui watch SWEEP/members/NAME` opens it
    SWEEP/members.jsonl      one line per finished member: its values, the steps at which train and test
                             accuracy reached 90/95/99%, its final accuracies and losses, its phase (or,
                             for a member --prune ended, none and the forecast it was pruned at)
    SWEEP/shards/            the batched trainers' checkpoints (`--resume SWEEP`)
    SWEEP/process.json       the process training it (runs.py)

The monitor and `watch SWEEP` read the sweep from these files alone
(`SweepFollower`): the directory is the one route a sweep's numbers take, whichever
engine trains it and wherever its shards run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grok_tui.config import RunConfig, clip, is_finite, is_int
from grok_tui.files import WriteError, write_atomic
from grok_tui.process import process_state
from grok_tui.runlog import METRICS, JsonlFollower, RunDirError, RunLog, read_jsonl
from grok_tui.runs import RunInfo
from grok_tui.sweep.grid import WORKERS, Axis, Grid, GridError, Member, build_grid
from grok_tui.sweep.phases import LEVELS, PHASES, PhaseRule, classify, milestones, settled
from grok_tui.sweep.prune import ALLOWED, forecast_problem, prune_problem
from grok_tui.sweep.text import LETTERS
from grok_tui.train.snapshot import Metrics, RecordError, checked

SWEEP = "sweep.json"
MEMBERS = "members.jsonl"
MEMBER_DIRS = "members"
SHARDS = "shards"
# What the monitor keeps of each row: enough to classify it and to shade its cell.
KEPT = ("step", "train_acc", "test_acc", "train_loss", "test_loss")


class SweepDirError(Exception):
    """A sweep directory that cannot be used, with the reason in one line."""


@dataclass(frozen=True)
class SweepInfo:
    root: Path
    grid: Grid
    rule: PhaseRule
    workers: int
    given: dict[str, list[Any]]  # the flags as given: every value list, axes and settings alike
    prune: float | None = None  # --prune: members whose forecast falls below it are ended (sweep/prune.py)

    @property
    def names(self) -> list[str]:
        return self.grid.names()

    def member_dir(self, member: Member) -> Path:
        return self.root / MEMBER_DIRS / member.name(self.grid.axes)


def is_sweep(path: Path) -> bool:
    return (Path(path) / SWEEP).is_file()


def create_sweep(
    root: Path,
    experiment: str,
    given: Mapping[str, Sequence[Any]],
    rule: PhaseRule,
    workers: int,
    prune: float | None = None,
) -> SweepInfo:
    """Make the sweep directory, one run directory per member; refuses one that holds a sweep or a run."""
    root = Path(root)
    if (root / SWEEP).exists():
        raise SweepDirError(f"{root} already holds a sweep; use grok-tui sweep --resume {root} or another --sweep-dir")
    if (root / "config.json").exists():
        raise SweepDirError(f"{root} holds a run, not a sweep; choose another --sweep-dir")
    grid = build_grid(experiment, given)
    info = SweepInfo(root, grid, rule, workers, {k: list(v) for k, v in given.items()}, prune)
    try:
        for member in grid.members:
            RunLog(info.member_dir(member)).create(member.cfg.to_dict())
        # sweep.json is what makes a directory a sweep: written last.
        record = {"experiment": experiment, "given": info.given, "rule": rule.to_dict(), "workers": workers}
        if prune is not None:
            record["prune"] = prune
        write_atomic(root / SWEEP, json.dumps({**record, "axes": [a.to_dict() for a in grid.axes]}, indent=2) + "\n")
    except (RunDirError, WriteError, OSError) as e:
        raise SweepDirError(f"cannot write the sweep to {root}: {e}") from None
    return info


def read_sweep(root: Path) -> SweepInfo:
    """The sweep in `root`, every value checked again; SweepDirError names the file and what is wrong."""
    root = Path(root)
    path = root / SWEEP
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepDirError(f"{root} holds no {SWEEP}; expected a directory written by grok-tui sweep") from None
    except (ValueError, RecursionError):
        raise SweepDirError(f"{path} is not valid JSON") from None
    except OSError as e:
        raise SweepDirError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        experiment = data["experiment"]
        if not isinstance(experiment, str):
            raise ValueError(f"'experiment' is {_shown(experiment)}, not a preset's name")
        given = data["given"]
        _check_given(given)
        workers = data["workers"]
        if not WORKERS(workers):
            raise ValueError(f"'workers' is {_shown(workers)}, not {WORKERS.allowed}")
        rule_data = data.get("rule", {})
        if not isinstance(rule_data, dict):
            raise ValueError(f"'rule' is {_shown(rule_data)}, not an object of the phase rule's settings")
        for key, value in rule_data.items():
            # phases.check takes an int as a float: one past float's range would overflow, not be refused.
            if is_int(value) and not is_finite(value):
                raise ValueError(f"'rule' has {_shown(key)}: {_shown(value)}, a number past any setting's range")
        rule = PhaseRule.from_dict(rule_data)
        prune = data.get("prune")
        if prune is not None and prune_problem(prune) is not None:
            raise ValueError(f"'prune' is {_shown(prune)}, not {ALLOWED}")
        grid = build_grid(experiment, given)
    except KeyError as e:
        raise SweepDirError(f"{path}: missing {e}") from None
    except (ValueError, TypeError, GridError) as e:
        raise SweepDirError(f"{path}: {e}") from None
    return SweepInfo(root, grid, rule, workers, given, prune)


def _shown(value: Any) -> str:
    return clip(repr(value))


# The fields a sweep's flags may set: a run's config, less the preset's name (sweep.json has its own).
GIVEN_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig)) - {"experiment"}


def _check_given(given: Any) -> None:
    """sweep.json's "given": config fields, each a list of plain values (ValueError names the first that is not)."""
    if not isinstance(given, dict):
        raise ValueError(f"'given' is {_shown(given)}, not an object of value lists")
    for name, values in given.items():
        if name not in GIVEN_FIELDS:
            raise ValueError(f"'given' holds {_shown(name)}, not a run's setting")
        if not (isinstance(values, list) and all(_is_plain(v) for v in values)):
            raise ValueError(f"'given' has {name}: {_shown(values)}, not a list of numbers, strings or true/false")


def _is_plain(v: Any) -> bool:
    return isinstance(v, (str, bool)) or is_finite(v)


def member_record(
    info: SweepInfo,
    member: Member,
    rows: Sequence[Mapping[str, Any]],
    finished: bool,
    failed: str | None = None,
    pruned: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Member's line in members.jsonl (also what the monitor shows of it); `failed`: why its shard was lost;
    `pruned`: the forecast its shard pruned it at (it has no phase)."""
    last = rows[-1] if rows else {}
    steps = info.grid.base.steps
    return {
        "index": member.index,
        "name": member.name(info.grid.axes),
        "values": member.values,
        "step": last.get("step", 0),
        **milestones(rows),
        "train_acc": last.get("train_acc"),
        "test_acc": last.get("test_acc"),
        "train_loss": last.get("train_loss"),
        "test_loss": last.get("test_loss"),
        "test_acc_settled": settled(rows, "test_acc"),
        "phase": None if pruned else classify(rows, steps, info.rule, finished),
        "finished": finished,
        "failed": failed,
        "pruned": None if pruned is None else dict(pruned),
    }


def write_members(root: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """members.jsonl, whole, in member order (rewritten as members finish: it is small). JSON: a number
    that is not finite (a diverged loss) is written as null, as metrics.jsonl writes it."""
    ordered = sorted(records, key=lambda r: int(r["index"]))
    lines = (json.dumps(_finite(r), separators=(",", ":"), allow_nan=False) + "\n" for r in ordered)
    write_atomic(Path(root) / MEMBERS, "".join(lines))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def check_member(record: Any, info: SweepInfo) -> dict[str, Any]:
    """A members.jsonl record, every field it has checked (a field it lacks reads as null, as in
    metrics.jsonl); RecordError names the first that is wrong."""
    if not isinstance(record, dict):
        raise RecordError("record", record, "a JSON object")
    names = info.names
    index = record.get("index")
    if not (is_int(index) and 0 <= index < len(names)):
        raise RecordError("index", index, f"a member's index, 0 to {len(names) - 1}")
    if record.get("name") != names[index]:
        raise RecordError("name", record.get("name"), f"{names[index]!r}, the name of member {index}")
    steps = info.grid.base.steps

    def check(key: str, ok: Callable[[Any], bool], allowed: str) -> None:
        value = record.get(key)
        if value is not None and not ok(value):
            raise RecordError(key, value, allowed + " or null")

    # NaN, as metrics.jsonl's reader takes it: what an older members.jsonl wrote for a diverged loss.
    def share(v: Any) -> bool:
        return _is_nan(v) or (is_finite(v) and 0 <= v <= 1)

    def number(v: Any) -> bool:
        return _is_nan(v) or is_finite(v)

    def step(v: Any) -> bool:
        return is_int(v) and 0 <= v <= steps

    check("values", lambda v: isinstance(v, dict), "an object of the member's axis values")
    check("step", step, f"a step from 0 to {steps}")
    for key in MILESTONES:
        check(key, step, f"a step from 0 to {steps}")
    for key in ("train_acc", "test_acc", "test_acc_settled"):
        check(key, share, "a number from 0 to 1")
    for key in ("train_loss", "test_loss"):
        check(key, number, "a finite number")
    check("phase", lambda v: v in PHASES, " or ".join(PHASES))
    check("finished", lambda v: isinstance(v, bool), "true or false")
    check("failed", _is_reason, "one line of text saying why its shard was lost")
    check("pruned", lambda v: forecast_problem(v, steps) is None, "the forecast it was pruned at")
    if record.get("pruned") is not None and record.get("phase") is not None:
        raise RecordError("phase", record["phase"], "null: a pruned member has no phase")
    return record


MILESTONES = tuple(f"{split}_{round(level * 100)}" for split in ("train", "test") for level in LEVELS)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _is_reason(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 1000 and len(v.splitlines()) == 1


def member_rows(records: Iterable[Any], path: Path, report: Callable[[Path, str], None]) -> list[dict[str, Any]]:
    """A member's metrics.jsonl records that are a run's rows (Metrics.from_dict), as they were written."""

    def parse(record: Any) -> dict[str, Any]:
        Metrics.from_dict(record)
        return dict(record)

    return checked(records, parse, path, report)


def read_members(info: SweepInfo, report: Callable[[Path, str], None] = lambda *_: None) -> list[dict[str, Any]]:
    """members.jsonl's records that check_member takes; each one it refuses is skipped and reported.
    OSError if the file cannot be read."""
    path = info.root / MEMBERS
    return checked(read_jsonl(path), lambda r: check_member(r, info), path, report)


class Notices:
    """Lines to say once: the first problem of each file, not one a poll."""

    def __init__(self) -> None:
        self._said: set[Path] = set()
        self._new: list[str] = []

    def report(self, path: Path, line: str) -> None:
        if path not in self._said:
            self._said.add(path)
            self._new.append(line)

    def take(self) -> list[str]:
        new, self._new = self._new, []
        return new


@dataclass
class MemberView:
    """What the monitor knows of one member now."""

    member: Member
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    phase: str | None = None  # a phase (phases.PHASES), "failed" (its shard was lost), "pruned", or None: undecided
    finished: bool = False
    failed: str | None = None  # why its shard was lost
    pruned: dict[str, Any] | None = None  # the forecast it was pruned at (--prune)

    @property
    def step(self) -> int:
        return int(self.rows[-1]["step"]) if self.rows else 0

    @property
    def test_acc(self) -> float | None:
        value = self.rows[-1].get("test_acc") if self.rows else None
        return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class SweepView:
    info: SweepInfo
    members: tuple[MemberView, ...]
    elapsed_s: float

    @property
    def axes(self) -> tuple[Axis, ...]:
        return self.info.grid.axes

    @property
    def total_steps(self) -> int:
        return self.info.grid.base.steps * len(self.members)

    @property
    def done_steps(self) -> int:
        # A pruned member is done: the steps it will not train count as done.
        steps = self.info.grid.base.steps
        return sum(steps if m.pruned else min(m.step, steps) for m in self.members)

    @property
    def finished(self) -> bool:
        return all(m.finished for m in self.members)

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before any progress)."""
        done, total = self.done_steps, self.total_steps
        if done <= 0 or self.elapsed_s <= 0:
            return None
        return (total - done) * self.elapsed_s / done


class SweepFollower:
    """Reads a sweep directory as it grows: each member's metrics.jsonl, and members.jsonl for who is
    done. Every record is checked as it is read (as `watch` checks a run's): a bad one is skipped, and
    the first in each file named in one line (`take_notices`)."""

    def __init__(self, root: Path):
        self.info = read_sweep(root)
        self.views = tuple(MemberView(m, m.name(self.info.grid.axes)) for m in self.info.grid.members)
        self._followers = [JsonlFollower(self.info.member_dir(v.member) / METRICS) for v in self.views]
        self._elapsed = 0.0
        self._notices = Notices()

    def take_notices(self) -> list[str]:
        """The lines about bad records and unreadable files found since the last call."""
        return self._notices.take()

    def _read(self, path: Path, read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        try:
            return read()
        except OSError as e:  # unreadable now (permissions, a vanished disk): say so once, try again later
            self._notices.report(path, f"{path}: cannot read it ({e.strerror or e})")
            return []

    def _members(self) -> list[dict[str, Any]]:
        return self._read(self.info.root / MEMBERS, lambda: read_members(self.info, self._notices.report))

    def poll(self) -> bool:
        """Take what was written since the last poll; True if anything changed."""
        changed = False
        steps = self.info.grid.base.steps
        records = self._members()
        done = {r["name"] for r in records if r.get("finished")}
        lost = {r["name"]: r["failed"] for r in records if r.get("failed")}
        ended = {r["name"]: r["pruned"] for r in records if r.get("pruned")}
        for view, follower in zip(self.views, self._followers, strict=True):
            rows = member_rows(self._read(follower.path, follower.poll), follower.path, self._notices.report)
            new = [{k: r.get(k) for k in KEPT} for r in rows]
            finished = view.name in done
            failed = lost.get(view.name)
            pruned = ended.get(view.name)
            if new or finished != view.finished or failed != view.failed or pruned != view.pruned:
                # A resumed sweep logs some steps again: a row replaces those from its step on, so the
                # rows stay in step order, the latest of each (as they would be had it not stopped).
                for row in new:
                    while view.rows and view.rows[-1]["step"] >= row["step"]:
                        view.rows.pop()
                    view.rows.append(row)
                view.finished = finished
                view.failed = failed
                view.pruned = pruned
                view.phase = (
                    "failed" if failed else "pruned" if pruned else classify(view.rows, steps, self.info.rule, finished)
                )
                changed = True
            if rows:
                elapsed = rows[-1].get("elapsed_s")
                if is_finite(elapsed):
                    self._elapsed = max(self._elapsed, float(elapsed))
        return changed

    def view(self) -> SweepView:
        return SweepView(self.info, self.views, self._elapsed)


def describe_sweep(root: Path, notices: list[str] | None = None) -> RunInfo:
    """A sweep as one line of `grok-tui ls`: its state, member-steps done of all, the phases so far.
    SweepDirError if sweep.json cannot be used; bad records are skipped, and named in `notices`."""
    follower = SweepFollower(root)
    follower.poll()
    if notices is not None:
        notices += follower.take_notices()
    view = follower.view()
    pid, state = process_state(root, finished=view.finished)
    counts = Counter(m.phase for m in view.members if m.phase)
    phases = " ".join(f"{LETTERS[p]} {counts[p]}" for p in (*PHASES, "pruned", "failed") if counts[p])
    age = 0.0
    with contextlib.suppress(OSError):
        age = time.time() - (Path(root) / SWEEP).stat().st_mtime
    experiment = f"sweep of {len(view.members)} {view.info.grid.experiment}"
    return RunInfo(Path(root), experiment, state, pid, view.done_steps, view.total_steps, phases, None, age)


def find_sweeps(root: Path, notices: list[str] | None = None) -> list[RunInfo]:
    """Every sweep directory directly under `root`; one that cannot be read is skipped (and named in
    `notices`, with the bad records of those that can)."""
    infos = []
    for path in sorted(p for p in Path(root).iterdir() if is_sweep(p)) if Path(root).is_dir() else []:
        try:
            infos.append(describe_sweep(path, notices))
        except SweepDirError as e:
            if notices is not None:
                notices.append(f"{e}; skipped")
    return infos


__all__ = [
    "GIVEN_FIELDS",
    "MEMBERS",
    "MILESTONES",
    "MEMBER_DIRS",
    "SHARDS",
    "SWEEP",
    "MemberView",
    "SweepDirError",
    "SweepFollower",
    "SweepInfo",
    "SweepView",
    "Notices",
    "check_member",
    "create_sweep",
    "describe_sweep",
    "find_sweeps",
    "is_sweep",
    "member_record",
    "member_rows",
    "read_members",
    "read_sweep",
    "write_members",
]
