"""The sweep's driver, and the local transport its shards train on.

A mod-add member-step is already an efficient matmul on one core; what a CPU
gives a sweep beyond that is its other cores. So locally the driver starts one
worker process per core (`workers`), each with one torch thread, and hands each
a shard (train/batched.py trains its members as one batch); on Ray
(ray_engine.py) a shard is a task anywhere in the cluster. Either way the
driver is the only writer of the sweep directory: each member's metrics.jsonl,
a shard's checkpoint after the rows before it, members.jsonl as members finish
(or fail), and process.json. A stop (SIGINT, SIGTERM, SIGHUP, or `stop()`)
tells every shard to checkpoint and end; `--resume` takes each shard up from
its checkpoint.

`python -m grok_tui.sweep.engine SWEEP_DIR [--ray ADDRESS ...]` is the sweep's
process when the monitor (or `--detach`) starts it in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch

from grok_tui.crash import report_crash
from grok_tui.files import WriteError, write_atomic
from grok_tui.process import mark_ended, mark_running, stop_on_signals
from grok_tui.runlog import METRICS, RunLog, read_jsonl
from grok_tui.sweep.axis import axis_points, axis_table, line_axis
from grok_tui.sweep.grid import Member
from grok_tui.sweep.shard import ShardSpec, train_shard
from grok_tui.sweep.store import (
    SHARDS,
    Notices,
    SweepDirError,
    SweepInfo,
    member_record,
    member_rows,
    read_sweep,
    write_members,
)
from grok_tui.sweep.text import diagram, progress_line, pruned_line

# How often the headless driver prints a progress line.
PROGRESS_EVERY_S = 2.0


def shard_specs(info: SweepInfo) -> list[ShardSpec]:
    (info.root / SHARDS).mkdir(parents=True, exist_ok=True)
    return [
        ShardSpec(
            index=i,
            members=tuple(m.index for m in shard),
            cfgs=tuple(m.cfg for m in shard),
            checkpoint=info.root / SHARDS / f"shard-{i}.pt",
            prune=info.prune,
        )
        for i, shard in enumerate(info.grid.shards(info.workers))
    ]


class Transport(Protocol):
    """Where shards train and how their messages come back: worker processes here (LocalProcesses), or
    Ray tasks anywhere (sweep/ray_engine.py). The driver is the same for both."""

    capacity: int  # shards that may train at once

    def launch(self, spec: ShardSpec) -> None: ...

    def active(self) -> int: ...

    def messages(self, timeout: float) -> list[tuple[Any, ...]]:
        """What has arrived, waiting up to `timeout` for the first."""
        ...

    def ended(self) -> list[tuple[int, str | None]]:
        """Shards whose worker is gone since the last call, forgotten: (index, why it failed, or None)."""
        ...

    def stop(self) -> None:
        """Ask every shard to checkpoint and end."""
        ...

    def close(self) -> None: ...


# The signals that stop a sweep cleanly. Ctrl-C and a hang-up reach the terminal's whole process group,
# and `kill -TERM -PGID` (a job control system, a container's stop) sends SIGTERM to it: the driver takes
# each and tells every shard to checkpoint and stop, so a worker leaves them to it rather than die mid-shard.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _worker(spec: ShardSpec, conn: Connection, stop: Any, driver: int) -> None:
    """A worker process: train one shard, its messages down its own pipe.

    It ignores the stop signals (the driver's to take); they were blocked from before it was started
    (LocalProcesses.launch), so one sent while it was starting up is discarded here, not fatal. A
    driver killed outright cannot tell it to stop: the worker watches for being orphaned.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def orphaned() -> bool:
        return os.getppid() != driver

    try:
        train_shard(spec, conn.send, lambda: stop.is_set() or orphaned())
    except BrokenPipeError:
        pass  # the driver is gone: nobody to report to
    except Exception as e:
        with contextlib.suppress(OSError):
            conn.send(("error", spec.index, report_crash(e)))
    finally:
        conn.close()


@contextlib.contextmanager
def _blocked(signals: Sequence[signal.Signals]) -> Iterator[None]:
    """Hold `signals` back from this thread while inside (one sent meanwhile arrives on the way out)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class LocalProcesses:
    """One spawned worker process a shard, `capacity` at once, each with a pipe of its own for its
    messages (our own children: pickling is safe). Not one shared queue: a worker killed while writing
    to a queue takes the queue's lock with it, and every other worker then waits for ever."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._ctx = mp.get_context("spawn")
        # Spawned processes need multiprocessing's resource tracker, a process in our group too. It
        # ignores SIGINT and SIGTERM, but a hang-up would kill it (and each semaphore released after
        # would print a traceback): started here with the stop signals blocked, it keeps SIGHUP blocked.
        with _blocked(STOP_SIGNALS):
            resource_tracker.ensure_running()
        self._stop = self._ctx.Event()
        self._running: dict[int, Any] = {}
        self._pipes: dict[Connection, int] = {}  # read ends, until they are drained to the end

    def launch(self, spec: ShardSpec) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=_worker, args=(spec, writer, self._stop, os.getpid()), daemon=True)
        # The child inherits the blocked mask through exec and keeps it until _worker ignores the stop
        # signals: a Ctrl-C while it imports torch would otherwise kill it. Blocked here only for the
        # moment of the fork: one that arrives meanwhile reaches the driver when they are unblocked.
        with _blocked(STOP_SIGNALS):
            process.start()
        writer.close()  # the child holds it now: its end of the pipe closes when the child ends
        self._running[spec.index] = process
        self._pipes[reader] = spec.index

    def active(self) -> int:
        return len(self._running)

    def messages(self, timeout: float) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for conn in wait(list(self._pipes), timeout):
            assert isinstance(conn, Connection)
            try:
                while conn.poll():
                    out.append(conn.recv())
            except Exception:  # the end of the pipe (the worker is gone), or a message cut off by its death
                del self._pipes[conn]
                conn.close()
        return out

    def ended(self) -> list[tuple[int, str | None]]:
        gone = []
        for index, process in list(self._running.items()):
            if not process.is_alive():
                process.join(timeout=5)
                why = None if process.exitcode == 0 else f"its worker died (exit status {process.exitcode})"
                gone.append((index, why))
                del self._running[index]
        return gone

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        # Workers still running here are left by a driver on its way out with an error: they are asked
        # to stop, and the ones that do not are killed (they ignore SIGTERM, so multiprocessing's own
        # clean-up at exit, a SIGTERM and a join, would wait on them for ever).
        self._stop.set()
        for process in self._running.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for conn in self._pipes:
            conn.close()


