"""What a run is: one flat, JSON-serialisable dataclass, and the named presets.

A flat config keeps `config.json`, the CLI flags and `--resume` in one-to-one
correspondence: every field is a flag (underscores become dashes), and a
preset is nothing but a set of field overrides.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from grok_tui.models.registry import REGISTRY, models_for

TASKS = ("modular", "parity", "digits", "teacher")
# The model families, each with the task it learns, are the registry's (models/registry.py); these are
# what it says as config.py loads.
MODELS = tuple(REGISTRY)
MODULAR_MODELS = models_for("modular")
# Older run directories name the summed-embedding MLP by the article it was taken from.
MODEL_ALIASES = {"pair": "sum_mlp"}
# The model each non-modular task takes.
TASK_MODEL = {task: models_for(task)[0] for task in TASKS if task != "modular"}
N_DIGITS = 1797  # images in scikit-learn's bundled 8×8 digits
OPS = ("+", "-", "*", "/")
# ce_per_class: cross-entropy averaged over the classes too (÷ p), as the PAIR notebook writes its loss.
LOSSES = ("ce", "ce_per_class", "mse")
# Which pairs a modular task has: every (a, b), or the unordered ones, a <= b (the PAIR notebook's
# "symmetric input"), split as that notebook splits them (see tasks/modular.py).
PAIRS = ("all", "unordered")
DEVICES = ("auto", "cpu", "cuda")


def clip(text: str, limit: int = 40) -> str:
    """A value's text as a one-line message quotes it: a 400-digit int from the channel or a file is named,
    not printed whole."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigError(ValueError):
    """A config value that is not allowed: names the field, the value and what would be right."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: {clip(repr(value))} is not allowed; expected {allowed}")

    @property
    def flag(self) -> str:
        return flag_name(self.field)

    @property
    def flag_line(self) -> str:
        """The error as a command line's flag gives it: `--lr: -1.0 is not allowed; expected ...`."""
        return f"{self.flag}: {self.value!r} is not allowed; expected {self.allowed}"


# Flags whose name is not their field's: seconds read better in the help than in the flag.
FLAG_NAMES = {"checkpoint_every_s": "--checkpoint-every"}


