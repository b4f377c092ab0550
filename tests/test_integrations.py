"""The Lightning and Hugging Face callbacks (grok_tui/integrations): a tiny real fit of each framework on the
CPU is a run that grok-tui writes, steers through the framework's own optimizer, stops and sees crash; and
the Lightning example, for a few steps. Both frameworks are in the test extra: these tests always run."""

from __future__ import annotations

import importlib
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments

from grok_tui.integrations import huggingface, lightning
from grok_tui.integrations.common import known_name
from grok_tui.runlog import read_jsonl
from grok_tui.runs import describe
from grok_tui.train.control import Command, ScaleHyper, Stop
from tests.loops import P, ask

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lightning_mod_add.py"


def mod_add() -> tuple[torch.Tensor, torch.Tensor]:
    pairs = torch.cartesian_prod(torch.arange(P), torch.arange(P))
    return pairs, (pairs[:, 0] + pairs[:, 1]) % P


def groups(optimizer: torch.optim.Optimizer, name: str) -> list[float]:
    return [float(g[name]) for g in optimizer.param_groups]


# ---- Lightning -----------------------------------------------------------------------------------------------


class LitTiny(pl.LightningModule):
    """a + b mod 7, full batch; AdamW with its bias undecayed, under a constant LambdaLR stepped each step
    (which would undo an lr key whose change did not reach its base lrs)."""

    def __init__(self, crash_at: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(P, 8)
        self.out = nn.Linear(8, P)
        self.crash_at = crash_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.embed(x).sum(dim=1)))

    def _measure(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log(f"{split}_loss", loss)
        self.log(f"{split}_acc", (logits.argmax(-1) == y).float().mean())
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.crash_at and self.global_step == self.crash_at:
            raise RuntimeError("the data ran out")
        return self._measure(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._measure(batch, "val")

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            [
                {"params": [self.embed.weight, self.out.weight], "weight_decay": 0.5},
                {"params": [self.out.bias], "weight_decay": 0.0},
            ],
            lr=1e-2,
        )
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": constant, "interval": "step"}}


class SendAt(pl.Callback):
    """Sends commands over the run's channel after optimizer step `at`; keeps the settings seen after each step."""

    def __init__(self, run_dir: Path, at: int, *commands: Command) -> None:
        self.run_dir, self.at, self.commands = run_dir, at, commands
        self.seen: dict[int, tuple[list[float], list[float]]] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int) -> None:
        optimizer = trainer.optimizers[0]
        self.seen[trainer.global_step] = (groups(optimizer, "weight_decay"), groups(optimizer, "lr"))
        if trainer.global_step == self.at:
            for command in self.commands:
                assert ask(self.run_dir, command).error is None


def fit(module: LitTiny, steps: int, *callbacks: pl.Callback, log_every_n_steps: int = 50) -> pl.Trainer:
    batches = DataLoader([mod_add()], batch_size=None)  # the whole set, one batch an epoch
    trainer = pl.Trainer(
        max_steps=steps,
        max_epochs=-1,
        check_val_every_n_epoch=5,  # one batch an epoch: validation every 5 steps
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=log_every_n_steps,
    )
    trainer.fit(module, batches, batches)
    return trainer


def test_a_lightning_fit_is_a_run_whose_optimizer_the_keys_steer(tmp_path):
    torch.manual_seed(0)
    run_dir = tmp_path / "run"
    sender = SendAt(run_dir, 3, ScaleHyper("weight_decay", 2.0), ScaleHyper("lr", 2.0))
    callback = lightning.GrokTuiCallback(period=P, config={"p": P}, run_dir=run_dir, log_every_n_steps=5)
    trainer = fit(LitTiny(), 15, sender, callback)
    assert trainer.global_step == 15 and callback.run_dir == run_dir
    # Applied in the real param groups at the next step; the constant schedule kept the doubled lr.
    assert sender.seen[3] == ([0.5, 0.0], [1e-2, 1e-2])
    assert sender.seen[4] == ([1.0, 0.0], [2e-2, 2e-2]) and sender.seen[15][1] == [2e-2, 2e-2]
    events = [(e["step"], e["kind"], e["old"], e["new"]) for e in read_jsonl(run_dir / "events.jsonl")]
    assert events == [(4, "weight_decay", 0.5, 1.0), (4, "lr", 0.01, 0.02)]
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10, 15]
    for row in rows:  # each row has the step's training metrics and that step's validation
        assert all(isinstance(row[k], float) for k in ("train_loss", "train_acc", "test_loss", "test_acc"))
    assert rows[-1]["weight_decay"] == 1.0 and rows[-1]["lr"] == 0.02
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "script" and config["config"] == {"steps": 15, "p": P} and config["optimizer"] == "AdamW"
    assert json.loads((run_dir / "process.json").read_text())["state"] == "finished"
    assert describe(run_dir).step == 15


