"""The forecaster (grok_tui/forecast): its AUROC, its forecast point, that it reads nothing after the step
asked about, that a fit separates runs that grok from runs that stay memorized, the shipped fit, and
`grok-tui forecast`'s JSON line and one-line errors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from grok_tui.cli import main
from grok_tui.forecast import FitError, forecast, forecast_index, label, load_fit
from grok_tui.forecast.data import Example, Skipped, example, trajectory_key
from grok_tui.forecast.features import FEATURES, features
from grok_tui.forecast.fit import fit_experiment
from grok_tui.forecast.model import Fit, save_fit
from grok_tui.forecast.score import auroc, paired, score, within
from grok_tui.train import new_run
from tests.conftest import tiny_config

# ---- AUROC and the other scores ---------------------------------------------------------------------------


def test_auroc_is_1_when_every_positive_scores_higher_0_when_inverted_and_half_for_ties():
    labels = [False, False, True, True]
    assert auroc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    assert auroc([0.1, 0.5, 0.5, 0.9], labels) == 0.875  # one tied pair of four counts half
    assert math.isnan(auroc([0.1, 0.2], [True, True]))


def test_auroc_is_the_share_of_positive_negative_pairs_in_order():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    pairs = [(p, n) for p in scores[labels] for n in scores[~labels]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert auroc(scores, labels) == pytest.approx(expected)


def test_within_2x_and_the_pairs_that_share_their_settings():
    assert within([100, 201, 49, None], [100, 100, 100, 100]) == 0.25  # 201 and 49 are just past 2x
    assert within([200, 50], [100, 100]) == 1.0  # 2x itself is within
    right, pairs = paired([0.9, 0.2, 0.4, 0.6], [True, False, True, False], ["a", "a", "b", "b"])
    assert (right, pairs) == (0.5, 2)  # a: ordered; b: not


# ---- the forecast point and the label, on rows made by hand --------------------------------------------------


def rows(train, test, every=100, **extra):
    """Rows at every `every` steps from 0 with these accuracies (and plausible losses and norm)."""
    out = []
    for i, (tr, te) in enumerate(zip(train, test, strict=True)):
        row = dict(step=i * every, train_acc=tr, test_acc=te, train_loss=1 - tr + 1e-3, test_loss=2 - te)
        out.append({**row, "param_norm": 50.0, "weight_decay": 1.0, "lr": 0.01, "l1": 0.0, "train_size": 100, **extra})
    return out


def test_the_forecast_point_is_the_first_fitted_evaluation_at_twice_the_fit_step():
    # Fits at 100; at 200 train dips below 99%, so the point is 300.
    r = rows([0.5, 0.995, 0.98, 1.0, 1.0], [0.0, 0.1, 0.1, 0.2, 0.3])
    assert r[forecast_index(r)]["step"] == 300


def test_a_run_that_generalizes_with_the_fit_or_never_fits_has_no_forecast_point():
    assert forecast_index(rows([0.5, 1.0, 1.0, 1.0], [0.2, 0.6, 0.9, 0.95])) is None  # test >= 50% there
    assert forecast_index(rows([0.1, 0.5, 0.9, 0.98], [0.0, 0.0, 0.1, 0.1])) is None  # never 99%
    assert forecast_index(rows([0.5, 1.0], [0.0, 0.0])) is None  # not yet twice the fit's step


def test_the_label_counts_only_steps_within_the_budget():
    r = rows([1.0] * 6, [0.0, 0.1, 0.2, 0.5, 0.95, 1.0])
    assert label(r, 500) == (True, 400)
    assert label(r, 399) == (False, None)


# ---- a fit on runs made by hand, with the signal in them -----------------------------------------------------


def synthetic(seed, grokking, budget=2000):
    """A run that fits at 100 and, if `grokking`, has a test loss that falls and a norm that shrinks from the
    fit on (and test accuracy that rises past 90% by ~1,000 to 1,400); otherwise both flat, with noise."""
    rng = np.random.default_rng(seed)
    out = []
    for step in range(0, budget + 1, 20):
        late = max(step - 100, 0) / 1000
        fall = rng.uniform(0.6, 1.0) * late if grokking else 0.0
        test_acc = min(0.05 + (0.9 * late**2 / 0.8 if grokking else 0.0), 1.0)
        out.append(
            dict(
                step=step,
                train_acc=1.0 if step >= 100 else step / 100,
                test_acc=test_acc + rng.uniform(0, 0.02),
                train_loss=math.exp(-step / 50) + 1e-4,
                test_loss=3.0 * math.exp(-2 * fall) * rng.uniform(0.97, 1.03),
                param_norm=60 * math.exp(-0.5 * fall) * rng.uniform(0.99, 1.01),
                weight_decay=1.0,
                lr=0.01,
                l1=0.0,
                train_size=600,
                elapsed_s=step / 100,
                steps_per_s=100.0,
            )
        )
    return out


def synthetic_example(seed, grokking):
    r = synthetic(seed, grokking)
    i = forecast_index(r)
    settings = {"experiment": "synthetic", "steps": 2000, "init_scale": 1.0}
    generalized, step_90 = label(r, 2000)
    return Example(
        Path("."), "synthetic", seed, str(seed), "same", r[i]["step"], 2000, features(r[: i + 1], settings),
        generalized, step_90,
    )  # fmt: skip


def test_a_fit_separates_runs_that_grok_from_runs_that_stay_memorized_that_the_settings_cannot():
    train = [synthetic_example(s, s % 2 == 0) for s in range(20)]
    held = [synthetic_example(s, s % 2 == 0) for s in range(100, 120)]
    assert {e.generalized for e in train} == {True, False}
    model = fit_experiment(train)
    result = score(held, model, "synthetic")
    # Every run shares its settings: the baseline can only tie them, the curves tell them apart.
    assert result.auroc >= 0.95 and result.base_auroc == 0.5
    assert result.paired >= 0.95 and result.base_paired == 0.5
    assert result.within_2x >= 0.8


def test_a_fit_needs_both_outcomes():
    with pytest.raises(ValueError, match="all 3 of its examples generalized"):
        fit_experiment([synthetic_example(s, True) for s in range(3)])


def test_the_forecast_is_the_settings_before_the_fit_the_curves_after_and_the_fact_once_it_happened():
    fit = Fit({"synthetic": fit_experiment([synthetic_example(s, s % 2 == 0) for s in range(20)])})
    settings = {"experiment": "synthetic", "steps": 2000, "init_scale": 1.0}
    r = synthetic(7, grokking=True)
    assert forecast(r[:3], settings, fit).basis == "settings"  # train accuracy not yet 99%
    at = forecast(r[: forecast_index(r) + 1], settings, fit)
    assert at.basis == "curves" and at.step == 200
    done = forecast(r, settings, fit)
    assert (done.basis, done.p_generalize, done.expected_step) == ("observed", 1.0, label(r, 2000)[1])


def test_a_train_size_of_0_whole_training_set_is_an_unknown_size_not_a_crash():
    rows = [{k: v for k, v in row.items() if k != "train_size"} for row in synthetic(3, grokking=True)]
    settings = {"experiment": "synthetic", "steps": 2000, "init_scale": 1.0, "train_size": 0}
    assert math.isnan(features(rows, settings)["log_size"])
    fit = Fit({"synthetic": fit_experiment([synthetic_example(s, s % 2 == 0) for s in range(20)])})
    assert 0 <= forecast(rows[: forecast_index(rows) + 1], settings, fit).p_generalize <= 1


# ---- the shipped fit --------------------------------------------------------------------------------------


def test_the_shipped_fit_loads_and_covers_the_experiments_it_claims():
    fit = load_fit()
    claimed = fit.sources["examples"]
    assert set(fit.experiments) == set(claimed) >= {"mod-add", "concat-add", "teacher-student"}
    assert set(fit.sources["not_fitted"]) == {"parity"}  # the README says why
    with pytest.raises(
        FitError, match="no fit for the experiment 'parity' \\(none of its members in the seeds fitted on"
    ):
        fit.of("parity")
    for name, model in fit.experiments.items():
        assert set(model.generalize.names) == set(FEATURES)
        assert model.members == claimed[name]["fitted"] and model.generalizing < model.members
        assert model.steps is not None  # every experiment it ships has generalizing members to time
    assert fit.fitted_on and fit.sources["held_out_seeds"]  # what a score must leave out


def test_a_damaged_fit_file_is_one_line(tmp_path):
    (tmp_path / "fit.json").write_text('{"format": 1, "experiments": {"x": {}}}')
    with pytest.raises(FitError, match="is not a usable forecast fit") as caught:
        load_fit(tmp_path / "fit.json")
    assert len(str(caught.value).splitlines()) == 1


# ---- grok-tui forecast ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny mod-add run, trained to its end (a second), and a fit that knows its experiment."""
    root = tmp_path_factory.mktemp("forecast")
    run_dir = root / "run"
    new_run(tiny_config(experiment="mod-add", steps=60), run_dir).build().run()
    fit = Fit({"mod-add": fit_experiment([synthetic_example(s, s % 2 == 0) for s in range(20)])})
    save_fit(fit, root / "fit.json")
    return run_dir, root / "fit.json"


