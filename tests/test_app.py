"""The monitor driven through Textual's Pilot, over a real (threaded) trainer or a fixed stream."""

import dataclasses
import json
import resource
import signal
import time

import numpy as np
import pytest
import torch
from textual import events

from grok_tui.history import History
from grok_tui.runlog import read_jsonl
from grok_tui.sources.attached import AttachedRun
from grok_tui.sources.in_process import InProcessRun
from grok_tui.sources.manual import ManualSource
from grok_tui.sources.watched import WatchedRun
from grok_tui.train import new_run
from grok_tui.train.control import SetHyper
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.screens.value_input import ValueInput
from tests.conftest import notes, opened, run, status_text, tiny_config, training_past, wait_for
from tests.fakes import synthetic_run


def fake_app(**session_kwargs) -> MonitorApp:
    """The app over a fixed synthetic run: no trainer, fully deterministic."""
    return MonitorApp.for_run(ManualSource(*synthetic_run(), **session_kwargs))


def test_weight_decay_key_reaches_the_trainer_and_the_status(tmp_path, live_app):
    async def scenario():
        app = live_app(weight_decay=0.25)
        async with opened(app) as pilot:
            await training_past(pilot, app, 20)
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: app.home.snapshot.metrics.weight_decay == 0.5)
            await wait_for(pilot, lambda: "wd 0.5" in status_text(app))
            await pilot.press("left_square_bracket", "left_square_bracket")
            await wait_for(pilot, lambda: app.home.snapshot.metrics.weight_decay == 0.125)
            await pilot.press("q")
        events = read_jsonl(tmp_path / "run" / "events.jsonl")
        assert [(e["kind"], e["old"], e["new"]) for e in events] == [
            ("weight_decay", 0.25, 0.5),
            ("weight_decay", 0.5, 0.25),
            ("weight_decay", 0.25, 0.125),
        ]
        assert events[0]["step"] > 0

    run(scenario())


@pytest.mark.parametrize(
    "typed, says",
    [
        ("", "empty"),
        ("abc", "not a number"),
        ("-1", ">= 0"),
        ("inf", "finite"),
        ("nan", "finite"),
    ],
)
def test_weight_decay_modal_rejects_bad_values(typed, says):
    async def scenario():
        rows, snapshot = synthetic_run()
        source = ManualSource(rows, snapshot, steerable=True)
        app = MonitorApp.for_run(source)
        async with opened(app) as pilot:
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, ValueInput))
            field = app.screen.query_one("#value")
            field.value = typed
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ValueInput)  # still open
            assert says in str(app.screen.query_one("#error").render())
            field.value = "0.05"
            await pilot.press("enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, ValueInput))
        assert source.sent == [SetHyper("weight_decay", 0.05)]

    run(scenario())


def test_pause_stops_the_step_count_and_resume_restarts_it(live_app):
    async def scenario():
        app = live_app()
        async with opened(app) as pilot:
            await training_past(pilot, app, 20)
            await pilot.press("space")
            await wait_for(pilot, lambda: app.home.snapshot.paused)
            held = app.home.snapshot.step
            await pilot.pause(0.5)
            assert app.home.snapshot.step == held and "PAUSED" in status_text(app)
            await pilot.press("space")
            await wait_for(pilot, lambda: app.home.snapshot.step > held + 20)
            await pilot.press("q")

    run(scenario())


def test_quit_stops_training_and_flushes_the_run_directory(tmp_path, live_app):
    async def scenario():
        app = live_app()
        async with opened(app) as pilot:
            await training_past(pilot, app, 100)
            started = time.monotonic()
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=3)
            assert time.monotonic() - started < 1.5
            assert not [w for w in app.workers if w.group == "training" and w.is_running]
        return app

    app = run(scenario())
    run_dir = tmp_path / "run"
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert (run_dir / "checkpoint.pt").exists()
    assert rows[-1]["step"] >= app.home.snapshot.step  # everything shown is on disk


