"""The one-layer transformer of Nanda et al. as the `transformer-add` preset trains it: its last-position
forward against the full computation, the paper's 114 outputs and its 10-step warm-up."""

import json
import math

import pytest
import torch

from grok_tui.config import PRESETS, ConfigError, RunConfig
from grok_tui.models import OneLayerTransformer, fourier_measures
from grok_tui.models.fourier_measures import key_frequencies, progress_measures, read_model
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


def test_the_progress_measures_see_a_fourier_circuit_and_its_absence():
    p, keys = 17, [3, 5]
    n = torch.arange(p, dtype=torch.float64)
    a, b = n.repeat_interleave(p), n.repeat(p)
    labels = ((a + b) % p).long()
    is_train = torch.rand(p * p, generator=torch.Generator().manual_seed(0)) < 0.3
    # The circuit: logits cos(k(a + b - c)) summed over the key frequencies, and a constant per output.
    circuit = sum(torch.cos(2 * math.pi * k * ((a + b)[:, None] - n[None, :]) / p) for k in keys)
    logits = 4 * circuit + n[None, :] * 0.1
    restricted, excluded = progress_measures(logits, p, is_train, keys)
    full = -logits.log_softmax(-1).gather(-1, labels[:, None]).mean().item()
    assert restricted == pytest.approx(full, rel=1e-9)  # nothing but the key frequencies and a bias
    # Without them each pair's logits are the bias alone, the same for every pair: the loss of that one guess.
    guess = -(n * 0.1).log_softmax(-1)[labels[is_train]].mean().item()
    assert excluded == pytest.approx(guess, rel=1e-9)
    # A memorizing table (random logits) loses nothing when they are taken out, and is not them.
    table = torch.randn(p * p, p, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 4
    memorized = progress_measures(table, p, is_train, keys)
    assert memorized.restricted_loss > math.log(p) * 0.9
    assert memorized.excluded_loss == pytest.approx(progress_measures(table, p, is_train, []).excluded_loss, rel=0.2)

    # The key frequencies are those of the neurons: 20 on frequency 3, 12 on 5, and 1 alone on 7.
    neurons = torch.stack(
        [torch.relu(torch.cos(2 * math.pi * k * (a + b) / p + phase)) for k, count in ((3, 20), (5, 12), (7, 1))
         for phase in torch.linspace(0, 3, count).tolist()],
        dim=1,
    )  # fmt: skip
    found, counts = key_frequencies(neurons, p, min_share=0.05)
    assert found == [3, 5] and counts[3] == 20 and counts[5] == 12 and counts[7] == 1


def test_the_progress_measures_read_the_transformer_on_every_pair():
    torch.manual_seed(0)
    model = OneLayerTransformer(11, d_model=16, n_heads=4, d_mlp=24)
    logits, neurons = read_model(model, 11)
    assert logits.shape == (121, 11) and neurons.shape == (121, 24)
    with torch.no_grad():
        torch.testing.assert_close(logits[3 * 11 + 7], model(torch.tensor([[3, 7]]))[0, :11])
    assert not model.mlp_in._forward_hooks  # the hook is gone


def test_the_measures_command_reads_a_runs_checkpoints_and_refuses_other_runs_in_one_line(tmp_path, capsys):
    cfg = PRESETS["transformer-add"].config(**SMALL)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    trainer = Trainer(cfg)
    for step in (2, 5):
        while trainer.step < step:
            trainer.train_step()
        torch.save(trainer.state(), tmp_path / f"ck{step}.pt")
    fourier_measures.main([str(tmp_path), str(tmp_path / "ck5.pt"), str(tmp_path / "ck2.pt")])
    head, *rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert head["step"] == 5 and set(head["key_frequencies"]) <= {str(k) for k in range(1, 12)}
    assert [row["step"] for row in rows] == [2, 5]
    assert all(row["restricted_loss"] > 0 and row["excluded_loss"] > 0 for row in rows)

    (tmp_path / "bad.pt").write_text("not a checkpoint")
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "config.json").write_text(json.dumps(PRESETS["mod-add"].config().to_dict()))
    for argv in ([str(tmp_path), str(tmp_path / "bad.pt")], [str(tmp_path / "mod"), str(tmp_path / "ck2.pt")]):
        with pytest.raises(SystemExit):
            fourier_measures.main(argv)
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert "Traceback" not in error and error.startswith("python -m grok_tui.models.fourier_measures: error:")
