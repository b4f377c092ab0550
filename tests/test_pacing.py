"""Less to send over a slow link: panes redraw at their own pace, and only when their picture changed."""

import dataclasses

import numpy as np
import pytest
from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.geometry import Region

from grok_tui.cli import main
from grok_tui.sources.manual import ManualSource
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.pacing import Cadence, Pacer, parse_refresh
from grok_tui.ui.panes import lean
from grok_tui.ui.panes.frequencies import Bars, Readout
from grok_tui.ui.panes.heatmap import Heatmap
from grok_tui.ui.panes.lean import merge_segments
from grok_tui.ui.panes.norm import NormPane
from grok_tui.ui.panes.plot import Line, SeriesPlot
from grok_tui.ui.panes.status import StatusPane
from tests.conftest import run
from tests.fakes import synthetic_run


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---- the cadence and the pacer --------------------------------------------------------------------


def test_the_default_cadence_keeps_the_status_and_curves_lively():
    cadence = Cadence.for_refresh()
    assert cadence.status <= 0.25 and cadence.plots <= 0.5
    assert cadence.inspection > cadence.plots


@pytest.mark.parametrize("refresh, status", [(0.1, 0.1), (0.3, 0.15), (2.0, 1.0), (60.0, 1.0)])
def test_refresh_sets_every_interval(refresh, status):
    cadence = Cadence.for_refresh(refresh)
    assert (cadence.status, cadence.plots, cadence.inspection) == (pytest.approx(status), refresh, 4 * refresh)


def draws(pacer: Pacer, clock: Clock, ticks: int, news: bool = True) -> dict[str, int]:
    counts = {"status": 0, "plots": 0, "inspection": 0}
    for _ in range(ticks):
        if news:
            pacer.news()
        for group in pacer.due():
            counts[group] += 1
        clock.now += pacer.tick
    return counts


def test_each_group_is_drawn_at_its_own_rate():
    clock = Clock()
    pacer = Pacer(Cadence.for_refresh(0.5), clock=clock)
    assert pacer.tick == 0.25
    assert draws(pacer, clock, ticks=40) == {"status": 40, "plots": 20, "inspection": 5}  # 10 s


def test_a_late_tick_does_not_skip_a_turn():
    clock = Clock()
    pacer = Pacer(Cadence.for_refresh(0.5), clock=clock)
    pacer.news()
    assert pacer.due() == {"status", "plots", "inspection"}
    clock.now += 0.24
    pacer.news()
    assert pacer.due() == {"status"}
    clock.now += 0.24  # 0.48 s after the plots were drawn: close enough to their 0.5 s
    pacer.news()
    assert "plots" in pacer.due()


def test_no_news_no_drawing_and_news_waits_for_its_turn():
    clock = Clock()
    pacer = Pacer(Cadence.for_refresh(0.5), clock=clock)
    assert draws(pacer, clock, ticks=20, news=False) == {"status": 0, "plots": 0, "inspection": 0}
    pacer.news()
    assert pacer.due() == {"status", "plots", "inspection"}
    pacer.news()  # a frame just after: the status waits a tick, the heavy panes their interval
    assert pacer.due() == set()
    counts = draws(pacer, clock, ticks=9, news=False)  # 2 s
    assert counts == {"status": 1, "plots": 1, "inspection": 1}  # drawn once, not lost, not repeated


def test_a_first_frame_is_drawn_at_once_whatever_the_turns():
    clock = Clock()
    pacer = Pacer(Cadence.for_refresh(0.5), clock=clock)
    pacer.news()
    pacer.due()
    clock.now += 0.3  # a restart, with a new run's first frame soon after the old run's last
    pacer.news(at_once=True)
    assert pacer.due() == {"status", "plots", "inspection"}


