from __future__ import annotations

import torch
from torch import nn


class GrokModel(nn.Module):
    """A model the monitor can look inside.

    `neuron_inputs` is the p × H matrix whose column j is how each input number
    drives hidden neuron j (docs/design.md, "Definitions": the per-neuron DFT);
    `matrices` are the named 2-D weights the heatmap cycles through. Their shapes
    are declared again by the model's family (models/registry.py).
    """

    def neuron_inputs(self) -> torch.Tensor | None:
        return None

    def matrices(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError


@torch.no_grad()
def scale_init(model: nn.Module, alpha: float) -> None:
    """Omnigrok's init scale: every parameter multiplied by alpha after the standard init."""
    if alpha != 1.0:
        for param in model.parameters():
            param.mul_(alpha)
