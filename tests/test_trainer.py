import pytest
import torch

from grok_tui.config import PRESETS
from grok_tui.runlog import read_jsonl
from grok_tui.train import Control, Trainer, new_run, summarize
from tests.conftest import tiny_config

VOLATILE = ("elapsed_s", "steps_per_s")


def rows(snapshots):
    return [{k: v for k, v in s.metrics.to_dict().items() if k not in VOLATILE} for s in snapshots]


def run(trainer):
    out = []
    trainer.run(out.append)
    return out


def test_same_config_and_seed_give_identical_metrics():
    a, b = run(Trainer(tiny_config(seed=3))), run(Trainer(tiny_config(seed=3)))
    assert rows(a) == rows(b)
    c = run(Trainer(tiny_config(seed=4)))
    assert rows(a) != rows(c)


def test_weight_decay_change_applies_at_the_next_step_and_is_logged(tmp_path):
    cfg = tiny_config(steps=30, eval_every=10, weight_decay=0.1)
    control = Control()
    trainer = new_run(cfg, tmp_path / "run").build(control)

    def on_snapshot(s):
        if s.step == 10 and s.metrics.weight_decay == 0.1:
            control.set("weight_decay", 5.0)

    snaps = []
    trainer.run(lambda s: (snaps.append(s), on_snapshot(s)))

    # The same run by hand: 10 steps at 0.1, then 20 at 5.0.
    ref = Trainer(cfg)
    for _ in range(10):
        ref.train_step()
    for group in ref.optimizer.param_groups:
        group["weight_decay"] = 5.0
    for _ in range(20):
        ref.train_step()
    for p, q in zip(trainer.model.parameters(), ref.model.parameters(), strict=True):
        assert torch.equal(p, q)

    events = read_jsonl(tmp_path / "run" / "events.jsonl")
    assert events == [{"step": 10, "kind": "weight_decay", "old": 0.1, "new": 5.0}]
    metrics = {r["step"]: r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")}
    assert metrics[10]["weight_decay"] == 0.1 and metrics[20]["weight_decay"] == 5.0
    assert snaps[-1].events[0].step == 10


def test_control_rejects_bad_values():
    control = Control()
    for bad in ("abc", -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            control.set("weight_decay", bad)
    with pytest.raises(ValueError):
        control.set("lr", 0)
    assert control.get(timeout=0) is None


def test_pause_holds_the_step_and_stop_ends_the_run():
    control = Control()
    trainer = Trainer(tiny_config(steps=10_000), control=control)
    seen = []

    def on_snapshot(s):
        seen.append(s)
        if s.step == 20 and not s.paused and not any(e.kind == "paused" for e in s.events):
            control.pause()
        elif s.paused:
            control.stop()

    trainer.run(on_snapshot)
    assert seen[-1].step == 20 and seen[-1].paused
    assert [e.kind for e in seen[-1].events] == ["paused"]


def test_default_experiment_groks_on_seed_0():
    cfg = PRESETS["mod-add"].config(steps=3500, eval_every=10, device="cpu", seed=0)
    s = summarize([snap.metrics for snap in run(Trainer(cfg))])
    assert s["train_step"] is not None and s["train_step"] <= 200
    assert s["test_step"] is not None
    assert s["test_step"] >= 5 * s["train_step"]


def test_nan_loss_pauses_with_a_fault():
    control = Control()
    trainer = Trainer(tiny_config(steps=100, lr=10.0, weight_decay=100.0), control=control)

    def on_snapshot(s):
        if s.fault:
            control.stop()

    last = trainer.run(on_snapshot)
    assert last.fault and "not finite" in last.fault
    assert any(e.kind == "fault" for e in last.events)
