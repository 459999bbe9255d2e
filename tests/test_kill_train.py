"""Exact behaviour of ``mlprop.digits.train`` that the mutation audit showed untested:
config validation, the digest, the epoch's loss bookkeeping and optimizer steps, the
training inputs of an epoch, label validation and the validation accuracy in the history.
All on tiny data (milliseconds to a second)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mlprop.digits.augment import random_augment
from mlprop.digits.preprocess import preprocess
from mlprop.digits.train import (
    TrainConfig,
    _epoch_inputs,
    predict_classes,
    train,
)
from mlprop.errors import SchemaError
from mlprop.reference import training


def _run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               targets: torch.Tensor, order: np.ndarray, batch_size: int) -> float:
    """The kit's epoch over preprocessed ``inputs`` in ``order``, as the digits train it."""
    return training.run_epoch(model, optimizer, order, batch_size,
                              training.tensor_batches(inputs, targets))


def digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = rng.integers(0, 40, size=(count, 8, 8), dtype=np.uint8)
    for index, label in enumerate(labels):  # a bright bar whose row is the label
        images[index, label % 8, :] = 200 + label * 5
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------- config


def test_integer_fields_refuse_floats_with_a_message():
    with pytest.raises(ValueError) as exc:
        TrainConfig(epochs=2.0)
    assert str(exc.value) == "TrainConfig.epochs: expected an int, got 2.0"


@pytest.mark.parametrize("value", [float("inf"), float("nan"), True, "0.1"])
def test_learning_rate_must_be_a_finite_number(value):
    with pytest.raises(ValueError) as exc:
        TrainConfig(learning_rate=value)
    assert str(exc.value) == (f"TrainConfig.learning_rate: expected a finite number, "
                              f"got {value!r}")


def test_digest_is_the_sorted_json_of_the_fields():
    config = TrainConfig(epochs=3, seed=4)
    payload = json.dumps(dataclasses.asdict(config), sort_keys=True).encode()
    assert config.digest() == hashlib.sha256(payload).hexdigest()[:16]


# --------------------------------------------------------------------------- one epoch


class Linear(nn.Module):
    """No dropout, no batch statistics: the loss of a batch depends on the batch only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def epoch_data(count: int = 10):
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(count, 4, generator=generator)
    targets = torch.randint(0, 3, (count,), generator=generator)
    order = np.random.default_rng(2).permutation(count)
    return inputs, targets, order


def test_epoch_loss_is_the_mean_loss_over_every_sample_once():
    model, (inputs, targets, order) = Linear(), epoch_data()
    expected = F.cross_entropy(model(inputs), targets).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    model.eval()
    loss = _run_epoch(model, optimizer, inputs, targets, order, batch_size=3)
    assert loss == pytest.approx(expected, rel=1e-6)
    assert model.training  # the epoch switches the model to train mode


def test_each_batch_steps_on_its_own_gradient():
    model, (inputs, targets, order) = Linear(), epoch_data()
    manual = Linear()
    lr = 0.5
    for start in range(0, len(order), 4):  # plain SGD by hand, gradients zeroed per batch
        batch = torch.from_numpy(order[start:start + 4])
        loss = F.cross_entropy(manual(inputs[batch]), targets[batch])
        grads = torch.autograd.grad(loss, list(manual.parameters()))
        with torch.no_grad():
            for parameter, grad in zip(manual.parameters(), grads, strict=True):
                parameter -= lr * grad
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    _run_epoch(model, optimizer, inputs, targets, order, batch_size=4)
    for mine, theirs in zip(model.parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_epoch_inputs_are_the_augmented_then_preprocessed_images():
    images, _ = digits(6)
    config = TrainConfig(seed=3, augment_magnitude=0.5)
    expected = preprocess(random_augment(images, seed=3 * 1000 + 7, magnitude=0.5))
    np.testing.assert_array_equal(_epoch_inputs(images, config, 7).numpy(), expected)
    plain = TrainConfig(seed=3, augment_magnitude=0.0)
    np.testing.assert_array_equal(_epoch_inputs(images, plain, 7).numpy(), preprocess(images))


# --------------------------------------------------------------------------- train


SMALL = TrainConfig(epochs=2, batch_size=16, seed=0, augment_magnitude=0.0)


@pytest.mark.parametrize("which", ["train", "val"])
def test_train_validates_both_label_sets(which):
    images, labels = digits(20)
    bad = labels.copy()
    bad[0] = 10
    args = {"train": (images, labels), "val": (images, labels), which: (images, bad)}
    with pytest.raises(SchemaError) as exc:
        train(*args["train"], *args["val"], SMALL)
    assert "labels" in str(exc.value)


def test_an_empty_training_set_has_a_message():
    images, labels = digits(4)
    with pytest.raises(ValueError) as exc:
        train(images[:0], labels[:0], images, labels, SMALL)
    assert str(exc.value) == "train: the training set is empty"


def test_the_learning_rate_is_used():
    images, labels = digits(32)
    slow = train(images, labels, images[:8], labels[:8],
                 dataclasses.replace(SMALL, epochs=1, learning_rate=1e-4)).model
    fast = train(images, labels, images[:8], labels[:8],
                 dataclasses.replace(SMALL, epochs=1, learning_rate=1e-3)).model
    moved = [(a - b).abs().max().item() for a, b in zip(slow.parameters(), fast.parameters(),
                                                         strict=True)]
    assert max(moved) > 0


def test_int32_labels_train_like_int64_labels():
    images, labels = digits(32)
    config = dataclasses.replace(SMALL, epochs=1)
    wide = train(images, labels, images[:8], labels[:8], config).model
    narrow = train(images, labels.astype(np.int32), images[:8], labels[:8].astype(np.int32),
                   config).model
    for a, b in zip(wide.parameters(), narrow.parameters(), strict=True):
        assert torch.equal(a, b)


def test_history_reports_validation_accuracy_and_epoch_counts():
    images, labels = digits(64)
    val_images, val_labels = digits(24, seed=5)
    result = train(images, labels, val_images, val_labels, SMALL)
    assert [(s.epoch, s.epochs) for s in result.history] == [(1, 2), (2, 2)]
    predicted = predict_classes(result.model, torch.from_numpy(preprocess(val_images)))
    accuracy = float((predicted == val_labels).mean())
    assert result.history[-1].val_accuracy == pytest.approx(accuracy)
    assert accuracy > 0.0  # the bars are easy: an always-zero accuracy is a bug
    assert str(result.history[0]).startswith("epoch   1/2  loss ")


def test_an_epoch_of_one_sample_reports_that_samples_loss():
    model, (inputs, targets, _) = Linear(), epoch_data(1)
    expected = F.cross_entropy(model(inputs), targets).item()
    loss = _run_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), inputs, targets,
                      np.array([0]), batch_size=8)
    assert loss == pytest.approx(expected, rel=1e-6)


def test_predict_classes_runs_without_autograd():
    model = Linear()
    seen = []
    model.register_forward_hook(lambda module, args, output: seen.append(
        (torch.is_grad_enabled(), output.requires_grad)))
    classes = predict_classes(model, torch.randn(5, 4), batch_size=2)
    assert classes.dtype == np.int64 and classes.shape == (5,)
    assert seen == [(False, False)] * 3
    assert not model.training
