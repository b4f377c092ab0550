"""The embedding's rows as points, one per residue, coloured round the circle by residue: Kitouni's circle.

A grokked modular-addition embedding lays the residues on circles, one per key
frequency; at initialisation its rows are a cloud. Three ways to look (`e` cycles
them, metrics.embedding_projection computes them):

- fourier: the cosine and sine directions of the dominant frequency k, where row a of
  a circle lies at angle 2πka/p;
- pca: the top two principal components, as they are now;
- fixed: the principal components of the step at which the key was pressed, held
  while training goes on (Kitouni's animation holds those of the end of training).

The title says which, the frequency where there is one, and the share of the rows'
variance the two axes hold.
"""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult

from grok_tui.history import History
from grok_tui.metrics import Projection, embedding_projection
from grok_tui.train.snapshot import Snapshot
from grok_tui.ui import keys
from grok_tui.ui.panes.base import Pane
from grok_tui.ui.panes.scatter import Scatter

# In the order the key goes round them: the circle first, then the principal components and those held.
MODES = ("fourier", "pca", "fixed")
NOTHING = "nothing to draw: this run sends no embedding rows (a model with no input axis, or a script's run)"


class EmbeddingPane(Pane):
    cadence = "inspection"

    def __init__(self, **kwargs) -> None:
        super().__init__("embedding", **kwargs)
        self.border_subtitle = f"{keys.EMBEDDING.key_display}: axes"
        self.mode = MODES[0]
        self.fixed: tuple[int, np.ndarray] | None = None  # the step whose axes are held, and those axes
        self._pca_axes: np.ndarray | None = None  # the last PCA's axes: the next keeps their signs
        self._last: Snapshot | None = None
        self._inputs: np.ndarray | None = None

    def compose(self) -> ComposeResult:
        yield Scatter()

    def cycle(self) -> str:
        """The next way to look; entering "fixed" holds the axes of the frame in hand."""
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        self.fixed = None  # taken from the frame in hand (or the first frame with rows)
        self._redraw()
        return self.mode

    def show(self, snapshot: Snapshot, history: History) -> None:
        if self._last is not None and snapshot.neuron_inputs is self._inputs:
            return  # no new inspection of the model since the last frame (its arrays are replaced, never mutated)
        self._last, self._inputs = snapshot, snapshot.neuron_inputs
        self._redraw()

    def _redraw(self) -> None:
        snapshot = self._last
        scatter = self.query_one(Scatter)
        inputs = None if snapshot is None else snapshot.neuron_inputs
        if snapshot is None or inputs is None or inputs.ndim != 2 or inputs.shape[0] < 3:
            self.set_title("embedding")
            if snapshot is not None:
                scatter.set_note(NOTHING)
            return
        projection = self._project(inputs, snapshot.step)
        self.set_title(f"embedding: {_describe(projection, self.fixed)}")
        p = inputs.shape[0]
        scatter.set_points(projection.points, np.arange(p) / p, [str(a) for a in range(p)])

    def _project(self, inputs: np.ndarray, step: int) -> Projection:
        if self.mode == "fourier":
            return embedding_projection(inputs, "fourier")
        if self.fixed is not None and self.fixed[1].shape == (inputs.shape[1], 2):
            return embedding_projection(inputs, "fixed", self.fixed[1])
        pca = embedding_projection(inputs, "pca", self._pca_axes)
        self._pca_axes = pca.basis
        if self.mode == "fixed":  # just pressed (or the model's width changed): hold these
            self.fixed = (step, pca.basis)
            return embedding_projection(inputs, "fixed", pca.basis)
        return pca


def _describe(projection: Projection, fixed: tuple[int, np.ndarray] | None) -> str:
    share = f"{projection.share:.0%}"
    if projection.mode == "fourier":
        return f"k={projection.frequency} cos/sin {share}"
    if projection.mode == "fixed" and fixed is not None:
        return f"PCs of step {fixed[0]:,} {share}"
    return f"PC1+PC2 {share}"
