"""Runs side by side: their labels, `grok-tui watch A B`, and the ghost a restart leaves."""

import json

import numpy as np
import pytest

from grok_tui.cli import main
from grok_tui.compare import fit, labels
from grok_tui.config import PRESETS
from grok_tui.runlog import RunLog
from grok_tui.sources.watched import CurvesFollower, WatchedRun
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.panes.curves import CurvesPane
from grok_tui.ui.panes.plot import SeriesPlot
from tests.conftest import opened, run, status_text, tiny_config, training_past, wait_for
from tests.fakes import synthetic_run

# ---- labels ------------------------------------------------------------------------------------------


def test_a_label_names_the_one_field_that_differs_by_its_short_name():
    a, b = tiny_config(weight_decay=0.05).to_dict(), tiny_config(weight_decay=1.0).to_dict()
    assert labels([a, b]) == ["wd 0.05", "wd 1"]


def test_two_differing_fields_are_named_common_ones_first():
    configs = [tiny_config(seed=s, weight_decay=wd).to_dict() for s, wd in ((0, 0.1), (1, 0.1), (0, 1.0))]
    assert labels(configs) == ["seed 0, wd 0.1", "seed 1, wd 0.1", "seed 0, wd 1"]


def test_short_names_for_the_common_fields_and_full_names_for_the_rest():
    a = tiny_config(train_frac=0.3, init_scale=1.0, beta2=0.98).to_dict()
    b = tiny_config(train_frac=0.5, init_scale=2.0, beta2=0.99).to_dict()
    assert labels([a, b]) == ["frac 0.3, init 1, beta2 0.98", "frac 0.5, init 2, beta2 0.99"]


def test_identical_configs_fall_back_to_the_names_given():
    same = tiny_config().to_dict()
    assert labels([same, dict(same)], ["20240101-a", "20240101-b"]) == ["20240101-a", "20240101-b"]
    assert labels([same, dict(same)]) == ["run 1", "run 2"]


def test_fields_that_do_not_change_a_run_are_no_difference():
    a, b = tiny_config(device="cpu", threads=1).to_dict(), tiny_config(device="cuda", threads=4).to_dict()
    assert labels([a, b], ["x", "y"]) == ["x", "y"]


def test_a_field_only_one_config_has_and_many_differences_stay_short_and_distinct():
    assert labels([{"lr": 0.01}, {"lr": 0.01, "l1": 1e-4}]) == ["l1 -", "l1 0.0001"]
    assert labels([{"lr": 1, "p": 97}, {"lr": 1.0, "p": 97}], ["a", "b"]) == ["a", "b"]  # 1 and 1.0 alike
    many = [
        {"seed": 0, "weight_decay": 1, "lr": 0.1, "width": 64, "l1": 0},
        {"seed": 0, "weight_decay": 1, "lr": 0.1, "width": 64, "l1": 1},
        {"seed": 1, "weight_decay": 2, "lr": 0.2, "width": 32, "l1": 0},
    ]
    assert labels(many) == [
        "seed 0, wd 1, lr 0.1 +2 more #1",
        "seed 0, wd 1, lr 0.1 +2 more #2",
        "seed 1, wd 2, lr 0.2 +2 more",
    ]


def test_runs_of_different_experiments_are_named_by_the_experiment_not_by_what_it_implies():
    mod_add, parity = PRESETS["mod-add"].config().to_dict(), PRESETS["parity"].config().to_dict()
    assert labels([mod_add, parity]) == ["mod-add", "parity"]
    # What an experiment does not say is still named: here a seed of its own.
    seeded = PRESETS["mod-add"].config(seed=1).to_dict()
    assert labels([seeded, parity, mod_add]) == ["mod-add, seed 1", "parity, seed 0", "mod-add, seed 0"]
    # An experiment that is not a preset implies nothing: every field that differs is named.
    custom = {**mod_add, "experiment": "my-add"}
    assert labels([custom, parity]) == [
        "my-add, model sum_mlp, wd 0.3 +3 more",
        "parity, model parity_mlp, wd 0 +3 more",
    ]


def test_namesakes_are_numbered_one_two_in_order_whatever_lies_between_them():
    # Only `l1` (past the fields shown) tells the first and the third apart.
    many = [
        {"seed": 0, "weight_decay": 1, "lr": 0.1, "width": 64, "l1": 0},
        {"seed": 1, "weight_decay": 2, "lr": 0.2, "width": 32, "l1": 0},
        {"seed": 0, "weight_decay": 1, "lr": 0.1, "width": 64, "l1": 1},
    ]
    assert [label.rsplit(" ", 1)[-1] for label in labels(many)] == ["#1", "more", "#2"]
    assert labels([{"lr": 1}, {"lr": 2}, {"lr": 1}, {"lr": 2}], ["a", "b", "c", "d"]) == [
        "lr 1 #1",
        "lr 2 #1",
        "lr 1 #2",
        "lr 2 #2",
    ]


