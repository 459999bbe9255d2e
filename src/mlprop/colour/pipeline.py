"""The colour reference end to end: data -> split -> train -> package (cached) -> serve.

Like the digits pipeline, ``trained_model()`` trains once and caches the package under
``mlprop.reference.cache.cache_dir()`` (``$MLPROP_CACHE_DIR``), keyed by the training config,
the data and this package's source, under a file lock, so parallel processes train once.
The cache, the serving copies and the split containers are the kit's
(:mod:`mlprop.reference`); what is the colour's own is here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlprop.colour import augment, data, model, preprocess, train
from mlprop.digits import data as digits_data
from mlprop.digits.artifacts import load_package, save_package
from mlprop.digits.evaluate import evaluate
from mlprop.errors import SchemaError, Violation
from mlprop.reference import augment as kit_augment
from mlprop.reference import cache, checkpoints, serving, training
from mlprop.reference import splits as kit_splits
from mlprop.reference.cache import cache_dir
from mlprop.reference.splits import Dataset as Dataset
from mlprop.reference.splits import Splits

SPLIT_SEED = 0
ARCHITECTURE = "ColourResNet"
DEFAULT_CONFIG = train.TrainConfig()
_SOURCES = (augment, data, model, preprocess, train, training, kit_augment)
_SPLITS: dict[int, Splits] = {}


def _split_by_source(seed: int) -> Splits:
    images, labels, source = data.load_colour_digits()
    digits = labels[: len(labels) // 2] % 10
    parts = digits_data.stratified_split(digits, seed=seed)
    rows = tuple(np.flatnonzero(np.isin(source, indices))
                 for indices in (parts.train, parts.val, parts.test))
    return kit_splits.take(images, labels, rows)


def reference_splits(seed: int = SPLIT_SEED) -> Splits:
    """Stratified by digit over the *source* digits, so both renderings of a digit (red and
    blue) land in the same split: nothing leaks (computed once per process)."""
    return kit_splits.memoised(_SPLITS, seed, lambda: _split_by_source(seed))


def _cache_key(config: train.TrainConfig, splits: Splits) -> str:
    return cache.cache_key(config.digest(), splits, _SOURCES)


def model_dimensions() -> model.ColourResNet:
    return model.ColourResNet()


def _cached(path: Path) -> bool:
    return cache.verified(lambda: load_package(path, model_dimensions))


_PACKAGE = checkpoints.Checkpoints(
    fields=checkpoints.package_fields(ARCHITECTURE, preprocess.SCHEMA, preprocess.SIZE,
                                      list(preprocess.MEAN), list(preprocess.STD)),
    build=model_dimensions, save_package=save_package, load_package=load_package)
save_model = _PACKAGE.save_model
load_model = _PACKAGE.load_model


def reference_package(config: train.TrainConfig = DEFAULT_CONFIG) -> Path:
    """Path of the cached colour package, training it first if missing or bad (under a file
    lock: concurrent callers train at most once)."""
    splits = reference_splits()

    def build(path: Path) -> None:
        trained = train.train(splits.train.images, splits.train.labels, config)
        metrics = evaluate(splits.test.labels, train.predict_classes(trained, splits.test.images),
                           data.NUM_CLASSES)
        _PACKAGE.save_trained(path, trained, metrics.as_dict(), config)

    return cache.build_or_load(cache_dir() / f"colour-{_cache_key(config, splits)}", _cached,
                               build, "the colour reference model")


_STATE: dict[str, dict[str, torch.Tensor]] = {}
_SERVING: dict[str, nn.Module] = {}


def trained_model() -> nn.Module:
    """A fresh copy of the trained colour model, in eval mode (safe to modify)."""
    return serving.fresh_copy(
        _STATE, lambda: load_package(reference_package(), model_dimensions)[0], model_dimensions)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """Grayscale ``(N, H, W)`` -> ``(N, H, W, 3)`` with R = G = B (PIL's ``convert("RGB")``);
    any other array is returned as it is, for the schema to judge."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        if images.dtype != np.uint8:
            raise SchemaError([Violation("images.dtype", "uint8", str(images.dtype))])
        return np.repeat(images[..., np.newaxis], 3, axis=3)
    return images


def probabilities(network: nn.Module, images: np.ndarray) -> np.ndarray:
    """Serve RGB ``images`` through ``network``: validate, preprocess, eval-mode softmax."""
    return serving.softmax(network, preprocess.preprocess(images))


def predict(images: np.ndarray) -> np.ndarray:
    """The deployed path: uint8 RGB (N, H, W, 3), or grayscale (N, H, W) read as R = G = B,
    -> probabilities (N, 20)."""
    return probabilities(serving.serving_model(_SERVING, trained_model), as_rgb(images))


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the train split: exactly what ``trained_model()`` was trained on."""
    return reference_splits().train.copies()


def holdout() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the test split: never trained on, never used for model selection."""
    return reference_splits().test.copies()
