"""grok_tui.monitor around a plain PyTorch loop: the run directory it writes, and the commands a client of its
channel sends, applied to the loop's own optimizer at its next step."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from torch import nn

import grok_tui
from grok_tui.loop.record import ScriptConfig
from grok_tui.runlog import RunDirError, load_checkpoint, load_config, load_run_config, read_jsonl
from grok_tui.runs import describe
from grok_tui.sources.attached import AttachedRun
from grok_tui.sources.base import CannotRestart
from grok_tui.sources.watched import WatchedRun, script_views
from grok_tui.train.control import Pause, Resume, ScaleHyper, SetHyper, Stop, Toggle
from tests.conftest import wait_until
from tests.loops import P, Tiny, ask


def setup(lr: float | torch.Tensor = 1e-2) -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.AdamW(
        [
            {"params": [model.embed.weight, model.out.weight], "weight_decay": 0.5},
            {"params": [model.out.bias], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    pairs = torch.cartesian_prod(torch.arange(P), torch.arange(P))
    return model, optimizer, pairs, (pairs[:, 0] + pairs[:, 1]) % P


def step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def test_a_plain_loop_writes_the_run_directory_that_ls_and_watch_read(tmp_path):
    model, optimizer, x, y = setup()
    run_dir = tmp_path / "run"
    with grok_tui.monitor(model, optimizer, run_dir=run_dir, period=P, config={"p": P, "steps": 30}) as m:
        for i in range(1, 31):
            loss = step(model, optimizer, x, y)
            if i % 10 == 0:
                m.log(i, train_loss=loss, train_acc=0.5, test_loss=loss, test_acc=0.25, grad_norm=1.5)
        assert not m.should_stop
    cfg = load_run_config(run_dir)
    assert isinstance(cfg, ScriptConfig) and cfg.user == {"p": P, "steps": 30} and cfg.optimizer == "AdamW"
    assert json.loads((run_dir / "config.json").read_text())["kind"] == "script"
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert rows[-1]["grad_norm"] == 1.5 and rows[-1]["weight_decay"] == 0.5 and rows[-1]["lr"] == 0.01
    assert rows[-1]["param_norm"] > 0 and rows[-1]["elapsed_s"] >= 0
    info = describe(run_dir)
    assert (info.state, info.experiment, info.step, info.total) == ("finished", cfg.experiment, 30, 30)
    state = load_checkpoint(run_dir)  # weights_only=True
    assert set(state["model"]) == set(model.state_dict()) and state["step"] == 30
    matrices, spectrum, _, inputs = script_views(state)
    assert set(matrices) == {"embed.weight", "out.weight"} and spectrum is not None
    assert inputs is not None and inputs.shape == (P, model.embed.weight.shape[1])  # the embedding pane's
    source = WatchedRun(run_dir)  # watch reads it unchanged
    done = threading.Event()
    threading.Thread(target=source.run, args=(done.is_set,), daemon=True).start()
    taken: list = []

    def frame() -> bool:
        snapshot, _, error = source.mailbox.take()
        assert error is None
        taken[:] = [snapshot]
        return snapshot is not None

    wait_until(frame, timeout=10, every=0.05)
    (snapshot,) = taken
    done.set()
    assert snapshot is not None and snapshot.step == 30 and "embed.weight" in snapshot.matrices
    with pytest.raises(RunDirError, match="script"):
        load_config(run_dir)  # --resume refuses it in one line
    with pytest.raises(CannotRestart, match="script"):
        AttachedRun(run_dir).restarted()


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"train_loss": float("nan")}, "train_loss is nan"),
        ({"train_loss": "low"}, "train_loss is str"),
        ({"test_acc": 97.0}, "share from 0 to 1"),
        ({"param_norm": 1.0}, "filled in by grok-tui"),
        ({"x": torch.ones(3)}, "tensor of 3 values"),
    ],
)
def test_a_value_that_is_not_a_finite_number_is_one_clear_error(tmp_path, metrics, message):
    model, optimizer, x, y = setup()
    with grok_tui.monitor(model, optimizer, run_dir=tmp_path / "run") as m:
        step(model, optimizer, x, y)
        with pytest.raises(ValueError, match=message):
            m.log(1, **metrics)
        m.log(1, train_loss=torch.tensor(0.5))  # a one-element tensor is a number
        with pytest.raises(ValueError, match="not after the last step"):
            m.log(1, train_loss=0.5)


def test_weight_decay_doubles_at_the_next_step_where_it_was_not_zero(tmp_path):
    model, optimizer, x, y = setup()
    run_dir = tmp_path / "run"
    with grok_tui.monitor(model, optimizer, run_dir=run_dir) as m:
        step(model, optimizer, x, y)
        m.log(1, train_loss=0.1)
        assert ask(run_dir, ScaleHyper("weight_decay", 2.0)).error is None
        assert [g["weight_decay"] for g in optimizer.param_groups] == [0.5, 0.0]  # not before a step
        step(model, optimizer, x, y)
        assert [g["weight_decay"] for g in optimizer.param_groups] == [1.0, 0.0]
        assert ask(run_dir, SetHyper("weight_decay", 0.25)).error is None
        step(model, optimizer, x, y)
        assert [g["weight_decay"] for g in optimizer.param_groups] == [0.25, 0.0]
        m.log(3, train_loss=0.1)
    events = read_jsonl(run_dir / "events.jsonl")
    assert [(e["step"], e["kind"], e["old"], e["new"]) for e in events] == [
        (2, "weight_decay", 0.5, 1.0),
        (3, "weight_decay", 1.0, 0.25),
    ]
    assert read_jsonl(run_dir / "metrics.jsonl")[-1]["weight_decay"] == 0.25


def test_lr_scaled_under_a_lambda_schedule_is_not_undone_by_it(tmp_path):
    model, optimizer, x, y = setup()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 / (1 + s))
    run_dir = tmp_path / "run"
    with grok_tui.monitor(model, optimizer, run_dir=run_dir, scheduler=scheduler):
        step(model, optimizer, x, y)
        scheduler.step()  # lr 1e-2 / 2
        assert ask(run_dir, ScaleHyper("lr", 2.0)).error is None
        step(model, optimizer, x, y)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)
        scheduler.step()  # the schedule's next value, from a base twice as high: 2e-2 / 3
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([2e-2 / 3] * 2)
        assert scheduler.base_lrs == pytest.approx([2e-2, 2e-2])
        assert [g["initial_lr"] for g in optimizer.param_groups] == pytest.approx([2e-2, 2e-2])
    assert [e["kind"] for e in read_jsonl(run_dir / "events.jsonl")] == ["lr"]


def test_a_tensor_lr_is_changed_in_place(tmp_path):
    model, optimizer, x, y = setup(lr=torch.tensor(1e-2))
    held = optimizer.param_groups[0]["lr"]
    with grok_tui.monitor(model, optimizer, run_dir=tmp_path / "run"):
        assert ask(tmp_path / "run", ScaleHyper("lr", 0.5)).error is None
        step(model, optimizer, x, y)
    assert optimizer.param_groups[0]["lr"] is held and float(held) == pytest.approx(5e-3)


def test_stop_turns_should_stop_true_and_a_foreign_command_is_refused_saying_why(tmp_path):
    model, optimizer, x, y = setup()
    run_dir = tmp_path / "run"
    with grok_tui.monitor(model, optimizer, run_dir=run_dir) as m:
        refused = ask(run_dir, Toggle("grokfast"))
        assert refused.error is not None and "script" in refused.error and "Grokfast" in refused.error
        assert "L1" in (ask(run_dir, SetHyper("l1", 0.1)).error or "")
        assert not m.should_stop
        assert ask(run_dir, Stop()).error is None
        assert m.should_stop  # at once, before any step
    assert describe(run_dir).state == "stopped"


def test_pause_blocks_inside_the_optimizer_step_until_resumed(tmp_path):
    model, optimizer, x, y = setup()
    run_dir = tmp_path / "run"
    with grok_tui.monitor(model, optimizer, run_dir=run_dir):
        assert ask(run_dir, Pause()).error is None
        stepped = threading.Event()

        def train() -> None:
            step(model, optimizer, x, y)
            stepped.set()

        thread = threading.Thread(target=train, daemon=True)
        thread.start()
        assert not stepped.wait(0.5)  # held in the hook
        assert ask(run_dir, Resume()).error is None
        assert stepped.wait(10)
    kinds = [(e["kind"], e["new"]) for e in read_jsonl(run_dir / "events.jsonl")]
    assert kinds == [("paused", True), ("paused", False)]


def test_an_error_in_the_loop_is_a_crash_with_its_traceback_in_crash_log(tmp_path):
    model, optimizer, x, y = setup()
    run_dir = tmp_path / "run"
    with pytest.raises(ZeroDivisionError):
        with grok_tui.monitor(model, optimizer, run_dir=run_dir) as m:
            step(model, optimizer, x, y)
            m.log(1, train_loss=0.1)
            _ = 1 / 0
    assert describe(run_dir).state == "crashed"
    assert "ZeroDivisionError" in (run_dir / "crash.log").read_text()
    assert not (run_dir / "control.sock").exists()


def test_bad_arguments_are_one_clear_error(tmp_path):
    model, optimizer, _, _ = setup()
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Optimizer"):
        grok_tui.monitor(model, "adam", run_dir=tmp_path / "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"config\['f'\]"):
        grok_tui.monitor(model, optimizer, run_dir=tmp_path / "b", config={"f": print})
    with pytest.raises(ValueError, match="period"):
        grok_tui.monitor(model, optimizer, run_dir=tmp_path / "c", period=1)
    with grok_tui.monitor(model, optimizer, run_dir=tmp_path / "d"):
        pass
    with pytest.raises(RunDirError, match="already holds a run"):
        grok_tui.monitor(model, optimizer, run_dir=tmp_path / "d")


def test_watch_names_script_runs_by_what_differs_in_their_config(tmp_path):
    for name, frac in (("a", 0.3), ("b", 0.5)):
        model, optimizer, x, y = setup()
        with grok_tui.monitor(model, optimizer, run_dir=tmp_path / name, config={"p": P, "frac": frac}) as m:
            step(model, optimizer, x, y)
            m.log(1, train_loss=0.1)
    source = WatchedRun(tmp_path / "a", compare=[tmp_path / "b"])
    assert [source.label, source.others[0].label] == ["frac 0.3", "frac 0.5"]


class Own(Tiny):
    """A model with the views' protocol of grok_tui/models/base.py."""

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"embedding": self.embed.weight}

    def neuron_inputs(self) -> torch.Tensor:
        return self.embed.weight


