"""The process that trains a run serves it: every attached client sees every frame, and steers.

The trainer hands each frame to `publish`, which only drops it into each
client's Mailbox: a slow or stuck client never holds up a step. One thread
accepts connections, and each new one passes the handshake in a thread of its
own (channel.authenticate, with a time limit), so a peer that stalls holds up
no other. Then one thread per client sends it the newest frame (the rows since
the last one travel with it, so curves have no gaps), another reads its
commands, checks them and queues them on the trainer's Control, where they are
applied between two steps, once.

A client's connection is closed by its reader thread, the last to use it: to
end a client early, any thread hangs it up (channel.hang_up), which wakes both
of its threads without closing the fd under them.

What it says to a client (a hello, frames, replies, a goodbye) is train/messages.py's.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from grok_tui.train import channel
from grok_tui.train.control import Control, from_wire
from grok_tui.train.frames import Mailbox
from grok_tui.train.messages import Bye, Frame, Hello, Message, Reply
from grok_tui.train.snapshot import Metrics, Snapshot

# How long the end of a run waits for clients to take their last frame and the goodbye.
BYE_TIMEOUT_S = 2.0
# How long the accept loop rests after a failed accept (out of file descriptors, say) before the next.
ACCEPT_RETRY_S = 0.1


class RunServer:
    def __init__(self, run_dir: Path, control: Control, handshake_timeout: float = channel.HANDSHAKE_TIMEOUT_S):
        self.run_dir = Path(run_dir)
        self.control = control
        self.handshake_timeout = handshake_timeout
        self.info: dict[str, Any] = {"pid": os.getpid(), "run_dir": str(self.run_dir)}
        self._lock = threading.Lock()
        self._history: list[Metrics] = []
        self._latest: Snapshot | None = None
        self._peers: list[_Peer] = []
        self._closing = False
        self._listener: socket.socket | None = None
        self._key = b""
        self._acceptor: threading.Thread | None = None

    @contextlib.contextmanager
    def bind(self) -> Iterator[RunServer]:
        """Own the run's channel (ChannelError if another process does) until the block ends."""
        self._listener, self._key = channel.listen(self.run_dir)
        try:
            yield self
        finally:
            self.close("stopped")

    def start(self, history: list[Metrics], info: dict[str, Any]) -> None:
        """Take clients from now on: each is first sent `history`, every row logged before."""
        self._history = list(history)
        self.info.update(info)
        self._acceptor = threading.Thread(target=self._accept, name="grok-tui-accept", daemon=True)
        self._acceptor.start()

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
            self._closing = True  # from now on no peer is added: those mid-handshake are turned away
            peers = list(self._peers)
        if self._listener is not None:
            channel.close(self.run_dir, self._listener)  # wakes the accept loop, which ends
        for peer in peers:
            peer.say_bye(reason)
        deadline = time.monotonic() + BYE_TIMEOUT_S
        for peer in peers:
            peer.sender.join(max(0.0, deadline - time.monotonic()))
        # Those still sending (a client that stopped reading) are cut off; their readers close them. Every
        # thread is awake by now: the joins are bounded only as a guard, should that ever not hold.
        for peer in peers:
            peer.hang_up()
        for thread in [peer.reader for peer in peers] + ([self._acceptor] if self._acceptor else []):
            thread.join(BYE_TIMEOUT_S)

    # ---- one thread accepts, one per handshake, two per client -------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closing:
            try:
                conn = channel.accept(self._listener)
            except OSError:  # closed (we are done), or a passing shortage of file descriptors
                if not self._closing:
                    time.sleep(ACCEPT_RETRY_S)
                continue
            try:
                threading.Thread(target=self._admit, args=(conn,), name="grok-tui-handshake", daemon=True).start()
            except RuntimeError:  # no thread to spare (a flood of handshakes): this one is turned away
                conn.close()

    def _admit(self, conn: Connection) -> None:
        try:
            channel.authenticate(conn, self._key, self.handshake_timeout)
        except channel.ChannelError:
            # A peer without the key, or one that stalled: only the owner can connect (the socket is 0600),
            # so this is a bug or a stray process of theirs, not worth a line in the run's output.
            conn.close()
            return
        with self._lock:
            if self._closing:
                conn.close()
                return
            # The client's history and its frames from now on, with no row missed or sent twice.
            peer = _Peer(conn, Hello(dict(self.info), list(self._history), self._latest), self._answer, self._forget)
            self._peers.append(peer)
            peer.start()  # under the lock: close() never meets a peer whose threads have not started

    def _forget(self, peer: _Peer) -> None:
        with self._lock:
            if peer in self._peers:
                self._peers.remove(peer)

    def _answer(self, data: bytes) -> Reply:
        """Check a command and queue it for the trainer; the reply says whether it was taken, and if not, why."""
        ident, error = None, None
        try:
            record = channel.decode_command(data)
            if isinstance(record, dict):
                ident = record.pop("id", None)
            self.control.send(from_wire(record))
        except ValueError as e:  # every refusal of decode_command and from_wire
            error = f"{e}" or type(e).__name__
        return Reply(ident if isinstance(ident, int) and not isinstance(ident, bool) else None, error)


