"""Command line: `grok-tui [flags]`, `grok-tui --headless`, `grok-tui watch RUN_DIR`.

Every wrong input ends here as one line on stderr, naming the flag, the value
and what is allowed, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from grok_tui.config import DEFAULT_EXPERIMENT, PRESETS, RULES, ConfigError, RunConfig, flag_name
from grok_tui.crash import report_crash
from grok_tui.runlog import RunDirError, default_run_dir, load_config
from grok_tui.train.memory import WontFit

PROG = "grok-tui"

# Flags that map onto a RunConfig field, with the type their text must parse as.
CONFIG_FLAGS: dict[str, type] = {
    "steps": int, "seed": int, "device": str, "weight_decay": float, "lr": float, "l1": float,
    "train_frac": float, "p": int, "op": str, "width": int, "init_scale": float,
    "eval_every": int, "threads": int, "train_size": int, "constrain_norm": float,
    "grokfast_alpha": float, "grokfast_lamb": float, "checkpoint_every_s": float,
}
# What --resume lets you change: nothing that would alter the run's course.
RESUME_FLAGS = ("steps", "device", "threads", "checkpoint_every_s")


class UsageError(Exception):
    """One line for the user; the CLI prints it and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Train a model in which grokking happens and watch it live. "
        f"`{PROG} watch RUN_DIR` follows a run started elsewhere.",
    )
    parser.add_argument("--experiment", default=None, metavar="NAME", help=f"preset to run (default {DEFAULT_EXPERIMENT})")
    parser.add_argument("--list-experiments", action="store_true", help="list the presets and exit")
    parser.add_argument("--headless", action="store_true", help="train with no UI, one line per evaluation")
    parser.add_argument("--run-dir", metavar="DIR", help="where to write the run (default runs/<timestamp>-<experiment>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    parser.add_argument("--theme", metavar="NAME", help="UI theme (see themes/)")
    _add_refresh(parser)
    parser.add_argument("--grokfast", action="store_true", default=None,
                        help="start with the Grokfast EMA gradient filter on (see --grokfast-alpha, --grokfast-lamb)")
    for name, kind in CONFIG_FLAGS.items():
        allowed = RULES[name][1]
        parser.add_argument(flag_name(name), dest=name, default=None, metavar=kind.__name__.upper(), help=allowed)
    return parser


def _convert(name: str, text: str, kind: type) -> Any:
    allowed = RULES[name][1]
    if kind is str:
        return text
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(name, text, allowed) from None
    return value + 0.0 if kind is float else value  # "-0" is 0, not -0.0


def config_from_args(args: argparse.Namespace) -> RunConfig:
    name = DEFAULT_EXPERIMENT if args.experiment is None else args.experiment
    if name not in PRESETS:
        raise ConfigError("experiment", name, "one of " + ", ".join(PRESETS))
    changes = {
        field: _convert(field, getattr(args, field), kind)
        for field, kind in CONFIG_FLAGS.items()
        if getattr(args, field) is not None
    }
    if args.grokfast:
        changes["grokfast"] = True
    return PRESETS[name].config(**changes)


def list_experiments() -> str:
    width = max(len(name) for name in PRESETS)
    lines = []
    for name, preset in PRESETS.items():
        mark = " (default)" if name == DEFAULT_EXPERIMENT else ""
        lines.append(f"{name:<{width}}  {preset.summary}{mark}")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["watch"]:
            return _watch(argv[1:])
        return _run(argv)
    except UsageError as e:
        return _fail(str(e))
    except ConfigError as e:
        return _fail(f"{e.flag}: {e.value!r} is not allowed; expected {e.allowed}")
    except WontFit as e:
        return _fail(str(e))
    except Crashed as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug before any run directory exists
        print(f"{PROG}: error: {report_crash(e)}", file=sys.stderr)
        return 1


class Crashed(Exception):
    """A bug met while a run was going: the one line to print (the traceback is in its crash.log)."""


def _run(argv: list[str]) -> int:
    from grok_tui.train import DeviceError, new_run, resume_run

    args = build_parser().parse_args(argv)
    if args.list_experiments:
        print(list_experiments())
        return 0
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    try:
        if args.resume:
            given = [f for f in CONFIG_FLAGS if getattr(args, f) is not None and f not in RESUME_FLAGS]
            if args.experiment or args.run_dir or args.grokfast or given:
                extra = "--" + (given[0].replace("_", "-") if given else ("experiment" if args.experiment else "run-dir"))
                raise UsageError(f"{extra} cannot be combined with --resume; a resumed run keeps its config "
                                 f"(only {', '.join('--' + f for f in RESUME_FLAGS)} may change)")
            changes = {f: _convert(f, getattr(args, f), CONFIG_FLAGS[f]) for f in RESUME_FLAGS if getattr(args, f) is not None}
            try:
                spec = resume_run(Path(args.resume), **changes)
            except RunDirError as e:
                raise UsageError(f"--resume {args.resume!r}: {e}") from None
        else:
            cfg = config_from_args(args)
            run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(cfg.experiment)
            try:
                spec = new_run(cfg, run_dir)
            except RunDirError as e:
                raise UsageError(f"--run-dir {str(run_dir)!r}: {e}") from None
    except DeviceError as e:
        raise UsageError(f"--device: {e}") from None

    try:
        if args.headless:
            from grok_tui.headless import run_headless

            return run_headless(spec.build())
        from grok_tui.ui.app import run_app

        return run_app(spec, theme=theme, refresh=refresh)
    except Exception as e:
        raise Crashed(report_crash(e, spec.run_dir)) from None


def _theme(name: str | None) -> str | None:
    """Check --theme before anything is created (the UI's themes are .tcss files)."""
    if name is None:
        return None
    from grok_tui.ui.themes import available_themes

    names = available_themes()
    if name not in names:
        raise UsageError(f"--theme: {name!r} is not a theme; expected one of {', '.join(names)}")
    return name


def _add_refresh(parser: argparse.ArgumentParser) -> None:
    from grok_tui.ui.pacing import REFRESH_HELP

    parser.add_argument("--refresh", metavar="SECONDS", help=REFRESH_HELP)


def _refresh(text: str | None) -> float:
    """Check --refresh before anything is created."""
    from grok_tui.ui.pacing import DEFAULT_REFRESH_S, parse_refresh

    if text is None:
        return DEFAULT_REFRESH_S
    try:
        return parse_refresh(text)
    except ValueError as e:
        raise UsageError(f"--refresh: {e}") from None


def _watch(argv: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} watch", description="Follow a run directory, read-only.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--theme", metavar="NAME")
    _add_refresh(parser)
    args = parser.parse_args(argv)
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    try:
        load_config(Path(args.run_dir))
    except RunDirError as e:
        raise UsageError(f"watch {args.run_dir!r}: {e}") from None
    from grok_tui.ui.app import run_watch

    return run_watch(Path(args.run_dir), theme=theme, refresh=refresh)


def entry_point() -> None:
    sys.exit(main())
