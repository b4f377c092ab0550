"""The models, each a GrokModel the monitor can look inside."""

from __future__ import annotations

from grok_tui.config import RunConfig
from grok_tui.models.article import FactoredMLP, UnfactoredMLP
from grok_tui.models.base import GrokModel, scale_init
from grok_tui.models.mlp import ConcatMLP, ParityMLP, SumMLP
from grok_tui.models.omni import OmniMLP, TeacherMLP
from grok_tui.models.transformer import OneLayerTransformer


def build_model(cfg: RunConfig, n_classes: int) -> GrokModel:
    """Build from the current torch RNG state (the trainer seeds it first)."""
    if cfg.model == "sum_mlp":
        model: GrokModel = SumMLP(cfg.p, cfg.width)
    elif cfg.model == "factored":
        model = FactoredMLP(cfg.p, cfg.embed_dim, cfg.width)
    elif cfg.model == "unfactored":
        model = UnfactoredMLP(cfg.p, cfg.width)
    elif cfg.model == "concat":
        model = ConcatMLP(cfg.p, cfg.embed_dim, cfg.width)
    elif cfg.model == "transformer":
        model = OneLayerTransformer(cfg.p, d_model=cfg.embed_dim, d_mlp=cfg.width)
    elif cfg.model == "parity_mlp":
        model = ParityMLP(cfg.n_bits, cfg.width, n_classes)
    elif cfg.model == "omni_mlp":
        model = OmniMLP(64, cfg.width, 10)  # 8×8 digits, 10 classes, whatever n_classes says
    elif cfg.model == "teacher_mlp":
        model = TeacherMLP(5, cfg.width, 5)  # the teacher's 5-d inputs and outputs
    else:
        raise ValueError(f"unknown model {cfg.model!r}")
    scale_init(model, cfg.init_scale)
    return model


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
