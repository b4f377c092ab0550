"""The monitor over a loop of one's own (grok_tui.monitor): what it cannot do is shown disabled with the
reason, the status line names the optimizer and its groups' values, custom metrics are on the curves, and
the frequencies pane says why it is empty without `period`."""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

import grok_tui
from grok_tui.history import History
from grok_tui.runlog import read_jsonl
from grok_tui.sources.attached import AttachedRun
from grok_tui.sources.manual import ManualSource
from grok_tui.sources.watched import WatchedRun
from grok_tui.train.control import ScaleHyper
from grok_tui.train.snapshot import Metrics
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.panes.curves import CurvesPane
from grok_tui.ui.panes.embedding import EmbeddingPane
from grok_tui.ui.panes.plot import SeriesPlot
from grok_tui.ui.screens.help import HelpScreen
from tests.conftest import notes, opened, run, status_text, wait_for, wait_until
from tests.fakes import synthetic_run
from tests.loops import P, Tiny


@contextlib.contextmanager
def script_loop(run_dir: Path, *, wd: float = 0.5, period: int | None = P) -> Iterator[dict[str, Any]]:
    """A plain loop under grok_tui.monitor, training in a thread until the block ends (or `q` stops it):
    two param groups (weight decay `wd` and 0), and two metrics of its own (grad_norm, agreement)."""
    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.AdamW(
        [
            {"params": [model.embed.weight, model.out.weight], "weight_decay": wd},
            {"params": [model.out.bias], "weight_decay": 0.0},
        ],
        lr=1e-2,
    )
    x = torch.cartesian_prod(torch.arange(P), torch.arange(P))
    y = (x[:, 0] + x[:, 1]) % P
    state: dict[str, Any] = {"done": threading.Event(), "error": None}
    served = threading.Event()

    def loop() -> None:
        try:
            with grok_tui.monitor(model, optimizer, run_dir=run_dir, period=period, config={"p": P}) as m:
                served.set()
                step = 0
                while not state["done"].is_set() and not m.should_stop:
                    step += 1
                    loss = nn.functional.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    if step % 5 == 0:
                        grad = float(sum(p.grad.norm() ** 2 for p in model.parameters() if p.grad is not None))
                        tl = float(loss.detach())
                        m.log(step, train_loss=tl, train_acc=0.5, grad_norm=2.0 + grad, agreement=0.25)
                        state["done"].wait(0.01)
        except Exception as e:  # said by the test, not lost in the thread
            state["error"] = e
            served.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    served.wait(30)
    try:
        yield state
    finally:
        state["done"].set()
        thread.join(30)
    assert state["error"] is None, state["error"]


def attached(run_dir: Path) -> MonitorApp:
    return MonitorApp.for_run(AttachedRun(run_dir), frame_interval=0.05)


# ---- 1. what a foreign loop cannot take: disabled, with the reason --------------------------------------------


def test_a_refused_key_shows_disabled_and_says_why_when_pressed_or_chosen():
    source = ManualSource(
        *synthetic_run(),
        steerable=True,
        refused={"train_size": "no subsets of a script's data", "weight_decay": "no group had a weight decay"},
    )

    async def scenario():
        app = MonitorApp.for_run(source, frame_interval=0.05)
        async with opened(app) as pilot:
            screen = app.home
            assert screen.check_action("ungrok", ()) is None  # Textual: shown disabled
            assert screen.check_action("scale", ("weight_decay", 2)) is None
            assert screen.check_action("ask", ("weight_decay",)) is None
            assert screen.check_action("scale", ("lr", 2)) is True
            assert screen.check_action("grokfast", ()) is True
            assert screen.active_bindings["u"].enabled is False
            assert screen.active_bindings["right_square_bracket"].enabled is False
            assert screen.active_bindings["space"].enabled is True
            await pilot.press("u")
            await wait_for(pilot, lambda: any("no subsets of a script's data" in n for n in notes(app)))
            assert app.screen is screen  # no ungrok dialog opened
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: any("no group had a weight decay" in n for n in notes(app)))
            await pilot.press("right_curly_bracket")  # lr: taken
            await wait_for(pilot, lambda: source.sent == [ScaleHyper("lr", 2.0)])
            # The palette marks it, and choosing it says why rather than doing nothing.
            described = {action: text for text, _, action in screen.commands()}
            assert described["ungrok"].endswith("(disabled)") and "(disabled)" not in described["grokfast"]
            before = len(notes(app))
            await screen.choose("ungrok")
            await wait_for(pilot, lambda: len(notes(app)) == before + 1)
            assert "no subsets" in notes(app)[-1]
            await screen.choose("scale('lr', 0.5)")
            assert source.sent[-1] == ScaleHyper("lr", 0.5)
            # Help lists it with its reason.
            rows = dict(screen.help_rows())
            assert "disabled: no subsets of a script's data" in rows["u"]
            assert "disabled" not in rows["a"]
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert len(source.sent) == 2  # nothing refused went out

    run(scenario())


