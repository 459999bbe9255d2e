"""Augmentations of the reference pipeline: rotate, shift, scale, gaussian noise.

Each is ``fn(images, *, seed, magnitude) -> images`` on uint8 (N, H, W) and promises:
deterministic for a seed, the identity at ``magnitude == 0``, a change that grows with
``magnitude`` (parameters are ``magnitude`` times a seeded draw), same shape and dtype,
no uint8 wrap-around (work in float, clip to [0, 255], round), and the input is never
written.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mlprop.digits.preprocess import SCHEMA
from mlprop.reference.augment import check_arguments

MAX_ROTATION_DEGREES = 30.0
MAX_SHIFT_FRACTION = 0.25
MAX_SCALE_CHANGE = 0.3
MAX_NOISE_STD = 64.0


def _check_arguments(images: np.ndarray, seed: int, magnitude: float) -> None:
    check_arguments(SCHEMA, images, seed, magnitude)


def _to_uint8(pixels: torch.Tensor | np.ndarray) -> np.ndarray:
    """Clip to [0, 255] *before* the cast, so nothing wraps around."""
    array = pixels.numpy() if isinstance(pixels, torch.Tensor) else pixels
    return np.rint(np.clip(array, 0.0, 255.0)).astype(np.uint8)


def _affine(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Warp each image by its 2x3 matrix (normalized coordinates), bilinear, zero padding."""
    if images.shape[0] == 0:
        return images.copy()
    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    theta = torch.tensor(matrices, dtype=torch.float32)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    warped = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return _to_uint8(warped.squeeze(1))


def _uniform(seed: int, count: int, columns: int = 1) -> np.ndarray:
    """Seeded draws in [-1, 1), one row per image."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(count, columns))


def rotate(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Rotate each image about its centre by up to ``magnitude * 30`` degrees."""
    _check_arguments(images, seed, magnitude)
    angles = np.deg2rad(magnitude * MAX_ROTATION_DEGREES * _uniform(seed, len(images))[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    zeros = np.zeros_like(angles)
    matrices = np.stack([np.stack([cos, -sin, zeros], 1), np.stack([sin, cos, zeros], 1)], 1)
    return _affine(images, matrices)


def shift(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Translate each image by up to ``magnitude * 25 %`` of its side on each axis."""
    _check_arguments(images, seed, magnitude)
    offsets = 2.0 * magnitude * MAX_SHIFT_FRACTION * _uniform(seed, len(images), 2)
    count = len(images)
    matrices = np.zeros((count, 2, 3))
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    matrices[:, :, 2] = offsets
    return _affine(images, matrices)


def scale(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Zoom each image about its centre by a factor in ``1 +- magnitude * 0.3``."""
    _check_arguments(images, seed, magnitude)
    factors = 1.0 + magnitude * MAX_SCALE_CHANGE * _uniform(seed, len(images))[:, 0]
    matrices = np.zeros((len(images), 2, 3))
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0 / factors
    return _affine(images, matrices)


def noise(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Add gaussian noise of standard deviation ``magnitude * 64`` grey levels, clipped."""
    _check_arguments(images, seed, magnitude)
    rng = np.random.default_rng(seed)
    jitter = rng.standard_normal(images.shape) * (magnitude * MAX_NOISE_STD)
    return _to_uint8(images.astype(np.float64) + jitter)


def random_augment(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Apply rotate, shift and scale in turn with seeds derived from ``seed`` (training)."""
    _check_arguments(images, seed, magnitude)
    seed = int(seed)  # a NumPy integer would overflow in the arithmetic below
    out = images
    for offset, fn in enumerate((rotate, shift, scale)):
        out = fn(out, seed=(seed * 3 + offset) % (2**63), magnitude=magnitude)
    return out


__all__ = ["noise", "random_augment", "rotate", "scale", "shift"]
