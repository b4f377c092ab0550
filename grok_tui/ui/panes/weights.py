"""A weight matrix as a heatmap; neurons can be sorted by their dominant frequency."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult

from grok_tui.history import History
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui.panes.base import Pane
from grok_tui.ui.panes.heatmap import Heatmap


def sort_neurons(matrix: np.ndarray, order: np.ndarray) -> np.ndarray | None:
    """The matrix with its neuron axis (the one as long as `order`) permuted, or None if it has none."""
    if matrix.shape[1] == order.size:
        return matrix[:, order]
    if matrix.shape[0] == order.size:
        return matrix[order, :]
    return None


class WeightsPane(Pane):
    cadence = "inspection"

    def __init__(self, **kwargs) -> None:
        super().__init__("weights", **kwargs)
        self.index = 0
        self.sorted = False
        self._names: list[str] = []
        self._last: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield Heatmap()

    def cycle(self) -> str:
        self.index += 1
        self._redraw()
        return self.current

    def toggle_sort(self) -> bool:
        self.sorted = not self.sorted
        self._redraw()
        return self.sorted

    @property
    def current(self) -> str:
        return self._names[self.index % len(self._names)] if self._names else ""

    def show(self, snapshot: Snapshot, history: History) -> None:
        last = self._last
        if last is not None and last.matrices is snapshot.matrices and last.spectrum is snapshot.spectrum:
            return  # no new inspection since the last frame: the same picture
        self._last = snapshot
        self._names = list(snapshot.matrices)
        self._redraw()

    def _redraw(self) -> None:
        snapshot = self._last
        if snapshot is None or not self._names:
            return
        name = self.current
        matrix = snapshot.matrices[name]
        note = ""
        if self.sorted:
            reordered = sort_neurons(matrix, snapshot.spectrum.order()) if snapshot.spectrum else None
            if reordered is None:
                note = " · no neuron axis to sort"
            else:
                matrix, note = reordered, " · neurons by frequency"
        self.set_title(f"weights: {name} {matrix.shape[0]}×{matrix.shape[1]}{note}")
        self.query_one(Heatmap).set_matrix(matrix)
