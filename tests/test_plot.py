import math

import numpy as np
from textual.app import App, ComposeResult

from grok_tui.ui.panes.plot import Line, SeriesPlot, compact, downsample, linear_ticks, log_ticks
from tests.conftest import run


def test_downsample_caps_points_keeps_ends_and_order_and_drops_nan():
    x = np.arange(10_000, dtype=float)
    y = np.linspace(4, 0.001, 10_000)
    y[[0, 5_000, 9_999]] = [1.0, np.nan, np.nan]
    dx, dy = downsample(x, y, 100)
    assert 2 <= len(dx) <= 100 and len(dx) == len(dy)
    assert dx[0] == 0 and dy[0] == 1.0
    assert dx[-1] == 9_998 and dy[-1] == y[9_998]  # the NaN last point is gone
    assert np.all(np.diff(dx) > 0)
    assert np.all(np.isfinite(dy))
    assert 5_000 not in dx


def test_downsample_keeps_the_true_last_point_and_short_series_whole():
    x = np.arange(1_001, dtype=float)
    dx, dy = downsample(x, x * 2, 50)
    assert dx[-1] == 1_000 and dy[-1] == 2_000
    short_x, short_y = downsample([0, 1, 2], [3, np.nan, 5], 50)
    assert short_x.tolist() == [0, 2] and short_y.tolist() == [3, 5]


def test_downsample_spreads_along_x_not_index():
    # Dense late points (as on a log axis) must not crowd out the early ones.
    x = np.concatenate([np.linspace(0, 1, 10), np.linspace(1.01, 5, 10_000)])
    dx, _ = downsample(x, x, 50)
    assert np.sum(dx <= 1) >= 5


def test_log_ticks_at_powers_of_ten():
    positions, labels = log_ticks(math.log10(0.001), math.log10(5))
    assert positions == [-3, -2, -1, 0]
    assert labels == ["1e-3", "0.01", "0.1", "1"]


def test_log_ticks_for_steps_use_k_and_m_suffixes():
    _, labels = log_ticks(0, 6)
    assert labels == ["1", "10", "100", "1k", "10k", "100k", "1M"]


def test_log_ticks_thin_out_and_fall_back_inside_one_decade():
    positions, _ = log_ticks(-8, 1, max_ticks=4)
    assert len(positions) <= 4 and all(p == int(p) for p in positions)
    positions, labels = log_ticks(math.log10(2), math.log10(5))
    assert len(positions) >= 2 and "2" in labels and "5" in labels


def test_linear_ticks_are_round_and_compact():
    positions, labels = linear_ticks(0, 4_990, 6)
    assert positions == [0, 1_000, 2_000, 3_000, 4_000]
    assert labels == ["0", "1k", "2k", "3k", "4k"]
    assert linear_ticks(0, 1, 6)[1] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert compact(2_500) == "2.5k" and compact(0.00025) == "2.5e-4"


class PlotApp(App):
    def compose(self) -> ComposeResult:
        yield SeriesPlot(title="train loss", log_y=True)


def _loss_lines(end_step: int = 5_000) -> list[Line]:
    steps = np.arange(0, end_step + 1, 10, dtype=float)
    loss = 4 * (1e-3 / 4) ** (steps / end_step)  # 4 -> 1e-3, straight on log y
    return [Line("train", steps, loss, "cyan")]


def test_series_plot_renders_caches_and_survives_log_toggles():
    async def scenario():
        app = PlotApp()
        async with app.run_test(size=(80, 24)) as pilot:
            plot = app.query_one(SeriesPlot)
            empty = plot.render()
            assert "train loss" in empty.plain

            plot.set_data(_loss_lines(), markers=[2_000])
            await pilot.pause()
            first = plot.render()
            assert "train loss" in first.plain
            assert "1e-3" in first.plain and "0.01" in first.plain
            assert "1k" in first.plain  # compact linear step ticks

            # Nothing changed: the very same object, so no plotext rebuild.
            assert plot.render() is first
            plot.set_data(_loss_lines(), markers=[2_000])  # same data again
            assert plot.render() is first

            # plotext's own log axes break on the second build; ours must not.
            for _ in range(4):
                plot.log_x = not plot.log_x
                await pilot.pause()
                text = plot.render()
                assert "train loss" in text.plain
            plot.log_x = True
            await pilot.pause()
            assert "100" in plot.render().plain and "1k" in plot.render().plain

            before = plot.render()
            plot.set_data(_loss_lines(6_000), markers=[2_000])
            after = plot.render()
            assert after is not before
            assert "train loss" in after.plain

            plot.log_y = False
            assert plot.render() is not after

    run(scenario())


def test_series_plot_y_limits_and_tiny_sizes_never_raise():
    class LimitsApp(App):
        def compose(self) -> ComposeResult:
            yield SeriesPlot(title="accuracy", y_limits=(0.0, 1.0))

    async def scenario():
        app = LimitsApp()
        async with app.run_test(size=(80, 24)) as pilot:
            plot = app.query_one(SeriesPlot)
            steps = np.arange(100, dtype=float)
            plot.set_data(
                [
                    Line("test", steps, np.full(100, 0.5), "orange"),
                    Line("one point", steps[:1], steps[:1] * 0 + 0.25, (200, 100, 50)),
                ]
            )
            await pilot.pause()
            text = plot.render().plain
            assert "accuracy" in text and "0.2" in text and "1" in text

            for width, height in [(12, 4), (3, 2), (1, 1)]:
                await pilot.resize_terminal(width, height)
                await pilot.pause()
                plot.render()
                plot.log_y = not plot.log_y
                plot.render()

    run(scenario())
