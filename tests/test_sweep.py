"""Sweeps: the grid, the batched engine against single runs, the sweep directory, resume, bad axes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from grok_tui.cli import main
from grok_tui.config import PRESETS
from grok_tui.runlog import read_jsonl
from grok_tui.sweep.grid import GridError, build_grid
from grok_tui.sweep.shard import ShardSpec, train_shard
from grok_tui.sweep.store import MEMBERS, SweepFollower, read_sweep
from grok_tui.sweep.text import diagram
from grok_tui.train.batched import BatchedTrainer
from grok_tui.train.snapshot import Metrics
from grok_tui.train.trainer import Trainer
from tests.conftest import wait_until
from tests.processes import wait_while_running

# Small enough to train a few members to memorization in seconds.
SMALL = ["--p", "23", "--width", "32", "--eval-every", "10"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_rows_close(batched, single, n_test):
    assert batched.step == single.step
    for key in ("train_loss", "test_loss", "param_norm"):
        a, b = getattr(batched, key), getattr(single, key)
        assert abs(a - b) <= 1e-3 * abs(b) + 1e-5, (key, a, b)
    # An example on the edge may flip between float orders: at most one either way.
    assert abs(batched.test_acc - single.test_acc) <= 1.0 / n_test + 1e-6
    assert abs(batched.train_acc - single.train_acc) <= 0.01


@pytest.mark.parametrize(
    "preset, members",
    [
        # Members differing in weight decay, seed and train fraction (so in data, padded to the longest).
        ("mod-add", [dict(weight_decay=0.3, seed=0), dict(weight_decay=1.0, seed=1, train_frac=0.4), dict(lr=3e-3)]),
        # Kitouni's concat MLP: its own stacked forward (models/concat.py), as sum_mlp has.
        ("concat-sub", [dict(seed=0), dict(seed=1, train_frac=0.5, weight_decay=1.0)]),
        # A regression task with MSE, and parity with its L1 penalty (per member).
        ("teacher-student", [dict(seed=0), dict(seed=1, weight_decay=0.5)]),
        ("parity", [dict(l1=3e-5, seed=0), dict(l1=1e-4, seed=1, n_train=600)]),
        # A weight norm held per member (Omnigrok's LU sweep), beside a member that holds none.
        ("mod-add", [dict(constrain_norm=40.0), dict(seed=1), dict(constrain_norm=150.0, weight_decay=0.0, seed=1)]),
        ("teacher-student", [dict(constrain_norm=4.0, weight_decay=0.0), dict(constrain_norm=20.0, seed=1)]),
        # A learning-rate warm-up per member (transformer-add's, Nanda et al.'s), beside a member with none.
        ("mod-add", [dict(warmup_steps=10), dict(warmup_steps=30, seed=1, lr=3e-3), dict(seed=2)]),
    ],
)
def test_batched_members_equal_single_runs(preset, members):
    torch.set_num_threads(1)
    base = PRESETS[preset].config(steps=60)
    cfgs = [base.replace(**m) for m in members]
    batch = BatchedTrainer(cfgs, torch.device("cpu"))
    singles = [Trainer(cfg) for cfg in cfgs]
    for step in range(1, 61):
        batch.train_step()
        for single in singles:
            single.train_step()
        if step % 20 == 0:
            for row, single in zip(batch.evaluate(), singles, strict=True):
                assert_rows_close(row, single.evaluate(), len(single.data.y_test))


def test_grid_axes_members_and_batches():
    grid = build_grid("mod-add", {"weight_decay": [0.1, 1.0], "width": [32, 64], "seed": [0, 1, 2], "steps": [10]})
    assert [a.field for a in grid.axes] == ["weight_decay", "width", "seed"]
    assert len(grid.members) == 12
    assert grid.members[0].name(grid.axes) == "wd=0.1,width=32,seed=0"
    assert {m.cfg.steps for m in grid.members} == {10}
    # A width axis changes the model's shape: two batches of six.
    assert sorted(len(b) for b in grid.batches()) == [6, 6]
    assert all(len({m.cfg.width for m in b}) == 1 for b in grid.batches())
    shards = grid.shards(2)
    assert sorted(len(s) for s in shards) == [3, 3, 3, 3]
    assert sorted(m.index for s in shards for m in s) == list(range(12))


@pytest.mark.parametrize(
    "values, words",
    [
        ({"steps": [10, 20]}, "--steps cannot be an axis"),
        ({"weight_decay": [0.1, 0.1]}, "given twice"),
        ({"weight_decay": [0.1, -1.0]}, "--weight-decay: -1.0 is not allowed for the member wd=-1"),
        ({"train_size": [10]}, "--train-size"),
        ({"op": ["+\n", "+\n"]}, r"--op: a value is given twice in '\+\\n','\+\\n'$"),  # one line, whatever it holds
        ({"seed": list(range(1001)), "weight_decay": [i / 1000 for i in range(1000)]}, "a sweep of 1,001,000 members"),
    ],
)
def test_bad_grids_name_the_flag(values, words):
    with pytest.raises(GridError, match=words):
        build_grid("mod-add", values)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--weight-decay", "0.1,,1"], "--weight-decay: '0.1,,1' has an empty value"),
        (["--weight-decay", "0.1,x"], "--weight-decay: 'x' is not allowed"),
        (["--experiment", "nope"], "--experiment: 'nope' is not a preset"),
        (["--wait-decay", "1"], "unrecognized arguments"),
        (["--steps", "10,20"], "--steps cannot be an axis"),
        (["--phase-rule", "vibes"], "--phase-rule: 'vibes'"),
        (["--phase-level", "2"], "--phase-level: 2.0 is not allowed"),
        (["--phase-level", "most"], "--phase-level: 'most' is not allowed; expected a number in (0, 1]"),
        (["--phase-gap", "1.5"], "--phase-gap: '1.5' is not allowed; expected an integer number of steps >= 0"),
        (["--experiment", ""], "--experiment: '' is not a preset"),  # refused, not defaulted
        (["--workers", "0"], "--workers: '0'"),
        (["--width", "100000,2"], "--width: 100000"),
        (["--map", "treasure"], "--map: 'treasure' is not a map"),
    ],
)
def test_bad_sweep_flags_give_one_line_and_status_2(capsys, tmp_path, argv, words):
    code, out, err = run_cli(capsys, "sweep", "--headless", "--sweep-dir", str(tmp_path / "s"), *argv)
    assert code == 2
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--weight-decay", "0.1"], "--weight-decay"),
        (["--workers", "2"], "--workers"),
        (["--map", "wd-frac"], "--map"),
        (["--semi-rise", "0.2"], "--semi-rise"),
    ],
)
def test_a_resumed_sweep_refuses_any_flag_that_would_change_it_by_name(capsys, tmp_path, argv, flag):
    code, _, err = run_cli(capsys, "sweep", "--headless", "--resume", str(tmp_path / "s"), *argv)
    assert code == 2 and f"--resume keeps the sweep as it was created; leave out {flag}" in err


def test_a_maps_value_lists_give_way_to_the_flags_given_beside_it():
    from grok_tui.sweep.maps import MAPS
    from grok_tui.sweep.plan import PlanError, with_map

    experiment, values = with_map("wd-frac", None, {"weight_decay": [1.0], "lr": [3e-3, 1e-2]})
    wd_frac = MAPS["wd-frac"]
    assert experiment == wd_frac.experiment
    assert list(values) == [*wd_frac.values, "lr"]  # the map's axes keep their order; a new one goes after
    assert values["weight_decay"] == [1.0] and values["train_frac"] == wd_frac.values["train_frac"]
    assert with_map("wd-frac", "mod-mul", {})[0] == "mod-mul"
    assert with_map(None, None, {"seed": [0, 1]}) == ("mod-add", {"seed": [0, 1]})
    with pytest.raises(PlanError, match="--map: 'treasure' is not a map; expected one of wd-frac"):
        with_map("treasure", None, {})


def test_a_sweep_that_will_not_fit_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("grok_tui.train.memory.available_bytes", lambda device: 50 * 2**20)
    code, _, err = run_cli(
        capsys, "sweep", "--headless", "--seed", "0,1,2,3,4,5,6,7", "--sweep-dir", str(tmp_path / "s")
    )
    assert code == 2 and "the sweep needs about" in err and "a member" in err and "--workers 1" in err
    assert not (tmp_path / "s").exists()


def test_headless_sweep_writes_the_directory_and_members_equal_single_runs(capsys, tmp_path):
    root = tmp_path / "s"
    argv = ["sweep", "--headless", "--sweep-dir", str(root), *SMALL, "--workers", "2"]
    code, out, err = run_cli(capsys, *argv, "--weight-decay", "0.3,1", "--seed", "0,1", "--steps", "200")
    assert code == 0, err
    assert "phases: wd across; each cell one letter per seed value" in out and "4/4 members done" in out
    info = read_sweep(root)
    records = read_jsonl(root / MEMBERS)
    assert [r["name"] for r in records] == ["wd=0.3,seed=0", "wd=0.3,seed=1", "wd=1,seed=0", "wd=1,seed=1"]
    for record in records:
        assert record["finished"] and record["step"] == 200
        assert record["phase"] in ("comprehension", "grokking", "memorization", "confusion", "semi-grokking")
        assert set(record) >= {"train_90", "train_95", "train_99", "test_90", "test_95", "test_99", "test_acc"}
    # Every member is a run directory that watch (and pandas) can read, and its curve is the single run's.
    for member in info.grid.members[::3]:
        member_dir = info.member_dir(member)
        rows = read_jsonl(member_dir / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(0, 201, 10))
        single = Trainer(member.cfg)
        for row in rows[1:]:
            while single.step < row["step"]:
                single.train_step()
            expected = single.evaluate()
            assert abs(row["train_loss"] - expected.train_loss) <= 2e-3 * expected.train_loss + 1e-5
            assert abs(row["test_acc"] - expected.test_acc) <= 0.01
    # A member's checkpoint is its single run's: watch shows its weights, and --resume trains it on alone.
    member_dir = info.member_dir(info.grid.members[0])
    code, out, err = run_cli(capsys, "--headless", "--resume", str(member_dir), "--steps", "250")
    assert code == 0, err
    assert [r["step"] for r in read_jsonl(member_dir / "metrics.jsonl")] == list(range(0, 251, 10))  # none twice


def test_diagram_layout():
    grid_values = {"weight_decay": [0.1, 1.0], "train_frac": [0.2, 0.5], "seed": [0, 1]}
    info = type("I", (), {"grid": build_grid("mod-add", grid_values)})()
    phases = {0.1: "memorization", 1.0: "grokking"}
    records = [
        {"values": m.values, "phase": phases[m.values["weight_decay"]] if m.values["seed"] == 0 else None}
        for m in info.grid.members
    ]
    lines = diagram(info, records).splitlines()
    assert lines[0] == "phases: wd across, frac down; each cell one letter per seed value"
    assert lines[1].split("|")[1].split() == ["0.1", "1"]
    assert [line.split("|")[0].strip() for line in lines[3:5]] == ["0.5", "0.2"]  # larger values up
    assert lines[3].split("|")[1].split() == ["M.", "G."]


def test_follower_reads_a_sweep_as_it_grows(tmp_path):
    from grok_tui.sweep.phases import PhaseRule
    from grok_tui.sweep.store import create_sweep, write_members

    root = tmp_path / "s"
    info = create_sweep(root, "mod-add", {"weight_decay": [0.1, 1.0], "steps": [100]}, PhaseRule(), 1)
    follower = SweepFollower(root)
    assert not follower.poll() and follower.view().done_steps == 0
    log_dir = info.member_dir(info.grid.members[1])
    with open(log_dir / "metrics.jsonl", "a") as f:
        for step, train, test in ((0, 0.0, 0.0), (10, 0.95, 0.1), (20, 1.0, 0.5), (50, 1.0, 0.97)):
            row = Metrics(step, 1.0, train, 2.0, test, 30.0, 1.0, 1e-2, 0.0, step / 10, 10.0)
            f.write(json.dumps(row.to_dict()) + "\n")
    assert follower.poll()
    view = follower.view()
    assert [m.step for m in view.members] == [0, 50]
    assert view.members[1].phase == "grokking" and view.members[0].phase is None
    assert view.done_steps == 50 and view.eta_s() == pytest.approx(15.0)
    write_members(root, [{"index": 1, "name": view.members[1].name, "finished": True}])
    assert follower.poll() and follower.view().members[1].finished


def _sweep_process(root, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root.parent,
    )


def test_a_killed_sweep_resumes_where_its_shards_checkpointed(tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    argv = [*SMALL, "--weight-decay", "0.3,1", "--steps", "1500", "--workers", "1", "--checkpoint-every", "0.2"]
    process = _sweep_process(killed, "--sweep-dir", str(killed), *argv)
    checkpoint = killed / "shards" / "shard-0.pt"
    wait_while_running(
        process, lambda: checkpoint.exists() and len(read_jsonl(killed / "members" / "wd=1" / "metrics.jsonl")) > 20
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    resumed = _sweep_process(killed, "--resume", str(killed))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "2/2 members done" in out
    done = subprocess.run(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--sweep-dir", str(whole), *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for name in ("wd=0.3", "wd=1"):
        a = read_jsonl(killed / "members" / name / "metrics.jsonl")
        b = read_jsonl(whole / "members" / name / "metrics.jsonl")
        assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(0, 1501, 10))
        # From the checkpoint on the same computation runs again: the same numbers.
        for x, y in zip(a, b, strict=True):
            assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4, abs=1e-7)
            assert x["test_acc"] == pytest.approx(y["test_acc"], abs=1e-6)
    assert [r["phase"] for r in read_jsonl(killed / MEMBERS)] == [r["phase"] for r in read_jsonl(whole / MEMBERS)]


def test_map_wd_frac_puts_the_phases_where_the_seeds_do(capsys, tmp_path):
    """The wd-frac map on a grid small enough for seconds (a+b mod 23): memorization below a critical
    training fraction, grokking at moderate weight decay with enough data, comprehension (no delay)
    with more data, confusion at too much weight decay (PAIR; Liu et al.; Omnigrok)."""
    root = tmp_path / "s"
    code, out, err = run_cli(
        capsys,
        *("sweep", "--headless", "--map", "wd-frac", "--sweep-dir", str(root), "--p", "23", "--width", "64"),
        *("--weight-decay", "0.01,1,5", "--train-frac", "0.2,0.8,0.9", "--seed", "0", "--steps", "2000"),
        *("--phase-gap", "200"),
    )
    assert code == 0, err
    phase = {r["name"]: r["phase"] for r in read_jsonl(root / MEMBERS)}
    assert phase["wd=0.01,frac=0.2"] == phase["wd=1,frac=0.2"] == "memorization"
    assert phase["wd=1,frac=0.8"] == "grokking"
    assert phase["wd=1,frac=0.9"] == "comprehension"
    assert phase["wd=5,frac=0.2"] == phase["wd=5,frac=0.8"] == "confusion"
    assert phase["wd=0.01,frac=0.8"] in ("memorization", "semi-grokking")


def test_time_to_generalize_falls_as_weight_decay_rises(capsys, tmp_path):
    """Omnigrok: the time to generalize goes as ~1/weight decay. On a+b mod 23 with 80% train, from
    wd 0.1 to wd 1 it falls monotonically (per seed-median) and by well over half a decade's slope."""
    import math

    root = tmp_path / "s"
    code, _, err = run_cli(
        capsys,
        *("sweep", "--headless", "--sweep-dir", str(root), "--p", "23", "--width", "64", "--train-frac", "0.8"),
        *("--weight-decay", "0.1,0.3,1", "--seed", "0,1", "--steps", "2000"),
    )
    assert code == 0, err
    records = read_jsonl(root / MEMBERS)
    times = {}
    for wd in (0.1, 0.3, 1.0):
        steps = sorted(r["test_90"] for r in records if r["values"]["weight_decay"] == wd)
        assert all(s is not None for s in steps), (wd, steps)
        times[wd] = sum(steps) / len(steps)
    assert times[0.1] > times[0.3] > times[1.0]
    slope = math.log(times[1.0] / times[0.1]) / math.log(10)
    assert slope < -0.3, times