class _Peer:
    """One client: a thread sends it frames, another reads its commands and, ending last, closes it."""

    def __init__(
        self,
        conn: Connection,
        greeting: Hello,
        answer: Callable[[bytes], Reply],
        on_gone: Callable[[_Peer], None],
    ):
        self.conn = conn
        self.mailbox = Mailbox()
        self.wake = threading.Event()
        self.bye: str | None = None
        self._greeting = greeting
        self._answer = answer
        self._on_gone = on_gone
        self._gone = False  # the reader has ended: the sender stops too
        self._send_lock = threading.Lock()  # replies (the reader) and frames (the sender) share the socket
        self._open_lock = threading.Lock()  # a hang-up never meets a closed fd (whose number may be reused)
        self._open = True
        self.sender = threading.Thread(target=self._send_frames, name="grok-tui-peer-out", daemon=True)
        self.reader = threading.Thread(target=self._read, name="grok-tui-peer-in", daemon=True)

    def start(self) -> None:
        self.sender.start()
        self.reader.start()

    def say_bye(self, reason: str) -> None:
        """Send the last frame, then the goodbye, then hang up."""
        self.bye = reason
        self.wake.set()

    def hang_up(self) -> None:
        with self._open_lock:
            if self._open:
                channel.hang_up(self.conn)

    def send(self, message: Message) -> bool:
        """False once the client is gone, or cut off."""
        try:
            with self._send_lock:
                self.conn.send(message.to_wire())
            return True
        except OSError:
            return False

    def _read(self) -> None:
        try:
            self._read_commands()
        finally:
            self._gone = True
            self.wake.set()
            self.hang_up()  # wakes the sender if it is blocked on a client that has stopped reading
            self.sender.join()
            with self._open_lock:
                self._open = False
                self.conn.close()
            self._on_gone(self)

    def _read_commands(self) -> None:
        while True:
            try:
                data = self.conn.recv_bytes(channel.MAX_COMMAND_BYTES)
            except EOFError:
                return  # the client hung up, or was hung up on
            except OSError:
                if not self.conn.readable:  # what recv_bytes does to a message over the limit
                    # Unread, the rest of it cannot be told from the next command: answer, and hang up.
                    limit = f"a command is at most {channel.MAX_COMMAND_BYTES} bytes; the channel is closed"
                    self.send(Reply(None, limit))
                return
            self.send(self._answer(data))

    def _send_frames(self) -> None:
        if self.send(self._greeting):
            while self._send_next():
                pass
        # Done (the goodbye said, or the client gone): the reader wakes from its read and closes.
        self.hang_up()

    def _send_next(self) -> bool:
        """Send the newest frame once there is one (and the goodbye after the last); False when done."""
        self.wake.wait()
        self.wake.clear()
        if self._gone:
            return False
        snapshot, rows, _ = self.mailbox.take()
        if snapshot is not None and not self.send(Frame(snapshot, rows)):
            return False
        if self.bye is not None:
            self.send(Bye(self.bye))
            return False
        return True


__all__ = ["RunServer"]
