"""What a script's frames show of its model: the weight norms, the matrices, the neurons' inputs and spectrum.

Where each comes from is found once, when the monitor starts: the model's own `matrices()` and
`neuron_inputs()` where it has them, else the functions given to `grok_tui.monitor`, else its 2-D
parameters and (given a period) the first rows of its embedding. They are read from the device only where
loop/session.py asks: the norms at each `m.log`, the views while a client watches and at most every
VIEW_INTERVAL_S, and at each checkpoint; a matrix leaves the device cut to at most MAX_SIDE a side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from grok_tui.metrics import Spectrum, neuron_spectrum

# What the frequencies pane says of a run whose monitor has no period (and no neuron inputs of its own).
NO_PERIOD = "pass period= to grok_tui.monitor to see each neuron's dominant frequency"
# The views (matrices, spectrum) are read from the device at most this often, and only while a client watches.
VIEW_INTERVAL_S = 0.25
# A matrix is cut to at most this many rows and columns (by stride) before it leaves the device.
MAX_SIDE = 256

Views = tuple[dict[str, np.ndarray], Spectrum | None, np.ndarray | None]


class ModelViews:
    """The views of `model`, and the last ones read: `tensor_norms`, and `latest` (its matrices, spectrum
    and neuron inputs, as a frame carries them). `spectrum_note` says why there is no spectrum, where no
    source of neuron inputs was found (the frequencies pane shows it)."""

    def __init__(
        self,
        model: nn.Module,
        period: int | None,
        matrices: Callable[[], Mapping[str, torch.Tensor]] | None,
        neuron_inputs: Callable[[], torch.Tensor | None] | None,
    ):
        self._matrices = _matrix_source(model, matrices)
        self._neuron_inputs, self.spectrum_note = _inputs_source(model, period, neuron_inputs)
        named = list(model.named_parameters())  # read once: the norms are taken at every m.log
        self._param_names = [name for name, _ in named]
        self._params = [p for _, p in named]
        self.tensor_norms: dict[str, float] = {}
        self.latest: Views = ({}, None, None)
        self._read_at = -math.inf

    @torch.no_grad()
    def norms(self) -> float:
        """The global weight norm and each tensor's, read from the device in one transfer."""
        if not self._params:
            return 0.0
        try:
            norms = torch.stack([p.detach().float().norm() for p in self._params])
            values = torch.cat([norms.square().sum().sqrt().reshape(1), norms]).tolist()
        except RuntimeError:  # parameters on several devices
            each = [float(p.detach().float().norm()) for p in self._params]
            values = [math.sqrt(sum(v * v for v in each)), *each]
        self.tensor_norms = dict(zip(self._param_names, values[1:], strict=True))
        return float(values[0]) if math.isfinite(values[0]) else math.nan

    def look_inside(self, now: float, clients: Callable[[], int]) -> Spectrum | None:
        """Read the views from the device when they are due: while a client watches (`clients`, asked only
        after the first read), at most every VIEW_INTERVAL_S (and once, so that a client arriving later has
        something); the spectrum if read."""
        if self._read_at > -math.inf and (clients() == 0 or now - self._read_at < VIEW_INTERVAL_S):
            return None
        self._read_at = now
        matrices, spectrum, inputs = self.read()
        self.latest = ({name: t.numpy() for name, t in matrices.items()}, spectrum, inputs)
        return spectrum

    @torch.no_grad()
    def read(self) -> tuple[dict[str, torch.Tensor], Spectrum | None, np.ndarray | None]:
        """The matrices (cut, on the CPU), the neurons' spectrum, and their inputs (p x H float32) that the
        embedding pane projects."""
        found = self._matrices()
        if not isinstance(found, Mapping):
            raise ValueError(f"grok_tui.monitor: matrices() must return a dict of 2-D tensors, not {found!r:.60}")
        matrices = {str(n): _cut(t) for n, t in found.items() if isinstance(t, torch.Tensor) and t.dim() == 2}
        inputs = self._neuron_inputs()
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 2 and inputs.shape[0] >= 3:
            rows = inputs.detach().float().cpu().numpy().copy()  # a copy: the frame outlives this step
            return matrices, neuron_spectrum(rows), rows
        return matrices, None, None

    def for_checkpoint(self) -> dict[str, Any]:
        """The views a checkpoint carries (sources/watched.py reads them): the matrices, cut, and the neuron
        inputs where there are any, as CPU tensors."""
        matrices, _, _ = self.read()
        inputs = self._neuron_inputs()
        views: dict[str, Any] = {"matrices": matrices}
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 2:
            views["neuron_inputs"] = inputs.detach().float().cpu().clone()
        return views


def _matrix_source(
    model: nn.Module, given: Callable[[], Mapping[str, torch.Tensor]] | None
) -> Callable[[], Mapping[str, torch.Tensor]]:
    own = getattr(model, "matrices", None)
    if callable(own):
        try:
            found = own()
        except NotImplementedError:
            found = None
        if isinstance(found, Mapping):
            return own  # type: ignore[no-any-return]
    if given is not None:
        return given
    named = [(name, p) for name, p in model.named_parameters() if p.dim() == 2]
    return lambda: dict(named)


def _inputs_source(
    model: nn.Module, period: int | None, given: Callable[[], torch.Tensor | None] | None
) -> tuple[Callable[[], torch.Tensor | None], str | None]:
    """Where the neurons' inputs come from; where nowhere, a note that says why."""
    own = getattr(model, "neuron_inputs", None)
    if callable(own):
        return own, None
    if given is not None:
        return given, None
    if period is None:
        return lambda: None, NO_PERIOD
    # A Hugging Face model names its own; any other model, its first nn.Embedding.
    named = getattr(model, "get_input_embeddings", None)
    embedding = named() if callable(named) else None
    if not isinstance(embedding, nn.Embedding):
        embedding = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if embedding is None or embedding.num_embeddings < period:
        note = (
            f"no nn.Embedding of at least {period} rows in this model: pass neuron_inputs= to "
            "grok_tui.monitor to see each neuron's dominant frequency"
        )
        return lambda: None, note
    return lambda: embedding.weight[:period], None


def _cut(t: torch.Tensor) -> torch.Tensor:
    """At most MAX_SIDE rows and columns, by stride, as float32 on the CPU."""
    rows, cols = t.shape
    t = t.detach()[:: max(1, math.ceil(rows / MAX_SIDE)), :: max(1, math.ceil(cols / MAX_SIDE))]
    return t.float().cpu()
