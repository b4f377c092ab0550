"""What a script's run records of itself in config.json, and how every reader tells it from a preset's.

A preset's config.json is a RunConfig (config.py): enough to build its model and train it again. A
script's run cannot be rebuilt from a file (its model, data and loop are the script's), so its config.json
says where the run came from instead: `"kind": "script"` marks it, beside the script's path and
arguments, the optimizer's class, and the config the script gave `grok_tui.monitor(config=...)`.
`runlog.load_run_config` reads either kind; what only a preset's run can do (resume it, restart it with a
new seed, rebuild its model from the file) refuses a script's run in one line.

No torch here: `grok-tui ls` and `watch` read these records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# The field that marks a script's run in config.json, and its value.
KIND = "kind"
SCRIPT = "script"
# The run directory `grok-tui run` hands to the script's monitor.
RUN_DIR_ENV = "GROK_TUI_RUN_DIR"
# Commands a preset's trainer carries out that a foreign loop cannot, by name (a Control command's name, as
# the monitor's `Source.refused` keys them), each with the reason its refusal gives.
NOT_FOR_A_SCRIPT = {
    "l1": "the L1 penalty is part of a preset's loss; a script's loss is its own",
    "train_size": "ungrokking trains on a subset of a preset's training set; a script's data are its own",
    "norm_constraint": "holding the weight norm is not wired into a script's loop yet",
    "grokfast": "the Grokfast filter is not wired into a script's loop yet",
}
# Weight decay, where no param group had one when monitor() started (the keys change only those that had).
NO_WEIGHT_DECAY = "no param group of its optimizer had a non-zero weight_decay when monitor() started"
# Where the run's hello (train/server.py) says what it refuses beyond NOT_FOR_A_SCRIPT: {name: reason}.
REFUSED_INFO = "refused"


class ScriptConfigError(ValueError):
    """A script run's config.json field that is not allowed: the field, the value, what is allowed."""


@dataclass(frozen=True)
class ScriptConfig:
    """A script's run, as its config.json says."""

    experiment: str  # the script's name, shown where a preset's experiment is
    script: str = ""  # the script's path ("" when the loop ran in an interpreter or a notebook)
    argv: tuple[str, ...] = ()
    steps: int = 0  # the step budget, where the script's config says one ("steps"); 0: unknown
    device: str = "cpu"
    optimizer: str = ""
    user: dict[str, Any] = field(default_factory=dict)  # monitor(config=...)
    started: bool = True  # False: made by `grok-tui run`, before the script called monitor

    @property
    def seed(self) -> int | None:
        value = self.user.get("seed")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def record(self) -> dict[str, Any]:
        """config.json's object."""
        return {
            KIND: SCRIPT,
            "experiment": self.experiment,
            "script": self.script,
            "argv": list(self.argv),
            "steps": self.steps,
            "device": self.device,
            "optimizer": self.optimizer,
            "started": self.started,
            "config": dict(self.user),
        }

    def to_dict(self) -> dict[str, Any]:
        """The settings a monitor names and compares runs by: the script's own config, and its name."""
        return {**self.user, "experiment": self.experiment}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ScriptConfig:
        """From config.json's object; ScriptConfigError names the first bad field."""

        def get(name: str, ok: Any, allowed: str, default: Any) -> Any:
            value = data.get(name, default)
            if not ok(value):
                raise ScriptConfigError(f"{name}: {str(value)[:80]!r} is not allowed; expected {allowed}")
            return value

        def text(v: Any) -> bool:
            return isinstance(v, str) and len(v) <= 4096 and v.isprintable()

        experiment = get("experiment", lambda v: text(v) and 0 < len(v) <= 100, "a name of 1 to 100 characters", None)
        argv = get(
            "argv", lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of strings", []
        )
        steps = get(
            "steps", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53, "an integer >= 0", 0
        )
        user = get("config", lambda v: isinstance(v, dict), "a JSON object", {})
        return cls(
            experiment=experiment,
            script=get("script", text, "a path", ""),
            argv=tuple(argv),
            steps=steps,
            device=get("device", lambda v: text(v) and len(v) <= 100, "a device name", "cpu"),
            optimizer=get("optimizer", lambda v: text(v) and len(v) <= 200, "a class name", ""),
            user=user,
            started=get("started", lambda v: isinstance(v, bool), "true or false", True),
        )


def is_script_record(data: dict[str, Any]) -> bool:
    return data.get(KIND) == SCRIPT


def steps_from(config: dict[str, Any]) -> int:
    """The step budget a script's config names ("steps", an integer >= 1), or 0 when it names none."""
    value = config.get("steps")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**53:
        return value
    return 0


def checked_user_config(config: Any) -> dict[str, Any]:
    """monitor(config=...) as it will be written: a dict with string keys whose values JSON can hold
    (numbers finite); ValueError naming the first key that is not."""
    import json

    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"grok_tui.monitor: config must be a dict, not {type(config).__name__}")
    for key, value in config.items():
        if not isinstance(key, str):
            raise ValueError(f"grok_tui.monitor: config keys must be strings, not {key!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"grok_tui.monitor: config[{key!r}] is {value}; JSON holds only finite numbers")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"grok_tui.monitor: config[{key!r}] ({type(value).__name__}) cannot be written as JSON; "
                "give numbers, strings, booleans, lists or dicts"
            ) from None
    return dict(config)


__all__ = [
    "KIND",
    "NOT_FOR_A_SCRIPT",
    "NO_WEIGHT_DECAY",
    "REFUSED_INFO",
    "RUN_DIR_ENV",
    "SCRIPT",
    "ScriptConfig",
    "ScriptConfigError",
    "checked_user_config",
    "is_script_record",
    "steps_from",
]
