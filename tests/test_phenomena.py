"""The seed documents' claims, on settings that run in seconds on a CPU."""

from grok_tui.config import PRESETS
from grok_tui.train import Trainer, summarize


def first_at(metrics, step):
    return next(m for m in metrics if m.step >= step)


def concat_run(weight_decay, steps):
    cfg = PRESETS["concat-add"].config(weight_decay=weight_decay, steps=steps, eval_every=10, seed=0, device="cpu")
    out = []
    Trainer(cfg).run(lambda s: out.append(s.metrics))
    return out


def test_concat_mlp_weight_decay_5_removes_the_delay_of_0_03():
    # Kitouni: wd 0.03 memorizes at once and generalizes only much later; wd 5 generalizes at once.
    slow = concat_run(0.03, steps=600)
    s = summarize(slow)
    assert s["train_step"] is not None and s["train_step"] <= 60
    assert first_at(slow, 600).test_acc < 0.2  # memorized, not generalized, 10x later

    fast = summarize(concat_run(5.0, steps=150))
    assert fast["test_step"] is not None and fast["test_step"] <= 150
