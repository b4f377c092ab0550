"""What a run process takes from its machine: CPU and memory, and on an NVIDIA GPU the GPU's load.

The monitor may be on another box than the run, so the run process samples its
own figures and they travel in its frames (`Snapshot.system`); `grok-tui ls`
and `watch` of a live run on this box sample the same figures from outside, by
the pid in process.json. A sample costs some tens of microseconds (psutil reads
/proc, NVML asks the driver) and is taken at most once a second, so it takes
nothing measurable from training (`python -m grok_tui.bench --system`).

NVML is optional at run time: without an NVIDIA driver (a laptop, this CI box)
the GPU figures are None and nothing shows for them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import psutil

# A figure a second is as often as a person reads one; nvitop refreshes at the same rate.
SAMPLE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class SystemStats:
    """One sample of one process: what it costs its machine."""

    cpu_percent: float | None  # of one core, as top counts it (two busy cores: 200); None until a second sample
    rss_bytes: int
    gpu_percent: float | None = None  # the utilization of the GPU the process uses
    gpu_used_bytes: int | None = None  # memory in use on that GPU, by every process on it
    gpu_total_bytes: int | None = None

    def describe(self) -> str:
        """The figures in a few words: `cpu 97% mem 412M  gpu 45% mem 3.1G/80G`."""
        cpu = "" if self.cpu_percent is None else f"cpu {self.cpu_percent:.0f}% "
        words = f"{cpu}mem {_size(self.rss_bytes)}"
        if self.gpu_percent is not None and self.gpu_used_bytes is not None and self.gpu_total_bytes:
            words += f"  gpu {self.gpu_percent:.0f}% mem {_size(self.gpu_used_bytes)}/{_size(self.gpu_total_bytes)}"
        return words


def _size(n: int) -> str:
    """Bytes as top and nvitop show them: 412M, 3.1G, 80G."""
    value = float(n)
    for suffix in "BKMGT":
        if value < 1024 or suffix == "T":
            break
        value /= 1024
    return (f"{value:.1f}" if value < 10 and suffix in "GT" else f"{value:.0f}") + suffix


class Nvml:
    """The NVIDIA driver's view of its GPUs, or nothing where there is none.

    `module` is pynvml or anything with its names (the tests' fake, on a box with no GPU).
    """

    def __init__(self, module: Any = None):
        self._nvml: Any = None
        try:
            if module is None:
                import pynvml as module  # type: ignore[no-redef]
            module.nvmlInit()
        except Exception:  # no package, no driver, no GPU: NVMLError and ImportError alike mean "none here"
            return
        self._nvml = module

    @property
    def present(self) -> bool:
        return self._nvml is not None

    def gpu_of(self, pids: Collection[int], uuid: str | None = None) -> Any:
        """The handle of the GPU one of `pids` computes on, found by pid or else by the device's UUID;
        None if none.

        By pid first: a process looking from outside knows no UUID. In a container NVML sees the
        host's pids, which is why the run process also names its device.
        """
        if self._nvml is None:
            return None
        nvml = self._nvml
        with contextlib.suppress(Exception):
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                if any(p.pid in pids for p in _processes(nvml, handle)):
                    return handle
        if uuid:
            with contextlib.suppress(Exception):
                return nvml.nvmlDeviceGetHandleByUUID(uuid)
        return None

    def figures(self, handle: Any) -> tuple[float, int, int] | None:
        """The GPU's utilization (%), memory used and memory total (bytes); None if the driver will not say."""
        if self._nvml is None or handle is None:
            return None
        try:
            rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            return float(rates.gpu), int(memory.used), int(memory.total)
        except Exception:  # a GPU gone, or a call this driver lacks: no figure rather than no monitor
            return None


def _processes(nvml: Any, handle: Any) -> Iterable[Any]:
    return nvml.nvmlDeviceGetComputeRunningProcesses(handle) or []


class SystemSampler:
    """Samples one process's figures, at most once every `interval` seconds; in between, the last sample."""

    def __init__(
        self,
        pid: int,
        gpu_uuid: str | None = None,
        nvml: Nvml | None = None,
        interval: float = SAMPLE_INTERVAL_S,
        clock: Any = time.monotonic,
        with_children: bool = False,
    ):
        self.pid = pid
        self.interval = interval
        self.with_children = with_children  # a sweep's driver: its workers do the training
        self._clock = clock
        self._process = psutil.Process(pid)
        self._children: dict[int, psutil.Process] = {}
        self._nvml = nvml if nvml is not None else Nvml()
        self._gpu_uuid = gpu_uuid
        self._gpu: Any = None
        self._last: SystemStats | None = None
        self._at = -float("inf")
        self._primed = False

    def sample(self) -> SystemStats | None:
        """The newest figures; None once the process has ended (or cannot be read)."""
        now = self._clock()
        if now - self._at < self.interval:
            return self._last
        self._at = now
        try:
            with self._process.oneshot():
                # The first call only starts psutil's CPU clock: it has no interval to measure over.
                cpu = self._process.cpu_percent(interval=None)
                rss = self._process.memory_info().rss
        except psutil.Error:
            self._last = None
            return None
        if self.with_children:
            child_cpu, child_rss = self._children_figures()
            cpu, rss = cpu + child_cpu, rss + child_rss
        cpu_percent = cpu if self._primed else None
        self._primed = True
        if self._gpu is None:  # a run's GPU is fixed: found once, after its first CUDA call
            self._gpu = self._nvml.gpu_of({self.pid, *self._children}, self._gpu_uuid)
        gpu = self._nvml.figures(self._gpu)
        self._last = SystemStats(cpu_percent, rss, *(gpu if gpu else (None, None, None)))
        return self._last

    def _children_figures(self) -> tuple[float, int]:
        """The children's CPU and memory; a child first seen now counts from its next sample."""
        with contextlib.suppress(psutil.Error):
            now = {child.pid: child for child in self._process.children(recursive=True)}
            self._children = {pid: self._children.get(pid, child) for pid, child in now.items()}
        cpu, rss = 0.0, 0
        for child in self._children.values():
            with contextlib.suppress(psutil.Error), child.oneshot():
                cpu += child.cpu_percent(interval=None)
                rss += child.memory_info().rss
        return cpu, rss


def sample_now(
    pids: Iterable[int], wait_s: float = 0.25, nvml: Nvml | None = None, with_children: bool = True
) -> dict[int, SystemStats]:
    """One sample of each live pid (with its children: a sweep's workers), for a one-shot command
    (`ls`): one short wait for all of them, since CPU use is a rate and needs two readings."""
    nvml = nvml if nvml is not None else Nvml()
    samplers = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            sampler = SystemSampler(pid, nvml=nvml, interval=0.0, with_children=with_children)
            sampler.sample()
            samplers[pid] = sampler
    if samplers:
        time.sleep(wait_s)
    stats = {pid: sampler.sample() for pid, sampler in samplers.items()}
    return {pid: s for pid, s in stats.items() if s is not None}


__all__ = ["Nvml", "SAMPLE_INTERVAL_S", "SystemSampler", "SystemStats", "sample_now"]
