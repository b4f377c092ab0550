"""Live interventions from the seed papers, applied inside the training step.

- Ungrok (circuit efficiency): train on only the first N training examples.
- Norm constraint (Omnigrok): after each step, rescale all weights back to a fixed global norm.
- Grokfast: amplify the slow component of the gradient with an EMA filter,
  h <- alpha*h + (1-alpha)*g, then g <- g + lamb*h, per parameter.

Each is plain state on the trainer, changed only between two steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GrokfastSettings:
    alpha: float = 0.98
    lamb: float = 2.0


class GrokfastFilter:
    """The EMA gradient filter of Grokfast (Lee et al. 2024), one buffer per parameter."""

    def __init__(self, params: list[torch.Tensor], settings: GrokfastSettings):
        self.params, self.settings = params, settings
        self.ema: list[torch.Tensor] | None = None

    @torch.no_grad()
    def apply(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if len(grads) != len(self.params):
            return
        if self.ema is None:
            self.ema = [g.detach().clone() for g in grads]
        else:
            torch._foreach_mul_(self.ema, self.settings.alpha)
            torch._foreach_add_(self.ema, grads, alpha=1 - self.settings.alpha)
        torch._foreach_add_(grads, self.ema, alpha=self.settings.lamb)


@torch.no_grad()
def global_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all parameters together, left on the device."""
    norm: torch.Tensor = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p) for p in params]))
    return norm


@torch.no_grad()
def constrain_norm(params: list[torch.Tensor], target: float) -> None:
    """Rescale every parameter by one factor so that the global L2 norm is `target` (no device sync)."""
    torch._foreach_mul_(params, target / global_norm(params).clamp_min(1e-12))