class HuggingFaceLike(nn.Module):
    """Names its input embedding (as a transformers model does) after another embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.positions = nn.Embedding(2, 8)
        self.tokens = nn.Embedding(P + 3, 8)
        self.out = nn.Linear(8, P)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.tokens


@pytest.mark.parametrize(
    "model, options, matrices, inputs_rows",
    [
        (Own(), {}, {"embedding"}, P),
        (Tiny(), {"matrices": lambda: {"w": torch.ones(3, 2)}}, {"w"}, None),
        (Tiny(), {"period": P}, {"embed.weight", "out.weight"}, P),
        (HuggingFaceLike(), {"period": P}, {"positions.weight", "tokens.weight", "out.weight"}, P),
    ],
)
def test_the_views_come_from_the_model_the_callables_or_its_parameters(tmp_path, model, options, matrices, inputs_rows):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with grok_tui.monitor(model, optimizer, run_dir=tmp_path / "run", **options):
        pass
    views = load_checkpoint(tmp_path / "run")["views"]
    assert set(views["matrices"]) == matrices
    inputs = views.get("neuron_inputs")
    assert (None if inputs is None else inputs.shape[0]) == inputs_rows
    if isinstance(model, HuggingFaceLike):
        assert torch.equal(inputs, model.tokens.weight[:P].detach())


@pytest.mark.parametrize(
    "change, field",
    [
        ({"experiment": ""}, "experiment"),
        ({"steps": -1}, "steps"),
        ({"config": [1]}, "config"),
        ({"argv": "x"}, "argv"),
    ],
)
def test_a_bad_script_config_json_is_one_line_naming_the_field(tmp_path, change, field):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = {**ScriptConfig(experiment="mine", script="mine.py").record(), **change}
    (run_dir / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunDirError, match=f"config.json: {field}: "):
        describe(run_dir)


def test_stop_ends_a_pause_and_the_loop_sees_should_stop(tmp_path):
    model, optimizer, x, y = setup()
    run_dir = tmp_path / "run"
    with grok_tui.monitor(model, optimizer, run_dir=run_dir) as m:
        assert ask(run_dir, Pause()).error is None
        thread = threading.Thread(target=step, args=(model, optimizer, x, y), daemon=True)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # held in the hook
        assert ask(run_dir, Stop()).error is None
        thread.join(10)
        assert not thread.is_alive() and m.should_stop
    assert describe(run_dir).state == "stopped"
