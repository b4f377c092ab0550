"""A run's channel: a Unix socket in its run directory that only its owner can use.

Whoever can read the run directory's key may steer the run, and no one else:
`authkey` (mode 0600, made anew by each process that serves the run) is the
HMAC key of multiprocessing.connection's challenge, which both ends pass before
anything else is read; the socket file is 0600 too, so another user cannot even
connect. Commands travel as JSON and are checked field by field
(control.from_wire): the serving process unpickles nothing. Frames travel the
other way pickled, and a client reads them only after the server has proved it
holds the same key.

Each handshake has HANDSHAKE_TIMEOUT_S, on both ends, and the server passes
each in a thread of its own: a peer that connects and says nothing (or says
half) holds up no one, and is cut off.

A client is a `Client`: made only by its handshake, it sends commands and
receives the run's messages (train/messages.py: Hello, Frame, Reply, Bye),
each read back in one place, and one it cannot read is Unreadable, never
an exception. The design, and why: docs/design.md, "The channel".
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

from grok_tui.files import WriteError
from grok_tui.train.control import Command, to_wire
from grok_tui.train.messages import Message, Unreadable, from_wire

SOCKET = "control.sock"
KEY = "authkey"
# The longest command we send is ~100 bytes: anything much longer is not ours.
MAX_COMMAND_BYTES = 4096
# A handshake is four short messages, a few milliseconds even beside a busy trainer.
HANDSHAKE_TIMEOUT_S = 5.0
# Connections waiting to be accepted; beyond this a client is told the run does not answer.
BACKLOG = 64
# sun_path holds 108 bytes with its terminating NUL.
_MAX_SOCKET_PATH = 107


class ChannelError(Exception):
    """One line: why the channel cannot be served or reached."""


class NotServed(ChannelError):
    """No process serves the run: its socket or its key is missing, or nothing listens on the socket."""


class KeyRefused(ChannelError):
    """The process serving the run holds another key than the run directory's."""


@contextlib.contextmanager
def _address(run_dir: Path) -> Iterator[str]:
    """The socket's address; a path too long for a Unix socket is reached through a directory fd."""
    path = str(Path(run_dir) / SOCKET)
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        yield path
        return
    if not Path("/proc/self/fd").is_dir():
        raise ChannelError(
            f"the run directory's path is too long for a Unix socket ({len(path)} bytes); use a shorter --run-dir"
        )
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{SOCKET}"
    finally:
        os.close(fd)


def is_served(run_dir: Path) -> bool:
    """Whether a live process is listening on the run's socket (one left by a dead one refuses)."""
    if not (Path(run_dir) / SOCKET).exists():
        return False
    with _address(run_dir) as address, socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(address)
        except BlockingIOError:
            return True  # its queue of connections is full: someone listens, and is busy
        except (TimeoutError, ConnectionRefusedError, FileNotFoundError):
            return False
        except PermissionError:
            return True  # someone else's, and alive
    return True


def listen(run_dir: Path) -> tuple[socket.socket, bytes]:
    """Serve the run's channel: a new key, then the listening socket (ChannelError if another process
    serves it). Each connection accepted from it is to be authenticated before anything else."""
    run_dir = Path(run_dir)
    path = run_dir / SOCKET
    if path.exists() or path.is_symlink():
        if is_served(run_dir):
            raise ChannelError(f"{run_dir} is already running in another process; grok-tui attach {run_dir} opens it")
        path.unlink()  # left by a process that died without cleaning up
    key = os.urandom(32)
    _write_private(run_dir / KEY, key.hex())
    listener = socket.socket(socket.AF_UNIX)
    # Created private, not made private after: there is no moment when others may connect.
    umask = os.umask(0o177)
    try:
        with _address(run_dir) as address:
            listener.bind(address)
        listener.listen(BACKLOG)
    except OSError as e:
        listener.close()
        raise ChannelError(f"cannot serve {path}: {e.strerror or e}") from None
    finally:
        os.umask(umask)
    return listener, key


def accept(listener: socket.socket) -> Connection:
    """The next connection, not yet authenticated (OSError once the listener is closed)."""
    sock, _ = listener.accept()
    sock.setblocking(True)  # Connection reads and writes its fd directly, and blocks on it
    return Connection(sock.detach())


def authenticate(conn: Connection, key: bytes, timeout: float = HANDSHAKE_TIMEOUT_S) -> None:
    """The server's half of the handshake: the peer proves it holds `key`, then we do, within `timeout`.
    ChannelError, with why, if it does not (the connection is then the caller's to close)."""
    try:
        with _deadline(conn, timeout):
            deliver_challenge(conn, key)
            answer_challenge(conn, key)
    except TimeoutError:
        raise ChannelError(f"the peer did not pass the handshake within {timeout:g} s") from None
    except AuthenticationError:
        raise ChannelError("the peer does not hold the run's key") from None
    except (EOFError, OSError, AssertionError) as e:  # AssertionError: not a challenge where one was due
        raise ChannelError(f"the peer broke off the handshake ({e or type(e).__name__})") from None


def hang_up(conn: Connection) -> None:
    """End a connection that other threads may be blocked on: their reads see EOF and their writes fail
    at once. Its fd stays open, and is closed by whoever uses it last: closed under a thread that is
    reading or writing it, its number could be reused by another file, which that thread would then use."""
    sock = socket.socket(fileno=conn.fileno())
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the peer has gone already
    finally:
        sock.detach()


