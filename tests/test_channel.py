"""The run's channel in one process: a RunServer on a real socket, its peers on others.

Real runs (a background process each) are in test_detach.py; here the server is
driven directly, so a test can hold a handshake open, hang up in the middle of a
frame, or stop the server while clients are half-way through anything. No
assertion is about time: timeouts are hang guards only, long enough for a busy
machine, and the server's own handshake limit is chosen per test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing import connection
from pathlib import Path

import numpy as np
import pytest

from grok_tui.train.channel import (
    KEY,
    MAX_COMMAND_BYTES,
    SOCKET,
    ChannelError,
    Client,
    KeyRefused,
    NotServed,
    connect,
    encode_command,
)
from grok_tui.train.control import Control, Pause, SetHyper, Stop
from grok_tui.train.messages import Bye, Frame, Hello, Reply, Unreadable, from_wire
from grok_tui.train.server import RunServer
from tests.conftest import wait_until
from tests.fakes import synthetic_run

GUARD_S = 30.0  # a hang guard: far beyond anything that works, short of a hung test run
# Every thread the server starts must end quietly: a traceback from any of them fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
ROWS, FRAME = synthetic_run(steps=200)


@contextlib.contextmanager
def served(run_dir: Path, handshake_timeout: float = 5.0) -> Iterator[RunServer]:
    server = RunServer(run_dir, Control(), handshake_timeout=handshake_timeout)
    with server.bind():
        server.start(list(ROWS[:3]), {"experiment": "synthetic", "steps": 200})
        yield server


def in_thread(target, *args):
    """Run `target` in a thread; its result (or exception) once it returns, within the hang guard."""
    outcome: dict[str, object] = {}

    def run():
        try:
            outcome["value"] = target(*args)
        except BaseException as e:  # handed to the test, which asserts on it
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def finish(thread: threading.Thread, outcome: dict):
    thread.join(GUARD_S)
    assert not thread.is_alive(), "hung"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


def greeted(run_dir: Path) -> tuple:
    """Connect as a client does, and return the server's hello."""
    with connect(run_dir, timeout=GUARD_S) as conn:
        return conn.recv()


def raw_peer(run_dir: Path) -> socket.socket:
    peer = socket.socket(socket.AF_UNIX)
    peer.connect(str(run_dir / SOCKET))
    peer.settimeout(GUARD_S)
    return peer


def read_until_closed(peer: socket.socket) -> bytes:
    """All the server sends until it hangs up (a hang guard: GUARD_S of silence fails the test)."""
    data = b""
    while True:
        try:
            chunk = peer.recv(4096)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def server_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("grok-tui")}


# ---- the handshake ----------------------------------------------------------------------------------------


def test_a_silent_or_slow_peer_holds_up_no_other_client(tmp_path):
    # The server would wait a minute on a stalled handshake: a client served at all within the guard was
    # not queued behind the two below.
    with served(tmp_path, handshake_timeout=2 * GUARD_S):
        silent = raw_peer(tmp_path)  # connects, and says nothing
        slow = raw_peer(tmp_path)
        assert slow.recv(4096).startswith(b"\x00\x00\x00\x1f#CHALLENGE#")
        slow.sendall(b"\x00\x00")  # half of the answer's length, and no more
        for _ in range(3):
            kind, info, rows, snapshot = finish(*in_thread(greeted, tmp_path))
            assert kind == "hello" and info["experiment"] == "synthetic" and rows == list(ROWS[:3])
        silent.close()
        slow.close()


def test_a_peer_that_stalls_the_handshake_is_cut_off(tmp_path):
    with served(tmp_path, handshake_timeout=0.2):
        silent = raw_peer(tmp_path)
        trickle = raw_peer(tmp_path)
        challenge = trickle.recv(4096)
        # One byte at a time, each well within the limit: it is the whole handshake that has one.
        trickling = threading.Event()

        def drip():
            with contextlib.suppress(OSError):
                for byte in b"\x00\x00\x00\x10" + bytes(16):
                    trickle.sendall(bytes([byte]))
                    trickling.set()
                    time.sleep(0.05)

        threading.Thread(target=drip, daemon=True).start()
        trickling.wait(GUARD_S)
        # Cut off: the challenge, then nothing more (no WELCOME), then the end.
        assert read_until_closed(silent).startswith(b"\x00\x00\x00\x1f#CHALLENGE#")
        assert b"WELCOME" not in challenge + read_until_closed(trickle)
        assert finish(*in_thread(greeted, tmp_path))[0] == "hello"


