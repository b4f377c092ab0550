"""The forecast, live (issue 26, item 5): what the status line says and when, the curves' mark at the step
expected, the sweep map's shades; grok_tui/forecast/live.py, and the panes over it under Textual's Pilot."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from grok_tui.config import PRESETS
from grok_tui.forecast import forecast, live
from grok_tui.forecast.live import (
    LiveForecast,
    MemberForecasts,
    Outlook,
    history_rows,
    outlook,
    shipped_fit,
)
from grok_tui.history import History
from grok_tui.runlog import RunLog
from grok_tui.sources.manual import ManualSource
from grok_tui.sources.sweep import SweepSource
from grok_tui.sweep.phases import PhaseRule
from grok_tui.sweep.store import KEPT, MemberView, create_sweep
from grok_tui.train.snapshot import Metrics
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.panes.curves import CurvesPane
from grok_tui.ui.panes.phase_map import PhaseMapPane, ramp_level
from grok_tui.ui.panes.plot import SeriesPlot
from grok_tui.ui.screens.sweep import SweepScreen
from tests.conftest import opened, run, status_text, training_past, wait_for
from tests.fakes import synthetic_run

MOD_ADD = PRESETS["mod-add"].config().to_dict()  # the default run: 6,000 steps, 30% of the pairs trained on
FORECAST_TEXT = re.compile(r"(groks( ~now| ~step [\d,]+)? · p 0\.\d\d|stays memorized · p 0\.\d\d)")


def rows_of(upto: int, every: int = 10, test_acc: float = 0.3, grokked_from: int | None = None) -> list[Metrics]:
    """A run that fits its training set at step 70, its test loss falling from step 300 while its norm turns
    down (what precedes grokking), test accuracy flat at `test_acc` (0.95 from `grokked_from`)."""
    out = []
    for s in range(0, upto + 1, every):
        acc = 0.95 if grokked_from is not None and s >= grokked_from else test_acc
        out.append(
            Metrics(
                step=s,
                train_loss=4 * np.exp(-s / 20) + 1e-6,
                train_acc=min(1.0, 0.02 + s / 70),
                test_loss=6.0 * np.exp(-max(0, s - 300) / 800) + 0.05 if s >= 100 else 4.5,
                test_acc=acc,
                param_norm=93 + 12 * (1 - np.exp(-s / 150)) - 0.01 * max(0, s - 300),
                weight_decay=0.3,
                lr=0.01,
                l1=0.0,
                elapsed_s=s / 300,
                steps_per_s=300.0,
                train_size=1346,
            )
        )
    return out


def dicts(rows: list[Metrics]) -> list[dict]:
    return [r.to_dict() for r in rows]


def snapshot_at(rows: list[Metrics], experiment: str = "mod-add", finished: bool = False):
    _, synthetic = synthetic_run(steps=100)
    return dataclasses.replace(
        synthetic, experiment=experiment, total_steps=6000, metrics=rows[-1], events=(), finished=finished
    )


# ---- the wording ---------------------------------------------------------------------------------------


def test_the_outlook_says_the_likelier_outcome_and_its_probability():
    assert Outlook(200, 0.924, 3087).text == "groks ~step 3,100 · p 0.92"
    assert Outlook(200, 0.61, 763).text == "groks ~step 760 · p 0.61"
    assert Outlook(200, 0.03, None).text == "stays memorized · p 0.97"  # p of the outcome stated
    assert Outlook(200, 0.9999, 200).text == "groks ~now · p 0.99"  # due now; never a certain 1.00
    assert Outlook(200, 0.7, None).text == "groks · p 0.70"  # no step model: no step said
    assert Outlook(200, 0.92, 3087).marker_step == 3087
    assert Outlook(200, 0.92, 200).marker_step is None  # only a step ahead is marked
    assert Outlook(200, 0.2, None).marker_step is None


# ---- when it speaks -------------------------------------------------------------------------------------


def test_it_speaks_from_the_fit_until_test_accuracy_reaches_90_percent():
    fit = shipped_fit()
    assert fit is not None
    assert outlook(dicts(rows_of(50)), MOD_ADD, fit) is None  # train accuracy 73%: not fitted yet
    rows = dicts(rows_of(100))
    said = outlook(rows, MOD_ADD, fit)
    made = forecast(rows, MOD_ADD, fit)  # what `grok-tui forecast RUN --at 100` says of the same rows
    assert said == Outlook(100, made.p_generalize, made.expected_step) and made.basis == "curves"
    assert outlook(dicts(rows_of(300, grokked_from=250)), MOD_ADD, fit) is None  # settled: the fact, not a forecast


def test_an_experiment_without_a_fit_gets_no_forecast_never_a_guess():
    rows = dicts(rows_of(100))
    assert outlook(rows, MOD_ADD, shipped_fit()) is not None
    assert outlook(rows, {**MOD_ADD, "experiment": "parity"}, shipped_fit()) is None
    assert outlook(rows, {**MOD_ADD, "experiment": "my-script"}, shipped_fit()) is None
    assert outlook(rows, MOD_ADD, None) is None  # no usable fit at all


def test_a_config_whose_train_size_means_the_whole_set_is_read_without_it():
    # `train_size: 0` is "the whole training set", not a size: a sweep member's rows (KEPT) carry none.
    kept = [{k: r.get(k) for k in KEPT} for r in dicts(rows_of(100))]
    assert outlook(kept, {**MOD_ADD, "train_size": 0}, shipped_fit()) is not None


def test_history_rows_are_the_rows_added_up_to_a_step():
    history = History()
    rows = dicts(rows_of(200))
    for r in rows:
        history.add(r)
    back = history_rows(history)
    assert [r["step"] for r in back] == [r["step"] for r in rows]
    assert back[-1]["param_norm"] == pytest.approx(rows[-1]["param_norm"])
    assert back[7]["train_acc"] == pytest.approx(rows[7]["train_acc"])
    assert [r["step"] for r in history_rows(history, upto=55)] == [0, 10, 20, 30, 40, 50]


# ---- how often it is worked out -------------------------------------------------------------------------


@pytest.fixture
def worked_out(monkeypatch):
    """How many forecasts live.py has worked out (each a call of its `outlook`)."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return outlook(*args, **kwargs)

    monkeypatch.setattr(live, "outlook", counted)
    return calls


