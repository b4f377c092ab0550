"""The batched engine's fast paths: each family's forward over stacked members (models/registry.Stacked)
against vmap of the model's own forward, in outputs and gradients; and a batch trained by it against the
same batch trained by the generic path."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from grok_tui.config import PRESETS
from grok_tui.models import build_model
from grok_tui.models.registry import REGISTRY, family
from grok_tui.tasks import build_dataset
from grok_tui.train.batched import BatchedTrainer

STACKED = [name for name in REGISTRY if family(name).stacked is not None]
# A preset of each family with a stacked forward, at a size that runs in a moment.
SMALL = {"sum_mlp": ("mod-add", {}), "concat": ("concat-sub", {"embed_dim": 16})}


def test_the_mod_add_families_have_a_stacked_forward():
    assert {"sum_mlp", "concat"} <= set(STACKED)
    assert set(STACKED) <= set(SMALL)  # a new one is tested below once it is named there


@pytest.mark.parametrize("model", STACKED)
def test_a_stacked_forward_equals_the_vmapped_model_in_outputs_and_gradients(model):
    preset, extra = SMALL[model]
    cfgs = [PRESETS[preset].config(p=23, width=32, seed=seed, **extra) for seed in range(3)]
    models = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        models.append(build_model(cfg))
    params, buffers = stack_module_state(models)
    x = torch.stack([build_dataset(cfg).x_train[:50] for cfg in cfgs])
    stacked = family(model).stacked
    base = models[0]

    def one(p, b, rows):
        return functional_call(base, (p, b), (rows,))

    want = vmap(one)(params, buffers, x)
    got = stacked(params, x)
    assert got.shape == want.shape == (3, 50, cfgs[0].p)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # The gradients of one weighting of the outputs: each member's own, one gather against vmap's.
    weights = torch.randn(want.shape, generator=torch.Generator().manual_seed(0))
    names = list(params)
    grads_want = torch.autograd.grad((want * weights).sum(), [params[n] for n in names])
    grads_got = torch.autograd.grad((got * weights).sum(), [params[n] for n in names])
    for name, a, b in zip(names, grads_got, grads_want, strict=True):
        assert a.abs().sum() > 0, name
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_padding_rows_weigh_nothing_in_a_members_loss():
    base = PRESETS["mod-add"].config(p=23, width=32)
    short, long = base.replace(train_frac=0.3), base.replace(train_frac=0.6, seed=1)
    batch = BatchedTrainer([short, long], torch.device("cpu"))
    n = batch.train.n.int().tolist()
    assert n[0] < n[1] == batch.train.x.shape[1]  # the short member's rows are padded
    alone = BatchedTrainer([short], torch.device("cpu"))
    torch.testing.assert_close(batch.evaluate()[0].train_loss, alone.evaluate()[0].train_loss, rtol=1e-6, atol=0)


@pytest.mark.parametrize("model", STACKED)
def test_a_batch_on_the_stacked_forward_trains_as_the_generic_path_does(model):
    torch.set_num_threads(1)
    preset, extra = SMALL[model]
    base = PRESETS[preset].config(p=23, width=32, steps=40, **extra)
    cfgs = [base, base.replace(seed=1, weight_decay=1.0, train_frac=0.5), base.replace(lr=3e-3, constrain_norm=30.0)]
    fast, generic = BatchedTrainer(cfgs, torch.device("cpu")), BatchedTrainer(cfgs, torch.device("cpu"), generic=True)
    assert fast.stacked is not None and generic.stacked is None
    for _ in range(40):
        fast.train_step()
        generic.train_step()
    rows = fast.evaluate()
    for a, b in zip(rows, generic.evaluate(), strict=True):
        for key in ("train_loss", "test_loss", "param_norm"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-3, abs=1e-5), key
        assert abs(a.test_acc - b.test_acc) <= 2 / len(generic.test.y[0])
    assert rows[0].train_acc > 0.5  # it learned: the comparison is not of two untrained batches


def test_an_evaluations_forward_serves_the_next_step_only_while_the_weights_are_unchanged():
    base = PRESETS["mod-add"].config(p=23, width=32)
    cfgs = [base, base.replace(seed=1, weight_decay=1.0)]
    evaluated, plain = (BatchedTrainer(cfgs, torch.device("cpu")) for _ in range(2))
    for step in range(6):
        if step % 2 == 0:
            evaluated.evaluate()
        evaluated.train_step()
        plain.train_step()
    for name in plain.names:  # the same computation, kept or made again: bit for bit
        assert torch.equal(evaluated.params[name], plain.params[name]), name
    # Weights loaded after an evaluation: the next step starts from them, not from the forward kept.
    other = BatchedTrainer(cfgs, torch.device("cpu"))
    other.train_step()
    evaluated.evaluate()
    evaluated.load_state(other.state())
    evaluated.train_step()
    other.train_step()
    for name in other.names:
        assert torch.equal(evaluated.params[name], other.params[name]), name