def close(run_dir: Path, listener: socket.socket) -> None:
    """Stop serving: the socket and the key go, so nothing stale is left behind."""
    # A thread blocked in accept() sleeps on through close(); shutdown() wakes it (with OSError).
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    for name in (SOCKET, KEY):
        with contextlib.suppress(OSError):
            (Path(run_dir) / name).unlink()


def connect(run_dir: Path, timeout: float = HANDSHAKE_TIMEOUT_S) -> Connection:
    """A connection to the process serving the run, both ends authenticated within `timeout`.
    NotServed if no process serves it, KeyRefused if it holds another key, ChannelError otherwise."""
    run_dir = Path(run_dir)
    path = run_dir / SOCKET
    try:
        key = bytes.fromhex((run_dir / KEY).read_text().strip())
    except FileNotFoundError:
        raise NotServed(f"no process is serving {run_dir} (it has no {KEY})") from None
    except PermissionError:
        raise ChannelError(f"{run_dir / KEY}: permission denied; only the run's owner can steer it") from None
    except (OSError, ValueError) as e:
        raise ChannelError(f"{run_dir / KEY}: cannot read the key ({e})") from None
    late = f"{path}: the process serving it did not answer within {timeout:g} s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        try:
            with _address(run_dir) as address:
                sock.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            raise NotServed(f"no process is serving {run_dir} (its process has ended)") from None
        except PermissionError:
            raise ChannelError(f"{path}: permission denied; only the run's owner can steer it") from None
        except (TimeoutError, BlockingIOError):  # BlockingIOError: its queue of connections is full
            raise ChannelError(late) from None
        except OSError as e:
            raise ChannelError(f"cannot connect to {path}: {e.strerror or e}") from None
        sock.setblocking(True)  # Connection reads and writes its fd directly, and blocks on it
        conn = Connection(sock.detach())
    ours_sent = False
    try:
        with _deadline(conn, timeout):
            answer_challenge(conn, key)
            ours_sent = True
            deliver_challenge(conn, key)
        return conn
    except TimeoutError:
        error: ChannelError = ChannelError(late)
    except AuthenticationError:
        if ours_sent:
            error = ChannelError(f"{path}: the process serving it does not hold the key in {run_dir / KEY}")
        else:
            error = KeyRefused(f"{run_dir / KEY} is not the key the process serving {path} holds")
    except AssertionError:  # what came was not a challenge
        error = ChannelError(f"{path}: the process serving it does not speak grok-tui's channel")
    except (EOFError, OSError):
        error = NotServed(f"no process is serving {run_dir} (its process hung up: ending?)")
    conn.close()
    raise error


class Client:
    """A client's end of a run's channel: commands out, each with an id of its own, and the run's messages in.

    Only `Client.connect` makes one (or `__init__`, from a connection `connect` made): what a peer sends
    is unpickled only once it has proved it holds the run's key. One thread may `send` while another
    receives; `close` waits for a send under way: the fd closed under that write could be reused by
    another file, and the rest of the command go there.
    """

    def __init__(self, conn: Connection):
        self._conn = conn  # authenticated, both ends (connect)
        self._send_lock = threading.Lock()
        self._last_id = 0

    @classmethod
    def connect(cls, run_dir: Path, timeout: float = HANDSHAKE_TIMEOUT_S) -> Client:
        """A client of the process serving the run (see `connect` for what it raises)."""
        return cls(connect(run_dir, timeout))

    def send(self, command: Command) -> int:
        """Send a command (control.py has checked it); the id its Reply will carry. OSError if the run is
        gone or the client closed, ValueError for a value JSON cannot carry (NaN)."""
        with self._send_lock:
            self._last_id += 1
            self._conn.send_bytes(encode_command({"id": self._last_id, **to_wire(command)}))
            return self._last_id

    def receive(self, timeout: float | None = None) -> Message | Unreadable | None:
        """The run's next message, or None if none came within `timeout` seconds (None: wait for one).
        EOFError, or OSError, once the run has hung up."""
        if not self._conn.poll(timeout):
            return None
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            raise
        except Exception as e:  # whatever pickle raises for a class or a field this version lacks
            return Unreadable(f"{type(e).__name__}: {e}")
        return from_wire(message)

    def close(self) -> None:
        with self._send_lock:
            self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _deadline(conn: Connection, seconds: float) -> Iterator[None]:
    """Within the block, a peer that stalls is cut off after `seconds`: whatever read or write waits on
    `conn` fails at once, and the block raises TimeoutError."""
    cutoff = _Cutoff(conn)
    timer = threading.Timer(seconds, cutoff)
    timer.name, timer.daemon = "grok-tui-handshake-limit", True
    timer.start()
    try:
        yield
    except (EOFError, OSError):
        if cutoff.fired:
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()
        cutoff.disarm()
    if cutoff.fired:  # cut off just after the last read: the connection is dead all the same
        raise TimeoutError


class _Cutoff:
    """Hangs up a connection when called, unless disarmed first: never once its owner may close it."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._lock = threading.Lock()
        self._armed = True
        self.fired = False

    def __call__(self) -> None:
        with self._lock:
            if self._armed:
                self.fired = True  # first: the hang-up wakes the handshake's thread, which looks at it at once
                hang_up(self._conn)

    def disarm(self) -> None:
        with self._lock:
            self._armed = False


def encode_command(record: dict[str, Any]) -> bytes:
    return json.dumps(record, allow_nan=False).encode()


def decode_command(data: bytes) -> Any:
    """The JSON object of a command; ValueError for bytes that are not one."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"a command is UTF-8 JSON ({type(e).__name__})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a command can carry")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteError(path, e) from None
