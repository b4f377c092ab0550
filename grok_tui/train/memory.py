"""How much memory a run needs, estimated from its config before anything is allocated.

Every flag has its own bounds, but some allowed combinations (`--p 1000 --width 65536`)
need hundreds of GB; without a check such a run dies in an allocator traceback. The
estimate counts what `Trainer` holds and computes on its device, per model family:

- the dataset tensors (and the temporaries that build them);
- parameters, gradients, AdamW's two moments, the Grokfast EMA, the optimizer's temporaries;
- a single run's copy of its last finite state (weights, moments, EMA) to go back to on an overflow;
- one full-batch forward + backward (every training example at once);
- one evaluation: a no_grad forward over the whole training set, then the whole test set;
- `look_inside`: the per-neuron spectrum of the p x H input weights (numpy, float64).

Activations are counted in float32 units per example, read off the models' forward passes
and autograd's backward; on top comes a fixed allowance for the allocator. The estimate is
meant to sit at or above the real peak, and within about 3x of it (tests/test_memory.py
measures it for three model families).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil
import torch

from grok_tui.config import N_DIGITS, RunConfig, modular_pairs, modular_train_size
from grok_tui.tasks.teacher import HIDDEN as TEACHER_HIDDEN
from grok_tui.tasks.teacher import IN_DIM as TEACHER_IN
from grok_tui.tasks.teacher import OUT_DIM as TEACHER_OUT

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
        n, n_train = modular_pairs(cfg), modular_train_size(cfg)
        return Examples(n_train, n - n_train, cfg.p)
    if cfg.task == "digits":
        return Examples(cfg.n_train, N_DIGITS - cfg.n_train, 10)
    if cfg.task == "teacher":
        return Examples(cfg.n_train, cfg.n_test, TEACHER_OUT)
    return Examples(cfg.n_train, cfg.n_test, 2)


@dataclass(frozen=True)
class DatasetBytes:
    kept: int  # the tensors the trainer holds for the whole run
    building: int  # the peak inside build_dataset, before the model exists


def dataset_bytes(cfg: RunConfig, ex: Examples) -> DatasetBytes:
    """See grok_tui/tasks/: the building peak is well above what is kept for some tasks."""
    if cfg.task == "modular":
        # Kept: int64 pairs and labels. Building: the cartesian product, its stacked copy, the
        # labels, the permutation and the train/test copies, about eight int64s per pair.
        return DatasetBytes(FLOAT * ex.total * 3 * INDEX, FLOAT * ex.total * 8 * INDEX)
    if cfg.task == "parity":
        kept = FLOAT * ex.total * (cfg.n_bits + INDEX)
        # Each batch is drawn as int64 bits, then .float() and *2 make copies before -1.
        batch = FLOAT * max(ex.n_train, ex.n_test) * (INDEX + 2) * cfg.n_bits
        return DatasetBytes(kept, kept + batch)
    if cfg.task == "teacher":
        # The teacher labels every input in one no_grad forward through its two hidden layers.
        kept = FLOAT * ex.total * (TEACHER_IN + TEACHER_OUT)
        return DatasetBytes(kept, kept + FLOAT * ex.total * 2 * TEACHER_HIDDEN)
    # Digits: scikit-learn's float64 pixels and images, our float32 copy, its scaled copy, the split.
    return DatasetBytes(FLOAT * N_DIGITS * (64 + INDEX), FLOAT * N_DIGITS * 64 * (2 * INDEX + 3))


# ---- activations, per model family (float32 units per example) ---------------------------
#
# Each count is the largest set of tensors alive at one moment, phase by phase, read off
# the model's forward and autograd's backward (which frees a node's saved tensors as soon
# as it has run). Measured with glibc's mmap threshold pinned, so that RSS follows the live
# tensors, the counts are 1.0x to 1.1x of the real peak.


@dataclass(frozen=True)
class Activations:
    train: int  # one forward + backward with autograd
    forward: int  # one no_grad forward, including the loss and accuracy on its logits


def loss_floats(cfg: RunConfig, classes: int, training: bool) -> int:
    """Per example, the logits and what the loss makes beside them.

    Cross-entropy: log_softmax's output beside the logits; backward, the nll and log_softmax
    gradients beside the saved output (the logits are gone by then). MSE on class labels builds
    an int64 one-hot (two floats' worth) and its float copy; the teacher's targets are floats.
    """
    if cfg.loss in ("ce", "ce_per_class"):
        return 3 * classes if training else 2 * classes + 4 * INDEX
    return 6 * classes


def sum_activations(cfg: RunConfig, classes: int) -> Activations:
    w, loss = cfg.width, loss_floats(cfg, classes, True)
    # Forward: both operands' embeddings (2W) beside their sum (W); the relu (W) is saved for
    # the loss. Backward ends the same way round: the embedding gradient made contiguous (2W)
    # beside the relu gradient (W), with the sorted indices.
    train = max(3 * w, w + loss) + 2 * INDEX
    forward = max(3 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def factored_activations(cfg: RunConfig, classes: int) -> Activations:
    d, w, loss = cfg.embed_dim, cfg.width, loss_floats(cfg, classes, True)
    # Forward: both operands' embedding rows (2D) and their projections (2W), the relu (W), the
    # projection back (D), then the logits; backward mirrors it.
    train = 2 * d + 3 * w + d + loss + 2 * INDEX
    forward = max(2 * d + 3 * w + d, d + classes + loss_floats(cfg, classes, False))
    return Activations(train, forward)


def concat_activations(cfg: RunConfig, classes: int) -> Activations:
    e, w, loss = cfg.embed_dim, cfg.width, loss_floats(cfg, classes, True)
    # The concatenation (2E) is saved for the hidden layer's backward, so it sits under every
    # phase: the hidden layer and its relu (2W) forward, the loss beside the relu, two more
    # W-sized gradients at the relu's backward, and at the end its own gradient split back
    # into two contiguous embedding gradients (2E) beside the relu gradient (W).
    train = max(2 * e + 3 * w, 2 * e + w + loss, 4 * e + w) + 2 * INDEX
    # `h` is a local of forward: the concatenation lives until the logits are made.
    forward = max(4 * e, 2 * e + 2 * w, 2 * e + w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def transformer_activations(cfg: RunConfig, classes: int) -> Activations:
    d, m = cfg.embed_dim, cfg.width
    # Saved per token: the residual stream three times, q k v, the attention output and its
    # reshaped copy (8D), and the MLP's relu (M). Backward adds two M-sized gradients and one D
    # at the MLP, and at the attention the q, k, v gradients and their stacked copy (6D) beside
    # what the attention saved.
    train = N_CTX * max(9 * d + 3 * m, 13 * d) + loss_floats(cfg, classes, True) + N_CTX * INDEX
    # no_grad: q, k, v and the attention output are locals of forward, alive to its end, so the
    # MLP runs beside them (5D + 2M), then its output and the last residual beside the relu.
    forward = max(
        N_CTX * max(7 * d + m, 5 * d + 2 * m),
        N_CTX * 7 * d + classes,
        loss_floats(cfg, classes, False),
    )
    return Activations(train, forward)


def parity_activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # The ±1 inputs need no gradient: the relu (W) is saved, and its backward holds two more W.
    train = max(3 * w, w + loss_floats(cfg, classes, True))
    forward = max(2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


def three_layer_activations(cfg: RunConfig, classes: int) -> Activations:
    w = cfg.width
    # Omnigrok's MLPs (digits relu, teacher tanh): both activations are saved (2W); the second
    # layer's output sits beside them forward, two gradients beside them backward.
    train = max(4 * w, 2 * w + loss_floats(cfg, classes, True))
    forward = max(2 * w, w + classes, loss_floats(cfg, classes, False))
    return Activations(train, forward)


# ---- parameters, per model family (see grok_tui/models/) --------------------------------
#
# By formula rather than by building the model on the meta device: nn.Embedding's normal_
# init runs there through torch's Python decompositions, whose first use imports ~800
# modules (~1 s, ~75 MB) into the calling process, the UI's included. A test holds each
# formula to the real model.


def linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def sum_parameters(cfg: RunConfig, classes: int) -> int:
    return cfg.p * cfg.width + linear(cfg.width, classes, bias=False)


def factored_parameters(cfg: RunConfig, classes: int) -> int:
    return cfg.p * cfg.embed_dim + 2 * cfg.embed_dim * cfg.width


def unfactored_parameters(cfg: RunConfig, classes: int) -> int:
    return cfg.p * cfg.width + cfg.width * classes


def concat_parameters(cfg: RunConfig, classes: int) -> int:
    return 2 * cfg.p * cfg.embed_dim + linear(2 * cfg.embed_dim, cfg.width) + linear(cfg.width, classes)


def transformer_parameters(cfg: RunConfig, classes: int) -> int:
    d, m = cfg.embed_dim, cfg.width
    embed = (cfg.p + 1) * d + N_CTX * d  # the tokens with "=", and the positions
    attention = linear(d, 3 * d, bias=False) + linear(d, d, bias=False)
    return embed + attention + linear(d, m) + linear(m, d) + linear(d, classes, bias=False)


def parity_parameters(cfg: RunConfig, classes: int) -> int:
    return linear(cfg.n_bits, cfg.width) + linear(cfg.width, classes)


def three_layer_parameters(cfg: RunConfig, classes: int) -> int:
    n_in = 64 if cfg.model == "omni_mlp" else TEACHER_IN  # 8x8 digits, or the teacher's inputs
    return linear(n_in, cfg.width) + linear(cfg.width, cfg.width) + linear(cfg.width, classes)


@dataclass(frozen=True)
class Family:
    activations: Callable[[RunConfig, int], Activations]
    parameters: Callable[[RunConfig, int], int]
    drivers: tuple[str, ...]  # the config fields the size grows with, named in WontFit


FAMILIES: dict[str, Family] = {
    "sum_mlp": Family(sum_activations, sum_parameters, ("p", "width")),
    "factored": Family(factored_activations, factored_parameters, ("p", "embed_dim", "width")),
    "unfactored": Family(sum_activations, unfactored_parameters, ("p", "width")),
    "concat": Family(concat_activations, concat_parameters, ("p", "embed_dim", "width")),
    "transformer": Family(transformer_activations, transformer_parameters, ("p", "embed_dim", "width")),
    "parity_mlp": Family(parity_activations, parity_parameters, ("n_train", "n_test", "n_bits", "width")),
    # The digits' n_train is capped by the 1,797 images: only the width can make it big.
    "omni_mlp": Family(three_layer_activations, three_layer_parameters, ("width",)),
    "teacher_mlp": Family(three_layer_activations, three_layer_parameters, ("n_train", "n_test", "width")),
}


def count_parameters(cfg: RunConfig, n_classes: int) -> int:
    return FAMILIES[cfg.model].parameters(cfg, n_classes)


# ---- optimizer state, and the look inside ---------------------------------------------


def weight_copies(cfg: RunConfig) -> int:
    """How many parameter-sized tensors a step holds."""
    # Parameters, gradients, AdamW's exp_avg and exp_avg_sq; then two temporaries for AdamW's
    # denominator (foreach on CUDA makes them for every tensor at once), or the L1 penalty's |w|.
    return 4 + 2 + (1 if cfg.grokfast else 0)


def finite_copies(cfg: RunConfig) -> int:
    """How many parameter-sized tensors a single run keeps of its last finite state, to go back to
    when a value overflows (trainer.py): the weights, AdamW's two moments, the Grokfast average."""
    return 3 + (1 if cfg.grokfast else 0)


def spectrum_input_shape(cfg: RunConfig) -> tuple[int, int] | None:
    """The p x H matrix neuron_spectrum transforms, for the models that have one."""
    if cfg.model in ("sum_mlp", "concat", "factored", "unfactored"):
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
    products = 3 * FLOAT * p * h if cfg.model in ("concat", "factored") else 0
    return spectrum + products


# ---- the estimate ----------------------------------------------------------------------------


# glibc's malloc serves blocks under its mmap threshold (which adapts up to 32 MB) from a heap
# that keeps the holes steps and evaluations leave. Over a long run (60-400 steps, measured
# with ru_maxrss) the holes grew to 0.7x-1.6x of the counted activations, 150-190 MB at most:
# pair p 200 width 512 reached 452 MB of RSS for 283 MB counted, mod-add 19 MB for 8 MB.
# Blocks over 32 MB are mmapped and handed back at once, so the holes stop growing with the run.
HEAP_SLACK_FACTOR = 2
HEAP_SLACK_MAX = 384 * 2**20


@dataclass(frozen=True)
class Footprint:
    """The estimate in parts, in bytes; `total` is what check_fits compares."""

    examples: Examples
    n_params: int
    dataset: DatasetBytes
    weights: int
    finite_copy: int  # a single run's copy of its last finite state (a batched member keeps none)
    training: int
    evaluation: int
    inspection: int

    @property
    def activations(self) -> int:
        # Summed, not the larger of the two: steps and evaluations take turns, and the heap
        # keeps much of what one freed in shapes the other cannot reuse.
        return self.training + self.evaluation

    @property
    def heap_slack(self) -> int:
        return min(HEAP_SLACK_FACTOR * self.activations, HEAP_SLACK_MAX)

    @property
    def total(self) -> int:
        running = (
            self.dataset.kept + self.weights + self.finite_copy + self.activations + self.inspection + self.heap_slack
        )
        return max(self.dataset.building, running)


def footprint(cfg: RunConfig) -> Footprint:
    ex = examples(cfg)
    act = FAMILIES[cfg.model].activations(cfg, ex.n_classes)
    n_params = count_parameters(cfg, ex.n_classes)
    # Evaluation: the training set's logits are still held while the test set runs.
    evaluation = max(ex.n_train * act.forward, ex.n_train * ex.n_classes + ex.n_test * act.forward)
    return Footprint(
        examples=ex,
        n_params=n_params,
        dataset=dataset_bytes(cfg, ex),
        weights=FLOAT * n_params * weight_copies(cfg),
        finite_copy=FLOAT * n_params * finite_copies(cfg),
        training=FLOAT * ex.n_train * act.train,
        evaluation=FLOAT * evaluation,
        inspection=inspection_bytes(cfg),
    )


def estimate_bytes(cfg: RunConfig) -> int:
    """About the peak memory a Trainer(cfg) needs on its device, leaning high (never below)."""
    return footprint(cfg).total


def member_bytes(cfg: RunConfig) -> int:
    """About what one member of a batched sweep adds: its data, weights, optimizer state and activations
    (no spectrum: a sweep does not look inside its members while they train)."""
    fp = footprint(cfg)
    return fp.dataset.kept + fp.weights + fp.activations


# ---- what the machine has, and the check ---------------------------------------------------


def available_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device; otherwise the system memory available to a new allocation."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    available: int = psutil.virtual_memory().available
    return available


def human_size(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1e6:,.1f} MB"


def _largest_part(fp: Footprint, cfg: RunConfig) -> str:
    parts = {
        f"activations of {fp.examples.total:,} examples": fp.activations,
        f"weights and optimizer state of {fp.n_params:,} parameters": fp.weights + fp.finite_copy,
        f"a dataset of {fp.examples.total:,} examples": fp.dataset.building,
        "the spectrum of the {} x {} input weights".format(*(spectrum_input_shape(cfg) or (0, 0))): fp.inspection,
    }
    return max(parts, key=parts.__getitem__)


def _flags(fields: tuple[str, ...]) -> str:
    flags = ["--" + f.replace("_", "-") for f in fields]
    return flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " or " + flags[-1]


def check_need(
    need: int, device: torch.device, subject: str, detail: str, remedy: str, headroom: float = DEFAULT_HEADROOM
) -> None:
    """The one memory rule, for a run and a sweep alike: WontFit if `need` is over `headroom` of what the
    device has free. The headroom leaves room for the interpreter, the libraries and whatever else runs.

    The message states the rule with its figures: a need under the free figure is still refused, and
    without the rule that reads as a contradiction.
    """
    available = available_bytes(device)
    allowed = int(headroom * available)
    if need > allowed:
        where = "GPU" if device.type == "cuda" else "CPU"
        raise WontFit(
            f"{subject} needs about {human_size(need)} ({detail}), and the {where} has {human_size(available)} "
            f"available, of which at most {headroom:.0%} ({human_size(allowed)}) may be used; {remedy}",
            need,
            available,
        )


def check_fits(cfg: RunConfig, device: torch.device, headroom: float = DEFAULT_HEADROOM) -> None:
    """Raise WontFit, before anything is allocated, if the run needs more than `headroom` of what is free."""
    fp = footprint(cfg)
    drivers = FAMILIES[cfg.model].drivers
    settings = ", ".join(f"{f.replace('_', '-')} {getattr(cfg, f)}" for f in drivers)
    check_need(
        fp.total,
        device,
        "this run",
        f"{settings}: {_largest_part(fp, cfg)}",
        f"use a smaller {_flags(drivers)}",
        headroom,
    )


def check_sweep_fits(
    shards: Sequence[Sequence[RunConfig]], at_once: int, device: torch.device, headroom: float = DEFAULT_HEADROOM
) -> None:
    """Raise WontFit, before anything is written, if the `at_once` largest shards of a sweep (each a list of
    its members' configs) will not fit together."""
    sizes = sorted((sum(member_bytes(cfg) for cfg in shard) for shard in shards), reverse=True)
    per = max((member_bytes(cfg) for shard in shards for cfg in shard), default=0)
    running = min(at_once, len(sizes))
    check_need(
        sum(sizes[:at_once]),
        device,
        "the sweep",
        f"{running} shard{'s' if running != 1 else ''} training at once, {human_size(per)} a member",
        "use fewer values on an axis, or --workers 1",
        headroom,
    )


__all__ = [
    "WontFit",
    "Footprint",
    "available_bytes",
    "check_fits",
    "check_need",
    "check_sweep_fits",
    "estimate_bytes",
    "footprint",
    "human_size",
    "member_bytes",
]
