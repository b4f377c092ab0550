"""A sweep's grid: the flags given comma lists become axes, and every combination a member.

`grok-tui sweep --weight-decay 0.1,1 --seed 0,1,2` is six members, each a
complete RunConfig (the preset with its values), named by its values
(`wd=0.1,seed=2`). Members whose models have the same shape and whose data
are of the same kind train together as one batch (train/batched.py); a batch
is cut into shards, one per worker process, and a shard into chunks small
enough for the processor's caches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grok_tui.compare import SHORT_NAMES
from grok_tui.config import PRESETS, ConfigError, Range, RunConfig, flag_name
from grok_tui.train.batched import UNBATCHED

# What a member may hold of its own inside a batch: AdamW's settings, L1, the weight norm it is held at,
# the seed, the init scale and how much data it sees. Anything else (the model's shape, the task) splits
# members into batches.
PER_MEMBER = frozenset(
    {
        "seed",
        "lr",
        "weight_decay",
        "beta1",
        "beta2",
        "l1",
        "constrain_norm",
        "init_scale",
        "train_frac",
        "n_train",
        "n_test",
    }
)
# More members than any machine here could hold at once (~8 MB each even at mod-add's size), and about
# a minute just to list: a grid past it is a typo, or a damaged sweep.json, not a sweep.
MAX_MEMBERS = 1_000_000
# Settings every member shares, since they train in lockstep (or that change no result).
SHARED = ("steps", "eval_every", "device", "threads", "checkpoint_every_s")
# How many shards train at once (`--workers`, sweep.json's "workers"): one process or Ray task each.
WORKERS = Range(1, 1024, integer=True)


class GridError(ValueError):
    """One line: which flag, which value, what would be right."""


@dataclass(frozen=True)
class Axis:
    field: str
    values: tuple[Any, ...]

    @property
    def short(self) -> str:
        return SHORT_NAMES.get(self.field, self.field)

    @property
    def flag(self) -> str:
        return flag_name(self.field)

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "values": list(self.values)}


@dataclass(frozen=True)
class Member:
    index: int
    cfg: RunConfig
    values: dict[str, Any]  # axis field -> this member's value

    def name(self, axes: Sequence[Axis]) -> str:
        """Its directory name: the values in axis order, e.g. `wd=0.1,frac=0.3,seed=0`."""
        return ",".join(f"{axis.short}={value_text(self.values[axis.field])}" for axis in axes) or "member"

    def batch_key(self) -> tuple[Any, ...]:
        return tuple(sorted((k, v) for k, v in self.cfg.to_dict().items() if k not in PER_MEMBER | {"experiment"}))


def value_text(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _quoted(value: Any) -> str:
    """A value as a one-line message shows it: as named, unless it holds what a line cannot (repr then)."""
    text = value_text(value)
    return text if text.isprintable() else repr(value)


@dataclass(frozen=True)
class Grid:
    experiment: str
    base: RunConfig  # the preset with the single-valued flags applied
    axes: tuple[Axis, ...]
    members: tuple[Member, ...]

    def names(self) -> list[str]:
        return [m.name(self.axes) for m in self.members]

    def batches(self) -> list[list[Member]]:
        """Members that can train as one batch, in member order."""
        groups: dict[tuple[Any, ...], list[Member]] = {}
        for member in self.members:
            groups.setdefault(member.batch_key(), []).append(member)
        return list(groups.values())

    def shards(self, workers: int) -> list[list[Member]]:
        """Each batch cut into about `workers` equal shards (a worker process trains one at a time)."""
        shards: list[list[Member]] = []
        for batch in self.batches():
            parts = min(workers, len(batch))
            size = math.ceil(len(batch) / parts)
            shards += [batch[i : i + size] for i in range(0, len(batch), size)]
        return shards

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "base": self.base.to_dict(), "axes": [a.to_dict() for a in self.axes]}


def build_grid(experiment: str, values: Mapping[str, Sequence[Any]]) -> Grid:
    """The grid of a preset and per-field value lists (one value: a setting; several: an axis).

    GridError for an unknown preset, a field that cannot be an axis, an empty list, a repeated value, or
    a member whose config is wrong (naming the flag and the value).
    """
    if experiment not in PRESETS:
        raise GridError(f"--experiment: {experiment!r} is not a preset; expected one of {', '.join(PRESETS)}")
    for field, given in values.items():
        if not given:
            raise GridError(f"{flag_name(field)}: an empty list; expected one value or a comma list of them")
        if len(given) > 1:
            if field in SHARED:
                raise GridError(
                    f"{flag_name(field)} cannot be an axis: every member of a sweep shares it; give one value"
                )
            if field in UNBATCHED:
                raise GridError(f"{flag_name(field)} cannot be an axis: a sweep does not batch this intervention")
            if len(set(given)) < len(given):
                raise GridError(f"{flag_name(field)}: a value is given twice in {','.join(map(_quoted, given))}")
    for field, off in UNBATCHED.items():
        if field in values and values[field][0] != off:
            raise GridError(f"{flag_name(field)}: a sweep does not batch this intervention; leave it out")
    size = math.prod(len(given) for given in values.values())
    if size > MAX_MEMBERS:
        raise GridError(f"a sweep of {size:,} members; at most {MAX_MEMBERS:,} (give fewer values)")
    fixed = {field: given[0] for field, given in values.items() if len(given) == 1}
    # Seeds are repeats of one setting, not a setting: always the innermost axis, so the diagram's two
    # axes are settings and each cell holds its seeds.
    order = sorted(values, key=lambda field: field == "seed")
    axes = tuple(Axis(field, tuple(values[field])) for field in order if len(values[field]) > 1)
    try:
        base = PRESETS[experiment].config(**fixed)
    except ConfigError as e:
        raise GridError(e.flag_line) from None
    for field, off in UNBATCHED.items():
        if getattr(base, field) != off:
            raise GridError(
                f"--experiment {experiment}: its {flag_name(field)} is an intervention a sweep does not batch"
            )
    members = []
    for index, combo in enumerate(itertools.product(*(axis.values for axis in axes))):
        changes = dict(zip((axis.field for axis in axes), combo, strict=True))
        try:
            cfg = PRESETS[experiment].config(**{**fixed, **changes})
        except ConfigError as e:
            where = ",".join(f"{SHORT_NAMES.get(k, k)}={_quoted(v)}" for k, v in changes.items())
            raise GridError(
                f"{e.flag}: {e.value!r} is not allowed for the member {where}; expected {e.allowed}"
            ) from None
        members.append(Member(index, cfg, changes))
    return Grid(experiment, base, axes, tuple(members))


__all__ = [
    "MAX_MEMBERS",
    "PER_MEMBER",
    "SHARED",
    "WORKERS",
    "Axis",
    "Grid",
    "GridError",
    "Member",
    "build_grid",
    "value_text",
]
