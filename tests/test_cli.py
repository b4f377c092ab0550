import json
import os
import subprocess
import sys

import pytest

from grok_tui.cli import COMMANDS, main
from grok_tui.config import PRESETS


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--weight-decay", "abc"], ["--weight-decay", "'abc'", ">= 0"]),
        (["--weight-decay", "-1"], ["--weight-decay", "-1", ">= 0"]),
        (["--weight-decay", "nan"], ["--weight-decay", "nan", "finite"]),
        (["--p", "1"], ["--p", "1", "from 2"]),
        (["--train-frac", "1.5"], ["--train-frac", "1.5", "between 0 and 1"]),
        (["--steps", "-5"], ["--steps", "-5", ">= 0"]),
        (["--lr", "0"], ["--lr", "0", "> 0"]),
        (["--experiment", "nope"], ["--experiment", "'nope'", "mod-add"]),
        (["--device", "tpu"], ["--device", "'tpu'", "auto or cpu or cuda"]),
        (["--grokfast-alpha", "1"], ["--grokfast-alpha", "1", "[0, 1)"]),
        (["--grokfast-lamb", "-2"], ["--grokfast-lamb", "-2", ">= 0"]),
        (["--warmup-steps", "2.5"], ["--warmup-steps", "2.5", "integer"]),
        (["--bogus"], ["--bogus"]),
    ],
)
def test_bad_flag_gives_one_line_and_status_2(capsys, tmp_path, argv, names):
    code, out, err = run_cli(capsys, "--headless", "--run-dir", str(tmp_path / "r"), *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err
    assert not (tmp_path / "r").exists()  # nothing half-made


def test_cuda_without_cuda(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, err = run_cli(capsys, "--headless", "--device", "cuda", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "--device" in err and "cpu" in err


def test_unwritable_run_dir(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "--headless", "--run-dir", str(blocker / "run"))
    assert code == 2 and err.count("\n") == 1 and "--run-dir" in err


def test_existing_run_is_never_overwritten(capsys, tmp_path):
    assert run_cli(capsys, "--headless", "--steps", "10", "--run-dir", str(tmp_path / "r"))[0] == 0
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    code, _, err = run_cli(capsys, "--headless", "--steps", "10", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and "--resume" in err
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize("make", ["missing", "empty", "corrupt-config", "corrupt-checkpoint"])
def test_bad_resume_dir(capsys, tmp_path, make):
    target = tmp_path / "r"
    if make != "missing":
        target.mkdir()
    if make == "corrupt-config":
        (target / "config.json").write_text("{not json")
    if make == "corrupt-checkpoint":
        (target / "config.json").write_text(json.dumps(PRESETS["mod-add"].config().to_dict()))
        (target / "checkpoint.pt").write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "--headless", "--resume", str(target))
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "Traceback" not in err


def test_headless_prints_one_line_per_evaluation(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, "--headless", "--steps", "40", "--eval-every", "10", "--seed", "1", "--run-dir", str(tmp_path / "r")
    )
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("step")]
    assert [int(line.split()[1]) for line in lines] == [0, 10, 20, 30, 40]
    assert all("test loss" in line and "wd 0.3" in line for line in lines)
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 5
    # 40 steps do not generalize: the summary says where test accuracy got to.
    assert f"not reached (test acc at the end: {lines[-1].split('acc')[2].split()[0]})" in out


def test_grokfast_flags_reach_the_run_config(capsys, tmp_path):
    code, _, _ = run_cli(
        capsys,
        "--headless",
        "--steps",
        "0",
        "--grokfast",
        "--grokfast-alpha",
        "0.8",
        "--grokfast-lamb",
        "0.1",
        "--run-dir",
        str(tmp_path / "r"),
    )
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert code == 0 and (config["grokfast"], config["grokfast_alpha"], config["grokfast_lamb"]) == (True, 0.8, 0.1)


def test_warmup_steps_reaches_the_run_config(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "--headless", "--steps", "0", "--warmup-steps", "10", "--run-dir", str(tmp_path / "r"))
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert code == 0 and config["warmup_steps"] == 10


def test_list_experiments(capsys):
    code, out, _ = run_cli(capsys, "--list-experiments")
    assert code == 0
    for name in PRESETS:
        assert name in out


def test_bad_flag_through_the_real_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "grok_tui", "--headless", "--train-frac", "1.5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "grok-tui: error: --train-frac: 1.5 is not allowed; expected a number strictly between 0 and 1"
    ]
    assert not (tmp_path / "runs").exists()


def test_bad_theme(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--theme", "neon", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1
    assert "--theme" in err and "'neon'" in err and "dark" in err and "mono" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("make", ["missing", "not-a-run"])
def test_bad_watch_path(capsys, tmp_path, make):
    target = tmp_path / "w"
    if make == "not-a-run":
        target.mkdir()
    code, _, err = run_cli(capsys, "watch", str(target))
    assert code == 2 and err.count("\n") == 1 and "watch" in err and "Traceback" not in err


def test_installed_wheel_carries_the_themes(tmp_path):
    import zipfile
    from pathlib import Path

    root = Path(__file__).parent.parent
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    names = zipfile.ZipFile(next(tmp_path.glob("grok_tui-*.whl"))).namelist()
    for theme in ("dark", "light", "mono"):
        assert f"grok_tui/themes/{theme}.tcss" in names


# ---- files in a run directory are checked, not trusted ------------------------------------------------


def _finished_run(capsys, tmp_path, *flags):
    target = tmp_path / "r"
    assert (
        run_cli(capsys, "--headless", "--steps", "20", "--p", "23", "--width", "16", "--run-dir", str(target), *flags)[
            0
        ]
        == 0
    )
    return target


def _edit_checkpoint(target, edit):
    import torch

    state = torch.load(target / "checkpoint.pt", weights_only=True)
    edit(state)
    torch.save(state, target / "checkpoint.pt")


@pytest.mark.parametrize(
    "edit, names",
    [
        (lambda s: s.update(step=-3), ["step", "-3", ">= 0"]),
        (lambda s: s.update(step="abc"), ["step", "'abc'"]),
        (lambda s: s["optimizer"]["param_groups"][0].update(lr="x"), ["param_groups[0].lr", "'x'", "> 0"]),
        (lambda s: s["optimizer"]["param_groups"][0].update(weight_decay=float("nan")), ["weight_decay", "nan"]),
        (
            lambda s: s["model"].update({"embed.weight": s["model"]["embed.weight"][:, :8]}),
            ["model.embed.weight", "23×8", "23×16", "config.json"],
        ),
        (lambda s: s.update(grokfast={"alpha": 5.0, "lamb": 1.0, "ema": None}), ["grokfast.alpha", "5.0"]),
        (lambda s: s.update(torch_rng="garbage"), ["torch_rng"]),
        (lambda s: s.update(log_lines={"metrics.jsonl": -1}), ["log_lines"]),
        (lambda s: s.update(train_size=0), ["train_size", "0"]),
    ],
)
def test_resume_refuses_a_checkpoint_with_wrong_values_in_one_line(capsys, tmp_path, edit, names):
    target = _finished_run(capsys, tmp_path)
    _edit_checkpoint(target, edit)
    code, _, err = run_cli(capsys, "--headless", "--resume", str(target), "--steps", "40")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for name in ["--resume", "checkpoint.pt", *names]:
        assert name in err, (name, err)


def test_resume_refuses_a_config_that_no_longer_matches_its_checkpoint(capsys, tmp_path):
    target = _finished_run(capsys, tmp_path)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "width": 64}))
    code, _, err = run_cli(capsys, "--headless", "--resume", str(target))
    assert code == 2 and err.count("\n") == 1
    assert "model.embed.weight" in err and "23×16" in err and "23×64" in err and "config.json" in err