def test_a_preset_run_refuses_nothing_and_every_key_is_enabled(tmp_path):
    source = ManualSource(*synthetic_run(), steerable=True)

    async def scenario():
        app = MonitorApp.for_run(source, frame_interval=0.05)
        async with opened(app):
            screen = app.home
            assert all(screen.refusal(b.action) is None for b in screen.KEYS)
            assert all(b.enabled for key, b in screen.active_bindings.items() if key != "escape")

    run(scenario())


def test_a_script_run_says_what_it_refuses_in_its_hello(tmp_path):
    with script_loop(tmp_path / "run", wd=0.0):
        source = AttachedRun(tmp_path / "run")
        cancelled = threading.Event()
        threading.Thread(target=source.run, args=(cancelled.is_set,), daemon=True).start()
        try:
            wait_until(lambda: source.info, timeout=20, what="no hello")
            refused = source.refused
        finally:
            cancelled.set()
    assert {"restart", "train_size", "norm_constraint", "grokfast", "l1", "weight_decay"} <= set(refused)
    assert "weight_decay" in refused["weight_decay"] and "lr" not in refused and "pause" not in refused
    assert all(len(why.splitlines()) == 1 for why in refused.values())


def test_the_monitor_of_a_script_run_disables_what_its_loop_cannot_take(tmp_path):
    async def scenario():
        with script_loop(tmp_path / "run"):
            app = attached(tmp_path / "run")
            async with opened(app, timeout=20) as pilot:
                screen = app.home
                for key in ("r", "u", "n", "N", "a"):
                    assert screen.active_bindings[key].enabled is False, key
                assert screen.active_bindings["right_square_bracket"].enabled is True  # a group had one
                await pilot.press("a")
                await wait_for(pilot, lambda: any("Grokfast" in n for n in notes(app)))
                assert not any("refused a command" in n for n in notes(app))  # never sent, so never refused
                await pilot.press("d")

    run(scenario())


# ---- 2. the optimizer and its groups on the status line -------------------------------------------------------


def test_the_status_line_names_the_optimizer_and_each_groups_values(tmp_path):
    async def scenario():
        with script_loop(tmp_path / "run"):
            app = attached(tmp_path / "run")
            async with opened(app, timeout=20) as pilot:
                await wait_for(pilot, lambda: "AdamW" in status_text(app))
                assert "wd 0.5|0 " in status_text(app) and "lr 0.01 " in status_text(app)
                await pilot.press("right_square_bracket")  # the group at 0 stays 0
                await wait_for(pilot, lambda: "wd 1|0 " in status_text(app))
                await pilot.press("d")

    run(scenario())


def test_a_narrow_status_line_drops_the_optimizer_then_the_groups():
    rows, snapshot = synthetic_run()
    groups = ((0.6, 0.01), (0.0, 0.01), (0.6, 0.001))

    async def at(width: int) -> str:
        source = ManualSource(rows, dataclasses.replace(snapshot, optimizer="AdamW", groups=groups))
        app = MonitorApp.for_run(source, frame_interval=0.05)
        async with opened(app, size=(width, 40)) as pilot:
            await wait_for(pilot, lambda: "wd " in status_text(app))
            return status_text(app).splitlines()[1]

    wide = run(at(160))
    assert wide.startswith("AdamW  wd 0.6|0|0.6  lr 0.01|0.01|0.001  train")
    narrow = run(at(94))
    assert "AdamW" not in narrow and "wd 0.6|0|0.6  lr 0.01|0.01|0.001" in narrow
    narrowest = run(at(80))
    assert narrowest.startswith("wd 0.6  lr 0.01  train")


