"""Property-based fuzz tests of a sweep directory's readers (house style: tests/test_fuzz.py): whatever
sweep.json, members.jsonl and the members' metrics.jsonl hold, the readers return checked values or
raise their module's own one-line error, and a bad record is skipped and named once, never a crash.

Each general property runs on everything the strategies draw; each bug the fuzzing found is pinned by
its own `@example`.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grok_tui.runlog import METRICS
from grok_tui.runs import format_table
from grok_tui.sweep.phases import PHASES, PhaseRule
from grok_tui.sweep.store import (
    GIVEN_FIELDS,
    MEMBERS,
    MILESTONES,
    SWEEP,
    SweepDirError,
    SweepFollower,
    SweepInfo,
    check_member,
    create_sweep,
    describe_sweep,
    find_sweeps,
    member_record,
    member_rows,
    read_sweep,
    write_members,
)
from grok_tui.train.snapshot import RecordError
from tests.conftest import one_line
from tests.fakes import DELETE, FILE_BYTES, FUZZ, JSONISH, SAFE_TEXT, VALID_METRICS, json_values

# The sweep every test reads: four members of a+b mod 23 in two shards, as `grok-tui sweep` writes it.
GRID = {"p": [23], "width": [32], "eval_every": [10], "steps": [100], "weight_decay": [0.3, 1.0], "seed": [0, 1]}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> SweepInfo:
    """A real sweep directory whose files the tests overwrite (sweep.json is put back after each)."""
    return create_sweep(tmp_path_factory.mktemp("fuzz") / "s", "mod-add", GRID, PhaseRule(), 2)


@pytest.fixture(scope="module")
def valid_sweep_json(sweep) -> dict:
    return json.loads((sweep.root / SWEEP).read_text())


# ---- strategies ----------------------------------------------------------------------------------

# A plain value a flag can give, or anything JSON holds.
GIVEN_VALUES = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=8)
GIVEN_LISTS = st.lists(GIVEN_VALUES, max_size=4) | json_values()


def _spoil(valid: dict, path: tuple, value) -> dict:
    """`valid` (a sweep.json) with the entry at `path` replaced, or removed for DELETE."""
    data = json.loads(json.dumps(valid))
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    if value is DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return data


@st.composite
def sweep_jsons(draw, valid: dict):
    """A real sweep.json with one or two entries replaced: the top level, a flag's list, a rule's setting."""
    data = valid
    for _ in range(draw(st.integers(1, 2))):
        where = draw(
            st.sampled_from(
                [("experiment",), ("given",), ("workers",), ("rule",), ("axes",), ("extra",)]
                + [("given", k) for k in ("p", "width", "weight_decay", "seed", "steps")]
                + [("rule", k) for k in PhaseRule().to_dict()]
            )
        )
        if where[0] == "given" and len(where) == 1:
            value = draw(st.dictionaries(st.sampled_from(sorted(GIVEN_FIELDS)) | SAFE_TEXT, GIVEN_LISTS, max_size=4))
        elif where[0] == "given":
            value = draw(GIVEN_LISTS | st.just(DELETE))
        else:
            value = draw(JSONISH | st.just(DELETE))
        if len(where) == 2 and not isinstance(data.get(where[0]), dict):
            continue  # the container was replaced by a first draw: nothing to reach into
        data = _spoil(data, where, value)
    return data


def member_records(info: SweepInfo):
    """members.jsonl records the driver could have written: any member, rows of any numbers (NaN, inf)."""
    rows = st.lists(VALID_METRICS.map(lambda m: m.to_dict()), max_size=4).map(
        lambda rs: [{**r, "step": min(r["step"], info.grid.base.steps)} for r in rs]
    )
    reason = st.none() | st.text(min_size=1, max_size=30).filter(lambda t: one_line(t))
    return st.builds(
        lambda i, rows, finished, failed: member_record(info, info.grid.members[i], rows, finished, failed),
        st.integers(0, len(info.grid.members) - 1),
        rows,
        st.booleans(),
        reason,
    )


def spoiled_records(info: SweepInfo):
    fields = ["index", "name", "values", "step", *MILESTONES, "train_acc", "test_acc", "train_loss"]
    fields += ["test_loss", "test_acc_settled", "phase", "finished", "failed", "extra"]
    return st.tuples(member_records(info), st.sampled_from(fields), JSONISH | st.just(DELETE)).map(
        lambda t: {k: v for k, v in {**t[0], t[1]: t[2]}.items() if v is not DELETE}
    )


def check_checked_member(record: dict, info: SweepInfo) -> None:
    """What a reader may rely on in a record check_member took."""
    assert record["name"] == info.names[record["index"]]
    steps = info.grid.base.steps
    for key in ("step", *MILESTONES):
        v = record.get(key)
        assert v is None or (type(v) is int and 0 <= v <= steps), (key, v)
    for key in ("train_acc", "test_acc", "test_acc_settled"):
        v = record.get(key)
        assert v is None or math.isnan(v) or 0 <= v <= 1, (key, v)
    for key in ("train_loss", "test_loss"):
        v = record.get(key)
        assert v is None or not math.isinf(v), (key, v)
    assert record.get("phase") in (None, *PHASES)
    assert record.get("finished") in (None, True, False)
    failed = record.get("failed")
    assert failed is None or (isinstance(failed, str) and one_line(failed))


# ---- 1. sweep.json -------------------------------------------------------------------------------


def read_sweep_checked(root) -> SweepInfo | None:
    """read_sweep's SweepInfo, every value a sweep can use; or None for a one-line SweepDirError."""
    try:
        info = read_sweep(root)
    except SweepDirError as e:
        assert one_line(str(e)) and SWEEP in str(e), str(e)
        return None
    assert type(info.workers) is int and 1 <= info.workers <= 1024
    assert set(info.given) <= GIVEN_FIELDS and info.grid.members
    for axis in info.grid.axes:
        assert len(axis.values) > 1 and len(set(axis.values)) == len(axis.values)
    assert len({m.name(info.grid.axes) for m in info.grid.members}) == len(info.grid.members)
    return info


