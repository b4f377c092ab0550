"""Runs under faults, as they happen to a real process: kills, hang-ups, signals and a full disk.

Each test drives `python -m grok_tui` in a subprocess (or the monitor in tmux)
and then reads the run directory the way `--resume` and `watch` do.
"""

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import torch

from grok_tui.runlog import read_jsonl
from grok_tui.train import new_run, resume_run
from tests.conftest import TINY, tiny_config, wait_until
from tests.processes import monitor_pid

VOLATILE = ("elapsed_s", "steps_per_s")


def grok_tui(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "grok_tui", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def steady(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def unbroken(tmp_path: Path, steps: int) -> list[dict]:
    cfg = tiny_config(steps=steps, eval_every=10)
    new_run(cfg, tmp_path / "unbroken").build().run()
    return steady(read_jsonl(tmp_path / "unbroken" / "metrics.jsonl"))


def checkpoint_step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"]


def assert_whole(run_dir: Path) -> None:
    """Every line in the logs is complete and parses; no temporary file is left behind."""
    for name in ("metrics.jsonl", "events.jsonl"):
        text = (run_dir / name).read_text()
        assert text == "" or text.endswith("\n"), name
        for line in text.splitlines():
            json.loads(line)
    assert not list(run_dir.glob("*.tmp"))


# ---- a kill at any moment resumes to the same metrics --------------------------------------------------


@pytest.mark.parametrize("moment", ["config written", "first line printed", "mid-run"])
def test_sigkill_at_any_moment_resumes_to_the_metrics_of_an_unbroken_run(tmp_path, moment):
    steps = 1500
    run_dir = tmp_path / "run"
    proc = grok_tui("--headless", *TINY, "--steps", "1000000", "--checkpoint-every", "0.2", "--run-dir", str(run_dir))
    try:
        if moment == "config written":  # before the trainer exists, let alone its first checkpoint
            wait_until(lambda: (run_dir / "config.json").exists(), every=0.001)
        else:
            for line in proc.stdout:
                if line.startswith("step") and (moment == "first line printed" or int(line.split()[1]) >= 800):
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    code, out, err = finish(grok_tui("--headless", "--resume", str(run_dir), "--steps", str(steps)))
    assert code == 0, err
    assert steady(read_jsonl(run_dir / "metrics.jsonl")) == unbroken(tmp_path, steps)
    assert checkpoint_step(run_dir) == steps
    assert_whole(run_dir)


def test_resuming_a_finished_run_with_more_steps_continues_it(tmp_path):
    run_dir = tmp_path / "run"
    assert finish(grok_tui("--headless", *TINY, "--steps", "200", "--run-dir", str(run_dir)))[0] == 0
    code, out, err = finish(grok_tui("--headless", "--resume", str(run_dir), "--steps", "400"))
    assert code == 0, err
    assert "resumed at step 200" in out
    assert steady(read_jsonl(run_dir / "metrics.jsonl")) == unbroken(tmp_path, 400)  # no row twice


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_headless_cleanly_with_a_checkpoint_at_the_last_step(tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = grok_tui("--headless", *TINY, "--steps", "1000000", "--run-dir", str(run_dir))
    for line in proc.stdout:
        if line.startswith("step") and int(line.split()[1]) >= 300:
            break
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert code == 128 + sig and "Traceback" not in err
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert checkpoint_step(run_dir) == rows[-1]["step"] >= 300
    assert_whole(run_dir)


# ---- the monitor: a hang-up ------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_monitor_killed_with_sigterm_stops_the_run_where_it_stood(tmp_path):
    """`kill PID` quits as `q` does: the run stops and checkpoints its last step, the terminal is given back.
    (A hang-up detaches instead: tests/test_detach.py.)"""
    run_dir, status = tmp_path / "run", tmp_path / "status"
    exe = Path(sys.executable).parent / "grok-tui"
    socket = f"grok-test-{uuid.uuid4().hex[:8]}"
    tmux = lambda *args: subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True)  # noqa: E731
    tmux(
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        f"{exe} {' '.join(TINY)} --steps 1000000 --run-dir {run_dir}; echo $? > {status}; sleep 30",
    )
    try:
        wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 30, every=0.1)
        pid = monitor_pid(exe, run_dir)
        trainer = json.loads((run_dir / "process.json").read_text())["pid"]
        os.kill(pid, signal.SIGTERM)
        wait_until(status.exists, timeout=15, every=0.1)
        assert status.read_text().strip() == str(128 + signal.SIGTERM)
        assert "step" not in tmux("capture-pane", "-p").stdout  # the screen is the shell's again
    finally:
        tmux("kill-server")
    # The run stopped where it was, and checkpointed that step, however far the metrics got.
    wait_until(lambda: not Path(f"/proc/{trainer}").exists(), timeout=10, every=0.1)
    assert checkpoint_step(run_dir) == read_jsonl(run_dir / "metrics.jsonl")[-1]["step"] >= 290
    assert json.loads((run_dir / "process.json").read_text())["state"] == "stopped"
    assert_whole(run_dir)


# ---- a full disk ---------------------------------------------------------------------------------------


def _file_size_limit(limit: int):
    def apply() -> None:
        # A file may grow to `limit` bytes and no further: writes past it fail with EFBIG, as on a full disk
        # (SIGXFSZ ignored, or it would kill the process instead).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


@contextlib.contextmanager
def tmpfs(size: str):
    """A small filesystem of its own, or a skip where this machine may not mount one."""
    folder = Path(tempfile.mkdtemp(prefix="grok-tmpfs-"))
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    try:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _assert_one_line_about_the_disk(code: int, err: str, run_dir: Path, reason: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "cannot write" in lines[0] and reason in lines[0] and f"--resume {run_dir}" in lines[0]
    assert_whole(run_dir)
    assert len(read_jsonl(run_dir / "metrics.jsonl")) > 10


def test_headless_on_a_full_disk_exits_1_with_one_line_and_every_line_whole(tmp_path):
    run_dir = tmp_path / "run"
    proc = grok_tui(
        # Room for the first flush, whatever the machine's speed: in its 0.5 s this tiny model logs up to
        # ~40 KB here (2,300 steps/s), so 40 KB failed the very first flush on a quiet machine.
        "--headless",
        *TINY,
        "--steps",
        "1000000",
        "--run-dir",
        str(run_dir),
        preexec_fn=_file_size_limit(150_000),
    )
    code, _, err = finish(proc)
    _assert_one_line_about_the_disk(code, err, run_dir, "File too large")


def test_headless_on_a_full_tmpfs(tmp_path):
    with tmpfs("96k") as disk:  # room for the run's files and ~10 rows, then full
        run_dir = disk / "run"
        code, _, err = finish(grok_tui("--headless", *TINY, "--steps", "1000000", "--run-dir", str(run_dir)))
        _assert_one_line_about_the_disk(code, err, run_dir, "No space left on device")


def test_starting_on_a_full_disk_leaves_nothing_behind(tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = finish(grok_tui("--headless", *TINY, "--run-dir", str(run_dir), preexec_fn=_file_size_limit(50)))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--run-dir" in err and "Traceback" not in err
    assert not run_dir.exists()
    assert os.listdir(tmp_path) == []


# ---- a loss that overflows ------------------------------------------------------------------------------


def test_headless_a_loss_that_overflows_exits_1_as_a_fault_with_its_last_finite_state_checkpointed(tmp_path):
    """--lr 10 --weight-decay 100 (each in its range) multiply every weight by -999 a step: NaN within a
    few evaluations. A fault, not a crash: one line, exit status 1, and a checkpoint a resume loads."""
    run_dir = tmp_path / "run"
    args = ("--headless", *TINY, "--lr", "10", "--weight-decay", "100", "--steps", "1000", "--run-dir", str(run_dir))
    code, out, err = finish(grok_tui(*args))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "the loss is not finite" in lines[0] and "with lr 10, weight decay 100" in lines[0]
    assert lines[0].endswith(
        f"grok-tui --resume {run_dir} continues it (with --lr, --weight-decay or --l1 to set a value anew)"
    )
    assert "# train acc >= 99%" in out
    assert not (run_dir / "crash.log").exists()
    assert json.loads((run_dir / "process.json").read_text())["state"] == "fault"
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert rows and all(r["train_loss"] is not None and r["param_norm"] is not None for r in rows)
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert saved["step"] == rows[-1]["step"]
    assert all(bool(torch.isfinite(t).all()) for t in saved["model"].values())
    assert resume_run(run_dir).build().step == rows[-1]["step"]
    assert_whole(run_dir)

    # As the line says: resumed with lower values, it trains to its budget from its last finite state.
    code, out, err = finish(grok_tui("--resume", str(run_dir), "--headless", "--lr", "0.01", "--weight-decay", "1"))
    assert code == 0 and err == "", err
    after = read_jsonl(run_dir / "metrics.jsonl")
    assert after[: len(rows)] == rows and after[-1]["step"] == 1000
    assert [r["step"] for r in after] == sorted({r["step"] for r in after})  # no step twice
    assert all(r["lr"] == 0.01 and r["weight_decay"] == 1 for r in after[len(rows) :])
    # The new values are changes at the step it resumed from, on the curves like a key's, not a new config.
    changes = [(e["kind"], e["step"], e["new"]) for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] != "paused"]
    assert changes[-2:] == [("lr", rows[-1]["step"], 0.01), ("weight_decay", rows[-1]["step"], 1.0)]
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 10


def test_values_given_on_resuming_are_checked_and_reach_a_detached_run(tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = finish(grok_tui("--headless", *TINY, "--steps", "100", "--run-dir", str(run_dir)))
    assert code == 0, err
    for bad, says in (
        (("--lr", "1e300"), "--lr: 1e+300 is not allowed; expected a finite number > 0 and <= 10"),
        (("--width", "8"), "--width cannot be combined with --resume"),
    ):
        code, _, err = finish(grok_tui("--resume", str(run_dir), "--headless", *bad))
        assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    # Through the run's own process (--detach hands the values to runner.py), the same change.
    code, out, err = finish(grok_tui("--resume", str(run_dir), "--steps", "300", "--detach", "--l1", "0.001"))
    assert code == 0, err
    wait_until(lambda: json.loads((run_dir / "process.json").read_text())["state"] == "finished", timeout=60)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert rows[-1]["step"] == 300
    assert {r["l1"] for r in rows if r["step"] <= 100} == {0.0} and {r["l1"] for r in rows if r["step"] > 100} == {
        0.001
    }
    assert [(e["kind"], e["step"], e["new"]) for e in read_jsonl(run_dir / "events.jsonl")] == [("l1", 100, 0.001)]
