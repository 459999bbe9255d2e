"""Two alternative *correct* targets: the property suite must not be tuned to the reference.

- ``minmax``: another preprocessing (resize to 16x16, scale to [-1, 1]) and a small MLP-like
  CNN trained on it;
- ``wide``: the reference preprocessing with another architecture (three conv blocks,
  BatchNorm, GELU, average pooling).

Both train on the reference training split (a few seconds each, once per process) and are
checked against the whole suite by ``tests/test_alternative_targets.py``.
"""

from __future__ import annotations

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


def _seeded(cls: type[nn.Module]):
    def build(seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls()

    return build


_TRAINED: dict[str, dict[str, torch.Tensor]] = {}


def _train(name: str, build, prep, epochs: int) -> nn.Module:
    if name not in _TRAINED:
        splits = pipeline.reference_splits()
        model = build(1)
        inputs = torch.from_numpy(prep(splits.train.images))
        labels = torch.from_numpy(splits.train.labels)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        order_rng = np.random.default_rng(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            model.train()
            for _ in range(epochs):
                order = torch.from_numpy(order_rng.permutation(len(labels)))
                for start in range(0, len(order), 64):
                    batch = order[start:start + 64]
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
                    optimizer.step()
        _TRAINED[name] = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = build(0)
    fresh.load_state_dict(_TRAINED[name])
    return fresh.eval()


def _make_target(name: str, cls: type[nn.Module], prep, input_shape, input_range,
                 epochs: int) -> Target:
    build = _seeded(cls)
    serving: dict[str, nn.Module] = {}

    def trained_model() -> nn.Module:
        return _train(name, build, prep, epochs)

    def predict(images: np.ndarray) -> np.ndarray:
        if "model" not in serving:
            serving["model"] = trained_model()
        inputs = torch.from_numpy(prep(images))
        with torch.no_grad():
            return torch.softmax(serving["model"](inputs), dim=1).numpy()

    return Target(name=name, schema=SCHEMA, input_shape=input_shape, input_range=input_range,
                  preprocess=prep, augmentations=AUGMENTATIONS, build_model=build,
                  trained_model=trained_model, predict=predict, holdout=pipeline.holdout,
                  min_accuracy=0.9)


minmax = _make_target("minmax", SmallNet, minmax_preprocess, (1, 16, 16), (-1.0, 1.0),
                      epochs=15)
wide = _make_target("wide", WideNet, preprocess, (1, 28, 28), (-0.4243, 2.8215), epochs=6)
