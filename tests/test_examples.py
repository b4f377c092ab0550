"""The example scripts of examples/ (besides mod_add_mlp.py, in test_run_script.py), each for a few steps as
grok-tui runs them: one under `grok-tui run --detach`, one on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grok_tui.runlog import read_jsonl
from tests.conftest import wait_until
from tests.processes import alive, cli, pid_of

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LOGGED = {"train_loss", "train_acc", "test_loss", "test_acc"}


def state(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "process.json").read_text()).get("state")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_concat_mlp_under_grok_tui_run_detached(tmp_path):
    run_dir = tmp_path / "concat"
    script = EXAMPLES / "concat_mlp.py"
    flags = ["--steps", "20", "--p", "23", "--embed-dim", "16", "--width", "16"]
    started = cli("run", "--detach", "--run-dir", str(run_dir), str(script), *flags, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    try:
        wait_until(lambda: state(run_dir) not in (None, "running"), timeout=60, every=0.05)
    finally:
        pid = pid_of(run_dir)
        if alive(pid) and state(run_dir) == "running":
            os.kill(pid, signal.SIGKILL)
    assert state(run_dir) == "finished", (run_dir / "output.log").read_text()
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [row["step"] for row in rows] == [10, 20]
    assert all(LOGGED <= row.keys() and row["weight_decay"] == 0.03 for row in rows)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "script" and config["argv"] == flags and config["config"]["p"] == 23


def test_transformer_nanda_on_its_own_keeps_views_of_its_neurons(tmp_path):
    run_dir = tmp_path / "nanda"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "transformer_nanda.py"), "--steps", "2", "--eval-every", "1"]
        + ["--device", "cpu", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert state(run_dir) == "finished"
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2] and all(LOGGED <= row.keys() for row in rows)
    # The warm-up: each row has the lr LambdaLR set for the next step, min(step / 10, 1) of 1e-3.
    assert [row["lr"] for row in rows] == pytest.approx([1e-4, 2e-4])
    checkpoint = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["step"] == 2 and "scheduler" in checkpoint
    views = checkpoint["views"]
    assert views["neuron_inputs"].shape == (113, 512)
    assert views["matrices"]["W_E (tokens x d_model)"].shape == (113, 128)
