"""Fit the forecaster on the members of sweeps: `python -m grok_tui.forecast.fit SWEEP_DIR... [--out FILE]`.

Each member at its forecast point is one example; members whose seed is in --hold-out-seed are left out of
the fit (and recorded, with every member fitted on, in the file: `grok-tui forecast --score` scores only
members whose course none of them shared). --held-out names sweeps only scored, never fitted on. --ablate
prints each feature's own AUROC on the fitted members, then refits without each signal in turn and prints
the held-out AUROC and steps within 2x: what each signal carries.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grok_tui.forecast.data import Example, check_sweep, sweep_examples
from grok_tui.forecast.features import FEATURES, SETTINGS, SIGNALS
from grok_tui.forecast.model import FIT_FILE, ExperimentFit, Fit, fit_logistic, fit_ridge, save_fit
from grok_tui.forecast.score import auroc, held_out, score_all, table

DEFAULT_OUT = Path(__file__).with_name(FIT_FILE)
RIDGE = 1.0
MIN_STEPS = 3  # generalizing members below which the step model is their mean alone


def fit_experiment(examples: Sequence[Example], names: Sequence[str] = FEATURES, ridge: float = RIDGE) -> ExperimentFit:
    """One experiment's models; ValueError unless its examples hold both outcomes."""
    y = np.array([e.generalized for e in examples], dtype=float)
    if y.min() == y.max():
        outcome = "generalized" if y[0] else "stayed memorized"
        raise ValueError(f"all {len(y)} of its examples {outcome}: a forecast needs both outcomes to learn from")
    base = list(SETTINGS)

    def matrix(rows: Sequence[Example], cols: Sequence[str]) -> np.ndarray:
        return np.array([[e.x.get(c, math.nan) for c in cols] for e in rows], dtype=float)

    # The curves' models learn from each run's forecast point and its later open points, a run weighing
    # one in all; the baseline's, from the settings, which are the same at every point.
    points = [(e, t, x, 1 / (1 + len(e.later))) for e in examples for t, x in ((e.step, e.x), *e.later)]
    xs = np.array([[x.get(c, math.nan) for c in names] for _, _, x, _ in points], dtype=float)
    ys = np.array([e.generalized for e, *_ in points], dtype=float)
    ws = np.array([w for *_, w in points])
    pos = [e for e in examples if e.generalized and e.step_90 is not None]
    up = [k for k, (e, *_) in enumerate(points) if e.generalized and e.step_90 is not None]
    # Too few generalizing runs to learn how the step varies: the mean (of the ratio, or of the step) alone.
    timed, base_timed = (names, base) if len(pos) >= MIN_STEPS else ((), ())
    if not timed:  # a mean ratio holds at the forecast point only: later points have less of the wait left
        up = [k for k in up if points[k][1] == points[k][0].step]
    ratio = np.log(np.array([(points[k][0].step_90 or 1) / points[k][1] for k in up]))
    first_90 = np.log([float(e.step_90 or 1) for e in pos])
    return ExperimentFit(
        generalize=fit_logistic(xs, ys, names, ridge, ws),
        steps=fit_ridge(xs[up][:, : len(timed)], ratio, timed, ridge, ws[up]),
        base_generalize=fit_logistic(matrix(examples, base), y, base, ridge),
        base_steps=fit_ridge(matrix(pos, base_timed), first_90, base_timed, ridge),
        members=len(examples),
        generalizing=len(pos),
    )


def fit_all(
    examples: Sequence[Example], names: Sequence[str] = FEATURES, ridge: float = RIDGE
) -> tuple[dict[str, ExperimentFit], list[str]]:
    """A fit per experiment; and a line for each experiment that could not be fitted."""
    by: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by[e.experiment].append(e)
    fits, notes = {}, []
    for experiment, group in sorted(by.items()):
        try:
            fits[experiment] = fit_experiment(group, names, ridge)
        except ValueError as e:
            notes.append(f"{experiment}: not fitted: {e}")
    return fits, notes