# ---- --refresh -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "", "0", "0.05", "-1", "nan", "inf", "61"])
@pytest.mark.parametrize("command", [[], ["watch", "somewhere"]])
def test_refresh_rejects_a_bad_value_in_one_line(capsys, tmp_path, value, command):
    argv = [*command, "--refresh", value] if command else ["--refresh", value, "--run-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--refresh" in err and "0.1 to 60" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_refresh_accepts_seconds():
    assert parse_refresh("2") == 2.0 and parse_refresh("0.1") == 0.1


# ---- the app draws what is due and changed ------------------------------------------------------------


class Spy:
    """Counts the calls of one method of one widget."""

    def __init__(self, widget, method: str = "refresh") -> None:
        self.calls: list[tuple] = []
        original = getattr(widget, method)

        def spy(*args, **kwargs):
            self.calls.append(args)
            return original(*args, **kwargs)

        setattr(widget, method, spy)

    def __len__(self) -> int:
        return len(self.calls)


def later(snapshot, rows, steps=50):
    """The next frame: more metrics rows; the inspection (matrices, spectrum) is the same objects."""
    last = rows[-1]
    new = [dataclasses.replace(last, step=last.step + steps, test_acc=0.5, elapsed_s=last.elapsed_s + 0.1)]
    return dataclasses.replace(snapshot, metrics=new[-1]), new


async def started(pilot, clock):
    app = pilot.app
    app.home.pacer.clock = clock
    rows, snapshot = synthetic_run()
    app.home.source.mailbox.put(snapshot, rows)
    app.home.draw_frame()
    await pilot.pause(0.1)
    return rows, snapshot


def spies(app):
    return {
        "heatmap": Spy(app.query_one(Heatmap)),
        "bars": Spy(app.query_one(Bars)),
        "readout": Spy(app.query_one(Readout)),
        "loss": Spy(app.query_one("#loss", SeriesPlot)),
        "status": Spy(app.query_one(StatusPane), "update"),
    }


def test_new_metrics_redraw_the_curves_and_status_but_not_the_unchanged_weights():
    async def scenario():
        clock = Clock()
        app = MonitorApp.for_run(ManualSource())
        async with app.run_test(size=(120, 40)) as pilot:
            rows, snapshot = await started(pilot, clock)
            seen = spies(app)
            clock.now += 10  # every group is due
            app.home.source.mailbox.put(*later(snapshot, rows))
            app.home.draw_frame()
            assert len(seen["loss"]) == 1 and len(seen["status"]) == 1
            assert len(seen["heatmap"]) == len(seen["bars"]) == len(seen["readout"]) == 0

            # The same frame once more: nothing to draw at all.
            clock.now += 10
            app.home.source.mailbox.put(app.home.snapshot, [])
            app.home.draw_frame()
            assert len(seen["loss"]) == 1 and len(seen["status"]) == 1 and len(seen["heatmap"]) == 0

            # A new inspection: the weights redraw (the frequencies only if their figures moved).
            weights = {name: m * -1.0 for name, m in snapshot.matrices.items()}
            clock.now += 10
            app.home.source.mailbox.put(dataclasses.replace(app.home.snapshot, matrices=weights), [])
            app.home.draw_frame()
            assert len(seen["heatmap"]) == 1

    run(scenario())


def test_between_its_turns_a_heavy_pane_waits_and_the_status_does_not():
    async def scenario():
        clock = Clock()
        app = MonitorApp.for_run(ManualSource())
        async with app.run_test(size=(120, 40)) as pilot:
            rows, snapshot = await started(pilot, clock)
            seen = spies(app)
            for _ in range(4):  # four ticks of 0.25 s, a new frame before each
                clock.now += app.home.pacer.tick
                snapshot, rows = later(snapshot, rows)
                app.home.source.mailbox.put(snapshot, rows)
                app.home.draw_frame()
            assert len(seen["status"]) == 4  # 4 a second
            assert len(seen["loss"]) == 2  # 2 a second

    run(scenario())


def test_paused_nothing_is_redrawn():
    async def scenario():
        clock = Clock()
        app = MonitorApp.for_run(ManualSource())
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, clock)
            seen = spies(app)
            for _ in range(20):  # no frames arrive while paused
                clock.now += app.home.pacer.tick
                app.home.draw_frame()
            assert sum(len(spy) for spy in seen.values()) == 0

    run(scenario())


def test_a_new_norm_repaints_the_title_line_not_the_whole_pane():
    async def scenario():
        app = MonitorApp.for_run(ManualSource())
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, Clock())
            pane = app.query_one(NormPane)
            pane.set_title(pane._shown_title)
            assert not pane._repaint_regions
            pane.set_title("norm 1.0 (100%)")
            assert pane._repaint_regions == {Region(0, 0, pane.outer_size.width, 1)}
            await pilot.pause()
            top = app.screen._compositor.render_strips()[pane.region.y].text
            assert "norm 1.0 (100%)" in top

    run(scenario())


