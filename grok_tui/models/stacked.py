"""A family's forward over many members at once, for the batched engine (train/batched.py).

Each parameter has a leading member axis, as torch.func.stack_module_state stacks it, and is named as in
the model's state_dict; the inputs are the members' examples stacked (N, rows, ...), padding rows
included (they are weighted by zero). Written with batched ops it beats torch.func.vmap of the model's own
forward, whose copies and per-member embedding backward (a sort and a scatter into zeros each) cost more
than the model's matmuls on a CPU (docs/design.md). tests/test_batched.py holds each family's to the
vmapped model: outputs and gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# (stacked parameters, stacked inputs) -> outputs (N, rows, classes)
StackedForward = Callable[[dict[str, Tensor], Tensor], Tensor]


def lookup(table: Tensor, index: Tensor) -> Tensor:
    """Each member's rows of its own embedding table: table (N, p, d), index (N, rows) -> (N, rows, d).

    One gather over the members' tables laid end to end, so that its backward is one scatter-add into an
    (N·p, d) buffer: far cheaper than a one-hot matmul (whose work grows with p) or vmap's lookup."""
    n, p, d = table.shape
    offsets = torch.arange(n, device=index.device).mul_(p).view(n, 1)
    return table.reshape(n * p, d).index_select(0, (index + offsets).flatten()).view(n, index.shape[1], d)


__all__ = ["StackedForward", "lookup"]
