"""The embedding pane: the projection it draws (metrics.embedding_projection), on circles made by hand, on
random rows and on a tiny run before and after training; and the pane itself under the Pilot."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from grok_tui.metrics import circle_order, embedding_projection
from grok_tui.sources.manual import ManualSource
from grok_tui.train.trainer import Trainer
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.panes.embedding import EmbeddingPane
from grok_tui.ui.panes.scatter import POINT, Scatter, cells, layout
from tests.conftest import run, tiny_config, wait_for
from tests.fakes import synthetic_run


def circle(p: int, k: int, h: int = 16, seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """Row a = cos(2πka/p)·u + sin(2πka/p)·v + c, with u ⊥ v of one length and c a common offset."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(h, 3)))
    angle = 2 * np.pi * k * np.arange(p) / p
    rows = 3.0 * (np.outer(np.cos(angle), q[:, 0]) + np.outer(np.sin(angle), q[:, 1])) + 5.0 * q[:, 2]
    return rows + noise * rng.normal(size=rows.shape)


def angles(points: np.ndarray) -> np.ndarray:
    return np.arctan2(points[:, 1], points[:, 0])


def ring_spread(points: np.ndarray) -> float:
    """How thick the ring is: the spread of the radii over their mean (0 for a circle)."""
    r = np.hypot(points[:, 0], points[:, 1])
    return float(r.std() / r.mean())


# ---- the projection ------------------------------------------------------------------------------------


def test_fourier_puts_row_a_of_a_circle_at_angle_2pi_k_a_over_p():
    p, k = 31, 5
    proj = embedding_projection(circle(p, k), "fourier")
    assert proj.frequency == k and proj.mode == "fourier"
    assert proj.share == pytest.approx(1.0)
    turn = np.exp(1j * (angles(proj.points) - 2 * np.pi * k * np.arange(p) / p))
    assert np.allclose(turn, 1.0)  # exactly there: no rotation, no reflection
    assert circle_order(proj.points) == (k, pytest.approx(1.0))
    assert ring_spread(proj.points) == pytest.approx(0.0, abs=1e-9)


def test_pca_of_a_circle_holds_all_of_it_and_random_rows_hold_little():
    p = 31
    pca = embedding_projection(circle(p, 3), "pca")
    assert pca.share == pytest.approx(1.0) and pca.frequency is None
    assert circle_order(pca.points) == (3, pytest.approx(1.0))
    noise = np.random.default_rng(1).normal(size=(p, 64))
    for mode in ("pca", "fourier"):
        assert embedding_projection(noise, mode).share < 0.3
    assert circle_order(embedding_projection(noise, "pca").points)[1] < 0.5


def test_pca_keeps_the_signs_of_the_axes_it_is_given_and_fixed_axes_are_used_as_they_are():
    rows = circle(31, 3, noise=0.3)
    first = embedding_projection(rows, "pca")
    flipped = embedding_projection(rows, "pca", -first.basis)
    assert np.allclose(flipped.basis, -first.basis) and np.allclose(flipped.points, -first.points)
    other = circle(31, 7, seed=3)
    held = embedding_projection(other, "fixed", first.basis)
    assert held.basis is not None and np.allclose(held.points, (other - other.mean(axis=0)) @ first.basis)
    assert held.share < embedding_projection(other, "pca").share
    with pytest.raises(ValueError, match="fixed axes must be 16 × 2"):
        embedding_projection(other, "fixed")
    with pytest.raises(ValueError, match="not a projection"):
        embedding_projection(other, "tsne")


def test_a_trained_tiny_run_draws_a_more_ordered_thinner_circle_than_at_init():
    trainer = Trainer(tiny_config(steps=600, eval_every=600, seed=0))
    before = trainer.model.neuron_inputs().detach().numpy().copy()
    after = trainer.run().neuron_inputs  # the last frame carries what the pane draws
    assert after is not None and after.dtype == np.float32 and after.shape == (23, 32)
    start, end = embedding_projection(before, "fourier"), embedding_projection(after, "fourier")
    assert circle_order(end.points)[1] > circle_order(start.points)[1] + 0.05
    assert ring_spread(end.points) < 0.5 * ring_spread(start.points)


