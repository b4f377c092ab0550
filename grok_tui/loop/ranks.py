"""A monitor under torch.distributed: rank 0 serves the run, and every rank applies each command at the same step.

The user initializes the process group and calls `grok_tui.monitor(...)` on every rank, at the same point
of the program (it makes a process group, a collective). Rank 0 alone writes the run directory and serves
the channel, so only its queue ever holds commands. The other ranks learn them in the optimizer's step
hook, which every rank runs after each `optimizer.step()`:

- one all_reduce (MAX) of two integers a step: the size of the commands rank 0 has taken from its queue
  (0 when none), and whether any rank was asked to stop (SIGTERM may reach one rank, or all);
- only when commands were taken, one broadcast of their JSON (the channel's wire form): every rank reads
  it back through `from_wire`, checked again, so nothing is unpickled.

The all_reduce started at one step's hook is waited for at the next step's, so it runs while the ranks
compute that step instead of holding them in the hook; what it agreed is applied there, by every rank.
So a command takes effect at the same step on every rank (one step later than in a single process), and
`should_stop` turns true on every rank at the same step: a rank that broke out of its loop alone would
leave the others waiting in their next all-reduce forever. A pause holds every rank in the hook, where
they meet every PAUSE_POLL_S to learn of a resume or a stop.

The collectives go over a CPU (gloo) group of the monitor's own: the user's NCCL group never carries them
(no device tensor, no device sync in the hook), and they never interleave with the user's own collectives.
Ending the monitor waits for the last agreement (every rank started it at the same step) and destroys
that group.

`m.log` holds no collective: a rank may call it at steps the others do not (rank 0 only, say).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

import torch
import torch.distributed as dist

from grok_tui.train.control import Command, from_wire, to_wire

LEADER = 0


class Ranks:
    """This process's place in a torch.distributed job of several ranks, and the collectives the monitor makes."""

    def __init__(self) -> None:
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if dist.is_gloo_available():
            self._group: dist.ProcessGroup | None = dist.new_group(backend="gloo")
            self._device = torch.device("cpu")
        else:  # a build without gloo: the user's own group, on the device its backend takes
            self._group = None
            nccl = dist.get_backend() == "nccl"
            self._device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        # Reused at every step: the all_reduce overwrites it. The agreement under way, and what rank 0 sent to it.
        self._flags = torch.zeros(2, dtype=torch.int64, device=self._device)
        self._pending: dist.Work | None = None
        self._held = b""

    @classmethod
    def joined(cls) -> Ranks | None:
        """This process's ranks where torch.distributed runs more than one; None for a single process."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls()

    @property
    def leader(self) -> bool:
        """Whether this is the rank that serves the run and writes its directory."""
        return self.rank == LEADER

    def share(self, text: str | None) -> str:
        """Rank 0's `text` on every rank (the others pass None). Two broadcasts: for the start, not per step."""
        data = text.encode() if self.leader and text is not None else b""
        size = torch.tensor([len(data)], dtype=torch.int64, device=self._device)
        dist.broadcast(size, src=LEADER, group=self._group)
        return self._broadcast(data, int(size.item())).decode() if size.item() else ""

    def agree(self, commands: Sequence[Command], stop: bool) -> tuple[list[Command], bool]:
        """What every rank applies now, the same on each: rank 0's commands and whether any rank was asked to
        stop, as they were given to the previous call. Those given now are agreed on in the background, while
        the ranks train their next step, and applied at the next call: each rank calls this once a step."""
        agreed: tuple[list[Command], bool] = ([], False)
        if self._pending is not None:
            self._pending.wait()
            size, stopped = self._flags.tolist()
            if size:  # the JSON, sent as rank 0 held it at the previous call; read back by every rank alike
                data = self._broadcast(self._held, size)
                agreed = [from_wire(record) for record in json.loads(data)], bool(stopped)
            else:
                agreed = [], bool(stopped)
        self._held = json.dumps([to_wire(c) for c in commands]).encode() if self.leader and commands else b""
        self._flags[0], self._flags[1] = len(self._held), int(stop)
        self._pending = dist.all_reduce(self._flags, op=dist.ReduceOp.MAX, group=self._group, async_op=True)
        return agreed

    def close(self) -> None:
        """Destroy the monitor's group, once the last agreement is in (every rank started it at the same step).
        Local to this rank; the group may be gone already (the user destroyed every group)."""
        with contextlib.suppress(ValueError, RuntimeError):
            if self._pending is not None:
                self._pending.wait()
            if self._group is not None and dist.is_initialized():
                dist.destroy_process_group(self._group)
        self._pending = None

    def _broadcast(self, data: bytes, size: int) -> bytes:
        if self.leader:
            payload = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(self._device)
        else:
            payload = torch.empty(size, dtype=torch.uint8, device=self._device)
        dist.broadcast(payload, src=LEADER, group=self._group)
        return bytes(payload.cpu().numpy()) if not self.leader else data


__all__ = ["Ranks"]
