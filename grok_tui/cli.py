"""Command line: `grok-tui [flags]`, `--headless`, `--detach`, and `attach`, `ls`, `stop`, `watch`.

Every wrong input ends here as one line on stderr, naming the flag, the value
and what is allowed, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grok_tui.config import DEFAULT_EXPERIMENT, FIELD_TYPES, PRESETS, RULES, ConfigError, RunConfig, flag_name
from grok_tui.crash import report_crash
from grok_tui.runlog import RunDirError, default_run_dir, load_run_config
from grok_tui.train.channel import ChannelError
from grok_tui.usage import Parser as _Parser
from grok_tui.usage import UsageError

PROG = "grok-tui"

# Flags that map onto a RunConfig field, with the type their text must parse as (the field's).
CONFIG_FLAGS: dict[str, type] = {
    name: FIELD_TYPES[name]
    for name in (
        "steps",
        "seed",
        "device",
        "weight_decay",
        "lr",
        "l1",
        "train_frac",
        "n_train",
        "pairs",
        "p",
        "op",
        "width",
        "init_scale",
        "warmup_steps",
        "eval_every",
        "threads",
        "train_size",
        "constrain_norm",
        "grokfast_alpha",
        "grokfast_lamb",
        "checkpoint_every_s",
    )
}
# What --resume lets you change in the config: nothing that would alter the run's course.
RESUME_FLAGS = ("steps", "device", "threads", "checkpoint_every_s")
# And the values a key changes, set anew from the resume step on (after a fault: a lower lr, say).
RESUME_VALUES = ("lr", "weight_decay", "l1")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Train a model in which grokking happens and watch it live. "
        f"`{PROG} attach [RUN_DIR]` opens a run training in the background, `{PROG} ls [DIR]` lists runs, "
        f"`{PROG} stop RUN_DIR` stops one, `{PROG} watch RUN_DIR [RUN_DIR ...]` follows run directories read-only "
        f"(several: their curves overlaid), `{PROG} run SCRIPT.py` watches and steers a training script of your own "
        f"(grok_tui.monitor in its loop), `{PROG} forecast RUN_DIR` says whether and when it will grok.",
    )
    parser.add_argument(
        "--experiment", default=None, metavar="NAME", help=f"preset to run (default {DEFAULT_EXPERIMENT})"
    )
    parser.add_argument("--list-experiments", action="store_true", help="list the presets and exit")
    parser.add_argument("--headless", action="store_true", help="train with no UI, one line per evaluation")
    parser.add_argument(
        "--detach",
        action="store_true",
        help="train in the background (no terminal; output in RUN_DIR/output.log) and return at once",
    )
    parser.add_argument(
        "--run-dir", metavar="DIR", help="where to write the run (default runs/<timestamp>-<experiment>)"
    )
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    parser.add_argument("--theme", metavar="NAME", help="UI theme (see themes/)")
    _add_refresh(parser)
    parser.add_argument(
        "--grokfast",
        action="store_true",
        default=None,
        help="start with the Grokfast EMA gradient filter on (see --grokfast-alpha, --grokfast-lamb)",
    )
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
        if argv[:1] and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return _run(argv)
    except UsageError as e:
        return _fail(str(e))
    except ConfigError as e:
        return _fail(e.flag_line)
    except ChannelError as e:
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
    from grok_tui.train.memory import WontFit

    args = build_parser().parse_args(argv)
    if args.list_experiments:
        print(list_experiments())
        return 0
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    if args.detach and args.headless:
        raise UsageError("--detach and --headless cannot be combined: a detached run is headless already")
    try:
        if args.resume:
            _not_running(Path(args.resume), "--resume")
            given = [f for f in CONFIG_FLAGS if getattr(args, f) is not None and f not in RESUME_FLAGS + RESUME_VALUES]
            if args.experiment or args.run_dir or args.grokfast or given:
                extra = "--" + (
                    given[0].replace("_", "-") if given else ("experiment" if args.experiment else "run-dir")
                )
                raise UsageError(
                    f"{extra} cannot be combined with --resume; a resumed run keeps its config "
                    f"(only {', '.join(flag_name(f) for f in RESUME_FLAGS + RESUME_VALUES)} may change)"
                )
            changes = {
                f: _convert(f, getattr(args, f), CONFIG_FLAGS[f]) for f in RESUME_FLAGS if getattr(args, f) is not None
            }
            values = {
                f: _convert(f, getattr(args, f), CONFIG_FLAGS[f]) for f in RESUME_VALUES if getattr(args, f) is not None
            }
            try:
                spec = resume_run(Path(args.resume), values, **changes)
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
    except WontFit as e:
        raise UsageError(str(e)) from None

    if args.detach:
        return _detach(spec)
    try:
        if args.headless:
            from grok_tui.runner import serve

            return serve(spec)
        from grok_tui.sources.attached import AttachedRun
        from grok_tui.ui.app import run_monitor
        from grok_tui.ui.screens.run import RunScreen

        # The run trains in a process of its own, and this monitor attaches to it like any other client.
        return run_monitor(RunScreen(AttachedRun.start(spec), refresh=refresh), theme=theme)
    except ChannelError:
        raise  # another process trains this run: one line, not a crash
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
    parser = _Parser(
        prog=f"{PROG} watch",
        description="Follow a run directory, read-only. Given several, the curves pane overlays their loss and "
        "accuracy (run i always in colour i, each named by what differs between their configs, e.g. wd 0.05 "
        "and wd 1; test solid, train dotted); the weights, frequencies, norm and status show the first.",
    )
    parser.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    parser.add_argument("--theme", metavar="NAME")
    _add_refresh(parser)
    args = parser.parse_args(argv)
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    from grok_tui.sweep.store import MEMBER_DIRS, SweepDirError, is_sweep

    if len(args.run_dirs) == 1 and is_sweep(Path(args.run_dirs[0])):
        from grok_tui.ui.screens.sweep import run_sweep_monitor

        try:
            return run_sweep_monitor(Path(args.run_dirs[0]), start=False, theme=theme, refresh=refresh)
        except SweepDirError as e:
            raise UsageError(f"watch {args.run_dirs[0]!r}: {e}") from None
    for text in args.run_dirs:
        if is_sweep(Path(text)):  # among runs: it has no curves of its own, its members do
            members = Path(text) / MEMBER_DIRS
            example = min((path.parent for path in members.glob("*/config.json")), default=None)
            raise UsageError(
                f"watch {text!r}: a sweep, not a run; {PROG} watch {text} opens it on its own, and its members "
                f"are runs to compare: {members / 'NAME'}" + (f" (such as {example})" if example else "")
            )
    run_dirs = [_run_dir_arg("watch", text) for text in args.run_dirs]
    seen: dict[Path, str] = {}
    for text, run_dir in zip(args.run_dirs, run_dirs, strict=True):
        if run_dir.resolve() in seen:  # a run compared with itself says nothing
            raise UsageError(f"watch {text!r}: the same run as {seen[run_dir.resolve()]!r}; name each run once")
        seen[run_dir.resolve()] = text
    from grok_tui.sources.watched import WatchedRun
    from grok_tui.ui.app import run_monitor
    from grok_tui.ui.screens.run import RunScreen

    return run_monitor(RunScreen(WatchedRun(run_dirs[0], compare=run_dirs[1:]), refresh=refresh), theme=theme)


def _detach(spec: Any) -> int:
    from grok_tui.process import OUTPUT
    from grok_tui.train.launch import StartError, start, wait_until_served

    process = start(spec)
    run_dir = spec.run_dir
    try:
        served = wait_until_served(run_dir, process)
    except StartError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if not served:
        print(_ended_unwatched(run_dir))
        return 0
    print(
        f"{PROG}: training {run_dir} in the background (pid {process.pid}); its output goes to {run_dir / OUTPUT}\n"
        f"  watch and steer it: {PROG} attach {run_dir}\n"
        f"  stop it:            {PROG} stop {run_dir}"
    )
    return 0


def _ended_unwatched(run_dir: Path) -> str:
    """What `--detach` says of a run so short that it ended before its channel was seen."""
    from grok_tui.process import read_record

    state = (read_record(run_dir) or {}).get("state", "finished")
    return f"{PROG}: {run_dir} ended ({state}) before it could be watched; see it: {PROG} watch {run_dir}"


def _run_dir_arg(command: str, text: str) -> Path:
    """A run directory named on the command line, with a readable config (UsageError otherwise)."""
    try:
        load_run_config(Path(text))  # a preset's run or a script's
    except RunDirError as e:
        raise UsageError(f"{command} {text!r}: {e}") from None
    return Path(text)


def _not_running(run_dir: Path, command: str, what_works: str | None = None) -> None:
    """UsageError if a process trains `run_dir` now, saying what works on it instead (for a run by default:
    attach; a sweep cannot be attached to)."""
    from grok_tui.process import running_pid

    pid = running_pid(run_dir)
    if pid is not None:
        what_works = what_works or f"{PROG} attach {run_dir} opens it"
        raise UsageError(f"{command} {str(run_dir)!r}: it is training now (pid {pid}); {what_works}")


def _attach(argv: list[str]) -> int:
    from grok_tui.runs import describe, newest_running
    from grok_tui.train.channel import NotServed
    from grok_tui.train.launch import reach

    parser = _Parser(
        prog=f"{PROG} attach",
        description="Open the monitor over a run training in the background: "
        "every pane and every key, as if it had started here.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", nargs="?", help="the run (default: the newest run training under runs/)"
    )
    parser.add_argument("--theme", metavar="NAME")
    _add_refresh(parser)
    args = parser.parse_args(argv)
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    if args.run_dir is None:
        run_dir = newest_running(Path("runs"))
        if run_dir is None:
            raise UsageError(
                f"attach: no run is training under runs/; {PROG} ls lists the runs, {PROG} --detach starts one"
            )
    else:
        run_dir = _run_dir_arg("attach", args.run_dir)
    try:
        # The monitor's own authenticated connection, made first: a run that cannot be steered from here is
        # refused now, not shown as stopped by a monitor while it trains on.
        client = reach(run_dir)
    except NotServed:
        state = describe(run_dir).state
        raise UsageError(
            f"attach {str(run_dir)!r}: the run is not training ({state}); {PROG} watch {run_dir} shows it, "
            f"{PROG} --resume {run_dir} continues it"
        ) from None
    except ChannelError as e:  # its process lives, but cannot be reached: what is true, and what to do
        raise UsageError(str(e)) from None
    from grok_tui.sources.attached import AttachedRun
    from grok_tui.ui.app import run_monitor
    from grok_tui.ui.screens.run import RunScreen

    return run_monitor(RunScreen(AttachedRun(run_dir, client=client), refresh=refresh), theme=theme)


def _ls(argv: list[str]) -> int:
    from grok_tui.runs import find_runs, format_table, with_system

    parser = _Parser(
        prog=f"{PROG} ls", description="List the runs (and sweeps) under a directory, with the state of each."
    )
    parser.add_argument("root", metavar="DIR", nargs="?", default="runs", help="where the runs are (default runs/)")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        raise UsageError(f"ls: {args.root!r} is not a directory; expected the folder that holds the run directories")
    from grok_tui.sweep.store import find_sweeps

    notices: list[str] = []  # sweeps and records that could not be read: skipped, and named once
    infos = with_system(find_runs(Path(args.root)) + find_sweeps(Path(args.root), notices))
    for line in notices:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    print(format_table(infos) if infos else f"no runs or sweeps under {args.root}")
    return 0


def _stop(argv: list[str]) -> int:
    from grok_tui.runs import describe
    from grok_tui.train.channel import NotServed
    from grok_tui.train.launch import stop

    parser = _Parser(
        prog=f"{PROG} stop",
        description="Stop a run training in the background, cleanly: it flushes its logs and checkpoints first.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    args = parser.parse_args(argv)
    from grok_tui.sweep.store import is_sweep

    if is_sweep(Path(args.run_dir)):
        return _stop_sweep(Path(args.run_dir))
    run_dir = _run_dir_arg("stop", args.run_dir)
    try:
        reason, step = stop(run_dir)
    except NotServed:
        print(f"{PROG}: error: {run_dir} is not training ({describe(run_dir).state}); nothing to stop", file=sys.stderr)
        return 1
    except (ChannelError, TimeoutError) as e:  # its process lives, but cannot be reached, or did not stop
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    at = f" at step {step:,}" if step is not None else ""
    from grok_tui.loop.record import ScriptConfig

    # A script's run is trained again by its script, not by --resume (runlog.load_config says why).
    then = "" if isinstance(load_run_config(run_dir), ScriptConfig) else f"; {PROG} --resume {run_dir} continues it"
    print(f"{PROG}: {run_dir} {reason}{at}{then}")
    return 0


# A single run's flags that a sweep refuses, with the reason its one line gives (argparse would only say
# "unrecognized arguments").
_GROKFAST_TUNES = (
    "it tunes the Grokfast filter, and a sweep's members train as one batch, whose optimizer has none; "
    f"use it on a single run with --grokfast ({PROG} --grokfast ...)"
)
_INTERVENTION = (
    "a sweep does not batch this intervention (it steers one run's training loop, and a sweep's members "
    f"train in lockstep as one batch); use it on a single run ({PROG} {{flag}} ...)"
)
NOT_IN_A_SWEEP: dict[str, str] = {
    "--grokfast": "a sweep's members train as one batch, whose optimizer has no Grokfast filter; "
    f"use it on a single run ({PROG} --grokfast ...)",
    "--grokfast-alpha": _GROKFAST_TUNES,
    "--grokfast-lamb": _GROKFAST_TUNES,
    "--train-size": _INTERVENTION.format(flag="--train-size"),
    "--run-dir": "a sweep is written to --sweep-dir DIR (default sweeps/<timestamp>-<experiment>)",
}
# The run flags a sweep takes, each a value or a comma list (an axis).
SWEEP_FIELDS = tuple(name for name in CONFIG_FLAGS if flag_name(name) not in NOT_IN_A_SWEEP)


class _Refused(argparse.Action):
    """A flag that has no place in this command: its one line, as soon as it is met."""

    def __init__(self, option_strings: list[str], dest: str, why: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)
        self.why = why

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        raise UsageError(f"{option_string} cannot be used in a sweep: {self.why}")


def _sweep_parser() -> argparse.ArgumentParser:
    from grok_tui.sweep.phases import SETTINGS

    parser = _Parser(
        prog=f"{PROG} sweep",
        description="Train a grid of runs as batches and draw their phase diagram live. Every run flag given "
        "a comma list (--weight-decay 0.1,0.3,1) is an axis; every combination is a member.",
    )
    parser.add_argument(
        "--experiment", metavar="NAME", help=f"the preset every member starts from (default {DEFAULT_EXPERIMENT})"
    )
    parser.add_argument(
        "--map", metavar="NAME", help="one of the seeds' maps (see the README): its experiment and axes"
    )
    parser.add_argument(
        "--sweep-dir", metavar="DIR", help="where to write it (default sweeps/<timestamp>-<experiment>)"
    )
    parser.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its shards' checkpoints")
    parser.add_argument("--headless", action="store_true", help="no monitor: progress lines, then the diagram as text")
    parser.add_argument(
        "--detach", action="store_true", help="train in the background (output in SWEEP_DIR/output.log) and return"
    )
    parser.add_argument(
        "--workers", metavar="N", help="shards training at once, one process or Ray task each (default: the CPU cores)"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="train the shards as Ray tasks: on the cluster at ADDRESS (or RAY_ADDRESS), else on a local Ray",
    )
    parser.add_argument("--shard-cpus", metavar="N", help="with --ray: CPUs (and torch threads) a shard (default 1)")
    parser.add_argument("--shard-gpus", metavar="N", help="with --ray: GPUs a shard (default 0; 1 a shard on GPUs)")
    parser.add_argument(
        "--prune", metavar="P", help="end members whose forecast p(generalize) falls below P after their forecast point"
    )
    parser.add_argument("--theme", metavar="NAME")
    _add_refresh(parser)
    for name, setting in SETTINGS.items():
        parser.add_argument(
            setting.flag, dest=f"phase_{name}", metavar=setting.kind.__name__.upper(), help=setting.help
        )
    for name in SWEEP_FIELDS:
        metavar = CONFIG_FLAGS[name].__name__.upper() + "[,...]"
        parser.add_argument(flag_name(name), dest=name, metavar=metavar, help=RULES[name][1])
    for flag, why in NOT_IN_A_SWEEP.items():
        parser.add_argument(flag, action=_Refused, why=why, dest=f"refused_{flag[2:]}")
    return parser


def _sweep(argv: list[str]) -> int:
    from grok_tui.sweep.phases import SETTINGS
    from grok_tui.sweep.plan import PlanError, check_resume, plan_sweep
    from grok_tui.sweep.store import SweepDirError, read_sweep

    args = _sweep_parser().parse_args(argv)
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    if args.detach and args.headless:
        raise UsageError("--detach and --headless cannot be combined: a detached sweep is headless already")
    ray = _ray_options(args)
    fields = [name for name in SWEEP_FIELDS if getattr(args, name) is not None]
    rule_flags = {name: getattr(args, f"phase_{name}") for name in SETTINGS}
    # What the sweep is, beside its values: the same for a new sweep and, to refuse it, for a resumed one.
    settings: dict[str, Any] = dict(
        experiment=args.experiment,
        map_name=args.map,
        rule_flags={name: text for name, text in rule_flags.items() if text is not None},
        workers_text=args.workers,
        sweep_dir=args.sweep_dir,
        prune_text=args.prune,
    )
    try:
        if args.resume:
            check_resume(fields, **settings)
            root = Path(args.resume)
            _not_running(root, "sweep --resume", f"{PROG} watch {root} shows it, {PROG} stop {root} stops it")
            try:
                info = read_sweep(root)
            except SweepDirError as e:
                raise UsageError(f"--resume {args.resume!r}: {e}") from None
            _check_cluster(ray)
        else:
            # Axes in the order they were typed: the first runs across the diagram, the second down.
            fields.sort(key=lambda name: _position(argv, flag_name(name)))
            values = {name: _list(name, getattr(args, name), CONFIG_FLAGS[name]) for name in fields}
            plan = plan_sweep(values, **settings)
            _check_cluster(ray)  # the last check, as it is the slow one; still before anything is written
            info = plan.create()
    except PlanError as e:
        raise UsageError(str(e)) from None
    engine_args = ray.argv() if ray is not None else []
    if args.detach:
        from grok_tui.sweep.launch import start_sweep

        process = start_sweep(info.root, engine_args)
        print(
            f"{PROG}: training the sweep {info.root} in the background (pid {process.pid}); "
            f"its output goes to {info.root / 'output.log'}\n"
            f"  watch it: {PROG} watch {info.root}\n"
            f"  stop it:  {PROG} stop {info.root}"
        )
        return 0
    if args.headless:
        from grok_tui.sweep.engine import run_sweep
        from grok_tui.sweep.ray_engine import RayError

        try:
            return run_sweep(info, ray=ray)
        except RayError as e:
            raise UsageError(str(e)) from None
    from grok_tui.ui.screens.sweep import run_sweep_monitor

    return run_sweep_monitor(info.root, start=True, theme=theme, refresh=refresh, engine_args=engine_args)


def _ray_options(args: argparse.Namespace) -> Any:
    """--ray and its shard sizes, checked (Ray installed, the address well formed); the cluster itself is
    asked by _check_cluster, last, as that takes a second or more."""
    if args.ray is None:
        if args.shard_cpus is not None or args.shard_gpus is not None:
            raise UsageError("--shard-cpus and --shard-gpus go with --ray")
        return None
    from grok_tui.sweep.engine import RayOptions
    from grok_tui.sweep.plan import SHARD_CPUS, SHARD_GPUS, PlanError, number
    from grok_tui.sweep.ray_engine import RayError, check_address

    try:
        cpus = number("--shard-cpus", args.shard_cpus, SHARD_CPUS, 1.0)
        gpus = number("--shard-gpus", args.shard_gpus, SHARD_GPUS, 0.0)
        options = RayOptions(args.ray or None, cpus, gpus)
        check_address(options.address)
    except (PlanError, RayError) as e:
        raise UsageError(str(e)) from None
    return options


def _check_cluster(ray: Any) -> None:
    """With --ray at a cluster's address: UsageError unless the cluster answers, in bounded time."""
    if ray is None:
        return
    from grok_tui.sweep.ray_engine import RayError, check_cluster

    try:
        check_cluster(ray.address)
    except RayError as e:
        raise UsageError(str(e)) from None


