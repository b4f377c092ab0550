import json
import signal
import subprocess
import sys
import time

from grok_tui.history import History
from grok_tui.runlog import JsonlFollower, read_jsonl
from grok_tui.train import new_run, resume_run
from grok_tui.train.snapshot import Event
from tests.conftest import tiny_config

VOLATILE = ("elapsed_s", "steps_per_s")


def strip(records):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


def test_killed_run_leaves_a_readable_metrics_file(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "grok_tui", "--headless", "--steps", "1000000", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # Wait until training is well under way, then kill without warning.
        for line in proc.stdout:
            if line.startswith("step") and int(line.split()[1]) >= 1500:
                break
        printed = int(line.split()[1])
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line parses
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[0] == 0
    # At most the last second is lost: the file holds the step printed a second before the kill.
    assert steps[-1] >= printed
    assert json.loads((run_dir / "config.json").read_text())["experiment"] == "mod-add"


def test_resume_matches_an_unbroken_run(tmp_path):
    unbroken = tiny_config(steps=120, eval_every=10, weight_decay=0.5)
    new_run(unbroken, tmp_path / "whole").build().run()

    new_run(unbroken.replace(steps=55), tmp_path / "broken").build().run()
    second = resume_run(tmp_path / "broken", steps=120).build()
    assert second.step == 55
    second.run()

    a = strip(read_jsonl(tmp_path / "whole" / "metrics.jsonl"))
    b = strip(read_jsonl(tmp_path / "broken" / "metrics.jsonl"))

    def after(rows):
        return [r for r in rows if r["step"] > 55]

    assert after(a) == after(b) and len(after(a)) == 7


def test_resume_drops_records_after_the_checkpoint(tmp_path):
    new_run(tiny_config(steps=40), tmp_path / "r").build().run()
    # A run killed after its last checkpoint wrote metrics beyond it.
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 50, "train_loss": 1.0}) + "\n" + '{"step": 60, "tr')
    resumed = resume_run(tmp_path / "r", steps=40).build()
    assert [r["step"] for r in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [0, 10, 20, 30, 40]
    assert resumed.step == 40


def test_follower_reads_only_complete_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 0}\n{"step": 1')
    follower = JsonlFollower(path)
    assert follower.poll() == [{"step": 0}]
    with open(path, "a") as f:
        f.write('0}\n{"step": 20}\n')
    assert follower.poll() == [{"step": 10}, {"step": 20}]
    assert follower.poll() == []


def test_history_memory_is_bounded_and_keeps_extremes():
    history = History(capacity=64)
    n = 100_000
    for step in range(n):
        loss = 100.0 if step == 31_337 else 1.0 / (1 + step)
        history.add({"step": step * 100, "train_loss": loss, "test_acc": step / n})
        if step == 5:
            size = history.nbytes
    assert len(history) <= 64 and history.nbytes == size
    series = history.series("train_loss")
    assert series.hi.max() == 100.0  # the spike survives downsampling
    assert series.steps[-1] == 100 * (n - 1)  # the newest point is there
    assert (series.lo <= series.values).all() and (series.values <= series.hi).all()
    assert list(series.steps) == sorted(series.steps)
    for i in range(1000):
        history.add_event(Event(i, "weight_decay", i, i + 1))
    assert len(history.events) == 1000


def test_a_resumed_run_keeps_the_changes_made_before_its_checkpoint(tmp_path):
    from grok_tui.train import Control

    control = Control()
    trainer = new_run(tiny_config(steps=30, weight_decay=0.5), tmp_path / "r").build(control)
    trainer.run(lambda s: control.set("weight_decay", 1.5) if s.step == 10 and s.metrics.weight_decay == 0.5 else None)
    resumed = resume_run(tmp_path / "r", steps=60).build()
    assert resumed.events == [Event(10, "weight_decay", 0.5, 1.5)]
    assert resumed.settings().weight_decay == 1.5
    last = resumed.run()
    assert [e.kind for e in last.events] == ["weight_decay"]  # shown on the resumed run's curves
    assert [e["step"] for e in read_jsonl(tmp_path / "r" / "events.jsonl")] == [10]  # and written once


def test_changes_made_after_the_last_checkpoint_are_made_again_on_resume(tmp_path):
    """Killed after changing wd, the ungrok subset and the norm, with its last checkpoint from before:
    the resumed run trains those steps as they were trained, and ends equal to an unbroken run."""
    import shutil

    from grok_tui.train import Control
    from grok_tui.train.control import SetNormConstraint, SetTrainSize

    def steer(control):
        def on_snapshot(s):
            if s.step == 20 and s.now.weight_decay == 0.5:
                control.set("weight_decay", 1.5)
                control.send(SetTrainSize(40))
            if s.step == 50 and s.now.norm_target is None:
                control.send(SetNormConstraint(30.0))

        return on_snapshot

    cfg = tiny_config(steps=100, weight_decay=0.5, checkpoint_every_s=3600.0)
    control = Control()
    new_run(cfg, tmp_path / "whole").build(control).run(steer(control))

    control = Control()
    trainer = new_run(cfg.replace(steps=70), tmp_path / "broken").build(control)
    first_checkpoint = tmp_path / "step0.pt"
    trainer.run(
        lambda s: (
            steer(control)(s),
            s.step == 0 and shutil.copy(tmp_path / "broken" / "checkpoint.pt", first_checkpoint),
        )
    )
    # As if killed at step 70 with nothing saved since the start-up checkpoint.
    shutil.copy(first_checkpoint, tmp_path / "broken" / "checkpoint.pt")
    resumed = resume_run(tmp_path / "broken", steps=100).build()
    assert resumed.step == 0 and resumed.events == []
    resumed.run()

    for name in ("metrics.jsonl", "events.jsonl"):
        assert strip(read_jsonl(tmp_path / "broken" / name)) == strip(read_jsonl(tmp_path / "whole" / name)), name
    assert [e["kind"] for e in read_jsonl(tmp_path / "whole" / "events.jsonl")] == [
        "weight_decay",
        "train_size",
        "norm_constraint",
    ]