def test_a_nan_loss_pauses_and_shows_the_fault(tmp_path, live_app):
    async def scenario():
        app = live_app(lr=10.0, weight_decay=100.0)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.fault is not None)
            await pilot.pause(0.2)
            assert "not finite" in status_text(app) and "PAUSED" in status_text(app)
            await pilot.press("q")
        kinds = [e["kind"] for e in read_jsonl(tmp_path / "run" / "events.jsonl")]
        assert kinds == ["fault"]

    run(scenario())


def test_an_exception_in_the_worker_is_shown_not_raised():
    async def scenario():
        app = fake_app(error="RuntimeError: CUDA out of memory")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.home.error is not None)
            await pilot.pause(0.2)
            assert "CUDA out of memory" in status_text(app) and "STOPPED" in status_text(app)

    run(scenario())


def test_watch_follows_a_growing_run_directory(tmp_path):
    trainer = new_run(tiny_config(steps=30), tmp_path / "run").build()
    trainer.run()

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(tmp_path / "run"), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 30)
            assert app.home.snapshot.matrices  # weights came from the checkpoint
            with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
                f.write(
                    '{"step": 40, "train_loss": 0.5, "train_acc": 1.0, "test_loss": 2.0, "test_acc": 0.3,'
                    ' "param_norm": 9.0, "weight_decay": 1.0, "lr": 0.01, "l1": 0.0, "elapsed_s": 1.0,'
                    ' "steps_per_s": 40.0}\n'
                )
            await wait_for(pilot, lambda: app.home.snapshot.step == 40)
            await pilot.press("right_square_bracket")  # read-only: says so, changes nothing
            await pilot.pause(0.2)
            assert app.home.snapshot.metrics.weight_decay == 1.0
            await pilot.press("q")

    run(scenario())


def test_small_terminal_and_resizing_never_crash():
    async def scenario():
        app = fake_app()
        async with opened(app, size=(200, 60)) as pilot:
            for size in [(80, 24), (60, 20), (40, 12), (20, 8), (200, 60)]:
                await pilot.resize_terminal(*size)
                await pilot.pause(0.1)
                app.home.draw_frame_now()
            assert app.home.has_class("-compact") is False
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.1)
            assert app.home.has_class("-compact")

    run(scenario())


def test_a_narrow_status_line_keeps_the_phase_on_its_line():
    async def scenario():
        app = fake_app()
        async with app.run_test(size=(60, 20)) as pilot:
            await wait_for(pilot, lambda: "GENERALIZED" in status_text(app))
            first, second = status_text(app).splitlines()
            assert "GENERALIZED" in first and "speed" not in first  # speed gave way to the phase
            assert second.lstrip().startswith("wd ")
            await pilot.resize_terminal(160, 40)
            await pilot.pause(0.1)
            app.home.draw_frame_now()
            assert "speed" in status_text(app).splitlines()[0]

    run(scenario())


def test_view_keys_and_themes():
    async def scenario():
        app = fake_app()
        async with opened(app) as pilot:
            weights = app.query_one("WeightsPane")
            await pilot.press("m")
            assert "output" in str(weights.border_title)
            await pilot.press("f")
            assert "by frequency" in str(weights.border_title)
            await pilot.press("g")
            assert app.query_one("CurvesPane").log_x
            for expected in ("light", "mono", "dark"):
                await pilot.press("t")
                assert app.has_class(f"theme-{expected}") and app.theme_name == expected
            await pilot.press("question_mark")
            await pilot.pause()
            assert type(app.screen).__name__ == "HelpScreen"

    run(scenario())


def test_intervention_keys_reach_the_trainer_and_show(tmp_path, live_app):
    async def scenario():
        app = live_app()
        async with opened(app, size=(160, 48)) as pilot:
            await training_past(pilot, app, 20)
            await pilot.press("u")
            await wait_for(pilot, lambda: isinstance(app.screen, ValueInput))
            app.screen.query_one("#value").value = "40"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.home.snapshot.metrics.train_size == 40)
            await wait_for(pilot, lambda: "UNGROK 40" in status_text(app))
            await pilot.press("n")
            await wait_for(pilot, lambda: app.home.snapshot.metrics.norm_target is not None)
            await pilot.press("a")
            await wait_for(pilot, lambda: app.home.snapshot.metrics.grokfast and "GROKFAST" in status_text(app))
            await pilot.press("u")  # restore the full training set
            await wait_for(pilot, lambda: not app.home.snapshot.ungrokking)
            await pilot.press("q")
        kinds = [e["kind"] for e in read_jsonl(tmp_path / "run" / "events.jsonl")]
        assert kinds == ["train_size", "norm_constraint", "grokfast", "train_size"]

    run(scenario())


