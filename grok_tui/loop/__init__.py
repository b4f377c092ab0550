"""grok-tui as a library: `grok_tui.monitor(model, optimizer)` around a training loop of your own.

session.py is the run a script trains (its life: files, channel, checkpoints), logged.py what `m.log` takes,
steering.py the keys applied to the script's optimizer, views.py what its frames show of the model,
record.py what its config.json says, launcher.py the process `grok-tui run SCRIPT.py` starts, source.py the
monitor's view of it. Imported lazily: `grok_tui.loop.record` is read by `ls` and `watch`, without torch.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("monitor", "Monitor"):
        from importlib import import_module

        return getattr(import_module("grok_tui.loop.session"), name)
    raise AttributeError(f"module 'grok_tui.loop' has no attribute {name!r}")
