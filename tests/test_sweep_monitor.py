"""The sweep monitor: the phase map over hand-written sweep directories, driven through Textual's Pilot."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from grok_tui.cli import main
from grok_tui.process import read_record
from grok_tui.runlog import RunLog
from grok_tui.sources.sweep import SweepSource
from grok_tui.sweep.launch import sweep_state
from grok_tui.sweep.phases import PhaseRule
from grok_tui.sweep.store import create_sweep, member_record, write_members
from grok_tui.train.snapshot import Metrics
from grok_tui.ui.app import MonitorApp
from grok_tui.ui.panes.curves import CurvesPane
from grok_tui.ui.panes.phase_map import PhaseMapPane, block_layout
from grok_tui.ui.panes.plot import SeriesPlot
from grok_tui.ui.screens.run import RunScreen
from grok_tui.ui.screens.sweep import SweepScreen
from tests.conftest import notes, run, wait_for, wait_until

STEPS = 100
# How each phase's curves go: (train accuracy, test accuracy) at step s of STEPS.
SHAPES = {
    "comprehension": lambda s: (min(1.0, s / 30), min(1.0, s / 30)),
    "grokking": lambda s: (min(1.0, s / 20), 0.95 if s >= 80 else 0.05),
    "memorization": lambda s: (min(1.0, s / 20), 0.05),
    "confusion": lambda s: (0.2, 0.05),
}


def row(step: int, train_acc: float, test_acc: float) -> dict:
    return Metrics(
        step=step,
        train_loss=1.0 - 0.9 * train_acc,
        train_acc=train_acc,
        test_loss=1.0 - 0.9 * test_acc,
        test_acc=test_acc,
        param_norm=10.0,
        weight_decay=1.0,
        lr=0.01,
        l1=0.0,
        elapsed_s=step / 100,
        steps_per_s=100.0,
    ).to_dict()


def make_sweep(root: Path, **given):
    """A sweep directory as `grok-tui sweep` creates it (no rows yet): mod-add, STEPS steps."""
    values = {**given, "steps": [STEPS]}
    return create_sweep(root, "mod-add", values, PhaseRule(), workers=1)


def write_member(info, member, shape, upto: int = STEPS) -> list[dict]:
    """Rows for `member` up to step `upto`, shaped as `shape` (a key of SHAPES), as the engine writes them."""
    log = RunLog(info.member_dir(member))
    rows = [row(s, *SHAPES[shape](s)) for s in range(0, upto + 1, 10)]
    for r in rows:
        log.metrics(r)
    log.flush()
    return rows


def finish(info, rows_by_index: dict) -> None:
    """members.jsonl: every member finished, with the rows given (by member index)."""
    records = [member_record(info, m, rows_by_index[m.index], True) for m in info.grid.members]
    write_members(info.root, records)


# A 2x2 grid (wd across, frac up), two seeds a cell: each cell one phase.
PLAN = {(0.1, 0.3): "memorization", (1.0, 0.3): "grokking", (0.1, 0.5): "confusion", (1.0, 0.5): "comprehension"}


@pytest.fixture
def finished_sweep(tmp_path):
    info = make_sweep(tmp_path / "sweep", weight_decay=[0.1, 1.0], train_frac=[0.3, 0.5], seed=[0, 1])
    rows = {}
    for member in info.grid.members:
        shape = PLAN[(member.values["weight_decay"], member.values["train_frac"])]
        rows[member.index] = write_member(info, member, shape)
    finish(info, rows)
    return info


def app_for(root: Path, process=None, theme=None) -> MonitorApp:
    return MonitorApp(SweepScreen(SweepSource(root, process), refresh=0.1), theme=theme)


def map_text(app) -> str:
    return "\n".join(line.plain for line in app.query_one(PhaseMapPane).lines(*map_size(app)))


def map_size(app) -> tuple[int, int]:
    size = app.query_one(PhaseMapPane).content_size
    return size.width, size.height


def acc_legend(app) -> list[str]:
    return [line.label for line in app.query_one("#acc", SeriesPlot)._lines if line.label]


def test_the_map_colours_and_letters_each_cell_by_its_phase(finished_sweep):
    async def scenario():
        app = app_for(finished_sweep.root)
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(PhaseMapPane)
            await wait_for(pilot, lambda: len(pane.blocks) == 4)
            for (wd, frac), phase in PLAN.items():
                assert [b.phase for b in pane.blocks[(wd, frac)]] == [phase, phase]
                for block in pane.blocks[(wd, frac)]:
                    assert pane.block_style(block) == pane.get_component_rich_style(f"phase-map--{phase}")
            text = map_text(app).splitlines()
            # Larger frac up: the 0.5 row (confusion, comprehension) is drawn above the 0.3 row.
            top = next(i for i, line in enumerate(text) if "X" in line)
            bottom = next(i for i, line in enumerate(text) if "G" in line)
            assert top < bottom
            assert "C" in text[top] and "M" in text[bottom]
            assert text[top].index("X") < text[top].index("C")  # wd 0.1 left of wd 1
            styles = {pane.get_component_rich_style(f"phase-map--{p}").bgcolor for p in PLAN.values()}
            assert len(styles) == 4  # four phases, four colours
            assert "finished" in app.home.status_text().plain

    run(scenario())


def test_arrows_move_the_cursor_and_the_curves_follow_that_cells_members(finished_sweep):
    async def scenario():
        app = app_for(finished_sweep.root)
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(PhaseMapPane)
            await wait_for(pilot, lambda: len(pane.blocks) == 4)
            assert pane.cell == (0.1, 0.5)  # the top left cell
            await wait_for(pilot, lambda: acc_legend(app) == ["seed 0", "seed 1"])
            assert {c.run_dir.name for c in app.home.curves} == {"wd=0.1,frac=0.5,seed=0", "wd=0.1,frac=0.5,seed=1"}
            await pilot.press("right", "down")
            assert pane.cell == (1.0, 0.3)
            await wait_for(
                pilot,
                lambda: (
                    {c.run_dir.name for c in app.home.curves}
                    == {
                        "wd=1,frac=0.3,seed=0",
                        "wd=1,frac=0.3,seed=1",
                    }
                ),
            )
            # The pane holds that cell's series: grokking's test accuracy, reaching 0.95 late.
            await wait_for(pilot, lambda: len(app.query_one("#acc", SeriesPlot)._lines) == 4)
            tests = [line for line in app.query_one("#acc", SeriesPlot)._lines if line.label]
            assert [line.label for line in tests] == ["seed 0", "seed 1"]
            assert tests[0].y[-1] == pytest.approx(0.95) and tests[0].y[0] == pytest.approx(0.05)
            assert "wd=1, frac=0.3" in str(app.query_one(CurvesPane).border_title)
            await pilot.press("right", "down")  # the edge: the cursor stays
            assert pane.cell == (1.0, 0.3)
            await pilot.press("q")
        assert app.return_value == 0

    run(scenario())


def test_enter_opens_the_chosen_member_over_the_map_and_esc_or_q_come_back_to_the_same_cell(finished_sweep):
    async def scenario():
        app = app_for(finished_sweep.root)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.home.view is not None)
            await pilot.press("right", "m", "t", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot is not None)
            member = app.screen
            assert member.source.run_dir == finished_sweep.root / "members" / "wd=1,frac=0.5,seed=1"
            assert member.source.control is None  # read-only, as grok-tui watch MEMBER_DIR
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.home)
            pane = app.query_one(PhaseMapPane)
            assert pane.cell == (1.0, 0.5) and pane.chosen == 1 and app.theme_name == "light"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
            await pilot.press("q")  # q over a member closes the member, not the monitor
            await wait_for(pilot, lambda: app.screen is app.home)
            assert app.is_running
            await pilot.press("q")
        assert app.return_value == 0

    run(scenario())


def test_a_growing_sweep_shades_undecided_members_then_colours_them_when_finished(tmp_path):
    info = make_sweep(tmp_path / "sweep", weight_decay=[0.1, 1.0], seed=[0, 1])

    async def scenario():
        app = app_for(info.root)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(PhaseMapPane)
            await wait_for(pilot, lambda: app.home.view is not None)
            assert all(b.phase is None and b.test_acc is None for bs in pane.blocks.values() for b in bs)
            rows = {m.index: write_member(info, m, "memorization", upto=50) for m in info.grid.members}
            await wait_for(pilot, lambda: all(b.test_acc is not None for bs in pane.blocks.values() for b in bs))
            assert len(pane.blocks[(0.1, None)]) == 2  # seeds are blocks within a cell, never the rows
            block = pane.blocks[(0.1, None)][0]
            assert block.phase is None  # memorizing so far, but not finished: undecided
            assert pane.block_style(block) == pane.get_component_rich_style("phase-map--ramp-0")
            assert "4 undecided" in app.home.status_text().plain
            for m in info.grid.members:
                rows[m.index] += write_member(info, m, "memorization")[6:]
            finish(info, rows)
            await wait_for(pilot, lambda: all(b.phase == "memorization" for bs in pane.blocks.values() for b in bs))
            assert "M" in map_text(app)
            await wait_for(pilot, lambda: " M 4" in app.home.status_text().plain)

    run(scenario())


def test_80x24_shows_every_cell_of_a_4x2_grid_with_two_seeds(tmp_path):
    info = make_sweep(tmp_path / "sweep", weight_decay=[0.03, 0.1, 0.3, 1.0], train_frac=[0.2, 0.3], seed=[0, 1])
    rows = {m.index: write_member(info, m, "grokking") for m in info.grid.members}
    finish(info, rows)

    async def scenario():
        app = app_for(info.root, theme="mono")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.home.view is not None and "G" in map_text(app))
            text = map_text(app)
            assert text.count("G") >= 16  # every member's block, each with its letter
            for value in ("0.03", "0.1", "0.3", "1", "0.2"):
                assert value in text
            assert "grokking" in text  # the legend
            await pilot.press("t")  # every theme draws it
            await pilot.pause(0.2)
            assert map_text(app).count("G") >= 16

    run(scenario())


def test_block_layout_fits_the_cell():
    assert block_layout(2, 15, 1) == (2, 7, 1, 1)
    cols, bw, bh, gap = block_layout(9, 10, 3)
    assert cols * bw + (cols - 1) * gap <= 10 and -(-9 // cols) * bh <= 3
    assert block_layout(30, 5, 1)[1] == 1  # more members than columns: one column each


def test_watch_of_a_broken_sweep_is_one_line_and_exit_2(tmp_path, capsys):
    info = make_sweep(tmp_path / "sweep", weight_decay=[0.1, 1.0])
    (info.root / "sweep.json").write_text("{not json")
    code = main(["watch", str(info.root)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "not valid JSON" in err and "Traceback" not in err


def test_a_sweep_process_that_dies_early_shows_its_last_error(tmp_path):
    info = make_sweep(tmp_path / "sweep", weight_decay=[0.1, 1.0])
    (info.root / "output.log").write_text("# grok-tui: sweep process 1\ngrok-tui: error: shard 0: out of memory\n")
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(1)"])
    process.wait()
    state = sweep_state(info.root, process)
    assert state.word == "crashed" and state.failure == "shard 0: out of memory"

    async def scenario():
        app = app_for(info.root, process=process)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: "out of memory" in app.home.status_text().plain)
            await pilot.press("q")
        assert app.return_value == 1

    run(scenario())


def decided(screen: str) -> bool:
    """Whether the map's rows (below its column labels, above the selected cell's line) show a phase letter."""
    lines = screen.splitlines()
    rows = lines[4 : next((i for i, line in enumerate(lines) if "▶" in line), 4)]
    return any(re.search(r"\s[CGSMX]\s", line) for line in rows)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_real_sweep_in_tmux_shows_decided_phases_and_q_stops_it(tmp_path):
    sweep = tmp_path / "S"
    server = f"grok-sweep-{uuid.uuid4().hex[:8]}"
    tmux = lambda *args: subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True)  # noqa: E731
    env = f"PYTHONPATH={Path(__file__).resolve().parents[1]}"
    command = (
        f"cd {tmp_path} && {env} {sys.executable} -m grok_tui sweep --weight-decay 0.1,1 --seed 0,1 --steps 5000 "
        f"--p 23 --train-frac 0.8 --width 32 --workers 1 --sweep-dir {sweep}; echo EXIT $?; sleep 30"
    )
    tmux("new-session", "-d", "-x", "80", "-y", "24", command)
    try:
        pane = lambda: tmux("capture-pane", "-p").stdout  # noqa: E731
        wait_until(lambda: decided(pane()), timeout=120, every=0.5, what=pane)
        screen = pane()
        assert decided(screen) and "phases: wd" in screen, screen
        tmux("send-keys", "q")
        wait_until(lambda: "EXIT" in pane(), timeout=60, every=0.2, what=pane)
        screen = tmux("capture-pane", "-p", "-J").stdout
        assert "EXIT 0" in screen, screen
        state = (read_record(sweep) or {}).get("state")
        assert state in ("stopped", "finished")
        if state == "stopped":
            assert f"grok-tui sweep --resume {sweep} continues it" in screen
    finally:
        tmux("kill-server")
        record = read_record(sweep) or {}
        if record.get("state") == "running":
            os.kill(record["pid"], signal.SIGKILL)


def test_help_theme_log_x_and_d_over_a_sweep_not_started_here(finished_sweep):
    async def scenario():
        app = app_for(finished_sweep.root)
        async with app.run_test(size=(160, 48)) as pilot:  # wide: the map and the curves side by side
            await wait_for(pilot, lambda: app.home.view is not None)
            assert app.home.has_class("-wide")
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert "only closes the monitor" in " ".join(str(s.render()) for s in app.screen.query("Static"))
            await pilot.press("escape", "t", "t", "g")
            await pilot.pause(0.1)
            assert app.theme_name == "mono" and app.query_one(CurvesPane).log_x
            await pilot.press("d")  # not ours to leave training: d closes, as q does
        assert app.return_value == 0 and app.farewell is None

    run(scenario())


def test_a_damaged_members_record_is_named_once_and_the_map_goes_on(finished_sweep):
    info = finished_sweep
    with open(info.root / "members.jsonl", "a") as f:
        f.write(json.dumps({"index": 0, "name": 7, "finished": True}) + "\n")

    async def scenario():
        app = app_for(info.root)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.home.view is not None and any("members.jsonl" in n for n in notes(app)))
            await pilot.pause(0.5)  # polls go on: the record is named once, not once a poll
            named = [n for n in notes(app) if "members.jsonl" in n]
            assert len(named) == 1 and "name: 7 is not allowed" in named[0]
            assert "M" in map_text(app) and "G" in map_text(app)

    run(scenario())


def axis_line(app, plot_id: str, label: str):
    """The plot's line named `label`, or None while the plot has not drawn it yet (a condition polls for it)."""
    from grok_tui.ui.panes.axis_plot import AxisPlot

    return next((line for line in app.query_one(f"#{plot_id}", AxisPlot)._lines if line.label == label), None)