def _position(argv: list[str], flag: str) -> int:
    return next((i for i, arg in enumerate(argv) if arg == flag or arg.startswith(flag + "=")), len(argv))


def _list(name: str, text: str, kind: type) -> list[Any]:
    """A flag's comma list, each value parsed as the field's type."""
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise UsageError(
            f"{flag_name(name)}: {text!r} has an empty value; expected a value or a comma list such as 0.1,0.3,1"
        )
    return [_convert(name, part, kind) for part in parts]


def _stop_sweep(root: Path) -> int:
    from grok_tui.sweep.launch import stop_sweep

    try:
        ending = stop_sweep(root)
    except TimeoutError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if ending is None:
        print(f"{PROG}: error: no process is training the sweep in {root}; nothing to stop", file=sys.stderr)
        return 1
    print(f"{PROG}: the sweep in {root} {ending}; {PROG} sweep --resume {root} continues it")
    return 0


# How long `grok-tui run` gives a script that ignores `q` (m.should_stop) after the monitor has closed.
SCRIPT_GRACE_S = 5.0


def _run_script(argv: list[str]) -> int:
    """`grok-tui run SCRIPT.py [ARGS...]`: a script of one's own (grok_tui.monitor in its loop) as a run."""
    import contextlib
    import subprocess

    from grok_tui import process as processes
    from grok_tui.loop.record import ScriptConfig
    from grok_tui.runlog import RunLog

    takes_value = {"--run-dir", "--refresh", "--theme"}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        i += 2 if argv[i] in takes_value else 1
    i += 1 if i < len(argv) and argv[i] == "--" else 0
    parser = _Parser(
        prog=f"{PROG} run",
        description="Run SCRIPT.py (a training loop with grok_tui.monitor(model, optimizer) in it) as a run of its "
        "own process, and open the monitor over it; the arguments after SCRIPT.py are the script's.",
    )
    parser.add_argument("script", metavar="SCRIPT.py")
    parser.add_argument("--detach", action="store_true", help="run it in the background and return once it serves")
    parser.add_argument("--run-dir", metavar="DIR", help="where to write the run (default runs/<timestamp>-<script>)")
    parser.add_argument("--theme", metavar="NAME")
    _add_refresh(parser)
    args = parser.parse_args([a for a in argv[: i + 1] if a != "--"])
    rest = argv[i + 1 :]
    theme = _theme(args.theme)
    refresh = _refresh(args.refresh)
    script = Path(args.script)
    if script.suffix != ".py":
        raise UsageError(f"run {args.script!r}: not a Python script; expected a file ending in .py")
    if not script.is_file():
        raise UsageError(f"run {args.script!r}: no such file")
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(script.stem)
    made = ScriptConfig(experiment=script.stem[:100] or "script", script=str(script.resolve()), argv=tuple(rest))
    try:
        RunLog(run_dir).create({**made.record(), "started": False})  # the script's monitor fills it in
    except RunDirError as e:
        raise UsageError(f"--run-dir {str(run_dir)!r}: {e}") from None
    run_dir = run_dir.resolve()
    child = processes.start(run_dir, "run", "grok_tui.loop.launcher", [str(run_dir), str(script.resolve()), *rest])
    if args.detach:
        from grok_tui.train.launch import START_TIMEOUT_S, StartError, wait_until_served

        try:
            served = wait_until_served(run_dir, child, timeout=START_TIMEOUT_S)
        except StartError as e:
            print(f"{PROG}: error: {script.name}: {e}", file=sys.stderr)
            return 1
        if not served:
            print(_ended_unwatched(run_dir))
            return 0
        print(
            f"{PROG}: running {script} as {run_dir} in the background (pid {child.pid}); "
            f"its output goes to {run_dir / processes.OUTPUT}\n"
            f"  watch and steer it: {PROG} attach {run_dir}\n"
            f"  stop it:            {PROG} stop {run_dir}"
        )
        return 0
    from grok_tui.loop.source import ScriptRun
    from grok_tui.ui.app import run_monitor
    from grok_tui.ui.screens.run import RunScreen

    source = ScriptRun(run_dir, child, script.name)
    try:
        status = run_monitor(RunScreen(source, refresh=refresh), theme=theme)
    except Exception as e:
        raise Crashed(report_crash(e, run_dir)) from None
    if source.stop_asked and child.poll() is None:
        try:
            child.wait(SCRIPT_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()  # it ignored m.should_stop and SIGTERM alike
            child.wait()
            processes.mark_ended(run_dir, "stopped", None)
            print(f"{PROG}: {script.name} did not stop when asked; ended it (SIGKILL)", file=sys.stderr)
    if (processes.read_record(run_dir) or {}).get("state") == "crashed":
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(SCRIPT_GRACE_S)  # its last words are being written
        print(f"{PROG}: error: {processes.last_words(run_dir) or f'{script.name} crashed'}", file=sys.stderr)
        return 1
    return status


def _forecast(argv: list[str]) -> int:
    """`grok-tui forecast RUN_DIR [--at STEP]`: will it grok, and when (grok_tui/forecast);
    `grok-tui forecast --score SWEEP_DIR...`: how well that is foretold on members the fit never saw."""
    import json

    from grok_tui.forecast import FitError, forecast, load_fit

    parser = _Parser(
        prog=f"{PROG} forecast",
        description="Print, as one JSON line, the probability that a run's test accuracy reaches 90% within its "
        "step budget and the step at which it is expected to, from its rows up to STEP alone: "
        '{"step": S, "p_generalize": P, "expected_step": N or null}. With --score, the forecast\'s AUROC, steps '
        "within 2x and earliness on the sweeps' members held out from the fit, beside a settings-only baseline.",
    )
    parser.add_argument("paths", metavar="RUN_DIR", nargs="+", help="a run directory (a sweep's member too)")
    parser.add_argument("--at", metavar="STEP", help="forecast from the rows up to this step (default: the last)")
    parser.add_argument("--score", action="store_true", help="score the fit on the members of the sweeps named")
    parser.add_argument("--fit", metavar="FILE", help="a fit file (default: the one shipped)")
    args = parser.parse_args(argv)
    try:
        fit = load_fit(Path(args.fit) if args.fit else None)
    except FitError as e:
        raise UsageError(f"forecast --fit: {e}") from None
    if args.score:
        return _forecast_score(args, fit)
    if len(args.paths) > 1:
        raise UsageError("forecast: one RUN_DIR at a time (several sweeps go with --score)")
    from grok_tui.forecast.data import read_run
    from grok_tui.sweep.store import is_sweep

    text = args.paths[0]
    if is_sweep(Path(text)):
        raise UsageError(
            f"forecast {text!r}: a sweep, not a run; forecast one of its members ({Path(text) / 'members' / 'NAME'}), "
            f"or score the fit on it with {PROG} forecast --score {text}"
        )
    at = None
    if args.at is not None:
        try:
            at = int(args.at)
        except ValueError:
            raise UsageError(f"--at: {args.at!r} is not a step; expected an integer >= 0") from None
        if at < 0:
            raise UsageError(f"--at: {at} is not a step; expected an integer >= 0")
    try:
        config, rows = read_run(Path(text), lambda _, line: print(f"{PROG}: warning: {line}", file=sys.stderr))
    except RunDirError as e:
        raise UsageError(f"forecast {text!r}: {e}") from None
    kept = rows if at is None else [r for r in rows if int(r["step"]) <= at]
    if not rows:
        raise UsageError(f"forecast {text!r}: the run has no evaluation yet; a forecast needs at least one")
    if not kept:
        raise UsageError(
            f"forecast {text!r}: no evaluation at or before step {at}; its first is at step {rows[0]['step']:,}"
        )
    try:
        result = forecast(kept, config, fit)
    except FitError as e:
        raise UsageError(f"forecast {text!r}: {e}") from None
    print(json.dumps(result.to_json()))
    return 0


def _forecast_score(args: argparse.Namespace, fit: Any) -> int:
    from grok_tui.forecast.data import check_sweep, sweep_examples
    from grok_tui.forecast.score import held_out, score_all, table

    roots = [Path(text) for text in args.paths]
    for root in roots:
        problem = check_sweep(root)
        if problem:
            raise UsageError(f"forecast --score: {problem}")
    if args.at is not None:
        raise UsageError("forecast --score: --at goes with one RUN_DIR; a score forecasts at each forecast point")
    notices: list[str] = []
    examples, skipped = sweep_examples(roots, lambda _, line: notices.append(line))
    for line in dict.fromkeys(notices):
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    scores, notes = score_all(examples, fit)
    for line in notes:
        print(f"{PROG}: warning: not scored: {line}", file=sys.stderr)
    shown = len(held_out(examples, fit))
    print(
        f"{shown} members held out from the fit at their forecast point ({len(examples) - shown} fitted on, "
        f"left out); skipped: " + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
    )
    if not scores:
        raise UsageError("forecast --score: no held-out member with a forecast point in an experiment with a fit")
    print(table(scores))
    return 0


# The subcommands, each a function of its arguments (the rest of the command line is a run's flags).
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "forecast": _forecast,
    "watch": _watch,
    "attach": _attach,
    "ls": _ls,
    "stop": _stop,
    "sweep": _sweep,
    "run": _run_script,
}


def entry_point() -> None:
    sys.exit(main())
