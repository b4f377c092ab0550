"""The forecaster: per experiment, a logistic model of "generalizes within the budget" and a linear model of
log(step to LABEL_ACC / step now), each on standardized features, fitted in plain numpy; and `forecast`,
the one function the CLI, the score and the monitor call on a run's rows.

Before the fit (train accuracy below FIT_ACC) the curves say nothing yet, so the forecast is the settings'
alone (the baseline model, fitted on the same runs); once test accuracy has reached LABEL_ACC it is no
forecast but the fact (p = 1 at the step it did).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from grok_tui.forecast.features import FEATURES, SETTINGS, features
from grok_tui.forecast.point import LABEL_ACC, Row, first_step, fit_step

FIT_FILE = "fit.json"
FORMAT = 1


class FitError(Exception):
    """A fit file that cannot be used, or an experiment it has no fit for: one line saying which."""


@dataclass(frozen=True)
class Linear:
    """w . (x - mean) / scale + bias on the named features; a missing (NaN) feature counts as its mean."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __call__(self, x: Mapping[str, float]) -> float:
        return float(self.batch(np.array([[x.get(n, math.nan) for n in self.names]]))[0])

    def batch(self, x: np.ndarray) -> np.ndarray:
        z = (x - np.array(self.mean)) / np.array(self.scale)
        z = np.where(np.isfinite(z), z, 0.0)
        return np.asarray(z @ np.array(self.weights) + self.bias)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Linear:
        names = tuple(str(n) for n in d["names"])
        parts = [tuple(float(v) for v in d[k]) for k in ("mean", "scale", "weights")]
        if any(len(p) != len(names) for p in parts) or not all(math.isfinite(v) for p in parts for v in p):
            raise ValueError("a linear model's mean, scale and weights must be finite, one per feature")
        if any(s <= 0 for s in parts[1]):
            raise ValueError("a linear model's scales must be positive")
        return cls(names, parts[0], parts[1], parts[2], float(d["bias"]))


