"""The training component (``properties/test_training.py``) on a small test-only target whose
``train`` is a plain, correct, seeded loop: each property passes on it, each training fault of
the catalogue is caught by the property it names, and a ``train`` that raises or returns the
wrong thing is a failure naming ``train``, never a traceback from inside a property."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties, property_outcome
from mlprop.properties.test_training import OFF_CPU_RTOL, differing_entries
from mlprop.schema import ImageSchema
from mlprop.target import Target

SCHEMA = ImageSchema(num_classes=3, min_side=8, max_side=16)
TRAINING = ("test_train_same_seed_gives_identical_weights",
            "test_train_different_seeds_give_different_weights",
            "test_train_leaves_the_callers_arrays_untouched",
            "test_train_learns_a_separable_set",
            "test_train_moves_every_trainable_parameter",
            "test_train_runs_the_forwards_it_trains_on_in_training_mode",
            "test_train_resets_gradients_between_optimizer_steps")


def preprocess(images):
    batch = torch.from_numpy(np.asarray(images, dtype=np.float32)).unsqueeze(1) / 255.0
    if len(batch) == 0:
        return torch.zeros((0, 1, 8, 8))
    return F.interpolate(batch, size=(8, 8), mode="bilinear", align_corners=False,
                         antialias=True).clamp(0.0, 1.0)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, SCHEMA.num_classes)
        self.scale = nn.Parameter(torch.ones(1), requires_grad=False)  # frozen on purpose

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1)) * self.scale


def build_model(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Tiny()


def _epoch(model, optimizer, inputs, targets, order, *, call_train=True):
    """One correct epoch over ``order`` in batches of 8 (``model.train()`` first unless
    ``call_train`` is off), then an evaluation pass under ``no_grad``."""
    if call_train:
        model.train()
    for batch in order.split(8):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs[batch]), targets[batch]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        model(inputs)


def train(images, labels, *, seed, epochs, wrap=None):
    """A correct loop: a seeded shuffle, Adam, zero_grad per step, an eval pass per epoch."""
    model = build_model(seed) if wrap is None else wrap(build_model(seed))
    inputs, targets = preprocess(images), torch.from_numpy(np.array(labels, np.int64))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        _epoch(model, optimizer, inputs, targets,
               torch.randperm(len(targets), generator=generator))
    return model


TARGET = Target(name="tiny-trainer", schema=SCHEMA, input_shape=(1, 8, 8),
                input_range=(0.0, 1.0), preprocess=preprocess, build_model=build_model,
                train=train)


@pytest.fixture(scope="module")
def properties():
    return load_properties()


@pytest.mark.parametrize("name", TRAINING)
def test_training_property_passes_on_a_correct_loop(name, properties):
    outcome = property_outcome(properties[name], TARGET)
    if name == "test_train_runs_the_forwards_it_trains_on_in_training_mode":
        # Tiny has no dropout or batch norm: its train/eval mode changes nothing
        assert outcome.status == "not checked" and "no dropout" in outcome.message
        return
    assert outcome.status == "passed", outcome.message


def _dropout_train(images, labels, *, seed, epochs, forget_train=False):
    """A correct seeded loop with dropout and an evaluation pass per epoch; with
    ``forget_train`` it calls ``model.train()`` only before the first epoch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.2),
                              nn.Linear(32, SCHEMA.num_classes))
        inputs, targets = preprocess(images), torch.from_numpy(np.array(labels, np.int64))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(epochs):
            _epoch(model, optimizer, inputs, targets, torch.randperm(len(targets)),
                   call_train=epoch == 0 or not forget_train)
    return model


def test_the_eval_mode_property_passes_an_evaluation_pass_and_names_a_forgotten_train(
        properties):
    name = "test_train_runs_the_forwards_it_trains_on_in_training_mode"
    correct = TARGET.replace(train=_dropout_train)
    assert property_outcome(properties[name], correct).status == "passed"
    forgetful = TARGET.replace(train=lambda images, labels, *, seed, epochs: _dropout_train(
        images, labels, seed=seed, epochs=epochs, forget_train=True))
    outcome = property_outcome(properties[name], forgetful)
    assert outcome.status == "failed"
    assert "train trains on forward passes made in eval mode" in outcome.message


def test_the_component_holds_the_properties_in_priority_order(properties):
    assert [name for name in properties if name.startswith("test_train_")] == list(TRAINING)


@pytest.mark.parametrize(("fault_name", "message"), [
    ("train_draws_from_the_global_rng", "gives different weights in two runs"),
    ("train_ignores_its_seed", "train ignores its seed"),
    ("train_normalises_the_callers_images_in_place", "caller's images array"),
    ("train_shuffles_labels_apart_from_images", "does not learn a separable set"),
    ("train_optimizer_never_steps", "does not learn a separable set"),
    ("train_with_a_zero_learning_rate", "does not learn a separable set"),
    ("train_leaves_a_layer_out_of_the_optimizer",
     "initial values: ['conv.weight', 'conv.bias']"),
])
def test_training_fault_is_caught_by_the_property_it_names(fault_name, message, properties):
    fault = CATALOGUE[fault_name]
    assert fault.component == "training" and fault.applies(TARGET)
    assert not fault.applies(TARGET.replace(train=None))
    faulty = fault.inject(TARGET)
    for name in fault.catches_for(TARGET):
        outcome = property_outcome(properties[name], faulty)
        assert outcome.status == "failed", (name, outcome)
        assert message in outcome.message


def _raises(images, labels, *, seed, epochs):
    raise RuntimeError("CUDA is not available")


