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