# ---- fitting labels to a legend ----------------------------------------------------------------------------


def test_labels_that_fit_are_left_as_they_are():
    assert fit(["wd 0.05", "wd 1"], 7) == ["wd 0.05", "wd 1"]


def test_fitting_keeps_the_fields_that_tell_the_runs_apart():
    texts = ["seed 0, wd 1, lr 0.1", "seed 0, wd 2, lr 0.1", "seed 1, wd 2, lr 0.2"]
    assert fit(texts, 16) == ["seed 0, wd 1…", "seed 0, wd 2…", "seed 1, wd 2…"]
    assert fit(["seed 0, wd 1, lr 0.1", "seed 0, wd 2, lr 0.1"], 10) == ["wd 1…", "wd 2…"]
    # `+N more` gives way to the ellipsis; the number that tells namesakes apart stays.
    assert fit(["seed 0, wd 1 +2 more #1", "seed 0, wd 1 +2 more #2", "seed 1, wd 2 +2 more"], 16) == [
        "seed 0, wd 1… #1",
        "seed 0, wd 1… #2",
        "seed 1, wd 2…",
    ]


def test_fitting_names_drops_the_start_they_share_and_keeps_a_ghosts_tail():
    assert fit(["20261125-124500-mod-add", "20261125-124501-mod-add"], 12) == ["…0-mod-add", "…1-mod-add"]
    assert fit(["seed 5, wd 0.1, lr 0.01 (previous)", "train", "test"], 20) == [
        "seed 5… (previous)",
        "train",
        "test",
    ]


@pytest.mark.parametrize("width", range(1, 40))
def test_fitted_labels_never_exceed_the_width_and_stay_apart_while_there_is_room(width):
    texts = [
        "experiment mod-add, model sum_mlp, wd 0.3 +3 more",
        "experiment parity, model parity_mlp, wd 0 +3 more",
        "experiment parity, model parity_mlp, wd 0.1 +3 more",
    ]
    out = fit(texts, width)
    assert all(1 <= len(text) <= width for text in out)
    if width >= 12:
        assert len(set(out)) == 3, out


# ---- grok-tui watch A B --------------------------------------------------------------------------------


def write_run(path, rows, **changes):
    """A run directory as a trainer leaves it (config.json, metrics.jsonl, events.jsonl), no checkpoint."""
    log = RunLog(path)
    log.create(tiny_config(steps=3000, **changes).to_dict())
    for row in rows:
        log.metrics(row.to_dict())
    log.flush()
    return path


def legend(app, plot_id):
    return str(app.query_one(f"#{plot_id}", SeriesPlot).render())


def test_watch_overlays_two_runs_with_a_legend_and_follows_the_second_as_it_grows(tmp_path):
    rows, _ = synthetic_run()
    a = write_run(tmp_path / "a", rows, weight_decay=0.05)
    b = write_run(tmp_path / "b", rows[:20], weight_decay=1.0)

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(a, compare=[b]), frame_interval=0.05)
        (other,) = app.home.source.others
        async with opened(app, size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 3000)
            for plot_id in ("loss", "acc"):
                await wait_for(pilot, lambda p=plot_id: "wd 0.05" in legend(app, p) and "wd 1" in legend(app, p))
            assert "comparing 2 runs" in status_text(app)
            plot = app.query_one("#acc", SeriesPlot)
            a_test, b_test = (line for line in plot._lines if line.label)
            assert a_test.color != b_test.color  # run 0 and run 1 of the palette
            assert [line.marker for line in plot._lines] == ["dot", None, "dot", None]  # train dotted
            assert other.history.last_step == rows[19].step
            with open(b / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rows[20].to_dict()) + "\n")
            await wait_for(pilot, lambda: other.history.last_step == rows[20].step)
            await wait_for(pilot, lambda: plot._lines[2].x[-1] == rows[20].step)
            await pilot.press("q")

    run(scenario())


def run_cli(capsys, *argv):
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err


