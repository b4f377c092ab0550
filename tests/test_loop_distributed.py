"""grok_tui.monitor under torch.distributed: two gloo processes train one DDP model, rank 0 alone serves and
writes the run, and each command from its channel takes effect on both ranks at the same optimizer step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from grok_tui.runlog import read_jsonl
from grok_tui.runs import describe
from grok_tui.train.channel import is_served
from grok_tui.train.control import Pause, ScaleHyper, Stop
from tests.conftest import wait_until
from tests.loops import ask

# Each rank trains its own data through DDP (so the replicas stay equal only through its all-reduce) until
# the monitor says stop, writing after every step its weight decay to OUT/rankN.jsonl, and its final
# parameters to OUT/rankN.pt.
WORKER = """
import json, os, sys
import torch, torch.distributed as dist
from torch import nn
import grok_tui

rank, run_dir, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=2)
torch.manual_seed(0)
model = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.5)
data = torch.Generator().manual_seed(rank)
x, y = torch.randn(16, 4, generator=data), torch.randint(0, 2, (16,), generator=data)
with open(f"{out}/rank{rank}.jsonl", "w", buffering=1) as record:
    with grok_tui.monitor(model, optimizer, run_dir=run_dir, config={"ranks": 2}) as m:
        step = 0
        while not m.should_stop:
            step += 1
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            record.write(json.dumps({"step": step, "wd": optimizer.param_groups[0]["weight_decay"]}) + "\\n")
            if step % 10 == 0:
                m.log(step, train_loss=float(loss.detach()))  # on every rank: the others' is a no-op
torch.save([p.detach() for p in model.parameters()], f"{out}/rank{rank}.pt")
dist.destroy_process_group()
os._exit(0)  # all is written; torch's own exit after gloo takes seconds on a small box
"""


def steps(out: Path, rank: int) -> list[dict]:
    path = out / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")] if path.exists() else []


def last(out: Path, rank: int, what: str) -> float:
    rows = steps(out, rank)
    return rows[-1][what] if rows else 0


def test_two_ranks_take_each_command_at_the_same_step_and_only_rank_0_writes_the_run(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    (out / "worker.py").write_text(WORKER)
    env = dict(os.environ)
    if sys.platform == "linux":  # gloo's interface: loopback, whatever the host name resolves to
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    ranks = [
        subprocess.Popen(
            [sys.executable, str(out / "worker.py"), str(rank), str(run_dir), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for rank in (0, 1)
    ]

    def said() -> str:
        return "\n".join(
            f"rank {r} (exit {p.poll()}): {p.stdout.read().decode() if p.poll() is not None and p.stdout else ''}"
            for r, p in enumerate(ranks)
        )

    def running(condition: Callable[[], object]) -> Callable[[], object]:
        def check() -> object:
            if any(p.poll() is not None for p in ranks):
                raise AssertionError(f"a rank ended early\n{said()}")
            return condition()

        return check

    try:
        wait_until(running(lambda: is_served(run_dir) and last(out, 1, "step") >= 5), timeout=60, what=said)
        assert ask(run_dir, ScaleHyper("weight_decay", 2.0)).error is None
        wait_until(running(lambda: last(out, 0, "wd") == last(out, 1, "wd") == 1.0), timeout=20, what="wd as it was")
        assert ask(run_dir, Pause()).error is None
        wait_until(running(lambda: len(read_jsonl(run_dir / "events.jsonl")) == 2), timeout=20, what="not paused")
        paused_at = read_jsonl(run_dir / "events.jsonl")[1]["step"]
        # Both ranks are held in optimizer.step() of that step, the line of the step before the last written.
        held = [last(out, r, "step") for r in (0, 1)]
        time.sleep(0.3)
        assert held == [last(out, r, "step") for r in (0, 1)] == [paused_at - 1] * 2
        assert ask(run_dir, Stop()).error is None  # during the pause: it releases both
        for rank in ranks:
            assert rank.wait(30) == 0, said()
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
                rank.wait()

    records = [steps(out, r) for r in (0, 1)]
    (wd_event, pause_event) = read_jsonl(run_dir / "events.jsonl")
    assert (wd_event["kind"], wd_event["old"], wd_event["new"]) == ("weight_decay", 0.5, 1.0)
    assert (pause_event["kind"], pause_event["new"]) == ("paused", True)
    for record in records:  # weight decay doubled at the same step on both ranks: the step rank 0 recorded
        assert [row["wd"] for row in record[: wd_event["step"] - 1]] == [0.5] * (wd_event["step"] - 1)
        assert {row["wd"] for row in record[wd_event["step"] - 1 :]} == {1.0}
    # The stop came while both were held at the paused step: each finished that step and broke out there.
    assert [record[-1]["step"] for record in records] == [paused_at, paused_at]
    first, second = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))

    # Rank 0's run, written once: rank 1's m.log and checkpoints wrote nothing.
    assert {p.name for p in run_dir.iterdir()} == {
        "config.json",
        "metrics.jsonl",
        "events.jsonl",
        "process.json",
        "checkpoint.pt",
        "replay.npz",  # the views at each checkpoint, for watch to step through
    }
    rows = [row["step"] for row in read_jsonl(run_dir / "metrics.jsonl")]
    assert rows == list(range(10, rows[-1] + 1, 10)) and rows
    assert json.loads((run_dir / "process.json").read_text())["pid"] == ranks[0].pid
    assert describe(run_dir).state == "stopped"
