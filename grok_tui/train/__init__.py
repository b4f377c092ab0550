"""The training core: no UI imports here (checked by import-linter in CI)."""

from grok_tui.train.control import Control, Pause, Resume, SaveCheckpoint, SetHyper, Stop, check_hyper
from grok_tui.train.snapshot import Event, Metrics, Snapshot
from grok_tui.train.trainer import DeviceError, Trainer, resolve_device, summarize
from grok_tui.train.session import AttachSession, Mailbox, RunSpec, ThreadSession, new_run, resume_run

__all__ = [
    "Control", "Pause", "Resume", "SaveCheckpoint", "SetHyper", "Stop", "check_hyper",
    "Event", "Metrics", "Snapshot", "DeviceError", "Trainer", "resolve_device", "summarize",
    "AttachSession", "Mailbox", "RunSpec", "ThreadSession", "new_run", "resume_run",
]