def test_map_parity_l1_data_puts_the_phases_where_pair_does(capsys, tmp_path):
    """PAIR's sparse parity: without L1 weight decay the net memorizes, a little L1 groks, more
    generalizes at once, far too much learns nothing."""
    root = tmp_path / "s"
    code, _, err = run_cli(
        capsys,
        *("sweep", "--headless", "--map", "parity-l1-data", "--sweep-dir", str(root), "--seed", "0"),
        *("--l1", "0,1e-5,1e-4,1e-2", "--n-train", "600"),
    )
    assert code == 0, err
    phase = {r["values"]["l1"]: r["phase"] for r in read_jsonl(root / MEMBERS)}
    assert phase == {0.0: "memorization", 1e-5: "grokking", 1e-4: "comprehension", 1e-2: "confusion"}


def test_map_parity_pair_puts_the_phases_where_pair_does(capsys, tmp_path):
    """PAIR's own sweep (weight decay, not L1), cut to four members and 1,500 steps: at the same weight
    decay a narrow model groks where a wide one still memorizes; far more weight decay leaves the
    narrow one learning nothing. Grokking is contingent on size and weight decay alike."""
    root = tmp_path / "s"
    code, _, err = run_cli(
        capsys,
        *("sweep", "--headless", "--map", "parity-pair", "--sweep-dir", str(root), "--seed", "0"),
        *("--weight-decay", "0.03,3", "--width", "16,128", "--n-train", "1500", "--steps", "1500"),
    )
    assert code == 0, err
    phase = {(r["values"]["weight_decay"], r["values"]["width"]): r["phase"] for r in read_jsonl(root / MEMBERS)}
    assert phase[0.03, 16] == "grokking"
    assert phase[0.03, 128] == "memorization"
    assert phase[3.0, 16] == "confusion"