def test_a_client_gives_up_on_a_server_that_never_answers(tmp_path):
    (tmp_path / KEY).write_text(os.urandom(32).hex())
    with socket.socket(socket.AF_UNIX) as deaf:
        deaf.bind(str(tmp_path / SOCKET))
        deaf.listen(4)  # connections queue up, and no one ever takes them
        with pytest.raises(ChannelError, match=r"control\.sock: the process serving it did not answer within 0\.2 s"):
            finish(*in_thread(connect, tmp_path, 0.2))
        deaf.accept()[0].close()
        # One that takes the connection and stops half-way through the challenge.
        thread, outcome = in_thread(connect, tmp_path, 0.2)
        with deaf.accept()[0] as taken:
            taken.sendall(b"\x00\x00\x00\x1f#CHALL")
            with pytest.raises(ChannelError, match=r"did not answer within 0\.2 s"):
                finish(thread, outcome)


def test_a_client_says_which_key_is_wrong_and_that_no_one_serves(tmp_path):
    with served(tmp_path):
        (tmp_path / KEY).write_text(os.urandom(32).hex())
        with pytest.raises(KeyRefused, match=f"{tmp_path / KEY} is not the key the process serving"):
            connect(tmp_path)
        # multiprocessing's own client, with the wrong key, is turned away too.
        with pytest.raises(Exception, match="digest"):
            connection.Client(str(tmp_path / SOCKET), family="AF_UNIX", authkey=b"a guess")
    with pytest.raises(NotServed, match="no process is serving"):
        connect(tmp_path)


# ---- a peer's threads -------------------------------------------------------------------------------------


def test_clients_that_vanish_mid_frame_or_stop_reading_end_every_thread_quietly(tmp_path):
    # Frames of several megabytes take many writes each: a client that hangs up, or is hung up on, is
    # always caught in the middle of one.
    big = dataclasses.replace(FRAME, matrices={"weights": np.random.default_rng(0).random((500, 500))})
    before = server_threads()
    with served(tmp_path) as server:
        stop = threading.Event()

        def publish():
            while not stop.is_set():
                server.publish(big, [])
                time.sleep(0.002)

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        stalled = []
        for i in range(24):
            conn = connect(tmp_path, timeout=GUARD_S)
            if i % 3 == 0:
                stalled.append(conn)  # never reads again
                continue
            conn.recv_bytes()  # the hello; then a frame half-read, and gone
            with socket.socket(fileno=os.dup(conn.fileno())) as s:
                s.recv(100_000)
            conn.send_bytes(encode_command({"command": "pause", "id": i}))
            conn.close()
        wait_until(lambda: server.clients == len(stalled), GUARD_S, what="the clients that left are forgotten")
        stop.set()
        publisher.join(GUARD_S)
    # close() cut off the clients that stopped reading: every thread it started has ended (none raised).
    wait_until(lambda: not (server_threads() - before), GUARD_S, what="every server thread ends")
    for conn in stalled:
        conn.close()


def test_goodbye_comes_after_the_last_frame_and_then_the_server_hangs_up(tmp_path):
    with served(tmp_path) as server, connect(tmp_path) as conn:
        assert conn.recv()[0] == "hello"
        server.publish(FRAME, list(ROWS[3:5]))
        server.close("finished")
        kind, snapshot, rows = conn.recv()
        assert (kind, snapshot.metrics, rows) == ("frame", FRAME.metrics, list(ROWS[3:5]))
        assert conn.recv() == ("bye", "finished")
        with pytest.raises(EOFError):
            conn.recv()
    assert not (tmp_path / SOCKET).exists() and not (tmp_path / KEY).exists()


# ---- commands ---------------------------------------------------------------------------------------------


def test_a_command_longer_than_any_is_answered_then_the_channel_closes(tmp_path):
    with served(tmp_path) as server, connect(tmp_path) as conn:
        conn.send_bytes(encode_command({"command": "pause", "id": 1}))
        conn.send_bytes(b"{" + b" " * MAX_COMMAND_BYTES + b"}")
        replies = []
        with contextlib.suppress(EOFError, ConnectionResetError):
            while True:
                message = conn.recv()
                if message[0] == "reply":
                    replies.append(message)
        assert replies[0] == ("reply", 1, None)
        assert replies[1][:2] == ("reply", None) and f"at most {MAX_COMMAND_BYTES} bytes" in replies[1][2]
        assert len(replies) == 2 and len(replies[1][2].splitlines()) == 1
        assert server.control.get(0) == Pause() and server.control.get(0) is None
        # The server serves on.
        assert finish(*in_thread(greeted, tmp_path))[0] == "hello"


# ---- the client ---------------------------------------------------------------------------------------------


