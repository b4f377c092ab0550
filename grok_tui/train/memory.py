"""How much memory a run needs, estimated from its config before anything is allocated.

Every flag has its own bounds, but some allowed combinations (`--p 1000 --width 65536`)
need hundreds of GB; without a check such a run dies in an allocator traceback. The
estimate counts what `Trainer` holds and computes on its device:

- the dataset tensors (and the temporaries that build them);
- parameters, gradients, AdamW's two moments, the Grokfast EMA, the optimizer's temporaries;
- a single run's copy of its last finite state (weights, moments, EMA) to go back to on an overflow;
- one full-batch forward + backward (every training example at once);
- one evaluation: a no_grad forward over the whole training set, then the whole test set;
- `inspect_model`: the per-neuron spectrum of the p x H input weights (numpy, float64).

The model's own part (its parameter count, its activations per example, the p x H matrix it
is looked inside by) is what its family declares (models/registry.py, in the units of
models/footprint.py); the data's part is the task's, below. On top comes a fixed allowance for
the allocator. The estimate is meant to sit at or above the real peak, and within about 3x of
it (tests/test_memory.py measures it for three model families).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psutil
import torch

from grok_tui.config import N_DIGITS, RunConfig, flag_name, modular_pairs, modular_train_size
from grok_tui.models.footprint import INDEX
from grok_tui.models.registry import Family, family
from grok_tui.tasks.digits import PIXELS
from grok_tui.tasks.teacher import HIDDEN as TEACHER_HIDDEN
from grok_tui.tasks.teacher import IN_DIM as TEACHER_IN
from grok_tui.tasks.teacher import OUT_DIM as TEACHER_OUT

FLOAT = 4  # bytes in a float32
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
    classes = family(cfg.model).classes(cfg)
    if cfg.task == "modular":
        n, n_train = modular_pairs(cfg), modular_train_size(cfg)
        return Examples(n_train, n - n_train, classes)
    if cfg.task == "digits":
        return Examples(cfg.n_train, N_DIGITS - cfg.n_train, classes)
    return Examples(cfg.n_train, cfg.n_test, classes)


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
    return DatasetBytes(FLOAT * N_DIGITS * (PIXELS + INDEX), FLOAT * N_DIGITS * PIXELS * (2 * INDEX + 3))


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


def inspection_bytes(cfg: RunConfig) -> int:
    """What inspect_model computes beside the weights it only views."""
    fam = family(cfg.model)
    if fam.neurons is None:
        return 0
    p, h = fam.neurons(cfg)
    # neuron_spectrum: a float64 copy (8 bytes), the complex128 rfft of half the rows (8),
    # its magnitude and square (4 + 4).
    spectrum = 24 * p * h
    return spectrum + fam.neuron_copies * FLOAT * p * h


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


def count_parameters(cfg: RunConfig, n_classes: int) -> int:
    return family(cfg.model).parameters(cfg, n_classes)


def footprint(cfg: RunConfig) -> Footprint:
    ex = examples(cfg)
    act = family(cfg.model).activations(cfg, ex.n_classes)
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


def _largest_part(fp: Footprint, cfg: RunConfig, fam: Family) -> str:
    neurons = fam.neurons(cfg) if fam.neurons is not None else (0, 0)
    parts = {
        f"activations of {fp.examples.total:,} examples": fp.activations,
        f"weights and optimizer state of {fp.n_params:,} parameters": fp.weights + fp.finite_copy,
        f"a dataset of {fp.examples.total:,} examples": fp.dataset.building,
        "the spectrum of the {} x {} input weights".format(*neurons): fp.inspection,
    }
    return max(parts, key=parts.__getitem__)


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


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
    fp, fam = footprint(cfg), family(cfg.model)
    flags = {field: flag_name(field) for field in fam.drivers}
    settings = ", ".join(f"{flag.removeprefix('--')} {getattr(cfg, field)}" for field, flag in flags.items())
    check_need(
        fp.total,
        device,
        "this run",
        f"{settings}: {_largest_part(fp, cfg, fam)}",
        f"use a smaller {_either(list(flags.values()))}",
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
