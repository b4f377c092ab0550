"""Omnigrok's LU landscape as a sweep: `--constrain-norm` as an axis, each member held at its own norm.

The curves are checked where they hold on grids small enough for seconds: the train loss high at the
smallest norms and near zero at the largest (the L), the test loss lowest in between (the U).
"""

from __future__ import annotations

import pytest
import torch

from grok_tui.cli import main
from grok_tui.config import PRESETS
from grok_tui.runlog import read_jsonl
from grok_tui.sweep.axis import axis_points, axis_table, line_axis
from grok_tui.sweep.grid import GridError, build_grid
from grok_tui.sweep.maps import MAPS
from grok_tui.sweep.store import MEMBERS, read_sweep
from grok_tui.train.batched import BatchedTrainer


def sweep(capsys, root, *argv):
    code = main(["sweep", "--headless", "--workers", "1", "--sweep-dir", str(root), *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, {r["values"]["constrain_norm"]: r for r in read_jsonl(root / MEMBERS)}


def test_constrain_norm_is_a_per_member_axis():
    grid = build_grid("mod-add", {"constrain_norm": [0.0, 10.0, 40.0], "seed": [0, 1], "steps": [10]})
    assert [a.field for a in grid.axes] == ["constrain_norm", "seed"]
    assert [m.cfg.constrain_norm for m in grid.members] == [0.0, 0.0, 10.0, 10.0, 40.0, 40.0]
    assert len(grid.batches()) == 1  # one batch: each member holds its own norm in it
    assert line_axis(grid.axes) == grid.axes[0]
    assert line_axis(build_grid("mod-add", {"constrain_norm": [1.0, 2.0], "lr": [0.1, 0.01]}).axes) is None


def test_a_bad_norm_is_one_line_naming_the_member():
    with pytest.raises(GridError) as e:
        build_grid("mod-add", {"constrain_norm": [10.0, -1.0]})
    line = str(e.value)
    assert line.startswith("--constrain-norm: -1.0 is not allowed for the member constrain_norm=-1; expected 0 (off)")
    assert "\n" not in line


@pytest.mark.parametrize(
    "value, words",
    [
        ("-1", "--constrain-norm: -1.0 is not allowed; expected 0 (off) or a finite number > 0"),
        ("10,-1", "--constrain-norm: -1.0 is not allowed for the member constrain_norm=-1; expected 0 (off)"),
        ("10,x", "--constrain-norm: 'x' is not allowed"),
    ],
)
def test_a_bad_norm_on_the_command_line_is_one_line_and_status_2(capsys, tmp_path, value, words):
    code = main(["sweep", "--headless", "--sweep-dir", str(tmp_path / "s"), "--constrain-norm", value])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_the_maps_are_one_norm_axis_around_the_init_norm_with_no_weight_decay():
    for name, init_norm in (("norm-lu", 93.0), ("norm-lu-ts", 8.7)):  # measured: the presets' models at init
        values = MAPS[name].values
        norms = values["constrain_norm"]
        assert min(norms) < init_norm / 5 and max(norms) > 3 * init_norm
        assert values["weight_decay"] == [0.0]
        assert line_axis(build_grid(MAPS[name].experiment, values).axes).field == "constrain_norm"


def test_held_members_keep_their_norm_in_the_sweep_and_when_resumed_alone(capsys, tmp_path):
    root = tmp_path / "s"
    out, _ = sweep(capsys, root, "--p", "23", "--width", "32", "--constrain-norm", "0,15", "--steps", "30")
    assert "latest losses and accuracies against constrain_norm" in out
    info = read_sweep(root)
    held, free = (info.member_dir(m) for m in sorted(info.grid.members, key=lambda m: -m.cfg.constrain_norm))
    assert all(r["param_norm"] == pytest.approx(15.0, rel=1e-4) for r in read_jsonl(held / "metrics.jsonl")[1:])
    assert read_jsonl(free / "metrics.jsonl")[-1]["param_norm"] > 20  # its init's ~27, left free
    # Its checkpoint holds the norm as its single run's would: resumed alone, it stays held.
    assert main(["--headless", "--resume", str(held), "--steps", "60"]) == 0
    rows = read_jsonl(held / "metrics.jsonl")
    assert rows[-1]["step"] == 60 and rows[-1]["param_norm"] == pytest.approx(15.0, rel=1e-4)


def final_losses(preset, norms, steps, **changes):
    """Each norm's train and test loss after `steps`, its member held there from the first step on."""
    torch.set_num_threads(1)
    cfgs = [PRESETS[preset].config(constrain_norm=n, weight_decay=0.0, **changes) for n in norms]
    batch = BatchedTrainer(cfgs, torch.device("cpu"))
    for _ in range(steps):
        batch.train_step()
    rows = batch.evaluate()
    return [r.train_loss for r in rows], [r.test_loss for r in rows]


def assert_l_and_u(train, test):
    # The L: the smallest norm cannot fit the training set, the largest ones fit it.
    assert train[0] > 20 * max(train[-2:]), train
    # The U: the test loss lowest in between, below both ends.
    middle = min(test[1:-1])
    assert middle < 0.85 * test[0] and middle < 0.2 * test[-1], test


def test_mod_add_train_loss_is_l_shaped_and_test_loss_u_shaped_against_the_norm():
    # p 31, width 32: the init's norm is ~31 (sqrt(31 x 32), the embedding's).
    norms = [3.0, 10.0, 20.0, 30.0, 80.0, 160.0]
    train, test = final_losses("mod-add", norms, 600, p=31, width=32, train_frac=0.5)
    assert_l_and_u(train, test)


def test_teacher_student_test_loss_is_lowest_near_the_standard_inits_norm():
    norms = [1.0, 4.0, 8.7, 25.0, 50.0]
    train, test = final_losses("teacher-student", norms, 500, init_scale=1.0)
    assert_l_and_u(train, test)
    assert min(test) == test[2]  # Omnigrok's Figure 2a: the U's bottom at the standard init's norm, ~8.7


def test_axis_table_means_over_seeds_and_marks_a_value_with_none_yet():
    grid = build_grid("mod-add", {"constrain_norm": [10.0, 20.0], "seed": [0, 1]})
    axis = grid.axes[0]
    rows = [
        ({"constrain_norm": 10.0, "seed": 0}, {"train_loss": 1.0, "test_loss": 2.0, "train_acc": 0.5, "test_acc": 0.1}),
        ({"constrain_norm": 10.0, "seed": 1}, {"train_loss": 3.0, "test_loss": 4.0, "train_acc": 1.0, "test_acc": 0.3}),
        ({"constrain_norm": 20.0, "seed": 0}, {"train_loss": None, "test_loss": float("nan")}),
    ]
    points = axis_points(axis, rows)
    assert [p.value for p in points] == [10.0, 20.0]
    assert points[0].mean("train_loss") == 2.0 and points[0].mean("test_acc") == pytest.approx(0.2)
    assert points[1].members == () and points[1].mean("test_loss") is None
    lines = axis_table(axis, points).splitlines()
    assert lines[2].split() == ["10", "2", "3", "75.0%", "20.0%", "2"]
    assert lines[3].split() == ["20", "–", "–", "–", "–", "0"]


def test_axis_table_leaves_out_members_prune_ended_and_counts_them():
    # A pruned member's latest figures are from part-way through its budget: beside finished ones they
    # would pull the value's mean toward the memorizing loss it was ended at.
    grid = build_grid("mod-add", {"constrain_norm": [10.0, 20.0], "seed": [0, 1]})
    axis = grid.axes[0]
    done = {"train_loss": 1e-4, "test_loss": 0.1, "train_acc": 1.0, "test_acc": 0.99}
    ended = {"train_loss": 1e-3, "test_loss": 5.0, "train_acc": 1.0, "test_acc": 0.05, "pruned": {"p_generalize": 0.02}}
    rows = [
        ({"constrain_norm": 10.0, "seed": 0}, done),
        ({"constrain_norm": 10.0, "seed": 1}, ended),
        ({"constrain_norm": 20.0, "seed": 0}, ended),
        ({"constrain_norm": 20.0, "seed": 1}, {**ended, "pruned": None}),  # a record that was not pruned
    ]
    points = axis_points(axis, rows)
    assert (len(points[0].members), points[0].pruned, points[0].mean("test_loss")) == (1, 1, 0.1)
    assert (len(points[1].members), points[1].pruned, points[1].mean("test_loss")) == (1, 1, 5.0)
    lines = axis_table(axis, points).splitlines()
    assert lines[2].endswith("  1 (+1 pruned)") and lines[3].endswith("  1 (+1 pruned)")


def test_a_batched_member_holds_exactly_its_target_after_each_step():
    torch.set_num_threads(1)
    cfgs = [PRESETS["mod-add"].config(p=23, width=32, constrain_norm=n) for n in (0.0, 5.0, 50.0)]
    batch = BatchedTrainer(cfgs, torch.device("cpu"))
    start = batch.evaluate()[0].param_norm
    for _ in range(3):
        batch.train_step()
    free, small, large = (row.param_norm for row in batch.evaluate())
    assert small == pytest.approx(5.0, rel=1e-5) and large == pytest.approx(50.0, rel=1e-5)
    assert free != pytest.approx(start, rel=1e-4)  # the unheld member moves as AdamW moves it
