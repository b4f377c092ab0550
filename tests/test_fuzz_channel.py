"""Property-based fuzz tests of a run's channel: whatever a peer sends, as a command or where the
handshake should be, the server answers it with one line (or, for a handshake, hangs up), and goes on
serving everyone else; no thread of it raises.

Commands are fuzzed twice: on a RunServer in this process, where what reaches the trainer's Control can
be checked against what was sent, and on a real background run, which must train on untouched. The
examples are derandomized like test_fuzz.py's; timeouts are hang guards only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pickle
import socket
import sys
import threading
import types
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grok_tui.runlog import read_jsonl
from grok_tui.sources.attached import AttachedRun
from grok_tui.train.channel import MAX_COMMAND_BYTES, SOCKET, connect
from grok_tui.train.control import WIRE_NAMES, Control, from_wire
from grok_tui.train.messages import Unreadable
from grok_tui.train.messages import from_wire as message_from_wire
from grok_tui.train.server import RunServer
from tests.conftest import one_line, tiny_config, wait_until
from tests.fakes import FUZZ, synthetic_run
from tests.processes import alive, background_runs, cli, pid_of

GUARD_S = 30.0
# A stalled handshake is cut off this soon here, so the examples' stalled peers do not pile up.
HANDSHAKE_S = 0.5
# A thread of the server that raises fails the test, whichever thread it is.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
ROWS, FRAME = synthetic_run(steps=200)


class Served:
    """A RunServer with frames flowing, and one client that sends commands and reads the replies."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.server = RunServer(run_dir, Control(), handshake_timeout=HANDSHAKE_S)
        self._bound = self.server.bind()
        self._bound.__enter__()
        self.server.start(list(ROWS[:3]), {"experiment": "synthetic", "steps": 200})
        self._done = threading.Event()
        threading.Thread(target=self._publish, daemon=True).start()
        self.client = connect(run_dir, timeout=GUARD_S)
        self.stalled: list[socket.socket] = []

    def _publish(self) -> None:
        while not self._done.wait(0.02):
            self.server.publish(FRAME, [])

    def ask(self, data: bytes) -> tuple:
        """Send `data` as a command; the reply to it (frames in between are passed over)."""
        self.client.send_bytes(data)
        while True:
            assert self.client.poll(GUARD_S), "no reply"
            message = self.client.recv()
            if message[0] == "reply":
                return message

    def reconnect(self) -> None:
        self.client.close()
        self.client = connect(self.run_dir, timeout=GUARD_S)

    def queued(self) -> list:
        commands = []
        while (command := self.server.control.get(0)) is not None:
            commands.append(command)
        return commands

    def close(self) -> None:
        self._done.set()
        self.client.close()
        self._bound.__exit__(None, None, None)
        for peer in self.stalled:
            peer.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    served = Served(tmp_path_factory.mktemp("served"))
    yield served
    served.close()


def still_serves(run_dir: Path) -> bool:
    """A new client is authenticated and greeted (within the hang guard)."""
    with connect(run_dir, timeout=GUARD_S) as conn:
        return conn.poll(GUARD_S) and conn.recv()[0] == "hello"


# ---- strategies -------------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("name", "value", "factor", "what", "size", "norm", "current", "on", "alpha", "lamb")
COMMAND_NAMES = tuple(WIRE_NAMES)
# Something like a command: a known name (or not), known fields (or not), any values, perhaps an id.
commands = st.builds(
    lambda name, fields, ident: {"command": name, **fields, **ident},
    st.sampled_from(COMMAND_NAMES) | json_values,
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=4),
    st.just({}) | st.builds(lambda i: {"id": i}, json_values),
)

# And something close to a valid one, so that commands are taken too, not only refused.
plausible = (
    st.sampled_from(("weight_decay", "lr", "l1", "pause", "norm_constraint", "grokfast"))
    | st.floats(-1, 3)
    | st.integers(-2, 100)
    | st.booleans()
    | st.none()
)
# Each command's own fields, every one given: with plausible values, many are taken.
SHAPES = {name: [f.name for f in dataclasses.fields(kind)] for name, kind in WIRE_NAMES.items()}
near_commands = st.sampled_from(sorted(SHAPES)).flatmap(
    lambda name: st.fixed_dictionaries({field: plausible for field in SHAPES[name]}).map(
        lambda fields: {"command": name, **fields}
    )
)


def encode(record) -> bytes:
    # NaN and Infinity included, as a peer could write them (JSON has no such numbers: they are refused).
    return json.dumps(record, allow_nan=True).encode()


def strict_json(record) -> bool:
    try:
        json.dumps(record, allow_nan=False)
    except ValueError:
        return False
    return True


