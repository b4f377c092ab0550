"""grok-tui: watch and steer grokking live in the terminal.

`grok_tui.monitor(model, optimizer)` watches and steers a training loop of your own (README, "Your own
training loop"); it is imported on first use, so `import grok_tui` stays cheap for the command line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("monitor", "Monitor"):
        from importlib import import_module

        return getattr(import_module("grok_tui.loop.session"), name)
    raise AttributeError(f"module 'grok_tui' has no attribute {name!r}")
