"""Every CPU preset shows its phenomenon: memorize first, generalize much later (seeded)."""

import pytest

from grok_tui.config import DEFAULT_EXPERIMENT, PRESETS
from grok_tui.train import Control, Trainer, summarize

# The default has its own test (test_trainer.py); the transformer takes ~20 minutes of a core to grok
# (README, "Nanda et al.'s transformer"; test_transformer.py checks its setting).
# The alpha-1 twins show no delay on purpose: they are the control (test_omnigrok.py checks them).
# semi-grok stops part-way on purpose (test_semigrok.py). The PAIR article's model takes 50,000
# steps; test_article.py checks its story on a shortened schedule, and its unfactored control.
CPU_PRESETS = [
    name
    for name in PRESETS
    if name not in (DEFAULT_EXPERIMENT, "transformer-add", "semi-grok")
    and not name.endswith("-a1")
    and not name.startswith("pair-article")
]


def run_until_generalized(cfg):
    control, out = Control(), []

    def on_snapshot(s):
        out.append(s.metrics)
        if s.metrics.test_acc >= 0.95:
            control.stop()

    Trainer(cfg, control=control).run(on_snapshot)
    return out


@pytest.mark.parametrize("name", CPU_PRESETS)
def test_preset_groks(name):
    cfg = PRESETS[name].config(seed=0, device="cpu")
    chance = {"parity": 0.5, "digits": 0.1, "teacher": 0.0}.get(cfg.task, 1 / cfg.p)
    out = run_until_generalized(cfg)
    s = summarize(out)
    assert s["train_step"] is not None and s["test_step"] is not None, s
    assert s["test_step"] >= 5 * s["train_step"], s  # a delay, not plain learning
    at_fit = next(m for m in out if m.step == s["train_step"])
    assert at_fit.test_acc < (1 + chance) / 2  # memorized, not yet halfway from chance to generalized


def test_the_summed_embedding_mlp_is_only_offered_for_commutative_operations():
    ops = {PRESETS[name].config().op for name in PRESETS if PRESETS[name].config().model == "sum_mlp"}
    assert ops <= {"+", "*"}
    assert {PRESETS[f"concat-{n}"].config().op for n in ("add", "sub", "mul", "div")} == {"+", "-", "*", "/"}