# ---- commands ---------------------------------------------------------------------------------------------


@FUZZ
@given(record=near_commands | commands | json_values)
@example(record={"command": "scale", "name": "lr", "factor": 10**400})  # math.isfinite overflowed on it
@example(record={"command": "set", "name": "lr", "value": -(10**400)})
def test_the_checker_takes_any_json_or_says_why_in_one_line(record):
    # from_wire's only way to refuse is a ValueError: the server answers nothing else.
    try:
        from_wire(record)
    except ValueError as e:
        assert one_line(str(e)) and len(str(e)) < 300


@FUZZ
@given(record=near_commands | commands | json_values)
@example(record={"command": "scale", "name": "lr", "factor": 10**400})  # too large for a float
@example(record={"command": "set", "name": "lr", "value": float("nan"), "id": 3})  # not JSON: no id back
@example(record={"command": "pause", "id": True})  # a bool is no id
@example(record=[[[[[[[[[[]]]]]]]]]])
def test_any_json_command_is_taken_exactly_when_it_is_valid_and_answered_in_one_line(served, record):
    data = encode(record)
    if len(data) > MAX_COMMAND_BYTES:
        return  # the test below: answered, then the channel closes
    _, ident, error = served.ask(data)
    queued = served.queued()
    if error is None:
        # Taken: exactly what the checker makes of it went to the trainer, once.
        fields = {k: v for k, v in record.items() if k != "id"}
        assert queued == [from_wire(fields)]
    else:
        assert isinstance(error, str) and one_line(error) and error.strip() and queued == []
    # The id comes back with the reply to any JSON object (NaN and Infinity are not JSON: their reply has none).
    sent_id = record.get("id") if isinstance(record, dict) and strict_json(record) else None
    assert ident == (sent_id if isinstance(sent_id, int) and not isinstance(sent_id, bool) else None)


@FUZZ
@given(data=st.binary(max_size=MAX_COMMAND_BYTES + 64))
@example(data=b"")
@example(data=b"\xff\xfe{")
@example(data=b"{" * 3000)  # nested deeper than the decoder goes
@example(data=b'{"command": "pause"' + b" " * MAX_COMMAND_BYTES + b"}")  # a command, but over the limit
def test_any_bytes_as_a_command_get_one_line_back_and_the_server_serves_on(served, data):
    _, ident, error = served.ask(data)
    if len(data) > MAX_COMMAND_BYTES:
        assert f"at most {MAX_COMMAND_BYTES} bytes" in error
        served.reconnect()  # it hung up: what follows such a command cannot be told apart
    if error is None:  # bytes that happen to be a whole, valid command
        assert len(served.queued()) == 1
    else:
        assert isinstance(error, str) and one_line(error) and ident is None and served.queued() == []


# ---- the handshake ----------------------------------------------------------------------------------------


@FUZZ
@given(
    before=st.binary(max_size=300),
    after=st.binary(max_size=300),
    then=st.sampled_from(["hang up", "stall"]),
)
@example(before=b"", after=b"", then="stall")  # connects, says nothing
@example(before=b"", after=b"\x00\x00", then="stall")  # half an answer
@example(before=b"", after=b"\xff\xff\xff\xff" + bytes(8), then="stall")  # a length of 2**64 - 1
@example(before=b"\x00\x00\x00\x10" + bytes(16), after=b"", then="hang up")  # an answer before the question
def test_any_bytes_in_place_of_the_handshake_stall_no_one_and_win_nothing(served, before, after, then):
    peer = socket.socket(socket.AF_UNIX)
    peer.connect(str(served.run_dir / SOCKET))
    peer.settimeout(GUARD_S)
    heard = b""
    with contextlib.suppress(OSError):  # the server may well hang up on it half-way
        peer.sendall(before)
        heard += peer.recv(4096)
        peer.sendall(after)
    # While it stalls (or just after it hung up), others are served.
    assert still_serves(served.run_dir)
    if then == "stall":
        served.stalled.append(peer)  # cut off by the handshake's limit; closed at the end
    else:
        with contextlib.suppress(OSError):
            heard += peer.recv(4096)
        peer.close()
    assert b"#WELCOME#" not in heard


def test_the_stalled_peers_are_all_cut_off(served):
    # Those the examples above left (this file's order), and one more: each hears the end, soon.
    peer = socket.socket(socket.AF_UNIX)
    peer.connect(str(served.run_dir / SOCKET))
    peer.settimeout(GUARD_S)
    served.stalled.append(peer)
    for peer in served.stalled:
        with contextlib.suppress(ConnectionResetError):
            while peer.recv(4096):
                pass
    assert still_serves(served.run_dir)