def flag_name(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


@dataclass(frozen=True)
class RunConfig:
    experiment: str = "custom"
    # Task.
    task: str = "modular"
    op: str = "+"
    p: int = 67
    train_frac: float = 0.3
    pairs: str = "all"
    n_bits: int = 30
    k_bits: int = 3
    n_train: int = 1200
    n_test: int = 2000
    # Regression tasks (teacher): a sample counts as correct when its squared error, averaged over
    # the 5 output components, is below acc_tol (Omnigrok's threshold 1e-3: an L2 distance < 0.071).
    acc_tol: float = 1e-3
    # Model.
    model: str = "sum_mlp"
    width: int = 128
    embed_dim: int = 128
    init_scale: float = 1.0
    # Optimisation: full-batch AdamW, optional L1 penalty on the loss.
    loss: str = "ce"
    lr: float = 1e-2
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    l1: float = 0.0
    # The lr ramps up linearly over the first warmup_steps steps, from 0 at the first (LambdaLR
    # min(step / warmup_steps, 1), as Nanda et al.'s code does over 10); 0: no warm-up.
    warmup_steps: int = 0
    # Interventions at the start (all can also be changed live).
    train_size: int = 0  # 0: the whole training set
    constrain_norm: float = 0.0  # 0: off
    grokfast: bool = False
    grokfast_alpha: float = 0.98
    grokfast_lamb: float = 2.0
    # Schedule.
    steps: int = 10_000
    eval_every: int = 10
    checkpoint_every_s: float = 30.0
    seed: int = 0
    device: str = "auto"
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(repr(unknown[0]), data[unknown[0]], "a known config field")
        model = data.get("model")
        if isinstance(model, str) and model in MODEL_ALIASES:
            data = {**data, "model": MODEL_ALIASES[model]}
        return validate(cls(**data))

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


# Each field's type, as a flag's text is read: the dataclass's own annotations.
FIELD_TYPES: dict[str, type] = typing.get_type_hints(RunConfig)


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def is_finite(x: Any) -> TypeGuard[int | float]:
    # An int past float's range would overflow math.isfinite: no field wants one.
    return (isinstance(x, float) and math.isfinite(x)) or (is_int(x) and abs(x) < 2**63)


def _choice(options: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in options), " or ".join(options)


def _shown_bound(x: float) -> str:
    return f"{x:g}".replace("e+0", "e").replace("e+", "e")


@dataclass(frozen=True)
class Range:
    """The finite numbers (or, with `integer`, the ints) from `low` to `high` (math.inf: no bound but
    float's), `low` itself left out when `above`: one value's rule, stated once, which every way of giving
    that value (a flag, a command on the channel, a typed value, a sweep's file) checks and quotes."""

    low: float
    high: float
    above: bool = False
    integer: bool = False
    # What a message says is allowed, where the bounds alone would say less ("a number of CPUs ...").
    words: str | None = None

    def __call__(self, v: Any) -> bool:
        if self.integer and not is_int(v):
            return False
        return is_finite(v) and (v > self.low if self.above else v >= self.low) and v <= self.high

    @property
    def allowed(self) -> str:
        if self.words is not None:
            return self.words
        low, high = _shown_bound(self.low), _shown_bound(self.high)
        kind = "an integer" if self.integer else "a finite number"
        if math.isinf(self.high):
            return f"{kind} {'>' if self.above else '>='} {low}"
        if self.integer and not self.above:
            return f"an integer from {low} to {high}"
        return f"{kind} {'>' if self.above else '>='} {low} and <= {high}"

    def clamp(self, v: float) -> float | None:
        """v brought within the range (a value scaled past the top stops at it), or None where it fell
        below it: halving an lr down to 0 cannot be made one."""
        v = min(v, self.high)
        return v if self(v) else None


# The numbers that drive a training step, each with the range where it still means something,
# far inside float32 (a torch scalar past 3.4e38 raises mid-update; a tensor past it is inf, then NaN):
# - lr: an AdamW step moves every weight by up to about lr, whatever the gradient's size, and these models'
#   weights start within about 1 of 0; the presets use 1e-3 to 3e-2, and at 10 mod-add diverges by step 60.
# - weight_decay: each step multiplies the weights by 1 - lr × wd; past 1 they flip sign instead of
#   shrinking, and at the smallest lr a preset uses (1e-3) that is wd 1000.
# - l1: the penalty is l1 × sum |w|, hundreds to thousands here; at 10 it outweighs the task's loss (a
#   few nats) a thousandfold.
# - init_scale: the presets use 1 to 10; at 1000 the digits MLP trains at a loss of ~1e14, AdamW's
#   moments at ~1e24 (measured at step 200).
# - a norm target: 1e6 is ten times the norm a model here starts with at init scale 1000 (mod-add: 9e4).
# - grokfast_lamb: AdamW divides out the gradient's scale, so past a few hundred g + lamb·h is lamb·h.
# Sizes: the bounds keep a single value from asking for absurd memory on its own (train/memory.py refuses
# the combinations that would).
P = Range(2, 1000, integer=True)
N_BITS = Range(1, 1000, integer=True)
WIDTH = Range(1, 65536, integer=True)
THREADS = Range(1, 256, integer=True)
LR = Range(0.0, 10.0, above=True)
WEIGHT_DECAY = Range(0.0, 1000.0)
L1 = Range(0.0, 10.0)
INIT_SCALE = Range(0.0, 1000.0, above=True)
NORM_TARGET = Range(0.0, 1e6, above=True)
GROKFAST_LAMB = Range(0.0, 1000.0)
# The hyperparameters a running trainer takes commands for (control.py), by name.
HYPER_RANGES = {"weight_decay": WEIGHT_DECAY, "lr": LR, "l1": L1}
# How many of the training examples to keep while ungrokking: a command's size (None: all of them), a typed
# one (below the set's size), a config's train_size (0: all of them).
TRAIN_SUBSET = Range(1, math.inf, integer=True)
WARMUP_STEPS = Range(0, math.inf, integer=True)


# Each field's own rule: a predicate and the words that say what is allowed.
# Rules that tie two fields together live in `validate`.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "experiment": (
        lambda v: isinstance(v, str) and 0 < len(v) <= 100 and v.isprintable(),
        "a name of 1 to 100 printable characters",
    ),
    "task": _choice(TASKS),
    # Asked of the registry each time, so that a family registered later (a test's) is a model too.
    "model": (lambda v: isinstance(v, str) and v in REGISTRY, " or ".join(MODELS)),
    "op": _choice(OPS),
    "loss": _choice(LOSSES),
    "pairs": _choice(PAIRS),
    "device": _choice(DEVICES),
    "p": (P, P.allowed),
    "train_frac": (lambda v: is_finite(v) and 0 < v < 1, "a number strictly between 0 and 1"),
    "n_bits": (N_BITS, N_BITS.allowed),
    "k_bits": (lambda v: is_int(v) and v >= 1, "an integer from 1 to the number of bits"),
    "n_train": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "n_test": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "acc_tol": (lambda v: is_finite(v) and v > 0, "a finite number > 0 (a per-sample mean squared error)"),
    "width": (WIDTH, WIDTH.allowed),
    "embed_dim": (WIDTH, WIDTH.allowed),
    "init_scale": (INIT_SCALE, INIT_SCALE.allowed),
    "lr": (LR, LR.allowed),
    "weight_decay": (WEIGHT_DECAY, WEIGHT_DECAY.allowed),
    "beta1": (lambda v: is_finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "beta2": (lambda v: is_finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "l1": (L1, L1.allowed),
    "warmup_steps": (WARMUP_STEPS, WARMUP_STEPS.allowed),
    "train_size": (
        lambda v: (is_int(v) and v == 0) or TRAIN_SUBSET(v),
        f"0 (the whole training set) or {TRAIN_SUBSET.allowed}",
    ),
    "constrain_norm": (lambda v: (is_finite(v) and v == 0) or NORM_TARGET(v), f"0 (off) or {NORM_TARGET.allowed}"),
    "grokfast": (lambda v: isinstance(v, bool), "true or false"),
    "grokfast_alpha": (lambda v: is_finite(v) and 0 <= v < 1, "a number in [0, 1)"),
    "grokfast_lamb": (GROKFAST_LAMB, GROKFAST_LAMB.allowed),
    "steps": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "eval_every": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "checkpoint_every_s": (lambda v: is_finite(v) and v > 0, "a number of seconds > 0"),
    "seed": (lambda v: is_int(v) and 0 <= v < 2**63, "an integer >= 0"),
    "threads": (THREADS, THREADS.allowed),
}


def validate(cfg: RunConfig) -> RunConfig:
    """Return cfg unchanged, or raise ConfigError for the first field that is wrong."""
    for name, (ok, allowed) in RULES.items():
        if not ok(getattr(cfg, name)):
            raise ConfigError(name, getattr(cfg, name), allowed)

    def need(ok: bool, name: str, allowed: str) -> None:
        if not ok:
            raise ConfigError(name, getattr(cfg, name), allowed)

    need(cfg.k_bits <= cfg.n_bits, "k_bits", f"an integer from 1 to n_bits ({cfg.n_bits})")
    if cfg.task == "modular":
        if cfg.op in ("*", "/"):
            # Without a prime modulus b has no inverse (÷) and × loses its group structure.
            need(_is_prime(cfg.p), "p", f"a prime for the operation {cfg.op!r}")
        models = models_for("modular")
        need(cfg.model in models, "model", f"{', '.join(models)} for a modular task")
        if cfg.pairs == "unordered":
            # Half the table stands for the whole only where a∘b = b∘a.
            need(cfg.op in ("+", "*"), "pairs", "all for a non-commutative operation (unordered needs + or *)")
        n_pairs = modular_pairs(cfg)
        need(
            1 <= modular_train_size(cfg) < n_pairs,
            "train_frac",
            f"a fraction leaving at least one training and one test pair of {n_pairs}",
        )
    else:
        models = models_for(cfg.task)
        need(cfg.model in models, "model", f"{' or '.join(models)} for the {cfg.task} task")
        if cfg.task == "teacher":
            need(cfg.loss == "mse", "loss", "mse for the teacher task (a regression)")
        if cfg.task == "digits":
            need(cfg.n_train < N_DIGITS, "n_train", f"an integer from 1 to {N_DIGITS - 1} (the rest is the test set)")
    return cfg


def modular_pairs(cfg: RunConfig) -> int:
    """How many (a, b) pairs a modular task has."""
    if cfg.pairs == "unordered":
        return cfg.p * (cfg.p + 1) // 2
    return cfg.p * (cfg.p - 1 if cfg.op == "/" else cfg.p)


def modular_train_size(cfg: RunConfig) -> int:
    """How many of them are trained on (the unordered pairs are split the PAIR notebook's way: rounded down)."""
    n = modular_pairs(cfg)
    return int(cfg.train_frac * n) if cfg.pairs == "unordered" else round(cfg.train_frac * n)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, **changes: Any) -> RunConfig:
        return validate(RunConfig(experiment=self.name, **{**self.overrides, **changes}))


