"""The loop benchmark's arithmetic: each round's mode over that round's bare run, and the verdict on the goal."""

from __future__ import annotations

from grok_tui.bench.loop import GOAL, MODES, Timing, report


def test_ratios_are_taken_round_by_round_and_judged_against_the_goal():
    bare = [Timing(300.0, 10.0, 0), Timing(200.0, 12.0, 0), Timing(250.0, 11.0, 0)]
    monitor = [Timing(297.0, 10.5, 0), Timing(196.0, 12.5, 0), Timing(245.0, 11.5, 0)]  # 0.99, 0.98, 0.98
    attached = [Timing(270.0, 11.0, 150), Timing(180.0, 13.0, 148), Timing(225.0, 12.0, 152)]  # 0.90 each
    lines = report(dict(zip(MODES, (bare, monitor, attached), strict=True)))
    row = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in MODES}
    assert row["monitor"][1:4] == ["245", "0.980", "0.980-0.990"]  # median rate, median ratio, range
    assert row["attached"][2] == "0.900"
    assert any(f"monitor: the loop keeps 0.980 of its bare speed: meets the goal of {GOAL}" in line for line in lines)
    assert any("attached: the loop keeps 0.900 of its bare speed: misses" in line for line in lines)
    assert any("150 frames" in line for line in lines)
