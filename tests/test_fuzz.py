"""Property-based fuzz tests: whatever a run directory or a text box holds, the readers either
return a checked value or raise the module's own one-line error, never a crash.

Each general property runs on everything the strategies draw; each bug the fuzzing once found is
pinned by its own test with the input that triggered it (an `@example`), as a regression test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import string

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grok_tui.config import (
    DEVICES,
    HYPER_RANGES,
    INIT_SCALE,
    LR,
    MODULAR_MODELS,
    PRESETS,
    TASK_MODEL,
    WEIGHT_DECAY,
    RunConfig,
    validate,
)
from grok_tui.runlog import (
    CHECKPOINT,
    CONFIG,
    EVENTS,
    METRICS,
    JsonlFollower,
    RunDirError,
    RunLog,
    _json_line,
    load_checkpoint,
    load_config,
    read_jsonl,
)
from grok_tui.sources.watched import WatchedRun
from grok_tui.train import Trainer, new_run, resume_run
from grok_tui.train.checkpoint import CheckpointError
from grok_tui.train.snapshot import Event, Metrics, RecordError
from grok_tui.ui.screens.value_input import parse_hyper, parse_norm, parse_subset
from tests.conftest import one_line, tiny_config
from tests.fakes import (
    DELETE,
    EVENT_ROWS,
    FILE_BYTES,
    FLOAT_METRIC_FIELDS,
    FUZZ,
    HUGE_INTS,
    JSONISH,
    LINES,
    METRIC_FIELDS,
    METRICS_ROWS,
    POSITIVE,
    SAFE_INTS,
    SAFE_TEXT,
    VALID_EVENTS,
    VALID_METRICS,
    json_values,
)

NAN = float("nan")


def same(a, b) -> bool:
    """Deep equality that treats NaN as equal to NaN and compares tensors exactly (dtype, shape, values)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# ---- strategies (a run directory's records and files: tests/fakes.py) ----------------------------

CONFIG_FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
# A preset's config with one field replaced: gets past the first rule to the later ones and the cross-field ones.
SPOILED_CONFIGS = st.tuples(
    st.sampled_from(sorted(PRESETS)), st.sampled_from(CONFIG_FIELDS), json_values(keys=SAFE_TEXT) | st.just(DELETE)
).map(lambda t: {k: v for k, v in {**PRESETS[t[0]].config().to_dict(), t[1]: t[2]}.items() if v is not DELETE})
CONFIG_DICTS = st.dictionaries(st.sampled_from(CONFIG_FIELDS) | SAFE_TEXT, json_values(keys=SAFE_TEXT), max_size=6)
# Valid values for the fields no cross-field rule ties to the task: any mix of them keeps a preset valid.
VALID_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "experiment": st.text(min_size=1, max_size=100).filter(str.isprintable),
        "lr": st.floats(0, LR.high, exclude_min=True),
        "weight_decay": st.floats(0, WEIGHT_DECAY.high),
        "beta1": st.floats(0, 1, exclude_max=True),
        "beta2": st.floats(0, 1, exclude_max=True),
        "l1": st.floats(0, 10),
        "init_scale": st.floats(0, INIT_SCALE.high, exclude_min=True),
        "acc_tol": POSITIVE,
        "width": st.integers(1, 65536),
        "embed_dim": st.integers(1, 65536),
        "train_size": st.integers(0, 10**9),
        "constrain_norm": st.floats(0, 1e6),
        "grokfast": st.booleans(),
        "grokfast_alpha": st.floats(0, 1, exclude_max=True),
        "grokfast_lamb": st.floats(0, 1e3),
        "steps": st.integers(0, 10**12),
        "eval_every": st.integers(1, 10**6),
        "checkpoint_every_s": POSITIVE,
        "seed": st.integers(0, 2**63 - 1),
        "device": st.sampled_from(DEVICES),
        "threads": st.integers(1, 256),
    },
)

# Tensors of any plain (strided, CPU, real) kind: other dtypes, other shapes, odd values.
DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]


def _tensor(dtype: torch.dtype, shape: list[int], fill: float) -> torch.Tensor:
    if dtype == torch.bool:
        fill = bool(fill)
    elif not dtype.is_floating_point:
        fill = 0 if not math.isfinite(fill) else int(fill)
        fill = abs(fill) if dtype == torch.uint8 else fill
    return torch.full(shape, fill, dtype=dtype)