def test_the_live_forecast_is_worked_out_at_most_once_a_second_and_only_on_news(worked_out):
    now = [0.0]
    watcher = LiveForecast(shipped_fit, interval_s=1.0, clock=lambda: now[0])
    rows = rows_of(300)
    history = History()
    for r in rows[:6]:
        history.add(r.to_dict())
    assert watcher.update(history, snapshot_at(rows[:6]), MOD_ADD) is None and not worked_out  # not fitted
    for r in rows[6:11]:
        history.add(r.to_dict())
    now[0] = 0.1
    first = watcher.update(history, snapshot_at(rows[:11]), MOD_ADD)  # fitted: said at once
    assert first is not None and first.step == 100 and len(worked_out) == 1
    assert watcher.update(history, snapshot_at(rows[:11]), MOD_ADD) is first and len(worked_out) == 1  # nothing new
    history.add(rows[11].to_dict())
    now[0] = 0.6
    assert watcher.update(history, snapshot_at(rows[:12]), MOD_ADD) is first and len(worked_out) == 1  # too soon
    now[0] = 1.2
    second = watcher.update(history, snapshot_at(rows[:12]), MOD_ADD)
    assert second is not None and second.step == 110 and len(worked_out) == 2
    # A replay's step answers at once, from the rows up to it (at step 80 fitted, at 50 not); and back to now.
    assert watcher.update(history, snapshot_at(rows[:12]), MOD_ADD, at=80).step == 80 and len(worked_out) == 3
    assert watcher.update(history, snapshot_at(rows[:12]), MOD_ADD, at=50) is None and len(worked_out) == 3
    assert watcher.update(history, snapshot_at(rows[:12]), MOD_ADD).step == 110 and len(worked_out) == 4
    # The settings the trainer holds are read: a new weight decay is news.
    now[0] = 2.5
    wd = dataclasses.replace(
        snapshot_at(rows[:12]), settings=None, metrics=dataclasses.replace(rows[11], weight_decay=3.0)
    )
    watcher.update(history, wd, MOD_ADD)
    assert len(worked_out) == 5
    # A run that has ended has its outcome: nothing is forecast.
    assert watcher.update(history, snapshot_at(rows[:12], finished=True), MOD_ADD) is None