def test_map_init_data_puts_the_phases_where_omnigrok_does(capsys, tmp_path):
    """Omnigrok: at the standard init the student generalizes as it fits; a large init makes it grok;
    a much larger one memorizes for the whole budget."""
    root = tmp_path / "s"
    code, _, err = run_cli(
        capsys,
        *("sweep", "--headless", "--map", "init-data", "--sweep-dir", str(root), "--seed", "0"),
        *("--init-scale", "1,2,5", "--n-train", "100"),
    )
    assert code == 0, err
    phase = {r["values"]["init_scale"]: r["phase"] for r in read_jsonl(root / MEMBERS)}
    assert phase == {1.0: "comprehension", 2.0: "grokking", 5.0: "memorization"}


def test_detach_then_stop_a_sweep(capsys, tmp_path):
    from grok_tui.process import read_record, running_pid

    root = tmp_path / "s"
    code, out, err = run_cli(
        capsys, "sweep", "--detach", "--sweep-dir", str(root), *SMALL, "--seed", "0,1", "--steps", "1000000"
    )
    assert code == 0, err
    assert f"grok-tui watch {root}" in out and f"grok-tui stop {root}" in out
    wait_until(lambda: running_pid(root) is not None and read_jsonl(root / "members" / "seed=1" / "metrics.jsonl"))
    code, out, err = run_cli(capsys, "sweep", "--headless", "--resume", str(root))
    assert code == 2 and "it is training now" in err
    code, out, err = run_cli(capsys, "stop", str(root))
    assert code == 0 and "stopped" in out and f"grok-tui sweep --resume {root}" in out, err
    assert running_pid(root) is None and read_record(root)["state"] == "stopped"
    assert (root / "shards" / "shard-0.pt").exists()  # checkpointed on the way out
    code, out, err = run_cli(capsys, "stop", str(root))
    assert code == 1 and "nothing to stop" in err
    code, out, _ = run_cli(capsys, "ls", str(tmp_path))
    line = next(line for line in out.splitlines() if line.startswith("s "))
    assert "sweep of 2 mod-add" in line and "stopped" in line and "of 2,000,000" in line


