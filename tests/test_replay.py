"""Replay: a run's bounded history of its views (train/replay.py), written by the trainer and stepped through by
`grok-tui watch` with the arrow keys (sources/watched.py, ui/screens/run.py)."""

from __future__ import annotations

import io
import threading
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import grok_tui
from grok_tui.files import WriteError
from grok_tui.metrics import neuron_spectrum
from grok_tui.sources.watched import WatchedRun
from grok_tui.train import new_run, replay
from grok_tui.train.replay import REPLAY, Recorder, ReplayError, capacity_for
from grok_tui.train.spec import resume_run
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.keys import REPLAY_KEYS
from grok_tui.ui.panes.curves import CurvesPane
from grok_tui.ui.panes.embedding import EmbeddingPane
from grok_tui.ui.panes.plot import SeriesPlot
from grok_tui.ui.panes.weights import WeightsPane
from tests.conftest import notes, one_line, opened, run, status_text, tiny_config, wait_for, wait_until


def views(seed: int, p: int = 7, h: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embedding": rng.normal(size=(p, h)).astype(np.float32),
        "output": rng.normal(size=(h, p)).astype(np.float32),
    }


# ---- the recorder: bounded, spread, read back --------------------------------------------------------------


@pytest.mark.parametrize("capacity", [2, 8, 16])
def test_any_run_length_ends_with_between_half_the_capacity_and_the_capacity_spread_evenly(capacity):
    m = views(0)
    for n in range(1, 300):
        recorder = Recorder(capacity)
        for i in range(n):
            recorder.add(10 * i, m)
        steps = recorder.steps
        assert len(steps) <= capacity
        if n >= capacity:
            assert len(steps) >= capacity // 2
        assert steps[0] == 0 and steps[-1] == 10 * (n - 1)  # the whole run: its start and its newest frame
        # Evenly spread: the frames kept (all but the newest where it is off the cadence) every `every`-th.
        kept = steps if (n - 1) % recorder.every == 0 else steps[:-1]
        assert set(np.diff(kept).tolist()) <= {10 * recorder.every}


def test_the_capacity_comes_from_the_byte_budget_within_its_bounds():
    assert capacity_for(1) == 256  # tiny frames: the most frames
    assert capacity_for(10**9) == 16  # huge frames: the fewest
    assert capacity_for(2**20, budget=40 * 2**20) == 40
    recorder = Recorder()
    recorder.add(0, views(0, p=64, h=1024))  # 2 x 64 x 1024 float16: 256 KiB a frame
    assert recorder.capacity == 32


def test_frames_read_back_equal_those_recorded_within_float16():
    recorder = Recorder(8)
    recorded = []
    for i in range(20):
        m = views(i)
        own = np.random.default_rng(100 + i).normal(size=(7, 3)).astype(np.float32)
        recorder.add(5 * i, m, own)
        recorded.append((5 * i, m, own))
    back = Recorder.from_bytes(recorder.to_bytes())
    assert back.steps == recorder.steps and (back.every, back.offered) == (recorder.every, recorder.offered)
    by_step = {step: (m, own) for step, m, own in recorded}
    for i, step in enumerate(back.steps):
        frame = back.frame(i)
        m, own = by_step[step]
        assert frame.step == step and list(frame.matrices) == ["embedding", "output"]
        for name in m:
            assert frame.matrices[name].dtype == np.float32
            np.testing.assert_allclose(frame.matrices[name], m[name], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(frame.neuron_inputs, own, rtol=1e-3, atol=1e-3)


def test_inputs_that_are_a_matrix_are_kept_once_and_read_back_as_that_matrix():
    recorder = Recorder(4)
    m = views(1)
    recorder.add(0, m, m["embedding"])
    alone = Recorder(4)
    alone.add(0, m)
    assert recorder.nbytes == alone.nbytes
    frame = Recorder.from_bytes(recorder.to_bytes()).frame(0)
    assert frame.neuron_inputs is frame.matrices["embedding"]


def test_a_resumed_history_goes_on_from_its_step_and_stays_bounded():
    recorder = Recorder(8)
    for i in range(30):
        recorder.add(10 * i, views(i))
    back = Recorder.from_bytes(recorder.to_bytes())
    back.cut(150)  # resumed from the checkpoint at step 150: what followed is trained again
    assert back.steps[-1] <= 150
    for i in range(15, 200):
        back.add(10 * i, views(i))
    assert back.steps == sorted(set(back.steps)) and back.steps[-1] == 1990 and len(back.steps) <= 8


def test_a_frame_whose_matrices_changed_shape_is_not_kept():
    recorder = Recorder(8)
    recorder.add(0, views(0))
    recorder.add(10, views(1, p=9))
    assert recorder.steps == [0]


def test_a_failed_write_leaves_the_last_history_whole_and_is_tried_again(tmp_path, monkeypatch):
    recorder = Recorder(8)
    recorder.add(0, views(0))
    recorder.save(tmp_path)
    before = (tmp_path / REPLAY).read_bytes()
    recorder.add(10, views(1))

    def full_disk(path, data):
        raise WriteError(path, OSError(28, "No space left on device"))

    monkeypatch.setattr(replay, "write_atomic", full_disk)
    with pytest.raises(WriteError):
        recorder.save(tmp_path)
    assert (tmp_path / REPLAY).read_bytes() == before and recorder.dirty
    monkeypatch.undo()
    recorder.save(tmp_path)  # the next checkpoint's write
    assert Recorder.load(tmp_path).steps == [0, 10] and not recorder.dirty


def pickled_archive() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array([{"format": "grok-tui replay"}], dtype=object))
    return buffer.getvalue()


