"""The sweep benchmark: its arithmetic, and that its two contenders train the same members."""

from __future__ import annotations

import pytest

from grok_tui.bench.sweep import Timing, largest_differences, ratios, run_engine, run_pool, table


def test_the_engine_is_judged_against_the_pool_round_by_round():
    ends = {"seed=0": (0.5, 0.25)}
    engine = [Timing(10.0, ends), Timing(20.0, ends), Timing(12.0, ends)]
    pool = [Timing(15.0, ends), Timing(20.0, ends), Timing(18.0, ends)]  # the engine 1.5x, 1x, 1.5x as fast
    assert ratios(engine, pool) == [1.5, 1.0, 1.5]
    # 1,200 member-steps; a member-step of 1 MFLOP; one run at 50 steps/s; a ceiling of 1 GFLOP/s.
    rows = table(1200, 1e6, 50.0, 1e9, {"engine": engine, "pool": pool})
    engine_row, pool_row = (row.split(" | ") for row in rows[2:])
    # Medians: 1200/12 = 100 member-steps/s for the engine, 1200/18 = 67 for the Pool.
    assert engine_row[1:] == ["100", "1.50x (1.00-1.50)", "2.00x", "0.1", "10% |"]
    assert pool_row[1:3] == ["67", "1"]


def test_members_that_differ_are_told_and_a_missing_member_is_infinitely_far():
    a = Timing(1.0, {"x": (1.0, 0.5), "y": (2.0, 1.0)})
    b = Timing(1.0, {"x": (1.1, 0.5), "y": (2.0, 0.75)})
    loss, acc = largest_differences(a, b)
    assert loss == pytest.approx(0.1 / 1.1) and acc == 0.25
    assert largest_differences(a, Timing(1.0, {"x": (1.0, 0.5)})) == (float("inf"), float("inf"))


def test_the_engine_and_the_pool_of_single_runs_train_the_same_members(tmp_path):
    values = {"seed": [0, 1], "steps": [30], "p": [23], "width": [32], "device": ["cpu"]}
    engine = run_engine("mod-add", values, 2, tmp_path)
    pool = run_pool("mod-add", values, 2)
    assert sorted(engine.ends) == sorted(pool.ends) == ["seed=0", "seed=1"]
    assert engine.ends["seed=0"] != engine.ends["seed=1"]
    loss, acc = largest_differences(engine, pool)
    assert loss < 1e-3 and acc < 1e-6
