"""The lr-wd map (Liu et al.'s four phases over learning rate x weight decay) on a grid small enough for seconds."""

from __future__ import annotations

from grok_tui.cli import main
from grok_tui.runlog import read_jsonl
from grok_tui.sweep.store import MEMBERS


def test_map_lr_wd_puts_the_four_phases_where_liu_et_al_do(capsys, tmp_path):
    """a+b mod 67 with half the pairs (where the phases sit furthest from their borders), one seed:
    no weight decay memorizes, moderate weight decay groks at a moderate learning rate and generalizes
    with the fit at a larger one, too much weight decay learns nothing (confusion)."""
    root = tmp_path / "s"
    code = main(
        [
            *("sweep", "--headless", "--map", "lr-wd", "--sweep-dir", str(root), "--train-frac", "0.5"),
            *("--lr", "0.01,0.1", "--weight-decay", "0,0.3,10", "--seed", "0", "--steps", "1000"),
            *("--phase-gap", "300"),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    phase = {(r["values"]["lr"], r["values"]["weight_decay"]): r["phase"] for r in read_jsonl(root / MEMBERS)}
    assert phase[0.01, 0.0] == phase[0.1, 0.0] == "memorization"
    assert phase[0.01, 0.3] == "grokking"
    assert phase[0.1, 0.3] == "comprehension"
    assert phase[0.01, 10.0] == phase[0.1, 10.0] == "confusion"