# ---- a real run -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    with background_runs(tmp_path_factory.mktemp("real")) as start:
        run_dir = start()
        conn = connect(run_dir, timeout=GUARD_S)
        yield run_dir, [conn]


@FUZZ
@given(data=st.binary(max_size=MAX_COMMAND_BYTES + 64) | json_values.map(encode))
@example(data=b"\x80\x04K\x01.")  # a pickle: never unpickled
def test_a_real_run_answers_any_bytes_in_one_line_and_trains_on(real_run, data):
    run_dir, holder = real_run
    conn = holder[0]
    conn.send_bytes(data)
    while True:
        assert conn.poll(GUARD_S), "no reply"
        message = conn.recv()
        if message[0] == "reply":
            break
    assert isinstance(message[2], str) and one_line(message[2])
    if len(data) > MAX_COMMAND_BYTES:
        conn.close()
        holder[0] = connect(run_dir, timeout=GUARD_S)


def test_the_real_run_is_unharmed(real_run):
    run_dir, holder = real_run
    pid = pid_of(run_dir)
    rows = len(read_jsonl(run_dir / "metrics.jsonl"))
    wait_until(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) > rows, every=0.1)
    assert alive(pid) and read_jsonl(run_dir / "events.jsonl") == []
    holder[0].close()
    stopped = cli("stop", str(run_dir))
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not alive(pid), every=0.05)
    assert "Traceback" not in (run_dir / "output.log").read_text()


# ---- frames, as a client reads them --------------------------------------------------------------------------

# What a server of another grok-tui version might send: our messages' kinds with any parts, or anything.
frame_parts = st.sampled_from([FRAME, None, ROWS[0]]) | st.lists(st.sampled_from([ROWS[0], 1, None]), max_size=3)
messages = (
    st.tuples(st.sampled_from(["hello", "frame", "reply", "bye", "other"]), *[frame_parts | json_values] * 3)
    | st.tuples(st.sampled_from(["hello", "frame", "reply", "bye"]), frame_parts | json_values)
    | json_values
)


@FUZZ
@given(message=messages)
@example(message=("hello", {}, list(ROWS[:2]), FRAME))
@example(message=("frame", FRAME, [ROWS[0]]))
@example(message=("frame", FRAME, [1]))
@example(message=("bye", "finished"))
@example(message=("bye",))
def test_a_client_takes_any_message_as_one_of_ours_or_ends_with_one_line(tmp_path_factory, message):
    session = AttachedRun(tmp_path_factory.mktemp("run"), cfg=tiny_config())  # a run directory with no files
    read = message_from_wire(message)  # Client.receive's reading of it
    going_on = session._take(read)
    snapshot, rows, error = session.mailbox.take()
    if error is not None:
        # Not one of ours: one line that says so, and the session ends.
        assert isinstance(read, Unreadable)
        assert not going_on and one_line(error) and "cannot read" in error and snapshot is None
    elif snapshot is not None:
        assert isinstance(message, tuple) and message[0] in ("hello", "frame") and going_on
        assert all(isinstance(row, type(ROWS[0])) for row in rows)
    else:
        assert going_on == (message[0] != "bye")


def pickle_of_a_class_this_process_lacks() -> bytes:
    """A message as a newer grok-tui might send it: pickled from a module this one does not have."""
    module = types.ModuleType("grok_tui_of_the_future")
    module.Frame = type("Frame", (), {"__module__": module.__name__})
    sys.modules[module.__name__] = module
    try:
        return pickle.dumps(("frame", module.Frame(), []))
    finally:
        del sys.modules[module.__name__]


def test_a_message_this_version_cannot_unpickle_ends_the_client_with_one_line(tmp_path):
    """A frame holding a class this grok-tui lacks (a newer run's): no traceback, one line."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    server = RunServer(run_dir, Control(), handshake_timeout=HANDSHAKE_S)
    with server.bind():
        server.start([], {"experiment": "synthetic", "steps": 200})
        session = AttachedRun(run_dir, cfg=tiny_config())
        thread = threading.Thread(target=session.run, daemon=True)
        thread.start()
        wait_until(lambda: server.clients == 1, timeout=GUARD_S)
        with server._lock:
            peer = server._peers[0]
        with peer._send_lock:  # not inside the greeting
            peer.conn.send_bytes(pickle_of_a_class_this_process_lacks())
        thread.join(GUARD_S)
        assert not thread.is_alive()
        _, _, error = session.mailbox.take()
        assert error is not None and one_line(error) and "cannot read (ModuleNotFoundError" in error