# ---- 3. custom metrics on the curves -------------------------------------------------------------------------


def test_custom_metrics_are_kept_through_metrics_rows_and_history():
    rows, _ = synthetic_run()
    row = dataclasses.replace(rows[0], extra=(("grad_norm", 3.5), ("agreement", 0.25)))
    record = row.to_dict()
    assert record["grad_norm"] == 3.5 and "extra" not in record
    assert Metrics.from_dict(record) == row
    assert "extra" not in rows[0].to_dict() and Metrics.from_dict(rows[0].to_dict()) == rows[0]  # as before
    odd = {**rows[0].to_dict(), "note": "text", "flag": True, "inf": float("inf"), "extra": 1}
    assert Metrics.from_dict(odd).extra == ()  # not numbers (or grok-tui's own name): skipped, no error
    history = History()
    history.add(rows[0].to_dict())
    history.add(record)
    assert history.custom == ["grad_norm", "agreement"]
    assert list(history.series("grad_norm").values[-1:]) == [3.5]


def test_a_row_and_a_frame_from_an_older_grok_tui_still_read():
    # Frames travel pickled: one from a run of an older grok-tui has none of the new fields in its __dict__.
    rows, snapshot = synthetic_run()
    old_row = pickle.loads(pickle.dumps(rows[-1]))
    old_row.__dict__.pop("extra")
    old_frame = pickle.loads(pickle.dumps(snapshot))
    for name in ("optimizer", "groups", "spectrum_note"):
        old_frame.__dict__.pop(name)
    assert old_row.extra == () and old_row.to_dict() == rows[-1].to_dict()
    assert (old_frame.optimizer, old_frame.groups, old_frame.spectrum_note) == (None, (), None)
    source = ManualSource([old_row], old_frame)

    async def scenario():
        app = MonitorApp.for_run(source, frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: "wd 0.6  lr 0.01" in status_text(app))

    run(scenario())


def legend(app: MonitorApp, plot: str) -> list[str]:
    return [line.label for line in app.query_one(CurvesPane).query_one(f"#{plot}", SeriesPlot)._lines]


def test_custom_metrics_are_on_the_curves_named_in_the_legend_live_and_in_watch(tmp_path):
    run_dir = tmp_path / "run"

    async def live():
        with script_loop(run_dir):
            app = attached(run_dir)
            async with opened(app, timeout=20) as pilot:
                await wait_for(pilot, lambda: "grad_norm" in legend(app, "loss"))
                assert legend(app, "acc") == ["train", "test", "agreement"]  # in [0, 1]: beside the accuracies
                assert legend(app, "loss") == ["train", "test", "grad_norm"]
                await pilot.press("d")

    run(live())
    assert "grad_norm" in read_jsonl(run_dir / "metrics.jsonl")[-1]

    async def watched():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: "agreement" in legend(app, "acc"))
            assert "grad_norm" in legend(app, "loss")

    run(watched())


# ---- 4. the frequencies pane without period ------------------------------------------------------------------


def freq_text(app: MonitorApp) -> str:
    return str(app.query_one("#freq-text").render())


def test_the_frequencies_pane_without_period_says_why_it_is_empty(tmp_path):
    run_dir = tmp_path / "run"

    async def live():
        with script_loop(run_dir, period=None):
            app = attached(run_dir)
            async with opened(app, timeout=20) as pilot:
                await wait_for(pilot, lambda: "pass period= to grok_tui.monitor" in freq_text(app))
                await pilot.press("d")

    run(live())

    async def watched():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: "pass period=" in freq_text(app))

    run(watched())


def test_with_period_the_frequencies_and_embedding_panes_show_the_neurons_inputs(tmp_path):
    def circle(app):
        return str(app.query_one(EmbeddingPane).border_title)

    async def scenario():
        with script_loop(tmp_path / "run"):
            app = attached(tmp_path / "run")
            async with opened(app, timeout=20) as pilot:
                await wait_for(pilot, lambda: "purity" in freq_text(app) and "cos/sin" in circle(app))
                await pilot.press("d")

    run(scenario())

    async def watched():  # from the checkpoint's views
        app = MonitorApp.for_run(WatchedRun(tmp_path / "run"), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: "cos/sin" in circle(app))

    run(watched())
