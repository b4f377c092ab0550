"""How much memory a run needs, estimated from its config before anything is allocated.

Every flag has its own bounds, but some allowed combinations (`--p 1000 --width 65536`)
need hundreds of GB; without a check such a run dies in an allocator traceback. The
estimate counts what `Trainer` holds and computes on its device, per model family:

- the dataset tensors (and the temporaries that build them);
- parameters, gradients, AdamW's two moments, the Grokfast EMA, the optimizer's temporaries;
- one full-batch forward + backward (every training example at once);
- one evaluation: a no_grad forward over the whole training set, then the whole test set;
- `look_inside`: the per-neuron spectrum of the p x H input weights (numpy, float64).

Counts are in float32 units per example, read off the models' forward passes; they lean
high, so the estimate is an upper bound of the real peak (tests/test_memory.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import psutil
import torch

from grok_tui.config import N_DIGITS, RunConfig
from grok_tui.models import build_model
from grok_tui.tasks.teacher import HIDDEN as TEACHER_HIDDEN, IN_DIM as TEACHER_IN, OUT_DIM as TEACHER_OUT

FLOAT = 4  # bytes in a float32
INDEX = 2  # an int64 index, in float32 units
N_CTX = 3  # the transformer's tokens: "a b ="
DEFAULT_HEADROOM = 0.8


class WontFit(Exception):
    """A run that needs more memory than its device has; the message is one line for the user."""

    def __init__(self, message: str, needed: int, available: int):
        super().__init__(message)
        self.needed, self.available = needed, available


# ---- the examples a run holds ------------------------------------------------------------


@dataclass(frozen=True)
class Examples:
    n_train: int
    n_test: int
    n_classes: int  # the model's outputs (for the teacher: the regression's 5 components)

    @property
    def total(self) -> int:
        return self.n_train + self.n_test


def examples(cfg: RunConfig) -> Examples:
    """The sizes build_dataset gives, without building it.

    `cfg.train_size` is left out on purpose: a live command can restore the whole training set.
    """
    if cfg.task == "modular":
        n = cfg.p * (cfg.p - 1 if cfg.op == "/" else cfg.p)
        n_train = round(cfg.train_frac * n)
        return Examples(n_train, n - n_train, cfg.p)
    if cfg.task == "digits":
        return Examples(cfg.n_train, N_DIGITS - cfg.n_train, 10)
    if cfg.task == "teacher":
        return Examples(cfg.n_train, cfg.n_test, TEACHER_OUT)
    return Examples(cfg.n_train, cfg.n_test, 2)


def dataset_floats_per_example(cfg: RunConfig) -> int:
    """The peak while the dataset is built, which is above what it keeps (see grok_tui/tasks/)."""
    if cfg.task == "modular":
        # All pairs as int64 (cartesian product, stacked copy, train/test copies), the labels,
        # the permutation: about eight int64 values per pair at once.
        return 8 * INDEX
    if cfg.task == "parity":
        # int64 bits, then .float(), *2 and -1 each make a float copy.
        return cfg.n_bits * (INDEX + 3) + INDEX
    if cfg.task == "teacher":
        # The teacher's forward over every input: two hidden layers of its own width.
        return TEACHER_IN + 2 * TEACHER_HIDDEN + TEACHER_OUT
    # Digits: scikit-learn's float64 pixels and images, our float32 copy and the split.
    return 64 * (2 * INDEX + 2) + 2 * INDEX


# ---- the loss, the same for every model ----------------------------------------------------


def loss_floats(cfg: RunConfig, classes: int, training: bool) -> int:
    """Per example, the logits and what the loss keeps beside them.

    Cross-entropy: log_softmax's output, then in backward the nll gradient and the
    log_softmax gradient, all N x classes. MSE on class labels builds an int64 one-hot
    and its float copy; on the teacher's float targets only the differences.
    """
    if cfg.loss == "ce" and cfg.task != "teacher":
        return 4 * classes if training else 3 * classes
    return 7 * classes


# ---- activations, per model family (float32 units per example) ---------------------------


@dataclass(frozen=True)
class Activations:
    train: int  # one forward + backward with autograd: what is saved plus the largest gradients
    forward: int  # one no_grad forward, up to the logits, including the loss and accuracy


def pair_activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # Forward: both operands' embeddings (2W) beside their sum (W). Backward: the embedding
    # gradient is made contiguous (2W) beside the relu gradient (W), plus the sorted indices.
    train = 3 * w + loss_floats(cfg, classes, True) + 2 * INDEX
    forward = max(3 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def concat_activations(cfg: RunConfig, classes: int) -> Activations:
    e, w = cfg.embed_dim, cfg.width
    # Forward: two embeddings and their concatenation (4E); the concatenation (2E), hidden
    # relu (W) and logits are saved. Backward: relu's and the hidden layer's gradients (2W),
    # the concatenation's gradient split back into two contiguous embedding gradients (2E).
    train = 4 * e + 3 * w + loss_floats(cfg, classes, True) + 2 * INDEX
    forward = max(4 * e, 2 * e + w, 2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def transformer_activations(cfg: RunConfig, classes: int) -> Activations:
    d, m = cfg.embed_dim, cfg.width
    # Saved per token: the residual stream three times (3D), q k v (3D), the attention
    # output and its reshaped copy (2D), the MLP's input residual (D) and relu output (M);
    # backward adds gradients of the same sizes, MLP (2M) and q k v (3D) at the widest.
    train = N_CTX * (12 * d + 2 * d + 4 * m) + loss_floats(cfg, classes, True) + 3 * INDEX
    # no_grad keeps only the residual stream beside the layer being computed: at the
    # attention q k v, the output and its reshaped copy (6D), at the MLP 2M.
    forward = N_CTX * (3 * d + max(6 * d, 2 * m)) + loss_floats(cfg, classes, False)
    return Activations(train, forward)


def parity_activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # The ±1 inputs need no gradient: hidden relu (W) saved, its two gradients (2W) in backward.
    train = 3 * w + loss_floats(cfg, classes, True)
    forward = max(2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def three_layer_activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # Omnigrok's MLPs (digits relu, teacher tanh): two activations saved (2W), one more layer
    # output while computing (W), and two gradients at once in backward (2W).
    train = 5 * w + loss_floats(cfg, classes, True)
    forward = max(2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


@dataclass(frozen=True)
class Family:
    activations: Callable[[RunConfig, int], Activations]
    drivers: tuple[str, ...]  # the config fields the size grows with, named in WontFit


FAMILIES: dict[str, Family] = {
    "pair": Family(pair_activations, ("p", "width")),
    "concat": Family(concat_activations, ("p", "embed_dim", "width")),
    "transformer": Family(transformer_activations, ("p", "embed_dim", "width")),
    "parity_mlp": Family(parity_activations, ("n_train", "n_test", "n_bits", "width")),
    "omni_mlp": Family(three_layer_activations, ("width",)),  # n_train is capped by the 1,797 digits
    "teacher_mlp": Family(three_layer_activations, ("n_train", "n_test", "width")),
}


# ---- weights, and the look inside --------------------------------------------------------


def count_parameters(cfg: RunConfig, n_classes: int) -> int:
    """Exact, from the real model built on the meta device: shapes only, nothing allocated."""
    with torch.device("meta"):
        model = build_model(cfg, n_classes)
    return sum(p.numel() for p in model.parameters())


def weight_copies(cfg: RunConfig) -> int:
    """How many parameter-sized tensors a step holds."""
    # Parameters, gradients, AdamW's exp_avg and exp_avg_sq; then two temporaries for AdamW's
    # denominator (foreach on CUDA makes them for every tensor at once), or the L1 penalty's |w|.
    return 4 + 2 + (1 if cfg.grokfast else 0)


def spectrum_input_shape(cfg: RunConfig) -> tuple[int, int] | None:
    """The p x H matrix neuron_spectrum transforms, for the models that have one."""
    if cfg.model == "pair":
        return cfg.p, cfg.width
    if cfg.model == "concat":
        return cfg.p, cfg.width
    if cfg.model == "transformer":
        return cfg.p, cfg.embed_dim
    return None


def inspection_bytes(cfg: RunConfig) -> int:
    """What look_inside computes beside the weights it only views."""
    shape = spectrum_input_shape(cfg)
    if shape is None:
        return 0
    p, h = shape
    # neuron_spectrum: a float64 copy (8 bytes), the complex128 rfft of half the rows (8),
    # its magnitude and square (4 + 4).
    spectrum = 24 * p * h
    # The concat model's neuron inputs are a product, made twice per look, and the previous
    # look's copy is still held by the last snapshot.
    products = 3 * FLOAT * p * h if cfg.model == "concat" else 0
    return spectrum + products


# ---- the estimate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """The estimate in parts, in bytes; `total` is what check_fits compares."""

    examples: Examples
    n_params: int
    dataset: int
    weights: int
    training: int
    evaluation: int
    inspection: int

    @property
    def activations(self) -> int:
        # Summed, not the larger of the two: the CPU allocator keeps the step's freed
        # mid-sized blocks (under glibc's 32 MB mmap threshold), and CUDA's caching allocator
        # its blocks, so the evaluation's peak lands on top of part of the step's.
        return self.training + self.evaluation

    @property
    def total(self) -> int:
        return self.dataset + self.weights + self.activations + self.inspection


def footprint(cfg: RunConfig) -> Footprint:
    ex = examples(cfg)
    act = FAMILIES[cfg.model].activations(cfg, ex.n_classes)
    n_params = count_parameters(cfg, ex.n_classes)
    # Evaluation: the training set's logits are still held while the test set runs.
    evaluation = max(ex.n_train * act.forward, ex.n_train * ex.n_classes + ex.n_test * act.forward)
    return Footprint(
        examples=ex,
        n_params=n_params,
        dataset=FLOAT * ex.total * dataset_floats_per_example(cfg),
        weights=FLOAT * n_params * weight_copies(cfg),
        training=FLOAT * ex.n_train * act.train,
        evaluation=FLOAT * evaluation,
        inspection=inspection_bytes(cfg),
    )


def estimate_bytes(cfg: RunConfig) -> int:
    """About the peak memory a Trainer(cfg) needs on its device, leaning high (never below)."""
    return footprint(cfg).total


# ---- what the machine has, and the check ---------------------------------------------------


def available_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device; otherwise the system memory available to a new allocation."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free
    return psutil.virtual_memory().available


def human_size(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1e6:,.1f} MB"


def _largest_part(fp: Footprint, cfg: RunConfig) -> str:
    parts = {
        f"activations of {fp.examples.total:,} examples": fp.activations,
        f"weights and optimizer state of {fp.n_params:,} parameters": fp.weights,
        f"a dataset of {fp.examples.total:,} examples": fp.dataset,
        "the spectrum of the {} x {} input weights".format(*(spectrum_input_shape(cfg) or (0, 0))): fp.inspection,
    }
    return max(parts, key=parts.__getitem__)


def _flags(fields: tuple[str, ...]) -> str:
    flags = ["--" + f.replace("_", "-") for f in fields]
    return flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " or " + flags[-1]


def wont_fit_message(cfg: RunConfig, fp: Footprint, device: torch.device, available: int, headroom: float) -> str:
    drivers = FAMILIES[cfg.model].drivers
    settings = ", ".join(f"{f.replace('_', '-')} {getattr(cfg, f)}" for f in drivers)
    where = "GPU" if device.type == "cuda" else "CPU"
    # Say why a run under the available figure is still refused.
    share = f", of which a run may use {headroom:.0%}" if fp.total <= available else ""
    return (
        f"this run needs about {human_size(fp.total)} ({settings}: {_largest_part(fp, cfg)}), "
        f"and the {where} has {human_size(available)} available{share}; use a smaller {_flags(drivers)}"
    )


def check_fits(cfg: RunConfig, device: torch.device, headroom: float = DEFAULT_HEADROOM) -> None:
    """Raise WontFit, before anything is allocated, if the run needs more than `headroom` of what is free.

    The headroom leaves room for the interpreter, the libraries and whatever else runs.
    """
    fp = footprint(cfg)
    available = available_bytes(device)
    if fp.total > headroom * available:
        raise WontFit(wont_fit_message(cfg, fp, device, available, headroom), fp.total, available)


__all__ = [
    "WontFit", "Footprint", "available_bytes", "check_fits", "estimate_bytes", "footprint", "human_size",
]
