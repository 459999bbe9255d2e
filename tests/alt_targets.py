"""Two alternative *correct* targets: the property suite must not be tuned to the reference.

- ``minmax``: another preprocessing (resize to 16x16, scale to [-1, 1]) and a small MLP-like
  CNN trained on it;
- ``wide``: the reference preprocessing with another architecture (three conv blocks,
  BatchNorm, GELU, average pooling).

Both train on the reference training split (a few seconds each, once per process) and are
checked against the whole suite by ``tests/test_alternative_targets.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlprop import Target
from mlprop.digits import AUGMENTATIONS, pipeline
from mlprop.digits.preprocess import SCHEMA, preprocess, resize


def minmax_preprocess(images: np.ndarray) -> np.ndarray:
    """Resize to 16x16 and scale to [-1, 1] (no mean/std constants)."""
    SCHEMA.validate(images)
    scaled = resize(images, size=16) / np.float32(127.5) - np.float32(1.0)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32).reshape(len(images), 1, 16, 16)


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(8 * 8 * 8, 32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class WideNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        blocks = []
        channels = 1
        for width in (8, 16, 16):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width),
                       nn.GELU(), nn.AvgPool2d(2)]
            channels = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(16 * 3 * 3, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def seeded(make: Callable[[], nn.Module]) -> Callable[[int], nn.Module]:
    """``build_model(seed)`` for ``make``: the same seed gives the same parameters, drawn
    from a forked RNG (the caller's global state is untouched)."""
    def build(seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return make()

    return build


_TRAINED: dict[str, dict[str, torch.Tensor]] = {}


def train_on_reference(name: str, build: Callable[[int], nn.Module], prep, epochs: int, *,
                       lr: float = 3e-3, batch: int = 64,
                       optimizer: type[torch.optim.Optimizer] = torch.optim.Adam) -> nn.Module:
    """The model trained on the digits reference's training split (seeded; the state is
    kept for the process), in eval mode."""
    if name not in _TRAINED:
        splits = pipeline.reference_splits()
        model = build(1)
        inputs = torch.from_numpy(prep(splits.train.images))
        labels = torch.from_numpy(splits.train.labels)
        step = optimizer(model.parameters(), lr=lr)
        order_rng = np.random.default_rng(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            model.train()
            for _ in range(epochs):
                order = torch.from_numpy(order_rng.permutation(len(labels)))
                for start in range(0, len(order), batch):
                    rows = order[start:start + batch]
                    step.zero_grad()
                    nn.functional.cross_entropy(model(inputs[rows]), labels[rows]).backward()
                    step.step()
        _TRAINED[name] = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = build(0)
    fresh.load_state_dict(_TRAINED[name])
    return fresh.eval()


def reference_target(name: str, make: Callable[[], nn.Module], prep, input_shape, input_range,
                     epochs: int, *, min_accuracy: float = 0.9, **training: Any) -> Target:
    """A target on the digits reference data: ``make``'s model trained by
    :func:`train_on_reference` and served through ``prep`` with a softmax."""
    build = seeded(make)
    serving: dict[str, nn.Module] = {}

    def trained_model() -> nn.Module:
        return train_on_reference(name, build, prep, epochs, **training)

    def predict(images: np.ndarray) -> np.ndarray:
        if "model" not in serving:
            serving["model"] = trained_model()
        inputs = torch.from_numpy(prep(images))
        with torch.no_grad():
            return torch.softmax(serving["model"](inputs), dim=1).numpy()

    return Target(name=name, schema=SCHEMA, input_shape=input_shape, input_range=input_range,
                  preprocess=prep, augmentations=AUGMENTATIONS, build_model=build,
                  trained_model=trained_model, predict=predict, holdout=pipeline.holdout,
                  min_accuracy=min_accuracy)


minmax = reference_target("minmax", SmallNet, minmax_preprocess, (1, 16, 16), (-1.0, 1.0),
                          epochs=15)
wide = reference_target("wide", WideNet, preprocess, (1, 28, 28), (-0.4243, 2.8215), epochs=6)