def test_members_are_forecast_while_undecided_and_again_only_when_their_rows_moved(tmp_path, worked_out):
    info = create_sweep(tmp_path / "sweep", "mod-add", {"weight_decay": [0.3], "seed": [0, 1]}, PhaseRule(), 1)
    a, b = (MemberView(m, m.name(info.grid.axes)) for m in info.grid.members)
    a.rows = [{k: r.get(k) for k in KEPT} for r in dicts(rows_of(100))]
    b.rows = [{k: r.get(k) for k in KEPT} for r in dicts(rows_of(50))]  # not fitted yet
    now = [0.0]
    members = MemberForecasts(shipped_fit, interval_s=1.0, clock=lambda: now[0])
    found = members.update([a, b])
    assert set(found) == {a.name} and found[a.name] == outlook(a.rows, a.member.cfg.to_dict(), shipped_fit())
    calls = len(worked_out)
    assert members.update([a, b]) == found and len(worked_out) == calls  # nothing moved: nothing worked out
    a.rows = a.rows + [{k: r.get(k) for k in KEPT} for r in dicts(rows_of(110))[-1:]]
    assert members.update([a, b]) == found and len(worked_out) == calls  # moved, but a moment ago
    now[0] = 1.5
    assert members.update([a, b])[a.name].step == 110 and len(worked_out) == calls + 1  # a alone again
    a.phase, a.finished = "memorization", True
    assert members.update([a, b]) == {}  # decided: its phase says it


# ---- the monitor ----------------------------------------------------------------------------------------


def forecast_marks(app) -> set[int]:
    """The steps the curves mark in the forecast's colour."""
    pane = app.query_one(CurvesPane)
    color = tuple(pane.get_component_rich_style("plot--forecast").color.get_truecolor())
    return {
        int(line.x[0])
        for plot in pane.query(SeriesPlot)
        for line in plot._lines
        if len(line.x) == 2 and line.x[0] == line.x[1] and line.color == color
    }


def test_the_status_line_shows_the_forecast_once_train_fits_and_the_curves_mark_its_step():
    rows = rows_of(400)
    source = ManualSource(rows[:6], snapshot_at(rows[:6]), config=MOD_ADD)  # up to step 50: train at 73%
    app = MonitorApp.for_run(source, frame_interval=0.05)
    expected = outlook(dicts(rows[:11]), {**MOD_ADD, "train_size": 1346}, shipped_fit())
    assert expected is not None and expected.groks and expected.marker_step is not None

    async def scenario():
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: "step 50/" in status_text(app))
            await pilot.pause(0.2)
            assert not FORECAST_TEXT.search(status_text(app)) and not forecast_marks(app)
            source.put(snapshot_at(rows[:11]), rows[6:11])  # to step 100: fitted
            await wait_for(pilot, lambda: expected.text in status_text(app))
            assert FORECAST_TEXT.search(status_text(app))
            await wait_for(pilot, lambda: forecast_marks(app) == {expected.marker_step})
            assert "forecast" in (app.query_one(CurvesPane).border_subtitle or "")
            # Test accuracy reaches 90%: settled, the forecast and its mark go.
            grokked = rows_of(400, grokked_from=350)
            source.put(snapshot_at(grokked), grokked[11:])
            await wait_for(
                pilot, lambda: "step 400/" in status_text(app) and not FORECAST_TEXT.search(status_text(app))
            )
            await wait_for(pilot, lambda: not forecast_marks(app))

    run(scenario())


