"""Sweeps beyond one machine: each shard a Ray task, its messages back through a Ray queue.

The driver (engine.py) is the same as for local worker processes: it starts
shards, takes their messages and writes the sweep directory on its own disk,
so the monitor fills in the same way. Here a shard is a Ray task with
`cpus` CPUs (and torch that many threads) and `gpus` GPUs (its members then
train as one batch on the GPU Ray gave it); messages travel through a
`ray.util.queue.Queue`; a stop is a flag in a small actor every task looks at
twice a second. A task whose worker dies is retried by Ray (`RETRIES`); the
retry resumes from the shard's last checkpoint where it can read the driver's
disk (on one machine) and from the start otherwise; the driver rewinds the
members' logs to wherever the retry starts. Ray's own authentication (its
cluster token) guards the cluster: grok-tui adds no channel of its own.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from grok_tui.sweep.shard import ShardSpec, train_shard

# Times Ray runs a shard again after its worker died (a bug in the shard is not retried).
RETRIES = 2
# How often a task looks at the stop flag (each look is a round trip to the flag's actor).
STOP_POLL_S = 0.5
# How long a stopping sweep waits for its shards' last checkpoints before cancelling them.
STOP_GRACE_S = 60.0
INSTALL = "pip install 'grok-tui[ray]'"
# How long the check of a cluster's address waits for a driver to join it (about 1.5 s on a 2-core box).
CONNECT_TIMEOUT_S = 15.0
# How long it waits for a TCP connection to the address, first.
TCP_TIMEOUT_S = 5.0


class RayError(Exception):
    """Ray is missing or cannot be reached: one line."""


def _ray() -> Any:
    # Off unless the user turned it on: a sweep should not report home.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise RayError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def _address(address: str | None) -> str | None:
    return address or os.environ.get("RAY_ADDRESS") or None


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), or start a local Ray of `num_cpus`; RayError if that fails."""
    ray = _ray()
    if ray.is_initialized():
        return
    address = _address(address)
    try:
        # Ray's INFO lines ("Connecting to existing Ray cluster", "Started a local Ray instance") would
        # land in the middle of the sweep's own output.
        if address:
            # An existing cluster has its own CPUs: ray.init refuses num_cpus with an address.
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = address or "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RayError(f"--ray: cannot reach {where}: {first}") from None


def check_address(address: str | None) -> None:
    """RayError unless Ray is installed and `address` (or RAY_ADDRESS), where given, is well formed. Instant."""
    _ray()
    _host_port(_address(address))


def _host_port(address: str | None) -> tuple[str, int] | None:
    """The host and port to connect to, or None for a local Ray ("local", "auto" or no address)."""
    if not address or address in ("auto", "local"):
        return None
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise RayError(
            f"--ray: {address!r} is not an address; expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT"
        )
    return host.strip("[]"), int(port)


# Joins the cluster in a child process, which can be killed: at an address where something listens
# but no Ray answers (another server, a wrong port), ray.init retries for many minutes, printing Ray's
# warnings, and none of its arguments bounds that. Its one line of reason goes to stdout.
_PROBE = """
import logging, sys
try:
    import ray
    ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
    ray.shutdown()
except Exception as e:
    lines = str(e).strip().splitlines()
    print(lines[0] if lines else type(e).__name__, flush=True)
    sys.exit(1)
"""


