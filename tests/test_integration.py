"""End-to-end tests of the reference pipeline: split -> train -> evaluate -> package -> serve.

The default reference model (25 epochs) is trained at most once here, into a temporary
``MLPROP_CACHE_DIR``; every later use must come from that cache.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from mlprop.digits import pipeline
from mlprop.digits.artifacts import WEIGHTS_FILE, load_package, read_manifest
from mlprop.digits.data import find_leakage, load_default_dataset
from mlprop.digits.evaluate import evaluate
from mlprop.digits.train import TrainConfig
from mlprop.errors import PackageIntegrityError

SUBSET = 300


# ------------------------------------------------------------------- small pipeline


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The whole pipeline on 300 embedded digits, 2 epochs, packaged to a temp dir."""
    images, labels = load_default_dataset()
    splits = pipeline.split_dataset(images[:SUBSET], labels[:SUBSET], seed=0)
    config = TrainConfig(epochs=2)
    epochs_seen = []
    model, metrics, history = pipeline.train_and_evaluate(splits, config,
                                                          on_epoch=epochs_seen.append)
    out = pipeline.package_model(tmp_path_factory.mktemp("small") / "pkg", model, metrics,
                                 config, data="subset")
    return splits, config, model, metrics, history, epochs_seen, out


def test_split_of_subset_is_disjoint_and_complete(small_run):
    splits = small_run[0]
    sizes = [len(part.labels) for part in (splits.train, splits.val, splits.test)]
    assert sum(sizes) == SUBSET
    assert all(size > 0 for size in sizes)
    assert find_leakage({"train": splits.train.images, "val": splits.val.images,
                         "test": splits.test.images}) == []
    for part in (splits.train, splits.val, splits.test):
        assert part.images.dtype == np.uint8
        assert part.labels.dtype == np.int64
        assert len(part.images) == len(part.labels)
        assert set(np.unique(part.labels)) == set(range(10))  # stratified


def test_training_reports_every_epoch(small_run):
    _, config, _, _, history, epochs_seen, _ = small_run
    assert [stats.epoch for stats in history] == [1, 2]
    assert epochs_seen == history
    for stats in history:
        assert stats.epochs == config.epochs
        assert np.isfinite(stats.loss)
        assert 0.0 <= stats.val_accuracy <= 1.0


def test_metrics_describe_the_test_split(small_run):
    splits, _, _, metrics, _, _, _ = small_run
    assert metrics.confusion.shape == (10, 10)
    assert metrics.confusion.sum() == len(splits.test.labels)
    np.testing.assert_array_equal(metrics.confusion.sum(axis=1),
                                  np.bincount(splits.test.labels, minlength=10))
    assert 0.0 <= metrics.accuracy <= 1.0


def test_package_round_trips_the_trained_model(small_run):
    splits, config, model, metrics, _, _, out = small_run
    loaded, manifest = load_package(out, pipeline.model_dimensions)
    assert manifest["metrics"] == metrics.as_dict()
    assert manifest["train_config"]["epochs"] == config.epochs
    assert manifest["data"] == "subset"
    assert manifest["preprocessing"] == {"size": 28, "mean": 0.1307, "std": 0.3081}
    assert manifest["schema"] == {"num_classes": 10, "min_side": 8, "max_side": 64,
                                  "channels": 1, "layout": "HW", "size": None}
    np.testing.assert_array_equal(pipeline.probabilities(loaded, splits.test.images),
                                  pipeline.probabilities(model, splits.test.images))


def test_loaded_model_serves_probabilities(small_run):
    splits, _, _, _, _, _, out = small_run
    loaded, _ = load_package(out, pipeline.model_dimensions)
    probs = pipeline.probabilities(loaded, splits.test.images)
    assert probs.shape == (len(splits.test.labels), 10)
    assert probs.dtype == np.float32
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_probabilities_accept_an_empty_batch(small_run):
    model = small_run[2]
    assert pipeline.probabilities(model, np.zeros((0, 8, 8), np.uint8)).shape == (0, 10)


# ------------------------------------------------------------------- reference model


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The default reference package, trained once into a temp cache for this module."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("mlprop-cache")
        patch.setenv("MLPROP_CACHE_DIR", str(cache))
        patch.setattr(pipeline, "_STATE", {})
        patch.setattr(pipeline, "_SERVING", {})
        path = pipeline.reference_package()
        yield cache, path