def test_a_frame_pickled_without_neuron_inputs_still_loads():
    _, snapshot = synthetic_run()
    state = dict(snapshot.__dict__)
    del state["neuron_inputs"]  # as an older grok-tui pickled it
    old = object.__new__(type(snapshot))
    old.__dict__.update(state)
    assert pickle.loads(pickle.dumps(old)).neuron_inputs is None


# ---- the drawing ---------------------------------------------------------------------------------------


def test_a_circle_stays_round_in_cells_twice_as_tall_as_wide_and_labels_never_touch():
    p = 24
    points = embedding_projection(circle(p, 1), "fourier").points
    placed = np.array(cells(points, 41, 21))
    assert placed[:, 0].min() == 0 and placed[:, 0].max() == 40  # as wide as the area
    assert placed[:, 1].min() == 0 and placed[:, 1].max() == 20  # and as tall: 21 lines hold 42 columns of y
    dots, written = layout(points, [str(a) for a in range(p)], 41, 21)
    assert len(dots) == p and written  # every point has its cell, and some have their number
    spans = {(x + j, y) for (x, y), (label, _) in written.items() for j in range(len(label))}
    assert not spans & set(dots)  # no label over a point
    for (x, y), (label, i) in written.items():
        assert y == placed[i][1] and x in (placed[i][0] + 1, placed[i][0] - len(label))


# ---- the pane --------------------------------------------------------------------------------------------


def test_the_pane_draws_the_rows_and_e_cycles_the_axes_which_fixed_stay_across_frames():
    rows, synthetic = synthetic_run()
    first = dataclasses.replace(synthetic, neuron_inputs=circle(31, 5, h=48, noise=0.2).astype(np.float32))
    source = ManualSource(rows, first)
    app = MonitorApp.for_run(source, frame_interval=0.05, refresh=0.1)

    async def body():
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(EmbeddingPane)
            scatter = app.query_one(Scatter)
            await wait_for(pilot, lambda: str(pane.border_title).startswith("embedding: k=5 cos/sin"))
            assert str(pane.border_title).endswith("%") and pane.border_subtitle == "e: axes"
            drawn = "".join(scatter.render_line(y).text for y in range(scatter.size.height))
            assert drawn.count(POINT) >= 25 and "0" in drawn  # the points, and labels where there is room

            # A new inspection with the same rows is the same picture: nothing is repainted.
            repaints: list[tuple] = []
            scatter.refresh = lambda *regions, **kw: repaints.append(regions)  # type: ignore[method-assign]
            assert first.neuron_inputs is not None
            pane.show(dataclasses.replace(first, neuron_inputs=first.neuron_inputs.copy()), app.home.history)
            assert repaints == []
            del scatter.refresh

            await pilot.press("e")
            assert str(pane.border_title).startswith("embedding: PC1+PC2 ")
            await pilot.press("e")
            assert str(pane.border_title).startswith("embedding: PCs of step 3,000 ")
            assert pane.fixed is not None
            held = pane.fixed[1]

            later = circle(31, 7, h=48, seed=4, noise=0.2).astype(np.float32)
            metrics = dataclasses.replace(first.metrics, step=3100)
            source.put(dataclasses.replace(first, metrics=metrics, neuron_inputs=later))
            await wait_for(pilot, lambda: pane._last is not None and pane._last.step == 3100)
            assert pane.fixed is not None and pane.fixed[1] is held  # the axes of step 3,000, kept
            assert str(pane.border_title).startswith("embedding: PCs of step 3,000 ")

            await pilot.press("e")
            assert str(pane.border_title).startswith("embedding: k=7 cos/sin ")  # back to the live circle

            source.put(dataclasses.replace(first, metrics=dataclasses.replace(metrics, step=3200), neuron_inputs=None))
            await wait_for(pilot, lambda: pane._last is not None and pane._last.step == 3200)
            text = "".join(scatter.render_line(y).text for y in range(scatter.size.height))
            assert "nothing to draw" in text and POINT not in text

    run(body())


def test_the_pane_gives_way_in_a_small_terminal_and_the_key_says_so():
    rows, synthetic = synthetic_run()
    app = MonitorApp.for_run(ManualSource(rows, synthetic))

    async def body():
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot is not None)
            assert not app.query_one(EmbeddingPane).display
            await pilot.press("e")
            await wait_for(pilot, lambda: any("embedding pane needs" in n.message for n in app._notifications))

    run(body())
