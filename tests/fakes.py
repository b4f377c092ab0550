"""Synthetic data, no torch, no clock: a fixed, deterministic snapshot stream for UI tests, and the
strategies the fuzz tests draw a run directory's records and files from."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from grok_tui.metrics import neuron_spectrum
from grok_tui.runlog import _json_line
from grok_tui.train.snapshot import Event, Metrics, Snapshot


def synthetic_run(steps: int = 3000, every: int = 50, p: int = 31, width: int = 48) -> tuple[list[Metrics], Snapshot]:
    """A run that memorizes by step 100 and generalizes around step 2,000, with one wd change at 1,500."""
    rows = []
    for step in range(0, steps + 1, every):
        wd = 0.3 if step < 1500 else 0.6
        train_acc = min(1.0, 0.03 + step / 100)
        test_acc = 0.03 + 0.95 / (1 + np.exp(-(step - 2000) / 150))
        rows.append(
            Metrics(
                step=step,
                train_loss=4.0 * np.exp(-step / 60) + 1e-4,
                train_acc=train_acc,
                test_loss=4.0 * (1 - test_acc) + 0.01,
                test_acc=float(test_acc),
                param_norm=60 + 30 * np.exp(-(((step - 1200) / 700) ** 2)),
                weight_decay=wd,
                lr=0.01,
                l1=0.0,
                elapsed_s=step / 400,
                steps_per_s=400.0,
                purity=0.1 + 0.8 * float(test_acc),
            )
        )
    n = np.arange(p)[:, None]
    freqs = np.array([3, 5, 7, 11])[np.arange(width) % 4]
    embedding = np.cos(2 * np.pi * freqs * n / p + np.arange(width) * 0.7)
    output = embedding.T[:, ::-1] * 0.5
    snapshot = Snapshot(
        experiment="synthetic",
        device="cpu",
        total_steps=steps,
        metrics=rows[-1],
        paused=False,
        finished=False,
        events=(Event(1500, "weight_decay", 0.3, 0.6),),
        tensor_norms={"embed.weight": 50.0, "unembed.weight": 40.0},
        matrices={"embedding": embedding, "output": output},
        spectrum=neuron_spectrum(embedding),
        neuron_inputs=embedding.astype(np.float32),
    )
    return rows, snapshot


# ---- fuzzing ------------------------------------------------------------------------------------

# Derandomized (the same examples on every run, so CI cannot flake) and no example database (nothing
# written into the repository).
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=60,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
DELETE = object()  # a mutation that removes the entry instead of replacing it


# ---- strategies: what a run directory may hold --------------------------------------------------

# Ints that JSON carries (Python parses up to 4300 digits) but that no float can hold.
HUGE_INTS = st.integers(2**1024, 10**400) | st.integers(-(10**400), -(2**1024))
# Ints any reader must take, float-sized or not.
SAFE_INTS = st.integers(-(2**64), 2**64) | HUGE_INTS
# Text with no line break in it: keys whose echo in a message must stay on one line.
SAFE_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=10)
# Any short text: a JSON object's keys.
SHORT_TEXT = st.text(max_size=8)


def json_values(keys=SHORT_TEXT, ints=SAFE_INTS):
    # Anything json.loads can hand back (NaN and ±Infinity included, as Python writes and reads them).
    leaves = st.none() | st.booleans() | ints | st.floats() | st.text(max_size=20)
    return st.recursive(leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=4), max_leaves=10)


JSONISH = json_values()

UNIT = st.floats(0, 1)
AT_LEAST_0 = st.floats(0, 1e12)
POSITIVE = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)
# A loss can be any finite number, or NaN (a diverged run writes it as null).
LOSS = st.floats(allow_infinity=False)
# A Metrics the trainer could have written.
VALID_METRICS = st.builds(
    Metrics,
    step=st.integers(0, 2**53),
    train_loss=LOSS,
    train_acc=UNIT,
    test_loss=LOSS,
    test_acc=UNIT,
    param_norm=AT_LEAST_0,
    weight_decay=AT_LEAST_0,
    lr=AT_LEAST_0,
    l1=AT_LEAST_0,
    elapsed_s=AT_LEAST_0,
    steps_per_s=AT_LEAST_0,
    purity=st.none() | UNIT,
    parity_share=st.none() | UNIT,
    train_size=st.none() | st.integers(0, 2**53),
    norm_target=st.none() | POSITIVE,
    grokfast=st.booleans(),
)
METRIC_FIELDS = [f.name for f in dataclasses.fields(Metrics)]
FLOAT_METRIC_FIELDS = [
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "param_norm",
    "weight_decay",
    "lr",
    "l1",
    "elapsed_s",
    "steps_per_s",
    "norm_target",
]

# An Event the trainer could have written: old/new are short scalars.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=500)
    | st.floats(-(2.0**53), 2.0**53, allow_nan=False)
)
VALID_EVENTS = st.builds(
    Event, step=st.integers(0, 2**53), kind=st.text(min_size=1, max_size=64), old=SCALARS, new=SCALARS
)


def spoiled(records, fields, values=JSONISH):
    # A valid record as read back from disk with one field replaced or removed: reaches every check, not just the first.
    def spoil(args):
        record, name, value = args
        row = json.loads(_json_line(record.to_dict()))
        if value is DELETE:
            row.pop(name, None)
        else:
            row[name] = value
        return row

    return st.tuples(records, st.sampled_from(fields), values | st.just(DELETE)).map(spoil)


METRICS_ROWS = spoiled(VALID_METRICS, METRIC_FIELDS + ["extra"])
EVENT_ROWS = spoiled(VALID_EVENTS, ["step", "kind", "old", "new", "extra"])

# One line of a JSONL file: a real record, a spoiled one, any JSON, or bytes that are not JSON at all.
LINES = st.one_of(
    VALID_METRICS.map(lambda m: _json_line(m.to_dict()).rstrip("\n").encode()),
    VALID_EVENTS.map(lambda e: _json_line(e.to_dict()).rstrip("\n").encode()),
    (METRICS_ROWS | EVENT_ROWS | JSONISH).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
)
# A whole file: lines joined by newlines, perhaps with a torn last line; or any bytes at all.
FILE_BYTES = st.tuples(st.lists(LINES, max_size=6), st.booleans()).map(
    lambda t: b"".join(line + b"\n" for line in t[0]) + (b'{"step": 1' if t[1] else b"")
) | st.binary(max_size=300)
