"""The monitor benchmark's training-speed table over alternated rounds (grok_tui/bench/rates.py, report.py)."""

from __future__ import annotations

import pytest

from grok_tui.bench.rates import Rate, over_rounds
from grok_tui.bench.report import print_rates


def round_of(headless: float | None, tmux: float | None) -> list[Rate]:
    return [Rate("headless", headless), Rate("monitor (tmux 120x40)", tmux, notes=["cores: ui 0.1"])]


def test_the_monitors_ratio_is_taken_round_by_round_not_across_a_drifting_box():
    # The box slows by a quarter between rounds; each round the monitor keeps 98-99% of its headless run.
    rounds = [round_of(400.0, 396.0), round_of(300.0, 294.0), round_of(420.0, 413.0)]
    headless, tmux = over_rounds(rounds)
    assert tmux.ratios == pytest.approx([0.99, 0.98, 413 / 420])
    assert tmux.ratio(headless) == pytest.approx(413 / 420)  # the median round's ratio
    # The steps/s shown are each mode's median round; one window of each taken a round apart (headless
    # 420, then the monitor 294) would have read 0.70.
    assert (headless.steps_per_s, tmux.steps_per_s) == (400.0, 396.0)
    assert headless.ratios == [] and "ratio per round 0.98-0.99 over 3 rounds" in tmux.notes


def test_a_failed_round_is_left_out_of_the_ratio_and_said():
    rounds = [round_of(400.0, None), round_of(400.0, 392.0), round_of(None, 380.0)]
    _, tmux = over_rounds(rounds)
    assert tmux.ratios == pytest.approx([0.98])
    assert "failed in 1 of 3 rounds" in tmux.notes
    everywhere = over_rounds([[Rate("headless", 400.0), Rate("monitor (run_test)", notes=["failed: boom"])]] * 2)
    assert everywhere[1].steps_per_s is None and everywhere[1].notes == ["failed: boom"]


def test_the_table_prints_the_median_ratio_and_judges_it_against_the_goal(capsys):
    rates = over_rounds([round_of(400.0, 380.0), round_of(300.0, 297.0), round_of(420.0, 412.0)])
    print_rates("cpu", rates)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("monitor (tmux"))
    assert row.split()[3:5] == ["380.0", "0.98"] and "meets the 0.97 goal" in row and "0.95-0.99 over 3 rounds" in row