TENSORS = st.builds(
    _tensor,
    st.sampled_from(DTYPES),
    st.lists(st.integers(0, 4), max_size=3),
    st.sampled_from([0.0, 1.0, -1.0, 2.5, NAN, float("inf")]),
)
PLAIN_LEAVES = st.none() | st.booleans() | SAFE_INTS | st.floats() | SAFE_TEXT


def _containers(c):
    return st.lists(c, max_size=3) | st.lists(c, max_size=3).map(tuple) | st.dictionaries(SAFE_TEXT, c, max_size=3)


def checkpoint_values(tensors):
    # A tensor, or JSON-ish values, tuples and nested mixes of them.
    return tensors | st.recursive(PLAIN_LEAVES | tensors, _containers, max_leaves=6)


# What a checkpoint entry may be replaced by.
CHECKPOINT_VALUES = checkpoint_values(TENSORS)
# Where a message must stay one line: any value, nested tensors (whose repr spans lines) included.
ONE_LINE_VALUES = CHECKPOINT_VALUES


def values_like(original, path: tuple = (), values=CHECKPOINT_VALUES):
    # Mostly arbitrary; for a tensor also the same tensor in another dtype or another shape.
    if isinstance(original, torch.Tensor):
        return (
            st.sampled_from(DTYPES).map(lambda dt: original.to(dt))
            | st.lists(st.integers(0, 30), max_size=3).map(lambda s: torch.zeros(s, dtype=original.dtype))
            | values
        )
    return values | st.just(DELETE)


# ---- checkpoint helpers --------------------------------------------------------------------------

_BASES: dict[str, dict] = {}
BASE_CONFIGS = {
    "plain": {},
    # Every optional part of a state filled in: grokfast EMA, a norm target, a training subset, L1, log counts.
    "full": dict(grokfast=True, constrain_norm=5.0, train_size=100, l1=1e-4),
}


def base_state(name: str) -> dict:
    """A real trainer's state after 3 steps (built once; callers get a deep copy)."""
    if name not in _BASES:
        trainer = Trainer(tiny_config(**BASE_CONFIGS[name]))
        for _ in range(3):
            trainer.train_step()
        trainer._evaluate_and_log()  # sets logged_step
        state = trainer.state()
        if name == "full":
            state["log_lines"] = {METRICS: 2, EVENTS: 1}
        _BASES[name] = copy.deepcopy(state)
    return copy.deepcopy(_BASES[name])


def paths(state: dict) -> list[tuple]:
    """Every entry a mutation can hit: top-level keys, and the nested ones load_state reads."""
    out: list[tuple] = [(k,) for k in state] + [("unknown_key",)]
    out += [("model", k) for k in state["model"]] + [("model", "extra.weight")]
    opt = state["optimizer"]
    out += [("optimizer", "state"), ("optimizer", "param_groups"), ("optimizer", "param_groups", 0)]
    out += [("optimizer", "param_groups", 0, k) for k in opt["param_groups"][0]]
    out += [("optimizer", "param_groups", 0, "betas", i) for i in (0, 1)]
    out += [("optimizer", "param_groups", 0, "params", i) for i in (0, 1)]
    for index, entry in opt["state"].items():
        out += [("optimizer", "state", index)] + [("optimizer", "state", index, k) for k in entry]
    out += [("optimizer", "state", 7)]
    if state.get("grokfast") is not None:
        out += [("grokfast", k) for k in ("alpha", "lamb", "ema")] + [("grokfast", "ema", 0)]
    out += [("python_rng", i) for i in range(3)] + [("python_rng", 1, 0), ("python_rng", 1, 624)]
    if "log_lines" in state:
        out += [("log_lines", METRICS), ("log_lines", "other")]
    return out


def get_at(obj, path):
    for key in path:
        try:
            obj = obj[key]
        except Exception:  # a missing key, or a value that is no container: nothing there
            return None
    return obj


