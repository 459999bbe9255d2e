"""Seeded, bit-reproducible (on CPU) training of the reference CNN.

Everything random draws from ``config.seed``: initialisation (``build_model``), the shuffle
order (a NumPy generator), dropout (a forked torch RNG) and the training augmentation.
The caller's global random state is left as it was. The loop itself is the kit's
(:func:`mlprop.reference.training.run_epochs`); the digits' own parts are here: the whole
training set augmented once per epoch, a cosine schedule stepped per epoch, and a validation
pass after every epoch that fills the history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mlprop.digits.augment import random_augment
from mlprop.digits.model import build_model
from mlprop.digits.preprocess import SCHEMA, preprocess
from mlprop.reference import training


@dataclass(frozen=True)
class TrainConfig(training.TrainConfig):
    """Hyper-parameters; ``digest()`` keys the trained-model cache."""

    epochs: int = 25
    learning_rate: float = 2e-3
    augment_magnitude: float = 0.2

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"TrainConfig.{name}: expected an int, got {value!r}")
        for name in ("learning_rate", "augment_magnitude"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                    value):
                raise ValueError(f"TrainConfig.{name}: expected a finite number, got {value!r}")
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "seed": self.seed >= 0,
            "augment_magnitude": 0.0 <= self.augment_magnitude <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainConfig.{name}: invalid value {getattr(self, name)!r}")

    def digest(self) -> str:
        return super().digest()[:16]


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    epochs: int
    loss: float
    val_accuracy: float

    def __str__(self) -> str:
        return (f"epoch {self.epoch:>3}/{self.epochs}  loss {self.loss:.4f}  "
                f"val_accuracy {self.val_accuracy:.4f}")


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochStats] = field(default_factory=list)


def predict_classes(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Argmax class of each preprocessed input, in eval mode without gradients."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            outputs.append(model(inputs[start:start + batch_size]).argmax(dim=1))
    if not outputs:
        return np.zeros(0, dtype=np.int64)
    return torch.cat(outputs).numpy().astype(np.int64)


def _epoch_inputs(images: np.ndarray, config: TrainConfig, epoch: int) -> torch.Tensor:
    if config.augment_magnitude > 0:
        images = random_augment(images, seed=config.seed * 1000 + epoch,
                                magnitude=config.augment_magnitude)
    return torch.from_numpy(preprocess(images))


def train(train_images: np.ndarray, train_labels: np.ndarray, val_images: np.ndarray,
          val_labels: np.ndarray, config: TrainConfig = TrainConfig(),
          on_epoch: Callable[[EpochStats], None] | None = None) -> TrainResult:
    """Train a fresh ``build_model(config.seed)``; returns it in eval mode and the history."""
    SCHEMA.validate(train_images, train_labels)
    SCHEMA.validate(val_images, val_labels)
    if len(train_images) == 0:
        raise ValueError("train: the training set is empty")
    model = build_model(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    targets = torch.from_numpy(np.array(train_labels, dtype=np.int64))
    val_inputs = torch.from_numpy(preprocess(val_images))
    result = TrainResult(model)

    def epoch_batches(epoch: int) -> training.BatchSource:
        return training.tensor_batches(_epoch_inputs(train_images, config, epoch + 1), targets)

    def after_epoch(epoch: int, loss: float) -> None:
        schedule.step()
        predicted = predict_classes(model, val_inputs)
        val_accuracy = float((predicted == val_labels).mean()) if len(val_labels) else 0.0
        stats = EpochStats(epoch + 1, config.epochs, loss, val_accuracy)
        result.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)

    training.run_epochs(model, optimizer, seed=config.seed, epochs=config.epochs,
                        rows=len(train_images), batch_size=config.batch_size,
                        epoch_batches=epoch_batches, after_epoch=after_epoch)
    return result


def fit(images: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int) -> nn.Module:
    """The target's ``train``: :func:`train` with ``TrainConfig(seed=seed, epochs=epochs)`` on
    raw uint8 ``images`` and int ``labels``; the model in eval mode. The evaluation pass
    between epochs runs on the training set itself (it only fills the history)."""
    config = TrainConfig(seed=seed, epochs=epochs)
    return train(images, labels, images, labels, config).model
