"""A grok-tui process's life, in one place: how it takes the signals that stop it.

(Starting a process, recording its state in process.json, its last words and
stopping it gather here too.)
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
    """While inside, SIGINT, SIGTERM and SIGHUP (the terminal closed) stop the run cleanly, so it
    flushes and checkpoints; yields the signals received."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["stop_on_signals"]
