"""Semi-grokking (circuit efficiency, Varma et al. 2023): near the critical dataset
size a run memorizes, waits, then generalizes only part-way, and settles there;
well above that size the same run groks fully."""

from grok_tui.config import PRESETS
from grok_tui.metrics import FIT_ACC
from grok_tui.train import Control, Trainer


def curve(cfg):
    out = []
    Trainer(cfg, control=Control()).run(lambda s: out.append(s.metrics))
    return out


def test_semi_grok_preset_settles_part_way_after_a_delay():
    cfg = PRESETS["semi-grok"].config(seed=0, steps=12_000, eval_every=100)
    out = curve(cfg)
    fit = next(m for m in out if m.train_acc >= FIT_ACC)
    assert fit.step <= 1000 and fit.test_acc < 0.3  # memorized first
    risen = next(m for m in out if m.test_acc >= fit.test_acc + 0.15)
    assert risen.step >= 5 * fit.step  # then, much later, generalization sets in
    last = out[-1]
    assert last.train_acc == 1.0
    assert 0.35 < last.test_acc < 0.8  # part-way: well above the fit, well short of grokked
    settled = next(m for m in out if m.step == 8000)
    assert abs(last.test_acc - settled.test_acc) < 0.05  # and it has settled there


def test_above_the_critical_size_the_same_run_groks_fully():
    cfg = PRESETS["semi-grok"].config(seed=0, train_frac=0.3, steps=3000, eval_every=100)
    assert max(m.test_acc for m in curve(cfg)) >= 0.95
