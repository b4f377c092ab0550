"""Runs that outlive their terminal: `--detach`, `attach`, `ls`, `stop`, a hang-up, and the run's channel.

Each run here is a real background process started as a user starts it
(`python -m grok_tui --detach`); every test stops what it started.
"""

import os
import pickle
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import uuid
from multiprocessing.connection import Client
from pathlib import Path

import pytest
import torch

from grok_tui.runlog import read_jsonl
from grok_tui.runs import describe
from grok_tui.sources.attached import AttachedRun
from grok_tui.train.channel import KEY, SOCKET, connect, encode_command, is_served
from grok_tui.train.launch import StartError, wait_until_served
from tests.conftest import TINY, notes, opened, run, wait_for, wait_until
from tests.processes import FOREVER, alive, attached, cli, monitor_pid, next_frame, pid_of


def events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == kind]


# ---- --detach, ls, stop -----------------------------------------------------------------------------------


def test_a_run_that_ends_cleanly_before_its_channel_is_seen_did_not_fail_to_start(tmp_path):
    # A run of a few steps can live and end between two polls of the launcher (it failed CI once):
    # --detach says it ran to its end rather than calling a clean exit a failure to start.
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert wait_until_served(tmp_path, ended, timeout=5) is False
    failed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    failed.wait()
    with pytest.raises(StartError, match="status 3"):
        wait_until_served(tmp_path, failed, timeout=5)
    (tmp_path / "output.log").write_text("# grok-tui: run process started now\ngrok-tui: error: no such preset\n")
    with pytest.raises(StartError, match="no such preset"):  # its last words are a failure, whatever its status
        wait_until_served(tmp_path, ended, timeout=5)


def test_a_detached_run_trains_on_its_own_and_stops_cleanly_when_asked(detached, tmp_path):
    run_dir = tmp_path / "run"
    proc = cli(*TINY, *FOREVER, "--run-dir", str(run_dir), "--detach")
    assert proc.returncode == 0, proc.stderr
    assert f"grok-tui attach {run_dir}" in proc.stdout and f"grok-tui stop {run_dir}" in proc.stdout
    pid = pid_of(run_dir)
    try:
        # Its own session: no terminal's hang-up or Ctrl-C reaches it.
        assert os.getsid(pid) == pid
        wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 20, timeout=30, every=0.1)
        listing = cli("ls", str(tmp_path)).stdout
        assert f"running (pid {pid})" in listing and "mod-add" in listing

        stopped = cli("stop", str(run_dir))
        assert stopped.returncode == 0, stopped.stderr
        rows = read_jsonl(run_dir / "metrics.jsonl")
        step = rows[-1]["step"]
        # Stopped where it stood: the last row, the checkpoint and what `stop` says agree.
        assert f"stopped at step {step:,}" in stopped.stdout
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == step
        wait_until(lambda: not alive(pid), timeout=10, every=0.05)
        assert not (run_dir / SOCKET).exists() and not (run_dir / KEY).exists()
        info = describe(run_dir)
        assert (info.state, info.step, info.pid) == ("stopped", step, None)
        again = cli("stop", str(run_dir))
        assert again.returncode == 1 and again.stderr.count("\n") == 1 and "not training (stopped)" in again.stderr
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_ls_tells_finished_stopped_and_crashed_apart(detached, tmp_path):
    finished = cli(*TINY, "--steps", "30", "--run-dir", str(tmp_path / "done"), "--headless")
    assert finished.returncode == 0, finished.stderr
    crashed = detached("killed")
    wait_until(lambda: (crashed / "metrics.jsonl").stat().st_size > 0, every=0.05)
    os.kill(pid_of(crashed), signal.SIGKILL)
    wait_until(lambda: not alive(pid_of(crashed)), timeout=10, every=0.05)
    listing = {line.split()[0]: line for line in cli("ls", str(tmp_path)).stdout.splitlines()[1:]}
    assert set(listing) == {"done", "killed"}
    assert " finished " in listing["done"] and "30 of 30" in listing["done"]
    # It said it was running, and its process is gone: crashed, never running.
    assert " crashed " in listing["killed"] and "running" not in listing["killed"]
    # Its socket is stale: nothing serves it, and a resume takes it over.
    assert (crashed / SOCKET).exists() and not is_served(crashed)
    resumed = cli("--resume", str(crashed), "--detach")
    assert resumed.returncode == 0, resumed.stderr
    assert f"running (pid {pid_of(crashed)})" in cli("ls", str(tmp_path)).stdout