@settings(FUZZ, max_examples=250)
@given(data=st.data(), replace=st.just({}))
@example(data=None, replace={})  # as written: read back the same
@example(data=None, replace={"given": {"op": ["+\n", "+\n"]}})  # a repeated value quoted across two lines
@example(data=None, replace={"given": {"op": ["+\n", "-"]}})  # and a wrong one
@example(data=None, replace={"given": {"weight_decay\n": [1.0]}})
@example(data=None, replace={"given": {"experiment": ["x"]}})  # a TypeError of two experiments
@example(data=None, replace={"given": {"weight_decay": [[0.1], [0.2]]}})  # unhashable values
@example(data=None, replace={"workers": True})  # a bool is no count of workers
@example(data=None, replace={"rule": []})  # nor an empty list a rule
@example(data=None, replace={"given": {"seed": list(range(1001)), "lr": [0.01, 0.02]}})  # 2,002 members: fine
@example(
    data=None, replace={"given": {"seed": list(range(1001)), "weight_decay": [i / 1000 for i in range(1000)]}}
)  # too many
def test_read_sweep_of_any_sweep_json_is_a_sweep_or_one_line(sweep, valid_sweep_json, data, replace):
    value = {**valid_sweep_json, **replace} if data is None else data.draw(sweep_jsons(valid_sweep_json) | JSONISH)
    try:
        (sweep.root / SWEEP).write_text(json.dumps(value))
        info = read_sweep_checked(sweep.root)
        if data is None and not replace:
            assert info is not None and info.names == sweep.names
    finally:
        (sweep.root / SWEEP).write_text(json.dumps(valid_sweep_json))


