"""The phase diagram of a sweep, live: one cell per value pair of the first two axes.

The first axis runs across (its values label the columns), the second up (larger
values higher, as a plot reads); every other axis, seeds included, splits a cell
into one block per member, in member (axis) order. A block takes its phase's
colour once the phase is decided, and until then a shade of the undecided ramp:
by its forecast once its train accuracy has fitted (forecast/live.py: the
probability that it generalizes, dim near 0, bright near 1), so the map reads out
its phases before they happen; before that, or for an experiment the forecaster has
no fit for, by its test accuracy. Every block carries its phase letter (sweep/text.py
LETTERS), or the letter of the phase its forecast expects in lower case (g, m), so the
map reads on a monochrome terminal too. A member `--prune` ended has no phase: its block
is struck through, `p`, grey.

The pane draws from a frozen copy of the numbers it shows (`show` takes it), so
the sweep's follower may go on reading in a thread while the pane is on screen;
it repaints only when that copy or the cursor changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from grok_tui.forecast.live import Outlook
from grok_tui.sweep.grid import Axis, value_text
from grok_tui.sweep.phases import PHASES
from grok_tui.sweep.store import SweepView
from grok_tui.sweep.text import LETTERS, cell_of, map_axes
from grok_tui.ui.panes.lean import LeanLines

# The member `enter` opens, within the selected cell: marked by shape, whatever the theme's colours.
CHOSEN = Style(bold=True, underline=True)
# Shades of the undecided ramp (a forecast's probability, or test accuracy, 0 to 1), each a component class
# the themes colour.
RAMP = 5
# The letter a forecast block carries: the phase it expects (a run that fits and generalizes later groks).
FORECAST_LETTERS = {True: LETTERS["grokking"].lower(), False: LETTERS["memorization"].lower()}


@dataclass(frozen=True)
class Block:
    """What the map shows of one member: frozen, so drawing never races the follower."""

    name: str
    values: tuple[tuple[str, Any], ...]  # (axis short name, value) for the axes past the first two
    phase: str | None
    test_acc: float | None
    finished: bool
    forecast: Outlook | None = None  # what it is expected to become, while undecided and after its fit


Cell = tuple[Any, Any]  # (x value, y value); None where there is no such axis


def cell_key(axes: Sequence[Axis], values: dict[str, Any]) -> Cell:
    return cell_of(axes, values)


def ramp_level(test_acc: float | None) -> int:
    if test_acc is None or not math.isfinite(test_acc):
        return 0
    return min(RAMP - 1, max(0, int(test_acc * RAMP)))


def block_layout(count: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(columns, block width, block height, gap) for `count` blocks in a width x height cell: the
    layout whose blocks come nearest to square (a terminal cell is about twice as tall as wide)."""
    best: tuple[float, int, int, int, int] | None = None
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        if rows > height and cols < count:
            continue
        gap = 1 if width - (cols - 1) >= cols * 2 else 0
        bw = (width - (cols - 1) * gap) // cols
        bh = max(1, height // rows)
        if bw < 1:
            break
        score = min(bw, 2 * bh) + 0.01 * bw  # a wider block reads better than a taller one
        if best is None or score > best[0]:
            best = (score, cols, bw, bh, gap)
    if best is None:  # more blocks than columns: one column each, as many as fit
        return count, 1, 1, 0
    return best[1], best[2], best[3], best[4]


class PhaseMapPane(LeanLines, Widget, can_focus=True):
    """The phase map; arrows move the cursor, `m` picks a member within the cell."""

    COMPONENT_CLASSES = (
        {f"phase-map--{phase}" for phase in (*PHASES, "pruned", "failed")}
        | {f"phase-map--ramp-{i}" for i in range(RAMP)}
        | {"phase-map--label", "phase-map--cursor", "phase-map--dim"}
    )
    # Fallbacks for an app without the theme files; every theme in themes/ sets its own.
    DEFAULT_CSS = """
    PhaseMapPane { height: 1fr; width: 1fr; border: round $primary-darken-2; padding: 0 1; }
    PhaseMapPane > .phase-map--comprehension { background: green; color: black; }
    PhaseMapPane > .phase-map--grokking { background: magenta; color: black; }
    PhaseMapPane > .phase-map--semi-grokking { background: yellow; color: black; }
    PhaseMapPane > .phase-map--memorization { background: darkorange; color: black; }
    PhaseMapPane > .phase-map--confusion { background: red; color: black; }
    PhaseMapPane > .phase-map--failed { background: black; color: red; text-style: bold; }
    PhaseMapPane > .phase-map--pruned { background: #383838; color: silver; text-style: strike; }
    PhaseMapPane > .phase-map--ramp-0 { background: #202020; color: gray; }
    PhaseMapPane > .phase-map--ramp-1 { background: #303840; color: white; }
    PhaseMapPane > .phase-map--ramp-2 { background: #405060; color: white; }
    PhaseMapPane > .phase-map--ramp-3 { background: #506880; color: white; }
    PhaseMapPane > .phase-map--ramp-4 { background: #6080a0; color: white; }
    PhaseMapPane > .phase-map--label { color: gray; }
    PhaseMapPane > .phase-map--cursor { color: white; text-style: bold reverse; }
    PhaseMapPane > .phase-map--dim { color: gray; }
    """
    BINDINGS = [
        Binding("left", "move(-1, 0)", "move", key_display="←↑↓→"),
        Binding("right", "move(1, 0)", "→", show=False),
        Binding("up", "move(0, 1)", "↑", show=False),
        Binding("down", "move(0, -1)", "↓", show=False),
        Binding("m", "choose", "member", tooltip="Pick the next member of the cell (enter opens it)"),
    ]

    class Selected(Message):
        """The cursor moved to another cell, or another member of it was chosen."""

        def __init__(self, cell: Cell, chosen: int) -> None:
            super().__init__()
            self.cell, self.chosen = cell, chosen

    def __init__(self, axes: Sequence[Axis], names: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("pane")
        self.axes = tuple(axes)
        self.x_axis, self.y_axis, self.rest = map_axes(self.axes)
        self.xs: tuple[Any, ...] = self.x_axis.values if self.x_axis else (None,)
        self.ys: tuple[Any, ...] = self.y_axis.values if self.y_axis else (None,)
        self.blocks: dict[Cell, list[Block]] = {}
        self.cursor = (0, len(self.ys) - 1)  # (column, row) indices into xs and ys: the top left cell
        self.chosen = 0  # which member of the cell `enter` opens
        self._names = list(names)
        title = f"phases: {self.x_axis.short} →" if self.x_axis else "phases"
        if self.y_axis:
            title += f", {self.y_axis.short} ↑"
        self.border_title = title
        if self.rest:
            self.border_subtitle = "a block per " + " × ".join(a.short for a in self.rest)

    # ---- data ------------------------------------------------------------------------------

    def show(self, view: SweepView, forecasts: Mapping[str, Outlook] | None = None) -> bool:
        """Take the sweep as it is now, and the forecasts of its undecided members (by name); repaint (and
        say so) only if what the map shows changed."""
        forecasts = forecasts or {}
        blocks: dict[Cell, list[Block]] = {}
        for m in view.members:
            values = m.member.values
            block = Block(
                m.name,
                tuple((a.short, values.get(a.field)) for a in self.rest),
                m.phase,
                m.test_acc,
                m.finished,
                forecasts.get(m.name) if m.phase is None else None,
            )
            blocks.setdefault(cell_key(self.axes, values), []).append(block)
        if blocks == self.blocks:
            return False
        self.blocks = blocks
        self.refresh()
        return True

    @property
    def cell(self) -> Cell:
        return (self.xs[self.cursor[0]], self.ys[self.cursor[1]])

    def cell_blocks(self, cell: Cell | None = None) -> list[Block]:
        return self.blocks.get(self.cell if cell is None else cell, [])

    def select(self, cell: Cell, chosen: int = 0) -> None:
        """Put the cursor on `cell` (a cell of this map; others are ignored)."""
        if cell[0] in self.xs and cell[1] in self.ys:
            self.cursor = (self.xs.index(cell[0]), self.ys.index(cell[1]))
            self.chosen = chosen
            self.refresh()

    def describe(self, cell: Cell | None = None) -> str:
        """The cell's values in words: `wd=0.1, frac=0.3`."""
        x, y = self.cell if cell is None else cell
        parts = [f"{a.short}={value_text(v)}" for a, v in ((self.x_axis, x), (self.y_axis, y)) if a is not None]
        return ", ".join(parts) or "the sweep"

    # ---- keys ------------------------------------------------------------------------------

    def action_move(self, dx: int, dy: int) -> None:
        x = min(max(self.cursor[0] + dx, 0), len(self.xs) - 1)
        y = min(max(self.cursor[1] + dy, 0), len(self.ys) - 1)
        if (x, y) != self.cursor:
            self.cursor, self.chosen = (x, y), 0
            self.refresh()
            self.post_message(self.Selected(self.cell, self.chosen))

    def action_choose(self) -> None:
        count = len(self.cell_blocks())
        if count > 1:
            self.chosen = (self.chosen + 1) % count
            self.refresh()
            self.post_message(self.Selected(self.cell, self.chosen))

    # ---- drawing ---------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"phase-map--{name}")

    def block_style(self, block: Block) -> Style:
        if block.phase is not None:
            return self._style(block.phase)
        shade = block.test_acc if block.forecast is None else block.forecast.p_generalize
        return self._style(f"ramp-{ramp_level(shade)}")

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if width <= 0 or height <= 0:
            return Text()
        return Text("\n").join(self.lines(width, height))

    def lines(self, width: int, height: int) -> list[Text]:
        """The map in `width` x `height` cells: column labels, the grid, the selected cell, the legend."""
        label, cursor = self._style("label"), self._style("cursor")
        info = self._info(width)
        # The legend in full if it fits below the smallest grid, else its letters alone, else nothing.
        spare = height - 1 - len(self.ys) - len(info)
        legend = self._legend(width, full=True)
        if len(legend) > spare:
            legend = self._legend(width, full=False)[: max(0, spare)]
        pitch = max(1, (height - 1 - len(info) - len(legend)) // len(self.ys))
        cell_h = pitch - 1 if pitch >= 2 else pitch  # a blank line between rows where there is room
        y_labels = [len(value_text(y)) for y in self.ys if y is not None]
        y_w = max([*y_labels, len(self.y_axis.short) if self.y_axis else 0])
        col_w = max(3, (width - y_w - 1) // len(self.xs))
        inner = col_w - 2  # one column each side for the cursor's brackets
        count = max((len(b) for b in self.blocks.values()), default=1)
        layout = block_layout(count, inner, cell_h)
        cols, bw, _, gap = layout
        used = min(inner, cols * bw + (cols - 1) * gap)
        left = (inner - used) // 2
        lines = []
        # Column labels, the second axis's name in the corner.
        corner = self.y_axis.short if self.y_axis else ""
        header = Text(f"{corner:>{y_w}} ", style=label)
        for i, x in enumerate(self.xs):
            text = value_text(x) if x is not None else ""
            header.append(f"{text[:col_w]:^{col_w}}", style=cursor if i == self.cursor[0] else label)
        lines.append(header)
        for row, y in enumerate(reversed(self.ys)):  # larger values up
            iy = len(self.ys) - 1 - row
            for r in range(pitch):
                line = Text()
                name = value_text(y) if (y is not None and r == (cell_h - 1) // 2) else ""
                line.append(f"{name:>{y_w}} ", style=cursor if (iy == self.cursor[1] and name) else label)
                for ix, x in enumerate(self.xs):
                    here = (ix, iy) == self.cursor
                    if r >= cell_h:
                        line.append(" " * col_w)
                        continue
                    line.append("[" if here else " ", style=cursor if here else "")
                    line.append(" " * left)
                    line.append_text(self._cell_row(self.cell_blocks((x, y)), r, layout, used, here))
                    line.append(" " * (inner - used - left))
                    line.append("]" if here else " ", style=cursor if here else "")
                line.truncate(width)
                lines.append(line)
        lines = lines[: max(1, height - len(info) - len(legend))]
        return [*lines, *info, *legend][:height]

    def _cell_row(self, blocks: list[Block], r: int, layout: tuple[int, int, int, int], used: int, here: bool) -> Text:
        """Row `r` of a cell: its blocks in rows of `cols`, each bw x bh with its letter in the middle."""
        cols, bw, bh, gap = layout
        text = Text()
        band, within = divmod(r, bh)
        if not blocks or band * cols >= len(blocks):
            text.append(" " * used)
            return text
        mid = (bh - 1) // 2
        for c in range(cols):
            i = band * cols + c
            if c:
                text.append(" " * gap)
            if i >= len(blocks):
                text.append(" " * bw)
                continue
            block = blocks[i]
            style = self.block_style(block)
            if here and i == self.chosen and len(blocks) > 1:
                style += CHOSEN
            mark = ""
            if within == mid:
                mark = LETTERS.get(block.phase, "?")
                if block.phase is None and block.forecast is not None:
                    mark = FORECAST_LETTERS[block.forecast.groks]
                elif block.phase is None:
                    acc = block.test_acc
                    mark = f"{min(acc, 0.99):.0%}" if acc is not None and bw >= 3 else "·"
            text.append(f"{mark[:bw]:^{bw}}", style=style)
        text.truncate(used)  # more members than columns: those that fit
        return text

    def _info(self, width: int) -> list[Text]:
        """The selected cell: its values, and each member's phase or test accuracy."""
        blocks = self.cell_blocks()
        text = Text.assemble((f"▶ {self.describe()}:", self._style("cursor")), " ")
        for i, block in enumerate(blocks):
            if i:
                text.append("  ")
            who = " ".join(f"{short}={value_text(v)}" for short, v in block.values)
            acc = f"{block.test_acc:.0%}" if block.test_acc is not None else "–"
            what = block.phase or f"test {acc}"
            if block.forecast is not None:
                what += f", {block.forecast.text}"
            style = CHOSEN if i == self.chosen and len(blocks) > 1 else Style()
            text.append(f"{who + ' ' if who else ''}{what}", style=style)
        if not blocks:
            text.append("no members", style=self._style("dim"))
        text.truncate(width, overflow="ellipsis")
        return [text]

    def _legend(self, width: int, full: bool) -> list[Text]:
        """The phase colours with their letters, and what the shades of the undecided mean."""
        items = [
            Text.assemble((f" {LETTERS[p]} ", self._style(p)), (f" {p if full else ''}", self._style("label")))
            for p in PHASES
        ]
        if any(b.phase == "pruned" for blocks in self.blocks.values() for b in blocks):  # --prune ended them
            mark = f" {LETTERS['pruned']} "
            items.append(
                Text.assemble((mark, self._style("pruned")), (" pruned" if full else "", self._style("label")))
            )
        forecast = any(b.forecast is not None for blocks in self.blocks.values() for b in blocks)
        if forecast:  # the undecided that have fitted are shaded by their forecast
            words = " undecided: forecast p(groks) 0→1 (g, m), test acc before" if full else " p(groks)"
        else:
            words = " undecided: test acc 0→1" if full else " test acc"
        ramp = Text.assemble(*((" ", self._style(f"ramp-{i}")) for i in range(RAMP)), (words, self._style("label")))
        items.append(ramp)
        rows, line = [], Text()
        for item in items:
            if line.cell_len and line.cell_len + 1 + item.cell_len > width:
                rows.append(line)
                line = Text()
            if line.cell_len:
                line.append(" ")
            line.append_text(item)
        rows.append(line)
        for row in rows:
            row.truncate(width)
        return rows


__all__ = ["Block", "PhaseMapPane", "RAMP", "block_layout", "cell_key", "ramp_level"]