class Driver:
    """Runs the shards on a transport and writes what they report; `run` returns the exit status."""

    def __init__(self, info: SweepInfo, out: TextIO | None = None, transport: Transport | None = None):
        self.info = info
        self.out = out or sys.stdout
        self.transport: Transport = transport or LocalProcesses(info.workers)
        self.members: list[Member] = list(info.grid.members)
        self.logs = {m.index: RunLog(info.member_dir(m)) for m in self.members}
        self.rows: dict[int, list[dict[str, Any]]] = {m.index: [] for m in self.members}
        self.finished: set[int] = set()
        self.failed: dict[int, str] = {}  # member -> why its shard was lost
        self.pruned: dict[int, dict[str, Any]] = {}  # member -> the forecast its shard pruned it at (prune.py)
        self.errors: list[str] = []
        self._notices = Notices()  # bad records in the members' logs, each file named once
        self._stop = threading.Event()
        self._last_line = ""

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        specs = shard_specs(self.info)
        transport = self.transport
        pending = list(specs)
        ended: dict[int, str] = {}
        started = time.monotonic()
        last_print = 0.0
        with stop_on_signals(self.stop) as received:
            try:
                while pending or transport.active():
                    if self._stop.is_set():
                        transport.stop()
                        pending.clear()
                    while pending and transport.active() < transport.capacity:
                        transport.launch(pending.pop(0))
                    for message in transport.messages(timeout=0.2):
                        self._take(message, specs, ended)
                    gone = transport.ended()
                    if gone:  # a shard's last words may still be on their way
                        for message in transport.messages(timeout=0.05):
                            self._take(message, specs, ended)
                    for index, why in gone:
                        if index not in ended:
                            self._lost(specs[index], why or "its worker ended without a word", ended)
                    now = time.monotonic()
                    if now - last_print >= PROGRESS_EVERY_S:
                        last_print = now
                        self._flush()
                        self._progress(self._snapshot(), now - started)
            finally:
                transport.close()
        self._flush()
        records = self._snapshot()
        self._progress(records, time.monotonic() - started)
        if all(r["finished"] or r["failed"] for r in records):
            print(diagram(self.info, records), file=self.out, flush=True)
            axis = line_axis(self.info.grid.axes)
            if axis is not None:  # one axis: the figures against it (Omnigrok's LU curves, for a norm axis)
                points = axis_points(axis, ((r["values"], r) for r in records))
                print(axis_table(axis, points), file=self.out, flush=True)
        if self.info.prune is not None:
            print(pruned_line(records, self.info.grid.base.steps, self.info.prune), file=self.out, flush=True)
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

    def _take(self, message: tuple[Any, ...], specs: list[ShardSpec], ended: dict[int, str]) -> None:
        kind, shard = message[0], message[1]
        if kind == "start":
            self._start(specs[shard], int(message[2]), message[3] if len(message) > 3 else {})
        elif kind == "rows":
            for member, row in message[2]:
                self.rows[member].append(row)
                self._write(member, partial(RunLog.metrics, record=row))
        elif kind == "checkpoint":
            self._checkpoint(specs[shard], message[2])
        elif kind == "pruned":
            self._prune(message[2])
        elif kind == "weights":
            for member, state in message[2].items():
                self._save_weights(member, state)
        elif kind == "done":
            ended[shard] = message[2]
            if message[2] == "finished":
                self.finished.update(specs[shard].members)
            self._flush()
        elif kind == "warning":
            self._warn(str(message[2]))
        elif kind == "error":
            self._lost(specs[shard], str(message[2]), ended)

    def _warn(self, line: str) -> None:
        """One line on stderr (a detached sweep's output.log) that stops nothing."""
        print(f"grok-tui: warning: {line}", file=sys.stderr, flush=True)

    def _lost(self, spec: ShardSpec, why: str, ended: dict[int, str]) -> None:
        """A shard that will not finish: its members are marked failed, with the reason, and the rest go on."""
        ended[spec.index] = "crashed"
        self.errors.append(f"shard {spec.index}: {why}")
        for member in spec.members:
            if member not in self.finished:
                self.failed[member] = why
        self._flush()

    def _checkpoint(self, spec: ShardSpec, data: bytes) -> None:
        """Write a shard's checkpoint once its members' rows before it are on disk."""
        assert spec.checkpoint is not None
        try:
            for member in spec.members:
                self.logs[member].flush()
            write_atomic(spec.checkpoint, data)
        except WriteError as e:
            self._fail(str(e))

    def _prune(self, pruned: dict[int, dict[str, Any]]) -> None:
        """Members their shard pruned, for good: finished, with the forecast that ended them."""
        self.pruned.update(pruned)
        self.finished.update(pruned)
        self._flush()

    def _start(self, spec: ShardSpec, step: int, pruned: dict[int, dict[str, Any]]) -> None:
        """A shard (re)starts at `step` with the members it had pruned before it (the others train again)."""
        for member in spec.members:
            self.pruned.pop(member, None)
            self.finished.discard(member)
        self._rewind(spec, step, pruned)
        self._prune(pruned)

    def _rewind(self, spec: ShardSpec, step: int, pruned: Container[int] = ()) -> None:
        """A shard (re)starts at `step`: its members' logs keep what came before it, no more; a pruned
        member's log is final (it may end at `step`)."""
        for member in spec.members:
            log = self.logs[member]
            # A retried shard's first attempt may have rows not yet written: on disk first, then cut.
            self._write(member, lambda log: log.flush())
            if member not in pruned:
                self._write(member, lambda log: log.rewind({"step": step} if step else None))
            path = log.root / METRICS
            self.rows[member] = member_rows(read_jsonl(path), path, self._notices.report)
        for line in self._notices.take():
            self._warn(line)

    def _write(self, member: int, write: Callable[[RunLog], object]) -> None:
        try:
            write(self.logs[member])
        except WriteError as e:
            self._fail(str(e))

    def _fail(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)
            self.stop()

    def _save_weights(self, member: int, data: bytes) -> None:
        """The member's own checkpoint, as its single run would have written it (our worker's bytes)."""
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        self._write(member, lambda log: log.save_checkpoint(state))

    def _flush(self) -> None:
        for member in self.logs:
            self._write(member, lambda log: log.flush())
        try:
            write_members(self.info.root, [r for r in self._snapshot() if r["finished"] or r["failed"]])
        except WriteError as e:
            self._fail(str(e))

    def _snapshot(self) -> list[dict[str, Any]]:
        return [
            member_record(
                self.info,
                m,
                self.rows[m.index],
                m.index in self.finished,
                self.failed.get(m.index),
                self.pruned.get(m.index),
            )
            for m in self.members
        ]