def test_stop_from_the_channel_stops_the_lightning_fit_early(tmp_path):
    run_dir = tmp_path / "run"
    callback = lightning.GrokTuiCallback(run_dir=run_dir, log_every_n_steps=1)
    trainer = fit(LitTiny(), 1000, SendAt(run_dir, 3, Stop()), callback)
    assert trainer.global_step == 3  # the Trainer stops at the end of the step where it was asked
    assert describe(run_dir).state == "stopped" and read_jsonl(run_dir / "metrics.jsonl")[-1]["step"] == 3


def test_an_exception_in_a_lightning_fit_is_a_crashed_run_with_its_rows(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="the data ran out"):
        fit(LitTiny(crash_at=5), 20, lightning.GrokTuiCallback(run_dir=run_dir), log_every_n_steps=2)
    # The Trainer's own log_every_n_steps, and the validation at step 5, before the sixth step raised.
    assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl")] == [2, 4, 5]
    assert describe(run_dir).state == "crashed"
    assert "the data ran out" in (run_dir / "crash.log").read_text()
    assert not (run_dir / "control.sock").exists()


def test_the_lightning_example_runs_a_few_steps(tmp_path, monkeypatch):
    # In this process, not a new one: a fresh interpreter spends ~10 s importing Lightning again.
    run_dir = tmp_path / "example"
    argv = [str(EXAMPLE), "--steps", "20", "--p", "23", "--width", "32", "--run-dir", str(run_dir)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [10, 20] and rows[-1]["test_acc"] is not None
    config = json.loads((run_dir / "config.json").read_text())
    assert config["script"] == str(EXAMPLE) and config["config"]["p"] == 23
    assert describe(run_dir).state == "finished"


# ---- Hugging Face ----------------------------------------------------------------------------------------------


class HfTiny(nn.Module):
    """a + b mod 7 as the Trainer wants a model: keyword inputs, a dict with the loss when given labels."""

    def __init__(self, crash_at: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(P, 8)
        self.out = nn.Linear(8, P)
        self.crash_at, self.calls = crash_at, 0

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        if self.training:
            self.calls += 1
            if self.calls == self.crash_at:
                raise RuntimeError("the data ran out")
        logits = self.out(torch.relu(self.embed(x).sum(dim=1)))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


class HfSendAt(TrainerCallback):
    """Sends commands after optimizer step `at`; keeps the real (inner) optimizer's settings after each step."""

    def __init__(self, run_dir: Path, at: int, *commands: Command) -> None:
        self.run_dir, self.at, self.commands = run_dir, at, commands
        self.seen: dict[int, tuple[list[float], list[float]]] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        inner = optimizer.optimizer  # accelerate's AcceleratedOptimizer wraps it
        self.seen[state.global_step] = (groups(inner, "weight_decay"), groups(inner, "lr"))
        if state.global_step == self.at:
            for command in self.commands:
                assert ask(self.run_dir, command).error is None


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def trainer_of(tmp_path: Path, model: HfTiny, steps: int, *callbacks: TrainerCallback) -> Trainer:
    x, y = mod_add()
    data = [{"x": a, "labels": b} for a, b in zip(x, y, strict=True)]
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        max_steps=steps,
        per_device_train_batch_size=len(data),
        learning_rate=1e-2,
        weight_decay=0.5,
        lr_scheduler_type="constant",
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=5,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset={"train": data, "test": data},
        compute_metrics=accuracy,
        callbacks=list(callbacks),
    )


def test_a_hugging_face_training_is_a_run_whose_optimizer_the_keys_steer(tmp_path):
    run_dir = tmp_path / "run"
    sender = HfSendAt(run_dir, 3, ScaleHyper("weight_decay", 2.0), ScaleHyper("lr", 2.0))
    callback = huggingface.GrokTuiCallback(period=P, config={"p": P}, run_dir=run_dir)
    trainer = trainer_of(tmp_path, HfTiny(), 10, sender, callback)
    trainer.train()
    assert trainer.state.global_step == 10
    # The keys reached the optimizer inside accelerate's wrapper, and the Trainer's scheduler kept the lr.
    assert sender.seen[3] == ([0.5, 0.0], [1e-2, 1e-2])
    assert sender.seen[4] == ([1.0, 0.0], [2e-2, 2e-2]) and sender.seen[10][1] == [2e-2, 2e-2]
    assert trainer.lr_scheduler.base_lrs == [2e-2, 2e-2]
    events = [(e["step"], e["kind"], e["old"], e["new"]) for e in read_jsonl(run_dir / "events.jsonl")]
    assert events == [(4, "weight_decay", 0.5, 1.0), (4, "lr", 0.01, 0.02)]
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10]
    for row in rows:  # the logged loss and both eval sets' metrics in one row a step
        assert all(isinstance(row[k], float) for k in ("train_loss", "train_acc", "test_loss", "test_acc"))
        assert row["grad_norm"] > 0 and "learning_rate" not in row and "eval_test_runtime" not in row
    assert rows[-1]["weight_decay"] == 1.0 and rows[-1]["lr"] == 0.02
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"] == {"steps": 10, "p": P} and config["optimizer"] == "AdamW"
    assert describe(run_dir).state == "finished"