def test_watch_refuses_a_directory_that_is_not_a_run_among_several(capsys, tmp_path):
    rows, _ = synthetic_run(steps=100)
    a = write_run(tmp_path / "a", rows)
    (tmp_path / "empty").mkdir()
    code, err = run_cli(capsys, "watch", str(a), str(tmp_path / "empty"))
    assert code == 2 and err.count("\n") == 1 and "empty" in err and "config.json" in err
    assert "Traceback" not in err


def test_watch_refuses_the_same_run_twice(capsys, tmp_path, monkeypatch):
    rows, _ = synthetic_run(steps=100)
    write_run(tmp_path / "a", rows)
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "watch", "a", "./a")
    assert code == 2 and err.count("\n") == 1 and "the same run as 'a'" in err


# ---- the ghost after `r` ----------------------------------------------------------------------------------


def test_restart_keeps_the_previous_run_as_one_faded_ghost(live_app):
    async def scenario():
        app = live_app(seed=5)
        async with opened(app) as pilot:
            await training_past(pilot, app, 50)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.home.source.config["seed"] == 6 and app.home.snapshot is not None)
            ghost = app.home.ghost
            assert ghost is not None and ghost.label == "seed 5 (previous)" and ghost.faded
            old_steps = ghost.series("test_acc").steps
            assert old_steps[-1] >= 50 and len(old_steps) <= 2048  # a frozen copy, bounded like History
            plot = app.query_one(CurvesPane).query_one("#acc", SeriesPlot)
            await wait_for(
                pilot, lambda: [line.label for line in plot._lines] == ["", "seed 5 (previous)", "train", "test"]
            )
            behind, own = plot._lines[1], plot._lines[3]
            assert np.array_equal(behind.x, old_steps) and behind.color != own.color  # faded, drawn first
            await wait_for(pilot, lambda: "seed 5 (previous)" in legend(app, "acc"))
            await training_past(pilot, app, 20)
            assert np.array_equal(app.home.ghost.series("test_acc").steps, old_steps)  # the new run leaves it be

            await pilot.press("r")  # a second restart: the ghost is now the run just left, and only it
            await wait_for(pilot, lambda: app.home.source.config["seed"] == 7 and app.home.snapshot is not None)
            assert app.home.ghost.label == "seed 6 (previous)"
            await wait_for(pilot, lambda: [line.label for line in plot._lines][1::2] == ["seed 6 (previous)", "test"])
            await pilot.press("q")

    run(scenario())


def test_a_compared_run_skips_bad_records_and_says_so_once(tmp_path):
    rows, _ = synthetic_run(steps=200)
    b = write_run(tmp_path / "b", rows[:2])
    follower = CurvesFollower(b, "b")
    assert follower.poll() and follower.history.last_step == rows[1].step
    assert not follower.poll()  # nothing new: nothing to redraw
    with open(b / "metrics.jsonl", "a") as f:
        for bad in ({"test_acc": "x"}, {"step": -1}):
            f.write(json.dumps({**rows[2].to_dict(), **bad}) + "\n")
        f.write(json.dumps(rows[3].to_dict()) + "\n")
    assert follower.poll() and follower.history.last_step == rows[3].step
    (notice,) = follower.take_notices()
    assert "metrics.jsonl: test_acc: 'x'" in notice and follower.take_notices() == []


def test_the_cli_names_each_run_by_what_differs(capsys, tmp_path, monkeypatch):
    import grok_tui.ui.app as app_module
    from grok_tui.ui.app import MonitorApp

    rows, _ = synthetic_run(steps=100)
    a, b = write_run(tmp_path / "a", rows, weight_decay=0.05), write_run(tmp_path / "b", rows, weight_decay=1.0)
    c = write_run(tmp_path / "c", rows, weight_decay=1.0)
    built = []
    monkeypatch.setattr(app_module, "run_monitor", lambda home, theme=None: built.append(MonitorApp(home)) or 0)
    assert run_cli(capsys, "watch", str(a), str(b)) == (0, "")
    assert built[0].home.source.label == "wd 0.05" and [o.label for o in built[0].home.source.others] == ["wd 1"]
    assert run_cli(capsys, "watch", str(b), str(c)) == (0, "")  # the same config: the directory names
    assert built[1].home.source.label == "b" and [o.label for o in built[1].home.source.others] == ["c"]
    assert run_cli(capsys, "watch", str(a)) == (0, "")  # one run: as ever, no legend of runs
    assert built[2].home.source.label is None and built[2].home.source.others == []


def legend_labels(app, plot_id):
    return [line.label for line in app.query_one(f"#{plot_id}", SeriesPlot)._lines if line.label]


