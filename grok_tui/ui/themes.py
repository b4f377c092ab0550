"""Themes: `.tcss` files in themes/, shipped inside the package as grok_tui.themes.

A theme file scopes every rule under `App.theme-NAME`, so all themes load at
start and switching is one class change on the App. Its first line names the
Textual base theme whose variables ($primary, $surface, ...) the built-in
widgets use: `/* textual-theme: textual-dark */`.
"""

from __future__ import annotations

import re
import sys
from importlib.resources import files
from pathlib import Path

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # Python 3.10 has it only here
    from importlib.abc import Traversable

DEFAULT_THEME = "dark"
_BASE = re.compile(r"textual-theme:\s*([\w-]+)")


def _theme_folder() -> Traversable:
    # A source checkout (or an editable install) reads the top-level themes/;
    # an installed wheel carries them as the package grok_tui.themes.
    source = Path(__file__).resolve().parents[2] / "themes"
    return source if source.is_dir() else files("grok_tui.themes")


def _theme_files() -> dict[str, Traversable]:
    folder = _theme_folder()
    return {f.name[: -len(".tcss")]: f for f in folder.iterdir() if f.name.endswith(".tcss")}


def available_themes() -> list[str]:
    names = sorted(_theme_files())
    # The default first, so cycling starts from it.
    return sorted(names, key=lambda n: n != DEFAULT_THEME)


def theme_css(name: str) -> str:
    return _theme_files()[name].read_text(encoding="utf-8")


def base_theme(name: str) -> str:
    match = _BASE.search(theme_css(name))
    return match.group(1) if match else "textual-dark"