def test_restart_starts_a_new_seed_in_a_new_run_directory(live_app):
    async def scenario():
        app = live_app(seed=5)
        async with opened(app) as pilot:
            await training_past(pilot, app, 50)
            first_dir = app.home.source.run_dir
            await pilot.press("r")
            await wait_for(pilot, lambda: app.home.source.config["seed"] == 6 and app.home.snapshot is not None)
            await wait_for(pilot, lambda: app.home.snapshot.step >= 20)
            assert app.home.source.run_dir != first_dir and app.home.source.run_dir.parent == first_dir.parent
            await pilot.press("q")
        return first_dir, app.home.source.run_dir

    first, second = run(scenario())
    assert (first / "checkpoint.pt").exists()  # the first run was stopped cleanly
    assert '"seed": 6' in (second / "config.json").read_text()


def test_checkpoint_csv_and_screenshot_keys_write_into_the_run_directory(tmp_path, live_app):
    async def scenario():
        app = live_app()
        async with opened(app) as pilot:
            await training_past(pilot, app, 50)
            await pilot.press("c", "x", "s")
            run_dir = tmp_path / "run"
            await wait_for(pilot, lambda: (run_dir / "checkpoint.pt").exists() and (run_dir / "metrics.csv").exists())
            await wait_for(pilot, lambda: list(run_dir.glob("screen-step*.svg")))
            header = (run_dir / "metrics.csv").read_text().splitlines()[0]
            assert header.startswith("step,train_loss,train_acc,test_loss,test_acc,param_norm,weight_decay,lr")
            await pilot.press("q")

    run(scenario())


def test_every_key_is_in_the_command_palette_but_help_and_back_on_the_home_screen():
    # and the replay's, over a run trained now (a watched run's are there: tests/test_replay.py)
    from grok_tui.ui.keys import BACK, HELP, REPLAY_KEYS, RUN_KEYS

    async def scenario():
        app = fake_app()
        async with app.run_test(size=(120, 40)):
            return {command.title for command in app.get_system_commands(app.screen)}

    titles = run(scenario())
    for binding in RUN_KEYS:
        assert (binding.tooltip in titles) == (binding not in (HELP, BACK, *REPLAY_KEYS)), binding.key


def test_status_names_a_run_that_settles_part_way_partly_generalized():
    # Semi-grokking: test accuracy climbs from the fit's 3% to ~48% and stays there.
    rows, _ = synthetic_run()
    semi = [dataclasses.replace(m, test_acc=float(0.03 + 0.45 / (1 + np.exp(-(m.step - 1000) / 150)))) for m in rows]

    def phase_at(step):
        history = History()
        for m in semi:
            if m.step <= step:
                history.add(m.to_dict())
        return history.phase()

    assert phase_at(500) == "memorizing"
    assert phase_at(1000) == "generalizing"
    assert phase_at(3000) == "partly generalized"


def test_status_counts_a_rise_toward_generalizing_from_the_fit_not_from_before_it():
    # Test accuracy climbs 3% -> 8% while the training set is learned (fit at step 100), then holds.
    rows, _ = synthetic_run()
    early = [dataclasses.replace(m, test_acc=0.03 + 0.05 * min(1.0, m.step / 100)) for m in rows]
    history = History()
    for m in early:
        if m.step <= 250:
            history.add(m.to_dict())
    assert history.phase() == "memorizing"  # the 5 points gained before the fit are not generalizing
    assert history.phase(at=100) == "memorizing"


# ---- reliability: bursts of keys, the checkpoint key, a full disk, restarts, watch, crashes ----------------


