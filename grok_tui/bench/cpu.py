"""CPU time per process, read from /proc: what the trainer, the UI and the rest of the machine take."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command line), for every process we can read."""
    table = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmdline)
    return table


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, ours or not)."""
    # The first line of /proc/stat: user nice system idle iowait irq softirq steal ... (in ticks).
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    busy = sum(ticks[0:3]) + sum(ticks[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds of a process tree, split into the training child and everything else (the UI).

    The trainer is the run's own process (`python -m grok_tui.runner`, which the monitor starts;
    a multiprocessing "spawn" child in older versions); a resource tracker is left out;
    `script`, which copies the app's output into the typescript, is "pty".
    `extra` names single processes counted on their own (the tmux server). "others" is
    the rest of the machine: on a shared 2-core box a test suite running beside the
    benchmark takes a core from someone, and the figures mean little without knowing it.
    """

    def __init__(self, root: int, root_label: str = "ui", extra: dict[str, int] | None = None):
        self.root, self.root_label, self.extra = root, root_label, extra or {}
        self.available = Path("/proc/self/stat").exists()
        self.start: tuple[float, dict[str, float]] | None = None
        self.cores: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        totals = {self.root_label: 0.0}
        stack = [self.root]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, []))
            if pid not in table:
                continue
            _, cpu, cmdline = table[pid]
            if "resource_tracker" in cmdline:
                continue
            trainer = "grok_tui.runner" in cmdline or "spawn_main" in cmdline
            label = "trainer" if trainer else "pty" if cmdline.startswith("script ") else self.root_label
            totals[label] = totals.get(label, 0.0) + cpu
        for label, pid in self.extra.items():
            totals[label] = table[pid][1] if pid in table else 0.0
        totals["others"] = _machine_busy_s() - sum(totals.values())
        return totals

    def begin(self) -> None:
        if self.available and self.start is None:
            self.start = (time.monotonic(), self.sample())

    def end(self) -> None:
        if self.available and self.start is not None and not self.cores:
            wall = time.monotonic() - self.start[0]
            if wall > 0:
                now = self.sample()
                before = self.start[1]
                self.cores = {label: max(0.0, now.get(label, 0.0) - cpu) / wall for label, cpu in before.items()}

    def describe(self) -> str:
        if not self.cores:
            return ""
        return "cores: " + ", ".join(f"{label} {value:.2f}" for label, value in self.cores.items())