# The default groks on a 2-core laptop CPU in seconds, with a long, visible gap
# between memorisation and generalisation; see the README for the measurements.
DEFAULT_EXPERIMENT = "mod-add"

OP_NAMES = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
OP_WORDS = {"+": "a+b", "-": "a-b", "*": "a*b", "/": "a/b (b≠0, modular inverse)"}


def _modular_presets() -> list[Preset]:
    summed = dict(
        task="modular", p=67, train_frac=0.3, model="sum_mlp", width=128, lr=1e-2, weight_decay=0.3, steps=6000,
        eval_every=10,
    )  # fmt: skip
    presets = [
        Preset(
            "mod-add",
            "a+b mod 67, summed-embedding MLP (width 128), 30% train, AdamW lr 1e-2 wd 0.3: memorizes by ~step 70, "
            "groks by ~3,000",
            dict(summed, op="+"),
        ),
        # The summed-embedding MLP adds the two operands' embeddings, so it cannot tell a∘b from b∘a:
        # it only ships for the commutative operations.
        Preset(
            "mod-mul",
            "a*b mod 67, summed-embedding MLP, 30% train, wd 0.3: memorizes by ~step 70, groks by ~2,100",
            dict(summed, op="*"),
        ),
    ]
    for op, name in OP_NAMES.items():
        presets.append(
            Preset(
                f"concat-{name}",
                f"{OP_WORDS[op]} mod 53, concat MLP (Kitouni), 80% train, lr 3e-2 wd 0.03: test near chance, "
                f"then groks",
                dict(
                    task="modular",
                    op=op,
                    p=53,
                    train_frac=0.8,
                    model="concat",
                    width=128,
                    embed_dim=128,
                    lr=3e-2,
                    weight_decay=0.03,
                    steps=4000,
                    eval_every=10,
                ),
            )
        )
    # The PAIR article's own model, as its notebook (server-side/grokking/MLP_Modular_Addition.ipynb in
    # PAIR-code/ai-explorables) trains it: the unordered pairs of mod 67, 40% of them for training, one
    # embedding E (67x500) shared by both inputs and the output, a bias-free 500->24 layer on each
    # input, ReLU of the sum, a bias-free 24->500 layer, logits = out @ E^T; the loss is the
    # cross-entropy averaged over the classes too; full-batch AdamW lr 1e-3, wd 1, betas (0.9, 0.98);
    # 50,000 steps; seed 165 (the notebook's: its split is drawn the same way, see tasks/modular.py).
    article = dict(
        task="modular",
        op="+",
        p=67,
        pairs="unordered",
        train_frac=0.4,
        embed_dim=500,
        width=24,
        loss="ce_per_class",
        lr=1e-3,
        weight_decay=1.0,
        beta1=0.9,
        beta2=0.98,
        steps=50_000,
        eval_every=100,
        seed=165,
    )
    presets.append(
        Preset(
            "pair-article",
            "the PAIR article's model as its notebook trains it: a+b mod 67 (a<=b), 24 neurons between a shared "
            "500-d embedding, 40% train, lr 1e-3 wd 1: memorizes, sits near chance, then groks",
            dict(article, model="factored"),
        )
    )
    presets.append(
        Preset(
            "pair-article-unfactored",
            "the article's warning: the same 24 neurons trained directly (3,216 weights, no embedding), "
            "same optimizer: "
            "fits ~72% of the training set and never generalizes (test ~6% at 20,000 steps)",
            dict(article, model="unfactored"),
        )
    )
    # Circuit efficiency (Varma et al. 2023): near the critical dataset size the
    # memorizing and generalizing circuits are about as efficient, and the run
    # settles part-way. At wd 1.0 on mod 47 that size is near 20% of the pairs
    # (measured: 20% plateaus at ~50% test, 25% at ~90%, 30% groks fully).
    presets.append(
        Preset(
            "semi-grok",
            "a+b mod 47, summed-embedding MLP, 20% train (near the critical size), wd 1.0: memorizes, waits, "
            "then generalizes only part-way (test ~50%)",
            dict(
                task="modular",
                op="+",
                p=47,
                train_frac=0.2,
                model="sum_mlp",
                width=128,
                lr=1e-2,
                weight_decay=1.0,
                steps=30_000,
                eval_every=25,
            ),
        )
    )
    return presets