@pytest.fixture
def no_training(monkeypatch):
    """Fail any test that would (re)train the reference model."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the reference model was retrained instead of loaded from cache")

    monkeypatch.setattr(pipeline, "train_and_evaluate", forbidden)


def test_reference_package_lives_in_the_cache_dir(reference):
    cache, path = reference
    assert pipeline.cache_dir() == cache
    assert path.parent == cache
    assert path.name.startswith("digits-")
    assert read_manifest(path)["train_config"] == asdict(TrainConfig())


def test_second_reference_package_call_reuses_the_cache(reference, no_training):
    _, path = reference
    before = (path / WEIGHTS_FILE).stat().st_mtime_ns
    assert pipeline.reference_package() == path
    assert (path / WEIGHTS_FILE).stat().st_mtime_ns == before


def test_trained_model_loads_from_cache_in_a_fresh_process_state(reference, no_training,
                                                                 monkeypatch):
    monkeypatch.setattr(pipeline, "_STATE", {})  # as if in a new process
    model = pipeline.trained_model()
    cached, _ = load_package(reference[1], pipeline.model_dimensions)
    for name, tensor in cached.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_trained_model_returns_independent_copies_in_eval_mode(reference, no_training):
    first = pipeline.trained_model()
    assert not first.training
    with torch.no_grad():
        for parameter in first.parameters():
            parameter.zero_()
    second = pipeline.trained_model()
    assert not second.training
    assert any(parameter.abs().sum() > 0 for parameter in second.parameters())


def _fake_trainer(calls: list):
    """A stand-in for train_and_evaluate: records the call, returns an untrained model."""
    def fake(splits, config=pipeline.DEFAULT_CONFIG, on_epoch=None):
        calls.append(config)
        labels = splits.test.labels
        return pipeline.model_dimensions(), evaluate(labels, labels, 10), []
    return fake


def test_corrupted_cached_package_is_detected_and_retrained(reference, monkeypatch,
                                                            tmp_path: Path, capsys):
    _, original = reference
    cache = tmp_path / "cache"
    cached = Path(shutil.copytree(original, cache / original.name))
    weights = cached / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(PackageIntegrityError):
        load_package(cached, pipeline.model_dimensions)

    monkeypatch.setenv("MLPROP_CACHE_DIR", str(cache))
    calls: list = []
    monkeypatch.setattr(pipeline, "train_and_evaluate", _fake_trainer(calls))
    assert pipeline.reference_package() == cached
    assert calls == [pipeline.DEFAULT_CONFIG]
    assert "training the reference model" in capsys.readouterr().err
    load_package(cached, pipeline.model_dimensions)  # verifies again
    # no temp leftovers (the cache's lock file stays: deleting it would race other waiters)
    assert sorted(p.name for p in cache.iterdir() if p.suffix != ".lock") == [cached.name]


def test_cache_key_depends_on_the_training_config(reference, monkeypatch):
    cache, default_path = reference
    calls: list = []
    monkeypatch.setattr(pipeline, "train_and_evaluate", _fake_trainer(calls))
    other = pipeline.reference_package(TrainConfig(epochs=1))
    assert other != default_path
    assert other.parent == cache
    assert calls == [TrainConfig(epochs=1)]
    shutil.rmtree(other)


def test_holdout_is_disjoint_from_training_data(reference):
    images, labels = pipeline.holdout()
    splits = pipeline.reference_splits()
    assert find_leakage({"train": splits.train.images, "val": splits.val.images,
                         "holdout": images}) == []
    assert images.dtype == np.uint8 and images.ndim == 3
    assert labels.dtype == np.int64 and labels.shape == (len(images),)
    assert len(images) > 100


def test_holdout_returns_copies(reference):
    images, labels = pipeline.holdout()
    test = pipeline.reference_splits().test
    assert not np.shares_memory(images, test.images)
    assert not np.shares_memory(labels, test.labels)
    images[:] = 0
    labels[:] = 0
    again_images, again_labels = pipeline.holdout()
    np.testing.assert_array_equal(again_images, test.images)
    np.testing.assert_array_equal(again_labels, test.labels)
    assert again_images.any()


def test_predict_is_accurate_on_holdout(reference, no_training):
    images, labels = pipeline.holdout()
    probs = pipeline.predict(images)
    assert probs.shape == (len(labels), 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    assert accuracy >= 0.95


def test_predict_is_deterministic_and_batch_independent(reference, no_training):
    images, _ = pipeline.holdout()
    batch = pipeline.predict(images[:16])
    np.testing.assert_array_equal(pipeline.predict(images[:16]), batch)
    np.testing.assert_allclose(pipeline.predict(images[3:4]), batch[3:4], rtol=1e-5,
                               atol=1e-6)
