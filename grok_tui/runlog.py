"""The run directory: config.json, metrics.jsonl, events.jsonl, checkpoint.pt.

Crash safety: each JSONL line goes to the file in a single `write` of complete
lines, metrics at most `flush_interval` seconds after they were measured, so a
SIGKILL loses at most that much and never leaves half a line behind; readers
still skip a torn last line in case the disk itself cut one. The checkpoint is
written to a temporary file and renamed over the old one. Every write goes
through `files.py`: a full disk raises `WriteError` (one line) and leaves every
file whole; what could not be written stays pending for the next flush.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from grok_tui.config import ConfigError, RunConfig
from grok_tui.files import WriteError, append_lines, write_atomic
from grok_tui.loop.record import ScriptConfig, ScriptConfigError, is_script_record

CONFIG = "config.json"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.pt"


class RunDirError(Exception):
    """A run directory that cannot be used, with the reason in one line."""


def default_run_dir(experiment: str, root: Path = Path("runs")) -> Path:
    """runs/<timestamp>-<experiment>, with a suffix when two runs start in the same second."""
    base = root / f"{datetime.now():%Y%m%d-%H%M%S}-{experiment}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _json_line(record: dict[str, Any]) -> str:
    # NaN and infinity are not JSON: a diverged loss is written as null.
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return json.dumps(clean, separators=(",", ":")) + "\n"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete record; a torn or garbled line is skipped, not fatal."""
    records = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    for line in text.split("\n"):
        if not line:
            continue
        record = _parse(line)
        if isinstance(record, dict):
            records.append(record)
    return records


def _parse(line: str | bytes) -> Any:
    """One JSON line, or None: json.loads raises ValueError (bad JSON, an int of 5,000 digits) or
    RecursionError (brackets nested 100,000 deep), and a reader must survive both."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


class JsonlFollower:
    """Reads the records appended to a growing JSONL file since the last call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        records = []
        for line in lines:
            record = _parse(line)
            if isinstance(record, dict):
                records.append(record)
        return records


