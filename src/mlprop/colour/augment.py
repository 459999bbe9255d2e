"""Augmentations of the colour reference on uint8 (N, H, W, 3): shift, brightness, noise.

Each is ``fn(images, *, seed, magnitude)`` and draws its random parameters *per image* (a
``transforms.v2`` transform handed a whole batch tensor draws one set for all of them: the
per-image property catches that). Deterministic for a seed, the identity at magnitude 0,
a change growing with magnitude, no uint8 wrap-around, the input never written. None of
them changes the hue (a hue jitter would turn red ink blue: not label-preserving here).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mlprop.colour.preprocess import SCHEMA
from mlprop.reference.augment import check_arguments

MAX_SHIFT_FRACTION = 0.2
MAX_BRIGHTNESS_CHANGE = 0.4
MAX_NOISE_STD = 48.0


def _check_arguments(images: np.ndarray, seed: int, magnitude: float) -> None:
    check_arguments(SCHEMA, images, seed, magnitude)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(pixels, 0.0, 255.0)).astype(np.uint8)


def _uniform(seed: int, count: int, columns: int = 1) -> np.ndarray:
    """Seeded draws in [-1, 1): one row per image (per-image parameters)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(count, columns))


def shift(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Translate each image by up to ``magnitude * 20 %`` of its side (bilinear, black fill)."""
    _check_arguments(images, seed, magnitude)
    if len(images) == 0 or magnitude == 0:
        return images.copy()
    offsets = 2.0 * magnitude * MAX_SHIFT_FRACTION * _uniform(seed, len(images), 2)
    theta = np.zeros((len(images), 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = offsets
    batch = torch.from_numpy(np.array(images, np.float32)).permute(0, 3, 1, 2)
    grid = F.affine_grid(torch.from_numpy(theta), list(batch.shape), align_corners=False)
    warped = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return _to_uint8(warped.permute(0, 2, 3, 1).numpy())


def brightness(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Scale each image's pixels by a factor in ``1 +- magnitude * 0.4`` (all channels alike,
    so the hue is kept)."""
    _check_arguments(images, seed, magnitude)
    factors = 1.0 + magnitude * MAX_BRIGHTNESS_CHANGE * _uniform(seed, len(images))[:, 0]
    return _to_uint8(images.astype(np.float64) * factors.reshape(-1, 1, 1, 1))


def noise(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Add gaussian noise of standard deviation ``magnitude * 48`` levels, clipped."""
    _check_arguments(images, seed, magnitude)
    jitter = np.random.default_rng(seed).standard_normal(images.shape) * (magnitude
                                                                           * MAX_NOISE_STD)
    return _to_uint8(images.astype(np.float64) + jitter)


def random_augment(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Shift then brightness with seeds derived from ``seed`` (training)."""
    seed = int(seed)
    out = shift(images, seed=(seed * 2) % (2**63), magnitude=magnitude)
    return brightness(out, seed=(seed * 2 + 1) % (2**63), magnitude=magnitude)
