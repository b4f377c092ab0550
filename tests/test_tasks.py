import pytest
import torch

from grok_tui.tasks import modular_dataset, parity_dataset
from grok_tui.tasks.modular import modular_table


@pytest.mark.parametrize(
    "op, fn",
    [
        ("+", lambda a, b, p: (a + b) % p),
        ("-", lambda a, b, p: (a - b) % p),
        ("*", lambda a, b, p: (a * b) % p),
    ],
)
def test_modular_labels(op, fn):
    p = 7
    x, y = modular_table(p, op)
    assert len(x) == p * p
    for (a, b), label in zip(x.tolist(), y.tolist(), strict=True):
        assert label == fn(a, b, p)


def test_division_uses_the_modular_inverse_and_skips_zero():
    p = 11
    x, y = modular_table(p, "/")
    assert len(x) == p * (p - 1)
    assert (x[:, 1] != 0).all()
    # a / b = c  <=>  c * b = a (mod p)
    assert ((y * x[:, 1]) % p == x[:, 0]).all()


def test_split_sizes_cover_every_pair_once():
    data = modular_dataset(13, "+", 0.3, seed=4)
    assert len(data.x_train) == round(0.3 * 169)
    assert len(data.x_train) + len(data.x_test) == 169
    pairs = {tuple(r) for r in torch.cat([data.x_train, data.x_test]).tolist()}
    assert len(pairs) == 169


def test_split_depends_on_the_seed_only():
    a, b, c = (modular_dataset(13, "+", 0.3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_parity_labels_and_sizes():
    data = parity_dataset(n_bits=30, k_bits=3, n_train=200, n_test=500, seed=0)
    assert data.x_train.shape == (200, 30) and data.x_test.shape == (500, 30)
    assert set(data.x_train.unique().tolist()) == {-1.0, 1.0}
    bits = (data.x_train > 0).long()
    assert torch.equal(data.y_train, bits[:, :3].sum(1) % 2)
    # The test set is fresh: not a copy of the training sequences.
    train_rows = {tuple(r) for r in data.x_train.tolist()}
    assert not any(tuple(r) in train_rows for r in data.x_test.tolist())
