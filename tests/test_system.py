"""The system line: what a run's process takes from its machine, sampled by the run and sent in its frames.

No GPU here: NVML is a fake with pynvml's names, so the GPU figures are tested
as the driver would hand them over, and a machine without one shows none.
"""

import dataclasses
import os
import re
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from grok_tui.sources.manual import ManualSource
from grok_tui.sources.watched import WatchedRun
from grok_tui.system import Nvml, SystemSampler, SystemStats, sample_now
from grok_tui.ui.app import MonitorApp
from tests.conftest import TINY, run, status_text, wait_until
from tests.fakes import synthetic_run
from tests.processes import FOREVER, attached, cli

GIB = 2**30


class FakeNvml:
    """pynvml's names over two GPUs; `pids` says which processes compute on which one."""

    class NVMLError(Exception):
        pass

    def __init__(self, pids=None, broken=False):
        self.pids = pids or {}
        self.broken = broken
        self.calls = 0

    def nvmlInit(self):
        if self.broken:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid):
        if uuid != "GPU-1111":
            raise self.NVMLError("Not Found")
        return "gpu1"

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=pid, usedGpuMemory=GIB) for pid, gpu in self.pids.items() if gpu == handle]

    def nvmlDeviceGetUtilizationRates(self, handle):
        self.calls += 1
        return SimpleNamespace(gpu={"gpu0": 45, "gpu1": 90}[handle], memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=int(3.1 * GIB), total=80 * GIB, free=int(76.9 * GIB))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_process_is_sampled_cpu_from_the_second_reading_and_at_most_once_an_interval():
    clock = Clock()
    sampler = SystemSampler(os.getpid(), nvml=Nvml(FakeNvml(broken=True)), clock=clock)
    first = sampler.sample()
    # CPU use is a rate: one reading has nothing to measure it over.
    assert first is not None and first.cpu_percent is None and first.rss_bytes > 10 * 2**20
    assert first.describe().startswith("mem ") and "cpu" not in first.describe()
    clock.now = 0.5
    assert sampler.sample() is first  # within the interval: the last sample, nothing read
    clock.now = 1.0
    sum(i * i for i in range(200_000))
    second = sampler.sample()
    assert second is not first and second.cpu_percent is not None and second.cpu_percent >= 0
    assert second.gpu_percent is None and "gpu" not in second.describe()


def test_an_ended_process_has_no_figures():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    sampler = SystemSampler(child.pid, nvml=Nvml(FakeNvml()), interval=0)
    child.wait()
    assert sampler.sample() is None
    assert sample_now([child.pid], nvml=Nvml(FakeNvml())) == {}


def test_the_gpu_is_found_by_the_process_or_else_by_its_uuid():
    me = os.getpid()
    by_pid = SystemSampler(me, nvml=Nvml(FakeNvml(pids={me: "gpu0"})), interval=0).sample()
    assert (by_pid.gpu_percent, by_pid.gpu_used_bytes, by_pid.gpu_total_bytes) == (45.0, int(3.1 * GIB), 80 * GIB)
    assert by_pid.describe().endswith("gpu 45% mem 3.1G/80G")
    # In a container NVML lists the host's pids: the run process names its device instead.
    by_uuid = SystemSampler(me, gpu_uuid="GPU-1111", nvml=Nvml(FakeNvml()), interval=0).sample()
    assert by_uuid.gpu_percent == 90.0
    # A CPU run on a GPU box: no GPU of its own, no GPU figures.
    cpu_run = SystemSampler(me, nvml=Nvml(FakeNvml(pids={12345: "gpu0"})), interval=0).sample()
    assert cpu_run.gpu_percent is None


def test_no_driver_means_no_gpu_figures_and_no_error():
    nvml = Nvml(FakeNvml(broken=True))
    assert not nvml.present and nvml.gpu_of({os.getpid()}, "GPU-1111") is None and nvml.figures("gpu0") is None
    # pynvml itself, on this box with no NVIDIA driver, the same.
    assert Nvml().figures(Nvml().gpu_of({os.getpid()})) is None


def test_a_driver_that_fails_mid_run_loses_the_gpu_figures_not_the_sample():
    fake = FakeNvml(pids={os.getpid(): "gpu0"})
    sampler = SystemSampler(os.getpid(), nvml=Nvml(fake), interval=0)
    assert sampler.sample().gpu_percent == 45.0

    def gone(handle):
        raise fake.NVMLError("GPU is lost")

    fake.nvmlDeviceGetUtilizationRates = gone
    after = sampler.sample()
    assert after is not None and after.gpu_percent is None and after.rss_bytes > 0


