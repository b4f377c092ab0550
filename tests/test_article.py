"""The PAIR article's own model (`pair-article`), as its notebook builds and trains it, and its control."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grok_tui.config import PRESETS, ConfigError
from grok_tui.models import FactoredMLP, UnfactoredMLP, build_model
from grok_tui.tasks import build_dataset
from grok_tui.train import Trainer


def test_the_data_is_the_notebooks_unordered_pairs_and_split():
    cfg = PRESETS["pair-article"].config()
    data = build_dataset(cfg)
    # The notebook: every [a, b] with a <= b, in order, shuffled by np.random.seed(165).permutation,
    # the first int(0.4 * n) for training.
    pairs = np.array([[a, b] for a in range(67) for b in range(67) if a <= b])
    order = np.random.RandomState(165).permutation(len(pairs))
    n_train = int(0.4 * len(pairs))
    assert (len(pairs), n_train) == (2278, 911)
    assert np.array_equal(data.x_train.numpy(), pairs[order[:n_train]])
    assert np.array_equal(data.x_test.numpy(), pairs[order[n_train:]])
    assert torch.equal(data.y_train, (data.x_train[:, 0] + data.x_train[:, 1]) % 67)


def test_unordered_pairs_are_refused_where_the_order_matters():
    with pytest.raises(ConfigError) as e:
        PRESETS["pair-article"].config(op="-")
    assert e.value.field == "pairs" and "commutative" in str(e.value)


def test_the_factored_model_is_the_notebooks_function_with_its_initialisation():
    torch.manual_seed(0)
    model = build_model(PRESETS["pair-article"].config(), 67)
    assert isinstance(model, FactoredMLP)
    assert sum(p.numel() for p in model.parameters()) == 67 * 500 + 500 * 24 + 24 * 500
    x = torch.tensor([[3, 5], [0, 66], [10, 10]])
    # The notebook's order: one-hot rows times E, each through the shared hidden layer, ReLU of the
    # sum, the output layer, then E transposed.
    onehot = F.one_hot(x, 67).float()
    hidden = torch.relu(onehot[:, 0] @ model.embed @ model.w_in + onehot[:, 1] @ model.embed @ model.w_in)
    reference = hidden @ model.w_out @ model.embed.T
    assert torch.allclose(model(x), reference, atol=1e-4)
    # Haiku's initialisers, both a normal truncated at two of its standard deviations: E is
    # VarianceScaling(2), corrected for the truncation to a std of sqrt(2/67); a Linear's
    # TruncatedNormal(1/sqrt(fan_in)) is not corrected, so its std is 0.88/sqrt(fan_in).
    truncated = 0.87962566
    for weight, std in (
        (model.embed, math.sqrt(2 / 67)),
        (model.w_in, truncated / math.sqrt(500)),
        (model.w_out, truncated / math.sqrt(24)),
    ):
        assert abs(weight.std().item() / std - 1) < 0.05
    assert model.embed.abs().max() <= 2 * math.sqrt(2 / 67) / truncated + 1e-6
    assert model.w_in.abs().max() <= 2 / math.sqrt(500) + 1e-6
    # What the views show: how each number drives each of the 24 neurons.
    assert torch.allclose(model.neuron_inputs(), model.embed @ model.w_in)
    assert next(iter(model.matrices())) == "inputs to neurons"


def test_the_unfactored_control_has_the_articles_3216_weights():
    model = build_model(PRESETS["pair-article-unfactored"].config(), 67)
    assert isinstance(model, UnfactoredMLP)
    assert sum(p.numel() for p in model.parameters()) == 3216


def test_the_loss_is_cross_entropy_averaged_over_the_classes_too():
    cfg = PRESETS["pair-article"].config(steps=0)
    trainer = Trainer(cfg)
    out = torch.randn(5, 67)
    y = torch.tensor([0, 1, 2, 3, 66])
    notebook = -(F.one_hot(y, 67) * F.log_softmax(out, dim=-1)).mean()
    assert torch.allclose(trainer._loss(out, y), notebook)


def test_on_a_short_schedule_it_memorizes_first_and_its_norm_rises_then_falls():
    cfg = PRESETS["pair-article"].config(steps=2000, device="cpu")
    rows = []
    Trainer(cfg).run(lambda s: rows.append(s.metrics) if not rows or rows[-1].step != s.step else None)
    fit = next(m for m in rows if m.train_acc >= 0.99)
    # Memorized within a few hundred steps, while the test set sits near chance (1/67).
    assert fit.step <= 800 and fit.test_acc < 0.05
    norms = [m.param_norm for m in rows]
    peak = int(np.argmax(norms))
    # The weight norm climbs while memorizing, then weight decay brings it down.
    assert 0 < peak < len(norms) - 1
    assert norms[peak] > 1.1 * norms[0] and norms[-1] < 0.98 * norms[peak]


def test_the_unfactored_control_cannot_even_fit_its_training_set_where_the_factored_model_does():
    rows = {}
    for name in ("pair-article", "pair-article-unfactored"):
        out = []
        Trainer(PRESETS[name].config(steps=1500, device="cpu")).run(lambda s, out=out: out.append(s.metrics))
        rows[name] = out[-1]
    factored, unfactored = rows["pair-article"], rows["pair-article-unfactored"]
    assert factored.train_acc == 1.0
    # The article's warning: trained directly, the 24 neurons neither memorize nor generalize.
    assert unfactored.train_acc < 0.8 and unfactored.test_acc < 0.05
