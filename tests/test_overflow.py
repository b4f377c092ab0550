"""Values that are finite but absurd (`--lr 1e300`), and values that overflow anyway.

Each way of giving a value (a flag, a command on the run's channel, the monitor's typed value, a key
that scales it) is held to config.py's one rule for it; and a loss, a weight or an AdamW moment that
overflows all the same is a fault, never an exception: the run goes back to its last finite state,
checkpoints it, and says what overflowed with which settings.
"""

import json
import math

import pytest
import torch

from grok_tui.cli import main
from grok_tui.config import ConfigError, validate
from grok_tui.headless import run_headless
from grok_tui.runlog import RunDirError, read_jsonl
from grok_tui.train import Control, Trainer, new_run, resume_run
from grok_tui.train.channel import connect, encode_command
from grok_tui.train.control import ScaleHyper, SetNormConstraint, from_wire
from grok_tui.ui.screens.value_input import ValueInput, parse_hyper, parse_norm
from tests.conftest import opened, run, status_text, tiny_config, wait_for, wait_until
from tests.processes import attached, next_frame

# A run that these settings make diverge within a few evaluations: each step multiplies every weight
# by 1 - lr × wd = -999, each value inside its range.
DIVERGES = dict(lr=10.0, weight_decay=100.0)


def finite_tensors(state) -> bool:
    tensors = list(state["model"].values())
    for entry in state["optimizer"]["state"].values():
        tensors += [entry["exp_avg"], entry["exp_avg_sq"]]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def checkpoint(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)


# ---- refused where they are given ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value, allowed",
    [
        ("--lr", "1e300", "a finite number > 0 and <= 10"),
        ("--lr", "1e400", "a finite number > 0 and <= 10"),  # inf once parsed
        ("--weight-decay", "1e300", "a finite number >= 0 and <= 1000"),
        ("--l1", "1e308", "a finite number >= 0 and <= 10"),
        ("--constrain-norm", "1e300", "0 (off) or a finite number > 0 and <= 1e6"),
        ("--grokfast-lamb", "1e300", "a finite number >= 0 and <= 1000"),
        ("--init-scale", "1e300", "a finite number > 0 and <= 1000"),
    ],
)
def test_an_absurd_flag_is_one_line_naming_the_range_and_nothing_starts(capsys, tmp_path, flag, value, allowed):
    code = main(["--headless", "--run-dir", str(tmp_path / "r"), flag, value])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert flag in err and allowed in err
    assert not (tmp_path / "r").exists()


def test_each_range_holds_its_ends_and_refuses_just_past_them():
    top = dict(lr=10.0, weight_decay=1000.0, l1=10.0, constrain_norm=1e6, grokfast_lamb=1000.0, init_scale=1000.0)
    validate(tiny_config(**top))
    for name, value in top.items():
        with pytest.raises(ConfigError) as refused:
            validate(tiny_config(**{name: value * 1.000001}))
        assert refused.value.field == name
    with pytest.raises(ConfigError):
        validate(tiny_config(lr=0.0))


@pytest.mark.parametrize(
    "record, names",
    [
        ({"command": "set", "name": "lr", "value": 1e300}, ["lr", "1e+300", "<= 10"]),
        ({"command": "set", "name": "weight_decay", "value": 1e300}, ["weight_decay", "1e+300", "<= 1000"]),
        ({"command": "set", "name": "l1", "value": 1e308}, ["l1", "1e+308", "<= 10"]),
        ({"command": "set", "name": "lr", "value": 10**400}, ["lr", "...", "<= 10"]),
        ({"command": "norm", "norm": 1e300}, ["norm", "1e+300", "<= 1e6"]),
        ({"command": "grokfast", "on": True, "lamb": 1e300}, ["lamb", "1e+300", "<= 1000"]),
    ],
)
def test_an_absurd_command_is_refused_in_one_short_line(record, names):
    with pytest.raises(ValueError) as refused:
        from_wire(record)
    message = str(refused.value)
    assert "\n" not in message and len(message) <= 120, message
    for name in names:
        assert name in message