def _seeds(text: str) -> set[int]:
    try:
        return {int(s) for s in text.split(",") if s.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of seeds such as 1 or 1,2") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grok_tui.forecast.fit", description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", metavar="SWEEP_DIR", nargs="+")
    parser.add_argument("--out", metavar="FILE", default=str(DEFAULT_OUT), help="where to write the fit")
    parser.add_argument("--hold-out-seed", metavar="N[,N]", type=_seeds, default=set(), help="seeds not fitted on")
    parser.add_argument("--ridge", metavar="L", type=float, default=RIDGE, help=f"L2 penalty (default {RIDGE})")
    parser.add_argument("--ablate", action="store_true", help="print the held-out score without each signal")
    parser.add_argument(
        "--held-out",
        metavar="SWEEP_DIR",
        nargs="+",
        default=[],
        help="sweeps only scored (with --hold-out-seed's members), never fitted on: the score and --ablate read them",
    )
    args = parser.parse_args(argv)
    if not (args.ridge > 0 and math.isfinite(args.ridge)):
        parser.error(f"--ridge: {args.ridge} is not a positive number")
    for root in [*args.sweeps, *args.held_out]:
        problem = check_sweep(Path(root))
        if problem:
            parser.error(problem)
    notices: list[str] = []
    examples, skipped = sweep_examples([Path(r) for r in args.sweeps], lambda _, line: notices.append(line))
    for line in dict.fromkeys(notices):
        print(f"warning: {line}", file=sys.stderr)
    train = [e for e in examples if e.seed not in args.hold_out_seed]
    test = [e for e in examples if e.seed in args.hold_out_seed]
    fits, notes = fit_all(train, FEATURES, args.ridge)
    for line in notes:
        print(line, file=sys.stderr)
    if not fits:
        print("no experiment could be fitted", file=sys.stderr)
        return 2
    sources = {
        "command": "python -m grok_tui.forecast.fit " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "sweeps": [str(Path(r)) for r in args.sweeps],
        "held_out_seeds": sorted(args.hold_out_seed),
        "ridge": args.ridge,
        "examples": {
            k: {"fitted": v.members, "generalizing": v.generalizing, "skipped": str(skipped.get(k, ""))}
            for k, v in fits.items()
        },
        # Experiments among the members with no fit, and why: `grok-tui forecast` says so for their runs.
        "not_fitted": {
            k: (
                next((n.split(": not fitted: ", 1)[1] for n in notes if n.startswith(f"{k}: ")), None)
                or f"none of its members in the seeds fitted on has a forecast point; of all its members: {skipped[k]}"
            )
            for k in sorted(skipped)
            if k not in fits
        },
    }
    fit = Fit(fits, sources, frozenset(e.key for e in train if e.experiment in fits))
    save_fit(fit, Path(args.out))
    for k, v in fits.items():
        print(f"{k}: fitted on {v.members} members ({v.generalizing} generalized); skipped {skipped.get(k, '')}")
    print(f"wrote {args.out}")
    if args.held_out:
        more, _ = sweep_examples([Path(r) for r in args.held_out], lambda _, line: notices.append(line))
        test = held_out([*test, *more], fit)
    if test:
        scores, _ = score_all(test, fit)
        print(table(scores))
    if args.ablate and test:
        _ablate(train, test, args.ridge)
    return 0


def _ablate(train: Sequence[Example], test: Sequence[Example], ridge: float) -> None:
    """Each feature's own AUROC on the fitted members (as |AUROC - 0.5| + 0.5: a signal that falls before
    grokking counts as much as one that rises), then the held-out AUROC and steps within 2x with every
    signal, and without each one in turn."""
    experiments = sorted({e.experiment for e in train})
    print("feature (AUROC alone, fitted members) | " + " | ".join(experiments))
    for name in FEATURES:
        cells = []
        for experiment in experiments:
            group = [e for e in train if e.experiment == experiment]
            a = auroc([e.x[name] if math.isfinite(e.x[name]) else 0.0 for e in group], [e.generalized for e in group])
            cells.append("-" if math.isnan(a) else f"{abs(a - 0.5) + 0.5:.2f}")
        print(f"{name} | " + " | ".join(cells))
    print("signal dropped | " + " | ".join(sorted({e.experiment for e in test})))
    for dropped in ("none", "settings", *SIGNALS):
        gone = set(SETTINGS) if dropped == "settings" else set(SIGNALS.get(dropped, ()))
        names = [n for n in FEATURES if n not in gone]
        fits, _ = fit_all(train, names, ridge)
        scores, _ = score_all(test, Fit(fits))
        shown = {s.experiment: f"{s.auroc:.2f} / {s.within_2x:.0%}" for s in scores}
        print(f"{dropped} | " + " | ".join(shown.get(x, "-") for x in sorted({e.experiment for e in test})))


if __name__ == "__main__":
    sys.exit(main())
