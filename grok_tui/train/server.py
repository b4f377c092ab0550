"""The process that trains a run serves it: every attached client sees every frame, and steers.

The trainer hands each frame to `publish`, which only drops it into each
client's Mailbox: a slow or stuck client never holds up a step. One thread per
client sends it the newest frame (the rows since the last one travel with it,
so curves have no gaps), another reads its commands, checks them and queues
them on the trainer's Control, where they are applied between two steps, once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from grok_tui.train import channel
from grok_tui.train.control import Control, from_wire
from grok_tui.train.session import Mailbox
from grok_tui.train.snapshot import Metrics, Snapshot

# How long the end of a run waits for clients to take their last frame and the goodbye.
BYE_TIMEOUT_S = 2.0


class RunServer:
    def __init__(self, run_dir: Path, control: Control):
        self.run_dir = Path(run_dir)
        self.control = control
        self.info: dict[str, Any] = {"pid": os.getpid(), "run_dir": str(self.run_dir)}
        self._lock = threading.Lock()
        self._history: list[Metrics] = []
        self._latest: Snapshot | None = None
        self._peers: list[_Peer] = []
        self._closing = False
        self._listener: Any = None

    @contextlib.contextmanager
    def bind(self) -> Iterator[RunServer]:
        """Own the run's channel (ChannelError if another process does) until the block ends."""
        self._listener, _ = channel.listen(self.run_dir)
        try:
            yield self
        finally:
            self.close("stopped")

    def start(self, history: list[Metrics], info: dict[str, Any]) -> None:
        """Take clients from now on: each is first sent `history`, every row logged before."""
        self._history = list(history)
        self.info.update(info)
        threading.Thread(target=self._accept, name="grok-tui-accept", daemon=True).start()

    def publish(self, snapshot: Snapshot, rows: list[Metrics]) -> None:
        """A new frame for every client; never waits on one."""
        with self._lock:
            self._latest = snapshot
            self._history.extend(rows)
            for peer in self._peers:
                peer.mailbox.put(snapshot, rows)
                peer.wake.set()

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._peers)

    def close(self, reason: str) -> None:
        """Say goodbye (after the last frame) to every client, and stop serving."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            peers = list(self._peers)
        for peer in peers:
            peer.bye = reason
            peer.wake.set()
        for peer in peers:
            peer.sender.join(BYE_TIMEOUT_S)
            peer.close()
        if self._listener is not None:
            channel.close(self.run_dir, self._listener)
            # accept() does not return when its socket is closed under it: a last connection wakes it.
            with contextlib.suppress(channel.ChannelError, OSError):
                channel.is_served(self.run_dir)

    # ---- one thread accepts, two per client ----------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn = self._listener.accept()
            except OSError:
                if self._closing:
                    return
                continue
            except Exception:  # a peer without the key, or one that hung up mid-challenge
                # (The socket is 0600: only the owner could connect and then stall the challenge.)
                continue
            with self._lock:
                if self._closing:
                    conn.close()
                    return
                peer = _Peer(conn, self._commands_from)
                # The client's history and its frames from now on, with no row missed or sent twice.
                peer.greeting = ("hello", self.info, list(self._history), self._latest)
                self._peers.append(peer)
            peer.start(on_gone=self._forget)

    def _forget(self, peer: _Peer) -> None:
        with self._lock:
            if peer in self._peers:
                self._peers.remove(peer)
        peer.close()

    def _commands_from(self, peer: _Peer) -> None:
        while True:
            try:
                data = peer.conn.recv_bytes(channel.MAX_COMMAND_BYTES)
            except (EOFError, OSError):
                return  # gone, or sent something far longer than any command
            ident, error = None, None
            try:
                record = channel.decode_command(data)
                if isinstance(record, dict):
                    ident = record.pop("id", None)
                self.control.send(from_wire(record))
            except ValueError as e:
                error = str(e)
            peer.send(("reply", ident if isinstance(ident, int) and not isinstance(ident, bool) else None, error))


class _Peer:
    def __init__(self, conn: Connection, read_commands: Callable[[_Peer], None]):
        self.conn = conn
        self.mailbox = Mailbox()
        self.wake = threading.Event()
        self.greeting: tuple[Any, ...] | None = None
        self.bye: str | None = None
        self._send_lock = threading.Lock()
        self._read_commands = read_commands
        self.sender = threading.Thread(target=self._send_frames, name="grok-tui-peer-out", daemon=True)
        self._on_gone: Callable[[_Peer], None] = lambda peer: None

    def start(self, on_gone: Callable[[_Peer], None]) -> None:
        self._on_gone = on_gone
        self.sender.start()
        threading.Thread(target=self._read, name="grok-tui-peer-in", daemon=True).start()

    def send(self, message: tuple[Any, ...]) -> bool:
        try:
            with self._send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError):  # ValueError: sent after close
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()

    def _read(self) -> None:
        self._read_commands(self)
        self._on_gone(self)

    def _send_frames(self) -> None:
        if self.greeting is None or not self.send(self.greeting):
            return
        while True:
            self.wake.wait()
            self.wake.clear()
            snapshot, rows, _ = self.mailbox.take()
            if snapshot is not None and not self.send(("frame", snapshot, rows)):
                return
            if self.bye is not None:
                self.send(("bye", self.bye))
                return


__all__ = ["RunServer"]
