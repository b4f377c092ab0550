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
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# (stacked parameters, stacked inputs) -> outputs (N, rows, classes)
StackedForward = Callable[[dict[str, Tensor], Tensor], Tensor]


class _SummedRows(torch.autograd.Function):
    """The sum of k rows of a table per example, over the members' tables laid end to end (N·p, d).

    Forward: one embedding_bag, which writes each sum once (a gather per operand and their sum wrote the
    activation three times). Backward: the gradient added into each row it came from, one index_add per
    operand into an (N·p, d) buffer. On mod-add's default, 8 members, one thread: 1.45x the gathers and
    their autograd (0.40 ms a member, against 0.58)."""

    @staticmethod
    def forward(ctx: Any, flat_table: Tensor, flat_index: Tensor) -> Tensor:
        ctx.rows = flat_table.shape[0]
        ctx.columns = [flat_index[:, j].contiguous() for j in range(flat_index.shape[1])]
        return F.embedding_bag(flat_index, flat_table, mode="sum")

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        out = grad.new_zeros(ctx.rows, grad.shape[1])
        for column in ctx.columns:
            out.index_add_(0, column, grad)
        return out, None


def lookup(table: Tensor, index: Tensor) -> Tensor:
    """Each member's rows of its own embedding table, summed over the last axis of `index`:
    table (N, p, d), index (N, rows, k) -> (N, rows, d), the sum of table[m, index[m, r, j]] over j."""
    n, p, d = table.shape
    rows, k = index.shape[1], index.shape[2]
    offsets = torch.arange(n, device=index.device).mul_(p).view(n, 1, 1)
    flat: Tensor = _SummedRows.apply(  # type: ignore[no-untyped-call]  # torch's Function.apply is not annotated
        table.reshape(n * p, d), (index + offsets).view(n * rows, k)
    )
    return flat.view(n, rows, d)


__all__ = ["StackedForward", "lookup"]
