"""`grok-tui sweep --prune P`: a member whose forecast falls below P at or after its forecast point stops
there, keeps its rows and checkpoint, is recorded with its forecast and counted as pruned, never as a phase;
the others train on as they would have; a resumed sweep keeps its pruned members pruned."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from grok_tui.cli import main
from grok_tui.config import PRESETS
from grok_tui.forecast import forecast, forecast_index, load_fit
from grok_tui.runlog import CHECKPOINT, METRICS, read_jsonl
from grok_tui.sweep.engine import Driver
from grok_tui.sweep.phases import PHASES, PhaseRule
from grok_tui.sweep.prune import Pruner
from grok_tui.sweep.shard import ShardSpec
from grok_tui.sweep.store import (
    MEMBERS,
    SWEEP,
    SweepDirError,
    SweepFollower,
    check_member,
    create_sweep,
    describe_sweep,
    read_sweep,
)
from grok_tui.sweep.text import diagram
from grok_tui.train.batched import BatchedTrainer
from grok_tui.train.snapshot import RecordError
from tests.test_sweep_faults import InProcess, assert_same_sweep, rows

# mod-add (the forecaster has a fit for it) at 10% and 30% of the pairs, two weight decays, 400 steps: four
# members in two shards, trained here in ~4 s. At P = 0.3 the first shard's two members (10%) are both pruned
# (at steps 60 and 290), and one of the other shard's (30%, wd 0.1, at 140); the last trains to the end.
GRID = {"train_frac": [0.1, 0.3], "weight_decay": [0.1, 1.0], "steps": [400]}
P = 0.3
STEPS = 400


def train(root: Path, prune: float | None = P, stop_at: int | None = None, resume: bool = False) -> str:
    """Train the sweep in this process; the driver's output."""
    info = read_sweep(root) if resume else create_sweep(root, "mod-add", GRID, PhaseRule(), 2, prune=prune)
    out = io.StringIO()
    assert Driver(info, out, InProcess(stop_at)).run() == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> tuple[Path, str]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pruned") / "s"
    return root, train(root)