def cli(capsys, *argv):
    code = main(["forecast", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_prints_one_json_line_from_the_rows_up_to_step(capsys, trained):
    run_dir, fit = trained
    code, out, err = cli(capsys, run_dir, "--at", 35, "--fit", fit)
    assert code == 0 and err == "" and len(out.splitlines()) == 1
    line = json.loads(out)
    assert set(line) == {"step", "p_generalize", "expected_step"}
    assert line["step"] == 30 and 0 <= line["p_generalize"] <= 1
    assert line["expected_step"] is None or line["expected_step"] >= 30
    code, out, _ = cli(capsys, run_dir, "--fit", fit)
    assert code == 0 and json.loads(out)["step"] == 60  # default: the last row


def test_forecast_reads_no_row_after_step(capsys, tmp_path, trained):
    run_dir, fit = trained
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "config.json").write_text((run_dir / "config.json").read_text())
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows_ = [json.loads(line) for line in lines]
    for row in rows_:
        if row["step"] > 30:  # what came later, changed beyond recognition
            row.update(train_acc=0.0, test_acc=1.0, test_loss=100.0, param_norm=1e6, train_loss=50.0)
    (copy / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_))
    assert cli(capsys, run_dir, "--at", 30, "--fit", fit) == cli(capsys, copy, "--at", 30, "--fit", fit)
    assert cli(capsys, run_dir, "--fit", fit) != cli(capsys, copy, "--fit", fit)