def test_seeds_are_blocks_in_a_cell_never_an_axis_of_the_diagram():
    from grok_tui.sweep.text import map_axes

    grid = build_grid("mod-add", {"seed": [0, 1], "weight_decay": [0.1, 1.0]})
    assert [a.field for a in grid.axes] == ["weight_decay", "seed"]  # seeds innermost, however typed
    x, y, rest = map_axes(grid.axes)
    assert (x.field, y, [a.field for a in rest]) == ("weight_decay", None, ["seed"])
    seeds = build_grid("mod-add", {"seed": [0, 1, 2]})
    x, y, rest = map_axes(seeds.axes)
    assert (x, y, [a.field for a in rest]) == (None, None, ["seed"])
    records = [{"values": m.values, "phase": "grokking"} for m in seeds.members]
    text = diagram(type("I", (), {"grid": seeds})(), records)
    assert text.splitlines()[0] == "phases: one cell; each cell one letter per seed value"
    assert "GGG" in text and "None" not in text


def test_a_shard_whose_worker_dies_is_marked_failed_and_the_rest_goes_on(tmp_path):
    import psutil

    root = tmp_path / "s"
    argv = [*SMALL, "--weight-decay", "0.3,1", "--steps", "1500", "--workers", "2"]
    process = _sweep_process(root, "--sweep-dir", str(root), *argv)
    wait_while_running(process, lambda: len(read_jsonl(root / "members" / "wd=0.3" / "metrics.jsonl")) >= 5)
    children = psutil.Process(process.pid).children()
    workers = sorted((p for p in children if "spawn_main" in " ".join(p.cmdline())), key=lambda p: p.pid)
    assert len(workers) == 2
    workers[0].kill()  # the first shard's worker (started first): wd=0.3
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "shard 0: its worker died (exit status -9)" in err and "Traceback" not in err
    records = {r["name"]: r for r in read_jsonl(root / MEMBERS)}
    assert records["wd=0.3"]["failed"] == "its worker died (exit status -9)" and not records["wd=0.3"]["finished"]
    assert records["wd=1"]["finished"] and records["wd=1"]["failed"] is None  # the other shard went on
    assert "! failed" in out
    follower = SweepFollower(root)
    follower.poll()
    assert [m.phase == "failed" for m in follower.view().members] == [True, False]


