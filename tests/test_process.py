"""A grok-tui process's life (process.py): its start line and last words in output.log, and stopping it by
the pid it recorded. The processes here are small Python ones, not runs: test_detach.py has real runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from grok_tui import process
from tests.conftest import wait_until

GUARD_S = 30.0  # a hang guard only


# ---- last words -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "started",
    [
        "# grok-tui: run process 4242 for /runs/a",  # what a run's process printed itself, before
        "# grok-tui: sweep process 4242",  # what a sweep's process printed itself, before
        "# grok-tui: run process started 2025-01-01T12:00:00",  # what process.start writes
    ],
)
def test_last_words_are_the_last_error_line_since_the_last_start_of_either_kind(tmp_path, started):
    (tmp_path / process.OUTPUT).write_text(
        "# grok-tui: sweep process 1\n"
        "grok-tui: error: an earlier start's\n"
        f"{started}\n"
        "step 10 ...\n"
        "grok-tui: warning: not an error\n"
        "grok-tui: error: shard 0: out of memory\n"
        "grok-tui: error: the last one\n"
        "Traceback (most recent call last):\n"
    )
    assert process.last_words(tmp_path) == "the last one"
    with (tmp_path / process.OUTPUT).open("a") as log:
        log.write(f"{started}\nstep 0 ...\n")
    assert process.last_words(tmp_path) is None  # the last start said nothing wrong


def test_last_words_of_a_log_without_a_start_line_or_without_a_log(tmp_path):
    assert process.last_words(tmp_path) is None
    (tmp_path / process.OUTPUT).write_text("grok-tui: error: first\ngrok-tui: error: second\n")
    assert process.last_words(tmp_path) == "second"
    (tmp_path / process.OUTPUT).write_bytes(b"grok-tui: error: not UTF-8 \xff\n")
    assert process.last_words(tmp_path) == "not UTF-8 \ufffd"


# ---- starting ---------------------------------------------------------------------------------------------


def test_a_start_appends_its_line_first_and_runs_in_a_session_of_its_own(tmp_path):
    (tmp_path / process.OUTPUT).write_text("grok-tui: error: a start before this one\n")
    child = process.start(tmp_path, "run", "timeit", ["-n", "1", "-r", "1", "import time; time.sleep(1)"])
    try:
        assert os.getsid(child.pid) == child.pid  # no terminal's hang-up or Ctrl-C reaches it
    finally:
        assert child.wait(GUARD_S) == 0
    lines = (tmp_path / process.OUTPUT).read_text().splitlines()
    assert lines[0] == "grok-tui: error: a start before this one"
    assert lines[1].startswith("# grok-tui: run process started ") and "loop" in lines[2]  # timeit's output
    assert process.last_words(tmp_path) is None


def test_a_process_that_dies_before_it_can_print_is_not_given_an_earlier_starts_words(tmp_path):
    (tmp_path / process.OUTPUT).write_text("# grok-tui: run process 1 for x\ngrok-tui: error: disk full\n")
    child = process.start(tmp_path, "run", "grok_tui_not_installed")
    assert child.wait(GUARD_S) != 0
    assert "No module named" in (tmp_path / process.OUTPUT).read_text()
    assert process.last_words(tmp_path) is None


# ---- stopping ---------------------------------------------------------------------------------------------

# A process that records itself running, and ends as a run does on SIGTERM (or ignores SIGTERM).
CHILD = """
import signal, sys, time
from grok_tui.process import mark_ended, mark_running, stop_on_signals
stopped = []
with stop_on_signals(lambda: stopped.append(True)):
    if sys.argv[2] == "deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    mark_running(sys.argv[1])
    while not stopped:
        time.sleep(0.01)
mark_ended(sys.argv[1], "stopped", 7)
"""


def recorded(directory: Path, how: str = "polite") -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), how])
    wait_until(lambda: process.running_pid(directory) == child.pid, GUARD_S, what="the child records itself")
    return child


def test_stop_signals_the_recorded_pid_and_waits_until_it_has_ended(tmp_path):
    assert process.stop(tmp_path, GUARD_S, "nothing") is None  # no record: nothing to stop
    child = recorded(tmp_path)
    assert process.stop(tmp_path, GUARD_S, "the child") == "stopped"
    assert process.read_record(tmp_path)["step"] == 7 and process.running_pid(tmp_path) is None
    assert child.wait(GUARD_S) == 0
    assert process.stop(tmp_path, GUARD_S, "the child") is None  # ended: nothing to stop


def test_a_process_that_does_not_stop_in_time_is_a_timeout_that_names_it(tmp_path):
    child = recorded(tmp_path, "deaf")
    try:
        with pytest.raises(TimeoutError, match=f"^the thing in {tmp_path} did not stop within 1 s$"):
            process.stop(tmp_path, 1.0, f"the thing in {tmp_path}")
        with pytest.raises(TimeoutError, match="did not stop within 1 s"):
            process.stop_child(tmp_path, child, 1.0, "the thing")
    finally:
        child.kill()
        child.wait(GUARD_S)


def test_a_child_that_has_not_recorded_itself_yet_is_terminated(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.stop_child(tmp_path, child, GUARD_S, "the child")
    assert child.returncode == -signal.SIGTERM
