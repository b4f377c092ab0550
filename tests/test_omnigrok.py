"""Omnigrok (Liu, Michaud, Tegmark 2022): a large init scale alpha delays generalization on ordinary
tasks; alpha 1 does not; holding the weight norm at the alpha-1 norm removes the delay (seeded)."""

import pytest
import torch

from grok_tui.config import PRESETS, ConfigError
from grok_tui.models import OmniMLP, TeacherMLP, build_model
from grok_tui.tasks import build_dataset, digits_dataset, teacher_dataset
from grok_tui.tasks.teacher import teacher_net
from grok_tui.train import Trainer


def train_until(cfg, fit=0.99, general=None, max_steps=None, every=25):
    """Train step by step; return (metrics when train acc first >= fit, steps to test acc >= general or None)."""
    trainer = Trainer(cfg)
    at_fit, general_step = None, None
    limit = max_steps or cfg.steps
    while trainer.step < limit:
        trainer.train_step()
        if trainer.step % every:
            continue
        m = trainer.evaluate()
        if at_fit is None and m.train_acc >= fit:
            at_fit = m
        if general is not None and general_step is None and m.test_acc >= general:
            general_step = trainer.step
        if at_fit is not None and (general is None or general_step is not None):
            break
    return at_fit, general_step


def digits(**changes):
    return PRESETS["omnigrok-digits"].config(device="cpu", seed=0, **changes)


def teacher(**changes):
    return PRESETS["teacher-student"].config(device="cpu", seed=0, **changes)


# ---- the tasks --------------------------------------------------------------


def test_digits_task_is_a_seeded_split_of_the_bundled_images():
    data = digits_dataset(300, seed=0)
    assert data.x_train.shape == (300, 64) and data.x_test.shape == (1797 - 300, 64)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.long
    assert 0.0 <= float(data.x_train.min()) and float(data.x_train.max()) <= 1.0 and float(data.x_train.max()) > 0.9
    assert set(data.y_train.tolist()) <= set(range(10)) and len(set(data.y_test.tolist())) == 10
    assert data.n_classes == 10
    again, other = digits_dataset(300, seed=0), digits_dataset(300, seed=1)
    assert torch.equal(data.x_train, again.x_train) and not torch.equal(data.x_train, other.x_train)
    # train and test are disjoint: together they are every image once
    everything = torch.cat([data.x_train, data.x_test])
    assert len(torch.unique(everything, dim=0)) == len(torch.unique(torch.cat([other.x_train, other.x_test]), dim=0))


def test_digits_config_checks_its_model_and_size():
    with pytest.raises(ConfigError) as e:
        digits(model="sum_mlp")
    assert e.value.field == "model"
    with pytest.raises(ConfigError) as e:
        digits(n_train=1797)
    assert e.value.field == "n_train"
    with pytest.raises(ConfigError) as e:
        teacher(loss="ce")
    assert e.value.field == "loss"


def test_teacher_task_labels_gaussian_inputs_with_a_fixed_teacher():
    data = teacher_dataset(100, 50, seed=0)
    assert data.x_train.shape == (100, 5) and data.x_test.shape == (50, 5)
    assert data.y_train.shape == (100, 5) and data.y_train.is_floating_point()
    with torch.no_grad():
        assert torch.allclose(teacher_net(0)(data.x_test), data.y_test)
    assert torch.equal(teacher_dataset(100, 50, seed=0).y_train, data.y_train)
    assert not torch.equal(teacher_dataset(100, 50, seed=1).y_train, data.y_train)


def test_models_have_the_omnigrok_shapes_and_scale_with_alpha():
    cfg = digits()
    torch.manual_seed(0)
    model = build_model(cfg.replace(init_scale=1.0), 10)
    assert isinstance(model, OmniMLP) and model(torch.zeros(3, 64)).shape == (3, 10)
    assert [m.weight.shape for m in (model.l1, model.l2, model.l3)] == [(200, 64), (200, 200), (10, 200)]
    assert set(model.matrices()) == {"hidden 1", "hidden 2", "output"} and model.neuron_inputs() is None
    torch.manual_seed(0)
    big = build_model(cfg, 10)
    assert torch.allclose(big.l2.weight, 10 * model.l2.weight)
    student = build_model(teacher(), 5)
    assert isinstance(student, TeacherMLP) and student(torch.zeros(2, 5)).shape == (2, 5)


def test_teacher_accuracy_counts_samples_whose_mean_squared_error_is_below_the_tolerance():
    trainer = Trainer(teacher(acc_tol=1e-3))
    y = torch.zeros(4, 5)
    # per-sample mean squared errors 0, 0.5e-3, 2e-3, 0.9e-3 (the last from one component only)
    out = torch.stack(
        [
            torch.zeros(5),
            torch.full((5,), 0.5e-3**0.5),
            torch.full((5,), 2e-3**0.5),
            torch.tensor([(4.5e-3) ** 0.5, 0, 0, 0, 0]),
        ]
    )
    assert float(trainer._accuracy(out, y)) == 0.75
    # classification is unchanged: argmax against integer labels
    assert float(trainer._accuracy(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1]))) == 0.5


# ---- the phenomenon: digits ---------------------------------------------------


def test_digits_large_alpha_memorizes_first_and_generalizes_much_later():
    # The preset: train 99% by ~1,750 with test ~27%, test 80% by ~5,100 (seeds 0-2: 2.8-3.4x later).
    big, big_general = train_until(digits(), general=0.8, max_steps=7000)
    small, _ = train_until(digits(init_scale=1.0), max_steps=1000)
    assert big is not None and small is not None
    assert small.test_acc > 0.9  # alpha 1: test is high as soon as train fits
    assert big.test_acc < 0.5  # alpha 10: memorized, test still low
    assert big_general is not None and big_general >= 2.5 * big.step  # ...and it rises much later
    assert small.step < big.step


def test_digits_constraining_the_norm_to_the_alpha_one_norm_removes_the_delay():
    # The alpha-1 model's norm when it fits is ~19; alpha 10 starts at ~117.
    held, _ = train_until(digits(constrain_norm=20.0), max_steps=4000)
    assert held is not None and abs(held.param_norm - 20.0) < 1e-3
    assert held.test_acc > 0.85  # test rises together with train


# ---- the phenomenon: teacher-student ---------------------------------------------


def test_teacher_student_large_alpha_delays_generalization_and_alpha_one_does_not():
    big, big_general = train_until(teacher(weight_decay=0.2), general=0.9, max_steps=8000, every=50)
    small, _ = train_until(teacher(init_scale=1.0, weight_decay=0.2), max_steps=2000, every=50)
    assert big.test_acc < 0.05 and small.test_acc > 0.8
    assert big_general is not None and big_general >= 5 * big.step


def test_teacher_student_constrained_norm_removes_the_delay():
    held, _ = train_until(teacher(constrain_norm=8.7, weight_decay=0.0), max_steps=2000, every=50)
    assert held is not None and held.test_acc > 0.8


def test_build_dataset_dispatches_the_new_tasks():
    assert build_dataset(digits()).n_classes == 10
    assert build_dataset(teacher()).y_test.shape == (1000, 5)
