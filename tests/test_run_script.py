"""`grok-tui run SCRIPT.py`: a script of one's own as a run's own process, stopped, crashed, or refused; and the
example script, for a few steps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grok_tui.loop.record import ScriptConfig
from grok_tui.runlog import RunLog, load_run_config, read_jsonl
from grok_tui.runs import describe
from tests.conftest import opened, run, wait_for, wait_until
from tests.processes import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mod_add_mlp.py"

# A loop that trains until it is asked to stop (or for a long time), logging every step.
FOREVER = """
import sys
import torch
import grok_tui

torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.01)
x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
with grok_tui.monitor(model, optimizer, config={"argv": sys.argv[1:]}) as m:
    for step in range(1, 10_000_000):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        m.log(step, train_loss=loss.item())
        if m.should_stop:
            break
"""

RAISES_LATE = """
import torch
import grok_tui

model = torch.nn.Linear(2, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
with grok_tui.monitor(model, optimizer) as m:
    m.log(0, train_loss=1.0)
    raise RuntimeError("the data ran out")
"""


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_run_detach_then_stop(tmp_path):
    loop = script(tmp_path, "loop.py", FOREVER)
    run_dir = tmp_path / "runs" / "mine"
    started = cli("run", "--detach", "--run-dir", str(run_dir), str(loop), "--fast", "1", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "in the background" in started.stdout
    cfg = load_run_config(run_dir)
    assert isinstance(cfg, ScriptConfig) and cfg.started and cfg.user == {"argv": ["--fast", "1"]}
    assert describe(run_dir).state == "running"
    wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 3, every=0.05)
    listed = cli("ls", str(tmp_path / "runs"), cwd=tmp_path)
    assert "mine" in listed.stdout and "loop" in listed.stdout and "running" in listed.stdout
    stopped = cli("stop", str(run_dir), cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    wait_until(lambda: describe(run_dir).state != "running", every=0.05)
    assert describe(run_dir).state == "stopped"
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "control.sock").exists()


def test_a_script_that_raises_before_it_serves_is_crashed_and_exit_1(tmp_path):
    bad = script(tmp_path, "bad.py", "raise ValueError('no such dataset: mnist9')\n")
    run_dir = tmp_path / "bad-run"
    done = cli("run", "--detach", "--run-dir", str(run_dir), str(bad), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ValueError: no such dataset: mnist9" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "no such dataset" in (run_dir / "crash.log").read_text()
    assert describe(run_dir).state == "crashed"


def test_a_script_that_raises_in_its_loop_is_crashed_with_one_line_and_exit_1(tmp_path):
    late = script(tmp_path, "late.py", RAISES_LATE)
    run_dir = tmp_path / "late-run"
    made = ScriptConfig(experiment="late", script=str(late))
    RunLog(run_dir).create({**made.record(), "started": False})  # as `grok-tui run` makes it
    done = subprocess.run(
        [sys.executable, "-m", "grok_tui.loop.launcher", str(run_dir), str(late)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grok-tui: error: late.py crashed: RuntimeError: the data ran out")
    assert "the data ran out" in (run_dir / "crash.log").read_text()
    assert describe(run_dir).state == "crashed"
    assert [row["step"] for row in read_jsonl(run_dir / "metrics.jsonl")] == [0]


@pytest.mark.parametrize("name", ["missing.py", "notes.txt"])
def test_a_missing_or_non_python_script_is_one_line_and_exit_2(tmp_path, name):
    (tmp_path / "notes.txt").write_text("hello\n")
    done = cli("run", str(tmp_path / name), cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "grok-tui: error: run" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_the_example_script_runs_a_few_steps_under_monitor(tmp_path):
    run_dir = tmp_path / "example"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "30", "--p", "23", "--width", "32", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [row["step"] for row in rows] == [10, 20, 30] and rows[-1]["weight_decay"] == 0.3
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "script" and config["config"]["p"] == 23
    assert describe(run_dir).state == "finished"


def test_the_monitor_over_a_script_steers_its_optimizer_and_q_stops_it(tmp_path):
    """What `grok-tui run SCRIPT.py` opens: `]` doubles the script's weight decay at its next step, `q` stops it."""
    from grok_tui import process
    from grok_tui.loop.source import ScriptRun
    from grok_tui.ui.app import MonitorApp
    from grok_tui.ui.screens.run import RunScreen

    loop = script(tmp_path, "loop.py", FOREVER)
    run_dir = (tmp_path / "run").resolve()
    RunLog(run_dir).create({**ScriptConfig(experiment="loop", script=str(loop)).record(), "started": False})
    child = process.start(run_dir, "run", "grok_tui.loop.launcher", [str(run_dir), str(loop)])
    source = ScriptRun(run_dir, child, "loop.py")
    app = MonitorApp(RunScreen(source))

    async def body() -> None:
        async with opened(app, timeout=60) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step >= 5, timeout=60)
            await pilot.press("]")
            await wait_for(pilot, lambda: read_jsonl(run_dir / "events.jsonl"), timeout=60)
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=60)

    run(body())
    child.wait(30)
    event = read_jsonl(run_dir / "events.jsonl")[0]
    assert (event["kind"], event["old"], event["new"]) == ("weight_decay", 0.01, 0.02)
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["weight_decay"] == 0.02
    assert describe(run_dir).state == "stopped" and source.stop_asked


def test_a_script_that_never_calls_monitor_is_waited_for_and_q_ends_it(tmp_path):
    from grok_tui import process
    from grok_tui.loop.source import ScriptRun
    from grok_tui.ui.app import MonitorApp
    from grok_tui.ui.screens.run import RunScreen

    idle = script(tmp_path, "idle.py", "import time\nwhile True:\n    time.sleep(0.1)\n")
    run_dir = (tmp_path / "run").resolve()
    RunLog(run_dir).create({**ScriptConfig(experiment="idle", script=str(idle)).record(), "started": False})
    child = process.start(run_dir, "run", "grok_tui.loop.launcher", [str(run_dir), str(idle)])
    source = ScriptRun(run_dir, child, "idle.py")
    app = MonitorApp(RunScreen(source))
    said: list[str] = []
    take = source.mailbox.take_notices

    def noted() -> list[str]:
        notices = take()
        said.extend(notices)
        return notices

    source.mailbox.take_notices = noted  # type: ignore[method-assign]

    async def body() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: any("grok_tui.monitor" in line for line in said), timeout=30)
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, timeout=30)

    run(body())
    assert child.wait(30) != 0
    assert any("waiting for idle.py to call grok_tui.monitor" in line for line in said)
    assert describe(run_dir).state == "stopped"


def test_sigterm_to_a_script_run_directly_stops_its_loop_cleanly(tmp_path):
    import signal

    loop = script(tmp_path, "loop.py", FOREVER.replace("config=", 'run_dir="r", config='))
    child = subprocess.Popen([sys.executable, str(loop)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "r"
    wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 3, every=0.05)
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == 0, child.stderr.read() if child.stderr else ""
    assert describe(run_dir).state == "stopped"


def test_a_monitor_never_closed_ends_its_run_when_the_script_exits(tmp_path):
    unclosed = script(
        tmp_path,
        "unclosed.py",
        """
        import torch
        import grok_tui

        model = torch.nn.Linear(2, 2)
        m = grok_tui.monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir="r")
        m.log(0, train_loss=1.0)
        """,
    )
    done = subprocess.run([sys.executable, str(unclosed)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert describe(tmp_path / "r").state == "finished"
    assert not (tmp_path / "r" / "control.sock").exists()
