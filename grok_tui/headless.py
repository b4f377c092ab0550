"""`grok-tui --headless`: the same trainer, a plain printer instead of a screen."""

from __future__ import annotations

import signal
import sys
from typing import TextIO

from grok_tui.metrics import FIT_ACC, GENERALIZED_ACC
from grok_tui.train import Metrics, Snapshot, Trainer, summarize


def format_metrics(m: Metrics) -> str:
    return (
        f"step {m.step:>8}  train loss {m.train_loss:9.3e} acc {m.train_acc:6.1%}  "
        f"test loss {m.test_loss:9.3e} acc {m.test_acc:6.1%}  norm {m.param_norm:8.2f}  "
        f"wd {m.weight_decay:.3g}  lr {m.lr:.3g}  {m.elapsed_s:7.1f}s"
    )


def run_headless(trainer: Trainer, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    cfg = trainer.cfg
    where = trainer.log.root if trainer.log else "(not saved)"
    print(f"# {cfg.experiment} on {trainer.device}, seed {cfg.seed}, {cfg.steps} steps; run dir {where}", file=out, flush=True)
    history: list[Metrics] = []
    interrupted = []

    def stop(signum: int, frame: object) -> None:
        # Stop between two steps, so the checkpoint is whole.
        interrupted.append(signum)
        trainer.control.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_snapshot(snapshot: Snapshot) -> None:
        if not history or snapshot.metrics.step != history[-1].step:
            history.append(snapshot.metrics)
            print(format_metrics(snapshot.metrics), file=out, flush=True)
        if snapshot.fault:
            print(f"# fault: {snapshot.fault}; stopping", file=out, flush=True)
            trainer.control.stop()

    try:
        trainer.run(on_snapshot)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    s = summarize(history, FIT_ACC, GENERALIZED_ACC)

    def when(step: int | None, seconds: float | None) -> str:
        return "not reached" if step is None else f"step {step} ({seconds:.1f}s)"

    # A run that stops short (semi-grokking, or stopped early) says where test accuracy got to.
    short = f" (test acc at the end: {history[-1].test_acc:.1%})" if s["test_step"] is None and history else ""
    print(f"# train acc >= {FIT_ACC:.0%}: {when(s['train_step'], s['train_s'])}; "
          f"test acc >= {GENERALIZED_ACC:.0%}: {when(s['test_step'], s['test_s'])}{short}", file=out, flush=True)
    if trainer.fault:
        return 1
    return 130 if interrupted else 0
