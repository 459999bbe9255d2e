"""Training of the colour reference: Adam, seeded shuffling and augmentation, fixed epochs.

The loop is the kit's (:func:`mlprop.reference.training.run_epochs`, seeded by
``config.seed``); the colour's own parts are here: each batch augmented on its own with a
seed derived from the run's seed, the epoch and the step, and a one-cycle schedule stepped
after every batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlprop.colour import augment, model, preprocess
from mlprop.digits.train import predict_classes as predict_preprocessed
from mlprop.reference import training


@dataclass(frozen=True)
class TrainConfig(training.TrainConfig):
    epochs: int = 6
    learning_rate: float = 3e-3
    augment_magnitude: float = 0.3


def train(images: np.ndarray, labels: np.ndarray, config: TrainConfig = TrainConfig(),
          ) -> nn.Module:
    """Train a fresh network on uint8 (N, H, W, 3) images; returns it in eval mode."""
    network = model.build_model(config.seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, epochs=config.epochs,
        steps_per_epoch=-(-len(labels) // config.batch_size))
    targets = torch.from_numpy(labels.astype(np.int64))

    def epoch_batches(epoch: int) -> training.BatchSource:
        def batch_of(step: int, rows: np.ndarray) -> training.Batch:
            seed = (config.seed * 1_000_003 + epoch * 10_007 + step) % (2**63)
            pixels = augment.random_augment(images[rows], seed=seed,
                                            magnitude=config.augment_magnitude)
            return torch.from_numpy(preprocess.preprocess(pixels)), targets[rows]

        return batch_of

    return training.run_epochs(network, optimizer, seed=config.seed, epochs=config.epochs,
                               rows=len(labels), batch_size=config.batch_size,
                               epoch_batches=epoch_batches, after_step=scheduler.step)


def fit(images: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int) -> nn.Module:
    """The target's ``train``: :func:`train` with ``TrainConfig(seed=seed, epochs=epochs)`` on
    raw uint8 (N, H, W, 3) ``images`` and int ``labels`` (checked against the schema)."""
    preprocess.SCHEMA.validate(images, labels)
    return train(images, labels, TrainConfig(seed=seed, epochs=epochs))


def predict_classes(network: nn.Module, images: np.ndarray) -> np.ndarray:
    """Argmax class of each raw image, in eval mode without gradients (one batch)."""
    inputs = torch.from_numpy(preprocess.preprocess(images))
    return predict_preprocessed(network, inputs, batch_size=max(len(inputs), 1))
