"""What a checkpoint must hold before a trainer takes it.

`torch.load(weights_only=True)` only promises that loading runs no code; the
values inside can still be anything: a step of -3, a learning rate that is a
string, or the weights of another width (a config.json edited since). Each is
checked here, and the first that is wrong becomes one line naming the field.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch

from grok_tui.config import GROKFAST_LAMB, L1, LR, NORM_TARGET, RULES, WEIGHT_DECAY, clip, is_finite, is_int


class CheckpointError(ValueError):
    """A checkpoint value that is not allowed: names the field, and what would be right."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")


def _shown(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {_shape(value)}"
    return clip(" ".join(repr(value).split()))  # one line, whatever is nested inside


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape)) or "()"


def _need(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise CheckpointError(field, f"{_shown(value)} is not allowed; expected {allowed}")


def is_dense(t: Any, shape: torch.Size | None = None) -> bool:
    """A plain float tensor in memory (weights_only loading still hands back sparse or meta ones)."""
    return (
        isinstance(t, torch.Tensor)
        and t.is_floating_point()
        and t.layout == torch.strided
        and t.device.type == "cpu"
        and (shape is None or t.shape == shape)
    )


def as_rng_state(state: Any) -> tuple[Any, ...]:
    """Python's RNG state as `random.setstate` wants it (torch.save may hand back lists for tuples)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def run_checkpoint(state: dict[str, Any], logged_step: int | None) -> dict[str, Any]:
    """A trainer state that holds only the weights, the optimizer, the step and the clock (a sweep
    member's, from train/batched.py) completed to the very checkpoint its single run writes
    (Trainer.state): no intervention on, this process's RNG states (training draws from neither: the
    run's data and init have generators of their own), and the step of the last row logged, so that a
    run resumed from it does not log that row again."""
    return {
        "train_size": None,
        "norm_target": None,
        "grokfast": None,
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "logged_step": logged_step,
        **state,
    }


def check_state(state: Any, params: dict[str, torch.Tensor], steps_max: int = 2**53) -> None:
    """Raise CheckpointError for the first value in `state` that a trainer with `params` cannot take."""
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint", f"{_shown(state)} is not a dict of the trainer's state")
    step = state.get("step")
    if not (is_int(step) and 0 <= step <= steps_max):
        raise CheckpointError("step", f"{_shown(step)} is not allowed; expected an integer >= 0")
    checks: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
        ("elapsed_s", lambda v: is_finite(v) and v >= 0, "a finite number of seconds >= 0"),
        ("l1", L1, L1.allowed),
        ("train_size", lambda v: v is None or (is_int(v) and v >= 1), "null or an integer >= 1"),
        ("norm_target", lambda v: v is None or NORM_TARGET(v), f"null or {NORM_TARGET.allowed}"),
        ("logged_step", lambda v: v is None or (is_int(v) and 0 <= v <= step), "null or a step <= the checkpoint's"),
        (
            "log_lines",
            lambda v: isinstance(v, dict) and all(isinstance(k, str) and is_int(n) and n >= 0 for k, n in v.items()),
            "a dict of line counts >= 0",
        ),
    )
    for name, ok, allowed in checks:
        if name in state:
            _need(ok(state[name]), name, state[name], allowed)
    _check_model(state.get("model"), params)
    _check_optimizer(state.get("optimizer"), params)
    _check_grokfast(state.get("grokfast"), params)
    _check_rng(state)


def _check_tensors(field: str, tensors: Any, params: dict[str, torch.Tensor]) -> None:
    """A list of float tensors shaped like the parameters, in order."""
    shapes = [p.shape for p in params.values()]
    _need(
        isinstance(tensors, (list, tuple)) and len(tensors) == len(shapes),
        field,
        tensors,
        f"a list of {len(shapes)} tensors, one per parameter",
    )
    for i, (t, shape) in enumerate(zip(tensors, shapes, strict=True)):
        _need(is_dense(t, shape), f"{field}[{i}]", t, f"a float tensor of shape {'×'.join(map(str, shape))}")


def _check_model(model: Any, params: dict[str, torch.Tensor]) -> None:
    _need(isinstance(model, dict), "model", model, "a dict of weight tensors")
    missing = sorted(set(params) - set(model))
    unknown = sorted(map(repr, set(model) - set(params)))
    if missing or unknown:
        held = ", ".join(unknown)[:60] if unknown else f"no {missing[0]}"
        raise CheckpointError(
            "model", f"holds {held}, not the weights of the model config.json describes (has config.json been changed?)"
        )
    for name, param in params.items():
        t = model[name]
        if not is_dense(t):
            raise CheckpointError(f"model.{name}", f"{_shown(t)} is not a float tensor")
        if t.shape != param.shape:
            raise CheckpointError(
                f"model.{name}",
                f"is {_shape(t)}, but config.json makes it {_shape(param)} "
                "(has config.json been changed since this checkpoint?)",
            )


def _check_optimizer(optimizer: Any, params: dict[str, torch.Tensor]) -> None:
    # The trainer builds one AdamW group over every parameter, with none of the optional modes.
    _need(
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list)
        and len(optimizer["param_groups"]) == 1,
        "optimizer",
        optimizer,
        "AdamW's state dict (state, and one param group)",
    )
    shapes = [p.shape for p in params.values()]
    group, where = optimizer["param_groups"][0], "optimizer.param_groups[0]"
    _need(isinstance(group, dict), where, group, "a dict")
    group_checks: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
        ("lr", LR, LR.allowed),
        ("weight_decay", WEIGHT_DECAY, WEIGHT_DECAY.allowed),
        ("eps", lambda v: is_finite(v) and v > 0, "a finite number > 0"),
        (
            "betas",
            lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(is_finite(b) and 0 <= b < 1 for b in v),
            "two numbers in [0, 1)",
        ),
        (
            "params",
            lambda v: isinstance(v, list) and all(is_int(i) for i in v) and sorted(v) == list(range(len(shapes))),
            f"the indices 0 to {len(shapes) - 1}, one per parameter",
        ),
    )
    for key, ok, allowed in group_checks:
        _need(ok(group.get(key)), f"{where}.{key}", group.get(key), allowed)
    for key, allowed_values in (
        ("amsgrad", (False,)),
        ("maximize", (False,)),
        ("capturable", (False,)),
        ("differentiable", (False,)),
        ("foreach", (None, False, True)),
        ("fused", (None, False)),
        ("decoupled_weight_decay", (True,)),
    ):
        if key in group:
            value = group[key]
            _need(
                any(value is v for v in allowed_values),
                f"{where}.{key}",
                value,
                " or ".join(str(v).lower() if v is not None else "null" for v in allowed_values),
            )
    for index, entry in optimizer["state"].items():
        where = f"optimizer.state[{_shown(index)}]"
        _need(is_int(index) and 0 <= index < len(shapes), where, index, "a parameter's index")
        _need(isinstance(entry, dict), where, entry, "a dict")
        for key in ("exp_avg", "exp_avg_sq"):
            _need(
                is_dense(entry.get(key), shapes[index]),
                f"{where}.{key}",
                entry.get(key),
                f"a float tensor of shape {'×'.join(map(str, shapes[index]))}",
            )
        step = entry.get("step")
        valid = (is_dense(step) and step.numel() == 1 and math.isfinite(step.item()) and step.item() >= 0) or (
            is_finite(step) and step >= 0
        )
        _need(valid, f"{where}.step", step, "a step count >= 0")


def _check_grokfast(grokfast: Any, params: dict[str, torch.Tensor]) -> None:
    if grokfast is None:
        return
    _need(isinstance(grokfast, dict), "grokfast", grokfast, "null or a dict (alpha, lamb, ema)")
    alpha, lamb = grokfast.get("alpha"), grokfast.get("lamb")
    alpha_rule, alpha_allowed = RULES["grokfast_alpha"]
    _need(alpha_rule(alpha), "grokfast.alpha", alpha, alpha_allowed)
    _need(GROKFAST_LAMB(lamb), "grokfast.lamb", lamb, GROKFAST_LAMB.allowed)
    if grokfast.get("ema") is not None:
        _check_tensors("grokfast.ema", grokfast["ema"], params)


def _check_rng(state: dict[str, Any]) -> None:
    if "torch_rng" in state:
        try:
            torch.Generator().set_state(state["torch_rng"])
        except (TypeError, RuntimeError, ValueError):
            raise CheckpointError("torch_rng", f"{_shown(state['torch_rng'])} is not a torch RNG state") from None
    if "python_rng" in state:
        try:
            random.Random().setstate(as_rng_state(state["python_rng"]))
        except (TypeError, ValueError, OverflowError, RuntimeError):  # RuntimeError: a tensor compared as a number
            raise CheckpointError("python_rng", f"{_shown(state['python_rng'])} is not a Python RNG state") from None


__all__ = ["CheckpointError", "as_rng_state", "check_state", "is_dense", "run_checkpoint"]