def drawn_points(app, plot_id: str, label: str) -> int:
    line = axis_line(app, plot_id, label)
    return 0 if line is None else len(line.x)


def test_a_one_axis_sweep_draws_its_latest_figures_against_the_axis_as_they_come(tmp_path):
    from grok_tui.ui.panes.axis_plot import AxisPlot, AxisPlotPane, Points

    info = make_sweep(tmp_path / "sweep", constrain_norm=[5.0, 20.0, 80.0], seed=[0, 1])
    shape = {5.0: "confusion", 20.0: "comprehension", 80.0: "memorization"}  # test loss: a U over the norm

    async def scenario():
        app = app_for(info.root)
        async with app.run_test(size=(100, 40)) as pilot:
            await wait_for(pilot, lambda: app.home.view is not None)
            pane = app.query_one(AxisPlotPane)
            assert "against constrain_norm" in str(pane.border_title)
            assert app.query_one("#axis-loss", AxisPlot).labels == ["5", "20", "80"]
            rows = {
                m.index: write_member(info, m, shape[m.values["constrain_norm"]], upto=50) for m in info.grid.members
            }
            await wait_for(pilot, lambda: drawn_points(app, "axis-loss", "test") == 3)
            # Half-way: each value's latest row, while the members train.
            assert list(axis_line(app, "axis-acc", "train").y) == pytest.approx([0.2, 1.0, 1.0])
            for m in info.grid.members:
                rows[m.index] += write_member(info, m, shape[m.values["constrain_norm"]])[6:]
            finish(info, rows)
            await wait_for(pilot, lambda: axis_line(app, "axis-acc", "test").y[1] == pytest.approx(1.0))
            test = axis_line(app, "axis-loss", "test")
            assert list(test.x) == [0.0, 1.0, 2.0] and list(test.y) == pytest.approx([0.955, 0.1, 0.955])
            seeds = [line for line in app.query_one("#axis-loss", AxisPlot)._lines if isinstance(line, Points)]
            assert [len(line.x) for line in seeds] == [6, 6]  # every member's own point, train and test
            assert app.query_one("#axis-loss", AxisPlot)._markers == [0.0]  # the cursor's value
            # The colours are named in the subtitle, not by a legend inside the plots, which covered
            # the first values' columns (and the cursor's mark on the first value).
            assert "━ train" in str(pane.border_subtitle) and "━ test" in str(pane.border_subtitle)
            for plot in app.query(AxisPlot):
                drawn = plot.render().plain
                assert "train" not in drawn and "test" not in drawn
            await pilot.press("right")
            await wait_for(pilot, lambda: app.query_one("#axis-loss", AxisPlot)._markers == [1.0])
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
            assert app.screen.source.run_dir.name == "constrain_norm=20,seed=0"
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.home)
            await pilot.press("q")
        assert app.return_value == 0

    run(scenario())


