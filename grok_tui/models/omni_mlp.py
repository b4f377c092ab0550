"""Omnigrok's MNIST model on scikit-learn's 8×8 digits (the omnigrok-digits experiments)."""

from __future__ import annotations

import torch

from grok_tui.models.registry import Family
from grok_tui.models.three_layer import (
    ThreeLayerMLP,
    three_layer_activations,
    three_layer_parameters,
    three_layer_views,
)
from grok_tui.tasks.digits import DIGIT_CLASSES, PIXELS


class OmniMLP(ThreeLayerMLP):
    """Omnigrok's MNIST model: depth 3, ReLU; here on 8×8 digits: 64 -> width -> width -> 10."""

    def __init__(self, in_dim: int = PIXELS, width: int = 200, n_out: int = DIGIT_CLASSES):
        super().__init__(in_dim, width, n_out, torch.relu)


FAMILY = Family(
    build=lambda cfg, classes: OmniMLP(PIXELS, cfg.width, classes),
    classes=lambda cfg: DIGIT_CLASSES,
    parameters=lambda cfg, classes: three_layer_parameters(PIXELS, cfg.width, classes),
    activations=three_layer_activations,
    views=lambda cfg, classes: three_layer_views(PIXELS, cfg.width, classes),
    # The digits' n_train is capped by the 1,797 images: only the width can make it big.
    drivers=("width",),
)