def replaced(obj, path: tuple, value):
    """`obj` with the entry at `path` replaced by `value` (or removed, for DELETE); tuples are rebuilt."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, (list, tuple)):
        items = list(obj)
        if isinstance(head, int) and -len(items) <= head < len(items):
            if value is DELETE and not rest:
                del items[head]
            else:
                items[head] = replaced(items[head], rest, value)
        return type(obj)(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        copied = obj.copy()
        if value is DELETE and not rest:
            copied.pop(head, None)
        else:
            copied[head] = replaced(copied.get(head), rest, value)
        return copied
    return obj  # a path through a value that is no container any more: nothing to change


@st.composite
def mutated_states(draw, values=CHECKPOINT_VALUES, n=st.integers(1, 2)):
    # A real state with one or two entries replaced: check_state must catch all that load_state cannot take.
    state = base_state(draw(st.sampled_from(sorted(BASE_CONFIGS))))
    where = paths(state)  # from the intact state: a first mutation may have removed a container
    for _ in range(draw(n)):
        path = draw(st.sampled_from(where))
        state = replaced(state, path, draw(values_like(get_at(state, path), path, values)))
    return state


def load_or_checkpoint_error(state) -> Trainer | None:
    """The trainer that took `state`, or None when it was refused with CheckpointError (one line)."""
    trainer = Trainer(tiny_config())
    try:
        trainer.load_state(state)
    except CheckpointError as e:
        assert str(e)
        return None
    return trainer


# ---- fixtures (module-scoped: Hypothesis runs many examples per test function) -------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run directory (config.json, empty metrics and events) whose JSONL files the tests overwrite."""
    path = tmp_path_factory.mktemp("fuzz") / "run"
    new_run(tiny_config(), path)
    return path


@pytest.fixture(scope="module")
def resume_dir(tmp_path_factory):
    """A real run directory whose checkpoint.pt the tests overwrite."""
    path = tmp_path_factory.mktemp("fuzz") / "resume"
    new_run(tiny_config(), path)
    return path


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    """A directory whose config.json the tests overwrite."""
    return tmp_path_factory.mktemp("config")


# ---- 1. metrics records ----------------------------------------------------------------------------


def check_metrics(m: Metrics) -> None:
    assert isinstance(m, Metrics)
    assert type(m.step) is int and 0 <= m.step <= 2**53
    for acc in (m.train_acc, m.test_acc):
        assert math.isnan(acc) or 0 <= acc <= 1
    for loss in (m.train_loss, m.test_loss):
        assert math.isnan(loss) or math.isfinite(loss)
    assert math.isnan(m.param_norm) or (math.isfinite(m.param_norm) and m.param_norm >= 0)
    for v in (m.weight_decay, m.lr, m.l1, m.elapsed_s, m.steps_per_s):  # a view formats these as they are
        assert math.isfinite(v) and v >= 0
    for share in (m.purity, m.parity_share):
        assert share is None or 0 <= share <= 1
    assert m.train_size is None or (type(m.train_size) is int and m.train_size >= 0)
    assert m.norm_target is None or (math.isfinite(m.norm_target) and m.norm_target > 0)
    assert type(m.grokfast) is bool


@settings(FUZZ, max_examples=300)
@given(row=JSONISH | METRICS_ROWS)
@example(row={"step": True})
@example(row={"step": 0, "train_acc": float("inf")})
@example(row={"step": 0, "grokfast": 1})
def test_metrics_from_any_value_is_checked_or_record_error(row):
    try:
        m = Metrics.from_dict(row)
    except RecordError as e:
        assert e.field in METRIC_FIELDS + ["record"] and one_line(str(e)) and len(str(e)) < 200
        return
    check_metrics(m)


@settings(FUZZ, max_examples=150)
@given(m=VALID_METRICS)
def test_metrics_round_trip_through_a_jsonl_line(m):
    line = _json_line(m.to_dict())
    assert line.endswith("\n") and one_line(line)
    back = Metrics.from_dict(json.loads(line))
    assert same(back.to_dict(), m.to_dict())


@settings(FUZZ, max_examples=10)
@given(m=VALID_METRICS, name=st.sampled_from(FLOAT_METRIC_FIELDS), value=HUGE_INTS)
@example(m=Metrics(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), name="train_loss", value=10**400)
def test_metrics_with_a_huge_int_is_record_error(m, name, value):
    with pytest.raises(RecordError):
        Metrics.from_dict({**m.to_dict(), name: value})


# ---- 2. events records -----------------------------------------------------------------------------


@settings(FUZZ, max_examples=300)
@given(row=JSONISH | EVENT_ROWS)
@example(row={"step": 0, "kind": "x", "old": float("nan"), "new": None})
def test_event_from_any_value_is_checked_or_record_error(row):
    try:
        e = Event.from_dict(row)
    except RecordError as err:
        assert err.field in ("record", "step", "kind", "old", "new") and one_line(str(err)) and len(str(err)) < 200
        return
    assert type(e.step) is int and 0 <= e.step <= 2**53
    assert isinstance(e.kind, str) and 0 < len(e.kind) <= 64
    for v in (e.old, e.new):
        assert v is None or isinstance(v, (bool, str)) or (math.isfinite(v) and abs(v) <= 2**53)


