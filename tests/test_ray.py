"""Sweeps on Ray (a local Ray of this machine's CPUs): the same results as the local engine, a killed
worker retried, a stop that leaves the sweep resumable, and one line for every way Ray cannot be had."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import psutil
import pytest

from grok_tui.cli import main
from grok_tui.process import read_record
from grok_tui.runlog import read_jsonl
from grok_tui.sweep.ray_engine import CONNECT_TIMEOUT_S
from grok_tui.sweep.store import MEMBERS
from tests.processes import wait_while_running

pytest.importorskip("ray")
# One xdist worker runs every test here, one after another: they find Ray's shard workers by scanning the
# machine's processes, which would see (and kill) another Ray test's.
pytestmark = pytest.mark.xdist_group("ray")

SMALL = ["--p", "23", "--width", "32", "--weight-decay", "0.3,1", "--seed", "0,1"]
# Each wait here only guards against a hang. Ray's workers start slowly on a loaded box: with three test
# workers on two cores a 100-step sweep of 4 members took 100 s.
HANG_S = 300
MILESTONES = ("train_90", "train_95", "train_99", "test_90", "test_95", "test_99", "phase", "step")


def sweep(root, *argv, timeout=HANG_S):
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
        rows = root / "members" / "wd=1,seed=1" / "metrics.jsonl"
        wait_while_running(
            process,
            lambda: len(read_jsonl(rows)) > 50 and (root / "shards" / "shard-0.pt").exists() and _shard_workers(),
            timeout=HANG_S,
            every=0.1,
        )
        for worker in _shard_workers():
            worker.kill()
        out, err = process.communicate(timeout=HANG_S)
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
    wait_while_running(
        process, lambda: read_jsonl(root / "members" / "wd=1,seed=1" / "metrics.jsonl")[5:], timeout=HANG_S
    )
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=HANG_S)
    assert process.returncode == 128 + signal.SIGINT, err
    assert read_record(root)["state"] == "stopped"
    assert sorted(p.name for p in (root / "shards").iterdir()) == ["shard-0.pt", "shard-1.pt"]
    assert not _shard_workers()  # every shard ended
    resumed = subprocess.run(
        [sys.executable, "-m", "grok_tui", "sweep", "--headless", "--resume", str(root), "--ray"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=tmp_path,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert resumed.returncode == 0, resumed.stderr
    for record in read_jsonl(root / MEMBERS):
        assert record["finished"]
        assert_whole(root, record["name"], 3000)


class Listener:
    """Something that listens on a port but is no Ray: it never answers, or answers like an HTTP server.
    On every interface, as Ray turns 127.0.0.1 into this machine's address before it connects."""

    def __init__(self, answer: bytes | None):
        self.answer = answer
        self.server = socket.create_server(("", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.spoken_to = 0  # connections that sent bytes (the TCP check sends none; Ray's client does)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            if conn.recv(4096):
                self.spoken_to += 1
                if self.answer is not None:
                    conn.sendall(self.answer)
        except OSError:
            pass

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize(
    "answer",
    [None, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"],
    ids=["never-answers", "answers-like-http"],
)
def test_an_address_where_something_else_listens_is_one_line_and_leaves_nothing(tmp_path, answer):
    listener = Listener(answer)
    address = f"127.0.0.1:{listener.port}"
    try:
        # The timeout only guards against a hang: before, this took many minutes.
        proc = sweep(tmp_path / "s", "--ray", address, timeout=120)
    finally:
        listener.close()
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"grok-tui: error: --ray: {address} did not answer as a Ray cluster within {CONNECT_TIMEOUT_S:g} s; "
        "expected the address of a Ray head node (`ray start --head` prints it; its port is 6379 unless --port "
        "said otherwise)"
    ]
    assert listener.spoken_to >= 1  # Ray did talk to it (and was not answered as Ray)
    assert not (tmp_path / "s").exists()  # nothing written for a cluster that never answered
    left = [p for p in psutil.process_iter(["cmdline"]) if address in " ".join(p.info["cmdline"] or [])]
    assert left == []  # the check that joins the cluster is gone with it


@pytest.fixture
def cluster():
    """A Ray cluster of 2 CPUs started by this process (which ends it): its address, as `ray start` gives one."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_a_sweep_joins_a_cluster_at_its_address_or_at_RAY_ADDRESS_and_ray_stays_quiet(tmp_path, cluster, monkeypatch):
    argv = [*SMALL, "--steps", "100", "--workers", "2"]
    at_address = sweep(tmp_path / "a", *argv, "--ray", cluster)
    assert at_address.returncode == 0 and at_address.stderr == "", at_address.stderr
    assert "4/4 members done" in at_address.stdout
    # With RAY_ADDRESS the sweep joins that cluster too (it may not ask it for CPUs of its own).
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    from_env = sweep(tmp_path / "e", *argv, "--ray")
    assert from_env.returncode == 0 and from_env.stderr == "", from_env.stderr
    assert [r["test_acc"] for r in read_jsonl(tmp_path / "e" / MEMBERS)] == [
        r["test_acc"] for r in read_jsonl(tmp_path / "a" / MEMBERS)
    ]


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
    assert "--shard-cpus: '0' is not allowed; expected a number of CPUs above 0" in capsys.readouterr().err
    assert main(["sweep", "--headless", "--ray", "--shard-gpus", "-1", "--sweep-dir", str(tmp_path / "s")]) == 2
    assert "--shard-gpus: '-1' is not allowed; expected a number of GPUs from 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
