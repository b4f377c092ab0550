"""Sweeps on Ray (a local Ray of this machine's CPUs): the same results as the local engine, a killed
worker retried, a stop that leaves the sweep resumable, and one line for every way Ray cannot be had."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from grok_tui.cli import main
from grok_tui.runlog import read_jsonl
from grok_tui.runs import read_record
from grok_tui.sweep.store import MEMBERS

pytest.importorskip("ray")

SMALL = ["--p", "23", "--width", "32", "--weight-decay", "0.3,1", "--seed", "0,1"]
MILESTONES = ("train_90", "train_95", "train_99", "test_90", "test_95", "test_99", "phase", "step")


def sweep(root, *argv, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--sweep-dir", str(root), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root.parent,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )


def test_ray_gives_the_local_engines_milestones(tmp_path):
    local = sweep(tmp_path / "local", *SMALL, "--steps", "600")
    assert local.returncode == 0, local.stderr
    on_ray = sweep(tmp_path / "ray", *SMALL, "--steps", "600", "--ray")
    assert on_ray.returncode == 0, on_ray.stderr
    a, b = read_jsonl(tmp_path / "local" / MEMBERS), read_jsonl(tmp_path / "ray" / MEMBERS)
    assert len(a) == len(b) == 4
    assert [{k: r[k] for k in MILESTONES} for r in a] == [{k: r[k] for k in MILESTONES} for r in b]

    def diagram(out):
        lines = out.splitlines()
        return lines[next(i for i, line in enumerate(lines) if line.startswith("phases: ")) :]

    assert diagram(on_ray.stdout) == diagram(local.stdout)


def assert_whole(root, name, steps):
    """A member's rows: every evaluation once, in order (plus the one a stop takes where it stood)."""
    logged = [r["step"] for r in read_jsonl(root / "members" / name / "metrics.jsonl")]
    assert logged == sorted(set(logged)) and set(range(0, steps + 1, 10)) <= set(logged) and logged[-1] == steps


def _shard_workers():
    """The Ray worker processes running a shard now (Ray names them after the task)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "_run_shard" in cmdline:
            found.append(process)
    return found


def test_a_killed_ray_worker_is_retried_and_the_sweep_loses_nothing(tmp_path):
    root = tmp_path / "s"
    argv = [*SMALL, "--steps", "3000", "--ray", "--workers", "1", "--checkpoint-every", "0.5"]
    process = subprocess.Popen(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--sweep-dir", str(root), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    try:
        deadline = time.monotonic() + 60
        rows = root / "members" / "wd=1,seed=1" / "metrics.jsonl"
        while not (len(read_jsonl(rows)) > 50 and (root / "shards" / "shard-0.pt").exists() and _shard_workers()):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        for worker in _shard_workers():
            worker.kill()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "4/4 members done" in out
    for record in read_jsonl(root / MEMBERS):
        assert record["finished"] and record["step"] == 3000
        assert_whole(root, record["name"], 3000)  # the retry took up from the checkpoint: no gap, no repeat


def test_ctrl_c_stops_every_shard_and_the_sweep_resumes(tmp_path):
    root = tmp_path / "s"
    process = subprocess.Popen(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--sweep-dir", str(root), *SMALL]
        + ["--steps", "3000", "--ray"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    deadline = time.monotonic() + 60
    while not read_jsonl(root / "members" / "wd=1,seed=1" / "metrics.jsonl")[5:]:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=90)
    assert process.returncode == 128 + signal.SIGINT, err
    assert read_record(root)["state"] == "stopped"
    assert sorted(p.name for p in (root / "shards").iterdir()) == ["shard-0.pt", "shard-1.pt"]
    assert not _shard_workers()  # every shard ended
    resumed = subprocess.run(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--resume", str(root), "--ray"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert resumed.returncode == 0, resumed.stderr
    for record in read_jsonl(root / MEMBERS):
        assert record["finished"]
        assert_whole(root, record["name"], 3000)


def test_an_unreachable_cluster_is_one_line_and_status_2(capsys, tmp_path):
    code = main(["sweep", "--headless", "--ray", "127.0.0.1:1", "--sweep-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "--ray: cannot reach 127.0.0.1:1" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_without_ray_installed_the_line_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["sweep", "--headless", "--ray", "--sweep-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'grok-tui[ray]'" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_shard_sizes_go_with_ray(capsys, tmp_path):
    assert main(["sweep", "--headless", "--shard-gpus", "1", "--sweep-dir", str(tmp_path / "s")]) == 2
    assert "--shard-cpus and --shard-gpus go with --ray" in capsys.readouterr().err
    assert main(["sweep", "--headless", "--ray", "--shard-cpus", "0", "--sweep-dir", str(tmp_path / "s")]) == 2
    assert "--shard-cpus: '0' is not allowed" in capsys.readouterr().err
