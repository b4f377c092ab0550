"""A run as a process of its own: it trains, serves its channel, and records how it ends.

Every run with a run directory is trained this way, whoever starts it:
`grok-tui --headless` in the foreground, `grok-tui --detach` in the background
(a session of its own, no terminal, its output in RUN/output.log), and the
monitor, which starts one in the background and attaches to it as any other
client does. So a run outlives the terminal it was started from, and frames and
commands take one path, whether the run started a second ago in this terminal
or yesterday in another.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import torch

from grok_tui.config import ConfigError, RunConfig
from grok_tui.crash import report_crash
from grok_tui.files import WriteError
from grok_tui.headless import run_headless
from grok_tui.process import mark_ended, mark_running, record_pauses
from grok_tui.runlog import METRICS, RunDirError, load_config, read_jsonl, write_config
from grok_tui.system import SystemSampler, SystemStats
from grok_tui.train.channel import ChannelError
from grok_tui.train.control import Control, check_hyper
from grok_tui.train.frames import Batcher
from grok_tui.train.server import RunServer
from grok_tui.train.snapshot import Metrics, RecordError, Snapshot
from grok_tui.train.spec import RunSpec
from grok_tui.train.trainer import Trainer


def serve(spec: RunSpec, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Train the run to its end while serving its channel; the exit status is run_headless's."""
    assert spec.run_dir is not None, "a served run has a run directory"
    control = Control()
    server = RunServer(spec.run_dir, control)
    with server.bind():  # ChannelError if another process trains this run: before the logs are touched
        mark_running(spec.run_dir)
        trainer: Trainer | None = None
        try:
            if spec.resume and load_config(spec.run_dir) != spec.cfg:
                # A new step budget (say) holds from now on, for ls, watch and the next resume too.
                write_config(spec.run_dir, spec.cfg.to_dict())
            trainer = spec.build(control)
            server.start(_rows(spec.run_dir), {"experiment": spec.cfg.experiment, "steps": spec.cfg.steps})
            with SystemFrames(server.publish, trainer.device).running() as publish:
                frames = Batcher(publish)
                status = run_headless(
                    trainer, out, err, also=record_pauses(spec.run_dir, frames), watched=lambda: server.clients > 0
                )
                frames.flush()
        except BaseException:
            mark_ended(spec.run_dir, "crashed", trainer.step if trainer else None)
            raise
        ending = _ending(trainer)
        mark_ended(spec.run_dir, ending, trainer.step)
        server.close(ending if ending != "fault" else f"fault: {trainer.fault}")
    return status


# How often the figures of a run that sends no frames are refreshed.
IDLE_REFRESH_S = 5.0


def _shown(stats: SystemStats | None) -> str | None:
    return stats.describe() if stats is not None else None


class SystemFrames:
    """Frames on their way out, each carrying this process's figures, so they reach a monitor on any box.

    The trainer sends no frame while paused, and a slow model none between two evaluations; so while
    none has gone out for IDLE_REFRESH_S, the last one goes out again with fresh figures, and a monitor
    never shows the figures of a minute ago, nor a paused run at 100% CPU. Only when they read
    differently, and at most every IDLE_REFRESH_S: a paused run's CPU wavers between 0% and 2%, and each
    redraw of the status line costs a slow link a few hundred bytes (`bench`'s paused column).
    """

    def __init__(self, publish: Callable[[Snapshot, list[Metrics]], None], device: torch.device):
        self._publish = publish
        uuid = None
        if device.type == "cuda":  # the pid finds the GPU, except in a container (NVML sees the host's pids)
            uuid = str(torch.cuda.get_device_properties(device).uuid)
            uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
        self._sampler = SystemSampler(os.getpid(), gpu_uuid=uuid)
        self._lock = threading.Lock()  # the trainer's frames and the refresher's, one at a time, in order
        self._last: Snapshot | None = None
        self._sent = 0.0

    def __call__(self, snapshot: Snapshot, rows: list[Metrics]) -> None:
        with self._lock:
            self._last = dataclasses.replace(snapshot, system=self._sampler.sample())
            self._sent = time.monotonic()
            self._publish(self._last, rows)

    @contextlib.contextmanager
    def running(self) -> Iterator[SystemFrames]:
        """Refresh the figures of a run that sends no frames, until the block ends."""
        done = threading.Event()
        refresher = threading.Thread(target=self._refresh, args=(done,), name="grok-tui-system", daemon=True)
        refresher.start()
        try:
            yield self
        finally:
            done.set()
            refresher.join()

    def _refresh(self, done: threading.Event) -> None:
        while not done.wait(IDLE_REFRESH_S / 4):
            with self._lock:
                if self._last is None or time.monotonic() - self._sent < IDLE_REFRESH_S:
                    continue
                fresh = self._sampler.sample()
                self._sent = time.monotonic()
                if _shown(fresh) != _shown(self._last.system):
                    self._last = dataclasses.replace(self._last, system=fresh)
                    self._publish(self._last, [])


def _ending(trainer: Trainer) -> str:
    if trainer.fault:
        return "fault"
    return "finished" if trainer.step >= trainer.cfg.steps else "stopped"


def _rows(run_dir: Path) -> list[Metrics]:
    """The rows logged before this process took over (a resumed run's history), those that parse."""
    rows = []
    for record in read_jsonl(run_dir / METRICS):
        try:
            rows.append(Metrics.from_dict(record))
        except RecordError:
            pass
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grok_tui.runner",
        description="Train a run directory's run and serve its channel (started by grok-tui).",
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--config", required=True, help="the run's config as JSON")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--values", default="{}", help="with --resume: hyperparameters set anew, as JSON")
    args = parser.parse_args(argv)
    try:
        cfg = RunConfig.from_dict(json.loads(args.config))
        values = json.loads(args.values)
        if not isinstance(values, dict):
            raise ValueError(f"--values: {args.values!r} is not a JSON object of hyperparameters")
        checked = tuple((str(name), check_hyper(str(name), value)) for name, value in values.items())
        return serve(RunSpec(cfg, args.run_dir, resume=args.resume, values=checked))
    except (ConfigError, ValueError, ChannelError, RunDirError, WriteError) as e:
        print(f"grok-tui: error: {e}", file=sys.stderr, flush=True)
        return 2
    except Exception as e:
        print(f"grok-tui: error: {report_crash(e, args.run_dir)}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