def test_control_refuses_an_absurd_value_before_it_is_queued():
    control = Control()
    with pytest.raises(ValueError, match="<= 10"):
        control.set("lr", 1e300)
    assert control.get(timeout=0) is None


@pytest.mark.parametrize(
    "parse, text, allowed",
    [
        (lambda t: parse_hyper("lr", t), "1e300", "type a finite number > 0 and <= 10"),
        (lambda t: parse_hyper("weight_decay", t), "1e300", "type a finite number >= 0 and <= 1000"),
        (lambda t: parse_hyper("l1", t), "1e308", "type a finite number >= 0 and <= 10"),
        (parse_norm, "1e300", "type a finite number > 0 and <= 1e6"),
    ],
)
def test_a_typed_absurd_value_is_refused_saying_what_to_type(parse, text, allowed):
    with pytest.raises(ValueError) as refused:
        parse(text)
    assert str(refused.value) == f"'{text}' is not allowed: {allowed}"


def test_the_ends_of_a_range_can_be_typed():
    assert parse_hyper("lr", "10") == 10.0
    assert parse_hyper("weight_decay", "1000") == 1000.0
    assert parse_hyper("weight_decay", "-0") == 0.0
    assert parse_norm("1e6") == 1e6


def test_a_key_that_scales_a_value_stops_at_the_end_of_its_range():
    trainer = Trainer(tiny_config())
    for _ in range(20):  # lr 0.01 doubled 20 times would be 10,486
        trainer.apply(ScaleHyper("lr", 2.0))
    assert trainer.hyper("lr") == 10.0
    assert [e.new for e in trainer.events][-2:] == [5.12, 10.0]  # held at the top, recorded once
    trainer.apply(ScaleHyper("weight_decay", 1e300))
    assert trainer.hyper("weight_decay") == 1000.0
    for _ in range(1100):  # halved past the smallest float: an lr of 0 is never made
        trainer.apply(ScaleHyper("lr", 0.5))
    assert trainer.hyper("lr") > 0


def test_holding_the_norm_of_weights_that_overflowed_does_nothing():
    trainer = Trainer(tiny_config())
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(math.inf)
    trainer.apply(SetNormConstraint(current=True))
    assert trainer.norm_target is None and trainer.events == []


# ---- a value that overflows anyway: a fault, back at the last finite state -------------------------------


def test_a_loss_that_overflows_pauses_at_the_last_finite_state_and_lowering_the_value_trains_on(tmp_path):
    run_dir = tmp_path / "run"
    control = Control()
    trainer = new_run(tiny_config(steps=200, **DIVERGES), run_dir).build(control)
    seen = []

    def on_snapshot(s):
        if s.fault and not seen:
            seen.append((s, checkpoint(run_dir)))
            # As the monitor's keys do: lower the values, then space.
            control.set("lr", 1e-2)
            control.set("weight_decay", 1.0)
            control.resume()

    last = trainer.run(on_snapshot)
    fault, saved = seen[0]
    back = fault.step
    assert fault.paused and "the loss is not finite at step" in fault.fault
    assert "with lr 10, weight decay 100" in fault.fault and f"back at step {back}," in fault.fault
    assert int(fault.fault.split("at step ")[1].split()[0]) > back  # it overflowed after the state it went back to
    assert math.isfinite(fault.metrics.train_loss) and fault.metrics.step == back
    # Checkpointed at once, the state gone back to: finite, at that step.
    assert saved["step"] == back and finite_tensors(saved)
    # Then trained on, with the lowered values, to the end, and every row on file is a finite one, each step once.
    assert last.step == 200 and last.fault is None and math.isfinite(last.metrics.train_loss)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert all(r["train_loss"] is not None and r["param_norm"] is not None for r in rows)
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 200
    events = [(e["step"], e["kind"]) for e in read_jsonl(run_dir / "events.jsonl")]
    assert events == [(back, "fault"), (back, "lr"), (back, "weight_decay"), (back, "paused")]