def test_forecast_says_in_one_line_what_is_wrong(capsys, tmp_path, trained):
    run_dir, fit = trained
    code, out, err = cli(capsys, tmp_path, "--fit", fit)
    assert code == 2 and out == "" and err.count("\n") == 1 and "holds no config.json" in err
    code, _, err = cli(capsys, run_dir, "--at", 0, "--fit", fit)
    assert code == 0  # the first row is at step 0
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((run_dir / "config.json").read_text())
    (empty / "metrics.jsonl").write_text("")
    code, _, err = cli(capsys, empty, "--fit", fit)
    assert (
        code == 2
        and err
        == f"grok-tui: error: forecast '{empty}': the run has no evaluation yet; a forecast needs at least one\n"
    )
    other = tmp_path / "other"
    new_run(tiny_config(steps=10), other).build().run()  # experiment "tiny": no fit for it
    code, _, err = cli(capsys, other, "--fit", fit)
    assert code == 2 and err.count("\n") == 1 and "no fit for the experiment 'tiny'" in err
    code, _, err = cli(capsys, run_dir, "--at", "soon", "--fit", fit)
    assert code == 2 and err == "grok-tui: error: --at: 'soon' is not a step; expected an integer >= 0\n"


def test_forecast_at_a_step_before_any_row_is_one_line(capsys, tmp_path, trained):
    run_dir, fit = trained
    late = tmp_path / "late"
    late.mkdir()
    (late / "config.json").write_text((run_dir / "config.json").read_text())
    kept = [line for line in (run_dir / "metrics.jsonl").read_text().splitlines() if json.loads(line)["step"] >= 20]
    (late / "metrics.jsonl").write_text("\n".join(kept) + "\n")
    code, out, err = cli(capsys, late, "--at", 10, "--fit", fit)
    assert code == 2 and out == ""
    assert err == f"grok-tui: error: forecast '{late}': no evaluation at or before step 10; its first is at step 20\n"


def test_a_members_trajectory_key_ignores_its_budget_but_not_its_seed():
    config = tiny_config().to_dict()
    assert trajectory_key(config) == trajectory_key({**config, "steps": 99, "device": "cuda"})
    assert trajectory_key(config) != trajectory_key({**config, "seed": 1})


def test_an_unfinished_member_that_has_not_generalized_gives_no_example(trained, tmp_path):
    run_dir, _ = trained
    short = tmp_path / "short"
    short.mkdir()
    config = json.loads((run_dir / "config.json").read_text())
    (short / "config.json").write_text(json.dumps({**config, "steps": 10_000}))
    (short / "metrics.jsonl").write_text((run_dir / "metrics.jsonl").read_text())
    skipped = Skipped()
    found = example(short, skipped)
    assert found is None or found.generalized
    assert found is not None or skipped.unfinished + skipped.no_forecast == 1


def test_a_members_example_is_its_forecast_point_and_its_later_open_points(tmp_path):
    r = synthetic(3, grokking=True)
    (tmp_path / "config.json").write_text(json.dumps({**tiny_config(experiment="mod-add").to_dict(), "steps": 2000}))
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in r))
    found = example(tmp_path, Skipped())
    assert found is not None and found.step == r[forecast_index(r)]["step"] == 200
    assert found.generalized and found.step_90 == label(r, 2000)[1]
    steps = [found.step] + [t for t, _ in found.later]
    assert steps == sorted(steps) and all(b >= 1.5 * a for a, b in zip(steps, steps[1:], strict=False))
    open_rows = {row["step"]: row["test_acc"] for row in r}
    assert found.later and all(open_rows[t] < 0.5 and t < found.step_90 for t, _ in found.later)


def test_a_score_skips_a_damaged_member_with_a_line(capsys, tmp_path):
    from grok_tui.sweep.phases import PhaseRule
    from grok_tui.sweep.store import create_sweep

    info = create_sweep(tmp_path / "s", "mod-add", {"seed": [0, 1], "steps": [10]}, PhaseRule(), 1)
    (info.root / "members" / "seed=1" / "config.json").write_text("{not json")
    code = main(["forecast", "--score", str(info.root)])
    out, err = capsys.readouterr()
    assert "config.json is not valid JSON; member skipped" in err and len(err.splitlines()) == 2
    assert code == 2 and err.splitlines()[-1].startswith("grok-tui: error: forecast --score: no held-out member")
