"""The local sweep engine: shards in worker processes, one driver that writes the sweep directory.

A mod-add member-step is already an efficient matmul on one core; what a CPU
gives a sweep beyond that is its other cores. So the driver starts one worker
process per core (`workers`), each with one torch thread, hands each a shard
(train/batched.py trains its members as one batch), and is the only writer of
the sweep directory: each member's metrics.jsonl, members.jsonl as members
finish, and process.json. Workers' messages come over a multiprocessing queue
(our own children, so pickling is safe). A stop (SIGINT, SIGTERM, SIGHUP, or
`stop()`) tells every worker to checkpoint its shard and end; `--resume` takes
each shard up from its checkpoint.

`python -m grok_tui.sweep.engine SWEEP_DIR` is the sweep's process when the
monitor (or `--detach`) starts it in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import torch

from grok_tui.crash import report_crash
from grok_tui.files import WriteError, write_atomic
from grok_tui.runlog import METRICS, RunLog, read_jsonl
from grok_tui.runs import mark_ended, mark_running
from grok_tui.sweep.grid import Member
from grok_tui.sweep.shard import CHUNK, ShardSpec, train_shard
from grok_tui.sweep.store import SHARDS, SweepDirError, SweepInfo, member_record, read_sweep, write_members
from grok_tui.sweep.text import diagram, progress_line
from grok_tui.train.session import stop_on_signals
from grok_tui.train.trainer import resolve_device

# How often the headless driver prints a progress line.
PROGRESS_EVERY_S = 2.0
STARTED = "# grok-tui: sweep process"


def shard_specs(info: SweepInfo) -> list[ShardSpec]:
    (info.root / SHARDS).mkdir(parents=True, exist_ok=True)
    # A GPU wants one large batch; a CPU core, batches that stay in its caches (shard.py).
    on_gpu = resolve_device(info.grid.base.device).type == "cuda"
    return [
        ShardSpec(
            index=i,
            members=tuple(m.index for m in shard),
            cfgs=tuple(m.cfg for m in shard),
            checkpoint=info.root / SHARDS / f"shard-{i}.pt",
            chunk=len(shard) if on_gpu else CHUNK,
        )
        for i, shard in enumerate(info.grid.shards(info.workers))
    ]


def _worker(spec: ShardSpec, out: Any, stop: Any, driver: int) -> None:
    """A worker process: train one shard, its messages onto the queue. It stops with the driver: a
    driver killed outright cannot tell it to, so it watches for being orphaned."""

    def orphaned() -> bool:
        return os.getppid() != driver

    with contextlib.suppress(KeyboardInterrupt):
        try:
            train_shard(spec, out.put, lambda: stop.is_set() or orphaned())
        except Exception as e:
            out.put(("error", spec.index, report_crash(e)))
    if orphaned():
        out.cancel_join_thread()  # nobody will read what is left in the queue: exit without waiting


class Driver:
    """Runs the shards and writes what they report; `run` returns the exit status."""

    def __init__(self, info: SweepInfo, out: TextIO | None = None, workers: int | None = None):
        self.info = info
        self.out = out or sys.stdout
        self.workers = workers or info.workers
        self.members: list[Member] = list(info.grid.members)
        self.logs = {m.index: RunLog(info.member_dir(m)) for m in self.members}
        self.rows: dict[int, list[dict[str, Any]]] = {m.index: [] for m in self.members}
        self.finished: set[int] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._last_line = ""

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        specs = shard_specs(self.info)
        ctx = mp.get_context("spawn")
        messages: Any = ctx.Queue()
        stop = ctx.Event()
        pending = list(specs)
        running: dict[int, Any] = {}
        ended: dict[int, str] = {}
        started = time.monotonic()
        last_print = 0.0
        with stop_on_signals(self.stop) as received:
            while pending or running:
                if self._stop.is_set():
                    stop.set()
                    pending.clear()
                while pending and len(running) < self.workers:
                    spec = pending.pop(0)
                    process = ctx.Process(target=_worker, args=(spec, messages, stop, os.getpid()), daemon=True)
                    process.start()
                    running[spec.index] = process
                try:
                    message = messages.get(timeout=0.2)
                except queue.Empty:
                    message = None
                if message is not None:
                    self._take(message, specs, ended)
                for index, process in list(running.items()):
                    if index in ended or not process.is_alive():
                        process.join(timeout=5)
                        if index not in ended:
                            self._drain(messages, specs, ended)
                        if index not in ended:
                            ended[index] = "crashed"
                            self.errors.append(f"shard {index}'s worker died (exit status {process.exitcode})")
                        del running[index]
                now = time.monotonic()
                if now - last_print >= PROGRESS_EVERY_S:
                    last_print = now
                    self._flush()
                    print(
                        progress_line(self._snapshot(), now - started, self.info.grid.base.steps),
                        file=self.out,
                        flush=True,
                    )
            self._drain(messages, specs, ended)
        self._flush()
        records = self._snapshot()
        self._progress(records, time.monotonic() - started)
        if all(r["finished"] for r in records):
            print(diagram(self.info, records), file=self.out, flush=True)
        for error in self.errors:
            print(f"grok-tui: error: {error}", file=sys.stderr, flush=True)
        if received:
            return 128 + received[0]
        return 1 if self.errors else 0

    def _progress(self, records: list[dict[str, Any]], elapsed_s: float) -> None:
        # The same line twice says nothing (the last tick and the end often coincide).
        line = progress_line(records, elapsed_s, self.info.grid.base.steps)
        if line.split("  ")[:2] != self._last_line.split("  ")[:2]:
            print(line, file=self.out, flush=True)
        self._last_line = line

    def _drain(self, messages: Any, specs: list[ShardSpec], ended: dict[int, str]) -> None:
        while True:
            try:
                self._take(messages.get(timeout=0.05), specs, ended)
            except queue.Empty:
                return

    def _take(self, message: tuple[Any, ...], specs: list[ShardSpec], ended: dict[int, str]) -> None:
        kind, shard = message[0], message[1]
        if kind == "start":
            self._rewind(specs[shard], int(message[2]))
        elif kind == "rows":
            for member, row in message[2]:
                self.rows[member].append(row)
                self._write(member, partial(RunLog.metrics, record=row))
        elif kind == "checkpoint":
            self._checkpoint(specs[shard], message[2])
        elif kind == "weights":
            for member, state in message[2].items():
                self._save_weights(member, state)
        elif kind == "done":
            ended[shard] = message[2]
            if message[2] == "finished":
                self.finished.update(specs[shard].members)
            self._flush()
        elif kind == "error":
            ended[shard] = "crashed"
            self.errors.append(f"shard {shard}: {message[2]}")

    def _checkpoint(self, spec: ShardSpec, data: bytes) -> None:
        """Write a shard's checkpoint once its members' rows before it are on disk."""
        assert spec.checkpoint is not None
        try:
            for member in spec.members:
                self.logs[member].flush()
            write_atomic(spec.checkpoint, data)
        except WriteError as e:
            self._fail(str(e))

    def _rewind(self, spec: ShardSpec, step: int) -> None:
        """A shard (re)starts at `step`: its members' logs keep what came before it, no more."""
        for member in spec.members:
            log = self.logs[member]
            log.rewind({"step": step} if step else None)
            self.rows[member] = read_jsonl(log.root / METRICS)

    def _write(self, member: int, write: Callable[[RunLog], None]) -> None:
        try:
            write(self.logs[member])
        except WriteError as e:
            self._fail(str(e))

    def _fail(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            self.stop()

    def _save_weights(self, member: int, arrays: dict[str, Any]) -> None:
        state = {name: torch.from_numpy(array) for name, array in arrays.items()}
        step = self.rows[member][-1]["step"] if self.rows[member] else 0
        # What `watch` needs to show a member's weights (it loads the model only).
        checkpoint = {"model": state, "optimizer": {}, "step": step}
        self._write(member, lambda log: log.save_checkpoint(checkpoint))

    def _flush(self) -> None:
        for member in self.logs:
            self._write(member, lambda log: log.flush())
        try:
            write_members(self.info.root, [r for r in self._snapshot() if r["finished"]])
        except WriteError as e:
            self._fail(str(e))

    def _snapshot(self) -> list[dict[str, Any]]:
        return [member_record(self.info, m, self.rows[m.index], m.index in self.finished) for m in self.members]


def run_sweep(info: SweepInfo, out: TextIO | None = None) -> int:
    """Train the sweep in the foreground, its process recorded in process.json; the exit status."""
    mark_running(info.root)
    driver = Driver(info, out)
    try:
        status = driver.run()
    except BaseException:
        mark_ended(info.root, "crashed", None)
        raise
    ending = "finished" if len(driver.finished) == len(driver.members) else ("fault" if driver.errors else "stopped")
    mark_ended(info.root, ending, None)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The sweep's own process (sweep/launch.py starts it with its output going to SWEEP/output.log)."""
    parser = argparse.ArgumentParser(prog="python -m grok_tui.sweep.engine")
    parser.add_argument("sweep_dir")
    args = parser.parse_args(argv)
    print(f"{STARTED} {os.getpid()}", flush=True)
    try:
        info = read_sweep(Path(args.sweep_dir))
    except SweepDirError as e:
        print(f"grok-tui: error: {e}", file=sys.stderr, flush=True)
        return 2
    try:
        return run_sweep(info)
    except Exception as e:
        print(f"grok-tui: error: {report_crash(e, info.root)}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