def test_the_commands_that_cannot_act_say_why_in_one_line(detached, tmp_path):
    run_dir = detached()
    busy = cli("--resume", str(run_dir), "--headless")
    assert busy.returncode == 2 and busy.stderr.count("\n") == 1
    assert f"it is training now (pid {pid_of(run_dir)}); grok-tui attach {run_dir}" in busy.stderr
    both = cli(*TINY, "--detach", "--headless", "--run-dir", str(tmp_path / "x"))
    assert both.returncode == 2 and "--detach and --headless" in both.stderr
    os.kill(pid_of(run_dir), signal.SIGKILL)
    wait_until(lambda: not alive(pid_of(run_dir)), timeout=10, every=0.05)
    gone = cli("attach", str(run_dir))
    assert gone.returncode == 2 and "not training (crashed)" in gone.stderr and "Traceback" not in gone.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = cli("attach", cwd=empty)
    assert nothing.returncode == 2 and "no run is training under runs/" in nothing.stderr
    assert cli("ls", str(tmp_path / "nowhere")).returncode == 2


def test_a_live_run_whose_channel_is_gone_is_told_as_it_is_and_kill_stops_it_cleanly(detached):
    run_dir = detached()
    pid = pid_of(run_dir)
    wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 5, every=0.1)
    (run_dir / SOCKET).unlink()
    truth = (
        f"its process (pid {pid}) is alive, but its channel {run_dir / SOCKET} is gone; kill {pid} stops it "
        f"cleanly (checkpointed), then grok-tui --resume {run_dir} continues it"
    )
    for command, status in (("stop", 1), ("attach", 2)):
        refused = cli(command, str(run_dir))
        assert refused.returncode == status and refused.stderr.count("\n") == 1, refused.stderr
        assert truth in refused.stderr and "not training" not in refused.stderr
    assert f"running (pid {pid})" in cli("ls", str(run_dir.parent)).stdout
    # The advice holds: SIGTERM stops it where it stands, checkpointed, and --resume takes it up.
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=60, every=0.05)
    step = read_jsonl(run_dir / "metrics.jsonl")[-1]["step"]
    assert describe(run_dir).state == "stopped"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == step
    resumed = cli("--resume", str(run_dir), "--detach")
    assert resumed.returncode == 0, resumed.stderr
    stopped = cli("stop", str(run_dir))
    assert stopped.returncode == 0 and "stopped at step" in stopped.stdout, stopped.stderr


def test_a_live_run_whose_key_file_is_wrong_is_refused_before_any_monitor_opens(detached):
    run_dir = detached()
    pid = pid_of(run_dir)
    (run_dir / KEY).write_text(os.urandom(32).hex())
    truth = f"{run_dir / KEY} is not the key its process (pid {pid}) serves with"
    for command, status in (("attach", 2), ("stop", 1)):
        refused = cli(command, str(run_dir))
        assert refused.returncode == status and refused.stderr.count("\n") == 1, refused.stderr
        assert truth in refused.stderr and f"kill {pid} stops it cleanly" in refused.stderr
        assert refused.stdout == ""  # no monitor was drawn
    # It trains on, untouched.
    rows = len(read_jsonl(run_dir / "metrics.jsonl"))
    wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) > rows, every=0.1)
    assert alive(pid) and describe(run_dir).state == "running"


# ---- the channel ------------------------------------------------------------------------------------------