@pytest.mark.parametrize(("experiment", "shown"), [("mod-add", True), ("parity", False)])
def test_the_status_line_says_nothing_for_an_experiment_without_a_fit(experiment, shown):
    rows = rows_of(200)
    config = {**PRESETS[experiment].config().to_dict()}
    app = MonitorApp.for_run(ManualSource(rows, snapshot_at(rows, experiment), config=config), frame_interval=0.05)

    async def scenario():
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: "step 200/" in status_text(app))
            await pilot.pause(0.3)
            assert bool(FORECAST_TEXT.search(status_text(app))) is shown
            assert bool(forecast_marks(app)) is (shown and app.home.outlook.marker_step is not None)

    run(scenario())


def test_a_real_run_shows_its_forecast_after_the_fit_before_test_accuracy_settles(live_app):
    # The default experiment shrunk (conftest.tiny_config), named mod-add so that the fit speaks for it,
    # without weight decay: it memorizes and stays there long enough to be watched.
    app = live_app(experiment="mod-add", weight_decay=0.0)

    async def scenario():
        async with opened(app) as pilot:
            await training_past(pilot, app, 10)
            await wait_for(pilot, lambda: FORECAST_TEXT.search(status_text(app)), timeout=20)
            rows = history_rows(app.home.history)
            assert max(r["train_acc"] for r in rows) >= 0.99 and max(r["test_acc"] for r in rows) < 0.9
            await pilot.press("q")

    run(scenario())


# ---- the sweep map ---------------------------------------------------------------------------------------


def test_the_map_shades_an_undecided_member_by_its_forecast(tmp_path):
    info = create_sweep(tmp_path / "sweep", "mod-add", {"weight_decay": [0.3, 1.0]}, PhaseRule(), workers=1)
    fitted, early = info.grid.members
    for member, upto in ((fitted, 100), (early, 50)):
        log = RunLog(info.member_dir(member))
        for r in rows_of(upto):
            log.metrics(r.to_dict())
        log.flush()
    kept = [{k: r.get(k) for k in KEPT} for r in dicts(rows_of(100))]
    expected = outlook(kept, fitted.cfg.to_dict(), shipped_fit())
    assert expected is not None
    assert ramp_level(expected.p_generalize) != ramp_level(0.3)  # the forecast's shade is not test accuracy's
    app = MonitorApp(SweepScreen(SweepSource(info.root), refresh=0.1))

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(PhaseMapPane)
            await wait_for(pilot, lambda: len(pane.blocks) == 2 and all(b[0].test_acc for b in pane.blocks.values()))
            by_name = {b.name: b for blocks in pane.blocks.values() for b in blocks}
            shaded = by_name[fitted.name(info.grid.axes)]
            assert shaded.phase is None and shaded.forecast == expected
            assert pane.block_style(shaded) == pane.get_component_rich_style(
                f"phase-map--ramp-{ramp_level(expected.p_generalize)}"
            )
            plain = by_name[early.name(info.grid.axes)]  # not fitted yet: shaded by its test accuracy, as before
            assert plain.forecast is None
            assert pane.block_style(plain) == pane.get_component_rich_style(f"phase-map--ramp-{ramp_level(0.3)}")
            text = "\n".join(line.plain for line in pane.lines(pane.content_size.width, pane.content_size.height))
            assert "undecided: forecast p(groks)" in text
            letter = "g" if expected.groks else "m"
            assert re.search(rf"\b{letter}\b", text)
            pane.select((0.3, None))
            await pilot.pause(0.1)
            info_line = "\n".join(line.plain for line in pane.lines(pane.content_size.width, pane.content_size.height))
            assert expected.text in info_line

    run(scenario())
