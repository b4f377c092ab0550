"""Names for runs shown side by side: what sets each apart from the others.

`grok-tui watch A B` and the ghost left by a restart put several runs on one
plot; a legend of directory names says nothing about why the curves differ, so
each run is named by the config fields whose values are not the same in all of
them (`wd 0.05` against `wd 1`). Runs of different experiments are named by the
experiment (`mod-add` against `parity`), and by what else differs that the
experiment does not already say. Pure: configs in, labels out; `fit` shortens
labels to the room a legend has.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from grok_tui.config import PRESETS

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
# What `fit` puts where it left something out.
ELLIPSIS = "…"
_MISSING = object()
# The end of a label that tells it from a namesake (`#2`, `(previous)`): `fit` keeps it whole.
_TAIL = re.compile(r"(?: #\d+)?(?: \([^()]*\))?$")
_MORE = re.compile(r" \+\d+ more$")


def differing_fields(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fields whose values are not all the same, common ones first (in SHORT_NAMES order)."""
    keys = {key for config in configs for key in config} - IGNORED
    differ = {key for key in keys if len({_key(config.get(key, _MISSING)) for config in configs}) > 1}
    order = list(SHORT_NAMES)
    return sorted(differ, key=lambda k: (order.index(k) if k in order else len(order), k))


def labels(configs: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> list[str]:
    """One label a run: `wd 0.05`, `seed 0, wd 0.1`, `mod-add` against `parity`; its name (`names[i]`,
    e.g. the directory's) when the configs differ in nothing that matters, `run i+1` when no names are given."""
    fallback = list(names) if names is not None else [f"run {i + 1}" for i in range(len(configs))]
    fields = differing_fields(configs)
    if not fields:
        return _unique(fallback)
    implied = _implied(configs, fields)
    fields = [f for f in fields if f not in implied]
    shown, hidden = fields[:MAX_FIELDS], len(fields) - MAX_FIELDS
    out = []
    for config in configs:
        text = ", ".join(_part(f, config.get(f, _MISSING)) for f in shown)
        out.append(text + (f" +{hidden} more" if hidden > 0 else ""))
    return _unique(out)


def _implied(configs: Sequence[Mapping[str, Any]], fields: list[str]) -> set[str]:
    """The differing fields that the experiment explains: every run has its own experiment's value
    there (mod-add's p 67 against concat-add's 53), so naming the experiment says them all."""
    if "experiment" not in fields:
        return set()
    defaults = []
    for config in configs:
        name = config.get("experiment")
        preset = PRESETS.get(name) if isinstance(name, str) else None
        if preset is None:
            return set()  # an experiment we do not know: nothing can be taken as said
        defaults.append(preset.config().to_dict())
    return {
        f
        for f in fields
        if f != "experiment"
        and all(_key(c.get(f, _MISSING)) == _key(d.get(f, _MISSING)) for c, d in zip(configs, defaults, strict=True))
    }


def _part(field: str, value: Any) -> str:
    if field == "experiment" and isinstance(value, str):
        return value  # `mod-add` names itself
    return f"{SHORT_NAMES.get(field, field)} {_value(value)}"


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
    """Two runs that agree on every field shown (only a hidden one differs) still need two names:
    namesakes are numbered among themselves, #1, #2, whatever runs come between them."""
    total: dict[str, int] = {}
    for text in texts:
        total[text] = total.get(text, 0) + 1
    counted: dict[str, int] = {}
    out = []
    for text in texts:
        if total[text] > 1:
            counted[text] = counted.get(text, 0) + 1
            text = f"{text} #{counted[text]}"
        out.append(text)
    return out


# ---- fitting labels to a legend ---------------------------------------------------------------------------


def fit(texts: Sequence[str], width: int) -> list[str]:
    """Each text in at most `width` characters, shortened only as far as it must be, and still told
    apart from the others wherever the full texts were: a label of fields keeps those that tell the
    runs apart (`seed 1…`), names lose the start they share (`…01-mod-add`), and what is cut is
    marked with an ellipsis; a tail like ` #2` or ` (previous)` is kept. A legend that drops a label
    too wide for it (as plotext does) shows these instead."""
    texts = list(texts)
    if width < 1 or all(len(t) <= width for t in texts):
        return texts
    distinct = len(set(texts))
    for candidate in _shorter(texts, width):
        if all(len(t) <= width for t in candidate) and len(set(candidate)) == distinct:
            return candidate
    return [_clip(t, width) for t in texts]


def _shorter(texts: list[str], width: int) -> Iterator[list[str]]:
    """Shortened versions of `texts`, the most telling first."""
    split = [_split(t) for t in texts]
    parts = [body.split(", ") for body, _, _ in split]
    n = max(len(p) for p in parts)
    cut = [bool(more) for _, more, _ in split]
    # Fewer fields: the first that still tell the runs apart (a label's fields are the same in every
    # label, in the same order, so they are kept by position; a text of fewer parts, such as `train`
    # beside a ghost's label, is no label of fields and stays as it is).
    for k in range(n if any(cut) else n - 1, 0, -1):
        for keep in itertools.islice(itertools.combinations(range(n), k), 64):
            yield [
                _join([p[i] for i in keep], len(p) > k or more, tail) if len(p) == n else text
                for text, p, more, (_, _, tail) in zip(texts, parts, cut, split, strict=True)
            ]
    bodies = [body + (ELLIPSIS if more else "") for body, more, _ in split]
    if n == 1 and len(bodies) > 1:
        # Names: the start they share (a date, a sweep's prefix) says nothing about which is which.
        shared = len(_common_prefix(bodies))
        if shared > len(ELLIPSIS):
            yield [_clip(ELLIPSIS + b[shared:], width - len(t), t) for b, (_, _, t) in zip(bodies, split, strict=True)]
    yield [_clip(body, width - len(tail), tail) for body, (_, _, tail) in zip(bodies, split, strict=True)]


def _split(text: str) -> tuple[str, str, str]:
    """(body, `+N more`, tail) of a label; the body without what follows its fields."""
    tail_match = _TAIL.search(text)
    tail = tail_match.group(0) if tail_match else ""
    body = text[: len(text) - len(tail)]
    more = _MORE.search(body)
    if more:
        return body[: more.start()], more.group(0), tail
    return body, "", tail


def _join(parts: list[str], cut: bool, tail: str) -> str:
    return ", ".join(parts) + (ELLIPSIS if cut else "") + tail


def _common_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


def _clip(text: str, width: int, tail: str = "") -> str:
    """`text` + `tail` in `width` + len(tail) characters, cut at the end of `text` with an ellipsis."""
    if width < len(ELLIPSIS) + 1:  # no room for the tail: clip the whole
        text, width, tail = text + tail, width + len(tail), ""
    if len(text) <= width:
        return text + tail
    # No ellipsis twice, nor one after a comma: `seed 0…`, not `seed 0,…`.
    return text[: max(width - len(ELLIPSIS), 0)].rstrip(ELLIPSIS + ", ") + ELLIPSIS + tail


__all__ = ["IGNORED", "SHORT_NAMES", "differing_fields", "fit", "labels"]
