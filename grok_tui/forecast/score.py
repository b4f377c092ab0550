"""How good the forecast is, on runs it was not fitted on, beside the settings-only baseline.

Per experiment: AUROC of p against the label; the share of generalizing runs whose predicted step is within
2x of the actual (the step model's prediction given that it generalizes); how early the forecast came (the
median of forecast step / actual step among those that generalized); and, among runs that share their
settings and differ only by seed, the share of (generalized, not) pairs the forecast orders rightly (the
baseline, seeing the same settings, can only tie them: 0.5).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grok_tui.forecast.data import Example
from grok_tui.forecast.model import ExperimentFit, Fit, FitError, base_forecast, curve_forecast


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The probability that a random positive scores above a random negative, ties counting half
    (Mann-Whitney, from average ranks); NaN without both classes."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over runs of equal scores
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def within(predicted: Sequence[float | None], actual: Sequence[float], factor: float = 2.0) -> float:
    """The share of predictions within `factor` of the actual value (a missing one counts as a miss)."""
    if not actual:
        return math.nan
    hits = [p is not None and a / factor <= p <= a * factor for p, a in zip(predicted, actual, strict=True)]
    return sum(hits) / len(hits)


def paired(scores: Sequence[float], labels: Sequence[bool], groups: Sequence[str]) -> tuple[float, int]:
    """Within each group, the share of (positive, negative) pairs scored in the right order (ties half),
    over all groups; and the number of pairs (NaN, 0 where no group holds both)."""
    by: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for s, y, g in zip(scores, labels, groups, strict=True):
        by[g].append((s, y))
    right, pairs = 0.0, 0
    for members in by.values():
        for sp, yp in members:
            for sn, yn in members:
                if yp and not yn:
                    pairs += 1
                    right += 1.0 if sp > sn else 0.5 if sp == sn else 0.0
    return (right / pairs if pairs else math.nan), pairs


@dataclass(frozen=True)
class Score:
    experiment: str
    members: int
    generalized: int
    auroc: float
    base_auroc: float
    within_2x: float
    base_within_2x: float
    earliness: float  # median forecast step / step at LABEL_ACC, among those that generalized
    paired: float
    base_paired: float
    pairs: int


def score(examples: Sequence[Example], model: ExperimentFit, experiment: str) -> Score:
    p, base_p, steps, base_steps = [], [], [], []
    for e in examples:
        pc, sc = curve_forecast(e.x, e.step, model)
        pb, sb = base_forecast(e.x, model)
        p.append(pc)
        base_p.append(pb)
        # It has not generalized at the forecast point (test accuracy is below OPEN_ACC), so not before it.
        steps.append(None if sc is None else max(sc, e.step))
        base_steps.append(None if sb is None else max(sb, e.step))
    y = [e.generalized for e in examples]
    pos = [i for i, e in enumerate(examples) if e.generalized and e.step_90 is not None]
    actual = [float(examples[i].step_90 or 0) for i in pos]
    groups = [e.settings_key for e in examples]
    pr, n = paired(p, y, groups)
    pb, _ = paired(base_p, y, groups)
    early = [examples[i].step / (examples[i].step_90 or 1) for i in pos]
    return Score(
        experiment=experiment,
        members=len(examples),
        generalized=sum(y),
        auroc=auroc(p, y),
        base_auroc=auroc(base_p, y),
        within_2x=within([steps[i] for i in pos], actual),
        base_within_2x=within([base_steps[i] for i in pos], actual),
        earliness=float(np.median(early)) if early else math.nan,
        paired=pr,
        base_paired=pb,
        pairs=n,
    )


def held_out(examples: Sequence[Example], fit: Fit) -> list[Example]:
    """The examples whose course no fitted member shared."""
    return [e for e in examples if e.key not in fit.fitted_on]


def score_all(examples: Sequence[Example], fit: Fit) -> tuple[list[Score], list[str]]:
    """A score per experiment among the held-out examples; and a line for each experiment with no fit."""
    by: dict[str, list[Example]] = defaultdict(list)
    for e in held_out(examples, fit):
        by[e.experiment].append(e)
    scores, notes = [], []
    for experiment in sorted(by):
        try:
            model = fit.of(experiment)
        except FitError as e:
            notes.append(str(e))
            continue
        scores.append(score(by[experiment], model, experiment))
    return scores, notes


def _f(x: float, pct: bool = False) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.0%}" if pct else f"{x:.2f}"


def table(scores: Sequence[Score]) -> str:
    """The scores as a Markdown table (the README's)."""
    lines = [
        "| experiment | held-out members (generalized) | AUROC (baseline) | steps within 2x (baseline) "
        "| forecast step / actual (median) | same settings, seed pairs ordered (pairs) |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.experiment} | {s.members} ({s.generalized}) | {_f(s.auroc)} ({_f(s.base_auroc)}) "
            f"| {_f(s.within_2x, True)} ({_f(s.base_within_2x, True)}) | {_f(s.earliness)} "
            f"| {_f(s.paired)} vs {_f(s.base_paired)} ({s.pairs}) |"
        )
    return "\n".join(lines)
