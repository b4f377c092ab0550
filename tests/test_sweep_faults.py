"""Sweeps under stops, signals and damaged files: a stop resumes to the numbers of an uninterrupted
sweep, every catchable signal leaves a sweep stopped and resumable, a damaged shard checkpoint is said
in one line, a bad record in the sweep directory is skipped and named, and a member resumes as a run."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grok_tui.cli import main
from grok_tui.headless import run_headless
from grok_tui.process import read_record
from grok_tui.runlog import CHECKPOINT, METRICS, read_jsonl
from grok_tui.sweep.engine import Driver, shard_specs
from grok_tui.sweep.phases import PhaseRule
from grok_tui.sweep.shard import ShardSpec, train_shard
from grok_tui.sweep.store import (
    MEMBERS,
    SweepFollower,
    create_sweep,
    describe_sweep,
    find_sweeps,
    member_record,
    read_sweep,
    write_members,
)
from grok_tui.train import new_run, resume_run
from grok_tui.train.snapshot import Metrics
from tests.processes import wait_while_running

VOLATILE = ("elapsed_s", "steps_per_s")
# Four members in two shards of a+b mod 23: trains in about a second in this process.
GRID = {"p": [23], "width": [32], "eval_every": [10], "steps": [100], "weight_decay": [0.3, 1.0], "seed": [0, 1]}
STOP_AT = 57  # between two evaluations: the stop measures a row there that an uninterrupted sweep lacks


class InProcess:
    """A transport (engine.Transport) that trains each shard here as it is launched, one after another;
    each stops, as at a signal, when it reaches step `stop_at`."""

    capacity = 1

    def __init__(self, stop_at: int | None = None):
        self.stop_at = stop_at
        self._messages: list[tuple] = []
        self._ended: list[tuple[int, str | None]] = []

    def launch(self, spec: ShardSpec) -> None:
        start, calls = 0, 0

        def emit(message: tuple) -> None:
            nonlocal start
            if message[0] == "start":
                start = message[2]
            self._messages.append(message)

        def stopped() -> bool:  # asked once before each step
            nonlocal calls
            calls += 1
            return self.stop_at is not None and start + calls - 1 >= self.stop_at

        train_shard(spec, emit, stopped)
        self._ended.append((spec.index, None))

    def active(self) -> int:
        return 0

    def messages(self, timeout: float) -> list[tuple]:
        out, self._messages = self._messages, []
        return out

    def ended(self) -> list[tuple[int, str | None]]:
        out, self._ended = self._ended, []
        return out

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def train(root: Path, stop_at: int | None = None, resume: bool = False) -> int:
    info = read_sweep(root) if resume else create_sweep(root, "mod-add", GRID, PhaseRule(), 2)
    return Driver(info, io.StringIO(), InProcess(stop_at)).run()


def rows(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_jsonl(path)]


def assert_same_sweep(a: Path, b: Path) -> None:
    """Every member's metrics.jsonl (less the clock) and members.jsonl, the same."""
    names = read_sweep(a).names
    for name in names:
        assert rows(a / "members" / name / METRICS) == rows(b / "members" / name / METRICS), name
    assert read_jsonl(a / MEMBERS) == read_jsonl(b / MEMBERS)
    assert [r["name"] for r in read_jsonl(a / MEMBERS)] == names


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The uninterrupted sweep the interrupted ones must end up equal to."""
    root = tmp_path_factory.mktemp("whole") / "s"
    assert train(root) == 0
    return root


def test_a_stopped_sweep_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path, whole):
    root = tmp_path / "s"
    assert train(root, stop_at=STOP_AT) == 0
    member = root / "members" / "wd=0.3,seed=0" / METRICS
    assert [r["step"] for r in read_jsonl(member)][-2:] == [50, STOP_AT]  # where it stood at the stop
    assert not read_jsonl(root / MEMBERS)  # none finished, none failed
    assert train(root, resume=True) == 0
    assert [r["step"] for r in read_jsonl(member)] == list(range(0, 101, 10))
    assert_same_sweep(root, whole)


def test_a_sweep_stopped_twice_resumes_to_the_same_numbers(tmp_path, whole):
    root = tmp_path / "s"
    assert train(root, stop_at=STOP_AT) == 0
    assert train(root, stop_at=80, resume=True) == 0  # stopped on an evaluation's step this time
    assert train(root, resume=True) == 0
    assert_same_sweep(root, whole)


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda state: b"\x80\x04 not a checkpoint", "is not a readable checkpoint (UnpicklingError)"),
        (lambda state: {**state, "members": [7, 8]}, "holds other members than this shard's [0, 1]"),
        (lambda state: {**state, "chunks": [{**state["chunks"][0], "step": -5}]}, "step -5 is not a step"),
        (
            lambda state: {**state, "chunks": [{**state["chunks"][0], "step": True, "elapsed_s": 1.0}]},
            "step True is not a step",
        ),
    ],
)
def test_a_damaged_shard_checkpoint_is_named_once_and_trained_again(tmp_path, whole, capsys, damage, says):
    root = tmp_path / "s"
    assert train(root, stop_at=STOP_AT) == 0
    path = root / "shards" / "shard-0.pt"
    damaged = damage(torch.load(path, weights_only=True))
    if isinstance(damaged, bytes):
        path.write_bytes(damaged)
    else:
        torch.save(damaged, path)
    capsys.readouterr()
    assert train(root, resume=True) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"grok-tui: warning: {path}: ")  # one line, naming the file
    assert says in lines[0] and lines[0].endswith("shard 0 trains again from step 0")
    assert_same_sweep(root, whole)  # trained again from the start: the same numbers


def strict_json(line: str):
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))


def test_members_jsonl_holds_json_only(tmp_path):
    """A diverged member's losses are null in members.jsonl (NaN is not JSON), as in metrics.jsonl."""
    info = create_sweep(tmp_path / "s", "mod-add", GRID, PhaseRule(), 2)
    diverged = [{"step": 0, "train_loss": 4.1, "test_loss": 4.2, "train_acc": 0.1, "test_acc": 0.0}]
    diverged.append({"step": 10, "train_loss": math.nan, "test_loss": math.inf, "train_acc": 0.0, "test_acc": 0.0})
    records = [member_record(info, m, diverged, finished=True) for m in info.grid.members]
    write_members(info.root, records)
    lines = (info.root / MEMBERS).read_text().splitlines()
    assert [strict_json(line)["train_loss"] for line in lines] == [None] * 4
    assert [strict_json(line)["test_loss"] for line in lines] == [None] * 4
    follower = SweepFollower(info.root)
    follower.poll()
    assert all(view.finished for view in follower.view().members) and not follower.take_notices()