def test_a_damaged_shard_checkpoint_trains_that_shard_again_from_the_start(capsys, tmp_path):
    root = tmp_path / "s"
    argv = ["sweep", "--headless", "--sweep-dir", str(root), *SMALL, "--weight-decay", "0.3,1", "--steps", "100"]
    assert run_cli(capsys, *argv, "--workers", "2")[0] == 0
    (root / "shards" / "shard-0.pt").write_bytes(b"\x80\x04 not a checkpoint")
    code, out, err = run_cli(capsys, "sweep", "--headless", "--resume", str(root))
    assert code == 0, err
    assert err.splitlines() == [  # said once, naming the file, not retrained silently
        f"grok-tui: warning: {root / 'shards' / 'shard-0.pt'}: is not a readable checkpoint (UnpicklingError); "
        "shard 0 trains again from step 0"
    ]
    for name in ("wd=0.3", "wd=1"):
        assert [r["step"] for r in read_jsonl(root / "members" / name / "metrics.jsonl")] == list(range(0, 101, 10))
    assert all(r["finished"] for r in read_jsonl(root / MEMBERS))


def test_ctrl_c_in_the_terminal_stops_the_sweep_cleanly(tmp_path):
    """Ctrl-C reaches the terminal's whole process group: the workers leave it to the driver, which has
    every shard checkpoint before it ends; the sweep then resumes to the end."""
    root = tmp_path / "s"
    argv = ["--sweep-dir", str(root), *SMALL, "--weight-decay", "0.3,1", "--steps", "3000", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,  # a process group of its own, as a terminal's job is
    )
    wait_while_running(process, lambda: len(read_jsonl(root / "members" / "wd=1" / "metrics.jsonl")) >= 10)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err and "error" not in err
    assert sorted(p.name for p in (root / "shards").iterdir()) == ["shard-0.pt", "shard-1.pt"]
    code = subprocess.run(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--resume", str(root)], cwd=tmp_path, timeout=120
    ).returncode
    assert code == 0
    assert all(r["finished"] and r["step"] == 3000 for r in read_jsonl(root / MEMBERS))


