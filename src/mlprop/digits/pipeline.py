"""The reference pipeline end to end: data -> split -> train -> evaluate -> package -> serve.

``trained_model()`` trains once and caches the package under ``cache_dir()``, keyed by a hash
of the training config, the data and the pipeline's source; later calls (and later
processes) load and verify the cached package. ``predict`` is the serving path.

Invariant of the cache: however many processes ask for the same package at once, one
trains and writes it (under a file lock beside it, ``digits-<key>.lock``) while the others
wait and then load it; the package is written atomically, so a process killed at any
point leaves either no package or a complete one, and the lock dies with its holder.
The cache, the serving copies and the split containers are the kit's
(:mod:`mlprop.reference`); what is the digits' own is here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlprop.digits import augment, data, model, preprocess, train
from mlprop.digits.artifacts import load_package, save_package
from mlprop.digits.evaluate import Metrics, evaluate
from mlprop.reference import augment as kit_augment
from mlprop.reference import cache, checkpoints, serving, training
from mlprop.reference import splits as kit_splits
from mlprop.reference.cache import cache_dir
from mlprop.reference.splits import Dataset as Dataset
from mlprop.reference.splits import Splits

SPLIT_SEED = 0
DEFAULT_CONFIG = train.TrainConfig()
_SOURCES = (augment, data, model, preprocess, train, training, kit_augment)


def split_dataset(images: np.ndarray, labels: np.ndarray, seed: int = SPLIT_SEED) -> Splits:
    """Stratified, seeded, disjoint split; refuses one where an image leaks across parts."""
    preprocess.SCHEMA.validate(images, labels)
    parts = data.stratified_split(labels, seed=seed)
    splits = kit_splits.take(images, labels, (parts.train, parts.val, parts.test))
    data.assert_no_leakage(splits.images_by_part())
    return splits


_SPLITS: dict[int, Splits] = {}


def reference_splits(seed: int = SPLIT_SEED) -> Splits:
    """The embedded digits data, deduplicated and split (computed once per process)."""
    return kit_splits.memoised(_SPLITS, seed,
                               lambda: split_dataset(*data.load_default_dataset(), seed=seed))


def _cache_key(config: train.TrainConfig, splits: Splits) -> str:
    return cache.cache_key(config.digest(), splits, _SOURCES)


def model_dimensions() -> model.DigitCNN:
    return model.DigitCNN()


_PACKAGE = checkpoints.Checkpoints(
    fields=checkpoints.package_fields("DigitCNN", preprocess.SCHEMA, preprocess.SIZE,
                                      preprocess.MEAN, preprocess.STD),
    build=model_dimensions, save_package=save_package, load_package=load_package)
save_model = _PACKAGE.save_model
load_model = _PACKAGE.load_model


def package_model(out: str | Path, trained: nn.Module, metrics: Metrics,
                  config: train.TrainConfig, **extra: object) -> Path:
    """Write the reference model's package with everything needed to serve it."""
    return _PACKAGE.save_trained(out, trained, metrics.as_dict(), config, **extra)


def train_and_evaluate(splits: Splits, config: train.TrainConfig = DEFAULT_CONFIG,
                       on_epoch: Callable[[train.EpochStats], None] | None = None,
                       ) -> tuple[nn.Module, Metrics, list[train.EpochStats]]:
    """Train on ``splits.train`` (validating on ``val``) and evaluate on ``test``."""
    result = train.train(splits.train.images, splits.train.labels, splits.val.images,
                         splits.val.labels, config, on_epoch=on_epoch)
    inputs = torch.from_numpy(preprocess.preprocess(splits.test.images))
    metrics = evaluate(splits.test.labels, train.predict_classes(result.model, inputs),
                       model.NUM_CLASSES)
    return result.model, metrics, result.history


def _cached(path: Path) -> bool:
    """Whether a complete, verified package is at ``path``."""
    return cache.verified(lambda: load_package(path, model_dimensions))


def reference_package(config: train.TrainConfig = DEFAULT_CONFIG) -> Path:
    """Path of the cached reference package, training it first if it is missing or bad.

    Concurrent callers (threads or processes) train at most once: the check, the training
    and the write happen under ``<path>.lock``, and a caller that waited for the lock loads
    the package the holder wrote instead of training again.
    """
    splits = reference_splits()

    def build(path: Path) -> None:
        trained, metrics, _ = train_and_evaluate(splits, config)
        package_model(path, trained, metrics, config)

    return cache.build_or_load(cache_dir() / f"digits-{_cache_key(config, splits)}", _cached,
                               build, "the reference model")


_STATE: dict[str, dict[str, torch.Tensor]] = {}


def trained_model() -> nn.Module:
    """A fresh copy of the trained reference model, in eval mode (safe to modify)."""
    return serving.fresh_copy(
        _STATE, lambda: load_package(reference_package(), model_dimensions)[0], model_dimensions)


def probabilities(network: nn.Module, images: np.ndarray) -> np.ndarray:
    """Serve ``images`` through ``network``: validate, preprocess, eval-mode softmax."""
    return serving.softmax(network, preprocess.preprocess(images))


_SERVING: dict[str, nn.Module] = {}


def predict(images: np.ndarray) -> np.ndarray:
    """The deployed path: raw uint8 (N, H, W) -> probabilities (N, 10), rows sum to 1."""
    return probabilities(serving.serving_model(_SERVING, trained_model), images)


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the train split: exactly what ``trained_model()`` was trained on."""
    return reference_splits().train.copies()


def holdout() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the test split: never trained on, never used for model selection."""
    return reference_splits().test.copies()