@pytest.mark.parametrize(
    "change, names",
    [
        ({"width": "abc"}, ["width", "'abc'", "integer"]),
        ({"lr": -1}, ["lr", "-1", "> 0"]),
        ({"steps": 1.5}, ["steps", "1.5"]),
        ({"bogus": 1}, ["'bogus'", "known config field"]),
        ({"experiment": ""}, ["experiment"]),
    ],
)
@pytest.mark.parametrize("command", ["resume", "watch"])
def test_a_bad_value_in_config_json_is_one_line_naming_the_file_and_field(capsys, tmp_path, change, names, command):
    target = _finished_run(capsys, tmp_path)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, **change}))
    argv = ["--headless", "--resume", str(target)] if command == "resume" else ["watch", str(target)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for name in ["config.json", *names]:
        assert name in err, (name, err)


# ---- flags --------------------------------------------------------------------------------------------


def test_an_empty_experiment_name_is_refused_not_defaulted(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--headless", "--experiment", "", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "--experiment: ''" in err and "mod-add" in err
    assert not (tmp_path / "r").exists()


def test_minus_zero_is_zero(capsys, tmp_path):
    import math

    assert (
        run_cli(capsys, "--headless", "--steps", "0", "--weight-decay", "-0", "--run-dir", str(tmp_path / "r"))[0] == 0
    )
    wd = json.loads((tmp_path / "r" / "config.json").read_text())["weight_decay"]
    assert wd == 0 and math.copysign(1, wd) == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_bad_checkpoint_interval(capsys, tmp_path, value):
    code, _, err = run_cli(capsys, "--headless", "--checkpoint-every", value, "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "--checkpoint-every" in err and "seconds" in err


def test_flags_that_together_need_more_memory_than_the_machine_has(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--headless", "--p", "1000", "--width", "65536", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "needs about" in err and "GB" in err and "available" in err and "--width" in err
    assert not (tmp_path / "r").exists()


def test_a_bug_in_a_headless_run_exits_1_with_one_line_and_a_crash_log(capsys, tmp_path, monkeypatch):
    from grok_tui.train.trainer import Trainer

    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(Trainer, "train_step", broken)
    code, _, err = run_cli(capsys, "--headless", "--steps", "20", "--run-dir", str(tmp_path / "r"))
    assert code == 1
    assert err.splitlines() == [
        f"grok-tui: error: crashed: RuntimeError: boom (details in {tmp_path / 'r' / 'crash.log'})"
    ]
    assert "Traceback" in (tmp_path / "r" / "crash.log").read_text()
    assert (tmp_path / "r" / "checkpoint.pt").exists()  # written on the way out


# ---- help, and the lines for flags in the wrong place ------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_commands_help_prints_and_exits_0(capsys, command):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as caught:
        main(argv)
    out, err = capsys.readouterr()
    assert caught.value.code == 0 and err == ""
    assert out.startswith(f"usage: {' '.join(filter(None, ['grok-tui', command]))} ")
    assert "--help" in out


def test_a_percent_sign_in_a_help_text_is_printed_as_it_is(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "Liu et al.'s 90% times" in " ".join(capsys.readouterr().out.split())


def test_a_flag_is_never_taken_by_its_abbreviation(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--headless", "--step", "5", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err == "grok-tui: error: unrecognized arguments: --step 5 (see grok-tui --help)\n"
    code, _, err = run_cli(capsys, "sweep", "--headless", "--weight", "1", "--sweep-dir", str(tmp_path / "s"))
    assert code == 2 and err == "grok-tui: error: unrecognized arguments: --weight 1 (see grok-tui sweep --help)\n"
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv, line",
    [
        (["--weight-decay", "-1e-3"], "--weight-decay: -0.001 is not allowed; expected a finite number >= 0"),
        (["--lr", "-.5"], "--lr: -0.5 is not allowed; expected a finite number > 0"),
        (["--weight-decay", "-x"], "--weight-decay: '-x' is not allowed"),
    ],
)
def test_a_value_that_starts_with_a_minus_is_a_value(capsys, tmp_path, argv, line):
    code, _, err = run_cli(capsys, "--headless", *argv, "--run-dir", str(tmp_path / "r"))
    assert code == 2 and err.startswith(f"grok-tui: error: {line}") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_sweep_axis_with_a_negative_value_is_refused_for_its_member(capsys, tmp_path):
    code, _, err = run_cli(capsys, "sweep", "--headless", "--weight-decay", "-1,1", "--sweep-dir", str(tmp_path / "s"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("grok-tui: error: --weight-decay: -1.0 is not allowed for the member wd=-1; expected ")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--grokfast"], "whose optimizer has no Grokfast filter; use it on a single run (grok-tui --grokfast"),
        (["--grokfast-alpha", "0.9"], "it tunes the Grokfast filter"),
        (["--grokfast-lamb", "2"], "it tunes the Grokfast filter"),
        (["--train-size", "100"], "a sweep does not batch this intervention"),
        (["--run-dir", "elsewhere"], "a sweep is written to --sweep-dir DIR"),
    ],
)
def test_a_single_runs_flag_given_to_a_sweep_says_why_it_has_no_place_there(capsys, tmp_path, argv, why):
    code, _, err = run_cli(capsys, "sweep", "--headless", "--sweep-dir", str(tmp_path / "s"), *argv)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"grok-tui: error: {argv[0]} cannot be used in a sweep: ") and why in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "elsewhere").exists()


def test_detach_with_headless_is_refused_before_the_sweep_directory_is_made(capsys, tmp_path):
    code, _, err = run_cli(capsys, "sweep", "--detach", "--headless", "--sweep-dir", str(tmp_path / "s"))
    assert code == 2 and "--detach and --headless cannot be combined" in err
    assert not (tmp_path / "s").exists()


def test_resuming_a_sweep_that_is_training_says_what_works_on_a_sweep(capsys, tmp_path):
    from grok_tui.process import mark_running
    from grok_tui.sweep.phases import PhaseRule
    from grok_tui.sweep.store import create_sweep

    root = tmp_path / "s"
    create_sweep(root, "mod-add", {"weight_decay": [0.3, 1.0]}, PhaseRule(), 1)
    mark_running(root)  # as this process: alive
    code, _, err = run_cli(capsys, "sweep", "--headless", "--resume", str(root))
    assert code == 2 and err.count("\n") == 1
    assert f"it is training now (pid {os.getpid()})" in err
    assert err.rstrip().endswith(f"grok-tui watch {root} shows it, grok-tui stop {root} stops it")
    assert "attach" not in err  # attach refuses sweeps


def test_a_sweep_that_will_not_fit_states_the_memory_rule(capsys, tmp_path, monkeypatch):
    from grok_tui.train.memory import human_size

    available = 50 * 2**20
    monkeypatch.setattr("grok_tui.train.memory.available_bytes", lambda device: available)
    code, _, err = run_cli(
        capsys, "sweep", "--headless", "--seed", "0,1,2,3,4,5,6,7", "--workers", "2", "--sweep-dir", str(tmp_path / "s")
    )
    assert code == 2 and err.count("\n") == 1
    assert "the sweep needs about" in err and "2 shards training at once" in err
    assert f"the CPU has {human_size(available)} available, of which at most 80% ({human_size(0.8 * available)})" in err
    assert not (tmp_path / "s").exists()