def test_the_client_reads_every_message_as_its_class_in_order(tmp_path):
    with served(tmp_path) as server, Client.connect(tmp_path, timeout=GUARD_S) as client:
        hello = client.receive(GUARD_S)
        assert isinstance(hello, Hello) and hello.snapshot is None and hello.rows == list(ROWS[:3])
        assert hello.info["experiment"] == "synthetic" and hello.info["pid"] == os.getpid()
        assert client.receive(0.05) is None  # nothing more yet: no wait beyond the timeout
        server.publish(FRAME, list(ROWS[3:5]))
        server.close("finished")
        frame = client.receive(GUARD_S)
        assert isinstance(frame, Frame) and frame.snapshot.metrics == FRAME.metrics and frame.rows == list(ROWS[3:5])
        assert client.receive(GUARD_S) == Bye("finished")
        with pytest.raises(EOFError):
            client.receive(GUARD_S)


def test_the_client_numbers_its_commands_and_reads_their_replies(tmp_path):
    with served(tmp_path) as server, Client.connect(tmp_path, timeout=GUARD_S) as client:
        assert isinstance(client.receive(GUARD_S), Hello)
        sent = [client.send(Pause()), client.send(SetHyper("lr", -1.0)), client.send(Stop())]
        assert sent == [1, 2, 3]
        replies = []
        while len(replies) < 3:
            message = client.receive(GUARD_S)
            if isinstance(message, Reply):
                replies.append(message)
        assert [r.id for r in replies] == sent
        assert replies[0].error is None and replies[2].error is None
        assert "lr" in replies[1].error and len(replies[1].error.splitlines()) == 1
        # The server took exactly the two valid ones, as the checker makes them.
        assert server.control.get(0) == Pause() and server.control.get(0) == Stop() and server.control.get(0) is None
    # Closed, it sends nothing, and says so as OSError (AttachedRun turns that into one line).
    with pytest.raises(OSError):
        client.send(Pause())


def test_a_message_the_client_cannot_unpickle_is_unreadable_and_the_next_is_read(tmp_path):
    with served(tmp_path) as server, Client.connect(tmp_path, timeout=GUARD_S) as client:
        assert isinstance(client.receive(GUARD_S), Hello)
        wait_until(lambda: server.clients == 1, GUARD_S, what="the client is admitted")
        with server._lock:
            peer = server._peers[0]
        with peer._send_lock:
            # A class pickled by reference to a module this process does not have (a newer run's).
            peer.conn.send_bytes(pickle.dumps(("frame", ValueError())).replace(b"builtins", b"nomodule"))
            peer.conn.send_bytes(b"\x80\x04\x95 not a pickle")
            peer.conn.send(Bye("stopped").to_wire())
        first, second = client.receive(GUARD_S), client.receive(GUARD_S)
        assert isinstance(first, Unreadable) and first.why.startswith("ModuleNotFoundError: No module named 'nomodule'")
        assert isinstance(second, Unreadable)
        assert len(first.why.splitlines()) == 1 and len(second.why.splitlines()) == 1
        assert client.receive(GUARD_S) == Bye("stopped")


def test_the_client_unpickles_nothing_before_the_server_proves_it_holds_the_key(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / KEY).write_text(os.urandom(32).hex())
    with socket.socket(socket.AF_UNIX) as impostor:
        impostor.bind(str(tmp_path / SOCKET))
        impostor.listen(1)
        thread, outcome = in_thread(Client.connect, tmp_path, GUARD_S)
        with impostor.accept()[0] as taken:
            payload = pickle.dumps(Evil())  # where the challenge should be
            taken.sendall(len(payload).to_bytes(4, "big") + payload)
            with pytest.raises(ChannelError, match="does not speak grok-tui's channel"):
                finish(thread, outcome)
    assert not marker.exists()


@pytest.mark.parametrize(
    "message",
    [Hello({"pid": 1}, list(ROWS[:2]), FRAME), Hello({}, [], None), Frame(FRAME, []), Reply(3, None)]
    + [Reply(None, "one line"), Bye("fault: the loss is not finite")],
)
def test_each_message_is_read_back_as_it_was_sent(message):
    assert from_wire(message.to_wire()) == message


@pytest.mark.parametrize(
    ("wire", "says"),
    [
        (("hello", {}, [ROWS[0], 1], None), "a 'hello' message of 4 parts"),
        (("frame", None, []), "a 'frame' message of 3 parts"),
        (("reply", True, None), "a 'reply' message of 3 parts"),  # a bool is no id
        (("bye",), "a 'bye' message of 1 parts"),
        (("news", "x" * 100), "a 'news' message of 2 parts"),
        ([1, 2], "a list"),
        (FRAME, "a Snapshot"),
    ],
)
def test_anything_else_is_unreadable_and_says_what_it_looks_like(wire, says):
    assert from_wire(wire) == Unreadable(says)
