"""Every key of the monitors, named once, as Textual Bindings.

A binding carries what each place that shows a key needs: the footer's short
label (`description`) and whether the footer shows it (`show`), how the key is
written (`key_display`), and the sentence the help screen and the command
palette show (`tooltip`). A screen's keys are a list of these names, in the
order help lists them.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding


def key(name: str, action: str, label: str, description: str, *, display: str | None = None, show: bool = True):
    """A key: `label` in the footer (where `show`), `description` in help and the palette."""
    return Binding(name, action, label, show=show, key_display=display or name, tooltip=description)


def rows(bindings: Iterable[Binding]) -> list[tuple[str, str]]:
    """(key as written, what it does) for the help screen."""
    return [(b.key_display or b.key, b.tooltip) for b in bindings]


# ---- both monitors ----------------------------------------------------------------------------------

THEME = key("t", "app.cycle_theme", "theme", "Switch theme", show=False)
HELP = key("question_mark", "help", "help", "Show every key", display="?")

# ---- the run monitor (ui/screens/run.py) --------------------------------------------------------------

WEIGHT_DECAY_UP = key("right_square_bracket", "scale('weight_decay', 2)", "wd×2", "Weight decay ×2", display="]")
WEIGHT_DECAY_DOWN = key("left_square_bracket", "scale('weight_decay', 0.5)", "wd÷2", "Weight decay ÷2", display="[")
WEIGHT_DECAY_SET = key("w", "ask('weight_decay')", "set wd", "Type an exact weight decay")
LR_UP = key("right_curly_bracket", "scale('lr', 2)", "lr×2", "Learning rate ×2", display="}", show=False)
LR_DOWN = key("left_curly_bracket", "scale('lr', 0.5)", "lr÷2", "Learning rate ÷2", display="{", show=False)
LR_SET = key("l", "ask('lr')", "set lr", "Type an exact learning rate")
PAUSE = key("space", "toggle_pause", "pause", "Pause or resume training")
RESTART = key(
    "r", "restart", "new seed", "Restart with a new seed (in a new run directory); the old run stays as a faded ghost"
)
LOG_X = key("g", "log_x", "log-x", "Toggle a log-scale step axis")
MATRIX = key("m", "cycle_matrix", "matrix", "Cycle the weight matrix shown")
SORT = key("f", "sort_neurons", "sort", "Sort neurons by dominant frequency")
EMBEDDING = key(
    "e",
    "cycle_projection",
    "axes",
    "Cycle the embedding pane's axes: the dominant frequency's cos/sin, the top two PCs, those PCs held from now",
    show=False,  # the footer is full at 120 columns; the pane's own border names the key
)
UNGROK = key("u", "ungrok", "ungrok", "Ungrok: train on a small subset (again: restore the full set)", show=False)
HOLD_NORM = key(
    "n", "constrain_norm", "fix norm", "Hold the weight norm at its current value (again: release)", show=False
)
SET_NORM = key("N", "ask_norm", "set norm", "Hold the weight norm at a typed value", show=False)
GROKFAST = key("a", "grokfast", "grokfast", "Grokfast: amplify slow gradients (EMA filter) on / off", show=False)
CHECKPOINT = key("c", "checkpoint", "ckpt", "Save a checkpoint now", show=False)
EXPORT_CSV = key("x", "export_csv", "csv", "Export the metrics to CSV (in the run directory)", show=False)
SCREENSHOT = key("s", "screenshot_svg", "svg", "Save an SVG screenshot (in the run directory)", show=False)
QUIT = key("q", "quit_app", "quit", "Quit: stop training and flush the run directory")
DETACH = key("d", "detach", "detach", "Detach: leave the run training in the background (grok-tui attach reopens it)")
# A watched run that kept the history of its views (RUN/replay.npz): its recorded steps, one by one. Not in the
# footer (it is full); the status line names them where a replay is there.
REPLAY_BACK = key("left", "replay(-1)", "back", "Replay: the views one recorded step back", display="←", show=False)
REPLAY_ON = key("right", "replay(1)", "on", "Replay: the views one recorded step on", display="→", show=False)
REPLAY_BACK_FAR = key("shift+left", "replay(-10)", "back 10", "Replay: ten recorded steps back", show=False)
REPLAY_ON_FAR = key("shift+right", "replay(10)", "on 10", "Replay: ten recorded steps on", show=False)
REPLAY_FIRST = key("home", "replay_first", "first", "Replay: the first recorded step", show=False)
REPLAY_END = key("end", "replay_end", "now", "Replay: back to the run as it is now (the newest frame)", show=False)
REPLAY_KEYS = [REPLAY_BACK, REPLAY_ON, REPLAY_BACK_FAR, REPLAY_ON_FAR, REPLAY_FIRST, REPLAY_END]
# Over a sweep's member, opened from the map: back to the map, which kept its place.
BACK = key("escape", "back", "back", "Back to the sweep's map (q too)", display="esc")

RUN_KEYS = [
    BACK,  # first, so the footer over a member shows the way back before anything else
    WEIGHT_DECAY_UP,
    WEIGHT_DECAY_DOWN,
    WEIGHT_DECAY_SET,
    LR_UP,
    LR_DOWN,
    LR_SET,
    PAUSE,
    RESTART,
    LOG_X,
    MATRIX,
    SORT,
    EMBEDDING,
    *REPLAY_KEYS,
    UNGROK,
    HOLD_NORM,
    SET_NORM,
    GROKFAST,
    CHECKPOINT,
    EXPORT_CSV,
    SCREENSHOT,
    THEME,
    HELP,
    QUIT,
    DETACH,
]

# ---- the sweep monitor (ui/screens/sweep.py) ----------------------------------------------------------

OPEN_MEMBER = key("enter", "open_member", "open", "Open the chosen member of the cell in the ordinary monitor")
SWEEP_SCREENSHOT = key("s", "screenshot_svg", "svg", "Save an SVG screenshot (in the sweep directory)")
SWEEP_LOG_X = key("g", "log_x", "log-x", "Toggle a log-scale step axis on the curves", show=False)
SWEEP_QUIT = key("q", "quit_app", "quit", "Quit: stop the sweep if this monitor started it, and close")
SWEEP_DETACH = key("d", "detach", "detach", "Detach: leave the sweep training (grok-tui watch SWEEP_DIR reopens it)")

SWEEP_KEYS = [OPEN_MEMBER, SWEEP_SCREENSHOT, SWEEP_LOG_X, THEME, HELP, SWEEP_QUIT, SWEEP_DETACH]
# The phase map's own keys (ui/panes/phase_map.py), for the help screen.
MAP_KEYS = [
    ("arrows", "Move the cursor over the map (up: larger values of the second axis)"),
    ("m", "Choose the next member of the cell: enter opens it (the first, until m is pressed)"),
]
