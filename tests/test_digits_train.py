"""Example-based unit tests of seeded training (TrainConfig, train, predict_classes).

Training here is tiny (a couple of hundred 8x8 digits, one to three epochs): never the
full reference model, and nothing touches the model cache.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mlprop.digits.model import build_model
from mlprop.digits.preprocess import preprocess
from mlprop.digits.train import EpochStats, TrainConfig, TrainResult, predict_classes, train

N_TRAIN, N_VAL = 128, 40
SMALL = TrainConfig(epochs=1, batch_size=32, learning_rate=2e-3, seed=0, augment_magnitude=0.2)
TWO_EPOCHS = dataclasses.replace(SMALL, epochs=2)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Nothing here should touch the model cache; if anything does, it lands in tmp."""
    monkeypatch.setenv("MLPROP_CACHE_DIR", str(tmp_path / "mlprop-cache"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny batches: one intra-op thread is faster and immune to a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 uint8 images whose class k lights row k % 8 (and a column for k >= 8), + noise.

    Learnable, cheap, and no scikit-learn import (this file must stay fast).
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.int64) % 10
    images = rng.integers(0, 60, (count, 8, 8), dtype=np.uint8)
    images[np.arange(count), labels % 8, :] = 255
    wide = labels >= 8
    images[wide, :, 3 + labels[wide] % 8] = 255
    return images, labels


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    images, labels = _synthetic_digits(N_TRAIN, seed=0)
    val_images, val_labels = _synthetic_digits(N_VAL, seed=1)
    for array in (images, val_images):
        array.setflags(write=False)  # train must not write into its inputs
    return images, labels, val_images, val_labels


def _assert_same_state(first: torch.nn.Module, second: torch.nn.Module) -> None:
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# ------------------------------------------------------------------------ TrainConfig


def test_default_config():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.seed) == (25, 64, 0)
    assert config.learning_rate > 0
    assert 0.0 <= config.augment_magnitude <= 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", -3),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("learning_rate", -1e-3),
        ("learning_rate", math.nan),
        ("seed", -1),
        ("augment_magnitude", -0.1),
        ("augment_magnitude", 1.5),
        ("augment_magnitude", math.nan),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(field, value):
    pattern = rf"TrainConfig\.{field}: (invalid value|expected)"
    with pytest.raises(ValueError, match=pattern) as info:
        TrainConfig(**{field: value})
    assert repr(value) in str(info.value)


def test_boundary_values_are_valid():
    TrainConfig(epochs=1, batch_size=1, seed=0, augment_magnitude=0.0)
    TrainConfig(augment_magnitude=1.0, learning_rate=1e-12)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.epochs = 3


def test_digest_keys_the_config():
    assert SMALL.digest() == TrainConfig(epochs=1, batch_size=32, seed=0).digest()
    assert len(SMALL.digest()) == 16
    assert int(SMALL.digest(), 16) >= 0  # hex
    others = {dataclasses.replace(SMALL, **change).digest() for change in (
        {"epochs": 2}, {"batch_size": 16}, {"learning_rate": 1e-3}, {"seed": 1},
        {"augment_magnitude": 0.0})}
    assert SMALL.digest() not in others
    assert len(others) == 5


def test_epoch_stats_str():
    text = str(EpochStats(epoch=3, epochs=10, loss=0.123456, val_accuracy=0.5))
    assert "3/10" in text
    assert "loss 0.1235" in text
    assert "val_accuracy 0.5000" in text


# ------------------------------------------------------------------------------ train


@pytest.fixture(scope="module")
def reference(digits) -> tuple[TrainResult, list[EpochStats]]:
    """One small training (two epochs), shared by the tests that only inspect its result."""
    seen: list[EpochStats] = []
    return train(*digits, config=TWO_EPOCHS, on_epoch=seen.append), seen


def test_same_config_gives_bit_identical_weights_whatever_the_global_rng(digits, reference):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12345)  # the global states must not matter
        np.random.seed(12345)
        again = train(*digits, config=TWO_EPOCHS)
    _assert_same_state(again.model, reference[0].model)
    assert again.history == reference[0].history


def test_different_seeds_give_different_weights(digits, reference):
    other = train(*digits, config=dataclasses.replace(TWO_EPOCHS, seed=1, epochs=1))
    first, second = build_model(0).state_dict(), other.model.state_dict()
    trained = reference[0].model.state_dict()
    assert all(not torch.equal(trained[name], second[name]) for name in first)
    # and the difference is not just the different initialisation: seed 1 is not seed 0
    initial_one = build_model(1).state_dict()
    assert any(not torch.equal(initial_one[name], second[name]) for name in first)