def watched_app(capsys, monkeypatch, *run_dirs):
    """The app `grok-tui watch RUN_DIR ...` builds, to be run under the Pilot."""
    import grok_tui.ui.app as app_module

    built = []
    monkeypatch.setattr(app_module, "run_monitor", lambda home, theme=None: built.append(MonitorApp(home)) or 0)
    assert run_cli(capsys, "watch", *map(str, run_dirs)) == (0, "")
    built[0].home.frame_interval = 0.05
    return built[0]


def write_preset_run(path, rows, experiment):
    log = RunLog(path)
    log.create(PRESETS[experiment].config(steps=3000).to_dict())
    for row in rows:
        log.metrics(row.to_dict())
    log.flush()
    return path


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_watching_runs_of_different_experiments_shows_a_legend_that_names_them(capsys, monkeypatch, tmp_path, size):
    rows, _ = synthetic_run()
    a, b = (write_preset_run(tmp_path / name, rows, name) for name in ("mod-add", "parity"))
    app = watched_app(capsys, monkeypatch, a, b)

    async def scenario():
        async with app.run_test(size=size) as pilot:
            for plot_id in ("loss", "acc"):
                await wait_for(pilot, lambda p=plot_id: legend_labels(app, p) == ["mod-add", "parity"])
                await wait_for(pilot, lambda p=plot_id: "mod-add" in legend(app, p) and "parity" in legend(app, p))
            await pilot.press("q")

    run(scenario())


def test_a_legend_too_wide_for_its_plot_is_shortened_not_dropped_and_widens_again(capsys, monkeypatch, tmp_path):
    rows, _ = synthetic_run()
    wide = dict(p=29, train_frac=0.4, width=24, init_scale=2.0, beta2=0.99)
    a = write_run(tmp_path / "a", rows, experiment="tiny-one")
    b = write_run(tmp_path / "b", rows, experiment="tiny-two", **wide)
    app = watched_app(capsys, monkeypatch, a, b)
    full = [app.home.source.label, app.home.source.others[0].label]
    assert full == ["tiny-one, p 23, frac 0.5 +3 more", "tiny-two, p 29, frac 0.4 +3 more"]

    def shown_whole(plot_id, texts):
        drawn = legend(app, plot_id)
        return legend_labels(app, plot_id) == texts and all(text in drawn for text in texts)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            for plot_id in ("loss", "acc"):
                await wait_for(pilot, lambda p=plot_id: legend_labels(app, p) not in ([], full))
                short = legend_labels(app, plot_id)
                assert len(set(short)) == 2 and all(text.endswith("…") for text in short), short
                assert all(text in legend(app, plot_id) for text in short)  # drawn, not dropped
            await pilot.resize_terminal(200, 60)  # room again: the whole labels come back
            for plot_id in ("loss", "acc"):
                await wait_for(pilot, lambda p=plot_id: shown_whole(p, full))
            await pilot.press("q")

    run(scenario())


def test_two_runs_of_one_config_among_others_are_numbered_one_and_two(capsys, monkeypatch, tmp_path):
    rows, _ = synthetic_run(steps=100)
    a = write_run(tmp_path / "a", rows, weight_decay=0.05)
    b = write_run(tmp_path / "b", rows, weight_decay=1.0)
    c = write_run(tmp_path / "c", rows, weight_decay=0.05)
    app = watched_app(capsys, monkeypatch, a, b, c)
    assert [app.home.source.label, *(other.label for other in app.home.source.others)] == [
        "wd 0.05 #1",
        "wd 1",
        "wd 0.05 #2",
    ]


def test_a_sweep_named_among_runs_is_called_a_sweep_and_its_members_offered(capsys, monkeypatch, tmp_path):
    from grok_tui.sweep.phases import PhaseRule
    from grok_tui.sweep.store import create_sweep

    rows, _ = synthetic_run(steps=100)
    a = write_run(tmp_path / "a", rows)
    sweep = tmp_path / "s"
    info = create_sweep(sweep, "mod-add", {"weight_decay": [0.1, 1.0], "steps": [100]}, PhaseRule(), 1)
    for argv in ((a, sweep), (sweep, a)):
        code, err = run_cli(capsys, "watch", *map(str, argv))
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert f"watch '{sweep}': a sweep, not a run; grok-tui watch {sweep} opens it on its own" in err
        assert f"{sweep}/members/NAME (such as {sweep}/members/wd=0.1)" in err
        assert "config.json" not in err
    # What it offers works: a member beside a run.
    app = watched_app(capsys, monkeypatch, a, info.member_dir(info.grid.members[0]))
    assert len(app.home.source.others) == 1
