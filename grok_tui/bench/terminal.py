"""The app in a real terminal: a private tmux session of a given size, under `script`, which keeps
every byte the app writes (what an SSH link would carry); its training speed, CPU and bytes per second."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from grok_tui.bench.cpu import CpuSampler
from grok_tui.bench.experiment import run_flags
from grok_tui.bench.rates import POLL_S, START_TIMEOUT_S, Rate, WindowError, WindowWatch, rate_from_rows, read_rows

QUIT_TIMEOUT_S = 20.0
# Bytes written while paused or finished: counted over IDLE_WINDOW_S, once the last frame has reached
# every pane (the slowest redraws every `inspection` seconds) and IDLE_SETTLE_S more have passed.
# The finished run trains FINISHED_STEPS steps.
IDLE_SETTLE_S = 0.5
IDLE_WINDOW_S = 3.0
FINISHED_STEPS = 200
# The app starts in the checkout this file is in (at grok_tui/bench/terminal.py).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ByteCounter:
    """Bytes written to a terminal over a window, read from the typescript `script -f` keeps of it."""

    def __init__(self, typescript: Path):
        self.typescript = typescript
        self.start: tuple[float, int] | None = None
        self.per_s: float | None = None

    def _size(self) -> int:
        return self.typescript.stat().st_size if self.typescript.exists() else 0

    def begin(self) -> None:
        if self.start is None:
            self.start = (time.monotonic(), self._size())

    def end(self) -> None:
        if self.start is not None and self.per_s is None:
            wall = time.monotonic() - self.start[0]
            self.per_s = (self._size() - self.start[1]) / wall if wall > 0 else None


class Tmux:
    """A private tmux server (its own socket, in the benchmark's temporary directory, so it goes
    with it), so that nothing of the user's tmux is touched."""

    def __init__(self, workdir: Path):
        self.conf = workdir / "tmux.conf"
        # remain-on-exit: a crashed app leaves its screen and exit status to read.
        # status off: the status line would take one of the terminal's rows.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\nset -g default-terminal tmux-256color\n")
        self.base = ["tmux", "-S", str(workdir / "tmux.sock"), "-f", str(self.conf)]

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def show(self, target: str, fmt: str) -> str:
        return self("display-message", "-p", "-t", target, fmt).strip()

    def pane_exit(self, target: str) -> int | None:
        """The app's exit status once it has ended, else None."""
        dead, _, status = self.show(target, "#{pane_dead} #{pane_dead_status}").partition(" ")
        return int(status or 0) if dead == "1" else None

    def screen_tail(self, target: str, lines: int = 3) -> str:
        text = [line.strip() for line in self("capture-pane", "-p", "-t", target, check=False).splitlines()]
        return " | ".join([line for line in text if line][-lines:])

    def kill_server(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True, timeout=10)