@settings(FUZZ, max_examples=60)
@given(data=st.binary(max_size=200) | st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(data=b"[" * 100_000)
def test_read_sweep_of_any_bytes_is_a_sweep_or_one_line(sweep, valid_sweep_json, data):
    try:
        (sweep.root / SWEEP).write_bytes(data)
        read_sweep_checked(sweep.root)
    finally:
        (sweep.root / SWEEP).write_text(json.dumps(valid_sweep_json))


# ---- 2. members.jsonl records --------------------------------------------------------------------


@settings(FUZZ, max_examples=300)
@given(data=st.data())
@example(data=None)
def test_check_member_of_any_value_is_checked_or_record_error(sweep, data):
    record = {"index": 0, "name": ["x"]} if data is None else data.draw(JSONISH | spoiled_records(sweep))
    try:
        checked = check_member(record, sweep)
    except RecordError as e:
        assert one_line(str(e))
        return
    check_checked_member(checked, sweep)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_members_jsonl_is_strict_json_that_reads_back(sweep, data):
    records = data.draw(st.lists(member_records(sweep), max_size=4, unique_by=lambda r: r["index"]))
    write_members(sweep.root, records)
    lines = (sweep.root / MEMBERS).read_text().splitlines()
    assert len(lines) == len(records)
    for line in lines:
        record = json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
        check_checked_member(check_member(record, sweep), sweep)  # what the driver writes, the readers take


# ---- 3. the followers: members.jsonl and the members' logs together ------------------------------

MEMBER_LINES = st.lists(JSONISH.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=30), max_size=4).map(
    lambda lines: b"".join(line + b"\n" for line in lines)
)


@settings(FUZZ, max_examples=120)
@given(data=st.data())
@example(data=None)
def test_the_follower_and_ls_read_any_sweep_directory(sweep, data):
    if data is None:  # the record that lost `ls` its whole listing, and one whose failure is a number
        members = (
            b'{"index":0,"name":["wd=0.3,seed=0"],"finished":true}\n{"index":1,"name":"wd=0.3,seed=1","failed":5}\n'
        )
        logs = [b""] * len(sweep.names)
    else:
        good = data.draw(
            st.lists(member_records(sweep), max_size=3).map(lambda rs: [json.dumps(r).encode() for r in rs])
        )
        bad = data.draw(st.lists(spoiled_records(sweep).map(lambda r: json.dumps(r).encode()), max_size=2))
        members = b"".join(line + b"\n" for line in data.draw(st.permutations(good + bad))) + data.draw(MEMBER_LINES)
        logs = [data.draw(FILE_BYTES) for _ in sweep.names]
    (sweep.root / MEMBERS).write_bytes(members)
    for member, log in zip(sweep.grid.members, logs, strict=True):
        (sweep.member_dir(member) / METRICS).write_bytes(log)
    follower = SweepFollower(sweep.root)
    follower.poll()
    follower.poll()
    view = follower.view()
    assert 0 <= view.done_steps <= view.total_steps and view.elapsed_s >= 0
    for member in view.members:
        assert type(member.finished) is bool and member.phase in (None, "failed", *PHASES)
        assert member.failed is None or (isinstance(member.failed, str) and one_line(member.failed))
        steps = [r["step"] for r in member.rows]
        assert all(type(s) is int for s in steps) and steps == sorted(steps)
    notices = follower.take_notices()
    assert all(one_line(n) for n in notices)
    assert len(notices) <= 1 + len(sweep.names)  # the first bad record of each file, once
    follower.poll()
    assert not follower.take_notices()
    # `grok-tui ls`: a line for the sweep, whatever its files hold.
    notices = []
    infos = find_sweeps(sweep.root.parent, notices)
    assert [i.run_dir for i in infos] == [sweep.root] and all(one_line(n) for n in notices)
    assert "sweep of 4 mod-add" in format_table(infos)
    assert describe_sweep(sweep.root).total == 400


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_member_rows_are_a_runs_rows_or_skipped_and_named(sweep, data):
    records = data.draw(
        st.lists(JSONISH | VALID_METRICS.map(lambda m: json.loads(json.dumps(m.to_dict()))), max_size=5)
    )
    said: list[str] = []
    path = sweep.member_dir(sweep.grid.members[0]) / METRICS
    rows = member_rows(records, path, lambda p, line: said.append(line))
    assert len(rows) + len(said) == len(records)
    assert all(type(r["step"]) is int and r["step"] >= 0 for r in rows)
    assert all(one_line(line) and str(path) in line for line in said)
