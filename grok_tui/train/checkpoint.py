"""What a checkpoint must hold before a trainer takes it.

`torch.load(weights_only=True)` only promises that loading runs no code; the
values inside can still be anything: a step of -3, a learning rate that is a
string, or the weights of another width (a config.json edited since). Each is
checked here, and the first that is wrong becomes one line naming the field.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint value that is not allowed: names the field, and what would be right."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")


def _shown(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {_shape(value)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape)) or "()"


def _need(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise CheckpointError(field, f"{_shown(value)} is not allowed; expected {allowed}")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def as_rng_state(state: Any) -> tuple:
    """Python's RNG state as `random.setstate` wants it (torch.save may hand back lists for tuples)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def check_state(state: Any, params: dict[str, torch.Tensor], steps_max: int = 2**53) -> None:
    """Raise CheckpointError for the first value in `state` that a trainer with `params` cannot take."""
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint", f"{_shown(state)} is not a dict of the trainer's state")
    step = state.get("step")
    _need(_int(step) and 0 <= step <= steps_max, "step", step, "an integer >= 0")
    for name, ok, allowed in (
        ("elapsed_s", lambda v: _finite(v) and v >= 0, "a finite number of seconds >= 0"),
        ("l1", lambda v: _finite(v) and v >= 0, "a finite number >= 0"),
        ("train_size", lambda v: v is None or (_int(v) and v >= 1), "null or an integer >= 1"),
        ("norm_target", lambda v: v is None or (_finite(v) and v > 0), "null or a finite number > 0"),
        ("logged_step", lambda v: v is None or (_int(v) and 0 <= v <= step), "null or a step <= the checkpoint's"),
        ("log_lines", lambda v: isinstance(v, dict) and all(isinstance(k, str) and _int(n) and n >= 0
                                                             for k, n in v.items()), "a dict of line counts >= 0"),
    ):
        if name in state:
            _need(ok(state[name]), name, state[name], allowed)
    _check_model(state.get("model"), params)
    _check_optimizer(state.get("optimizer"), params)
    _check_grokfast(state.get("grokfast"), params)
    _check_rng(state)


def _check_tensors(field: str, tensors: Any, params: dict[str, torch.Tensor]) -> None:
    """A list of float tensors shaped like the parameters, in order."""
    shapes = [p.shape for p in params.values()]
    _need(isinstance(tensors, (list, tuple)) and len(tensors) == len(shapes), field, tensors,
          f"a list of {len(shapes)} tensors, one per parameter")
    for i, (t, shape) in enumerate(zip(tensors, shapes)):
        _need(isinstance(t, torch.Tensor) and t.is_floating_point() and t.shape == shape, f"{field}[{i}]", t,
              f"a float tensor of shape {'×'.join(map(str, shape))}")


def _check_model(model: Any, params: dict[str, torch.Tensor]) -> None:
    _need(isinstance(model, dict), "model", model, "a dict of weight tensors")
    missing = sorted(set(params) - set(model))
    unknown = sorted(set(model) - set(params))
    if missing or unknown:
        raise CheckpointError("model", f"holds {', '.join(unknown) or 'no ' + missing[0]}, not the weights of the "
                              "model config.json describes (has config.json been changed?)")
    for name, param in params.items():
        t = model[name]
        if not (isinstance(t, torch.Tensor) and t.is_floating_point()):
            raise CheckpointError(f"model.{name}", f"{_shown(t)} is not a float tensor")
        if t.shape != param.shape:
            raise CheckpointError(f"model.{name}", f"is {_shape(t)}, but config.json makes it {_shape(param)} "
                                  "(has config.json been changed since this checkpoint?)")


def _check_optimizer(optimizer: Any, params: dict[str, torch.Tensor]) -> None:
    _need(isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
          and isinstance(optimizer.get("param_groups"), list) and optimizer["param_groups"],
          "optimizer", optimizer, "AdamW's state dict (state, param_groups)")
    shapes = [p.shape for p in params.values()]
    indices: list[Any] = []
    for i, group in enumerate(optimizer["param_groups"]):
        where = f"optimizer.param_groups[{i}]"
        _need(isinstance(group, dict), where, group, "a dict")
        _need(_finite(group.get("lr")) and group["lr"] > 0, f"{where}.lr", group.get("lr"), "a finite number > 0")
        wd = group.get("weight_decay")
        _need(_finite(wd) and wd >= 0, f"{where}.weight_decay", wd, "a finite number >= 0")
        betas = group.get("betas")
        _need(isinstance(betas, (list, tuple)) and len(betas) == 2
              and all(_finite(b) and 0 <= b < 1 for b in betas), f"{where}.betas", betas, "two numbers in [0, 1)")
        _need(isinstance(group.get("params"), list), f"{where}.params", group.get("params"), "a list of indices")
        indices += group["params"]
    _need(all(_int(i) for i in indices) and sorted(indices) == list(range(len(shapes))), "optimizer.param_groups", indices,
          f"the indices 0 to {len(shapes) - 1}, one per parameter")
    for index, entry in optimizer["state"].items():
        where = f"optimizer.state[{index!r}]"
        _need(_int(index) and 0 <= index < len(shapes), where, index, "a parameter's index")
        _need(isinstance(entry, dict), where, entry, "a dict")
        for key in ("exp_avg", "exp_avg_sq"):
            t = entry.get(key)
            _need(isinstance(t, torch.Tensor) and t.is_floating_point() and t.shape == shapes[index],
                  f"{where}.{key}", t, f"a float tensor of shape {'×'.join(map(str, shapes[index]))}")
        step = entry.get("step")
        ok = (isinstance(step, torch.Tensor) and step.numel() == 1 and step.item() >= 0) or (_finite(step) and step >= 0)
        _need(ok, f"{where}.step", step, "a step count >= 0")


def _check_grokfast(grokfast: Any, params: dict[str, torch.Tensor]) -> None:
    if grokfast is None:
        return
    _need(isinstance(grokfast, dict), "grokfast", grokfast, "null or a dict (alpha, lamb, ema)")
    alpha, lamb = grokfast.get("alpha"), grokfast.get("lamb")
    _need(_finite(alpha) and 0 <= alpha < 1, "grokfast.alpha", alpha, "a number in [0, 1)")
    _need(_finite(lamb) and lamb >= 0, "grokfast.lamb", lamb, "a finite number >= 0")
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
        except (TypeError, ValueError, OverflowError):
            raise CheckpointError("python_rng", f"{_shown(state['python_rng'])} is not a Python RNG state") from None


__all__ = ["CheckpointError", "as_rng_state", "check_state"]