def test_an_overflow_met_mid_update_is_a_fault_with_the_headless_exit_status_not_a_crash(tmp_path, capsys):
    run_dir = tmp_path / "run"
    new_run(tiny_config(steps=20), run_dir).build().run()
    trainer = resume_run(run_dir, steps=40).build()
    # A learning rate past float32 (as a checkpoint could hold): AdamW's update raises converting it.
    trainer.optimizer.param_groups[0]["lr"] = 1e300
    code = run_headless(trainer)
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "a value overflowed float32 in step 21 with lr 1e+300" in err and f"--resume {run_dir}" in err
    assert "# train acc >= 99%" in out
    assert trainer.step == 20
    saved = checkpoint(run_dir)
    assert saved["step"] == 20 and finite_tensors(saved)


def test_moments_that_overflow_are_a_fault_too():
    control = Control()
    trainer = Trainer(tiny_config(steps=100), control=control)

    def on_snapshot(s):
        if s.step == 20 and not s.fault:
            # Squared gradients past float32: the weights and the loss stay finite, AdamW's state does not.
            for entry in trainer.optimizer.state.values():
                entry["exp_avg_sq"].fill_(math.inf)
        if s.fault:
            control.stop()

    last = trainer.run(on_snapshot)
    assert last.fault.startswith("AdamW's moments are not finite at step 30")
    assert last.step == 20 and "back at step 20" in last.fault


def test_the_monitor_shows_the_fault_and_its_keys_lower_the_value_and_resume(live_app):
    async def scenario():
        app = live_app(**DIVERGES)
        async with opened(app) as pilot:
            await wait_for(pilot, lambda: app.home.snapshot.fault is not None)
            held = app.home.snapshot.step
            await wait_for(pilot, lambda: "not finite" in status_text(app) and "PAUSED" in status_text(app))
            for key, value in (("l", "0.01"), ("w", "1")):
                await pilot.press(key)
                await wait_for(pilot, lambda: isinstance(app.screen, ValueInput))
                app.screen.query_one("#value").value = value
                await pilot.press("enter")
                await wait_for(pilot, lambda: not isinstance(app.screen, ValueInput))
            await pilot.press("space")
            await wait_for(pilot, lambda: app.home.snapshot.fault is None and app.home.snapshot.step > held + 50)
            assert math.isfinite(app.home.snapshot.metrics.train_loss)
            await pilot.press("q")

    run(scenario())


def test_an_attached_client_is_told_the_fault_not_stopped(detached):
    run_dir = detached()
    session = attached(run_dir)
    next_frame(session, lambda s: s.step > 0)
    with connect(run_dir) as conn:
        conn.send_bytes(encode_command({"command": "set", "name": "lr", "value": 1e300, "id": 1}))
        while (message := conn.recv())[0] != "reply":
            pass
        assert message[1] == 1 and "<= 10" in message[2]
        session.control.set("lr", DIVERGES["lr"])
        session.control.set("weight_decay", DIVERGES["weight_decay"])
        faulted = next_frame(session, lambda s: s.fault is not None)
        assert faulted.paused and "not finite" in faulted.fault  # watched: paused, not ended
        conn.send_bytes(encode_command({"command": "stop"}))
    wait_until(lambda: session.ended is not None, timeout=20, every=0.05)
    assert session.ended.startswith("fault: the loss is not finite"), session.ended
    assert json.loads((run_dir / "process.json").read_text())["state"] == "fault"
    assert finite_tensors(checkpoint(run_dir))


@pytest.mark.parametrize(
    ("where", "value", "says"),
    [("lr", 100.0, "<= 10"), ("weight_decay", 1e300, "<= 1000")],
)
def test_a_checkpoint_holding_a_value_out_of_its_range_is_refused_on_resume(tmp_path, where, value, says):
    # The same rule as the flags: a file cannot bring back what no flag or key could set.
    run_dir = tmp_path / "run"
    new_run(tiny_config(steps=20), run_dir).build().run()
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    for group in state["optimizer"]["param_groups"]:
        group[where] = value
    torch.save(state, run_dir / "checkpoint.pt")
    with pytest.raises(RunDirError) as e:
        resume_run(run_dir)
    assert where in str(e.value) and says in str(e.value) and len(str(e.value).splitlines()) == 1