# ---- a widget repaints only the lines that changed ----------------------------------------------------


class One(App):
    def __init__(self, widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def test_the_heatmap_repaints_only_changed_lines_and_nothing_for_the_same_matrix():
    async def scenario():
        matrix = np.random.default_rng(0).normal(size=(40, 40))
        matrix[0, 0] = 10.0  # vmax stays put when a small weight changes
        app = One(Heatmap())
        async with app.run_test(size=(40, 12)) as pilot:
            heatmap = app.widget
            heatmap.set_matrix(matrix)
            await pilot.pause()
            heatmap.render_line(0)
            seen = Spy(heatmap)
            heatmap.set_matrix(matrix.copy())
            assert len(seen) == 0
            changed = matrix.copy()
            changed[-1, -1] = -10.0  # the bottom-right pixel only
            heatmap.set_matrix(changed)
            assert len(seen) == 1
            (region,) = seen.calls[0]
            assert region.height == 1 and region.width < 40 and region.y == 10  # the last matrix line
            await pilot.pause()
            assert heatmap.render_line(10).cell_length == 40

    run(scenario())


def test_a_plot_repaints_only_the_lines_whose_picture_changed():
    async def scenario():
        x = np.arange(100.0)
        plot = SeriesPlot(title="t", y_limits=(0.0, 1.0))
        app = One(plot)
        async with app.run_test(size=(60, 16)) as pilot:
            plot.set_data([Line("a", x, np.full(100, 0.2), (255, 0, 0))])
            await pilot.pause()
            seen = Spy(plot)
            plot.set_data([Line("a", x, np.full(100, 0.2), (255, 0, 0))])
            assert len(seen) == 0
            y = np.full(100, 0.2)
            y[-1] = 0.9  # one point jumps: the title and the lower rows stay as they were
            plot.set_data([Line("a", x, y, (255, 0, 0))])
            assert len(seen) == 1
            lines = seen.calls[0]
            assert 0 < len(lines) < 16 and all(r.height == 1 for r in lines)

    run(scenario())


# ---- the same picture in fewer bytes ----------------------------------------------------------------


def cells(segments):
    """What each cell shows: its character and background, and its foreground unless it is a plain blank."""
    out = []
    for text, style, _ in segments:
        lines = style.underline or style.underline2 or style.strike or style.overline or style.reverse
        for char in text:
            fg = None if char == " " and not lines else (style.color, style._attributes & style._set_attributes)
            out.append((char, style.bgcolor, fg))
    return out


def test_merging_keeps_every_cell_and_joins_what_looks_the_same():
    grey, blue, red = (Style.parse(s) for s in ("#e0e0e0 on #1e1e1e", "#58a6ff on #1e1e1e", "red on #1e1e1e"))
    under = Style.parse("underline red on #1e1e1e")
    line = [
        Segment("  ", grey),
        Segment("│", grey),
        Segment(" ", red),
        Segment("▝▚", blue),
        Segment("  ", grey),
        Segment("  ", under),
        Segment("ab", red),
        Segment(" ", Style.parse("on black")),
    ]
    merged = merge_segments(line)
    assert cells(merged) == cells(line)
    assert len(merged) == 5  # "  │ " grey, "▝▚  " blue, "  " underlined, "ab", the black blank
    assert merged[2].style == under


def test_the_lean_screen_is_the_same_picture_as_the_plain_one(monkeypatch):
    async def screen():
        app = MonitorApp.for_run(ManualSource())
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, Clock())
            # Settled: the same picture twice over (on a busy machine the footer's keys can still be
            # coming in after the first frame, and each screen would be caught at its own moment).
            picture = None
            for _ in range(100):
                before, picture = picture, [cells(strip) for strip in app.screen._compositor.render_strips()]
                if picture == before:
                    break
                await pilot.pause(0.1)
            return picture

    lean_screen = run(screen())
    monkeypatch.setattr(lean, "lean_strip", lambda strip: strip)
    assert lean_screen == run(screen())