def test_a_shard_trains_members_of_one_data_size_in_one_chunk_and_each_row_is_its_own_members():
    # Four members of two fractions, interleaved, in chunks of two: each chunk holds one fraction (no
    # padding), and each member's rows are its own single run's.
    torch.set_num_threads(1)
    base = PRESETS["mod-add"].config(p=23, width=32, steps=20, eval_every=10)
    cfgs = tuple(base.replace(seed=i, train_frac=(0.3, 0.6)[i % 2]) for i in range(4))
    messages: list = []
    train_shard(ShardSpec(0, (10, 11, 12, 13), cfgs, chunk=2), messages.append)
    rows = {member: row for kind, _, *rest in messages if kind == "rows" for member, row in rest[0]}
    assert sorted(rows) == [10, 11, 12, 13]
    for member, cfg in zip((10, 11, 12, 13), cfgs, strict=True):
        single = Trainer(cfg)
        for _ in range(20):
            single.train_step()
        want = single.evaluate()
        assert rows[member]["train_size"] == want.train_size
        assert_rows_close(Metrics.from_dict(rows[member]), want, len(single.data.y_test))


def test_a_shard_checkpoint_whose_chunks_hold_other_members_is_named_and_not_loaded(tmp_path):
    torch.set_num_threads(1)
    base = PRESETS["mod-add"].config(p=23, width=32, steps=10, eval_every=10)
    cfgs = tuple(base.replace(seed=i, train_frac=(0.3, 0.6)[i % 2]) for i in range(4))
    spec = ShardSpec(0, (0, 1, 2, 3), cfgs, checkpoint=tmp_path / "shard-0.pt", chunk=2)
    messages: list = []
    train_shard(spec, messages.append)
    state = torch.load(io.BytesIO(next(m[2] for m in messages if m[0] == "checkpoint")), weights_only=True)
    assert state["grouping"] == [[0, 2], [1, 3]]
    # Chunks of equal shapes, so only the grouping tells that member 1's weights would land on member 2.
    torch.save({**state, "grouping": [[0, 1], [2, 3]]}, spec.checkpoint)
    messages.clear()
    train_shard(spec, messages.append, stopped=lambda: True)
    warnings = [m[2] for m in messages if m[0] == "warning"]
    assert len(warnings) == 1 and "holds this shard's members in other chunks" in warnings[0]
    assert ("start", 0, 0) in messages