# Omnigrok (Liu, Michaud, Tegmark 2022): its two tasks at a large init scale; each has a control at
# alpha 1 that differs only there (and in its shorter budget).
OMNIGROK_DIGITS: dict[str, Any] = dict(
    task="digits", n_train=400, model="omni_mlp", width=200, init_scale=10.0, loss="mse", lr=1e-2,
    weight_decay=0.015, beta2=0.999, steps=15_000, eval_every=25,
)  # fmt: skip
TEACHER_STUDENT: dict[str, Any] = dict(
    task="teacher", n_train=100, n_test=1000, model="teacher_mlp", width=100, init_scale=3.0, loss="mse", lr=1e-3,
    weight_decay=0.1, beta2=0.999, steps=20_000, eval_every=50,
)  # fmt: skip


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        *_modular_presets(),
        Preset(
            "parity",
            "sparse parity: 30 bits, label = parity of the first 3, 1,200 train sequences, L1 penalty",
            dict(
                task="parity",
                n_bits=30,
                k_bits=3,
                n_train=1200,
                n_test=2000,
                model="parity_mlp",
                width=128,
                lr=1e-2,
                weight_decay=0.0,
                l1=1e-5,
                steps=3000,
                eval_every=10,
            ),
        ),
        # Omnigrok (Liu, Michaud, Tegmark 2022): a large init scale alpha makes an ordinary task grok;
        # weight decay then shrinks the weights back into the "Goldilocks zone", in time ~ 1/(lr*wd).
        Preset(
            "omnigrok-digits",
            "8x8 digits, 400 train, 3-layer MLP, MSE, init x10, lr 1e-2 wd 0.015: train 99% by ~1,800 (test ~27%), "
            "test 95% by ~10,000",
            OMNIGROK_DIGITS,
        ),
        Preset(
            "omnigrok-digits-a1",
            "omnigrok-digits at the standard init (alpha 1): train and test rise together, test ~95% by step ~50: "
            "no delay",
            dict(OMNIGROK_DIGITS, init_scale=1.0, steps=3000),
        ),
        Preset(
            "teacher-student",
            "Omnigrok's toy: student tanh MLP 5-100-100-5 at init x3 learns a random teacher from 100 points: "
            "fits by ~500 at 0% test, test 95% by ~9,000",
            TEACHER_STUDENT,
        ),
        Preset(
            "teacher-student-a1",
            "teacher-student at the standard init (alpha 1): test ~90% when train fits (~step 100): no delay",
            dict(TEACHER_STUDENT, init_scale=1.0, steps=3000),
        ),
        Preset(
            "transformer-add",
            "a+b mod 113, one-layer transformer (Nanda et al.), 30% train, wd 1.0, their 10-step warm-up: "
            "memorizes by ~200, test 99% by ~8,200 (~20 minutes of one CPU core)",
            dict(
                task="modular",
                op="+",
                p=113,
                train_frac=0.3,
                model="transformer",
                embed_dim=128,
                width=512,
                lr=1e-3,
                weight_decay=1.0,
                warmup_steps=10,
                steps=25_000,
                eval_every=100,
            ),
        ),
    )
}
