"""Every write to disk goes through here, so that a failure leaves nothing torn.

A full disk, a read-only mount or a permission lost mid-run must cost at most
the write that failed: the lines already in a file stay whole, and a file that
is replaced (config, checkpoint, CSV, screenshot) is either the old one or the
new one, never half of either and never a stray temporary beside them. The
caller gets a `WriteError` whose text is one line fit for the user.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class WriteError(Exception):
    """A write that failed; `str()` is one line naming the file and the reason."""

    def __init__(self, path: Path, error: OSError):
        self.path, self.error = Path(path), error
        reason = error.strerror or str(error)
        super().__init__(f"cannot write {self.path}: {reason}")


def append_lines(path: Path, text: str) -> None:
    """Append complete lines, all or nothing.

    A short write (the disk filled up half-way) is cut back to where the file
    ended before, so a reader never meets a torn line that we wrote.
    """
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise WriteError(path, e) from None
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise WriteError(path, e) from None
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` in one step: a temporary beside it, synced, then renamed over it."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteError(path, e) from None


__all__ = ["WriteError", "append_lines", "write_atomic"]
