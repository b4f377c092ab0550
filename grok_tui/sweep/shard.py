"""One shard of a sweep: some members of one batch, trained to the end in one process on one device.

A shard knows nothing of where its numbers go: it hands each evaluation's rows
to `emit` and checks `stopped` between steps. The local engine runs shards in
worker processes, each sending its messages down a pipe of its own; a Ray task
runs the same function and sends them through a Ray queue (ray_engine.py).

Messages passed to `emit` (plain tuples of numbers, strings and bytes):
    ("start", shard, step[, {member: forecast}])  training begins (step > 0: resumed from the checkpoint);
                                                with --prune, the members it had pruned (their logs are final)
    ("rows", shard, [(member, metrics dict)])   one evaluation of every member
    ("checkpoint", shard, bytes)                the shard's state, for spec.checkpoint (torch.save format)
    ("weights", shard, {member: bytes})         members' own checkpoints (torch.save): each one's when the shard
                                                ends, or when it is pruned
    ("pruned", shard, {member: forecast})       members pruned at this evaluation (sweep/prune.py), with the
                                                forecast that ended them: {step, p_generalize, expected_step}
    ("warning", shard, text)                    one line for the sweep's output (a damaged checkpoint, say)
    ("done", shard, "finished" | "stopped")
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
import warnings
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grok_tui.config import RunConfig, is_int
from grok_tui.sweep.prune import Pruner
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
    prune: float | None = None  # end members whose forecast falls below this (sweep/prune.py); None: never


# A chunk as it trains: its batched trainer and its members (sweep member indices), the pruned ones gone.
Live = tuple[BatchedTrainer, list[int]]
# An evaluation: (member, metrics row) for each member training.
Rows = list[tuple[int, dict[str, Any]]]


def train_shard(spec: ShardSpec, emit: Emit, stopped: Callable[[], bool] = lambda: False) -> str:
    """Train the shard's members to their step budget, or until `stopped()`; returns how it ended."""
    torch.set_num_threads(spec.threads)
    keep_freed_memory()
    cfg = spec.cfgs[0]
    device = resolve_device(cfg.device)  # here, on the worker: a Ray task's node may have a GPU the driver lacks
    if device.type == "cuda":
        spec = dataclasses.replace(spec, chunk=len(spec.cfgs))  # a GPU wants one large batch

    def build() -> list[Live]:
        return [
            (BatchedTrainer([spec.cfgs[i] for i in chunk], device), list(members))
            for chunk, members in zip(_chunks(spec), _split(spec), strict=True)
        ]

    # The pruning decision is made here, where the rows are measured (sweep/prune.py says why).
    pruner = None if spec.prune is None else Pruner(spec.prune, dict(zip(spec.members, spec.cfgs, strict=True)))
    step, live = _restore(spec, build, pruner, emit)
    emit(("start", spec.index, step) if pruner is None else ("start", spec.index, step, dict(pruner.pruned)))
    # The rows an uninterrupted shard has: a checkpoint written at a stop between two evaluations
    # resumes without the row measured at the stop (the driver has cut it), as it never evaluated there.
    last_eval = -1
    if step % cfg.eval_every == 0 or step == cfg.steps:
        live = _prune(spec, live, pruner, _evaluate(spec, live, emit), step, emit)
        last_eval = step
    last_save, clock = time.monotonic(), time.monotonic()
    while live and step < cfg.steps and not stopped():
        for trainer, _ in live:
            trainer.train_step()
        step += 1
        now = time.monotonic()
        for trainer, _ in live:
            trainer.elapsed_s += now - clock
        clock = now
        if step % cfg.eval_every == 0 or step == cfg.steps:
            live = _prune(spec, live, pruner, _evaluate(spec, live, emit), step, emit)
            last_eval = step
            if now - last_save >= cfg.checkpoint_every_s:
                _save(spec, live, pruner, step, emit)
                last_save = now
    if live and last_eval != step:
        _evaluate(spec, live, emit)  # where a stopped shard stands (a resume cuts this row)
    _save(spec, live, pruner, step, emit)
    # Each member's checkpoint as its single run writes it, the row just evaluated its logged step (so
    # `--resume` of the member does not log it twice). As bytes: torch tensors would cross to another
    # process as shared-memory handles, gone with the worker.
    emit(("weights", spec.index, _weights(live, step)))
    ending = "finished" if step >= cfg.steps or not live else "stopped"
    emit(("done", spec.index, ending))
    return ending


def _weights(live: list[Live], step: int, only: Container[int] | None = None) -> dict[int, bytes]:
    """Members' own checkpoints at `step` (those in `only`, or all)."""
    return {
        member: _saved(run_checkpoint(trainer.member_checkpoint(i), logged_step=step))
        for trainer, members in live
        for i, member in enumerate(members)
        if only is None or member in only
    }