@pytest.fixture(scope="module")
def unpruned(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("unpruned") / "s"
    train(root, prune=None)
    return root


def records(root: Path) -> dict[str, dict]:
    return {r["name"]: r for r in read_jsonl(root / MEMBERS)}


def test_a_member_whose_forecast_falls_below_p_stops_there_with_its_rows_checkpoint_and_forecast(pruned):
    root, _ = pruned
    info = read_sweep(root)
    by_name = records(root)
    ended = {name: r for name, r in by_name.items() if r["pruned"]}
    assert sorted(ended) == ["frac=0.1,wd=0.1", "frac=0.1,wd=1", "frac=0.3,wd=0.1"]
    fit = load_fit()
    for name, record in ended.items():
        forecast_at = record["pruned"]
        member_rows = read_jsonl(root / "members" / name / METRICS)
        # Its rows end at the evaluation that pruned it, and say there what members.jsonl recorded.
        assert member_rows[-1]["step"] == forecast_at["step"] == record["step"] < STEPS
        settings = json.loads((root / "members" / name / "config.json").read_text())
        again = forecast(member_rows, settings, fit)
        assert again.to_json() == forecast_at and again.p_generalize < P
        assert record["finished"] and record["phase"] is None
        # Its checkpoint is where it stopped, as a finished member's is: `watch` opens it there.
        state = torch.load(root / "members" / name / CHECKPOINT, map_location="cpu", weights_only=True)
        assert state["step"] == forecast_at["step"]
    assert info.prune == P
    kept = by_name["frac=0.3,wd=1"]
    assert kept["pruned"] is None and kept["step"] == STEPS and kept["phase"] in PHASES


def test_a_member_is_never_pruned_before_its_forecast_point(tmp_path):
    # At P near 1 every member is pruned as soon as it may be: at its forecast point, and not a step sooner.
    torch.set_num_threads(1)
    root = tmp_path / "s"
    train(root, prune=0.999)
    for name, record in records(root).items():
        member_rows = read_jsonl(root / "members" / name / METRICS)
        point = forecast_index(member_rows)
        if record["pruned"] is None:  # it generalized with the fit, or never got there: nothing to forecast
            assert point is None and record["step"] == STEPS
        else:
            assert point is not None and member_rows[point]["step"] == record["pruned"]["step"]
    assert any(r["pruned"] for r in records(root).values())


def test_the_pruner_says_nothing_before_the_forecast_point_nor_at_the_budgets_end():
    cfg = PRESETS["mod-add"].config(steps=400)
    pruner = Pruner(0.999, {7: cfg})
    row = dict(train_loss=1e-3, test_loss=5.0, test_acc=0.1, param_norm=50.0, weight_decay=0.3, lr=0.01, l1=0.0)
    # Fitted at step 100: the forecast point is at step 200, the first evaluation at twice the fit's step.
    for step in range(0, 200, 10):
        assert pruner.see(7, {**row, "step": step, "train_acc": 0.5 if step < 100 else 1.0}) is None
    assert pruner.see(7, {**row, "step": 200, "train_acc": 1.0}) is not None
    late = Pruner(0.999, {7: cfg})
    for step in range(0, 401, 10):  # fitted at 200, so its point would be the budget's end: nothing to save
        assert late.see(7, {**row, "step": step, "train_acc": 0.5 if step < 200 else 1.0}) is None


def test_pruned_members_are_counted_as_pruned_never_as_a_phase(pruned):
    root, out = pruned
    info = read_sweep(root)
    follower = SweepFollower(root)
    follower.poll()
    phases = {v.name: v.phase for v in follower.view().members}
    assert phases == {
        "frac=0.1,wd=0.1": "pruned",
        "frac=0.1,wd=1": "pruned",
        "frac=0.3,wd=0.1": "pruned",
        "frac=0.3,wd=1": phases["frac=0.3,wd=1"],
    }
    assert phases["frac=0.3,wd=1"] in PHASES
    assert follower.view().done_steps == follower.view().total_steps  # a pruned member is done
    text = diagram(info, list(records(root).values()))
    grid = text.splitlines()[3:5]  # wd 1, then wd 0.1; frac 0.1 and 0.3 across
    assert grid[0].split("|")[1].split()[0] == "p" and grid[1].split("|")[1].split() == ["p", "p"]
    assert grid[0].split("|")[1].split()[1] in {"C", "G", "S", "M", "X"}
    assert text.endswith("p pruned")
    assert "pruned 3" in out  # the progress line counts them apart from the phases
    listed = describe_sweep(root)  # grok-tui ls
    assert "p 3" in listed.phase and listed.step == listed.total
    # members.jsonl is checked: a pruned member with a phase, or a forecast that is not one, is refused.
    record = records(root)["frac=0.1,wd=0.1"]
    for bad in ({**record, "phase": "memorization"}, {**record, "pruned": {"step": 60}}):
        with pytest.raises(RecordError):
            check_member(bad, info)


def test_pruning_saves_member_steps_and_the_summary_says_how_many(pruned, unpruned):
    root, out = pruned
    trained = {name: read_jsonl(root / "members" / name / METRICS)[-1]["step"] for name in records(root)}
    whole = {name: read_jsonl(unpruned / "members" / name / METRICS)[-1]["step"] for name in records(unpruned)}
    saved = sum(whole.values()) - sum(trained.values())
    assert saved == sum(STEPS - r["pruned"]["step"] for r in records(root).values() if r["pruned"]) > 0
    assert out.splitlines()[-1] == (
        f"pruned 3 of 4 members (p < {P:g} at or after their forecast point): "
        f"{saved:,} member-steps saved of {4 * STEPS:,} ({saved / (4 * STEPS):.0%})"
    )
    assert "pruned" not in train(root.parent / "again", prune=None)  # no summary without --prune


def test_the_members_left_train_as_they_would_have_unpruned(pruned, unpruned):
    root, _ = pruned
    name = "frac=0.3,wd=1"  # its chunk-mate was pruned at step 140 and dropped from its batch
    a, b = rows(root / "members" / name / METRICS), rows(unpruned / "members" / name / METRICS)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for x, y in zip(a, b, strict=True):
        for key in ("train_loss", "test_loss", "param_norm", "test_acc"):
            assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-5), (x["step"], key)
    # A pruned member's rows are its unpruned run's, up to where it stopped.
    name = "frac=0.3,wd=0.1"
    a, b = rows(root / "members" / name / METRICS), rows(unpruned / "members" / name / METRICS)
    assert a == b[: len(a)] and len(a) < len(b)


