"""The run directory: config.json, metrics.jsonl, events.jsonl, checkpoint.pt.

Crash safety: each JSONL line goes to the file in a single `write` of complete
lines, metrics at most `flush_interval` seconds after they were measured, so a
SIGKILL loses at most that much and never leaves half a line behind; readers
still skip a torn last line in case the disk itself cut one. The checkpoint is
written to a temporary file and renamed over the old one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

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


def _append(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(lines))


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
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


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
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


class RunLog:
    """Writes one run directory."""

    def __init__(self, root: Path, flush_interval: float = 0.5):
        self.root = Path(root)
        self.flush_interval = flush_interval
        self._pending: list[str] = []
        self._last_flush = time.monotonic()

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
        """Start a new run here; refuses a directory that already holds one."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if (self.root / CONFIG).exists():
                raise RunDirError(f"{self.root} already holds a run; use --resume {self.root} or another --run-dir")
            probe = self.root / ".write-test"
            probe.write_text("")
            probe.unlink()
            _atomic_write_text(self.root / CONFIG, json.dumps(config, indent=2) + "\n")
            for path in (self.metrics_path, self.events_path):
                path.touch()
        except OSError as e:
            raise RunDirError(f"cannot write to {self.root}: {e.strerror or e}") from None

    def metrics(self, record: dict[str, Any]) -> None:
        self._pending.append(_json_line(record))
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def event(self, record: dict[str, Any]) -> None:
        # Events are rare and precious: written at once, after the metrics before them.
        self.flush()
        _append(self.events_path, [_json_line(record)])

    def flush(self) -> None:
        if self._pending:
            _append(self.metrics_path, self._pending)
            self._pending = []
        self._last_flush = time.monotonic()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.flush()
        tmp = self.checkpoint_path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def truncate_after(self, step: int) -> None:
        """Drop records past `step`: on resume, the run continues from its checkpoint."""
        for path in (self.metrics_path, self.events_path):
            kept = [r for r in read_jsonl(path) if isinstance(r.get("step"), int) and r["step"] <= step]
            _atomic_write_text(path, "".join(_json_line(r) for r in kept))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_config(root: Path) -> dict[str, Any]:
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"{root} is not a directory")
    path = root / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{root} holds no {CONFIG}; expected a directory written by grok-tui") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunDirError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} does not hold a config object")
    return data


def load_checkpoint(root: Path) -> dict[str, Any]:
    path = Path(root) / CHECKPOINT
    if not path.exists():
        raise RunDirError(f"{root} holds no {CHECKPOINT} to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise RunDirError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    required = {"model", "optimizer", "step"}
    if not isinstance(state, dict) or not required <= state.keys():
        raise RunDirError(f"{path} is not a grok-tui checkpoint (missing {', '.join(sorted(required))})")
    return state


def export_csv(root: Path) -> Path:
    """metrics.jsonl as metrics.csv beside it, one column per key ever written."""
    rows = read_jsonl(Path(root) / METRICS)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path = Path(root) / "metrics.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