def _returns_state_dict(images, labels, *, seed, epochs):
    return train(images, labels, seed=seed, epochs=epochs).state_dict()


def _needs_writable_arrays(images, labels, *, seed, epochs):
    if not images.flags.writeable:
        raise ValueError("assignment destination is read-only")
    return train(images, labels, seed=seed, epochs=epochs)


def _trains_a_wrapper(images, labels, *, seed, epochs):
    """Trains ``DataParallel(model)`` and returns the module inside (names differ by
    ``module.``): a correct loop."""
    return train(images, labels, seed=seed, epochs=epochs, wrap=nn.DataParallel).module


def _wrong_head(images, labels, *, seed, epochs):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7))


@pytest.mark.parametrize(("bad", "message"), [
    (_raises, "raised RuntimeError: CUDA is not available"),
    (_returns_state_dict, "returned a OrderedDict, not the trained torch.nn.Module"),
    (_wrong_head, ", 7) on preprocess output, not (N, num_classes) = ("),
])
@pytest.mark.parametrize("name", TRAINING)
def test_a_bad_train_is_a_failure_naming_train(bad, message, name, properties):
    outcome = property_outcome(properties[name], TARGET.replace(train=bad))
    assert outcome.status == "failed"
    assert outcome.message.startswith("PropertyViolation: ") and "train(images, labels, " \
        "seed=" in outcome.message and message in outcome.message, outcome.message


@pytest.mark.parametrize("name", TRAINING)
def test_a_target_without_train_is_not_checked(name, properties):
    outcome = property_outcome(properties[name], TARGET.replace(train=None))
    assert outcome.status == "not checked" and "train" in outcome.message


def test_the_learning_threshold_and_epochs_are_the_targets_to_set(properties):
    """``Target(thresholds=...)`` overrides ``train_accuracy`` and ``train_epochs``: with a
    floor of 0 the shuffled-label fault passes, and train is called with the epochs set."""
    name = "test_train_learns_a_separable_set"
    seen = []

    def recording(images, labels, *, seed, epochs):
        seen.append(epochs)
        return train(images, labels, seed=seed, epochs=epochs)

    lenient = TARGET.replace(train=recording,
                             thresholds={"train_epochs": 3, "train_accuracy": 0.0})
    faulty = CATALOGUE["train_shuffles_labels_apart_from_images"].inject(lenient)
    assert property_outcome(properties[name], faulty).status == "passed"
    assert seen and set(seen) == {3}
    default = CATALOGUE["train_shuffles_labels_apart_from_images"].inject(TARGET)
    outcome = property_outcome(properties[name], default)
    assert outcome.status == "failed" and "in 30 epochs" in outcome.message


def test_train_failing_on_read_only_arrays_is_caught(properties):
    outcome = property_outcome(properties["test_train_leaves_the_callers_arrays_untouched"],
                               TARGET.replace(train=_needs_writable_arrays))
    assert outcome.status == "failed"
    assert "raised ValueError: assignment destination is read-only" in outcome.message


def test_a_loop_that_trains_a_wrapper_and_returns_the_inner_module_passes(properties):
    outcome = property_outcome(properties["test_train_moves_every_trainable_parameter"],
                               TARGET.replace(train=_trains_a_wrapper))
    assert outcome.status == "passed", outcome.message


def test_the_properties_leave_the_global_generators_as_they_found_them(properties):
    """A user's loop that seeds torch's global generator (``torch.manual_seed(seed)`` in its
    train or in a trained_model built on first use) must not change the generator of the
    user's own test process."""
    def seeding_train(images, labels, *, seed, epochs):
        torch.manual_seed(seed)
        return train(images, labels, seed=seed, epochs=epochs)

    def seeding_model():
        torch.manual_seed(5)
        return build_model(0)

    def save_model(model, path):
        torch.save(model.state_dict(), path)

    def load_model(path):
        model = build_model(0)
        model.load_state_dict(torch.load(path, weights_only=True))
        return model

    target = TARGET.replace(train=seeding_train, trained_model=seeding_model,
                            save_model=save_model, load_model=load_model)
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    for name in (*TRAINING, "test_load_model_after_save_model_restores_weights_buffers_and_"
                 "outputs"):
        property_outcome(properties[name], target)
    assert torch.equal(torch.get_rng_state(), before)


def test_same_seed_runs_are_bitwise_on_the_cpu_and_within_a_tolerance_off_it():
    """On the CPU one flipped ulp is a difference; off it (GPU kernels are not bitwise
    reproducible) a relative gap under OFF_CPU_RTOL is not, a global-RNG-sized one is, and an
    integer buffer must still match exactly."""
    weight = np.linspace(-1, 1, 64, dtype=np.float32)
    ulp = {"w": np.nextafter(weight, np.float32(2)), "n": np.array(3)}
    first = {"w": weight, "n": np.array(3)}
    assert differing_entries(first, ulp, on_cpu=True) == ["w"]
    assert differing_entries(first, ulp, on_cpu=False) == []
    near = {"w": weight * np.float32(1 + OFF_CPU_RTOL / 10), "n": np.array(3)}
    assert differing_entries(first, near, on_cpu=False) == []
    far = {"w": weight * np.float32(1.2), "n": np.array(4)}
    assert differing_entries(first, far, on_cpu=False) == ["w", "n"]
    assert differing_entries(first, {"w": weight}, on_cpu=True) == ["n"]
    assert differing_entries({"w": weight}, first, on_cpu=True) == ["n"]