@dataclass(frozen=True)
class RayOptions:
    """Where a sweep's shards go on Ray: the cluster (None: RAY_ADDRESS, or a local Ray) and each shard's share."""

    address: str | None = None
    cpus: float = 1
    gpus: float = 0

    def argv(self) -> list[str]:
        return ["--ray", self.address or "", "--shard-cpus", f"{self.cpus:g}", "--shard-gpus", f"{self.gpus:g}"]


def transport_for(info: SweepInfo, ray: RayOptions | None) -> Transport:
    if ray is None:
        return LocalProcesses(info.workers)
    from grok_tui.sweep.ray_engine import RayTasks, connect

    connect(ray.address, num_cpus=None if ray.address else max(1, len(os.sched_getaffinity(0))))
    return RayTasks(info.workers, ray.cpus, ray.gpus)


def run_sweep(info: SweepInfo, out: TextIO | None = None, ray: RayOptions | None = None) -> int:
    """Train the sweep in the foreground, its process recorded in process.json; the exit status.
    RayError (one line) if Ray was asked for and cannot be had."""
    transport = transport_for(info, ray)
    mark_running(info.root)
    driver = Driver(info, out, transport)
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
    parser.add_argument("--ray", default=None)
    parser.add_argument("--shard-cpus", type=float, default=1.0)
    parser.add_argument("--shard-gpus", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        info = read_sweep(Path(args.sweep_dir))
    except SweepDirError as e:
        print(f"grok-tui: error: {e}", file=sys.stderr, flush=True)
        return 2
    ray = None if args.ray is None else RayOptions(args.ray or None, args.shard_cpus, args.shard_gpus)
    try:
        return run_sweep(info, ray=ray)
    except Exception as e:
        from grok_tui.sweep.ray_engine import RayError

        if isinstance(e, RayError):
            print(f"grok-tui: error: {e}", file=sys.stderr, flush=True)
            return 2
        print(f"grok-tui: error: {report_crash(e, info.root)}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
