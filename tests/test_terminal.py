"""The app as a person uses it: in tmux, reading the screen with capture-pane."""

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, width=120, height=40):
        self.socket = f"grok-test-{uuid.uuid4().hex[:8]}"
        self.size = (width, height)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False)

    def start(self, command):
        w, h = self.size
        self.tmux("new-session", "-d", "-x", str(w), "-y", str(h), "-s", "t", command)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, predicate, timeout=30.0):
        """The screen, once `predicate` holds for it."""
        shown = [""]

        def showing() -> bool:
            shown[0] = self.screen()
            return predicate(shown[0])

        wait_until(showing, timeout, every=0.2, what=lambda: "screen never showed what was expected:\n" + self.screen())
        return shown[0]

    def kill(self):
        self.tmux("kill-server")


def shown_step(screen):
    match = re.search(r"step ([\d,]+)/", screen)
    return int(match.group(1).replace(",", "")) if match else -1


def test_grok_tui_in_a_real_terminal(tmp_path):
    run_dir = tmp_path / "run"
    status = tmp_path / "status"
    exe = Path(sys.executable).parent / "grok-tui"
    term = Tmux()
    term.start(f"{exe} --steps 1000000 --run-dir {run_dir}; echo $? > {status}; sleep 60")
    try:
        first = term.wait_for(lambda s: shown_step(s) > 0)
        later = term.wait_for(lambda s: shown_step(s) > shown_step(first) + 200)
        for title in ("curves", "weights", "frequencies", "norm", "wd 0.3", "train", "test"):
            assert title in later, title
        term.keys("]")
        term.wait_for(lambda s: "wd 0.6" in s, timeout=10)
        term.keys("q")
        wait_until(status.exists, timeout=10, every=0.1)
        assert status.read_text().strip() == "0"
    finally:
        term.kill()
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["new"]) for e in events] == [("weight_decay", 0.6)]
    assert (run_dir / "checkpoint.pt").exists()
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["weight_decay"] == 0.6
