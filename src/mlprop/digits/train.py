"""Seeded, bit-reproducible (on CPU) training of the reference CNN.

Everything random draws from ``config.seed``: initialisation (``build_model``), the shuffle
order (a NumPy generator), dropout (a forked torch RNG) and the training augmentation.
The caller's global random state is left as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mlprop.digits.augment import random_augment
from mlprop.digits.model import build_model
from mlprop.digits.preprocess import SCHEMA, preprocess


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; ``digest()`` keys the trained-model cache."""

    epochs: int = 25
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
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
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


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


def _run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               targets: torch.Tensor, order: np.ndarray, batch_size: int) -> float:
    model.train()
    loss_fn = nn.CrossEntropyLoss(reduction="mean")
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = torch.from_numpy(order[start:start + batch_size])
        optimizer.zero_grad()
        loss = loss_fn(model(inputs[batch]), targets[batch])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / max(count, 1)


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
    shuffler = np.random.default_rng(config.seed)
    result = TrainResult(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            inputs = _epoch_inputs(train_images, config, epoch)
            order = shuffler.permutation(len(train_images))
            loss = _run_epoch(model, optimizer, inputs, targets, order, config.batch_size)
            schedule.step()
            predicted = predict_classes(model, val_inputs)
            val_accuracy = float((predicted == val_labels).mean()) if len(val_labels) else 0.0
            stats = EpochStats(epoch, config.epochs, loss, val_accuracy)
            result.history.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
    model.eval()
    return result


def fit(images: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int) -> nn.Module:
    """The target's ``train``: :func:`train` with ``TrainConfig(seed=seed, epochs=epochs)`` on
    raw uint8 ``images`` and int ``labels``; the model in eval mode. The evaluation pass
    between epochs runs on the training set itself (it only fills the history)."""
    config = TrainConfig(seed=seed, epochs=epochs)
    return train(images, labels, images, labels, config).model
