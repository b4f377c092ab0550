"""Names for runs shown side by side: what sets each apart from the others.

`grok-tui watch A B` and the ghost left by a restart put several runs on one
plot; a legend of directory names says nothing about why the curves differ, so
each run is named by the config fields whose values are not the same in all of
them (`wd 0.05` against `wd 1`). Pure: configs in, labels out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# The fields people vary most, in the order a label names them, with the short names they go by.
SHORT_NAMES: dict[str, str] = {
    "experiment": "experiment",
    "model": "model",
    "op": "op",
    "p": "p",
    "seed": "seed",
    "weight_decay": "wd",
    "lr": "lr",
    "train_frac": "frac",
    "width": "width",
    "init_scale": "init",
}
# Fields that do not change a run's course: a difference there is no reason its curves differ.
IGNORED = frozenset({"device", "threads", "checkpoint_every_s"})
# Past this many differing fields a label would crowd the legend: the rest is counted, not named.
MAX_FIELDS = 3
_MISSING = object()


def differing_fields(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fields whose values are not all the same, common ones first (in SHORT_NAMES order)."""
    keys = {key for config in configs for key in config} - IGNORED
    differ = {key for key in keys if len({_key(config.get(key, _MISSING)) for config in configs}) > 1}
    order = list(SHORT_NAMES)
    return sorted(differ, key=lambda k: (order.index(k) if k in order else len(order), k))


def labels(configs: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> list[str]:
    """One label a run: `wd 0.05`, `seed 0, wd 0.1`; its name (`names[i]`, e.g. the directory's)
    when the configs differ in nothing that matters, `run i+1` when no names are given."""
    fallback = list(names) if names is not None else [f"run {i + 1}" for i in range(len(configs))]
    fields = differing_fields(configs)
    if not fields:
        return _unique(fallback)
    shown, hidden = fields[:MAX_FIELDS], len(fields) - MAX_FIELDS
    out = []
    for config in configs:
        text = ", ".join(f"{SHORT_NAMES.get(f, f)} {_value(config.get(f, _MISSING))}" for f in shown)
        out.append(text + (f" +{hidden} more" if hidden > 0 else ""))
    return _unique(out)


def _value(value: Any) -> str:
    if value is _MISSING:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _key(value: Any) -> Any:
    # 1 and 1.0 are the same setting (a hand-written config.json may say either); lists are not hashable.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _unique(texts: list[str]) -> list[str]:
    """Two runs that agree on every field shown (only a hidden one differs) still need two names."""
    seen: dict[str, int] = {}
    for text in texts:
        seen[text] = seen.get(text, 0) + 1
    return [f"{text} #{i + 1}" if seen[text] > 1 else text for i, text in enumerate(texts)]


__all__ = ["IGNORED", "SHORT_NAMES", "differing_fields", "labels"]
