"""Each phase rule on synthetic curves: the shapes the papers describe, drawn by hand."""

from __future__ import annotations

import pytest

from grok_tui.sweep.phases import PhaseRule, check, classify, milestones, settled


def curves(train, test, steps=1000, every=10, train_loss=None, test_loss=None):
    """Rows from functions of the step."""
    rows = []
    for step in range(0, steps + 1, every):
        row = {"step": step, "train_acc": train(step), "test_acc": test(step)}
        if train_loss is not None:
            row["train_loss"], row["test_loss"] = train_loss(step), test_loss(step)
        rows.append(row)
    return rows


def ramp(start, end, lo=0.0, hi=1.0):
    return lambda s: lo if s < start else hi if s >= end else lo + (hi - lo) * (s - start) / (end - start)


RULE = PhaseRule()  # 90%, gap = a tenth of the budget (100 of 1,000 steps)


@pytest.mark.parametrize(
    "train, test, phase",
    [
        (ramp(0, 50), ramp(0, 80), "comprehension"),  # test within the gap of train
        (ramp(0, 50), ramp(400, 600), "grokking"),  # test long after train
        (ramp(0, 50), lambda s: 0.05, "memorization"),  # test never
        (lambda s: 0.3, lambda s: 0.05, "confusion"),  # train never
        (ramp(0, 50), ramp(300, 700, 0.05, 0.6), "semi-grokking"),  # test climbs late, settles part-way
        (ramp(0, 50), ramp(0, 50, 0.0, 0.55), "memorization"),  # part-way at once: no rise after the fit
    ],
)
def test_accuracy_rule(train, test, phase):
    assert classify(curves(train, test), 1000, RULE, finished=True) == phase


def test_a_running_member_is_undecided_until_it_can_be_told():
    grokking_later = curves(ramp(0, 50), lambda s: 0.05, steps=300)
    assert classify(grokking_later, 1000, RULE, finished=False) is None  # may still generalize
    assert classify(grokking_later, 1000, RULE, finished=True) == "memorization"
    generalized = curves(ramp(0, 50), ramp(200, 300), steps=300)
    assert classify(generalized, 1000, RULE, finished=False) == "grokking"  # decided as soon as test is there


def test_thresholds_are_settings():
    rows = curves(ramp(0, 50), ramp(150, 250))  # test reaches 90% at 240, train at 50: a gap of 190
    assert classify(rows, 1000, RULE, finished=True) == "grokking"
    assert classify(rows, 1000, PhaseRule(gap=200), finished=True) == "comprehension"
    assert classify(rows, 5000, RULE, finished=True) == "comprehension"  # default gap: a tenth of 5,000
    # A lower level: 50% is reached at 30 by train and at 200 by test, a gap of 170.
    assert classify(rows, 1000, PhaseRule(level=0.5, gap=170), finished=True) == "comprehension"
    assert classify(rows, 1000, PhaseRule(level=0.5, gap=169), finished=True) == "grokking"
    semi = curves(ramp(0, 50), ramp(300, 700, 0.05, 0.2))
    assert classify(semi, 1000, RULE, finished=True) == "semi-grokking"  # rose 0.15 >= 0.1
    assert classify(semi, 1000, PhaseRule(semi_rise=0.3), finished=True) == "memorization"


def test_loss_rule():
    rule = PhaseRule(rule="loss")
    fit = ramp(0, 50, 4.0, 0.01)
    # Generalizing: test loss comes down to within 2x of train loss, long after train fit.
    rows = curves(ramp(0, 50), ramp(400, 600), train_loss=fit, test_loss=ramp(400, 600, 8.0, 0.015))
    assert classify(rows, 1000, rule, finished=True) == "grokking"
    rows = curves(ramp(0, 50), ramp(0, 60), train_loss=fit, test_loss=ramp(0, 60, 4.0, 0.012))
    assert classify(rows, 1000, rule, finished=True) == "comprehension"
    rows = curves(ramp(0, 50), lambda s: 0.1, train_loss=fit, test_loss=lambda s: 9.0)
    assert classify(rows, 1000, rule, finished=True) == "memorization"
    rows = curves(lambda s: 0.1, lambda s: 0.1, train_loss=lambda s: 4.0, test_loss=lambda s: 4.0)
    assert classify(rows, 1000, rule, finished=True) == "confusion"
    # At the start test and train losses are alike: that is not generalizing before train has fit.
    assert classify(rows, 1000, rule, finished=False) is None


def test_milestones_and_settled():
    rows = curves(ramp(0, 100), ramp(500, 1000))
    m = milestones(rows)
    assert (m["train_90"], m["train_95"], m["train_99"]) == (90, 100, 100)
    assert (m["test_90"], m["test_95"], m["test_99"]) == (950, 980, 1000)
    assert settled(curves(lambda s: 0.2, lambda s: 0.6), "test_acc") == pytest.approx(0.6)
    assert milestones([]) == {k: None for k in m}


@pytest.mark.parametrize(
    "rule, words",
    [
        (PhaseRule(rule="vibes"), "--phase-rule"),
        (PhaseRule(level=1.5), "--phase-level"),
        (PhaseRule(gap=-1), "--phase-gap"),
        (PhaseRule(semi_rise=0.0), "--semi-rise"),
        (PhaseRule(loss_fit=2.0), "--loss-fit"),
        (PhaseRule(loss_ratio=0.5), "--loss-ratio"),
    ],
)
def test_bad_rules_name_their_flag(rule, words):
    with pytest.raises(ValueError, match=words):
        check(rule)
