"""Many members of a sweep trained as one batch: stacked parameters, one vmapped forward, one AdamW.

Every member is the run `Trainer` would train from the same config: its own data
(train fraction and split seed may differ, so each member's examples are padded
to the longest and weighted, padding by zero), its own init (built with its seed,
then stacked with torch.func.stack_module_state), its own learning rate, weight
decay, betas, L1 and held weight norm as tensors of shape (N,). One step is one forward of the
whole batch, the sum of the members' mean losses, one backward (members share no parameter, so each gradient is its
own member's) and one AdamW update written for stacked tensors; then each member
whose `constrain_norm` is set is rescaled to it, by one factor over its own slice
of every tensor, as Trainer rescales its run. Nothing is read back from the device
between evaluations.

The forward is the family's own over stacked members where it declares one (its `stacked`,
models/stacked.py: for mod-add's models, one gather over the members' embeddings and batched matmuls),
else `torch.func.vmap(functional_call)` of the model.

Members must share the model's shape (a width axis makes several batches: see
sweep/grid.py) and its kind of data (task, p, op, pairs, n_bits...).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch.func import functional_call, stack_module_state, vmap

from grok_tui.config import RunConfig
from grok_tui.models import GrokModel, build_model
from grok_tui.models.registry import family
from grok_tui.models.stacked import StackedForward
from grok_tui.tasks import Dataset, build_dataset
from grok_tui.train.objective import example_correct, example_losses
from grok_tui.train.snapshot import Metrics

# Run settings a batch cannot hold per member (they steer one run's loop, not its objective).
UNBATCHED = {"train_size": 0, "grokfast": False}


class Split(NamedTuple):
    """One split of every member's data, padded to the longest.

    x (N, rows, ...), y (N, rows, ...), mask (N, rows): 1 for a real row; n (N,): real rows per member.
    """

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    n: torch.Tensor


class BatchedAdamW:
    """torch.optim.AdamW's update (decoupled decay, bias correction) for stacked parameters, with a
    learning rate, weight decay and betas per member: tensors of shape (N,). A member with a warm-up of w
    steps (`warmup`, 0: none) takes its learning rate times min((t - 1) / w, 1) at its t-th step, as the
    single run's LambdaLR(min(step / w, 1)) gives it."""

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: torch.Tensor,
        weight_decay: torch.Tensor,
        beta1: torch.Tensor,
        beta2: torch.Tensor,
        eps: float = 1e-8,
        warmup: torch.Tensor | None = None,
    ):
        self.params = list(params)
        self.lr, self.weight_decay, self.beta1, self.beta2, self.eps = lr, weight_decay, beta1, beta2, eps
        self.warmup = torch.zeros_like(lr) if warmup is None else warmup
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        self.steps += 1
        # Bias corrections in float64, as torch computes them in Python floats.
        t = self.steps
        correction1 = (1 - self.beta1.double() ** t).to(self.lr.dtype)
        correction2_sqrt = (1 - self.beta2.double() ** t).sqrt().to(self.lr.dtype)
        ramp = ((t - 1) / self.warmup.clamp(min=1)).clamp(max=1)
        lr = torch.where(self.warmup > 0, self.lr * ramp, self.lr)
        step_size = lr / correction1
        decay = 1 - lr * self.weight_decay
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            shape = (-1,) + (1,) * (p.dim() - 1)
            p.mul_(decay.view(shape))
            m.lerp_(g, (1 - self.beta1).view(shape))
            v.mul_(self.beta2.view(shape)).add_(g * g * (1 - self.beta2).view(shape))
            denom = (v.sqrt() / correction2_sqrt.view(shape)).add_(self.eps)
            p.sub_(step_size.view(shape) * m / denom)

    def state(self) -> dict[str, Any]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps}

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for mine, theirs in ((self.exp_avg, state["exp_avg"]), (self.exp_avg_sq, state["exp_avg_sq"])):
                for a, b in zip(mine, theirs, strict=True):
                    a.copy_(b)
        self.steps = int(state["steps"])


