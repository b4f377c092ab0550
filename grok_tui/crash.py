"""When something we did not foresee goes wrong: one line for the user, the details in a file.

A traceback on the screen helps nobody watching a run; the same traceback in
the run directory helps whoever fixes the bug. The process still exits
non-zero, so a script can tell.
"""

from __future__ import annotations

import tempfile
import traceback
from datetime import datetime
from pathlib import Path

from grok_tui.files import WriteError, append_lines

CRASH_LOG = "crash.log"


def report_crash(error: BaseException, run_dir: Path | None = None) -> str:
    """Append `error`'s traceback to run_dir/crash.log (or a file in the temp directory when the run
    directory is unknown, read-only or full), and return the one line to show."""
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    text = f"--- {datetime.now():%Y-%m-%d %H:%M:%S}\n{details}"
    places = ([Path(run_dir) / CRASH_LOG] if run_dir is not None else []) + [
        Path(tempfile.gettempdir()) / f"grok-tui-{CRASH_LOG}"
    ]
    for path in places:
        try:
            append_lines(path, text)
        except WriteError:
            continue
        return f"crashed: {type(error).__name__}: {_first_line(error)} (details in {path})"
    return f"crashed: {type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else "(no message)"


__all__ = ["CRASH_LOG", "report_crash"]