def test_every_client_sees_each_change_which_is_applied_exactly_once(detached):
    run_dir = detached()
    a, b = attached(run_dir), attached(run_dir)
    first = next_frame(b, lambda s: s.step > 0)
    wd = first.now.weight_decay
    a.control.scale("weight_decay", 2)
    a.control.toggle("pause")
    for session in (a, b):
        seen = next_frame(session, lambda s: s.paused and s.now.weight_decay != wd)
        assert seen.now.weight_decay == 2 * wd
    assert [(e["old"], e["new"]) for e in events(run_dir, "weight_decay")] == [(wd, 2 * wd)]
    # A client that attaches later gets the history so far, the change included.
    c = attached(run_dir)
    late = next_frame(c)
    assert late.paused and late.now.weight_decay == 2 * wd
    assert any(e.kind == "weight_decay" for e in late.events)


def test_a_bad_command_gets_an_error_back_and_changes_nothing(detached):
    run_dir = detached()
    session = attached(run_dir)
    before = next_frame(session, lambda s: s.step > 0).now
    with connect(run_dir) as conn:
        for bad in (
            b"not json",
            b'{"command": "explode"}',
            b'{"command": "scale", "name": "weight_decay"}',
            b'{"command": "set", "name": "lr", "value": NaN}',
            b"[1, 2]",
            b"\xff\xfe",
            encode_command({"command": "set", "name": "weight_decay", "value": -1, "id": 7}),
        ):
            conn.send_bytes(bad)
        replies = []
        while len(replies) < 7:
            message = conn.recv()
            if message[0] == "reply":
                replies.append(message)
        assert all(error for _, _, error in replies)
        assert replies[-1][1] == 7 and "weight_decay" in replies[-1][2] and ">= 0" in replies[-1][2]
        assert "unknown command 'explode'" in replies[1][2]
        # Still served, and nothing changed.
        conn.send_bytes(encode_command({"command": "toggle", "what": "pause", "id": 8}))
        while (message := conn.recv())[0] != "reply":
            pass
        assert message == ("reply", 8, None)
    assert next_frame(session, lambda s: s.paused).now == before
    assert read_jsonl(run_dir / "events.jsonl") == [events(run_dir, "paused")[0]]


def test_peers_that_stall_their_handshake_hold_up_neither_attach_nor_stop_and_are_dropped(detached):
    run_dir = detached()
    pid = pid_of(run_dir)
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(run_dir / SOCKET))  # and says nothing
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(str(run_dir / SOCKET))
    slow.settimeout(30)
    assert b"#CHALLENGE#" in slow.recv(1024)
    slow.sendall(b"\x00\x00")  # half of its answer's length, then nothing
    assert is_served(run_dir)
    session = attached(run_dir)
    assert next_frame(session, lambda s: s.step > 0).step > 0
    # The handshake's time limit drops the silent one (the hang guard is far beyond it): the challenge,
    # no welcome, then the end, while the run trains on.
    silent.settimeout(30)
    heard = b""
    while chunk := silent.recv(1024):
        heard += chunk
    assert b"#CHALLENGE#" in heard and b"WELCOME" not in heard and alive(pid)
    stopped = cli("stop", str(run_dir))
    assert stopped.returncode == 0 and "stopped at step" in stopped.stdout, stopped.stderr
    slow.close()
    silent.close()


def test_only_the_owner_can_connect_and_nothing_is_unpickled_on_the_way(detached, tmp_path):
    # A directory others may pass through, so that only the socket's and the key's own modes keep them out.
    public = Path(tempfile.mkdtemp(prefix="grok-test-"))
    public.chmod(0o755)
    run_dir = detached("run", public)
    assert stat.S_IMODE((run_dir / SOCKET).stat().st_mode) == 0o600
    assert stat.S_IMODE((run_dir / KEY).stat().st_mode) == 0o600
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    # A peer without the key: its pickle goes where the challenge's answer should, and is refused unread.
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(run_dir / SOCKET))
        raw.recv(1024)  # the challenge
        payload = pickle.dumps(Evil())
        raw.sendall(len(payload).to_bytes(4, "big") + payload)
        raw.settimeout(5)
        assert b"WELCOME" not in raw.recv(1024)
    with pytest.raises(Exception, match="digest"):
        Client(str(run_dir / SOCKET), family="AF_UNIX", authkey=b"a guess")
    # Even with the key, a pickle sent as a command is not unpickled: commands are JSON.
    with connect(run_dir) as conn:
        conn.send(Evil())
        while (message := conn.recv())[0] != "reply":
            pass
        assert message[2] is not None
    assert not marker.exists()
    assert is_served(run_dir)
    # Another user on the box: the socket and the key are closed to them.
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    child = os.fork()
    if child == 0:  # nobody: 1 if it could connect, 2 if it could read the key
        code = 0
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(run_dir / SOCKET))
                    code |= 1
                except PermissionError:
                    pass
            try:
                (run_dir / KEY).read_bytes()
                code |= 2
            except PermissionError:
                pass
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # Ended before its directory goes: a run whose directory is removed under it can train on for good.
    pid = pid_of(run_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), timeout=10, every=0.05)
    shutil.rmtree(public, ignore_errors=True)