def test_training_changes_the_initial_weights(reference):
    trained = reference[0].model.state_dict()
    initial = build_model(TWO_EPOCHS.seed).state_dict()
    for name in initial:
        assert not torch.equal(trained[name], initial[name]), name


def test_train_leaves_global_rng_states_unchanged(digits):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(77)
        np.random.seed(77)
        torch_before = torch.get_rng_state().clone()
        numpy_before = np.random.get_state()
        train(*digits, config=SMALL)
        assert torch.equal(torch.get_rng_state(), torch_before)
        numpy_after = np.random.get_state()
        assert numpy_after[0] == numpy_before[0]
        np.testing.assert_array_equal(numpy_after[1], numpy_before[1])
        assert numpy_after[2:] == numpy_before[2:]


def test_returns_model_in_eval_mode(reference):
    model = reference[0].model
    assert model.training is False
    assert all(not module.training for module in model.modules())


def test_history_and_on_epoch_callback(digits, reference):
    result, seen = reference
    assert len(result.history) == TWO_EPOCHS.epochs == 2
    assert seen == result.history
    assert [s.epoch for s in seen] == [1, 2]
    assert all(s.epochs == 2 for s in seen)
    for stats in seen:
        assert math.isfinite(stats.loss) and stats.loss > 0
        assert 0.0 <= stats.val_accuracy <= 1.0
    # the last reported val_accuracy is the returned model's accuracy on the validation set
    _, _, val_images, val_labels = digits
    predicted = predict_classes(result.model, torch.from_numpy(preprocess(val_images)))
    assert seen[-1].val_accuracy == pytest.approx(float((predicted == val_labels).mean()))


def test_on_epoch_exception_propagates(digits):
    def stop(stats: EpochStats) -> None:
        raise RuntimeError(f"stop at {stats.epoch}")

    with pytest.raises(RuntimeError, match="stop at 1"):
        train(*digits, config=SMALL, on_epoch=stop)


def test_empty_validation_set_reports_zero_accuracy(digits):
    images, labels, _, _ = digits
    empty_images = np.zeros((0, 8, 8), dtype=np.uint8)
    result = train(images[:32], labels[:32], empty_images, np.zeros(0, dtype=np.int64),
                   config=SMALL)
    assert [s.val_accuracy for s in result.history] == [0.0]


def test_empty_training_set_raises_value_error(digits):
    _, _, val_images, val_labels = digits
    with pytest.raises(ValueError, match="training set is empty"):
        train(np.zeros((0, 8, 8), dtype=np.uint8), np.zeros(0, dtype=np.int64),
              val_images, val_labels, config=SMALL)


def test_inputs_are_not_modified(digits, reference):
    # the images are read-only (a write would raise); labels are compared with fresh copies
    images, labels = _synthetic_digits(N_TRAIN, seed=0)
    val_images, val_labels = _synthetic_digits(N_VAL, seed=1)
    for array, fresh in zip(digits, (images, labels, val_images, val_labels), strict=True):
        np.testing.assert_array_equal(array, fresh)


def test_the_synthetic_task_is_learnable(digits):
    """Sanity check of the fixture: a few epochs fit the training images."""
    config = dataclasses.replace(SMALL, epochs=4, augment_magnitude=0.0, learning_rate=5e-3)
    model = train(*digits, config=config).model
    predicted = predict_classes(model, torch.from_numpy(preprocess(digits[0])))
    assert (predicted == digits[1]).mean() > 0.5


# -------------------------------------------------------------------- predict_classes


def test_predict_classes_on_empty_input():
    out = predict_classes(build_model(0), torch.zeros(0, 1, 28, 28))
    assert isinstance(out, np.ndarray)
    assert out.shape == (0,)
    assert out.dtype == np.int64


def test_predict_classes_is_argmax_in_eval_mode_and_batch_size_invariant():
    model = build_model(0)
    model.train()
    inputs = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out = predict_classes(model, inputs, batch_size=3)
    assert model.training is False  # switched to eval
    with torch.no_grad():
        expected = model(inputs).argmax(dim=1).numpy()
    assert out.dtype == np.int64
    assert out.shape == (10,)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(predict_classes(model, inputs, batch_size=512), out)
    np.testing.assert_array_equal(predict_classes(model, inputs, batch_size=1), out)
