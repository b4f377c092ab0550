"""What the tests of a user's own loop share: the tiny model they train, and a command asked of the
run over its channel, as a second terminal would."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from grok_tui.train.channel import Client
from grok_tui.train.control import Command
from grok_tui.train.messages import Reply
from tests.conftest import wait_until

P = 7


class Tiny(nn.Module):
    """a + b mod P from two embedded numbers, summed: small enough for thousands of steps a second."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(P, 8)
        self.out = nn.Linear(8, P)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.embed(x).sum(dim=1)))


def ask(run_dir: Path, command: Command) -> Reply:
    """Send one command over the run's channel and wait for its reply (from the channel's thread: the
    training thread goes on to its next step, where the command is applied)."""
    replies: list[Reply] = []

    def replied() -> bool:
        message = client.receive(0.1)
        if isinstance(message, Reply):
            replies.append(message)
        return bool(replies)

    with Client.connect(run_dir) as client:
        client.send(command)
        wait_until(replied, timeout=10, every=0, what="no reply")
    return replies[0]
