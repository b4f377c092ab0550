"""Live interventions: each acts at the next step, is logged, and shows its phenomenon."""

import pytest
import torch

from grok_tui.config import PRESETS
from grok_tui.train import Control, Trainer, summarize
from grok_tui.train.interventions import GrokfastFilter, GrokfastSettings, constrain_norm
from tests.conftest import tiny_config


def run_with(cfg, when, act, extra_steps):
    """Train; the first time `when(snapshot)` holds, `act(control)`; stop `extra_steps` later."""
    control, out, fired = Control(), [], []

    def on_snapshot(s):
        out.append(s.metrics)
        if not fired and when(s):
            act(control)
            fired.append(s.step)
        if fired and s.step >= fired[0] + extra_steps:
            control.stop()

    trainer = Trainer(cfg, control=control)
    last = trainer.run(on_snapshot)
    return out, fired[0] if fired else None, last


def test_ungrok_shrinking_the_training_set_makes_test_accuracy_fall():
    # After grokking, train on 100 of the 1,347 pairs: test accuracy falls towards chance
    # (docs/design.md, "Ungrokking").
    cfg = PRESETS["mod-add"].config(weight_decay=1.0, steps=4000, seed=0)
    out, fired, last = run_with(cfg, lambda s: s.metrics.test_acc >= 0.95, lambda c: c.train_size(100), 400)
    assert fired is not None
    before = next(m for m in out if m.step == fired)
    after = out[-1]
    assert before.test_acc >= 0.95 and before.train_size == 1347
    assert after.train_size == 100 and after.train_acc == 1.0  # the subset is still fit
    assert after.test_acc < 0.3
    assert [(e.kind, e.old, e.new) for e in last.events] == [("train_size", None, 100)]


def test_raising_weight_decay_mid_run_triggers_grokking():
    # wd 0.05 memorizes and stalls; switched to 1.0 the same run groks.
    cfg = PRESETS["mod-add"].config(weight_decay=0.05, steps=3000, seed=0)
    out, fired, last = run_with(cfg, lambda s: s.step >= 800, lambda c: c.set("weight_decay", 1.0), 2200)
    at_switch = next(m for m in out if m.step == fired)
    assert at_switch.train_acc == 1.0 and at_switch.test_acc < 0.5
    grokked = summarize([m for m in out if m.step > fired])
    assert grokked["test_step"] is not None


def test_norm_constraint_holds_the_norm_and_can_start_from_the_current_one():
    control = Control()
    trainer = Trainer(tiny_config(steps=40, constrain_norm=5.0), control=control)
    seen, sent = [], set()

    def on_snapshot(s):
        seen.append(s.metrics)
        if s.step == 20 and "off" not in sent:
            control.constrain_norm(None)
            sent.add("off")
        if s.step == 30 and "current" not in sent:
            control.constrain_norm(current=True)
            sent.add("current")

    last = trainer.run(on_snapshot)
    assert all(abs(m.param_norm - 5.0) < 1e-3 for m in seen if 0 < m.step <= 20)
    assert [e.kind for e in last.events] == ["norm_constraint", "norm_constraint"]
    held = last.events[1].new
    assert abs(seen[-1].param_norm - held) < 1e-3 * held


def test_constrain_norm_rescales_every_tensor_by_one_factor():
    params = [torch.nn.Parameter(torch.tensor([3.0, 4.0])), torch.nn.Parameter(torch.tensor([[0.0, 12.0]]))]
    constrain_norm(params, 6.5)  # the norm was 13
    assert torch.allclose(params[0], torch.tensor([1.5, 2.0]))
    assert torch.allclose(params[1], torch.tensor([[0.0, 6.0]]))


def test_grokfast_filter_follows_its_formula():
    p = torch.nn.Parameter(torch.zeros(3))
    f = GrokfastFilter([p], GrokfastSettings(alpha=0.5, lamb=2.0))
    h = None
    for g in (torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0]), torch.tensor([1.0, 1.0, 1.0])):
        p.grad = g.clone()
        f.apply()
        h = g.clone() if h is None else 0.5 * h + 0.5 * g  # the first gradient seeds the average
        assert torch.allclose(f.ema[0], h)
        assert torch.allclose(p.grad, g + 2.0 * h)


def test_intervention_state_survives_resume(tmp_path):
    from grok_tui.train import new_run, resume_run

    control = Control()
    trainer = new_run(tiny_config(steps=30), tmp_path / "r").build(control)

    def on_snapshot(s):
        if s.step == 10 and not s.events:
            control.train_size(50)
            control.grokfast(True)

    trainer.run(on_snapshot)
    again = resume_run(tmp_path / "r", steps=60).build()
    assert again.train_size == 50 and again.grokfast is not None and again.grokfast.ema is not None


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_training_subset_is_refused(bad):
    with pytest.raises(ValueError):
        Control().train_size(bad)