def truncated() -> bytes:
    recorder = Recorder(4)
    recorder.add(0, views(0))
    data = recorder.to_bytes()
    return data[: len(data) // 2]


def bad_meta() -> bytes:
    recorder = Recorder(4)
    recorder.add(0, views(0))
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(recorder.to_bytes())) as old, zipfile.ZipFile(buffer, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "steps.npy":  # steps that go back
                data = data.replace(np.array([0], dtype=np.int64).tobytes(), np.array([-5], dtype=np.int64).tobytes())
            new.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"not a zip at all", "not a readable replay archive"),
        (truncated(), "not a readable replay archive"),
        (pickled_archive(), "not a readable replay archive"),  # an object array: refused, never unpickled
        (bad_meta(), "its steps are not increasing"),
    ],
)
def test_a_damaged_history_is_one_line_naming_the_file(data, said):
    with pytest.raises(ReplayError) as e:
        Recorder.from_bytes(data, "RUN/replay.npz")
    assert one_line(str(e.value)) and str(e.value).startswith("RUN/replay.npz: ") and said in str(e.value)


# ---- a real run: recorded by the trainer, replayed by watch -----------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny run of 200 steps, trained to its end, its history of views beside its other files."""
    run_dir = tmp_path_factory.mktemp("replay") / "run"
    new_run(tiny_config(steps=200, eval_every=10), run_dir).build().run()
    return run_dir


def test_a_run_keeps_its_views_history_from_its_start_to_its_end(finished):
    recorder = Recorder.load(finished)
    assert recorder is not None
    assert recorder.steps[0] == 0 and recorder.steps[-1] == 200 and len(recorder) >= 2
    assert set(recorder.frame(0).matrices) == {"embedding", "output"}


def test_a_resumed_run_goes_on_with_its_history(tmp_path):
    run_dir = tmp_path / "run"
    new_run(tiny_config(steps=100, eval_every=10), run_dir).build().run()
    resume_run(run_dir, steps=300).build().run()
    steps = Recorder.load(run_dir).steps
    assert steps[0] == 0 and steps[-1] == 300 and steps == sorted(set(steps)) and 100 in steps


def shown_at(app, step: int) -> bool:
    return app.home.snapshot.step == step and f"replay: step {step:,} (" in status_text(app)


def test_watch_steps_through_the_recorded_views_with_the_arrow_keys(finished):
    recorder = Recorder.load(finished)
    steps = recorder.steps

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(finished), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 200)
            assert "←/→ replay" in status_text(app) and "LEARNING" not in status_text(app)
            assert all(b.tooltip in palette(app) for b in REPLAY_KEYS)  # and so in help, each with its key
            await pilot.press("left", "left")  # from now: the newest recorded step, then the one before
            back = steps[-2]
            await wait_for(pilot, lambda: shown_at(app, back))
            assert f"({len(steps) - 1}/{len(steps)})" in status_text(app)
            snapshot = app.home.snapshot
            frame = recorder.frame(len(steps) - 2)
            # The views of that step, not the last: its matrices, its embedding rows, its spectrum.
            for name, matrix in frame.matrices.items():
                np.testing.assert_array_equal(snapshot.matrices[name], matrix)
            np.testing.assert_array_equal(snapshot.neuron_inputs, frame.neuron_inputs)
            assert not np.array_equal(snapshot.neuron_inputs, recorder.frame(len(steps) - 1).neuron_inputs)
            assert (snapshot.spectrum.dominant == neuron_spectrum(frame.neuron_inputs).dominant).all()
            # What the panes draw is that frame's: the heatmap's matrices, the embedding's rows.
            await wait_for(pilot, lambda: app.query_one(WeightsPane)._last is snapshot)
            assert app.query_one(EmbeddingPane)._inputs is snapshot.neuron_inputs
            # The curves stay whole, marked at that step.
            assert app.home.history.series("test_acc").steps[-1] == 200
            assert marked_at(app) == back

            await pilot.press("home")
            await wait_for(pilot, lambda: shown_at(app, 0))
            assert marked_at(app) == 0
            assert "LEARNING" in status_text(app)  # the phase as it was then, read from the curves up to it
            await pilot.press("right")
            await wait_for(pilot, lambda: shown_at(app, steps[1]))
            await pilot.press("end")  # back to the run as it is now: no replay, no mark
            await wait_for(pilot, lambda: app.home.snapshot.step == 200 and "replay:" not in status_text(app))
            assert marked_at(app) is None
            await pilot.press("q")

    run(scenario())