def test_a_two_axis_sweep_has_no_plot_against_an_axis(finished_sweep):
    from grok_tui.ui.panes.axis_plot import AxisPlotPane

    async def scenario():
        app = app_for(finished_sweep.root)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.home.view is not None)
            assert not app.query(AxisPlotPane) and app.query_one(CurvesPane).display

    run(scenario())


def test_a_one_axis_sweep_at_80x24_keeps_the_map_and_the_plot_and_leaves_the_curves_to_enter(tmp_path):
    from grok_tui.ui.panes.axis_plot import AxisPlotPane

    info = make_sweep(tmp_path / "sweep", constrain_norm=[5.0, 20.0, 80.0, 320.0], seed=[0, 1])
    finish(info, {m.index: write_member(info, m, "grokking") for m in info.grid.members})

    async def scenario():
        app = app_for(info.root)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: "G" in map_text(app) and drawn_points(app, "axis-acc", "test") == 4)
            assert map_text(app).count("G") >= 8  # every member's block
            assert not app.query_one(CurvesPane).display
            assert app.query_one(AxisPlotPane).size.height >= 12  # the plot has the room the curves left
            await pilot.resize_terminal(100, 40)
            await wait_for(pilot, lambda: app.query_one(CurvesPane).display)

    run(scenario())
