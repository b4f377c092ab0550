"""The run every measurement trains: the same flags in every mode, and the config the CLI builds from them."""

from __future__ import annotations

from pathlib import Path


def run_flags(experiment: str, device: str, run_dir: Path) -> list[str]:
    """The same flags for every mode, so that all of them train the same configuration."""
    return ["--experiment", experiment, "--run-dir", str(run_dir), "--steps", "10000000", "--device", device]


def config_for(flags: list[str]):
    """The RunConfig the CLI would build from `flags`."""
    from grok_tui.cli import build_parser as cli_parser
    from grok_tui.cli import config_from_args

    return config_from_args(cli_parser().parse_args(flags))
