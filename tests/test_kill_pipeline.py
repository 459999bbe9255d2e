"""The reference pipeline's cache, packaging and splitting, with a stub trainer (fast).

``tests/test_integration.py`` trains the real reference model into a fresh cache; these
tests pin the same cache logic in milliseconds (the mutation audit runs them for every
mutant of the pipeline, where a 12-second training would not fit).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mlprop.digits import pipeline
from mlprop.digits.artifacts import MANIFEST_FILE, WEIGHTS_FILE, load_package, read_manifest
from mlprop.digits.data import LeakageError
from mlprop.digits.evaluate import evaluate
from mlprop.digits.model import build_model
from mlprop.digits.preprocess import MEAN, SCHEMA, SIZE, STD
from mlprop.digits.train import TrainConfig
from mlprop.errors import SchemaError


@pytest.fixture
def stub(monkeypatch, tmp_path):
    """A temp cache and a trainer that records its calls and returns an untrained model."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLPROP_CACHE_DIR", str(cache))
    monkeypatch.setattr(pipeline, "_STATE", {})
    monkeypatch.setattr(pipeline, "_SERVING", {})
    calls = []

    def fake_train(splits, config=pipeline.DEFAULT_CONFIG, on_epoch=None):
        calls.append((splits, config))
        labels = splits.test.labels
        return build_model(7), evaluate(labels, labels, 10), []

    monkeypatch.setattr(pipeline, "train_and_evaluate", fake_train)
    return SimpleNamespace(cache=cache, calls=calls)


def test_reference_package_trains_once_into_the_cache(stub, capsys):
    config = TrainConfig(seed=3)
    path = pipeline.reference_package(config)
    key = pipeline._cache_key(config, pipeline.reference_splits())
    assert path == stub.cache / f"digits-{key}"
    assert len(key) == 20 and int(key, 16) >= 0
    (splits, used), = stub.calls
    assert splits is pipeline.reference_splits() and used == config
    assert capsys.readouterr().err == (
        f"mlprop: training the reference model (cached at {path})\n")
    manifest = read_manifest(path)
    assert manifest["seed"] == 3 and manifest["train_config"] == asdict(config)
    loaded, _ = load_package(path, pipeline.model_dimensions)
    for name, tensor in build_model(7).state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name

    before = (path / WEIGHTS_FILE).stat().st_mtime_ns
    assert pipeline.reference_package(config) == path
    assert len(stub.calls) == 1
    assert (path / WEIGHTS_FILE).stat().st_mtime_ns == before
    assert capsys.readouterr().err == ""


def test_a_damaged_cached_package_is_trained_again(stub, capsys):
    path = pipeline.reference_package()
    (path / MANIFEST_FILE).write_text("{}")
    assert pipeline.reference_package() == path
    assert [config for _, config in stub.calls] == [pipeline.DEFAULT_CONFIG] * 2
    read_manifest(path)


def test_trained_model_is_a_fresh_eval_copy_of_the_cached_weights(stub):
    first = pipeline.trained_model()
    assert not first.training
    for name, tensor in build_model(7).state_dict().items():
        assert torch.equal(first.state_dict()[name], tensor), name
    with torch.no_grad():
        for parameter in first.parameters():
            parameter.zero_()
    second = pipeline.trained_model()
    assert not second.training and second is not first
    assert all(p.abs().sum() > 0 for p in second.parameters() if p.dim() > 1)
    assert len(stub.calls) == 1


def test_predict_serves_the_cached_model(stub):
    images, _ = pipeline.holdout()
    probabilities = pipeline.predict(images[:5])
    expected = pipeline.probabilities(pipeline.trained_model(), images[:5])
    np.testing.assert_array_equal(probabilities, expected)
    assert "reference" in pipeline._SERVING
    assert len(stub.calls) == 1


def test_holdout_is_a_copy_of_the_test_split():
    images, labels = pipeline.holdout()
    test = pipeline.reference_splits().test
    np.testing.assert_array_equal(images, test.images)
    np.testing.assert_array_equal(labels, test.labels)
    assert not np.shares_memory(images, test.images)
    assert not np.shares_memory(labels, test.labels)


# --------------------------------------------------------------------------- cache key


def test_cache_key_covers_config_training_data_and_sources(monkeypatch, tmp_path):
    splits = pipeline.reference_splits()
    config = TrainConfig()
    key = pipeline._cache_key(config, splits)
    assert pipeline._cache_key(config, splits) == key
    assert pipeline._cache_key(TrainConfig(epochs=2), splits) != key

    def changed(part: str, field: str) -> pipeline.Splits:
        dataset = getattr(splits, part)
        array = getattr(dataset, field).copy()
        array.flat[0] = array.flat[0] + 1
        replaced = pipeline.Dataset(**{**vars(dataset), field: array})
        return pipeline.Splits(**{**vars(splits), part: replaced})

    for part in ("train", "val"):
        for field in ("images", "labels"):
            assert pipeline._cache_key(config, changed(part, field)) != key, (part, field)
    assert pipeline._cache_key(config, changed("test", "images")) == key  # never trained on

    source = tmp_path / "fake_source.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(pipeline, "_SOURCES", (SimpleNamespace(__file__=str(source)),))
    with_source = pipeline._cache_key(config, splits)
    source.write_text("x = 2\n")
    assert pipeline._cache_key(config, splits) != with_source
    expected = hashlib.sha256(config.digest().encode())
    for part in (splits.train, splits.val):
        expected.update(part.images.tobytes())
        expected.update(part.labels.tobytes())
    expected.update(b"x = 2\n")
    assert pipeline._cache_key(config, splits) == expected.hexdigest()[:20]


