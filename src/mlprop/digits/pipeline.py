"""The reference pipeline end to end: data -> split -> train -> evaluate -> package -> serve.

``trained_model()`` trains once and caches the package under ``cache_dir()``, keyed by a hash
of the training config, the data and the pipeline's source; later calls (and later
processes) load and verify the cached package. ``predict`` is the serving path.

Invariant of the cache: however many processes ask for the same package at once, one
trains and writes it (under a file lock beside it, ``digits-<key>.lock``) while the others
wait and then load it; the package is written atomically, so a process killed at any
point leaves either no package or a complete one, and the lock dies with its holder.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torch import nn

from mlprop.atomic import write_error
from mlprop.digits import augment, data, model, preprocess, train
from mlprop.digits.artifacts import load_package, save_package
from mlprop.digits.evaluate import Metrics, evaluate
from mlprop.errors import PackageIntegrityError

SPLIT_SEED = 0
DEFAULT_CONFIG = train.TrainConfig()
_SOURCES = (augment, data, model, preprocess, train)


@dataclass(frozen=True)
class Dataset:
    """Images (uint8 N,H,W) and labels (int64 N,) of one split."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset


def split_dataset(images: np.ndarray, labels: np.ndarray, seed: int = SPLIT_SEED) -> Splits:
    """Stratified, seeded, disjoint split; refuses one where an image leaks across parts."""
    preprocess.SCHEMA.validate(images, labels)
    parts = data.stratified_split(labels, seed=seed)
    splits = Splits(*(Dataset(images[idx], labels[idx]) for idx in
                      (parts.train, parts.val, parts.test)))
    data.assert_no_leakage({"train": splits.train.images, "val": splits.val.images,
                            "test": splits.test.images})
    return splits


_SPLITS: dict[int, Splits] = {}


def reference_splits(seed: int = SPLIT_SEED) -> Splits:
    """The embedded digits data, deduplicated and split (computed once per process)."""
    if seed not in _SPLITS:
        _SPLITS[seed] = split_dataset(*data.load_default_dataset(), seed=seed)
    return _SPLITS[seed]


def cache_dir() -> Path:
    """``$MLPROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlprop``, else ``~/.cache/mlprop``."""
    if os.environ.get("MLPROP_CACHE_DIR"):
        return Path(os.environ["MLPROP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlprop"


def _cache_key(config: train.TrainConfig, splits: Splits) -> str:
    digest = hashlib.sha256(config.digest().encode())
    for part in (splits.train, splits.val):
        digest.update(part.images.tobytes())
        digest.update(part.labels.tobytes())
    for module in _SOURCES:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:20]


def model_dimensions() -> model.DigitCNN:
    return model.DigitCNN()


def _package_fields() -> dict[str, object]:
    return {"architecture": "DigitCNN", "schema": asdict(preprocess.SCHEMA),
            "preprocessing": {"size": preprocess.SIZE, "mean": preprocess.MEAN,
                              "std": preprocess.STD}}


def package_model(out: str | Path, trained: nn.Module, metrics: Metrics,
                  config: train.TrainConfig, **extra: object) -> Path:
    """Write the reference model's package with everything needed to serve it."""
    return save_package(out, trained, **_package_fields(), metrics=metrics.as_dict(),
                        seed=config.seed, extra={"train_config": asdict(config), **extra})


def save_model(network: nn.Module, path: str | Path) -> None:
    """The target's checkpoint writer: ``network`` as a package directory at ``path``
    (safetensors weights with their SHA-256 in the manifest, written atomically)."""
    save_package(path, network, **_package_fields(), metrics={}, seed=None)


def load_model(path: str | Path) -> nn.Module:
    """The target's checkpoint reader: the verified package at ``path``, in eval mode;
    a truncated or altered one raises :class:`PackageIntegrityError`."""
    return load_package(path, model_dimensions)[0]


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
    try:
        load_package(path, model_dimensions)
    except PackageIntegrityError:
        return False
    return True


def reference_package(config: train.TrainConfig = DEFAULT_CONFIG) -> Path:
    """Path of the cached reference package, training it first if it is missing or bad.

    Concurrent callers (threads or processes) train at most once: the check, the training
    and the write happen under ``<path>.lock``, and a caller that waited for the lock loads
    the package the holder wrote instead of training again.
    """
    splits = reference_splits()
    path = cache_dir() / f"digits-{_cache_key(config, splits)}"
    if _cached(path):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path.parent, exc) from exc
    with FileLock(path.parent / f"{path.name}.lock"):
        if not _cached(path):  # nobody else wrote it while this process waited
            print(f"mlprop: training the reference model (cached at {path})", file=sys.stderr)
            trained, metrics, _ = train_and_evaluate(splits, config)
            package_model(path, trained, metrics, config)
    return path


_STATE: dict[str, dict[str, torch.Tensor]] = {}


def trained_model() -> nn.Module:
    """A fresh copy of the trained reference model, in eval mode (safe to modify)."""
    if "reference" not in _STATE:
        trained, _ = load_package(reference_package(), model_dimensions)
        _STATE["reference"] = {k: v.clone() for k, v in trained.state_dict().items()}
    fresh = model_dimensions()
    fresh.load_state_dict(_STATE["reference"])
    return fresh.eval()


def probabilities(network: nn.Module, images: np.ndarray) -> np.ndarray:
    """Serve ``images`` through ``network``: validate, preprocess, eval-mode softmax."""
    inputs = torch.from_numpy(preprocess.preprocess(images))
    network.eval()
    with torch.inference_mode():
        logits = network(inputs)
        return torch.softmax(logits, dim=1).numpy()


_SERVING: dict[str, nn.Module] = {}


def predict(images: np.ndarray) -> np.ndarray:
    """The deployed path: raw uint8 (N, H, W) -> probabilities (N, 10), rows sum to 1."""
    if "reference" not in _SERVING:
        _SERVING["reference"] = trained_model()
    return probabilities(_SERVING["reference"], images)


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the train split: exactly what ``trained_model()`` was trained on."""
    part = reference_splits().train
    return part.images.copy(), part.labels.copy()


def holdout() -> tuple[np.ndarray, np.ndarray]:
    """Copies of the test split: never trained on, never used for model selection."""
    test = reference_splits().test
    return test.images.copy(), test.labels.copy()