# ---- signals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_every_stop_signal_to_the_process_group_leaves_the_sweep_stopped_and_resumable(tmp_path, sig):
    """SIGTERM and SIGHUP to the sweep's whole process group, as SIGINT (test_sweep.py): the workers
    leave them to the driver, which has every shard checkpoint; no member is marked failed."""
    root = tmp_path / "s"
    argv = ["--sweep-dir", str(root), "--p", "23", "--width", "32", "--weight-decay", "0.3,1", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", *argv, "--steps", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,  # a process group of its own, as a terminal's job is
    )
    logs = [root / "members" / name / METRICS for name in ("wd=0.3", "wd=1")]
    wait_while_running(process, lambda: all(len(read_jsonl(log)) >= 3 for log in logs))
    os.killpg(process.pid, sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + sig, err
    assert "Traceback" not in err and "error" not in err and "died" not in out + err
    assert read_record(root)["state"] == "stopped"
    assert not read_jsonl(root / MEMBERS)  # none failed (nor finished)
    # Resumable: each shard takes its checkpoint, with no warning, at the step its members' logs end at.
    for spec in shard_specs(read_sweep(root)):
        messages: list[tuple] = []
        train_shard(spec, messages.append, stopped=lambda: True)
        assert not [m for m in messages if m[0] == "warning"]
        kind, _, step = messages[0]
        assert kind == "start" and step > 0
        assert [read_jsonl(logs[m])[-1]["step"] for m in spec.members] == [step]


# ---- members.jsonl and the members' logs, damaged ------------------------------------------------


def metrics_row(step: int, train_acc: float, test_acc: float) -> dict:
    """A row as a member's metrics.jsonl holds it."""
    return Metrics(step, 1.0, train_acc, 2.0, test_acc, 30.0, 1.0, 1e-2, 0.0, step / 100, 100.0).to_dict()


def test_bad_records_in_a_sweep_directory_are_skipped_and_named_once(tmp_path, capsys):
    root = tmp_path / "sweeps" / "s"
    info = create_sweep(root, "mod-add", GRID, PhaseRule(), 2)
    names = info.names
    good = {"index": 2, "name": names[2], "step": 100, "phase": "memorization", "finished": True, "failed": None}
    lines = [
        json.dumps({"index": 0, "name": [names[0]], "finished": True}),  # unhashable: the whole `ls` was lost
        json.dumps({"index": 1, "name": names[1], "failed": 5}),  # a reason that is no text: not trusted
        json.dumps({"index": 3, "name": names[3], "finished": "yes"}),
        json.dumps(good),
    ]
    (root / MEMBERS).write_text("\n".join(lines) + "\n")
    with open(info.member_dir(info.grid.members[0]) / METRICS, "w") as f:
        f.write(json.dumps(metrics_row(0, 0.5, 0.1)) + "\n")
        f.write(json.dumps({**metrics_row(10, 0.7, 0.2), "train_acc": "high"}) + "\n")
        f.write(json.dumps(metrics_row(20, 0.9, 0.3)) + "\n")
    follower = SweepFollower(root)
    follower.poll()
    views = follower.view().members
    assert [(v.finished, v.failed, v.phase) for v in views] == [
        (False, None, None),
        (False, None, None),
        (True, None, "confusion"),  # its own record says it finished: read from its (empty) log
        (False, None, None),
    ]
    assert [r["step"] for r in views[0].rows] == [0, 20]
    notices = follower.take_notices()
    assert len(notices) == 2 and all(len(n.splitlines()) == 1 for n in notices)
    assert notices[0].startswith(f"{root / MEMBERS}: name: ['{names[0]}'] is not allowed; expected '{names[0]}'")
    assert notices[1].startswith(f"{info.member_dir(info.grid.members[0]) / METRICS}: train_acc: 'high'")
    follower.poll()
    assert not follower.take_notices()  # once a file, not once a poll
    # `grok-tui ls` lists the sweep, and the run beside it, whatever its members.jsonl holds.
    assert main(["ls", str(root.parent)]) == 0
    out, err = capsys.readouterr()
    assert "sweep of 4 mod-add" in out and "0 of 400" in out.replace(",", "")
    # ... and names what it skipped, on stderr, a line each.
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(line.startswith("grok-tui: warning: ") for line in warnings)
    assert f"{root / MEMBERS}: name: " in warnings[0]
    notices = []
    assert [i.experiment for i in find_sweeps(root.parent, notices)] == ["sweep of 4 mod-add"]
    assert len(notices) == 2
    assert describe_sweep(root).phase == "X 1"


def test_a_bad_row_in_a_members_log_is_named_once_when_the_sweep_resumes(tmp_path, whole, capsys):
    root = tmp_path / "s"
    assert train(root, stop_at=STOP_AT) == 0
    log = root / "members" / "wd=1,seed=1" / METRICS
    with open(log, "a") as f:
        f.write(json.dumps({"step": "twenty", "train_acc": 1.0}) + "\n")  # crashed the driver's milestones
        f.write(json.dumps({"step": 30, "test_acc": 7}) + "\n")
    capsys.readouterr()
    assert train(root, resume=True) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"grok-tui: warning: {log}: step: 'twenty' is not allowed")
    assert read_jsonl(root / MEMBERS) == read_jsonl(whole / MEMBERS)  # the bad rows counted for nothing