@settings(FUZZ, max_examples=150)
@given(e=VALID_EVENTS)
def test_event_round_trip_through_a_jsonl_line(e):
    back = Event.from_dict(json.loads(_json_line(e.to_dict())))
    assert back == e and type(back.old) is type(e.old) and type(back.new) is type(e.new)


@settings(FUZZ, max_examples=10)
@given(e=VALID_EVENTS, name=st.sampled_from(["old", "new"]), value=HUGE_INTS)
@example(e=Event(0, "lr", 1, 2), name="old", value=10**400)
def test_event_with_a_huge_int_is_record_error(e, name, value):
    with pytest.raises(RecordError):
        Event.from_dict({**e.to_dict(), name: value})


# ---- 3. whole files --------------------------------------------------------------------------------


@settings(FUZZ, max_examples=120)
@given(metrics=FILE_BYTES, events=FILE_BYTES, cuts=st.lists(st.integers(0, 300), max_size=4))
@example(metrics=b"\xff\xfe{\n\x00\n{}\r\n", events=b'{"step":0,"kind":"x"}\n', cuts=[1, 5])
def test_watch_reads_any_file_in_any_chunks(run_dir, metrics, events, cuts):
    session = WatchedRun(run_dir)
    for name, data, parse, kind in (
        (METRICS, metrics, Metrics.from_dict, Metrics),
        (EVENTS, events, Event.from_dict, Event),
    ):
        path = run_dir / name
        path.write_bytes(b"")
        follower, records, done = JsonlFollower(path), [], 0
        for cut in sorted({min(c, len(data)) for c in cuts} | {len(data)}):
            with open(path, "ab") as f:  # the file grows as a writer appends to it
                f.write(data[done:cut])
            done = cut
            records += follower.poll()
        assert same(records, JsonlFollower(path).poll())  # how the file grew changes nothing
        assert all(isinstance(r, dict) for r in records)
        assert len(records) <= data.count(b"\n")
        rows = session._checked(name, records, parse)
        assert all(isinstance(r, kind) for r in rows) and len(rows) <= len(records)
        if kind is Metrics:
            for r in rows:
                check_metrics(r)
        assert all(isinstance(r, dict) for r in read_jsonl(path))
    notices = session.mailbox.take_notices()
    assert len(notices) <= 2  # the first bad record of each file, not one per record
    assert all(one_line(n) and (METRICS in n or EVENTS in n) for n in notices)


def _past(line: bytes, step: int, inclusive: bool) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    if not (isinstance(record, dict) and isinstance(record.get("step"), int)):
        return False
    return record["step"] >= step if inclusive else record["step"] > step


# What rewind is called with: no checkpoint, a checkpoint with line counts, or an old one without them.
REWIND_STATES = st.none() | st.fixed_dictionaries(
    {"step": st.integers(0, 10)},
    optional={"log_lines": st.dictionaries(st.sampled_from([METRICS, EVENTS, "other"]), st.integers(0, 8))},
)


@settings(FUZZ, max_examples=120)
@given(metrics=FILE_BYTES, events=FILE_BYTES, state=REWIND_STATES)
@example(metrics=b'{"step":3}\n{"step":2}\ngarbage\n{"step":1', events=b"", state={"step": 2})
def test_rewind_leaves_whole_lines_of_what_was_there(run_dir, metrics, events, state):
    (run_dir / METRICS).write_bytes(metrics)
    (run_dir / EVENTS).write_bytes(events)
    log = RunLog(run_dir)
    log.rewind(state)
    for name, data in ((METRICS, metrics), (EVENTS, events)):
        after = (run_dir / name).read_bytes()
        assert after == b"" or after.endswith(b"\n")  # every line complete
        lines = after.split(b"\n")[:-1]
        assert log._lines[name] == len(lines) <= data.count(b"\n") + data.count(b"\r")
        counts = {METRICS: 0, EVENTS: 0} if state is None else state.get("log_lines")
        by_step = counts is None or not isinstance(counts.get(name), int)
        if by_step:  # no count: records past the step go, whatever else is there stays
            assert not any(_past(line, state["step"], name == METRICS) for line in lines)
        else:
            assert len(lines) <= counts[name]
        before = data.split(b"\n")[:-1]  # exactly what should stay, byte for byte
        assert lines == (
            [ln for ln in before if not _past(ln, state["step"], name == METRICS)]
            if by_step
            else before[: counts[name]]
        )


