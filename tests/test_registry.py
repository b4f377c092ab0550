"""The model-family registry: every family's declarations hold for its real model, and a family added in a
test with one registry line is a model like the others (validated, built, estimated, trained and shown)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import grok_tui.train.memory as memory
from grok_tui.config import ConfigError, validate
from grok_tui.models import GrokModel, build_model
from grok_tui.models.footprint import Activations, linear
from grok_tui.models.registry import REGISTRY, Entry, Family, family, models_for, modular_classes
from grok_tui.tasks import build_dataset, n_classes
from tests.conftest import tiny_config

CPU = torch.device("cpu")

# Small settings of each task, for any family that learns it.
TASK_SETTINGS: dict[str, dict] = {
    "modular": dict(p=13, width=7, embed_dim=8),
    "parity": dict(n_bits=11, k_bits=3, n_train=50, n_test=50, width=7),
    "digits": dict(loss="mse", n_train=100, width=7),
    "teacher": dict(loss="mse", n_train=10, n_test=10, width=7),
}


def family_config(name: str, **changes):
    return validate(tiny_config(task=REGISTRY[name].task, model=name, **TASK_SETTINGS[REGISTRY[name].task], **changes))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_familys_declarations_hold_for_its_real_model(name: str) -> None:
    cfg = family_config(name)
    fam = family(name)
    classes = fam.classes(cfg)
    assert classes == n_classes(cfg) == build_dataset(cfg).n_classes
    model = build_model(cfg, classes)
    assert fam.parameters(cfg, classes) == sum(p.numel() for p in model.parameters())
    # The views in the heatmap's order, each of the declared shape.
    assert fam.views(cfg, classes) == {k: tuple(m.shape) for k, m in model.matrices().items()}
    neurons = model.neuron_inputs()
    assert (fam.neurons(cfg) if fam.neurons is not None else None) == (None if neurons is None else neurons.shape)
    assert all(field in cfg.to_dict() for field in fam.drivers)


def test_the_registry_says_which_models_each_task_takes() -> None:
    assert models_for("modular") == ("sum_mlp", "concat", "factored", "unfactored", "transformer")
    assert [models_for(task) for task in ("parity", "digits", "teacher")] == [
        ("parity_mlp",),
        ("omni_mlp",),
        ("teacher_mlp",),
    ]
    with pytest.raises(ConfigError, match="model: 'parity_mlp' is not allowed; expected sum_mlp, concat"):
        validate(tiny_config(model="parity_mlp"))


# A family of the test's own: everything it takes to add a model is the class, its FAMILY, and one line.
class TwoLayerMLP(GrokModel):
    """relu(E[a] + E[b]) @ V, then a second hidden layer."""

    def __init__(self, p: int, width: int):
        super().__init__()
        self.embed = nn.Embedding(p, width)
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(torch.relu(self.embed(x).sum(dim=1)))))

    def neuron_inputs(self) -> torch.Tensor:
        return self.embed.weight

    def matrices(self) -> dict[str, torch.Tensor]:
        return {"embedding": self.embed.weight, "hidden": self.hidden.weight.T, "output": self.out.weight.T}


FAMILY = Family(
    build=lambda cfg, classes: TwoLayerMLP(cfg.p, cfg.width),
    classes=modular_classes,
    parameters=lambda cfg, classes: cfg.p * cfg.width + linear(cfg.width, cfg.width) + linear(cfg.width, classes),
    activations=lambda cfg, classes: Activations(train=8 * cfg.width + 3 * classes, forward=4 * cfg.width + classes),
    views=lambda cfg, classes: {
        "embedding": (cfg.p, cfg.width),
        "hidden": (cfg.width, cfg.width),
        "output": (cfg.width, classes),
    },
    drivers=("p", "width"),
    neurons=lambda cfg: (cfg.p, cfg.width),
)


@pytest.fixture
def two_layer(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(REGISTRY, "two_layer", Entry("modular", __name__))  # the one line
    return "two_layer"


def test_a_family_registered_with_one_line_is_validated_built_estimated_and_shown(two_layer: str) -> None:
    from grok_tui.train.trainer import Trainer, inspect_model

    assert two_layer in models_for("modular")
    cfg = validate(tiny_config(model=two_layer, p=13, width=16))
    model = build_model(cfg, n_classes(cfg))
    assert isinstance(model, TwoLayerMLP)
    # Estimated, by what it declares, and refused with its own flags when too big.
    assert memory.count_parameters(cfg, 13) == sum(p.numel() for p in model.parameters())
    memory.check_fits(cfg, CPU)
    with pytest.raises(memory.WontFit, match=r"p 1000, width 65536: .*use a smaller --p or --width$"):
        memory.check_fits(cfg.replace(p=1000, width=65536), CPU)
    # Trained and shown: the views get its matrices and the frequencies pane its neurons.
    trainer = Trainer(cfg)
    trainer.train_step()
    trainer.evaluate()
    matrices, spectrum, parity, _ = inspect_model(trainer.model, cfg)
    assert {k: m.shape for k, m in matrices.items()} == FAMILY.views(cfg, 13)
    assert spectrum is not None and parity is None
    # A task it is not registered for refuses it, naming the models that task takes.
    with pytest.raises(ConfigError, match="expected parity_mlp for the parity task"):
        validate(tiny_config(model=two_layer, task="parity"))


def test_a_family_module_must_declare_its_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "nothing", Entry("modular", "grok_tui.models.footprint"))
    with pytest.raises(TypeError, match="grok_tui.models.footprint declares no FAMILY for the model 'nothing'"):
        family("nothing")


def test_the_config_and_the_cli_do_not_import_torch() -> None:
    """The registry answers config.py's questions without a model module: the CLI's bad-flag line and `ls`
    stay quick."""
    import subprocess

    code = "import sys, grok_tui.cli, grok_tui.config; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