# ---- the monitor: detach, a hang-up, attach ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_hang_up_detaches_and_attach_steers_the_run_from_another_terminal(detached, tmp_path):
    run_dir = tmp_path / "run"
    exe = Path(sys.executable).parent / "grok-tui"
    server = f"grok-test-{uuid.uuid4().hex[:8]}"
    tmux = lambda *args: subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True)  # noqa: E731
    tmux(
        "new-session", "-d", "-x", "120", "-y", "40", f"{exe} {' '.join(TINY)} {' '.join(FOREVER)} --run-dir {run_dir}"
    )
    try:
        wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 20, every=0.1)
        monitor = monitor_pid(exe, run_dir)
        trainer = pid_of(run_dir)
        tmux("kill-server")  # the terminal closes: a hang-up
        wait_until(lambda: not alive(monitor), timeout=10, every=0.05)
        # The run trains on.
        steps = len(read_jsonl(run_dir / "metrics.jsonl"))
        wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) > steps + 10, every=0.1)
        assert alive(trainer) and describe(run_dir).state == "running"
        assert not (run_dir / "crash.log").exists()

        # Another terminal: attach, steer, detach.
        status = tmp_path / "status"
        tmux("new-session", "-d", "-x", "120", "-y", "40", f"{exe} attach {run_dir}; echo $? > {status}; sleep 30")
        wait_until(lambda: "train" in tmux("capture-pane", "-p").stdout, timeout=30, every=0.1)
        tmux("send-keys", "]")
        wait_until(lambda: events(run_dir, "weight_decay"), timeout=10, every=0.05)
        tmux("send-keys", "d")
        wait_until(status.exists, timeout=10, every=0.1)
        assert status.read_text().strip() == "0"
        assert f"grok-tui attach {run_dir}" in tmux("capture-pane", "-p", "-J").stdout
        assert [(e["old"], e["new"]) for e in events(run_dir, "weight_decay")] == [(1.0, 2.0)]
        assert alive(trainer)
    finally:
        tmux("kill-server")
        stopped = cli("stop", str(run_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert describe(run_dir).state == "stopped"


def test_the_monitor_attached_to_a_detached_run_steers_it_shows_its_weights_and_detaches(detached):
    from grok_tui.config import RunConfig
    from grok_tui.runlog import load_config
    from grok_tui.train.spec import RunSpec
    from grok_tui.ui.app import MonitorApp

    run_dir = detached()
    spec = RunSpec(load_config(run_dir), run_dir)
    assert isinstance(spec.cfg, RunConfig)

    async def scenario():
        app = MonitorApp.for_run(AttachedRun(run_dir), frame_interval=0.05)
        async with opened(app, timeout=30) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.step > 100, timeout=30)
            # What the files do not hold: the weights and the spectrum, live.
            assert app.home.snapshot.matrices and app.home.snapshot.spectrum is not None
            # The history from before this monitor attached is on its curves.
            assert len(app.home.history) >= 10
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: app.home.snapshot.now.weight_decay == 2.0)
            await pilot.press("d")
            await wait_for(pilot, lambda: app.return_code is not None)
        assert "detached" in (app.farewell or "") and not any("error" in n for n in notes(app))

    run(scenario())
    assert [(e["old"], e["new"]) for e in events(run_dir, "weight_decay")] == [(1.0, 2.0)]
    assert describe(run_dir).state == "running"