# ---- a member is a run ---------------------------------------------------------------------------


def summary(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("# train acc >="))


def test_a_member_resumes_as_its_single_run_does(tmp_path, capsys):
    """A member's checkpoint is the one its single run writes (the logged step, the RNG states): resumed
    with more steps, it logs the rows the single run's resume logs, no step twice, and the summary names
    the step train accuracy reached 99% before the resume, not the resume's."""
    info = create_sweep(tmp_path / "s", "mod-add", {**GRID, "steps": [150], "weight_decay": [0.3]}, PhaseRule(), 1)
    assert Driver(info, io.StringIO(), InProcess()).run() == 0
    member = info.grid.members[0]
    member_dir, single_dir = info.member_dir(member), tmp_path / "single"
    assert run_headless(new_run(member.cfg, single_dir).build(), io.StringIO()) == 0
    a = torch.load(member_dir / CHECKPOINT, weights_only=True)
    b = torch.load(single_dir / CHECKPOINT, weights_only=True)
    assert a.keys() == b.keys()
    for key in ("step", "logged_step", "log_lines", "train_size", "norm_target", "grokfast", "l1"):
        assert a[key] == b[key], key
    assert torch.equal(a["torch_rng"], b["torch_rng"])

    assert main(["--headless", "--resume", str(member_dir), "--steps", "200"]) == 0
    member_out = capsys.readouterr().out
    single = io.StringIO()
    assert run_headless(resume_run(single_dir, steps=200).build(), single) == 0
    steps = list(range(0, 201, 10))
    member_rows, single_rows = read_jsonl(member_dir / METRICS), read_jsonl(single_dir / METRICS)
    assert [r["step"] for r in member_rows] == [r["step"] for r in single_rows] == steps
    for x, y in zip(member_rows, single_rows, strict=True):  # batched and single: the same within float order
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=5e-3, abs=1e-5)
        assert x["test_acc"] == pytest.approx(y["test_acc"], abs=0.01)
    fit = next(r["step"] for r in member_rows if r["train_acc"] >= 0.99)
    assert fit < 150  # reached before the resume, so only the rows on file know it
    assert summary(member_out).startswith(f"# train acc >= 99%: step {fit} (")
    assert summary(single.getvalue()).startswith(f"# train acc >= 99%: step {fit} (")


def test_the_summary_does_not_name_the_resume_step_when_the_rows_before_it_are_gone(tmp_path):
    run_dir = tmp_path / "run"
    cfg = read_sweep(create_sweep(tmp_path / "s", "mod-add", GRID, PhaseRule(), 1).root).grid.members[0].cfg
    assert run_headless(new_run(cfg.replace(steps=150), run_dir).build(), io.StringIO()) == 0
    rows = read_jsonl(run_dir / METRICS)
    assert rows[-1]["train_acc"] >= 0.99
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    # The rows before the checkpoint lost (cut by hand, say): the log begins at the checkpoint's step.
    (run_dir / METRICS).write_text(json.dumps(rows[-1]) + "\n")
    torch.save({**state, "log_lines": {METRICS: 1, "events.jsonl": 0}}, run_dir / CHECKPOINT)
    out = io.StringIO()
    assert run_headless(resume_run(run_dir, steps=170).build(), out) == 0
    assert summary(out.getvalue()).startswith("# train acc >= 99%: reached before step 150 (")
