"""`grok-tui ls` tells a paused run from one that trains: the run's process says so in process.json."""

import dataclasses
import json
import os
import threading

from grok_tui.cli import main
from grok_tui.process import PROCESS, mark_ended, mark_paused, mark_running, read_record, record_pauses
from grok_tui.train import new_run
from grok_tui.train.control import Control
from tests.conftest import tiny_config, wait_until


def ls_line(capsys, root, name="run"):
    assert main(["ls", str(root)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    (line,) = [line for line in out.splitlines() if line.startswith(name)]
    return line


class Served:
    """A run trained in a thread of this process, which serves it as runner.py does: marked running,
    its snapshots passed through `record_pauses`."""

    def __init__(self, run_dir, **trained_with):
        self.run_dir = run_dir
        self.control = Control()
        spec = new_run(tiny_config(steps=10_000_000), run_dir)
        mark_running(run_dir)
        # `trained_with`: settings config.json could not hold (ls reads it), given to the trainer alone.
        self.trainer = dataclasses.replace(spec, cfg=spec.cfg.replace(**trained_with)).build(self.control)
        self.thread = threading.Thread(target=self.trainer.run, args=(record_pauses(run_dir, lambda s: None),))
        self.thread.start()

    def stop(self):
        self.control.stop()
        self.thread.join(timeout=30)
        mark_ended(self.run_dir, "stopped", self.trainer.step)


def test_a_run_paused_by_a_command_reads_paused_in_ls_and_running_again_once_resumed(capsys, tmp_path):
    served = Served(tmp_path / "run")
    try:
        wait_until(lambda: served.trainer.step > 20, timeout=10)
        assert f"running (pid {os.getpid()})" in ls_line(capsys, tmp_path)

        served.control.pause()  # what the monitor's `space` sends
        wait_until(lambda: (read_record(served.run_dir) or {}).get("paused") == "command", timeout=10)
        line = ls_line(capsys, tmp_path)
        assert f"paused (pid {os.getpid()})" in line and "running" not in line

        served.control.resume()
        wait_until(lambda: (read_record(served.run_dir) or {}).get("paused") is None, timeout=10)
        assert f"running (pid {os.getpid()})" in ls_line(capsys, tmp_path)

        served.control.pause()
        wait_until(lambda: (read_record(served.run_dir) or {}).get("paused") == "command", timeout=10)
    finally:
        served.stop()
    # Stopped while paused: it ended, it is not paused any more.
    assert "paused" not in read_record(served.run_dir)
    line = ls_line(capsys, tmp_path)
    assert "stopped" in line and "paused" not in line


def test_a_run_paused_by_a_fault_says_so(capsys, tmp_path):
    served = Served(tmp_path / "run", lr=1e30, weight_decay=0.0)  # the loss is soon not finite
    try:
        wait_until(lambda: (read_record(served.run_dir) or {}).get("paused") == "fault", timeout=10)
        assert f"paused by a fault (pid {os.getpid()})" in ls_line(capsys, tmp_path)
    finally:
        served.stop()


def test_a_pause_recorded_by_an_earlier_process_does_not_outlive_it(capsys, tmp_path):
    served = Served(tmp_path / "run")
    served.stop()
    mark_running(served.run_dir)
    mark_paused(served.run_dir, "command")
    # Resumed: a new process marks itself running, unpaused, as its trainer starts.
    mark_running(served.run_dir)
    assert f"running (pid {os.getpid()})" in ls_line(capsys, tmp_path)
    # Only the process that marked itself running records a pause: another's record is left alone.
    record = {**read_record(served.run_dir), "pid": os.getpid() + 1}
    (served.run_dir / PROCESS).write_text(json.dumps(record))
    mark_paused(served.run_dir, "command")
    assert "paused" not in read_record(served.run_dir)
