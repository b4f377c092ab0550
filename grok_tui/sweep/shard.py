"""One shard of a sweep: some members of one batch, trained to the end in one process on one device.

A shard knows nothing of where its numbers go: it hands each evaluation's rows
to `emit` and checks `stopped` between steps. The local engine runs shards in
worker processes, each sending its messages down a pipe of its own; a Ray task
runs the same function and sends them through a Ray queue (ray_engine.py).

Messages passed to `emit` (plain tuples of numbers, strings and bytes):
    ("start", shard, step)                      training begins (step > 0: resumed from the checkpoint)
    ("rows", shard, [(member, metrics dict)])   one evaluation of every member
    ("checkpoint", shard, bytes)                the shard's state, for spec.checkpoint (torch.save format)
    ("weights", shard, {member: bytes})         each member's own checkpoint (torch.save), when the shard ends
    ("warning", shard, text)                    one line for the sweep's output (a damaged checkpoint, say)
    ("done", shard, "finished" | "stopped")
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grok_tui.config import RunConfig, is_int
from grok_tui.train.allocator import keep_freed_memory
from grok_tui.train.batched import BatchedTrainer
from grok_tui.train.checkpoint import is_dense, run_checkpoint
from grok_tui.train.trainer import resolve_device

# Members per batched trainer on a CPU. On mod-add's stacked forward a member-step costs the same CPU time
# at 2, 4, 8 or 16 a chunk and 15% more trained alone (one thread, docs/design.md), so there is nothing
# to choose at start-up; on the vmapped forward past about eight a batch's activations leave the caches.
CHUNK = 8

Emit = Callable[[tuple[Any, ...]], None]


@dataclass(frozen=True)
class ShardSpec:
    index: int
    members: tuple[int, ...]  # member indices in the sweep
    cfgs: tuple[RunConfig, ...]  # their configs, same order
    checkpoint: Path | None = (
        None  # where the shard's state is kept between sessions (read here, written by the driver)
    )
    threads: int = 1
    chunk: int = CHUNK  # members a batched trainer on a CPU (on a GPU: all of them)


def train_shard(spec: ShardSpec, emit: Emit, stopped: Callable[[], bool] = lambda: False) -> str:
    """Train the shard's members to their step budget, or until `stopped()`; returns how it ended."""
    torch.set_num_threads(spec.threads)
    keep_freed_memory()
    cfg = spec.cfgs[0]
    device = resolve_device(cfg.device)  # here, on the worker: a Ray task's node may have a GPU the driver lacks
    if device.type == "cuda":
        spec = dataclasses.replace(spec, chunk=len(spec.cfgs))  # a GPU wants one large batch
    chunks = [BatchedTrainer([spec.cfgs[i] for i in chunk], device) for chunk in _chunks(spec)]
    step = _restore(spec, chunks, emit)
    emit(("start", spec.index, step))
    # The rows an uninterrupted shard has: a checkpoint written at a stop between two evaluations
    # resumes without the row measured at the stop (the driver has cut it), as it never evaluated there.
    last_eval = -1
    if step % cfg.eval_every == 0 or step == cfg.steps:
        _evaluate(spec, chunks, emit)
        last_eval = step
    last_save, clock = time.monotonic(), time.monotonic()
    while step < cfg.steps and not stopped():
        for trainer in chunks:
            trainer.train_step()
        step += 1
        now = time.monotonic()
        for trainer in chunks:
            trainer.elapsed_s += now - clock
        clock = now
        if step % cfg.eval_every == 0 or step == cfg.steps:
            _evaluate(spec, chunks, emit)
            last_eval = step
            if now - last_save >= cfg.checkpoint_every_s:
                _save(spec, chunks, emit)
                last_save = now
    if last_eval != step:
        _evaluate(spec, chunks, emit)  # where a stopped shard stands (a resume cuts this row)
    _save(spec, chunks, emit)
    # Each member's checkpoint as its single run writes it, the row just evaluated its logged step (so
    # `--resume` of the member does not log it twice). As bytes: torch tensors would cross to another
    # process as shared-memory handles, gone with the worker.
    emit(
        (
            "weights",
            spec.index,
            {
                member: _saved(run_checkpoint(trainer.member_checkpoint(i), logged_step=step))
                for trainer, members in zip(chunks, _split(spec), strict=True)
                for i, member in enumerate(members)
            },
        )
    )
    ending = "finished" if step >= cfg.steps else "stopped"
    emit(("done", spec.index, ending))
    return ending


