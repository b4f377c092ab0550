"""Haiku's initialisers, as the PAIR article's notebook starts its models (models/factored.py, unfactored.py).

Its embedding is VarianceScaling(2.0) (a truncated normal of variance 2 / fan_in), each Linear a truncated
normal of std 1/sqrt(fan_in); Haiku truncates at two standard deviations.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The std of a unit normal truncated to [-2, 2]: Haiku's VarianceScaling divides by it.
_TRUNCATED_STD = 0.87962566103423978


def truncated_normal(shape: tuple[int, ...], std: float) -> nn.Parameter:
    weight = torch.empty(shape)
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
    return nn.Parameter(weight)


def variance_scaling(shape: tuple[int, int], scale: float) -> nn.Parameter:
    """Haiku's VarianceScaling(scale) with its defaults (fan_in, truncated normal); fan_in = shape[0]."""
    return truncated_normal(shape, math.sqrt(scale / shape[0]) / _TRUNCATED_STD)
