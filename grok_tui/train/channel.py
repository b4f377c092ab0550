"""A run's channel: a Unix socket in its run directory that only its owner can use.

Whoever can read the run directory's key may steer the run, and no one else:
`authkey` (mode 0600, made anew by each process that serves the run) is the
HMAC key of multiprocessing.connection's challenge, which both ends pass before
anything else is read; the socket file is 0600 too, so another user cannot even
connect. Commands travel as JSON and are checked field by field
(control.from_wire): the serving process unpickles nothing. Frames travel the
other way pickled, and a client reads them only after the server has proved it
holds the same key.

Messages from the server, each a tuple:
    ("hello", info, rows, snapshot)  on connecting: the run, every metrics row so far, the newest frame
    ("frame", snapshot, rows)        the newest frame and the rows since the last one
    ("reply", id, error)             to each command: error is None, or one line saying what was wrong
    ("bye", reason)                  the run ended ("finished", "stopped", a fault); nothing follows
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from grok_tui.files import WriteError

SOCKET = "control.sock"
KEY = "authkey"
# The longest command we send is ~100 bytes: anything much longer is not ours.
MAX_COMMAND_BYTES = 4096
# sun_path holds 108 bytes with its terminating NUL.
_MAX_SOCKET_PATH = 107


class ChannelError(Exception):
    """One line: why the channel cannot be served or reached."""


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
        except (TimeoutError, ConnectionRefusedError, FileNotFoundError):
            return False
        except PermissionError:
            return True  # someone else's, and alive
    return True


def listen(run_dir: Path) -> tuple[Listener, bytes]:
    """Serve the run's channel: a new key, then the socket (ChannelError if another process serves it)."""
    run_dir = Path(run_dir)
    path = run_dir / SOCKET
    if path.exists() or path.is_symlink():
        if is_served(run_dir):
            raise ChannelError(f"{run_dir} is already running in another process; grok-tui attach {run_dir} opens it")
        path.unlink()  # left by a process that died without cleaning up
    key = os.urandom(32)
    _write_private(run_dir / KEY, key.hex())
    # Created private, not made private after: there is no moment when others may connect.
    umask = os.umask(0o177)
    try:
        with _address(run_dir) as address:
            listener = Listener(address, family="AF_UNIX", authkey=key)
    except OSError as e:
        raise ChannelError(f"cannot serve {path}: {e.strerror or e}") from None
    finally:
        os.umask(umask)
    return listener, key


def close(run_dir: Path, listener: Listener) -> None:
    """Stop serving: the socket and the key go, so nothing stale is left behind."""
    with contextlib.suppress(OSError):
        listener.close()
    for name in (SOCKET, KEY):
        with contextlib.suppress(OSError):
            (Path(run_dir) / name).unlink()


def connect(run_dir: Path) -> Connection:
    """A connection to the process serving the run, both ends authenticated (ChannelError if none)."""
    run_dir = Path(run_dir)
    try:
        key = bytes.fromhex((run_dir / KEY).read_text().strip())
    except FileNotFoundError:
        raise ChannelError(f"no process is serving {run_dir}") from None
    except PermissionError:
        raise ChannelError(f"{run_dir / KEY}: permission denied; only the run's owner can steer it") from None
    except (OSError, ValueError) as e:
        raise ChannelError(f"{run_dir / KEY}: cannot read the key ({e})") from None
    try:
        with _address(run_dir) as address:
            return Client(address, family="AF_UNIX", authkey=key)
    except (ConnectionRefusedError, FileNotFoundError):
        raise ChannelError(f"no process is serving {run_dir} (its process has ended)") from None
    except PermissionError:
        raise ChannelError(f"{run_dir / SOCKET}: permission denied; only the run's owner can steer it") from None
    except Exception as e:  # AuthenticationError, EOFError, OSError: a server that is not this run's
        raise ChannelError(
            f"{run_dir / SOCKET}: the serving process did not authenticate ({e or type(e).__name__})"
        ) from None


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