def _standardize(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns to (weighted) mean 0, sd 1 (a constant or all-NaN column: scale 1, so it adds nothing); NaN to 0."""
    ok = np.isfinite(x)
    count = (ok * w[:, None]).sum(0)
    clean = np.where(ok, x, 0.0)
    mean = (clean * w[:, None]).sum(0) / np.maximum(count, 1e-12)
    sd = np.sqrt((np.where(ok, x - mean, 0.0) ** 2 * w[:, None]).sum(0) / np.maximum(count, 1e-12))
    sd = np.where(sd > 1e-9, sd, 1.0)
    z = np.where(ok, (clean - mean) / sd, 0.0)
    return z, mean, sd


def fit_logistic(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], ridge: float = 1.0, weight: np.ndarray | None = None
) -> Linear:
    """L2-penalized logistic regression by Newton's method (the bias unpenalized); `weight`: each row's."""
    weight = np.ones(len(y)) if weight is None else weight
    z, mean, sd = _standardize(x, weight)
    a = np.hstack([z, np.ones((len(z), 1))])
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], ridge)
    penalty[-1] = 1e-6
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (weight * (p - y)) + penalty * w
        hess = (a * (weight * p * (1 - p))[:, None]).T @ a + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Linear(tuple(names), tuple(mean), tuple(sd), tuple(w[:-1]), float(w[-1]))


def fit_ridge(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], ridge: float = 1.0, weight: np.ndarray | None = None
) -> Linear:
    """L2-penalized (weighted) least squares (the bias unpenalized)."""
    weight = np.ones(len(y)) if weight is None else weight
    z, mean, sd = _standardize(x, weight)
    a = np.hstack([z, np.ones((len(z), 1))])
    penalty = np.full(a.shape[1], ridge)
    penalty[-1] = 0.0
    aw = a * weight[:, None]
    w = np.linalg.solve(aw.T @ a + np.diag(penalty), aw.T @ y)
    return Linear(tuple(names), tuple(mean), tuple(sd), tuple(w[:-1]), float(w[-1]))


@dataclass(frozen=True)
class ExperimentFit:
    """One experiment's models: the forecast's (curves and settings) and the baseline's (settings only).
    `generalize` gives the log-odds; `steps` log(step to LABEL_ACC / step now) for the forecast, and
    log(step to LABEL_ACC) for the baseline, which knows no 'now'."""

    generalize: Linear
    steps: Linear | None
    base_generalize: Linear
    base_steps: Linear | None
    members: int
    generalizing: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "generalize": self.generalize.to_dict(),
            "steps": None if self.steps is None else self.steps.to_dict(),
            "base_generalize": self.base_generalize.to_dict(),
            "base_steps": None if self.base_steps is None else self.base_steps.to_dict(),
            "members": self.members,
            "generalizing": self.generalizing,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentFit:
        def opt(key: str) -> Linear | None:
            return None if d.get(key) is None else Linear.from_dict(d[key])

        return cls(
            Linear.from_dict(d["generalize"]),
            opt("steps"),
            Linear.from_dict(d["base_generalize"]),
            opt("base_steps"),
            int(d["members"]),
            int(d["generalizing"]),
        )


@dataclass(frozen=True)
class Fit:
    """The fitted models by experiment, and what they were fitted on (so that a score can hold it out)."""

    experiments: dict[str, ExperimentFit]
    sources: dict[str, Any] = field(default_factory=dict)  # the command, the sweeps, the seeds held out
    fitted_on: frozenset[str] = frozenset()  # the trajectory keys (data.trajectory_key) of the members used

    def of(self, experiment: str) -> ExperimentFit:
        if experiment not in self.experiments:
            why = self.sources.get("not_fitted", {}).get(experiment)
            raise FitError(
                f"the forecaster has no fit for the experiment {experiment!r}"
                + (f" ({why})" if isinstance(why, str) else "")
                + f"; it has one for {', '.join(sorted(self.experiments)) or 'none'}"
                "; python -m grok_tui.forecast.fit fits one"
            )
        return self.experiments[experiment]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "sources": self.sources,
            "experiments": {k: v.to_dict() for k, v in sorted(self.experiments.items())},
            "fitted_on": sorted(self.fitted_on),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Fit:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a forecast fit of format {FORMAT}")
        experiments = {str(k): ExperimentFit.from_dict(v) for k, v in d["experiments"].items()}
        return cls(experiments, dict(d.get("sources", {})), frozenset(str(k) for k in d.get("fitted_on", [])))


def load_fit(path: Path | None = None) -> Fit:
    """The fit in `path`, or the one shipped in the package; FitError (one line) if it cannot be used."""
    where = str(path) if path is not None else f"grok_tui/forecast/{FIT_FILE}"
    try:
        if path is None:
            text = resources.files("grok_tui.forecast").joinpath(FIT_FILE).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return Fit.from_dict(json.loads(text))
    except FileNotFoundError:
        raise FitError(f"{where}: no such fit file; python -m grok_tui.forecast.fit writes one") from None
    except OSError as e:
        raise FitError(f"cannot read {where}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise FitError(f"{where} is not a usable forecast fit ({type(e).__name__}: {e})") from None


def save_fit(fit: Fit, path: Path) -> None:
    Path(path).write_text(json.dumps(fit.to_dict(), indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Forecast:
    """At `step`: the probability that test accuracy reaches LABEL_ACC within the budget, and the step at
    which it is expected to (None where that is unlikely, p < 0.5). `basis` says what it rests on:
    'settings' (before the fit), 'curves' (from the fit on), or 'observed' (it has happened)."""

    step: int
    p_generalize: float
    expected_step: int | None
    basis: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "p_generalize": round(self.p_generalize, 4), "expected_step": self.expected_step}


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, x))))


def curve_forecast(x: Mapping[str, float], t: int, model: ExperimentFit) -> tuple[float, float | None]:
    """p and the expected step from the curves' features at step t (None without a step model)."""
    p = _sigmoid(model.generalize(x))
    step = None if model.steps is None else t * math.exp(model.steps(x))
    return p, step


def base_forecast(x: Mapping[str, float], model: ExperimentFit) -> tuple[float, float | None]:
    """p and the expected step from the settings alone."""
    p = _sigmoid(model.base_generalize(x))
    step = None if model.base_steps is None else math.exp(model.base_steps(x))
    return p, step


def forecast(rows: Sequence[Row], settings: Mapping[str, Any], fit: Fit) -> Forecast:
    """The forecast at the last of `rows` (a run's metrics rows, oldest first, up to the step asked about:
    nothing after it is read). `settings`: the run's config (its `experiment`, `steps`, `init_scale`...).
    FitError if the fit has no model for the run's experiment; ValueError if there are no rows."""
    model = fit.of(str(settings.get("experiment")))
    x = features(rows, settings)
    t = int(rows[-1]["step"])
    done = first_step(rows, "test_acc", LABEL_ACC)
    if done is not None:
        return Forecast(t, 1.0, done, "observed")
    if fit_step(rows) is None:
        p, step = base_forecast(x, model)
        basis = "settings"
    else:
        p, step = curve_forecast(x, t, model)
        basis = "curves"
    expected = None if step is None or p < 0.5 or not math.isfinite(step) else max(int(round(step)), t)
    return Forecast(t, p, expected, basis)


__all__ = ["FEATURES", "SETTINGS", "Fit", "FitError", "Forecast", "forecast", "load_fit"]
