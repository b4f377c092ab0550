import pytest
import torch

from grok_tui.config import PRESETS, RunConfig


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny_config(**changes) -> RunConfig:
    """A modular run small enough to train in well under a second."""
    base = dict(
        experiment="tiny",
        task="modular",
        op="+",
        p=23,
        train_frac=0.5,
        model="sum_mlp",
        width=32,
        lr=1e-2,
        weight_decay=1.0,
        steps=60,
        eval_every=10,
        device="cpu",
    )
    return PRESETS["mod-add"].config().replace(**{**base, **changes})


@pytest.fixture
def tiny():
    return tiny_config