def test_sizes_read_as_top_shows_them():
    assert SystemStats(97.4, 412 * 2**20).describe() == "cpu 97% mem 412M"
    assert SystemStats(250.0, 5 * 2**30 // 2).describe() == "cpu 250% mem 2.5G"
    assert SystemStats(None, 900).describe() == "mem 900B"


# ---- in the frames, and on the screen ---------------------------------------------------------------------


def test_a_live_run_shows_its_process_figures_in_its_frames_in_ls_and_in_watch(tmp_path):
    run_dir = tmp_path / "run"
    started = cli(*TINY, *FOREVER, "--run-dir", str(run_dir), "--detach")
    assert started.returncode == 0, started.stderr
    session = attached(run_dir)
    try:
        seen = []

        def measured() -> bool:
            snapshot, _, error = session.mailbox.take()
            assert error is None, error
            if snapshot is not None:
                seen.append(snapshot)
            return bool(seen) and seen[-1].system is not None and seen[-1].system.cpu_percent is not None

        wait_until(measured, timeout=30, every=0.1)
        system = seen[-1].system
        # A process training flat out: most of a core, and torch's memory.
        assert system.cpu_percent > 20 and system.rss_bytes > 50 * 2**20
        assert system.gpu_percent is None  # no GPU on this box

        # Paused, the trainer sends no frames: the last one comes again with fresh figures, not those of
        # the moment it paused (a paused run at 100% CPU).
        session.control.toggle("pause")

        def idle() -> bool:
            snapshot, _, _ = session.mailbox.take()
            return snapshot is not None and snapshot.paused and snapshot.system.cpu_percent < 20

        wait_until(idle, timeout=30, every=0.1)
        session.control.toggle("pause")

        # ls samples it by its pid, beside the runs that are not running.
        listing = cli("ls", str(tmp_path), timeout=60)
        header, line = listing.stdout.splitlines()
        assert header.split()[-1] == "SYSTEM" and re.search(r"cpu \d+% mem \d+(\.\d)?M$", line), listing.stdout

        # watch of the live run reads its files, and samples its process the same way.
        watching = WatchedRun(run_dir)
        threading.Thread(target=watching.run, daemon=True).start()

        def sampled() -> bool:
            snapshot, _, _ = watching.mailbox.take()
            return snapshot is not None and snapshot.system is not None and snapshot.system.cpu_percent is not None

        wait_until(sampled, timeout=30, every=0.1)
    finally:
        stopped = cli("stop", str(run_dir), timeout=60)
        assert stopped.returncode == 0, stopped.stderr
    # Its process gone, it has no figures.
    listing = cli("ls", str(tmp_path), timeout=60)
    assert " stopped " in listing.stdout and not re.search(r"mem \d", listing.stdout)


@pytest.mark.parametrize(
    ("width", "shown"),
    [(160, True), (80, False)],
)
def test_the_status_line_shows_the_figures_where_they_fit(width, shown):
    rows, snapshot = synthetic_run()
    figures = SystemStats(97.0, 412 * 2**20, 45.0, int(3.1 * GIB), 80 * GIB)
    snapshot = dataclasses.replace(snapshot, system=figures)

    async def scenario():
        app = MonitorApp.for_run(ManualSource(rows, snapshot))
        async with app.run_test(size=(width, 30)) as pilot:
            await pilot.pause(0.3)
            first = status_text(app).splitlines()[0]
            assert ("cpu 97% mem 412M  gpu 45% mem 3.1G/80G" in first) is shown
            # The phase is never the piece that gives way.
            assert "GENERALIZED" in first

    run(scenario())


@pytest.mark.parametrize("finished", [False, True])
def test_a_frame_without_figures_or_of_a_finished_run_shows_no_system_piece(finished):
    rows, snapshot = synthetic_run()
    # A finished run's process has ended: the figures of its last second are not shown as if live.
    figures = SystemStats(97.0, 412 * 2**20) if finished else None
    snapshot = dataclasses.replace(snapshot, finished=finished, system=figures)

    async def scenario():
        app = MonitorApp.for_run(ManualSource(rows, snapshot))
        async with app.run_test(size=(160, 30)) as pilot:
            await pilot.pause(0.3)
            assert "mem" not in status_text(app)

    run(scenario())


def test_sampling_costs_next_to_nothing_between_samples():
    # The trainer calls this at the frame rate; between two samples it must only read a clock.
    fake = FakeNvml(pids={os.getpid(): "gpu0"})
    sampler = SystemSampler(os.getpid(), nvml=Nvml(fake))
    for _ in range(1000):
        sampler.sample()
    assert fake.calls == 1