def burst(app, *keys: str) -> None:
    """Keys as a terminal delivers a burst: all queued before the first is handled (Pilot waits between them)."""
    for key in keys:
        app.post_message(
            events.Key(key, {"right_square_bracket": "]", "left_square_bracket": "[", "space": " "}.get(key, key))
        )


def test_a_burst_of_keys_composes_on_the_trainers_own_state(tmp_path, live_app):
    async def scenario():
        app = live_app(weight_decay=0.25)
        async with opened(app) as pilot:
            await training_past(pilot, app, 20)
            # All at once, as a terminal delivers a burst: each acts on what the trainer holds, not on the screen.
            burst(app, "right_square_bracket", "left_square_bracket", "space", "space", "n", "n", "a", "a")
            await wait_for(pilot, lambda: len(app.home.snapshot.events) == 8)
            await wait_for(pilot, lambda: app.home.snapshot.step > app.home.snapshot.events[-1].step + 20)
            now = app.home.snapshot.now
            assert (now.weight_decay, now.norm_target, now.grokfast, app.home.snapshot.paused) == (
                0.25,
                None,
                False,
                False,
            )
            await pilot.press("q")
        events = [(e["kind"], e["old"], e["new"]) for e in read_jsonl(tmp_path / "run" / "events.jsonl")]
        assert [e[:2] for e in events] == [
            ("weight_decay", 0.25),
            ("weight_decay", 0.5),
            ("paused", False),
            ("paused", True),
            ("norm_constraint", None),
            ("norm_constraint", events[4][2]),
            ("grokfast", False),
            ("grokfast", True),
        ]
        assert events[1][2] == 0.25 and events[5][2] is None and events[7][2] is False

    run(scenario())


def test_while_paused_a_change_shows_at_once_and_keys_compose(tmp_path, live_app):
    async def scenario():
        app = live_app(weight_decay=0.25)
        async with opened(app) as pilot:
            await training_past(pilot, app, 20)
            await pilot.press("space")
            await wait_for(pilot, lambda: app.home.snapshot.paused)
            for _ in range(3):
                await pilot.press("right_square_bracket")
                await pilot.pause(0.3)
            await wait_for(pilot, lambda: "wd 2 " in status_text(app))  # 0.25 × 8, with no evaluation since
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, ValueInput))
            assert app.screen.title_text == "New weight decay (now 2)"
            await pilot.press("escape")
            await pilot.press("q")
        new = [e["new"] for e in read_jsonl(tmp_path / "run" / "events.jsonl") if e["kind"] == "weight_decay"]
        assert new == [0.5, 1.0, 2.0]

    run(scenario())


def test_the_checkpoint_key_confirms_only_what_the_trainer_wrote(tmp_path):
    async def scenario():
        cfg = tiny_config(steps=10_000_000, checkpoint_every_s=3600.0)
        app = MonitorApp.for_run(AttachedRun.start(new_run(cfg, tmp_path / "run")), frame_interval=0.05)
        async with opened(app, timeout=30) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step > 200, timeout=30)
            await pilot.press("c")
            await wait_for(pilot, lambda: any("checkpoint saved at step" in n for n in notes(app)))
            said = next(n for n in notes(app) if "checkpoint saved at step" in n)
            written = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"]
            assert f"step {written:,}" in said and written > 200
            app.home.source.process.kill()  # the run's process dies
            await wait_for(pilot, lambda: app.home.error is not None)
            mtime = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime
            await pilot.press("c")
            await pilot.pause(0.5)
            assert any("not running" in n for n in notes(app))
            assert sum("checkpoint saved" in n for n in notes(app)) == 1
            assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime == mtime

    run(scenario())


