"""The process `grok-tui run SCRIPT.py` starts: the script itself, as a run's own process.

`python -m grok_tui.loop.launcher RUN_DIR SCRIPT [ARGS...]` runs the script as `python SCRIPT ARGS`
would (its `__main__`, its argv, its folder first on the path), with RUN_DIR handed to the script's
`grok_tui.monitor(...)` through the environment (loop/record.py, RUN_DIR_ENV). It records itself in
process.json at once, so `ls` tells the truth before the script reaches its monitor; a script that
raises ends as `crashed`, its traceback in crash.log and one `grok-tui: error:` line in output.log (which
the monitor reads back), exit status 1. SIGTERM before the monitor serves (`q` while it waits) stops it.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from grok_tui.crash import report_crash
from grok_tui.loop.record import RUN_DIR_ENV
from grok_tui.process import mark_ended, mark_running, read_record


class _Stopped(Exception):
    """SIGTERM while no monitor runs (before the script called monitor, or after its block)."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _ended(run_dir: Path) -> bool:
    """Whether the script's monitor recorded how the run ended (it did if the script reached it)."""
    record = read_record(run_dir) or {}
    return record.get("state") not in (None, "running")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("grok-tui: error: usage: python -m grok_tui.loop.launcher RUN_DIR SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    run_dir, script, rest = Path(args[0]), Path(args[1]), args[2:]
    os.environ[RUN_DIR_ENV] = str(run_dir)
    sys.argv = [str(script), *rest]
    sys.path.insert(0, str(script.resolve().parent))
    mark_running(run_dir)
    signal.signal(signal.SIGTERM, _stop)
    try:
        runpy.run_path(str(script), run_name="__main__")
    except _Stopped:
        if not _ended(run_dir):
            mark_ended(run_dir, "stopped", None)
        return 128 + signal.SIGTERM
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not _ended(run_dir):
            mark_ended(run_dir, "finished" if code == 0 else "crashed", None)
        if code != 0 and not isinstance(e.code, int):
            print(f"grok-tui: error: {script.name} exited: {e.code}", file=sys.stderr, flush=True)
        return code
    except BaseException as e:  # the script's own error: one line here, the traceback in crash.log
        record = read_record(run_dir) or {}
        if record.get("state") == "crashed":  # its monitor wrote crash.log already
            line = f"crashed: {type(e).__name__}: {_first_line(e)} (details in {run_dir / 'crash.log'})"
        else:
            line = report_crash(e, run_dir)
            mark_ended(run_dir, "crashed", None)
        print(f"grok-tui: error: {script.name} {line}", file=sys.stderr, flush=True)
        return 1
    if not _ended(run_dir):
        mark_ended(run_dir, "finished", None)
    return 0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else "(no message)"


if __name__ == "__main__":
    sys.exit(main())
