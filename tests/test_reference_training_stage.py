"""The reference targets' training stage (issue 25, item 4): ``mlprop.digits:target`` and
``mlprop.colour:target`` expose their own training function (``fit``: the reference loop),
training data (the train split ``trained_model()`` was trained on) and checkpoint functions
(the package writer and reader of ``mlprop.digits.artifacts``)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mlprop.colour import pipeline as colour_pipeline
from mlprop.colour import train as colour_train
from mlprop.digits import artifacts
from mlprop.digits import pipeline as digits_pipeline
from mlprop.digits import train as digits_train
from mlprop.errors import PackageIntegrityError, SchemaError
from mlprop.target import load_target
from mlprop.training_data import training_batches

REFERENCES = {
    "digits": ("mlprop.digits:target", digits_pipeline, digits_train, "DigitCNN"),
    "colour": ("mlprop.colour:target", colour_pipeline, colour_train, "ColourResNet"),
}
SMALL = 40


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def reference(request):
    spec, pipeline, train, architecture = REFERENCES[request.param]
    return load_target(spec), pipeline, train, architecture


def _small(target, count: int = SMALL) -> tuple[np.ndarray, np.ndarray]:
    images, labels = target.training_data()
    return images[:count].copy(), labels[:count].copy()


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _logits(target, model: torch.nn.Module, images: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.as_tensor(target.preprocess(images)))


def test_the_targets_expose_their_own_training_stage(reference):
    target, pipeline, train, _ = reference
    assert target.train is train.fit
    assert target.training_data is pipeline.training_data
    assert (target.save_model, target.load_model) == (pipeline.save_model, pipeline.load_model)
    parameters = inspect.signature(train.fit).parameters
    assert [p.kind for p in parameters.values()] == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD] * 2 + [inspect.Parameter.KEYWORD_ONLY] * 2
    assert target.replace(train=train.fit).train is train.fit  # accepted by validation


def test_fit_is_bitwise_reproducible_for_a_seed_and_differs_for_another(reference):
    target = reference[0]
    images, labels = _small(target)
    first = target.train(images, labels, seed=1, epochs=2)
    again = target.train(images, labels, seed=1, epochs=2)
    other = target.train(images, labels, seed=2, epochs=2)
    state, same = _state(first), _state(again)
    assert state.keys() == same.keys()
    assert [k for k in state if not torch.equal(state[k], same[k])] == []
    assert torch.equal(_logits(target, first, images), _logits(target, again, images))
    assert any(not torch.equal(state[k], v) for k, v in _state(other).items())


def test_fit_trains_for_the_epochs_it_is_given(reference):
    target = reference[0]
    images, labels = _small(target)
    once = _state(target.train(images, labels, seed=0, epochs=1))
    twice = _state(target.train(images, labels, seed=0, epochs=2))
    assert any(not torch.equal(once[k], twice[k]) for k in once)


def test_fit_leaves_the_callers_arrays_untouched(reference):
    target = reference[0]
    images, labels = _small(target)
    before = images.copy(), labels.copy()
    target.train(images, labels, seed=0, epochs=2)
    assert np.array_equal(images, before[0]) and np.array_equal(labels, before[1])
    assert labels.dtype == before[1].dtype


def test_fit_returns_an_eval_mode_module_taking_preprocess_output(reference):
    target = reference[0]
    images, labels = _small(target)
    model = target.train(images, labels, seed=0, epochs=2)
    assert isinstance(model, torch.nn.Module)
    assert [name for name, m in model.named_modules() if m.training] == []
    logits = _logits(target, model, images)
    assert logits.shape == (SMALL, target.schema.num_classes)
    assert bool(torch.isfinite(logits).all())


def test_fit_refuses_images_outside_the_schema(reference):
    target = reference[0]
    images, labels = _small(target)
    with pytest.raises(SchemaError):
        target.train(images.astype(np.float32), labels, seed=0, epochs=1)


def test_training_data_is_the_train_split_as_copies(reference):
    target, pipeline = reference[:2]
    split = pipeline.reference_splits().train
    images, labels = target.training_data()
    assert np.array_equal(images, split.images) and np.array_equal(labels, split.labels)
    assert images.dtype == split.images.dtype and labels.dtype == split.labels.dtype
    images[...] = 0
    labels[...] = 0
    assert np.array_equal(target.training_data()[0], split.images)
    assert np.array_equal(target.training_data()[1], split.labels)
    [(batch_images, _)] = list(training_batches(target))  # one batch, valid for the schema
    assert len(batch_images) == len(split.images)


def test_no_holdout_image_is_in_the_training_data(reference):
    target = reference[0]
    train_images, _ = target.training_data()
    holdout_images, _ = target.holdout()
    seen = {image.tobytes() for image in train_images}
    assert [i for i, image in enumerate(holdout_images) if image.tobytes() in seen] == []


@pytest.fixture
def trained(reference):
    """A model trained for two epochs: batch-norm buffers (colour) differ from their init."""
    target = reference[0]
    images, labels = _small(target)
    return target.train(images, labels, seed=4, epochs=2), images


def test_load_model_after_save_model_gives_the_same_state_and_outputs(reference, trained,
                                                                        tmp_path):
    target, _, _, architecture = reference
    model, images = trained
    state = _state(model)
    model.train()
    assert target.save_model(model, str(tmp_path / "ckpt")) is None
    assert model.training  # saving leaves the model as it was
    assert [k for k, v in _state(model).items() if not torch.equal(v, state[k])] == []
    loaded = target.load_model(tmp_path / "ckpt")
    assert not loaded.training
    restored = _state(loaded)
    assert restored.keys() == state.keys()
    assert [k for k in state if not torch.equal(state[k], restored[k])] == []
    model.eval()
    assert torch.equal(_logits(target, model, images), _logits(target, loaded, images))
    manifest = artifacts.read_manifest(tmp_path / "ckpt")
    assert manifest["architecture"] == architecture
    assert manifest["schema"]["num_classes"] == target.schema.num_classes


def test_save_model_writes_a_self_describing_package(reference, trained, tmp_path):
    target = reference[0]
    target.save_model(trained[0], tmp_path / "ckpt")
    manifest = json.loads((tmp_path / "ckpt" / artifacts.MANIFEST_FILE).read_bytes())
    weights = (tmp_path / "ckpt" / artifacts.WEIGHTS_FILE).read_bytes()
    assert manifest["weights"]["sha256"] == artifacts.sha256_bytes(weights)
    assert manifest["schema"] == dataclasses.asdict(target.schema)
    preprocessing = manifest["preprocessing"]
    assert preprocessing["size"] == target.input_shape[-1]
    mean, std = target.channel_normalization
    assert np.ravel(preprocessing["mean"]).tolist() == list(mean)
    assert np.ravel(preprocessing["std"]).tolist() == list(std)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt"]  # no staging left


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) * 3 // 4] ^= 0x10  # one bit, inside the tensor bytes
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("how", "reason"), [("truncated", "truncated"),
                                             ("bit-flipped", "SHA-256")])
def test_a_damaged_checkpoint_is_refused(reference, trained, tmp_path, how, reason):
    target = reference[0]
    target.save_model(trained[0], tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / artifacts.WEIGHTS_FILE
    _damage(weights, how)
    with pytest.raises(PackageIntegrityError, match=reason) as error:
        target.load_model(tmp_path / "ckpt")
    assert artifacts.WEIGHTS_FILE in str(error.value)