def _padded(parts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of different lengths along a new first axis, padding with zeros; and the mask of
    the real rows (1.0 real, 0.0 padding)."""
    longest = max(len(t) for t in parts)
    out = parts[0].new_zeros((len(parts), longest, *parts[0].shape[1:]))
    mask = torch.zeros(len(parts), longest)
    for i, t in enumerate(parts):
        out[i, : len(t)] = t
        mask[i, : len(t)] = 1.0
    return out, mask


class BatchedTrainer:
    """N members with one model shape, trained in lockstep on one device.

    `generic`: vmap the model's forward even where its family has a stacked one (to compare the two).
    """

    def __init__(self, cfgs: Sequence[RunConfig], device: torch.device, generic: bool = False):
        if not cfgs:
            raise ValueError("a batch needs at least one member")
        self.cfgs = list(cfgs)
        self.device = device
        data = [build_dataset(cfg) for cfg in cfgs]
        self.n_classes = data[0].n_classes
        models = [self._model(cfg) for cfg in cfgs]
        params, buffers = stack_module_state(models)
        self.names = list(params)
        self.params = {k: v.to(device).detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.to(device) for k, v in buffers.items()}
        # The model's code, on the meta device: functional_call runs it with the stacked tensors.
        self.base = copy.deepcopy(models[0]).to("meta")
        self.stacked: StackedForward | None = None if generic else family(cfgs[0].model).stacked
        self._forward = vmap(self._one, in_dims=(0, 0, 0)) if self.stacked is None else self._stacked
        self.train = self._stack(data, "train")
        self.test = self._stack(data, "test")

        def per_member(name: str) -> torch.Tensor:
            return torch.tensor([float(getattr(cfg, name)) for cfg in cfgs], device=device)

        self.optimizer = BatchedAdamW(
            list(self.params.values()),
            lr=per_member("lr"),
            weight_decay=per_member("weight_decay"),
            beta1=per_member("beta1"),
            beta2=per_member("beta2"),
            warmup=per_member("warmup_steps"),
        )
        self.l1 = per_member("l1")
        # The global weight norm each member is held at after every step (0: not held), as Trainer holds it.
        self.norm_target = per_member("constrain_norm")
        self._holds_norm = bool((self.norm_target > 0).any())
        # L1 on the matrices (dim >= 2 per member), as Trainer does; skipped outright where no member has it.
        self._l1_params = [n for n in self.names if self.params[n].dim() >= 3] if bool((self.l1 > 0).any()) else []
        self.step = 0
        self.elapsed_s = 0.0
        self._rate_mark = (0, time.monotonic())
        # The training split's forward an evaluation made, kept for the next step, which needs the same
        # one (the same weights and rows): with the weights it was made from (their tensors and in-place
        # version counters), so that it is only ever used while they are unchanged.
        self._kept_forward: tuple[Any, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.cfgs)

    @staticmethod
    def _model(cfg: RunConfig) -> GrokModel:
        # As Trainer seeds it, the process's RNG left alone: member i starts where its single run starts.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_model(cfg)

    def _stack(self, data: Sequence[Dataset], split: str) -> Split:
        x, mask = _padded([getattr(d, f"x_{split}") for d in data])
        y, _ = _padded([getattr(d, f"y_{split}") for d in data])
        return Split(x.to(self.device), y.to(self.device), mask.to(self.device), mask.sum(dim=1).to(self.device))

    def _one(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
        return functional_call(self.base, (params, buffers), (x,))

    def _stacked(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
        assert self.stacked is not None
        return self.stacked(params, x)

    def _mean(self, per_example: torch.Tensor, split: Split) -> torch.Tensor:
        """Each member's mean over its real rows: shape (N,)."""
        return (per_example * split.mask).sum(dim=1) / split.n

    def _losses(self, out: torch.Tensor, split: Split) -> torch.Tensor:
        # One loss kind per batch (the grid groups by it); the accuracy tolerance likewise.
        return self._mean(example_losses(self.cfgs[0].loss, out, split.y), split)

    def train_step(self) -> None:
        """One full-batch update of every member; reads nothing back from the device. Only the loss:
        accuracy is measured at an evaluation, as Trainer measures it (an argmax per step was ~9% of it)."""
        kept, self._kept_forward = self._kept_forward, None
        out = kept[1] if kept is not None and kept[0] == self._weights() else self._train_forward()
        total = self._losses(out, self.train).sum()
        if self._l1_params:
            l1 = sum(self.params[n].abs().flatten(1).sum(dim=1) for n in self._l1_params)
            total = total + (self.l1 * l1).sum()
        grads = torch.autograd.grad(total, list(self.params.values()))
        self.optimizer.step(grads)
        if self._holds_norm:
            self._hold_norms()
        self.step += 1

    def _train_forward(self) -> torch.Tensor:
        out: torch.Tensor = self._forward(self.params, self.buffers, self.train.x)
        return out

    def _weights(self) -> Any:
        return [(id(p), p._version) for p in self.params.values()]

    def _norms(self) -> torch.Tensor:
        """Each member's global L2 weight norm (all its tensors together): shape (N,)."""
        norms: torch.Tensor = sum(p.flatten(1).square().sum(dim=1) for p in self.params.values()).sqrt()
        return norms

    @torch.no_grad()
    def _hold_norms(self) -> None:
        """Rescale each held member to its target norm (interventions.constrain_norm, per member); the
        others by 1."""
        scale = torch.where(self.norm_target > 0, self.norm_target / self._norms().clamp_min(1e-12), 1.0)
        for p in self.params.values():
            p.mul_(scale.view((-1,) + (1,) * (p.dim() - 1)))

    def _scores(self, split: Split, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's mean loss and accuracy on a split (from `out`, its outputs, where given): two
        tensors of shape (N,)."""
        out = self._forward(self.params, self.buffers, split.x) if out is None else out
        correct = example_correct(out, split.y, self.cfgs[0].acc_tol)
        return self._losses(out, split), self._mean(correct, split)

    @torch.no_grad()
    def evaluate(self) -> list[Metrics]:
        """Every member's metrics row, read back in one transfer. The training split's forward is made for
        the gradient, and kept: the next step starts from it (a tenth of a step's work at every tenth step)."""
        with torch.enable_grad():
            out = self._train_forward()
        self._kept_forward = (self._weights(), out)
        (train_loss, train_acc), (test_loss, test_acc) = self._scores(self.train, out.detach()), self._scores(self.test)
        norm = self._norms()
        table = torch.stack([train_loss, train_acc, test_loss, test_acc, norm], dim=1).tolist()
        now = time.monotonic()
        mark_step, mark_time = self._rate_mark
        rate = (self.step - mark_step) / (now - mark_time) if self.step > mark_step and now > mark_time else 0.0
        self._rate_mark = (self.step, now)
        rows = []
        for cfg, (tr_loss, tr_acc, te_loss, te_acc, p_norm), n in zip(
            self.cfgs, table, self.train.n.int().tolist(), strict=True
        ):
            rows.append(
                Metrics(
                    step=self.step,
                    train_loss=tr_loss,
                    train_acc=tr_acc,
                    test_loss=te_loss,
                    test_acc=te_acc,
                    param_norm=p_norm,
                    weight_decay=cfg.weight_decay,
                    lr=cfg.lr,
                    l1=cfg.l1,
                    elapsed_s=round(self.elapsed_s, 3),
                    steps_per_s=round(rate, 2),
                    train_size=n,
                )
            )
        return rows

    @torch.no_grad()
    def keep(self, members: Sequence[int]) -> None:
        """Go on with only `members` (positions in this batch, in order): the others' parameters, AdamW
        moments, settings and data are dropped, so their compute is saved (a sweep's pruned members). A
        kept member trains on as before: its update reads only its own slice of every tensor."""
        if not members:
            raise ValueError("a batch needs at least one member")
        self._kept_forward = None
        index = torch.tensor(list(members), dtype=torch.long, device=self.device)
        self.cfgs = [self.cfgs[i] for i in members]
        self.params = {k: v.index_select(0, index).requires_grad_(True) for k, v in self.params.items()}
        self.buffers = {k: v.index_select(0, index) for k, v in self.buffers.items()}
        opt = self.optimizer
        opt.params = list(self.params.values())
        opt.exp_avg = [t.index_select(0, index) for t in opt.exp_avg]
        opt.exp_avg_sq = [t.index_select(0, index) for t in opt.exp_avg_sq]
        opt.lr, opt.weight_decay, opt.beta1, opt.beta2, opt.warmup = (
            t.index_select(0, index) for t in (opt.lr, opt.weight_decay, opt.beta1, opt.beta2, opt.warmup)
        )
        self.l1, self.norm_target = self.l1.index_select(0, index), self.norm_target.index_select(0, index)
        self._holds_norm = bool((self.norm_target > 0).any())
        self._l1_params = [n for n in self.names if self.params[n].dim() >= 3] if bool((self.l1 > 0).any()) else []
        # Each split cut to its members, and to the longest of them: padding a dropped member needed goes too.
        splits = []
        for split in (self.train, self.test):
            n = split.n.index_select(0, index)
            rows = int(n.max().item())
            x, y, mask = (t.index_select(0, index)[:, :rows] for t in (split.x, split.y, split.mask))
            splits.append(Split(x, y, mask, n))
        self.train, self.test = splits

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's weights as its own model's state_dict."""
        return {name: self.params[name][i].detach().cpu().clone() for name in self.names}

    def member_checkpoint(self, i: int) -> dict[str, Any]:
        """Member i as the checkpoint its single run would have written (model, AdamW, step): its run
        directory then opens in `watch` with its weights, and `grok-tui --resume` trains it on alone."""
        cfg = self.cfgs[i]
        with torch.random.fork_rng(devices=[]):  # its init is overwritten at once: leave the RNG as it was
            model = build_model(cfg)
        model.load_state_dict(self.member_state(i))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2)
        )
        moments = zip(model.parameters(), self.optimizer.exp_avg, self.optimizer.exp_avg_sq, strict=True)
        for param, exp_avg, exp_avg_sq in moments:
            optimizer.state[param] = {
                "step": torch.tensor(float(self.optimizer.steps)),
                "exp_avg": exp_avg[i].detach().cpu().clone(),
                "exp_avg_sq": exp_avg_sq[i].detach().cpu().clone(),
            }
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "l1": cfg.l1,
            "norm_target": cfg.constrain_norm or None,
        }

    def state(self) -> dict[str, Any]:
        return {
            "params": {k: v.detach() for k, v in self.params.items()},
            "optimizer": self.optimizer.state(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
        }

    def fits(self, state: Any) -> bool:
        """Whether `state` (from `state()`, read back from a file) holds tensors of exactly this batch's shapes."""
        try:
            params, optimizer = state["params"], state["optimizer"]
            shapes = [p.shape for p in self.params.values()]
            return (
                list(params) == self.names
                and [params[n].shape for n in self.names] == shapes
                and [t.shape for t in optimizer["exp_avg"]] == shapes
                and [t.shape for t in optimizer["exp_avg_sq"]] == shapes
                and isinstance(optimizer["steps"], int)
                and isinstance(state["step"], int)
                and isinstance(state["elapsed_s"], float)
            )
        except (KeyError, TypeError, AttributeError):
            return False

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for name, tensor in self.params.items():
                tensor.copy_(state["params"][name])
        self.optimizer.load_state(state["optimizer"])
        self.step = int(state["step"])
        self.elapsed_s = float(state["elapsed_s"])


__all__ = ["BatchedAdamW", "BatchedTrainer", "UNBATCHED"]