def app_command() -> list[str]:
    """`grok-tui` from this interpreter's environment (python -m grok_tui where the script is missing)."""
    script = Path(sys.executable).with_name("grok-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "grok_tui"]


class Terminal:
    """The app in a detached tmux session of a given size, under `script`, which keeps a typescript
    of every byte the app writes to its terminal (what an SSH link would carry)."""

    def __init__(self, workdir: Path, name: str, size: tuple[int, int], app_flags: list[str], refresh: float | None):
        self.tmux, self.target = Tmux(workdir), "bench"
        self.cadence = cadence(refresh)
        self.typescript = workdir / f"{name}.typescript"
        app = shlex.join(app_command() + app_flags + (["--refresh", f"{refresh:g}"] if refresh else []))
        # -e: the session ends with the app's exit status; -f: every write reaches the file at once.
        self.command = shlex.join(["script", "-q", "-f", "-e", "-c", app, str(self.typescript)])
        self.size = size

    def __enter__(self) -> Terminal:
        width, height = self.size
        # COLORTERM: a modern terminal takes 24-bit colour, the dearer escape sequences.
        self.tmux(
            "new-session",
            "-d",
            "-s",
            self.target,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(PROJECT_ROOT),
            "-e",
            "COLORTERM=truecolor",
            self.command,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.tmux.kill_server()

    def cpu(self) -> CpuSampler:
        return CpuSampler(
            int(self.tmux.show(self.target, "#{pane_pid}")), extra={"tmux": int(self.tmux.show(self.target, "#{pid}"))}
        )

    def ended(self) -> int | None:
        return self.tmux.pane_exit(self.target)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.target, *keys)

    def screen_tail(self) -> str:
        return self.tmux.screen_tail(self.target)

    def real_size(self) -> str:
        return self.tmux.show(self.target, "#{pane_width}x#{pane_height}")

    def quit(self) -> int | None:
        self.keys("q")
        return wait_for_exit(self.ended)

    def idle(self) -> tuple[float | None, dict[str, float]]:
        """Bytes per second and CPU cores over IDLE_WINDOW_S, once the last frame is on the screen."""
        time.sleep(self.cadence.inspection + IDLE_SETTLE_S)
        counter, cpu = ByteCounter(self.typescript), self.cpu()
        counter.begin()
        cpu.begin()
        time.sleep(IDLE_WINDOW_S)
        counter.end()
        cpu.end()
        return counter.per_s, cpu.cores


def cadence(refresh: float | None):
    """The monitor's redraw intervals for a --refresh (None: its default)."""
    from grok_tui.ui.pacing import Cadence

    return Cadence.for_refresh(refresh) if refresh else Cadence.for_refresh()


def measure_tmux(
    experiment: str, device: str, seconds: float, size: tuple[int, int], workdir: Path, refresh: float | None = None
) -> Rate:
    """Training speed, CPU and bytes to the terminal over the window; then bytes and CPU while paused."""
    mode = f"monitor (tmux {size[0]}x{size[1]})"
    if shutil.which("tmux") is None or shutil.which("script") is None:
        return Rate(mode, size=size, notes=["skipped: tmux or script is not installed"])
    name = f"tmux-{device}-{size[0]}x{size[1]}"
    run_dir = workdir / name
    with Terminal(workdir, name, size, run_flags(experiment, device, run_dir), refresh) as term:
        cpu, counter = term.cpu(), ByteCounter(term.typescript)
        watch = WindowWatch(run_dir, seconds, cpu, counter)
        try:
            while not watch.done():
                if term.ended() is not None:
                    raise WindowError("the app ended before the window was covered")
                time.sleep(POLL_S)
        except WindowError as e:
            return Rate(mode, size=size, notes=[f"{e}; screen: {term.screen_tail()}"])
        real_size = term.real_size()
        term.keys("space")
        paused, idle_cores = term.idle()
        code = term.quit()
    rate = rate_from_rows(mode, read_rows(run_dir), seconds)
    rate.size, rate.idle_cores = size, idle_cores
    rate.bytes_per_s = {"training": counter.per_s, "paused": paused}
    rate.notes.append(f"{real_size} terminal")
    rate.add_cpu(cpu)
    if code != 0:
        rate.notes.append("the app did not quit on q" if code is None else f"app exit status {code}")
    return rate


def measure_finished(
    experiment: str, device: str, size: tuple[int, int], workdir: Path, refresh: float | None = None
) -> float | None:
    """Bytes per second to the terminal once a short run has finished (its last frame shown)."""
    if shutil.which("tmux") is None or shutil.which("script") is None:
        return None
    name = f"finished-{device}-{size[0]}x{size[1]}"
    run_dir = workdir / name
    flags = run_flags(experiment, device, run_dir) + ["--steps", str(FINISHED_STEPS)]
    with Terminal(workdir, name, size, flags, refresh) as term:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (
            not (run_dir / "metrics.jsonl").exists()
            or max((r.get("step", 0) for r in read_rows(run_dir)), default=0) < FINISHED_STEPS
        ):
            if time.monotonic() > deadline or term.ended() is not None:
                raise WindowError(f"the run did not finish; screen: {term.screen_tail()}")
            time.sleep(POLL_S)
        finished, _ = term.idle()
        term.quit()
    return finished


def wait_for_exit(exit_code: Callable[[], int | None]) -> int | None:
    deadline = time.monotonic() + QUIT_TIMEOUT_S
    while time.monotonic() < deadline:
        code = exit_code()
        if code is not None:
            return code
        time.sleep(POLL_S)
    return None
