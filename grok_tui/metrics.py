"""What we measure inside the network, on small numpy arrays (docs/design.md, "Definitions").

Everything here is pure numpy so that the trainer, `watch` and the tests share
one definition of each number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Under this purity a neuron is not called periodic: with 33 frequencies a random
# column has purity ~0.12, a grokked mod-add neuron ~0.9 (docs/design.md, "Definitions": measured).
PURITY_THRESHOLD = 0.5


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when spread evenly, -> 1 when all in one."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n, total = x.size, x.sum()
    if n == 0 or total <= 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


@dataclass(frozen=True)
class Spectrum:
    """Per-neuron DFT of a p × H input-weight matrix over the input axis.

    Frequencies run 1..floor(p/2); the constant term is left out.
    """

    dominant: np.ndarray  # (H,) int, the argmax frequency of each neuron
    purity: np.ndarray  # (H,) share of the neuron's power at its dominant frequency
    power: np.ndarray  # (n_freq,) total power per frequency, summed over neurons
    threshold: float

    @property
    def n_freq(self) -> int:
        return self.power.size

    @property
    def periodic(self) -> np.ndarray:
        return self.purity >= self.threshold

    @property
    def key_frequencies(self) -> tuple[int, ...]:
        """The distinct dominant frequencies of the periodic neurons, most neurons first."""
        freqs, counts = np.unique(self.dominant[self.periodic], return_counts=True)
        return tuple(int(f) for f in freqs[np.argsort(-counts, kind="stable")])

    @property
    def gini(self) -> float:
        return gini(self.power)

    @property
    def median_purity(self) -> float:
        return float(np.median(self.purity)) if self.purity.size else 0.0

    @property
    def periodic_share(self) -> float:
        return float(self.periodic.mean()) if self.purity.size else 0.0

    def neurons_per_frequency(self) -> np.ndarray:
        """Histogram over frequencies 1..n_freq of the periodic neurons' dominant frequency."""
        return np.bincount(self.dominant[self.periodic] - 1, minlength=self.n_freq)[: self.n_freq]

    def order(self) -> np.ndarray:
        """Neuron order that groups them by dominant frequency (non-periodic last), purest first."""
        key_freq = np.where(self.periodic, self.dominant, self.n_freq + 1)
        return np.lexsort((-self.purity, key_freq))