def _prune(spec: ShardSpec, live: list[Live], pruner: Pruner | None, rows: Rows, step: int, emit: Emit) -> list[Live]:
    """Hand an evaluation's rows to the pruner; the members it prunes leave their chunks (a chunk left with
    none goes), their checkpoints and forecasts sent first. The chunks that train on."""
    if pruner is None:
        return live
    decided = {}
    for member, row in rows:
        outlook = pruner.see(member, row)
        if outlook is not None:
            decided[member] = outlook
    if not decided:
        return live
    emit(("weights", spec.index, _weights(live, step, decided)))
    emit(("pruned", spec.index, decided))
    return _without(live, decided)


def _without(live: list[Live], gone: Container[int]) -> list[Live]:
    """The chunks with the members `gone` dropped from their trainers, and those left with none dropped."""
    kept = []
    for trainer, members in live:
        stay = [i for i, member in enumerate(members) if member not in gone]
        if stay and len(stay) < len(members):
            trainer.keep(stay)
        if stay:
            kept.append((trainer, [members[i] for i in stay]))
    return kept


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


def _evaluate(spec: ShardSpec, live: list[Live], emit: Emit) -> Rows:
    rows = [
        (member, metrics.to_dict())
        for trainer, members in live
        for member, metrics in zip(members, trainer.evaluate(), strict=True)
    ]
    emit(("rows", spec.index, rows))
    return rows


def _save(spec: ShardSpec, live: list[Live], pruner: Pruner | None, step: int, emit: Emit) -> None:
    """Hand the shard's state to whoever writes the checkpoint: after the rows before it, so a
    checkpoint is never ahead of the members' logs (resuming then loses no row). With pruning, who was
    pruned and the others' rows so far (their forecasts read them all) go with it."""
    if spec.checkpoint is None:
        return
    state = {
        "members": list(spec.members),
        "step": step,  # its chunks' (a shard whose members were all pruned has none)
        "grouping": _chunks(spec),
        "chunks": [trainer.state() for trainer, _ in live],
        "pruning": None if pruner is None else pruner.state(),
    }
    emit(("checkpoint", spec.index, _saved(state)))


def _restore(
    spec: ShardSpec, build: Callable[[], list[Live]], pruner: Pruner | None, emit: Emit
) -> tuple[int, list[Live]]:
    """Load the shard's checkpoint where it fits this shard exactly: the step to start from (0: none) and
    the chunks that train on (without the members it pruned). A checkpoint that cannot be taken is said in
    one line (a "warning"), and the shard trains from the start."""
    live = build()
    if spec.checkpoint is None or not spec.checkpoint.exists():
        return 0, live
    try:
        with warnings.catch_warnings():  # torch warns of odd bytes too: the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(spec.checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        problem: str | None = f"is not a readable checkpoint ({type(e).__name__})"
    else:
        problem = _problem(state, spec)
    taken = None
    if problem is None and pruner is not None:
        try:
            taken = pruner.read_state(state.get("pruning"), state["step"])
        except ValueError as e:
            problem = str(e)
    if problem is None:
        kept = _without(live, taken[0] if taken is not None else {})
        problem = _chunks_problem(state, spec, [trainer for trainer, _ in kept])
        if problem is not None:
            live = build()  # some chunks had members dropped: build them whole again
    if problem is not None:
        emit(("warning", spec.index, f"{spec.checkpoint}: {problem}; shard {spec.index} trains again from step 0"))
        return 0, live
    if pruner is not None and taken is not None:
        pruner.restore(taken)
    for (trainer, _), chunk_state in zip(kept, state["chunks"], strict=True):
        trainer.load_state(chunk_state)
    return state["step"], kept


def _problem(state: Any, spec: ShardSpec) -> str | None:
    """What keeps a loaded shard checkpoint from being this shard's state, its chunks aside (None: nothing)."""
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
    if "step" not in state and state["chunks"] and isinstance(state["chunks"][0], dict):
        state["step"] = state["chunks"][0].get("step")  # written before pruning: its chunks' step is its own
    step = state.get("step")
    if not (is_int(step) and 0 <= step <= spec.cfgs[0].steps):
        return f"holds step {step!r}, not a step from 0 to {spec.cfgs[0].steps}"
    if (spec.prune is None) != (state.get("pruning") is None):
        return "was written by a sweep that prunes" if spec.prune is None else "holds no record of pruning"
    return None


def _chunks_problem(state: dict[str, Any], spec: ShardSpec, chunks: list[BatchedTrainer]) -> str | None:
    """What keeps the checkpoint's chunks from being these chunks' states (None: nothing)."""
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
    if steps - {state["step"]}:
        return f"its chunks are at other steps than its own {state['step']} ({', '.join(map(str, sorted(steps)))})"
    return None


__all__ = ["CHUNK", "ShardSpec", "train_shard"]
