"""Training of the colour reference: Adam, seeded shuffling and augmentation, fixed epochs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mlprop.colour import augment, model, preprocess


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    augment_magnitude: float = 0.3
    seed: int = 0

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def train(images: np.ndarray, labels: np.ndarray, config: TrainConfig = TrainConfig(),
          ) -> nn.Module:
    """Train a fresh network on uint8 (N, H, W, 3) images; returns it in eval mode."""
    network = model.build_model(config.seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, epochs=config.epochs,
        steps_per_epoch=-(-len(labels) // config.batch_size))
    order_rng = np.random.default_rng(config.seed)
    targets = torch.from_numpy(labels.astype(np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network.train()
        for epoch in range(config.epochs):
            order = order_rng.permutation(len(labels))
            for step, start in enumerate(range(0, len(order), config.batch_size)):
                batch = order[start:start + config.batch_size]
                seed = (config.seed * 1_000_003 + epoch * 10_007 + step) % (2**63)
                pixels = augment.random_augment(images[batch], seed=seed,
                                                magnitude=config.augment_magnitude)
                inputs = torch.from_numpy(preprocess.preprocess(pixels))
                optimizer.zero_grad()
                nn.functional.cross_entropy(network(inputs), targets[batch]).backward()
                optimizer.step()
                scheduler.step()
    return network.eval()


def fit(images: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int) -> nn.Module:
    """The target's ``train``: :func:`train` with ``TrainConfig(seed=seed, epochs=epochs)`` on
    raw uint8 (N, H, W, 3) ``images`` and int ``labels`` (checked against the schema)."""
    preprocess.SCHEMA.validate(images, labels)
    return train(images, labels, TrainConfig(seed=seed, epochs=epochs))


def predict_classes(network: nn.Module, images: np.ndarray) -> np.ndarray:
    network.eval()
    with torch.inference_mode():
        return network(torch.from_numpy(preprocess.preprocess(images))).argmax(1).numpy()
