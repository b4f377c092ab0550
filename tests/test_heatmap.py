import numpy as np
import pytest
from textual.app import App, ComposeResult

from grok_tui.ui.panes.heatmap import LEVELS, UPPER_HALF, Heatmap, colour_levels, fit
from tests.conftest import run

MIDDLE = (LEVELS - 1) // 2


def test_fit_block_averages_even_blocks():
    m = np.arange(16, dtype=float).reshape(4, 4)
    out = fit(m, 2, 2)
    expected = np.array([[m[:2, :2].mean(), m[:2, 2:].mean()], [m[2:, :2].mean(), m[2:, 2:].mean()]])
    np.testing.assert_allclose(out, expected)


@pytest.mark.parametrize("r, c", [(0, 0), (6, 4), (0, 4), (6, 0), (3, 1), (6, 3)])
def test_fit_uneven_blocks_cover_every_element(r, c):
    m = np.zeros((7, 5))
    m[r, c] = 100.0
    out = fit(m, 3, 2)
    assert out.shape == (3, 2)
    assert np.count_nonzero(out) == 1  # the spike lands in exactly one block, never cropped
    assert out.max() > 0


def test_fit_upscales_by_repetition():
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = fit(m, 4, 6)
    expected = np.array([[1, 1, 1, 2, 2, 2]] * 2 + [[3, 3, 3, 4, 4, 4]] * 2, dtype=float)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("shape", [(67, 128), (256, 128), (128, 67), (1000, 1000), (1, 1), (3, 97)])
@pytest.mark.parametrize("target", [(36, 60), (1, 1), (2, 200), (500, 7)])
def test_fit_shape_is_exact(shape, target):
    out = fit(np.random.default_rng(0).normal(size=shape), *target)
    assert out.shape == target
    assert np.isfinite(out).all()


def test_fit_mixed_shrink_and_grow_keeps_means():
    m = np.random.default_rng(1).normal(size=(10, 3))
    out = fit(m, 5, 9)  # rows halve, columns triple
    np.testing.assert_allclose(out[:, ::3], (m[0::2] + m[1::2]) / 2)


def test_colour_levels_symmetric_limits():
    lv = colour_levels(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), vmax=2.0, levels=LEVELS)
    assert lv.tolist() == [0, MIDDLE // 2, MIDDLE, MIDDLE + MIDDLE // 2, LEVELS - 1]
    assert lv.dtype.kind == "i"


def test_colour_levels_degenerate_inputs_are_neutral():
    values = np.array([np.nan, np.inf, -np.inf, 0.0])
    assert colour_levels(np.zeros(4), 0.0).tolist() == [MIDDLE] * 4
    assert colour_levels(values, np.nan).tolist() == [MIDDLE] * 4
    assert colour_levels(values, 1.0)[[0, 3]].tolist() == [MIDDLE, MIDDLE]


class HeatmapApp(App):
    def compose(self) -> ComposeResult:
        yield Heatmap()


def segments(strip):
    return [seg for seg in strip if seg.text]


def line_text(heatmap, y):
    return "".join(seg.text for seg in heatmap.render_line(y))


def test_renders_pattern_title_and_colour_bar():
    async def scenario():
        matrix = np.zeros((67, 128))
        matrix[:, :64] = 0.52
        matrix[:, 64:] = -0.52
        app = HeatmapApp()
        async with app.run_test(size=(60, 20)) as pilot:
            heatmap = app.query_one(Heatmap)
            heatmap.set_matrix(matrix, title="embedding")
            await pilot.pause()
            assert heatmap.size == (60, 20)

            assert "embedding 67×128" in line_text(heatmap, 0)
            bar = line_text(heatmap, 19)
            assert bar.startswith("-0.52 ▕") and "▏ +0.52" in bar
            assert len(bar) == 60

            row = [(char, seg.style) for seg in heatmap.render_line(5) for char in seg.text]
            assert len(row) == 60
            assert all(char == UPPER_HALF for char, _ in row)
            left, right = row[5][1], row[55][1]
            red, _, blue = left.color.get_truecolor()
            assert red > 150 and red > blue
            red, _, blue = right.color.get_truecolor()
            assert blue > 150 and blue > red
            # A uniform column block: both pixels of a cell share the colour.
            assert left.color == left.bgcolor

            # Out-of-range lines are blank, not errors.
            assert heatmap.render_line(99).cell_length == 60

    run(scenario())


def test_zero_and_nan_matrices_draw_neutral():
    async def scenario():
        app = HeatmapApp()
        async with app.run_test(size=(30, 8)) as pilot:
            heatmap = app.query_one(Heatmap)
            for matrix in (np.zeros((5, 5)), np.full((5, 5), np.nan)):
                heatmap.set_matrix(matrix)
                await pilot.pause()
                styles = {seg.style for y in range(7) for seg in segments(heatmap.render_line(y))}
                assert len(styles) == 1
                neutral = styles.pop()
                assert neutral.color == neutral.bgcolor
                assert "0 ▕" in line_text(heatmap, 7)

    run(scenario())


def test_nan_spike_ignored_for_limits():
    async def scenario():
        matrix = np.ones((4, 4))
        matrix[0, 0] = np.nan
        matrix[1, 1] = np.inf
        app = HeatmapApp()
        async with app.run_test(size=(30, 8)) as pilot:
            heatmap = app.query_one(Heatmap)
            heatmap.set_matrix(matrix)
            await pilot.pause()
            assert heatmap.vmax == 1.0
            assert "+1" in line_text(heatmap, 7)

    run(scenario())


def test_cache_reused_until_matrix_or_size_changes():
    async def scenario():
        app = HeatmapApp()
        async with app.run_test(size=(40, 10)) as pilot:
            heatmap = app.query_one(Heatmap)
            heatmap.set_matrix(np.eye(20), title="eye")
            await pilot.pause()
            first = heatmap.render_line(3)
            assert heatmap.render_line(3) is first
            heatmap.set_matrix(-np.eye(20), title="eye")
            await pilot.pause()
            assert heatmap.render_line(3) is not first
            second = heatmap.render_line(3)
            await pilot.resize_terminal(30, 10)
            await pilot.pause()
            assert heatmap.render_line(3) is not second
            assert heatmap.render_line(3).cell_length == 30

    run(scenario())


@pytest.mark.parametrize("size", [(10, 4), (5, 2), (8, 3), (7, 30), (1, 1)])
def test_small_sizes_do_not_raise(size):
    async def scenario():
        app = HeatmapApp()
        async with app.run_test(size=(60, 20)) as pilot:
            heatmap = app.query_one(Heatmap)
            heatmap.set_matrix(np.random.default_rng(2).normal(size=(67, 128)), title="a long title here")
            await pilot.pause()
            await pilot.resize_terminal(*size)
            await pilot.pause()
            width, height = size
            lines = [heatmap.render_line(y) for y in range(height)]
            assert all(line.cell_length == width for line in lines)
            if width < 8 or height < 3:
                assert all(set(line.text) <= {" "} for line in lines)

    run(scenario())


def test_theme_colours_come_from_component_classes():
    async def scenario():
        class Themed(HeatmapApp):
            CSS = "Heatmap > .heatmap--positive { color: #00ff00; }"

        matrix = np.ones((4, 4))
        app = Themed()
        async with app.run_test(size=(20, 6)) as pilot:
            heatmap = app.query_one(Heatmap)
            heatmap.set_matrix(matrix)
            await pilot.pause()
            style = segments(heatmap.render_line(1))[0].style
            assert style.color.get_truecolor() == (0, 255, 0)

    run(scenario())
