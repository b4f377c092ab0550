"""`grok-tui --headless`: the same trainer, a plain printer instead of a screen."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from grok_tui.metrics import FIT_ACC, GENERALIZED_ACC
from grok_tui.process import stop_on_signals
from grok_tui.runlog import read_jsonl
from grok_tui.train import Metrics, Snapshot, Trainer, summarize
from grok_tui.train.snapshot import RecordError


def format_metrics(m: Metrics) -> str:
    return (
        f"step {m.step:>8}  train loss {m.train_loss:9.3e} acc {m.train_acc:6.1%}  "
        f"test loss {m.test_loss:9.3e} acc {m.test_acc:6.1%}  norm {m.param_norm:8.2f}  "
        f"wd {m.weight_decay:.3g}  lr {m.lr:.3g}  {m.elapsed_s:7.1f}s"
    )


def run_headless(
    trainer: Trainer,
    out: TextIO | None = None,
    err: TextIO | None = None,
    also: Callable[[Snapshot], None] | None = None,
    watched: Callable[[], bool] = lambda: False,
) -> int:
    """Train to the end, printing as it goes; the exit status says how it ended.

    0: the step budget was reached. 1: a fault (a loss that is not finite, a
    full disk) stopped it, with one line on stderr. 128 + N: signal N stopped
    it, flushed and checkpointed (SIGINT, SIGTERM, or SIGHUP when the terminal closed).
    `also` sees every snapshot too (the run's channel, runner.py). A fault stops the run unless
    `watched()` says someone is there to see it, who can resume (space) or stop it.
    """
    out, err = out or sys.stdout, err or sys.stderr
    cfg = trainer.cfg
    where = trainer.log.root if trainer.log else "(not saved)"
    resumed = f", resumed at step {trainer.step}" if trainer.step else ""
    print(
        f"# {cfg.experiment} on {trainer.device}, seed {cfg.seed}, {cfg.steps} steps; run dir {where}{resumed}",
        file=out,
        flush=True,
    )
    earlier = _logged(trainer, err)
    history: list[Metrics] = []

    def on_snapshot(snapshot: Snapshot) -> None:
        if also is not None:
            also(snapshot)
        if not history or snapshot.metrics.step != history[-1].step:
            history.append(snapshot.metrics)
            print(format_metrics(snapshot.metrics), file=out, flush=True)
        if snapshot.fault and not watched():
            trainer.request_stop()

    with stop_on_signals(trainer.request_stop) as received:
        trainer.run(on_snapshot)

    # A resumed run's milestones may lie before this session: read them from the rows it logged then.
    start = history[0].step if history else trainer.step
    whole = [m for m in earlier if m.step < start] + history
    s = summarize(whole, FIT_ACC, GENERALIZED_ACC)
    # Rows before the first on file are gone (or were never kept): a level reached at that first row
    # was reached at some step before it, not at it.
    first = whole[0].step if whole else 0

    def when(step: int | None, seconds: float | None) -> str:
        if step is None:
            return "not reached"
        if step == first and first > 0:
            return f"reached before step {step} (the rows before it are not on file)"
        return f"step {step} ({seconds:.1f}s)"

    # A run that stops short (semi-grokking, or stopped early) says where test accuracy got to.
    short = f" (test acc at the end: {whole[-1].test_acc:.1%})" if s["test_step"] is None and whole else ""
    print(
        f"# train acc >= {FIT_ACC:.0%}: {when(s['train_step'], s['train_s'])}; "
        f"test acc >= {GENERALIZED_ACC:.0%}: {when(s['test_step'], s['test_s'])}{short}",
        file=out,
        flush=True,
    )
    if trainer.fault:
        resume = (
            f"; grok-tui --resume {where} continues it (with --lr, --weight-decay or --l1 to set a value anew)"
            if trainer.log
            else ""
        )
        print(f"grok-tui: error: stopped at step {trainer.step}: {trainer.fault}{resume}", file=err, flush=True)
        return 1
    return 128 + received[0] if received else 0


def _logged(trainer: Trainer, err: TextIO) -> list[Metrics]:
    """The rows the run's metrics.jsonl holds now (a resumed run's, up to its checkpoint); a bad
    record is skipped, and the first named in one line."""
    if trainer.log is None:
        return []
    path = trainer.log.metrics_path
    rows, said = [], False
    try:
        records = read_jsonl(path)
    except OSError as e:
        print(f"grok-tui: warning: cannot read {path} ({e.strerror or e})", file=err, flush=True)
        return []
    for record in records:
        try:
            rows.append(Metrics.from_dict(record))
        except RecordError as e:
            if not said:
                said = True
                print(f"grok-tui: warning: {path}: {e}; record skipped", file=err, flush=True)
    return rows