def test_a_full_disk_pauses_the_run_keeps_every_line_whole_and_resumes_once_there_is_room(tmp_path, live_app):
    run_dir = tmp_path / "run"

    async def scenario():
        app = live_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: (run_dir / "metrics.jsonl").stat().st_size > 2000)
            # From here no file may grow past 1,000 bytes: every write fails as on a full disk.
            previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limits = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, limits[1]))
            try:
                await pilot.press("x", "s")
                await wait_for(pilot, lambda: app.home.snapshot.fault is not None)
                await wait_for(
                    pilot, lambda: "PAUSED (fault)" in status_text(app) and "File too large" in status_text(app)
                )
                assert (
                    sum("cannot write" in n for n in notes(app)) == 3
                )  # the log, the CSV, the screenshot: said, not crashed
                assert app.is_running
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, limits)
                signal.signal(signal.SIGXFSZ, previous)
            assert not [p.name for p in run_dir.iterdir() if p.suffix in (".csv", ".svg", ".tmp")]
            held = app.home.snapshot.step
            await pilot.press("space")  # room again: resume, and what was held back is written
            await wait_for(pilot, lambda: app.home.snapshot.step > held + 100 and app.home.snapshot.fault is None)
            await pilot.press("q")

    run(scenario())
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    steps = [json.loads(line)["step"] for line in text.splitlines()]
    # Nothing lost, nothing twice (the last row is where `q` stopped it, between two evaluations).
    assert steps[:-1] == list(range(0, steps[-2] + 1, 10)) and steps[-1] > steps[-2]
    kinds = [e["kind"] for e in read_jsonl(run_dir / "events.jsonl")]
    assert kinds == ["fault", "paused"]


def test_restart_pressed_ten_times_leaves_only_whole_runs(tmp_path, live_app):
    async def scenario():
        app = live_app()
        notify = app.notify

        def told(message, *args, **kwargs):  # every notice, kept: a shown one expires after seconds
            if str(message).startswith("restarted with"):
                restarts.append(str(message))
            return notify(message, *args, **kwargs)

        app.notify = told
        async with opened(app) as pilot:
            await training_past(pilot, app, 20)
            burst(app, *["r"] * 10)
            # Settled: a restart told, none under way, and the newest run past step 20 (a restart clears the
            # snapshot, so a step past 20 is the new run's; the old run's steps said nothing had happened yet).
            await wait_for(
                pilot,
                lambda: (
                    restarts
                    and not app.home._restarting
                    and app.home.snapshot is not None
                    and app.home.snapshot.step > 20
                ),
            )
            await pilot.press("q")

    restarts: list[str] = []
    run(scenario())
    runs = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert len(restarts) == len(runs) - 1  # each restart made exactly one run
    # The first run and at least one restart. Presses that come while a restart is under way, or before its run
    # has shown a frame, are dropped; on a busy machine the new run's first frame can land between presses, so a
    # later press may restart again -- but never more than once per press, and never into a half-made run.
    assert 2 <= len(runs) <= 11, sorted(d.name for d in runs)
    for d in runs:
        assert (d / "checkpoint.pt").exists() and read_jsonl(d / "metrics.jsonl"), sorted(p.name for p in d.iterdir())


def test_watch_writes_nothing_into_the_run_it_watches(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    new_run(tiny_config(steps=30), run_dir).build().run()
    before = {p.name: p.stat().st_mtime for p in run_dir.iterdir()}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 30)
            await pilot.press("x", "s")
            await wait_for(pilot, lambda: sum("saved to" in n or "exported to" in n for n in notes(app)) == 2)
            await pilot.press("q")

    run(scenario())
    assert {p.name: p.stat().st_mtime for p in run_dir.iterdir()} == before
    assert sorted(p.name for p in elsewhere.iterdir()) == ["run-metrics.csv", "run-screen-step30.svg"]


def test_watch_skips_bad_records_and_names_the_file_and_field(tmp_path):
    run_dir = tmp_path / "run"
    new_run(tiny_config(steps=30), run_dir).build().run()
    good = read_jsonl(run_dir / "metrics.jsonl")[-1]
    with open(run_dir / "metrics.jsonl", "a") as f:
        for bad in ({"train_acc": "abc"}, {"step": -1}, {"test_acc": 7.0}, {"param_norm": [1]}, {"step": "x"}):
            f.write(json.dumps({**good, "step": 40, **bad}) + "\n")
        f.write(json.dumps({**good, "step": 60}) + "\n")
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(
            '{"step": 3, "kind": ["x"], "old": 1, "new": 2}\n{"step": 5, "kind": "weight_decay", "old": 1, "new": 2}\n'
        )

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 60)
            await wait_for(pilot, lambda: len(notes(app)) == 2)
            said = " | ".join(notes(app))
            assert "metrics.jsonl: train_acc: 'abc'" in said and "events.jsonl: kind: ['x']" in said
            assert [e.kind for e in app.home.snapshot.events] == ["weight_decay"]
            assert app.is_running
            await pilot.press("q")

    run(scenario())