class RunLog:
    """Writes one run directory."""

    def __init__(self, root: Path, flush_interval: float = 0.5):
        self.root = Path(root)
        self.flush_interval = flush_interval
        self._pending: list[str] = []
        self._pending_events: list[str] = []
        self._last_flush = time.monotonic()
        # Lines on disk, counted into each checkpoint: resuming cuts the files back to exactly these.
        self._lines = {METRICS: 0, EVENTS: 0}

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS

    @property
    def events_path(self) -> Path:
        return self.root / EVENTS

    @property
    def checkpoint_path(self) -> Path:
        return self.root / CHECKPOINT

    def create(self, config: dict[str, Any]) -> None:
        """Start a new run here; refuses a directory that already holds one, and leaves nothing on failure."""
        if (self.root / CONFIG).exists():
            raise RunDirError(f"{self.root} already holds a run; use --resume {self.root} or another --run-dir")
        made_root = not self.root.exists()
        made: list[Path] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for path in (self.metrics_path, self.events_path):
                if not path.exists():
                    write_atomic(path, b"")
                    made.append(path)
            # config.json is what makes a directory a run: written last.
            write_config(self.root, config)
        except (OSError, WriteError) as e:
            if made_root:
                shutil.rmtree(self.root, ignore_errors=True)
            for path in made:
                with contextlib.suppress(OSError):
                    path.unlink()
            reason = e.error.strerror if isinstance(e, WriteError) else e.strerror
            raise RunDirError(f"cannot write to {self.root}: {reason or e}") from None

    def metrics(self, record: dict[str, Any]) -> None:
        self._pending.append(_json_line(record))
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def event(self, record: dict[str, Any]) -> None:
        """Write an event at once (they are rare and precious), after the metrics before it."""
        self.queue_event(record)
        self.flush()

    def queue_event(self, record: dict[str, Any]) -> None:
        """Keep an event for the next flush (when writing it now is known to fail)."""
        self._pending_events.append(_json_line(record))

    def flush(self) -> None:
        """Write what is pending; on WriteError it stays pending, and the files stay whole."""
        self._last_flush = time.monotonic()
        for name, pending in ((METRICS, self._pending), (EVENTS, self._pending_events)):
            if pending:
                append_lines(self.root / name, "".join(pending))
                self._lines[name] += len(pending)
                pending.clear()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.flush()
        # Serialised in memory first, so that the disk sees one plain write that either lands or not.
        import torch  # here, not at the top: the readers (ls, watch's records) need no torch

        buffer = io.BytesIO()
        torch.save({**state, "log_lines": dict(self._lines)}, buffer)
        write_atomic(self.checkpoint_path, buffer.getvalue())

    def rewind(self, state: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Cut metrics.jsonl and events.jsonl back to what they held when `state` was saved, and
        return the event records cut (the changes made since, for the trainer to make again).

        A run continues from its checkpoint, so what it logged after that is logged
        again. No checkpoint (killed before the first): back to empty. A checkpoint
        from before line counts were kept: records past its step go.
        """
        dropped: list[bytes] = []
        counts = state.get("log_lines") if state is not None else {METRICS: 0, EVENTS: 0}
        for name in (METRICS, EVENTS):
            # Bytes, not text: lines are what we wrote, split at our own newlines and kept byte for byte.
            try:
                lines = (self.root / name).read_bytes().split(b"\n")[:-1]
            except FileNotFoundError:
                lines = []
            if isinstance(counts, dict) and isinstance(counts.get(name), int):
                kept, cut = lines[: counts[name]], lines[counts[name] :]
            else:
                assert state is not None
                past = [_past(line, state["step"], name == METRICS) for line in lines]
                kept = [line for line, gone in zip(lines, past, strict=True) if not gone]
                cut = [line for line, gone in zip(lines, past, strict=True) if gone]
            write_atomic(self.root / name, b"".join(line + b"\n" for line in kept))
            self._lines[name] = len(kept)
            if name == EVENTS:
                dropped = cut
        return [record for record in map(_parse, dropped) if isinstance(record, dict)]


def _past(line: bytes, step: int, inclusive: bool) -> bool:
    record = _parse(line)
    if not (isinstance(record, dict) and isinstance(record.get("step"), int)):
        return False
    at: int = record["step"]
    return at >= step if inclusive else at > step


def read_config(root: Path) -> dict[str, Any]:
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"{root} is not a directory")
    path = root / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{root} holds no {CONFIG}; expected a directory written by grok-tui") from None
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, a 5,000-digit number, deep nesting
        raise RunDirError(f"{path} is not valid JSON") from None
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} does not hold a config object")
    return data


def load_config(root: Path) -> RunConfig:
    """A preset's run's config, every field checked; RunDirError names the file and the first bad field,
    or says that the run is a script's (which cannot be built again from its files)."""
    cfg = load_run_config(root)
    if isinstance(cfg, ScriptConfig):
        raise RunDirError(
            f"{root} is the run of a script ({cfg.script or cfg.experiment}), not of a preset: its model and loop "
            "are the script's, so only the script can train it again"
        )
    return cfg


def load_run_config(root: Path) -> RunConfig | ScriptConfig:
    """Any run's config: a preset's RunConfig, or a script's ScriptConfig (config.json's `"kind":
    "script"`, loop/record.py), every field checked; RunDirError names the file and the first bad field.
    What reads any run (ls, watch, attach, stop) reads it here."""
    path = Path(root) / CONFIG
    data = read_config(root)
    try:
        return ScriptConfig.from_record(data) if is_script_record(data) else RunConfig.from_dict(data)
    except (ConfigError, ScriptConfigError) as e:
        raise RunDirError(f"{path}: {e}") from None


def write_config(root: Path, config: dict[str, Any]) -> None:
    write_atomic(Path(root) / CONFIG, json.dumps(config, indent=2) + "\n")


def has_checkpoint(root: Path) -> bool:
    return (Path(root) / CHECKPOINT).exists()


def load_checkpoint(root: Path) -> dict[str, Any]:
    """The checkpoint's dict, loaded with `weights_only=True`; its values are checked by the trainer."""
    path = Path(root) / CHECKPOINT
    if not path.exists():
        raise RunDirError(f"{root} holds no {CHECKPOINT} to resume from")
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise RunDirError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    required = {"model", "optimizer", "step"}
    if not isinstance(state, dict) or not required <= state.keys():
        raise RunDirError(f"{path} is not a grok-tui checkpoint (missing {', '.join(sorted(required))})")
    return state


def export_csv(root: Path, path: Path | None = None) -> Path:
    """metrics.jsonl as CSV (beside it unless `path` says where), one column per key ever written."""
    rows = read_jsonl(Path(root) / METRICS)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path) if path is not None else Path(root) / "metrics.csv"
    write_atomic(path, out.getvalue())
    return path