def test_cache_dir_prefers_the_variable_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MLPROP_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pipeline.cache_dir() == tmp_path / "explicit"
    monkeypatch.setenv("MLPROP_CACHE_DIR", "")
    assert pipeline.cache_dir() == tmp_path / "xdg" / "mlprop"
    monkeypatch.delenv("MLPROP_CACHE_DIR")
    assert pipeline.cache_dir() == tmp_path / "xdg" / "mlprop"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert pipeline.cache_dir() == tmp_path / "home" / ".cache" / "mlprop"


# --------------------------------------------------------------------------- packaging


def test_package_records_architecture_preprocessing_seed_and_extras(tmp_path):
    labels = np.array([0, 1, 2])
    config = TrainConfig(seed=5, epochs=3)
    out = pipeline.package_model(tmp_path / "pkg", build_model(0),
                                 evaluate(labels, labels, 10), config, data="somewhere")
    manifest = read_manifest(out)
    assert manifest["architecture"] == "DigitCNN"
    assert manifest["preprocessing"] == {"size": SIZE, "mean": MEAN, "std": STD}
    assert manifest["schema"] == asdict(SCHEMA)
    assert manifest["seed"] == 5
    assert manifest["train_config"] == asdict(config) and manifest["data"] == "somewhere"
    assert manifest["metrics"]["accuracy"] == 1.0


def test_train_and_evaluate_passes_config_and_progress_through():
    images, labels = pipeline.reference_splits().train.images, pipeline.reference_splits(
    ).train.labels
    splits = pipeline.split_dataset(images[:90], labels[:90], seed=1)
    seen = []
    config = TrainConfig(epochs=2, augment_magnitude=0.0)
    model, metrics, history = pipeline.train_and_evaluate(splits, config, on_epoch=seen.append)
    assert [s.epoch for s in history] == [1, 2] and seen == history
    assert all(s.epochs == 2 for s in history)
    assert metrics.confusion.sum() == len(splits.test.labels)
    assert not model.training


# --------------------------------------------------------------------------- splitting


def test_split_dataset_validates_labels_too():
    images = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(SchemaError) as exc:
        pipeline.split_dataset(images, np.array([0, 1, 2, 10]))
    assert any(field.startswith("labels") for field in exc.value.fields), exc.value.fields


def test_split_dataset_names_the_parts_an_image_leaks_between():
    rng = np.random.default_rng(0)
    unique = rng.integers(0, 256, size=(30, 8, 8), dtype=np.uint8)
    images = np.concatenate([unique, unique])  # every image twice, same label
    labels = np.tile(np.arange(30) % 3, 2)
    with pytest.raises(LeakageError) as exc:
        pipeline.split_dataset(images, labels, seed=0)
    parts = {part for leak in exc.value.leaks for part in (leak.part_a, leak.part_b)}
    assert parts <= {"train", "val", "test"} and len(parts) >= 2
    message = str(exc.value)
    assert any(f"{name!r}" in message or name in message for name in ("train", "val"))


def test_model_dimensions_is_an_untrained_digit_cnn():
    model = pipeline.model_dimensions()
    assert type(model).__name__ == "DigitCNN"


# --------------------------------------------------------------------------- caching


def test_trained_model_loads_the_package_once_per_process(stub, monkeypatch):
    loads = []
    real_load = pipeline.load_package

    def counting_load(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pipeline, "load_package", counting_load)
    pipeline.trained_model()  # checks the cached package, then loads it
    first = len(loads)
    pipeline.trained_model()
    pipeline.trained_model()
    assert first >= 1 and len(loads) == first


def test_predict_builds_its_serving_model_once(stub, monkeypatch):
    built = []
    real_trained_model = pipeline.trained_model

    def counting():
        built.append(1)
        return real_trained_model()

    monkeypatch.setattr(pipeline, "trained_model", counting)
    images, _ = pipeline.holdout()
    first = pipeline.predict(images[:2])
    np.testing.assert_array_equal(pipeline.predict(images[:2]), first)
    assert built == [1]


def test_reference_splits_are_computed_once_per_seed(monkeypatch):
    from mlprop.digits import data

    monkeypatch.setattr(pipeline, "_SPLITS", {})
    splits = pipeline.reference_splits(seed=1)
    assert pipeline.reference_splits(seed=1) is splits
    expected = pipeline.split_dataset(*data.load_default_dataset(), seed=1)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(splits, part).labels,
                                      getattr(expected, part).labels)
        np.testing.assert_array_equal(getattr(splits, part).images,
                                      getattr(expected, part).images)
    other = pipeline.reference_splits(seed=2)
    assert not np.array_equal(other.test.labels, splits.test.labels) or not np.array_equal(
        other.test.images, splits.test.images)


def test_probabilities_serve_in_eval_mode_whatever_mode_the_model_is_in():
    model = build_model(0)
    images = np.random.default_rng(0).integers(0, 256, size=(4, 8, 8), dtype=np.uint8)
    model.train()  # dropout on
    first = pipeline.probabilities(model, images)
    assert not model.training
    model.train()
    np.testing.assert_array_equal(pipeline.probabilities(model, images), first)