def check_cluster(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """RayError unless the Ray cluster at `address` (or RAY_ADDRESS) lets a driver join within `timeout`
    seconds; nothing of Ray's reaches the terminal, and nothing is left running. No address: nothing to
    ask (the sweep starts a local Ray of its own)."""
    address = _address(address)
    if not address or address == "local":
        return
    where = _host_port(address)
    if where is not None:
        # A closed port or an unknown host fails here at once, with the system's reason.
        try:
            socket.create_connection(where, timeout=min(timeout, TCP_TIMEOUT_S)).close()
        except OSError as e:
            raise RayError(f"--ray: cannot reach {address}: {e.strerror or e}") from None
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": os.environ.get("RAY_USAGE_STATS_ENABLED", "0")}
    probe = subprocess.Popen(
        [sys.executable, "-c", _PROBE, address],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: killed whole, and Ctrl-C here is ours to handle
    )
    try:
        out, _ = probe.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RayError(
            f"--ray: {address} did not answer as a Ray cluster within {timeout:g} s; expected the address of "
            "a Ray head node (`ray start --head` prints it; its port is 6379 unless --port said otherwise)"
        ) from None
    finally:
        if probe.poll() is None:
            os.killpg(probe.pid, signal.SIGKILL)
            probe.wait()
    if probe.returncode != 0:
        lines = [line for line in out.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"the check ended with status {probe.returncode}"
        raise RayError(f"--ray: {address} did not answer as a Ray cluster: {reason}")


def _stop_flag_class() -> Any:
    ray = _ray()

    @ray.remote(num_cpus=0)
    class StopFlag:
        def __init__(self) -> None:
            self.set_ = False

        def set(self) -> None:
            self.set_ = True

        def is_set(self) -> bool:
            return self.set_

    return StopFlag


def _run_shard(spec: ShardSpec, messages: Any, flag: Any) -> str:
    """The body of a shard's Ray task."""
    ray = _ray()
    looked_at, stop = 0.0, False

    def stopped() -> bool:
        nonlocal looked_at, stop
        now = time.monotonic()
        if now - looked_at >= STOP_POLL_S:
            looked_at, stop = now, bool(ray.get(flag.is_set.remote()))
        return stop

    return train_shard(spec, messages.put, stopped)


class RayTasks:
    """The transport (engine.Transport) for a Ray cluster."""

    def __init__(self, capacity: int, cpus: float = 1, gpus: float = 0):
        ray = _ray()
        from ray.util.queue import Queue

        self.ray = ray
        self.capacity = capacity
        self.cpus, self.gpus = cpus, gpus
        self._queue = Queue()
        self._flag = _stop_flag_class().remote()
        self._task = ray.remote(_run_shard).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES, retry_exceptions=False
        )
        self._running: dict[int, Any] = {}
        self._stop_at: float | None = None

    def launch(self, spec: ShardSpec) -> None:
        threads = max(1, int(self.cpus))
        spec = dataclasses.replace(spec, threads=threads)  # the rest as the driver made it (its pruning too)
        self._running[spec.index] = self._task.remote(spec, self._queue, self._flag)

    def active(self) -> int:
        return len(self._running)

    def messages(self, timeout: float) -> list[tuple[Any, ...]]:
        from ray.util.queue import Empty

        try:
            out = [self._queue.get(timeout=timeout)]
        except Empty:
            return []
        size = self._queue.qsize()
        if size:
            out += self._queue.get_nowait_batch(size)
        return out

    def ended(self) -> list[tuple[int, str | None]]:
        if not self._running:
            return []
        refs = {ref: index for index, ref in self._running.items()}
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
        gone: list[tuple[int, str | None]] = []
        for ref in ready:
            index = refs[ref]
            del self._running[index]
            try:
                self.ray.get(ref)
                gone.append((index, None))
            except Exception as e:  # the task failed for good (its retries spent), or was cancelled
                text = str(e).strip().splitlines()
                gone.append((index, f"{type(e).__name__}: {text[0] if text else ''}"[:300]))
        if self._stop_at is not None and time.monotonic() - self._stop_at > STOP_GRACE_S:
            for ref in self._running.values():
                self.ray.cancel(ref, force=True)
        return gone

    def stop(self) -> None:
        if self._stop_at is None:
            self._stop_at = time.monotonic()
            self._flag.set.remote()

    def close(self) -> None:
        for ref in self._running.values():
            self.ray.cancel(ref, force=True)


__all__ = ["INSTALL", "RETRIES", "RayError", "RayTasks", "check_address", "check_cluster", "connect"]
