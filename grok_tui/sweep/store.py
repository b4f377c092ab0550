"""The sweep directory, and reading it back live.

    SWEEP/sweep.json         the preset, the flags given (axes are the lists), the phase rule, the workers
    SWEEP/members/NAME/      one run directory per member (config.json, metrics.jsonl, events.jsonl,
                             checkpoint.pt of its weights): `grok-tui watch SWEEP/members/NAME` opens it
    SWEEP/members.jsonl      one line per finished member: its values, the steps at which train and test
                             accuracy reached 90/95/99%, its final accuracies and losses, its phase
    SWEEP/shards/            the batched trainers' checkpoints (`--resume SWEEP`)
    SWEEP/process.json       the process training it (runs.py)

The monitor and `watch SWEEP` read the sweep from these files alone
(`SweepFollower`): the directory is the one route a sweep's numbers take, whichever
engine trains it and wherever its shards run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grok_tui.files import WriteError, write_atomic
from grok_tui.runlog import METRICS, JsonlFollower, RunDirError, RunLog, read_jsonl
from grok_tui.runs import RunInfo, process_state
from grok_tui.sweep.grid import Axis, Grid, GridError, Member, build_grid
from grok_tui.sweep.phases import PHASES, PhaseRule, classify, milestones, settled
from grok_tui.sweep.text import LETTERS

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

    @property
    def names(self) -> list[str]:
        return self.grid.names()

    def member_dir(self, member: Member) -> Path:
        return self.root / MEMBER_DIRS / member.name(self.grid.axes)


def is_sweep(path: Path) -> bool:
    return (Path(path) / SWEEP).is_file()


def create_sweep(
    root: Path, experiment: str, given: Mapping[str, Sequence[Any]], rule: PhaseRule, workers: int
) -> SweepInfo:
    """Make the sweep directory, one run directory per member; refuses one that holds a sweep or a run."""
    root = Path(root)
    if (root / SWEEP).exists():
        raise SweepDirError(f"{root} already holds a sweep; use grok-tui sweep --resume {root} or another --sweep-dir")
    if (root / "config.json").exists():
        raise SweepDirError(f"{root} holds a run, not a sweep; choose another --sweep-dir")
    grid = build_grid(experiment, given)
    info = SweepInfo(root, grid, rule, workers, {k: list(v) for k, v in given.items()})
    try:
        for member in grid.members:
            RunLog(info.member_dir(member)).create(member.cfg.to_dict())
        # sweep.json is what makes a directory a sweep: written last.
        record = {"experiment": experiment, "given": info.given, "rule": rule.to_dict(), "workers": workers}
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
        given = data["given"]
        if not isinstance(given, dict) or not all(isinstance(v, list) for v in given.values()):
            raise ValueError("'given' is not an object of value lists")
        workers = data["workers"]
        if not (isinstance(workers, int) and 1 <= workers <= 1024):
            raise ValueError(f"'workers' is {workers!r}, not an integer from 1 to 1024")
        rule = PhaseRule.from_dict(data.get("rule") or {})
        grid = build_grid(str(data["experiment"]), given)
    except KeyError as e:
        raise SweepDirError(f"{path}: missing {e}") from None
    except (ValueError, TypeError, GridError) as e:
        raise SweepDirError(f"{path}: {e}") from None
    return SweepInfo(root, grid, rule, workers, given)


def member_record(
    info: SweepInfo, member: Member, rows: Sequence[Mapping[str, Any]], finished: bool, failed: str | None = None
) -> dict[str, Any]:
    """Member's line in members.jsonl (also what the monitor shows of it); `failed`: why its shard was lost."""
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
        "phase": classify(rows, steps, info.rule, finished),
        "finished": finished,
        "failed": failed,
    }


def write_members(root: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """members.jsonl, whole, in member order (rewritten as members finish: it is small)."""
    ordered = sorted(records, key=lambda r: int(r["index"]))
    write_atomic(Path(root) / MEMBERS, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in ordered))


def read_members(root: Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(root) / MEMBERS)


@dataclass
class MemberView:
    """What the monitor knows of one member now."""

    member: Member
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    phase: str | None = None  # a phase (phases.PHASES), "failed" (its shard was lost), or None: undecided
    finished: bool = False
    failed: str | None = None  # why its shard was lost

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
        return sum(min(m.step, self.info.grid.base.steps) for m in self.members)

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
    """Reads a sweep directory as it grows: each member's metrics.jsonl, and members.jsonl for who is done."""

    def __init__(self, root: Path):
        self.info = read_sweep(root)
        self.views = tuple(MemberView(m, m.name(self.info.grid.axes)) for m in self.info.grid.members)
        self._followers = [JsonlFollower(self.info.member_dir(v.member) / METRICS) for v in self.views]
        self._elapsed = 0.0

    def poll(self) -> bool:
        """Take what was written since the last poll; True if anything changed."""
        changed = False
        steps = self.info.grid.base.steps
        records = read_members(self.info.root)
        done = {r.get("name") for r in records if r.get("finished")}
        lost = {r.get("name"): str(r["failed"]) for r in records if r.get("failed")}
        for view, follower in zip(self.views, self._followers, strict=True):
            records = [r for r in follower.poll() if isinstance(r.get("step"), int)]
            new = [{k: r.get(k) for k in KEPT} for r in records]
            finished = view.name in done
            failed = lost.get(view.name)
            if new or finished != view.finished or failed != view.failed:
                # A resumed sweep logs some steps again: keep the rows in step order, the latest of each.
                if new and view.rows and new[0]["step"] <= view.rows[-1]["step"]:
                    view.rows = [r for r in view.rows if r["step"] < new[0]["step"]]
                view.rows += new
                view.finished = finished
                view.failed = failed
                view.phase = "failed" if failed else classify(view.rows, steps, self.info.rule, finished)
                changed = True
            if records:
                elapsed = records[-1].get("elapsed_s")
                if isinstance(elapsed, (int, float)):
                    self._elapsed = max(self._elapsed, float(elapsed))
        return changed

    def view(self) -> SweepView:
        return SweepView(self.info, self.views, self._elapsed)


def describe_sweep(root: Path) -> RunInfo:
    """A sweep as one line of `grok-tui ls`: its state, member-steps done of all, the phases so far."""
    follower = SweepFollower(root)
    follower.poll()
    view = follower.view()
    pid, state = process_state(root, finished=view.finished)
    counts = Counter(m.phase for m in view.members if m.phase)
    phases = " ".join(f"{LETTERS[p]} {counts[p]}" for p in (*PHASES, "failed") if counts[p])
    age = 0.0
    with contextlib.suppress(OSError):
        age = time.time() - (Path(root) / SWEEP).stat().st_mtime
    experiment = f"sweep of {len(view.members)} {view.info.grid.experiment}"
    return RunInfo(Path(root), experiment, state, pid, view.done_steps, view.total_steps, phases, None, age)


def find_sweeps(root: Path) -> list[RunInfo]:
    """Every sweep directory directly under `root`; what is not one is skipped."""
    infos = []
    for path in sorted(p for p in Path(root).iterdir() if is_sweep(p)) if Path(root).is_dir() else []:
        with contextlib.suppress(SweepDirError):
            infos.append(describe_sweep(path))
    return infos


__all__ = [
    "MEMBERS",
    "MEMBER_DIRS",
    "SHARDS",
    "SWEEP",
    "MemberView",
    "SweepDirError",
    "SweepFollower",
    "SweepInfo",
    "SweepView",
    "create_sweep",
    "describe_sweep",
    "find_sweeps",
    "is_sweep",
    "member_record",
    "read_members",
    "read_sweep",
    "write_members",
]