def palette(app) -> set[str]:
    return {command.title for command in app.get_system_commands(app.screen)}


def marked_at(app) -> int | None:
    """The step the curves mark as replayed (the vertical line in the replay colour), or None."""
    pane = app.query_one(CurvesPane)
    color = pane.get_component_rich_style("plot--replay").color.get_truecolor()
    found = {
        int(line.x[0])
        for plot in pane.query(SeriesPlot)
        for line in plot._lines
        if len(line.x) == 2 and line.x[0] == line.x[1] and line.color == tuple(color)
    }
    assert len(found) <= 1
    return found.pop() if found else None


def copy_run(finished, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for path in finished.iterdir():
        (run_dir / path.name).write_bytes(path.read_bytes())
    return run_dir


def test_a_run_without_a_history_opens_as_before_and_the_arrows_say_why_they_do_nothing(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path)
    (run_dir / REPLAY).unlink()  # a run of a grok-tui before replay

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 200)
            assert app.home.snapshot.matrices and "replay" not in status_text(app)
            assert all(f"{b.tooltip} (disabled)" in palette(app) for b in REPLAY_KEYS)
            await pilot.press("left")
            await wait_for(pilot, lambda: any(REPLAY in n for n in notes(app)))
            assert app.home.snapshot.step == 200 and app.is_running
            await pilot.press("q")

    run(scenario())


def test_a_damaged_history_is_one_line_and_the_run_opens_without_replay(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path)
    (run_dir / REPLAY).write_bytes(b"PK\x03\x04 this was cut short")

    async def scenario():
        app = MonitorApp.for_run(WatchedRun(run_dir), frame_interval=0.05)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step == 200)
            await wait_for(pilot, lambda: len(notes(app)) == 1)
            assert one_line(notes(app)[0]) and str(run_dir / REPLAY) in notes(app)[0]
            assert app.home.snapshot.matrices  # the checkpoint's weights, as before
            await pilot.press("left")
            await pilot.pause(0.2)
            assert app.home.snapshot.step == 200 and "replay:" not in status_text(app) and app.is_running
            await pilot.press("q")

    run(scenario())


def test_a_scripts_run_keeps_its_views_at_each_checkpoint_and_watch_replays_them(tmp_path):
    torch.manual_seed(0)
    p = 7
    model = nn.Sequential(nn.Embedding(p, 8), nn.Flatten(), nn.Linear(16, p))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-1, weight_decay=0.5)
    x = torch.cartesian_prod(torch.arange(p), torch.arange(p))
    y = (x[:, 0] + x[:, 1]) % p
    run_dir = tmp_path / "run"
    at_start = model[0].weight.detach().clone().numpy()
    with grok_tui.monitor(model, optimizer, run_dir=run_dir, neuron_inputs=lambda: model[0].weight) as m:
        for i in range(1, 31):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i % 10 == 0:
                m.log(i, train_loss=loss.item(), train_acc=0.5, test_loss=loss.item(), test_acc=0.5)
    recorder = Recorder.load(run_dir)
    assert recorder is not None and recorder.steps == [0, 30]  # its first checkpoint and its last
    np.testing.assert_allclose(recorder.frame(0).neuron_inputs, at_start, rtol=1e-3, atol=1e-3)
    source = WatchedRun(run_dir)
    done = threading.Event()
    reader = threading.Thread(target=source.run, args=(done.is_set,), daemon=True)
    reader.start()
    try:
        wait_until(lambda: source.mailbox.take()[0] is not None, timeout=10)
        source.replay.seek(0)
        snapshot = source.mailbox.take()[0]
    finally:
        done.set()
        reader.join()
    np.testing.assert_array_equal(snapshot.neuron_inputs, recorder.frame(0).neuron_inputs)
    assert snapshot.spectrum is not None  # the frequencies of that step, from its inputs