@settings(FUZZ, max_examples=10)
@given(lines=st.lists(LINES.filter(lambda b: b"\n" not in b), min_size=1, max_size=5), count=st.integers(0, 5))
@example(lines=[b'{"step":0}\r', b'{"step":1}', b'{"step":2}'], count=3)
def test_rewind_by_count_keeps_exactly_the_first_lines(run_dir, lines, count):
    data = b"".join(line + b"\n" for line in lines)
    (run_dir / METRICS).write_bytes(data)
    RunLog(run_dir).rewind({"step": 0, "log_lines": {METRICS: count, EVENTS: 0}})
    assert (run_dir / METRICS).read_bytes() == b"".join(line + b"\n" for line in lines[:count])


# Lines json.loads refuses with something other than JSONDecodeError.
UNPARSEABLE_LINES = st.one_of(
    st.integers(2_000, 50_000).map(lambda n: b"[" * n),  # nested past the recursion limit: RecursionError
    st.integers(4_301, 6_000).map(lambda n: b'{"step":' + b"7" * n + b"}"),  # int past 4300 digits: ValueError
)


def _follow(run_dir):
    return JsonlFollower(run_dir / METRICS).poll()


def _read(run_dir):
    return read_jsonl(run_dir / METRICS)


def _rewind_by_step(run_dir):
    RunLog(run_dir).rewind({"step": 0})


@pytest.mark.parametrize("reader", [_follow, _read, _rewind_by_step], ids=["follower", "read_jsonl", "rewind"])
@settings(FUZZ, max_examples=5)
@given(line=UNPARSEABLE_LINES)
@example(line=b"[" * 100_000)
@example(line=b"7" * 5_000)
def test_readers_skip_lines_json_cannot_parse(run_dir, reader, line):
    (run_dir / METRICS).write_bytes(b'{"step":0}\n' + line + b'\n{"step":1}\n')
    reader(run_dir)


# ---- 4. config.json --------------------------------------------------------------------------------


def load_config_checked(root, data=None) -> RunConfig | None:
    """load_config's RunConfig (valid, holding `data`'s values), or None for a one-line RunDirError naming
    config.json."""
    try:
        cfg = load_config(root)
    except RunDirError as e:
        assert one_line(str(e)) and CONFIG in str(e), str(e)
        return None
    assert isinstance(cfg, RunConfig) and validate(cfg) is cfg
    # The cross-field rules, checked independently of validate().
    assert 1 <= cfg.k_bits <= cfg.n_bits
    if cfg.task == "modular":
        assert cfg.model in MODULAR_MODELS
        if cfg.op in ("*", "/"):
            assert all(cfg.p % d for d in range(2, cfg.p)), "a modulus that is not prime"
    else:
        assert cfg.model == TASK_MODEL[cfg.task] and (cfg.task != "teacher" or cfg.loss == "mse")
    if data is not None:
        assert all(same(getattr(cfg, k), v) for k, v in data.items())
    return cfg


@settings(FUZZ, max_examples=200)
@given(data=CONFIG_DICTS | SPOILED_CONFIGS)
@example(data={})
@example(data={"p": 66, "op": "/"})
def test_load_config_of_any_dict_is_valid_or_run_dir_error(config_dir, data):
    text = json.dumps(data)  # NaN and Infinity written as Python does
    (config_dir / CONFIG).write_text(text)
    load_config_checked(config_dir, json.loads(text))


