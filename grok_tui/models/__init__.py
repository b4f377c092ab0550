"""The models, each a GrokModel the monitor can look inside; models/registry.py says what each family is.

The package itself does not import torch: config.py asks the registry which models a task takes, and the
CLI and the UI read configs long before they build a model (if they ever do). The models are imported on
first use, here as in `from grok_tui.models import SumMLP`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grok_tui.config import RunConfig
    from grok_tui.models.base import GrokModel, scale_init
    from grok_tui.models.concat import ConcatMLP
    from grok_tui.models.factored import FactoredMLP
    from grok_tui.models.omni_mlp import OmniMLP
    from grok_tui.models.parity_mlp import ParityMLP
    from grok_tui.models.sum_mlp import SumMLP
    from grok_tui.models.teacher_mlp import TeacherMLP
    from grok_tui.models.transformer import OneLayerTransformer
    from grok_tui.models.unfactored import UnfactoredMLP


def build_model(cfg: RunConfig, n_classes: int | None = None) -> GrokModel:
    """Build from the current torch RNG state (the trainer seeds it first), with as many outputs as its
    family declares unless `n_classes` says."""
    from grok_tui.models.base import scale_init
    from grok_tui.models.registry import family

    fam = family(cfg.model)
    model = fam.build(cfg, fam.classes(cfg) if n_classes is None else n_classes)
    scale_init(model, cfg.init_scale)
    return model


_HOMES = {
    "GrokModel": "grok_tui.models.base",
    "scale_init": "grok_tui.models.base",
    "ConcatMLP": "grok_tui.models.concat",
    "FactoredMLP": "grok_tui.models.factored",
    "OmniMLP": "grok_tui.models.omni_mlp",
    "ParityMLP": "grok_tui.models.parity_mlp",
    "SumMLP": "grok_tui.models.sum_mlp",
    "TeacherMLP": "grok_tui.models.teacher_mlp",
    "OneLayerTransformer": "grok_tui.models.transformer",
    "UnfactoredMLP": "grok_tui.models.unfactored",
}


def __getattr__(name: str) -> Any:
    """The models and their base, imported when first named (PEP 562)."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GrokModel",
    "build_model",
    "scale_init",
    "ConcatMLP",
    "FactoredMLP",
    "ParityMLP",
    "SumMLP",
    "UnfactoredMLP",
    "OneLayerTransformer",
    "OmniMLP",
    "TeacherMLP",
]