def test_stop_from_the_channel_stops_the_hugging_face_training_early(tmp_path):
    run_dir = tmp_path / "run"
    callback = huggingface.GrokTuiCallback(run_dir=run_dir)
    trainer = trainer_of(tmp_path, HfTiny(), 1000, HfSendAt(run_dir, 3, Stop()), callback)
    trainer.train()
    assert trainer.state.global_step == 3
    assert describe(run_dir).state == "stopped"


def test_a_hugging_face_training_that_raises_ends_crashed_at_exit(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    callback = huggingface.GrokTuiCallback(run_dir=run_dir)
    trainer = trainer_of(tmp_path, HfTiny(crash_at=3), 20, callback)
    with pytest.raises(RuntimeError, match="the data ran out") as raised:
        trainer.train()
    assert describe(run_dir).state == "running"  # the Trainer tells its callbacks nothing of an exception
    # What the interpreter does with an uncaught exception: keep it in sys.last_value, then run atexit.
    monkeypatch.setattr(sys, "last_value", raised.value, raising=False)
    callback._at_exit()
    assert describe(run_dir).state == "crashed"
    assert "the data ran out" in (run_dir / "crash.log").read_text()


# ---- the common parts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, name",
    [
        ("train_loss", ("train_loss", 0)),
        ("val/acc", ("test_acc", 0)),
        ("loss/val", ("test_loss", 0)),
        ("val_accuracy_epoch", ("test_acc", 2)),
        ("train_acc_step", ("train_acc", 1)),
        ("eval_loss", ("test_loss", 0)),
        ("eval_train_accuracy", ("train_acc", 0)),
        ("loss", ("train_loss", 3)),
        ("grad_norm", None),
        ("val_f1", None),
    ],
)
def test_a_framework_metric_name_is_read_as_the_monitor_name_it_means(key, name):
    assert known_name(key) == name


@pytest.mark.parametrize(
    "module, framework, named",
    [("lightning", "lightning", "Lightning"), ("huggingface", "transformers", "transformers")],
)
def test_a_missing_framework_is_one_line_naming_the_extra(monkeypatch, module, framework, named):
    monkeypatch.setitem(sys.modules, framework, None)  # as if not installed
    monkeypatch.delitem(sys.modules, f"grok_tui.integrations.{module}")
    with pytest.raises(ImportError) as raised:
        importlib.import_module(f"grok_tui.integrations.{module}")
    assert str(raised.value) == f"grok_tui.integrations.{module} needs {named}: pip install 'grok-tui[{module}]'"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no chain of ours under it


def test_bad_callback_arguments_are_one_clear_error_at_once():
    with pytest.raises(ValueError, match="log_every_n_steps must be an integer >= 1, not 0"):
        lightning.GrokTuiCallback(log_every_n_steps=0)
    with pytest.raises(ValueError, match=r"config\['f'\]"):
        huggingface.GrokTuiCallback(config={"f": print})
