import math

import numpy as np
import pytest

from grok_tui.metrics import gini, neuron_spectrum, parity_mass, phase
from grok_tui.train import Trainer
from tests.conftest import tiny_config


def test_dft_finds_planted_frequencies():
    p, rng = 67, np.random.default_rng(0)
    n = np.arange(p)[:, None]
    planted = np.array([4, 5, 7, 26, 4, 33])
    phases = rng.uniform(0, 2 * np.pi, planted.size)
    w = np.cos(2 * np.pi * planted * n / p + phases)
    w[:, 1] += 0.05 * rng.standard_normal(p)  # a little noise keeps it dominant
    spectrum = neuron_spectrum(w)
    assert spectrum.dominant.tolist() == planted.tolist()
    assert (spectrum.purity > 0.95).all()
    assert set(spectrum.key_frequencies) == {4, 5, 7, 26, 33}
    assert spectrum.key_frequencies[0] == 4  # two neurons
    assert spectrum.n_freq == p // 2
    # Sorting groups the neurons by frequency.
    assert spectrum.dominant[spectrum.order()].tolist() == sorted(planted.tolist())


def test_dft_ignores_the_constant_and_flags_noise():
    p, rng = 31, np.random.default_rng(1)
    w = 10.0 + rng.standard_normal((p, 200))  # a big offset must not count
    spectrum = neuron_spectrum(w)
    assert spectrum.median_purity < 0.3
    assert spectrum.periodic_share < 0.05
    assert spectrum.gini < 0.3


def test_gini_bounds():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.eye(1, 10).ravel()) == pytest.approx(0.9)
    assert gini(np.zeros(4)) == 0.0


def test_param_norm_matches_definition():
    trainer = Trainer(tiny_config())
    m = trainer.evaluate()
    expected = math.sqrt(sum(float((p.detach() ** 2).sum()) for p in trainer.model.parameters()))
    assert m.param_norm == pytest.approx(expected, rel=1e-5)
    snap = trainer.snapshot(m)
    assert set(snap.tensor_norms) == {n for n, _ in trainer.model.named_parameters()}
    assert math.sqrt(sum(v * v for v in snap.tensor_norms.values())) == pytest.approx(expected, rel=1e-5)


def test_parity_mass():
    w = np.ones((10, 4))
    w[:3] = 5.0
    mass = parity_mass(w, 3)
    assert mass.relevant == pytest.approx(20.0) and mass.irrelevant == pytest.approx(4.0)
    assert mass.share == pytest.approx(60 / 88)
    assert mass.ratio == pytest.approx(5.0)


def test_phase_labels():
    assert phase(0.5, 0.01, None) == "learning"
    assert phase(1.0, 0.05, 0.05) == "memorizing"
    assert phase(1.0, 0.40, 0.20) == "generalizing"
    assert phase(1.0, 0.97, 0.50) == "generalized"
    # Semi-grokking: well above the test accuracy at the fit, and no longer rising.
    assert phase(1.0, 0.50, 0.49, test_acc_at_fit=0.17) == "partly generalized"
    assert phase(1.0, 0.50, 0.30, test_acc_at_fit=0.17) == "generalizing"
    assert phase(1.0, 0.25, 0.25, test_acc_at_fit=0.17) == "memorizing"
