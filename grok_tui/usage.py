"""The argument parser every command line of grok-tui uses (`grok-tui` and its commands, the benchmark).

A wrong input is a UsageError: one line, which the command prints before exiting with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn


class UsageError(Exception):
    """One line for the user; the command prints it and exits with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with three of its habits undone, for every command at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: where a command lacks a flag, argparse took it for the start of a longer one
        # (`sweep --grokfast` was "ambiguous"), and each new flag would change what an abbreviation means.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        # Help texts are plain text, but argparse %-formats them: a "90%" in one crashed --help.
        if isinstance(kwargs.get("help"), str):
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        return super().parse_known_args(self._dash_values(list(sys.argv[1:] if args is None else args)), namespace)

    def _dash_values(self, argv: list[str]) -> list[str]:
        """Join `--flag -1,1` into `--flag=-1,1` where --flag takes one value.

        argparse reads a word that starts with '-' as a flag unless it is a plain negative number, so
        `--weight-decay -1,1` was "expected one argument" instead of the value rule's line. Our only
        short flag is -h: a word after such a flag that starts with one '-' and is no flag is its value.
        """
        out: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                return out + argv[i:]
            action = self._option_string_actions.get(arg)
            following = argv[i + 1] if i + 1 < len(argv) else ""
            if (
                action is not None
                and action.nargs is None
                and following[:1] == "-"
                and following[:2] != "--"
                and following not in self._option_string_actions
            ):
                out.append(f"{arg}={following}")
                i += 2
            else:
                out.append(arg)
                i += 1
        return out

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")
