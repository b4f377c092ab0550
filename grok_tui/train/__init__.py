"""The training core: no UI imports here (checked by import-linter in CI).

The names below are loaded on first use (PEP 562): `grok-tui ls`, `stop` and the CLI's checks import
pieces of this package (the channel, the records) and should not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "grok_tui.train.control": ("Control", "Pause", "Resume", "SaveCheckpoint", "SetHyper", "Stop", "check_hyper"),
    "grok_tui.train.snapshot": ("Event", "Metrics", "Snapshot"),
    "grok_tui.train.trainer": ("DeviceError", "Trainer", "resolve_device", "summarize"),
    "grok_tui.train.frames": ("Batcher", "Mailbox"),
    "grok_tui.train.spec": ("RunSpec", "new_run", "resume_run"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
