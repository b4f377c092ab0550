"""The student of Omnigrok's teacher-student toy (the teacher-student experiments), and its teacher's shape."""

from __future__ import annotations

import torch

from grok_tui.models.registry import Family
from grok_tui.models.three_layer import (
    ThreeLayerMLP,
    three_layer_activations,
    three_layer_parameters,
    three_layer_views,
)
from grok_tui.tasks.teacher import HIDDEN, IN_DIM, OUT_DIM


class TeacherMLP(ThreeLayerMLP):
    """The teacher-student toy's architecture, tanh (5-100-100-5 in the paper)."""

    def __init__(self, in_dim: int = IN_DIM, width: int = HIDDEN, n_out: int = OUT_DIM):
        super().__init__(in_dim, width, n_out, torch.tanh)


FAMILY = Family(
    build=lambda cfg, classes: TeacherMLP(IN_DIM, cfg.width, classes),
    classes=lambda cfg: OUT_DIM,  # the teacher's outputs, a regression's components
    parameters=lambda cfg, classes: three_layer_parameters(IN_DIM, cfg.width, classes),
    activations=three_layer_activations,
    views=lambda cfg, classes: three_layer_views(IN_DIM, cfg.width, classes),
    drivers=("n_train", "n_test", "width"),
)