def test_watch_skips_a_record_whose_clock_or_settings_are_not_numbers(tmp_path):
    # A NaN elapsed_s once reached the status line's clock and ended watch ("cannot convert float NaN").
    run_dir = tmp_path / "run"
    new_run(tiny_config(steps=30), run_dir).build().run()
    good = read_jsonl(run_dir / "metrics.jsonl")[-1]
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**good, "step": 40, "elapsed_s": float("nan")}) + "\n")  # json writes a bare NaN
        f.write(json.dumps({**good, "step": 50, "steps_per_s": None, "lr": None}) + "\n")
        f.write(json.dumps({**good, "step": 60, "train_loss": None}) + "\n")  # a diverged loss is allowed

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 60)
            await wait_for(pilot, lambda: len(notes(app)) == 1)
            assert "metrics.jsonl: elapsed_s: nan" in notes(app)[0]
            assert app.is_running and "step 60/" in status_text(app)
            await pilot.press("q")

    run(scenario())


def test_the_modals_error_wraps_inside_the_modal():
    async def scenario():
        rows, snapshot = synthetic_run()
        app = MonitorApp.for_run(ManualSource(rows, snapshot, steerable=True))
        async with opened(app) as pilot:
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, ValueInput))
            app.screen.query_one("#value").value = "-1"
            await pilot.press("enter")
            await pilot.pause()
            label = app.screen.query_one("#error")
            shown = " ".join(strip.text.strip() for strip in label.render_lines(label.region.reset_offset))
            assert shown.endswith("type a finite number >= 0 and <= 1000")
            assert label.region.right <= app.screen.query_one("Vertical").content_region.right

    run(scenario())


def test_a_crash_in_the_app_exits_1_with_one_line_and_the_details_in_the_run_directory(
    tmp_path, live_app, monkeypatch, capfd
):
    from grok_tui.ui.panes.norm import NormPane

    def broken(self, snapshot, history):
        raise RuntimeError("boom")

    monkeypatch.setattr(NormPane, "show", broken)
    code = live_app().run_for_status(headless=True, size=(120, 40))
    err = capfd.readouterr().err.strip()  # Textual adds nothing: no traceback
    run_dir = tmp_path / "run"
    assert code == 1
    assert err.splitlines() == [f"grok-tui: error: crashed: RuntimeError: boom (details in {run_dir / 'crash.log'})"]
    log = (run_dir / "crash.log").read_text()
    assert "Traceback" in log and "RuntimeError: boom" in log and "NormPane" not in err
    # The trainer was stopped on the way out, and checkpointed where its metrics end.
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == rows[-1]["step"]


def test_a_trainer_that_fails_before_its_first_frame_says_why(tmp_path):
    from grok_tui.train import RunSpec

    spec = new_run(tiny_config(), tmp_path / "run")
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"garbage")  # damaged after the CLI's checks

    async def scenario():
        app = MonitorApp.for_run(InProcessRun(RunSpec(spec.cfg, spec.run_dir, resume=True)), frame_interval=0.05)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: "STOPPED" in status_text(app))
            assert "not a readable checkpoint" in status_text(app) and "starting" not in status_text(app)

    run(scenario())


def test_restart_that_the_source_refuses_says_why_and_leaves_the_run_training():
    # A script's run (grok-tui run) cannot be remade from here: `r` must not stop it first.
    source = ManualSource(*synthetic_run(), steerable=True)

    async def scenario():
        app = MonitorApp.for_run(source)
        async with opened(app) as pilot:
            await pilot.press("r")
            await wait_for(pilot, lambda: any("no run to restart" in n for n in notes(app)))
            assert app.home.training and app.home.source is source

    run(scenario())
    assert source.sent == []  # no Stop went out