def test_a_trainer_keeping_some_members_trains_them_as_the_whole_batch_does():
    torch.set_num_threads(1)
    base = PRESETS["mod-add"].config(steps=40)
    # The dropped member holds the most data, so the padding goes too; one kept member holds its norm.
    cfgs = [base.replace(train_frac=0.3), base.replace(train_frac=0.6, seed=1), base.replace(constrain_norm=60.0)]
    whole, part = BatchedTrainer(cfgs, torch.device("cpu")), BatchedTrainer(cfgs, torch.device("cpu"))
    for _ in range(10):
        whole.train_step()
        part.train_step()
    part.keep([0, 2])
    assert len(part) == 2 and part.train.x.shape[1] < whole.train.x.shape[1]
    for _ in range(20):
        whole.train_step()
        part.train_step()
    full, kept = whole.evaluate(), part.evaluate()
    for a, b in zip(kept, [full[0], full[2]], strict=True):
        for key in ("train_loss", "test_loss", "param_norm", "train_acc", "test_acc"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-5, abs=1e-6), key
    for name in part.names:
        torch.testing.assert_close(part.params[name], whole.params[name][[0, 2]], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(part.member_state(1)[name], whole.member_state(2)[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stop_at", [60, 157, 300])
def test_a_stopped_sweep_resumes_with_its_pruned_members_pruned(tmp_path, pruned, stop_at):
    # 60: stopped at the evaluation that pruned a member; 157: between evaluations, one pruned before;
    # 300: after the first shard's members were all pruned (that shard ended) and the second's one.
    torch.set_num_threads(1)
    root = tmp_path / "s"
    train(root, stop_at=stop_at)
    before = {name for name, r in records(root).items() if r["pruned"]}
    assert before and before < set(records(pruned[0]))
    out = train(root, resume=True)
    assert {name for name, r in records(root).items() if r["pruned"]} >= before
    assert_same_sweep(root, pruned[0])
    assert out.splitlines()[-1] == pruned[1].splitlines()[-1]  # the same summary


def test_a_shard_checkpoint_records_who_was_pruned(tmp_path, pruned):
    root, _ = pruned
    state = torch.load(root / "shards" / "shard-0.pt", map_location="cpu", weights_only=True)
    assert state["chunks"] == []  # both its members were pruned: nothing left to train
    assert sorted(state["pruning"]["pruned"]) == ["0", "1"] and state["pruning"]["pruned"]["0"]["step"] == 60


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("value", ["0", "1", "-0.1", "1.5", "nan", "inf", "often"])
def test_a_bad_prune_value_is_one_line_and_status_2(capsys, tmp_path, value):
    code, _, err = run_cli(capsys, "sweep", "--headless", "--sweep-dir", str(tmp_path / "s"), "--prune", value)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"--prune: {value!r} is not allowed; expected a probability between 0 and 1" in err
    assert not (tmp_path / "s").exists()


def test_prune_for_an_experiment_without_a_fit_is_refused_naming_those_with_one(capsys, tmp_path):
    argv = ["sweep", "--headless", "--experiment", "parity", "--sweep-dir", str(tmp_path / "s"), "--prune", "0.1"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--prune: the forecaster has no fit for the experiment 'parity'" in err
    assert f"it has one for {', '.join(sorted(load_fit().experiments))}" in err
    assert not (tmp_path / "s").exists()


def test_a_resumed_sweep_keeps_its_pruning(capsys, tmp_path):
    code, _, err = run_cli(capsys, "sweep", "--headless", "--resume", str(tmp_path / "s"), "--prune", "0.2")
    assert code == 2 and "--resume keeps the sweep as it was created; leave out --prune" in err


def test_a_sweep_json_with_a_bad_prune_is_named(tmp_path):
    info = create_sweep(tmp_path / "s", "mod-add", {"steps": [10]}, PhaseRule(), 1, prune=0.1)
    assert read_sweep(info.root).prune == 0.1
    data = json.loads((info.root / SWEEP).read_text())
    (info.root / SWEEP).write_text(json.dumps({**data, "prune": 2}))
    with pytest.raises(SweepDirError, match="'prune' is 2, not a probability between 0 and 1"):
        read_sweep(info.root)


def test_a_ray_task_gets_the_shards_pruning():
    from grok_tui.sweep.ray_engine import RayTasks

    launched = []

    class Task:
        def remote(self, spec, queue, flag):
            launched.append(spec)

    tasks = object.__new__(RayTasks)  # no cluster: only what launch hands the task
    tasks.cpus, tasks._task, tasks._queue, tasks._flag, tasks._running = 2, Task(), None, None, {}
    cfg = PRESETS["mod-add"].config(steps=10)
    tasks.launch(ShardSpec(0, (0,), (cfg,), None, prune=0.2))
    assert launched[0].prune == 0.2 and launched[0].threads == 2


def test_the_sweep_map_shows_pruned_members_apart_from_every_phase(pruned):
    from grok_tui.sources.sweep import SweepSource
    from grok_tui.ui.app import MonitorApp
    from grok_tui.ui.panes.phase_map import PhaseMapPane
    from grok_tui.ui.screens.sweep import SweepScreen
    from tests.conftest import run, wait_for

    async def scenario():
        app = MonitorApp(SweepScreen(SweepSource(pruned[0], None), refresh=0.1))
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(PhaseMapPane)
            await wait_for(pilot, lambda: len(pane.blocks) == 4)
            ended = [b for blocks in pane.blocks.values() for b in blocks if b.phase == "pruned"]
            assert len(ended) == 3 and all(b.forecast is None for b in ended)  # no forecast shade: it is over
            style = pane.get_component_rich_style("phase-map--pruned")
            assert all(pane.block_style(b) == style for b in ended)
            assert style not in {pane.get_component_rich_style(f"phase-map--{p}") for p in PHASES}
            legend = [line.plain for line in pane._legend(120, full=True)]
            assert any(" p  pruned" in line for line in legend)
            assert "3 pruned" in app.home.status_text().plain  # counted, as no phase holds them

    run(scenario())


@pytest.mark.xdist_group("ray")  # with tests/test_ray.py: one Ray at a time on the machine
def test_a_sweep_on_ray_prunes_the_same_members_at_the_same_forecasts(tmp_path, pruned):
    pytest.importorskip("ray")
    import os
    import subprocess
    import sys

    argv = ["--train-frac", "0.1,0.3", "--weight-decay", "0.1,1", "--steps", str(STEPS), "--workers", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--sweep-dir", str(tmp_path / "s"), *argv]
        + ["--prune", str(P), "--ray"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert done.returncode == 0, done.stderr
    on_ray, here = records(tmp_path / "s"), records(pruned[0])
    assert {n: r["pruned"] for n, r in on_ray.items()} == {n: r["pruned"] for n, r in here.items()}
    assert done.stdout.splitlines()[-1] == pruned[1].splitlines()[-1]
