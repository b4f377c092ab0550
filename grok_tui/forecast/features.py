"""The signals a forecast reads from a run's rows up to a step, and from the settings in force there.

Every feature is a number computed from the rows given and nothing after them; a signal a run lacks (purity
on a model without one) is NaN, which the model reads as the mean of its fit. The window of a trend is the
second half of the run so far, [t/2, t]: the same share of a run's life whatever its length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grok_tui.forecast.point import Row, value

# The settings (the baseline sees only these): in force at the last row where a row carries them.
SETTINGS = ("log_wd", "log_lr", "log_l1", "log_size", "log_init")
# Each signal of the curves, with the features that carry it (the README's ablation drops one signal at a time).
SIGNALS: dict[str, tuple[str, ...]] = {
    "budget": ("budget_left",),
    "test loss trend": ("test_loss_trend",),
    "test accuracy": ("test_acc", "test_acc_rise"),
    "norm": ("norm_turn", "norm_trend"),
    "train loss": ("train_loss",),
    "oscillations": ("loss_osc", "loss_hf"),
    "purity": ("purity", "purity_rise"),
}
CURVES = tuple(name for names in SIGNALS.values() for name in names)
FEATURES = SETTINGS + CURVES


def _log10(x: float, floor: float) -> float:
    """log10(x + floor), NaN (unknown) where that is not a positive number: a config's `train_size` 0, say,
    means the whole training set, whose size the config does not hold."""
    return math.log10(x + floor) if math.isfinite(x) and x >= 0 and x + floor > 0 else math.nan


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x over the finite points (NaN with fewer than three)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return math.nan
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def _at(steps: np.ndarray, values: np.ndarray, step: float) -> float:
    """The value at the last row at or before `step`."""
    i = int(np.searchsorted(steps, step, side="right")) - 1
    return float(values[i]) if i >= 0 else math.nan


def _oscillation(log_loss: np.ndarray) -> tuple[float, float]:
    """How much the log training loss shakes about its own trend: the rms of what a centred 5-point moving
    average leaves (log10), and the share of the detrended series' power in the upper half of its spectrum
    (Notsawo et al. 2023: oscillations of the early loss foretell grokking)."""
    x = log_loss[np.isfinite(log_loss)]
    if x.size < 8:
        return math.nan, math.nan
    smooth = np.convolve(np.pad(x, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    rms = float(np.sqrt(np.mean((x - smooth) ** 2)))
    t = np.arange(x.size, dtype=float)
    resid = x - np.polyval(np.polyfit(t, x, 1), t)
    power = np.abs(np.fft.rfft(resid)[1:]) ** 2
    total = float(power.sum())
    high = float(power[power.size // 2 :].sum())
    return math.log10(rms + 1e-6), (high / total if total > 0 else math.nan)


def features(rows: Sequence[Row], settings: Mapping[str, Any]) -> dict[str, float]:
    """The features at the last of `rows` (oldest first), from those rows alone and the run's settings
    (its config: `steps`, `init_scale`, and the rest where a row does not carry them)."""
    if not rows:
        raise ValueError("no rows: a forecast needs at least one evaluation")
    last = rows[-1]

    def setting(key: str) -> float:
        v = value(last, key)
        return v if math.isfinite(v) else value(settings, key)

    t = max(int(last["step"]), 1)
    steps = np.array([float(r["step"]) for r in rows])
    col = {key: np.array([value(r, key) for r in rows]) for key in ("train_loss", "test_loss", "test_acc")}
    col["param_norm"] = np.array([value(r, "param_norm") for r in rows])
    col["purity"] = np.array([value(r, "purity") for r in rows])
    window = steps >= t / 2
    log_steps = np.log(np.maximum(steps, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_test = np.log(col["test_loss"])
        log_train = np.log(col["train_loss"])
        log_norm = np.log(col["param_norm"])
    peak = np.nanmax(col["param_norm"]) if np.isfinite(col["param_norm"]).any() else math.nan
    osc, hf = _oscillation(log_train)
    out = {
        "log_wd": _log10(setting("weight_decay"), 1e-2),
        "log_lr": _log10(setting("lr"), 0.0),
        "log_l1": _log10(setting("l1"), 1e-6),
        "log_size": _log10(setting("train_size"), 0.0),
        "log_init": _log10(value(settings, "init_scale"), 0.0),
        "budget_left": _log10(value(settings, "steps") / t, 0.0),
        "test_loss_trend": _slope(log_steps[window], log_test[window]),
        "test_acc": value(last, "test_acc"),
        "test_acc_rise": value(last, "test_acc") - _at(steps, col["test_acc"], t / 2),
        "norm_turn": math.log(value(last, "param_norm") / peak) if peak > 0 else math.nan,
        "norm_trend": _slope(log_steps[window], log_norm[window]),
        "train_loss": _log10(value(last, "train_loss"), 1e-12),
        "loss_osc": osc,
        "loss_hf": hf,
        "purity": value(last, "purity"),
        "purity_rise": value(last, "purity") - _at(steps, col["purity"], t / 2),
    }
    return {k: (v if math.isfinite(v) else math.nan) for k, v in out.items()}