@settings(FUZZ, max_examples=100)
@given(
    data=st.binary(max_size=200)
    | json_values(keys=SAFE_TEXT).map(lambda v: json.dumps(v).encode())
    | st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
@example(data=b"[" * 100_000)
@example(data=b"\xef\xbb\xbf{}")
def test_load_config_of_any_bytes_is_valid_or_run_dir_error(config_dir, data):
    (config_dir / CONFIG).write_bytes(data)
    load_config_checked(config_dir)


@settings(FUZZ, max_examples=60)
@given(preset=st.sampled_from(sorted(PRESETS)), changes=VALID_CHANGES)
def test_config_round_trip_through_config_json(config_dir, preset, changes):
    cfg = validate(PRESETS[preset].config().replace(**changes))
    (config_dir / CONFIG).write_text(json.dumps(cfg.to_dict(), indent=2))
    assert load_config(config_dir) == cfg


FLOAT_CONFIG_FIELDS = [
    "train_frac",
    "acc_tol",
    "init_scale",
    "lr",
    "weight_decay",
    "beta1",
    "beta2",
    "l1",
    "constrain_norm",
    "grokfast_alpha",
    "grokfast_lamb",
    "checkpoint_every_s",
]


@settings(FUZZ, max_examples=10)
@given(name=st.sampled_from(FLOAT_CONFIG_FIELDS), value=HUGE_INTS)
@example(name="train_frac", value=10**400)
def test_config_with_a_huge_int_is_run_dir_error(config_dir, name, value):
    (config_dir / CONFIG).write_text(json.dumps({**PRESETS["mod-add"].config().to_dict(), name: value}))
    assert load_config_checked(config_dir) is None


@settings(FUZZ, max_examples=5)
@given(digits=st.integers(4_301, 6_000))
@example(digits=5_000)
def test_config_with_a_too_long_int_is_run_dir_error(config_dir, digits):
    (config_dir / CONFIG).write_text('{"seed": ' + "1" * digits + "}")
    assert load_config_checked(config_dir) is None


LINE_BREAKS = st.sampled_from(["\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])


@settings(FUZZ, max_examples=10)
@given(key=st.tuples(SAFE_TEXT, LINE_BREAKS, SAFE_TEXT).map("".join))
@example(key="x\ny")
def test_config_error_for_an_unknown_key_is_one_line(config_dir, key):
    (config_dir / CONFIG).write_text(json.dumps({key: 1}))
    assert load_config_checked(config_dir) is None


# ---- 5. checkpoint ---------------------------------------------------------------------------------


@settings(FUZZ, max_examples=250)
@given(state=mutated_states())
@example(state=replaced(base_state("plain"), ("optimizer", "state", 0, "step"), 3.0))
@example(state=replaced(base_state("full"), ("grokfast", "ema", 0), torch.zeros(23, 32, dtype=torch.float16)))
def test_load_state_of_a_mutated_checkpoint_is_loaded_or_checkpoint_error(state):
    trainer = load_or_checkpoint_error(state)
    if trainer is not None:
        assert trainer.step == state["step"] and trainer.checkpoint_step == state["step"]


@settings(FUZZ, max_examples=80)
@given(state=mutated_states(ONE_LINE_VALUES))
@example(state=base_state("full"))
def test_resume_of_a_mutated_checkpoint_is_run_dir_error_or_builds(resume_dir, state):
    torch.save(state, resume_dir / CHECKPOINT)
    try:
        spec = resume_run(resume_dir)
    except RunDirError as e:
        assert one_line(str(e)) and CHECKPOINT in str(e), str(e)
        return
    trainer = spec.build()  # what resume_run accepts, a trainer must take
    assert trainer.step == state["step"]


@settings(FUZZ, max_examples=15)
@given(
    steps=st.integers(0, 4),
    evaluate=st.booleans(),
    changes=st.fixed_dictionaries(
        {},
        optional={
            "grokfast": st.booleans(),
            "l1": st.sampled_from([0.0, 1e-4]),
            "constrain_norm": st.floats(1, 50),
            "train_size": st.integers(0, 200),
            "weight_decay": st.floats(0, 2),
            "lr": st.floats(1e-4, 0.1),
            "seed": st.integers(0, 2**63 - 1),
        },
    ),
)
def test_checkpoint_round_trip(resume_dir, steps, evaluate, changes):
    cfg = tiny_config(**changes)
    trainer = Trainer(cfg)
    for _ in range(steps):
        trainer.train_step()
    if evaluate:
        trainer._evaluate_and_log()
    trainer.elapsed_s = 1.25 * steps
    original = trainer.state()
    RunLog(resume_dir).save_checkpoint(original)
    loaded = load_checkpoint(resume_dir)
    assert loaded["log_lines"] == {METRICS: 0, EVENTS: 0}
    fresh = Trainer(cfg)
    fresh.load_state(loaded)
    assert same(fresh.state(), original)


def _tensor_mutation(path, make):
    # The "full" base state with the tensor at `path` replaced by make(that tensor).
    state = base_state("full")
    return replaced(state, path, make(get_at(state, path)))


@settings(FUZZ, max_examples=10)
@given(
    path=st.sampled_from(
        [
            ("elapsed_s",),
            ("l1",),
            ("norm_target",),
            ("grokfast", "alpha"),
            ("grokfast", "lamb"),
            ("optimizer", "param_groups", 0, "lr"),
            ("optimizer", "param_groups", 0, "weight_decay"),
            ("optimizer", "param_groups", 0, "betas", 0),
            ("optimizer", "state", 0, "step"),
        ]
    ),
    value=HUGE_INTS,
)
@example(path=("elapsed_s",), value=10**400)
def test_checkpoint_with_a_huge_int_is_checkpoint_error(path, value):
    load_or_checkpoint_error(replaced(base_state("full"), path, value))


@settings(FUZZ, max_examples=10)
@given(key=SAFE_INTS | st.tuples(SAFE_INTS) | st.none(), also_str=st.booleans())
@example(key=1, also_str=False)
def test_checkpoint_with_a_non_str_model_key_is_checkpoint_error(key, also_str):
    state = base_state("plain")
    state["model"][key] = torch.zeros(1)
    if also_str:
        state["model"]["extra"] = torch.zeros(1)
    load_or_checkpoint_error(state)


@settings(FUZZ, max_examples=5)
@given(key=st.tuples(SAFE_TEXT, LINE_BREAKS, SAFE_TEXT).map("".join))
@example(key="a\nb")
def test_checkpoint_error_for_an_unknown_model_key_is_one_line(resume_dir, key):
    state = base_state("plain")
    state["model"][key] = torch.zeros(1)
    torch.save(state, resume_dir / CHECKPOINT)
    with pytest.raises(RunDirError) as e:
        resume_run(resume_dir)
    assert one_line(str(e.value)), str(e.value)


@settings(FUZZ, max_examples=5)
@given(path=st.sampled_from([("model",), ("grokfast", "ema"), ("optimizer",)]), rows=st.integers(2, 4))
@example(path=("model",), rows=2)
def test_checkpoint_error_for_a_nested_tensor_is_one_line(resume_dir, path, rows):
    torch.save(replaced(base_state("full"), path, [torch.zeros(rows, 1)]), resume_dir / CHECKPOINT)
    with pytest.raises(RunDirError) as e:
        resume_run(resume_dir)
    assert one_line(str(e.value)), str(e.value)


@settings(FUZZ, max_examples=5)
@given(
    step=st.sampled_from(
        [torch.tensor(1j), torch.tensor(2 + 0j, dtype=torch.complex64), torch.empty((), device="meta")]
    )
)
@example(step=torch.tensor(1j))
def test_checkpoint_with_an_odd_step_tensor_is_checkpoint_error(step):
    load_or_checkpoint_error(replaced(base_state("plain"), ("optimizer", "state", 0, "step"), step))


@settings(FUZZ, max_examples=5)
@given(split=st.integers(0, 2))
@example(split=1)
def test_checkpoint_with_other_param_groups_is_checkpoint_error(split):
    state = base_state("plain")
    group = state["optimizer"]["param_groups"][0]
    state["optimizer"]["param_groups"] = [
        {**group, "params": group["params"][:split]},
        {**group, "params": group["params"][split:]},
    ]
    assert load_or_checkpoint_error(state) is None


@settings(FUZZ, max_examples=5)
@given(alpha=st.floats(0, 1, exclude_max=True), lamb=st.floats(0, 10))
@example(alpha=0.98, lamb=2.0)
def test_checkpoint_with_grokfast_but_no_ema_is_loaded_or_checkpoint_error(alpha, lamb):
    load_or_checkpoint_error(replaced(base_state("full"), ("grokfast",), {"alpha": alpha, "lamb": lamb}))


@settings(FUZZ, max_examples=5)
@given(key=st.sampled_from(["capturable", "fused"]), n=st.integers(2, 5) | st.just(0))
@example(key="fused", n=3)
def test_checkpoint_with_a_tensor_optimizer_flag_is_checkpoint_error(key, n):
    load_or_checkpoint_error(replaced(base_state("plain"), ("optimizer", "param_groups", 0, key), torch.zeros(n)))


@settings(FUZZ, max_examples=5)
@given(n=st.integers(2, 5) | st.just(0))
@example(n=0)
def test_checkpoint_with_a_tensor_in_python_rng_is_checkpoint_error(n):
    load_or_checkpoint_error(replaced(base_state("plain"), ("python_rng", 0), torch.zeros(n)))


@settings(FUZZ, max_examples=5)
@given(
    path=st.sampled_from([("model", "embed.weight"), ("optimizer", "state", 0, "exp_avg")]),
    layout=st.sampled_from(["sparse", "meta"]),
)
@example(path=("model", "embed.weight"), layout="sparse")
def test_resume_with_a_sparse_or_meta_tensor_is_run_dir_error_or_builds(resume_dir, path, layout):
    make = (lambda t: t.to_sparse()) if layout == "sparse" else (lambda t: torch.empty_like(t, device="meta"))
    torch.save(_tensor_mutation(path, make), resume_dir / CHECKPOINT)
    try:
        spec = resume_run(resume_dir)
    except RunDirError:
        return
    spec.build()


@settings(FUZZ, max_examples=10)
@given(
    key=st.sampled_from(["eps", "amsgrad", "capturable", "maximize", "foreach", "differentiable", "fused"]),
    value=CHECKPOINT_VALUES | st.just(DELETE),
)
@example(key="eps", value="x")
def test_an_accepted_checkpoint_can_be_trained_on(key, value):
    trainer = load_or_checkpoint_error(replaced(base_state("full"), ("optimizer", "param_groups", 0, key), value))
    if trainer is not None:
        trainer.train_step()


# ---- 6. typed-value parsers ------------------------------------------------------------------------

# Number-like text reaches the accepting branch; arbitrary unicode, whitespace and long text the refusing one.
NUMBER_TEXT = st.one_of(
    st.floats().map(repr),
    st.floats().map(lambda v: f"{v:g}"),
    st.integers(-(10**30), 10**30).map(str),
    st.from_regex(r"\s*[-+]?(\d+(_\d+)?(\.\d*)?|\.\d+)([eE][-+]?\d{1,3})?\s*", fullmatch=True),
    st.sampled_from(["-0", "+0.0", "1e-400", "-1e-400", "1e400", "nan", "-inf", "١٢", "0x10", "1_000", "   "]),
)
ANY_TEXT = st.text() | st.text(min_size=1000, max_size=6000) | st.text(string.whitespace) | NUMBER_TEXT


def refusal_ok(e: ValueError, text: str) -> None:
    message = str(e)
    assert one_line(message), message
    if text.strip().isprintable():
        assert len(message) <= 120, message


def accepted(parse, text):
    """What `parse` makes of `text`, or None once its refusal is checked to be a short single line."""
    try:
        return parse(text)
    except ValueError as e:
        refusal_ok(e, text)
        return None


@settings(FUZZ, max_examples=300)
@given(name=st.sampled_from(["weight_decay", "lr"]), text=ANY_TEXT)
@example(name="weight_decay", text="-0")
@example(name="weight_decay", text="-1e-400")
@example(name="lr", text="1" * 5000)
def test_parse_hyper_of_any_text_is_allowed_or_value_error(name, text):
    v = accepted(lambda t: parse_hyper(name, t), text)
    if v is None:
        return
    assert type(v) is float and math.isfinite(v) and math.copysign(1, v) == 1
    assert v > 0 if name == "lr" else v >= 0


@settings(FUZZ, max_examples=200)
@given(text=ANY_TEXT)
@example(text="-0")
def test_parse_norm_of_any_text_is_allowed_or_value_error(text):
    v = accepted(parse_norm, text)
    if v is None:
        return
    assert type(v) is float and math.isfinite(v) and v > 0 and math.copysign(1, v) == 1


@settings(FUZZ, max_examples=200)
@given(text=ANY_TEXT, size=st.integers(-3, 10**6))
@example(text="1" * 5000, size=10)
@example(text="-0", size=10)
def test_parse_subset_of_any_text_is_allowed_or_value_error(text, size):
    n = accepted(lambda t: parse_subset(t, size), text)
    if n is None:
        return
    assert type(n) is int and 1 <= n < size


@settings(FUZZ, max_examples=150)
@given(name=st.sampled_from(["weight_decay", "lr"]), share=st.floats(0, 1))
@example(name="weight_decay", share=0.0)
@example(name="lr", share=1.0)
def test_a_formatted_number_round_trips_through_the_parsers(name, share):
    v = share * HYPER_RANGES[name].high  # anywhere in the value's range, its ends included
    if name == "lr" and v == 0:
        v = 5e-324
    assert parse_hyper(name, repr(v)) == v
    assert parse_hyper(name, f"{v:g}") == float(f"{v:g}")
    assert parse_hyper(name, f" {v:g}\t") == float(f"{v:g}")
    if v > 0:
        assert parse_norm(repr(v)) == v


@settings(FUZZ, max_examples=20)
@given(text=st.text(st.characters(categories=["Cc", "Cf", "Co", "Cn"]), min_size=25))
@example(text="\U000e0001" * 30)
def test_a_refusal_of_any_text_is_short(text):
    for parse in (lambda t: parse_hyper("lr", t), parse_norm, lambda t: parse_subset(t, 10)):
        try:
            parse(text)
        except ValueError as e:
            assert len(str(e)) <= 120, str(e)
