"""The model families: what each model is to the rest of the app, declared once, by the model's own module.

A family's module holds the model (a GrokModel) and its `FAMILY`, a `Family`: how the model is built
from a config, how many outputs it has, its parameter count and activations for the memory estimate
(train/memory.py), the shapes of the matrices the views show (the heatmap's, and the p x H matrix the
frequencies pane transforms), and the config fields its size grows with. Everything else asks for it:
config.py's rules (which models a task takes), tasks/ (the classes), train/memory.py (the estimate and
the flags its refusal names), build_model.

Adding a model, say `deep_mlp` for the modular task, touches one file and one line:

1. grok_tui/models/deep_mlp.py: `class DeepMLP(GrokModel)` and `FAMILY = Family(...)` beside it
   (sum_mlp.py is the shortest to copy);
2. in REGISTRY below: `"deep_mlp": Entry("modular", "grok_tui.models.deep_mlp"),`.

`RunConfig(model="deep_mlp", ...)` then validates, builds, is estimated and is shown, and
tests/test_registry.py holds its declarations to the real model.

The registry line names the family's task beside its module because config.py checks a config against
it, and config.py, like the CLI that reads flags and the UI that reads run directories, must not import
torch: a family's module (which does) is imported the first time the family is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grok_tui.config import RunConfig
    from grok_tui.models.base import GrokModel
    from grok_tui.models.footprint import Activations
    from grok_tui.models.stacked import StackedForward

Shape = tuple[int, int]


@dataclass(frozen=True)
class Family:
    """One model family, as every part of the app that is not the model itself needs to know it.

    `classes` is the number of outputs the model has (for a regression, its target's components);
    the callables that take it are given `classes(cfg)`.
    """

    # The model, drawn from torch's RNG state as it stands (the trainer seeds it); build_model then applies
    # the config's init scale.
    build: Callable[[RunConfig, int], GrokModel]
    classes: Callable[[RunConfig], int]
    # For the memory estimate (see models/footprint.py): the parameter count, and the float32 units per
    # example alive at the peak of a training step and of an evaluation.
    parameters: Callable[[RunConfig, int], int]
    activations: Callable[[RunConfig, int], Activations]
    # The shape of each matrix `GrokModel.matrices()` gives the heatmap, in its order.
    views: Callable[[RunConfig, int], dict[str, Shape]]
    # The config fields the model's memory grows with: a refusal names their flags.
    drivers: tuple[str, ...]
    # The p x H matrix `GrokModel.neuron_inputs()` gives the frequencies pane, for the models that have one.
    neurons: Callable[[RunConfig], Shape] | None = None
    # How many float32 copies of that matrix a look inside makes and keeps, where it is a product of
    # weights rather than a weight itself.
    neuron_copies: int = 0
    # Its forward over stacked members (models/stacked.py), where it has one (None: the batched engine
    # vmaps the model's own).
    stacked: StackedForward | None = None


@dataclass(frozen=True)
class Entry:
    """A registered family: the task it learns (config.TASKS) and the module that holds its FAMILY."""

    task: str
    module: str


REGISTRY: dict[str, Entry] = {
    "sum_mlp": Entry("modular", "grok_tui.models.sum_mlp"),
    "concat": Entry("modular", "grok_tui.models.concat"),
    "factored": Entry("modular", "grok_tui.models.factored"),
    "unfactored": Entry("modular", "grok_tui.models.unfactored"),
    "transformer": Entry("modular", "grok_tui.models.transformer"),
    "parity_mlp": Entry("parity", "grok_tui.models.parity_mlp"),
    "omni_mlp": Entry("digits", "grok_tui.models.omni_mlp"),
    "teacher_mlp": Entry("teacher", "grok_tui.models.teacher_mlp"),
}


def family(name: str) -> Family:
    """The family registered as `name` (KeyError if none is: config.validate refuses such a model first)."""
    found = getattr(importlib.import_module(REGISTRY[name].module), "FAMILY", None)
    if not isinstance(found, Family):
        raise TypeError(f"{REGISTRY[name].module} declares no FAMILY for the model {name!r}")
    return found


def models_for(task: str) -> tuple[str, ...]:
    """The models registered for a task, in registry order."""
    return tuple(name for name, entry in REGISTRY.items() if entry.task == task)


def modular_classes(cfg: RunConfig) -> int:
    """A modular task's answers: the p residues."""
    return cfg.p


__all__ = [
    "REGISTRY",
    "Entry",
    "Family",
    "Shape",
    "family",
    "modular_classes",
    "models_for",
]
