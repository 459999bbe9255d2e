"""The colour reference end to end: data -> split -> train -> package (cached) -> serve.

Like the digits pipeline, ``trained_model()`` trains once and caches the package under
``mlprop.digits.pipeline.cache_dir()`` (``$MLPROP_CACHE_DIR``), keyed by the training config,
the data and this package's source, under a file lock, so parallel processes train once.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torch import nn

from mlprop.atomic import write_error
from mlprop.colour import augment, data, model, preprocess, train
from mlprop.digits import data as digits_data
from mlprop.digits.artifacts import load_package, save_package
from mlprop.digits.evaluate import evaluate
from mlprop.digits.pipeline import cache_dir
from mlprop.errors import PackageIntegrityError, SchemaError, Violation

SPLIT_SEED = 0
ARCHITECTURE = "ColourResNet"
DEFAULT_CONFIG = train.TrainConfig()
_SOURCES = (augment, data, model, preprocess, train)


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset


_SPLITS: dict[int, Splits] = {}


def reference_splits(seed: int = SPLIT_SEED) -> Splits:
    """Stratified by digit over the *source* digits, so both renderings of a digit (red and
    blue) land in the same split: nothing leaks (computed once per process)."""
    if seed not in _SPLITS:
        images, labels, source = data.load_colour_digits()
        digits = labels[: len(labels) // 2] % 10
        parts = digits_data.stratified_split(digits, seed=seed)

        def take(indices: np.ndarray) -> Dataset:
            rows = np.flatnonzero(np.isin(source, indices))
            return Dataset(images[rows], labels[rows])

        _SPLITS[seed] = Splits(take(parts.train), take(parts.val), take(parts.test))
    return _SPLITS[seed]


def _cache_key(config: train.TrainConfig, splits: Splits) -> str:
    digest = hashlib.sha256(config.digest().encode())
    for part in (splits.train, splits.val):
        digest.update(part.images.tobytes())
        digest.update(part.labels.tobytes())
    for module in _SOURCES:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:20]


def model_dimensions() -> model.ColourResNet:
    return model.ColourResNet()


def _cached(path: Path) -> bool:
    try:
        load_package(path, model_dimensions)
    except PackageIntegrityError:
        return False
    return True


def reference_package(config: train.TrainConfig = DEFAULT_CONFIG) -> Path:
    """Path of the cached colour package, training it first if missing or bad (under a file
    lock: concurrent callers train at most once)."""
    splits = reference_splits()
    path = cache_dir() / f"colour-{_cache_key(config, splits)}"
    if _cached(path):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path.parent, exc) from exc
    with FileLock(path.parent / f"{path.name}.lock"):
        if not _cached(path):
            print(f"mlprop: training the colour reference model (cached at {path})",
                  file=sys.stderr)
            trained = train.train(splits.train.images, splits.train.labels, config)
            metrics = evaluate(splits.test.labels,
                               train.predict_classes(trained, splits.test.images),
                               data.NUM_CLASSES)
            save_package(path, trained, **_package_fields(), metrics=metrics.as_dict(),
                         seed=config.seed, extra={"train_config": asdict(config)})
    return path


def _package_fields() -> dict[str, object]:
    return {"architecture": ARCHITECTURE, "schema": asdict(preprocess.SCHEMA),
            "preprocessing": {"size": preprocess.SIZE, "mean": list(preprocess.MEAN),
                              "std": list(preprocess.STD)}}


def save_model(network: nn.Module, path: str | Path) -> None:
    """The target's checkpoint writer: ``network`` as a package directory at ``path``
    (safetensors weights with their SHA-256 in the manifest, written atomically)."""
    save_package(path, network, **_package_fields(), metrics={}, seed=None)


def load_model(path: str | Path) -> nn.Module:
    """The target's checkpoint reader: the verified package at ``path``, in eval mode;
    a truncated or altered one raises :class:`PackageIntegrityError`."""
    return load_package(path, model_dimensions)[0]


_STATE: dict[str, dict[str, torch.Tensor]] = {}


def trained_model() -> nn.Module:
    """A fresh copy of the trained colour model, in eval mode (safe to modify)."""
    if "reference" not in _STATE:
        trained, _ = load_package(reference_package(), model_dimensions)
        _STATE["reference"] = {k: v.clone() for k, v in trained.state_dict().items()}
    fresh = model_dimensions()
    fresh.load_state_dict(_STATE["reference"])
    return fresh.eval()


def as_rgb(images: np.ndarray) -> np.ndarray:
    """Grayscale ``(N, H, W)`` -> ``(N, H, W, 3)`` with R = G = B (PIL's ``convert("RGB")``);
    any other array is returned as it is, for the schema to judge."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        if images.dtype != np.uint8:
            raise SchemaError([Violation("images.dtype", "uint8", str(images.dtype))])
        return np.repeat(images[..., np.newaxis], 3, axis=3)
    return images


def probabilities(network: nn.Module, images: np.ndarray) -> np.ndarray:
    """Serve ``images`` through ``network``: validate, preprocess, eval-mode softmax."""
    inputs = torch.from_numpy(preprocess.preprocess(images))
    network.eval()
    with torch.inference_mode():
        return torch.softmax(network(inputs), dim=1).numpy()


_SERVING: dict[str, nn.Module] = {}


def predict(images: np.ndarray) -> np.ndarray:
    """The deployed path: uint8 RGB (N, H, W, 3), or grayscale (N, H, W) read as R = G = B,
    -> probabilities (N, 20)."""
    if "reference" not in _SERVING:
        _SERVING["reference"] = trained_model()
    return probabilities(_SERVING["reference"], as_rgb(images))


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the train split: exactly what ``trained_model()`` was trained on."""
    part = reference_splits().train
    return part.images.copy(), part.labels.copy()


def holdout() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the test split: never trained on, never used for model selection."""
    test = reference_splits().test
    return test.images.copy(), test.labels.copy()