def _saved(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _chunks(spec: ShardSpec) -> list[list[int]]:
    """The shard cut into chunks of members, as positions in spec: members of one data size together
    (a chunk pads each member's data to its longest, so a member of 20% beside one of 50% would train
    on 2.5 times its rows), in shard order otherwise."""
    order = sorted(range(len(spec.cfgs)), key=lambda i: (spec.cfgs[i].train_frac, spec.cfgs[i].n_train))
    return [order[i : i + spec.chunk] for i in range(0, len(order), spec.chunk)]


def _split(spec: ShardSpec) -> list[tuple[int, ...]]:
    """Each chunk's members, as sweep member indices."""
    return [tuple(spec.members[i] for i in chunk) for chunk in _chunks(spec)]


def _evaluate(spec: ShardSpec, chunks: list[BatchedTrainer], emit: Emit) -> None:
    rows = [
        (member, metrics.to_dict())
        for trainer, members in zip(chunks, _split(spec), strict=True)
        for member, metrics in zip(members, trainer.evaluate(), strict=True)
    ]
    emit(("rows", spec.index, rows))


def _save(spec: ShardSpec, chunks: list[BatchedTrainer], emit: Emit) -> None:
    """Hand the shard's state to whoever writes the checkpoint: after the rows before it, so a
    checkpoint is never ahead of the members' logs (resuming then loses no row)."""
    if spec.checkpoint is None:
        return
    state = {"members": list(spec.members), "grouping": _chunks(spec), "chunks": [t.state() for t in chunks]}
    emit(("checkpoint", spec.index, _saved(state)))


def _restore(spec: ShardSpec, chunks: list[BatchedTrainer], emit: Emit) -> int:
    """Load the shard's checkpoint where it fits this shard exactly; the step to start from (0: none).
    A checkpoint that cannot be taken is said in one line (a "warning"), and the shard trains from the start."""
    if spec.checkpoint is None or not spec.checkpoint.exists():
        return 0
    try:
        with warnings.catch_warnings():  # torch warns of odd bytes too: the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(spec.checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        problem: str | None = f"is not a readable checkpoint ({type(e).__name__})"
    else:
        problem = _problem(state, spec, chunks)
    if problem is not None:
        emit(("warning", spec.index, f"{spec.checkpoint}: {problem}; shard {spec.index} trains again from step 0"))
        return 0
    for trainer, chunk_state in zip(chunks, state["chunks"], strict=True):
        trainer.load_state(chunk_state)
    return chunks[0].step


def _problem(state: Any, spec: ShardSpec, chunks: list[BatchedTrainer]) -> str | None:
    """What keeps a loaded shard checkpoint from being this shard's state (None: nothing)."""
    if not isinstance(state, dict) or not isinstance(state.get("chunks"), list):
        return "is not a shard checkpoint (no list of chunks)"
    if state.get("members") != list(spec.members):
        return f"holds other members than this shard's {list(spec.members)}"
    # A checkpoint without its grouping was written when chunks were cut in shard order.
    written = state.get(
        "grouping", [list(range(i, min(i + spec.chunk, len(spec.cfgs)))) for i in range(0, len(spec.cfgs), spec.chunk)]
    )
    if written != _chunks(spec):
        return f"holds this shard's members in other chunks ({written}, not {_chunks(spec)})"
    if len(state["chunks"]) != len(chunks):
        return f"holds {len(state['chunks'])} chunks, not this shard's {len(chunks)}"
    steps = set()
    for i, (trainer, chunk) in enumerate(zip(chunks, state["chunks"], strict=True)):
        if not trainer.fits(chunk):
            return f"chunk {i} does not hold tensors of this shard's shapes"
        tensors = [*chunk["params"].values(), *chunk["optimizer"]["exp_avg"], *chunk["optimizer"]["exp_avg_sq"]]
        if not all(is_dense(t) for t in tensors):
            return f"chunk {i} holds a tensor that is not a dense float tensor on the CPU"
        step, elapsed = chunk["step"], chunk["elapsed_s"]
        if not (is_int(step) and 0 <= step <= spec.cfgs[0].steps and chunk["optimizer"]["steps"] == step):
            return f"chunk {i}: step {step} is not a step from 0 to {spec.cfgs[0].steps} that its optimizer took"
        if not (math.isfinite(elapsed) and elapsed >= 0):
            return f"chunk {i}: elapsed_s {elapsed} is not a finite number of seconds >= 0"
        steps.add(step)
    if len(steps) > 1:
        return f"its chunks are at different steps ({', '.join(map(str, sorted(steps)))})"
    return None


__all__ = ["CHUNK", "ShardSpec", "train_shard"]
