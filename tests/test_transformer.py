"""The one-layer transformer of Nanda et al. as the `transformer-add` preset trains it: its last-position
forward against the full computation, the paper's 114 outputs and its 10-step warm-up."""

import pytest
import torch

from grok_tui.config import PRESETS, ConfigError, RunConfig
from grok_tui.models import OneLayerTransformer
from grok_tui.train.control import ScaleHyper, SetHyper
from grok_tui.train.trainer import Trainer, inspect_model

SMALL = dict(p=23, embed_dim=32, width=64, train_frac=0.5)


def logits_and_grads(model, forward, x, y):
    model.zero_grad()
    out = forward(x)
    torch.nn.functional.cross_entropy(out, y).backward()
    return out.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_position_alone_gives_the_full_computations_logits_and_gradients(seed):
    torch.manual_seed(seed)
    p = 23
    model = OneLayerTransformer(p, d_model=32, n_heads=4, d_mlp=64)
    # Weights away from their init (a trained model's attention is not uniform), and every pair.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()], dim=1)
    y = (x[:, 0] + x[:, 1]) % p
    last, grads = logits_and_grads(model, model, x, y)
    full, full_grads = logits_and_grads(model, lambda x: model.forward_all_positions(x)[:, -1], x, y)
    assert last.shape == (p * p, p + 1)
    # Float32 sums taken in another order: equal to ~1e-7 of the logits' scale.
    assert (last - full).abs().max() <= 2e-6 * full.abs().max()
    assert set(grads) == set(full_grads) == {name for name, _ in model.named_parameters()}
    for name, grad in grads.items():
        scale = full_grads[name].abs().max()
        assert scale > 0, name  # every parameter is read, the positions' and the query's included
        assert (grad - full_grads[name]).abs().max() <= 2e-6 * scale, name


def test_the_preset_is_the_papers_setting_114_outputs_and_a_10_step_warm_up():
    cfg = PRESETS["transformer-add"].config()
    assert (cfg.p, cfg.embed_dim, cfg.width, cfg.lr, cfg.weight_decay, cfg.warmup_steps) == (
        113,
        128,
        512,
        1e-3,
        1.0,
        10,
    )
    trainer = Trainer(cfg.replace(steps=0))
    with torch.no_grad():
        out = trainer.model(trainer.data.x_test[:5])
    assert out.shape == (5, 114)  # d_vocab: the answers and "="
    labels = torch.cat([trainer.data.y_train, trainer.data.y_test])
    assert labels.min() == 0 and labels.max() == 112  # "=" is never an answer
    # The views read the answers' columns: the heatmap's output matrix is d_model x 113.
    inside = inspect_model(trainer.model, cfg)
    assert inside.matrices["output"].shape == (128, 113)
    assert inside.neuron_inputs is not None and inside.neuron_inputs.shape == (113, 128)


def lrs(trainer, steps):
    seen = []
    for _ in range(steps):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.train_step()
    return seen


def test_the_warm_up_ramps_lr_as_the_papers_lambdalr_and_the_lr_keys_move_its_target():
    cfg = PRESETS["transformer-add"].config(**SMALL)
    trainer = Trainer(cfg)
    # The paper's LambdaLR(optimizer, lambda step: min(step / 10, 1)), on a parameter of its own.
    reference = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(reference, lambda step: min(step / 10, 1))
    expected = []
    for _ in range(14):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        schedule.step()
    assert expected[0] == 0 and expected[10] == cfg.lr
    assert lrs(trainer, 14) == pytest.approx(expected, rel=1e-12, abs=0)
    assert trainer.hyper("lr") == cfg.lr

    # A key pressed during the warm-up doubles the lr it ramps to, and the next step keeps it.
    during = Trainer(cfg)
    lrs(during, 4)
    during.apply(ScaleHyper("lr", 2.0))
    assert during.hyper("lr") == 2 * cfg.lr
    assert lrs(during, 10) == pytest.approx([2 * e for e in expected[4:14]], rel=1e-12, abs=0)
    during.apply(SetHyper("lr", 5e-4))
    assert lrs(during, 2) == pytest.approx([5e-4, 5e-4])

    # Resumed from a checkpoint taken in the warm-up, it ramps on from there, at the lr set before it.
    first = Trainer(cfg)
    lrs(first, 3)
    first.apply(SetHyper("lr", 3e-3))
    state = first.state()
    resumed = Trainer(cfg)
    resumed.load_state(state)
    assert resumed.hyper("lr") == 3e-3
    assert lrs(resumed, 9) == pytest.approx(lrs(first, 9), rel=1e-12, abs=0)


def test_no_warm_up_is_the_default_of_every_other_preset():
    for name, preset in PRESETS.items():
        if name != "transformer-add":
            assert preset.config().warmup_steps == 0, name
    trainer = Trainer(PRESETS["mod-add"].config(p=11, width=8, train_frac=0.5))
    assert trainer.scheduler is None
    assert lrs(trainer, 2) == [1e-2, 1e-2]


@pytest.mark.parametrize("value", [-1, 2.5, True, "10", 2**63])
def test_a_bad_warm_up_is_one_line_naming_the_field_and_what_is_allowed(value):
    with pytest.raises(ConfigError) as raised:
        RunConfig.from_dict({"warmup_steps": value})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("warmup_steps: ") and message.endswith("expected an integer >= 0")