def neuron_spectrum(w: np.ndarray, threshold: float = PURITY_THRESHOLD) -> Spectrum:
    w = np.asarray(w, dtype=np.float64)
    p = w.shape[0]
    power = np.abs(np.fft.rfft(w, axis=0)[1 : p // 2 + 1]) ** 2  # (n_freq, H)
    total = power.sum(axis=0)
    dominant = power.argmax(axis=0) + 1
    purity = np.divide(power.max(axis=0), total, out=np.zeros_like(total), where=total > 0)
    return Spectrum(dominant=dominant, purity=purity, power=power.sum(axis=1), threshold=threshold)


# How the embedding pane lays the rows out (docs/design.md, "Definitions"): on the top two principal
# components; on those of a chosen step, held while training goes on; or on the cosine and sine of the
# dominant frequency, where a grokked modular embedding is a circle (Kitouni, Liu et al. 2022).
PROJECTIONS = ("pca", "fixed", "fourier")


@dataclass(frozen=True)
class Projection:
    """The rows of a p × H matrix as p points in a plane, and what the plane holds."""

    points: np.ndarray  # (p, 2): each row, less the rows' mean, on the two axes
    share: float  # of the rows' variance about their mean, the part in the plane of the two axes
    basis: np.ndarray  # (H, 2): the axes, unit columns (the PCA's are orthogonal, the Fourier mode's near it)
    frequency: int | None = None  # the Fourier mode's k
    mode: str = "pca"


def embedding_projection(inputs: np.ndarray, mode: str = "pca", basis: np.ndarray | None = None) -> Projection:
    """The rows of `inputs` (p × H, one row per residue) on two axes.

    - "pca": the top two principal components. `basis`, where given, is the previous frame's axes: each new
      axis takes the sign that agrees with it (an SVD's signs are arbitrary, and a picture that flips from one
      frame to the next says nothing).
    - "fourier": the normalised real part and minus the imaginary part of the rows' DFT over the input axis at
      the frequency k with most power, so that a perfect circle at k puts row a at angle 2πka/p.
    - "fixed": the axes `basis` (H × 2) given, held across frames; it must be given.
    """
    x = np.nan_to_num(np.asarray(inputs, dtype=np.float64))
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"expected a p × H matrix with p >= 2, got shape {x.shape}")
    centred = x - x.mean(axis=0)
    frequency = None
    if mode == "pca":
        axes = _principal_axes(centred, basis)
    elif mode == "fourier":
        axes, frequency = _fourier_axes(centred)
    elif mode == "fixed":
        if basis is None or basis.shape != (x.shape[1], 2):
            raise ValueError(f"fixed axes must be {x.shape[1]} × 2, got {None if basis is None else basis.shape}")
        axes = np.asarray(basis, dtype=np.float64)
    else:
        raise ValueError(f"{mode!r} is not a projection; expected one of {', '.join(PROJECTIONS)}")
    return Projection(centred @ axes, _plane_share(centred, axes), axes, frequency, mode)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm > 1e-12 else np.zeros_like(v)


def _principal_axes(centred: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    # From the eigenvectors of the smaller Gram matrix, not an SVD: at 67 × 128 on a busy 2-core box, 30 ms
    # against 160 (LAPACK's threads fight the trainer for the cores; one thread takes about 1 ms). The pane
    # asks at most once per inspection, and only for the live PCA axes.
    p, h = centred.shape
    if p <= h:
        values, vectors = np.linalg.eigh(np.einsum("ih,jh->ij", centred, centred))
        top = vectors[:, ::-1][:, :2]
        directions = np.einsum("ih,ik->hk", centred, top)  # each row-space eigenvector's direction among the H
    else:
        values, vectors = np.linalg.eigh(np.einsum("ih,ij->hj", centred, centred))
        directions = vectors[:, ::-1][:, :2]
    axes = np.zeros((h, 2))
    for i in range(min(2, directions.shape[1])):
        axes[:, i] = _unit(directions[:, i])
    for i in range(2):
        if previous is not None and previous.shape == axes.shape:
            agree = axes[:, i] @ previous[:, i]
        else:  # no frame before: the row farthest out along the axis lies on its positive side
            coords = centred @ axes[:, i]
            agree = coords[np.argmax(np.abs(coords))] if coords.size else 1.0
        if agree < 0:
            axes[:, i] = -axes[:, i]
    return axes


def _fourier_axes(centred: np.ndarray) -> tuple[np.ndarray, int | None]:
    p = centred.shape[0]
    if p < 3:
        return np.zeros((centred.shape[1], 2)), None
    component = np.fft.rfft(centred, axis=0)[1 : p // 2 + 1]  # (n_freq, H): frequencies 1..p//2
    power = (np.abs(component) ** 2).sum(axis=1)
    k = int(power.argmax())
    # Row a = cos(2πka/p)·u + sin(2πka/p)·v gives the component (p/2)(u - iv): its real part is u, minus its
    # imaginary part v.
    axes = np.stack([_unit(component[k].real), _unit(-component[k].imag)], axis=1)
    return axes, k + 1


def _plane_share(centred: np.ndarray, axes: np.ndarray) -> float:
    total = float(np.sum(centred**2))
    if total <= 0:
        return 0.0
    q, r = np.linalg.qr(axes)
    q = q[:, np.abs(np.diag(r)) > 1e-9]  # an axis of zeros (or twice the same) spans nothing more
    return float(np.clip(np.sum((centred @ q) ** 2) / total, 0.0, 1.0))


def circle_order(points: np.ndarray) -> tuple[int, float]:
    """How well the points' angles follow the residues: the frequency k and the score in [0, 1] of the best
    fit of angle(a) = ±2πka/p + c (1: a perfect circle at k, up to rotation and reflection; ~1/√p: no order).

    The mean resultant length of angle(a) ∓ 2πka/p, as in circular statistics; each point counts alike,
    whatever its radius."""
    pts = np.asarray(points, dtype=np.float64)
    p = pts.shape[0]
    if p < 3:
        return 0, 0.0
    z = pts[:, 0] + 1j * pts[:, 1]
    phase = np.divide(z, np.abs(z), out=np.zeros_like(z), where=np.abs(z) > 1e-12)
    ks = np.arange(1, p // 2 + 1)
    turns = np.exp(2j * np.pi * np.outer(ks, np.arange(p)) / p)  # (n_freq, p)
    scores = np.maximum(np.abs((phase * turns.conj()).mean(axis=1)), np.abs((phase * turns).mean(axis=1)))
    best = int(scores.argmax())
    return int(ks[best]), float(scores[best])


@dataclass(frozen=True)
class ParityMass:
    """How much of the first layer's weight sits on the bits that decide the label."""

    relevant: float  # mean |w| per relevant bit
    irrelevant: float  # mean |w| per other bit
    share: float  # fraction of all |w| on the relevant bits
    k: int  # how many bits are relevant (the first k)

    @property
    def ratio(self) -> float:
        return self.relevant / self.irrelevant if self.irrelevant > 0 else float("inf")


def parity_mass(w_in: np.ndarray, k_bits: int) -> ParityMass:
    """w_in is n_bits × H (one row per input bit)."""
    per_bit = np.abs(np.asarray(w_in, dtype=np.float64)).sum(axis=1)
    rel, rest = per_bit[:k_bits], per_bit[k_bits:]
    total = per_bit.sum()
    return ParityMass(
        relevant=float(rel.mean()),
        irrelevant=float(rest.mean()) if rest.size else 0.0,
        share=float(rel.sum() / total) if total > 0 else 0.0,
        k=k_bits,
    )


# Phase thresholds: "memorized" means the training set is fit; "generalized" that
# the test set is too.
FIT_ACC = 0.99
GENERALIZED_ACC = 0.95
# Test accuracy gained since the fit that counts as partial generalization.
PARTIAL_GAIN = 0.15


def phase(
    train_acc: float, test_acc: float, test_acc_earlier: float | None, test_acc_at_fit: float | None = None
) -> str:
    """A short reading of where the run stands, from the curves' latest points.

    `test_acc_earlier` is the test accuracy a while back (the caller picks the
    window); a clear rise since then while the training set is already fit is
    what "generalizing" means. `test_acc_at_fit` is the test accuracy when the
    training set was first fit: a run that has since climbed well above it and
    stopped short of generalizing has semi-grokked (circuit efficiency, Varma
    et al. 2023), which "memorizing" would misreport.
    """
    if test_acc >= GENERALIZED_ACC:
        return "generalized"
    if train_acc < 0.9:
        return "learning"
    if test_acc_earlier is not None and test_acc - test_acc_earlier >= 0.02:
        return "generalizing"
    if test_acc_at_fit is not None and test_acc - test_acc_at_fit >= PARTIAL_GAIN:
        return "partly generalized"
    return "memorizing"
