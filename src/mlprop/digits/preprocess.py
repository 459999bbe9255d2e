"""Preprocessing of the reference pipeline: resize to 28x28, normalize, float32 NCHW.

Invariants (checked by ``properties/test_preprocess.py``): deterministic, batch-independent
(fixed normalization constants, never batch statistics), never writes into its input,
float32 of shape (N, 1, 28, 28) inside ``INPUT_RANGE``, accepts N = 0 and N = 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mlprop.schema import ImageSchema

SIZE = 28
MEAN = 0.1307
STD = 0.3081
SCHEMA = ImageSchema(num_classes=10, min_side=8, max_side=64)
INPUT_SHAPE = (1, SIZE, SIZE)
# (0 - MEAN) / STD = -0.42421 and (1 - MEAN) / STD = 2.82149, rounded outward so that
# float32 rounding of the computed values can never step outside the declared bounds.
INPUT_RANGE = (-0.4243, 2.8215)


def resize(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Resize a (N, H, W) batch to (N, size, size) float32 in [0, 255].

    Bilinear with antialiasing (a triangle filter: convex weights, so values never leave
    the input's range). Each image is resized on its own pixels only.
    """
    count = images.shape[0]
    if count == 0:
        return np.zeros((0, size, size), dtype=np.float32)
    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    if batch.shape[-2:] != (size, size):
        batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
    return batch.squeeze(1).clamp(0.0, 255.0).numpy()


def normalize(pixels: np.ndarray) -> np.ndarray:
    """Map pixel values in [0, 255] to ``(x / 255 - MEAN) / STD`` with the fixed constants."""
    scaled = np.clip(pixels.astype(np.float32) / np.float32(255.0), 0.0, 1.0)
    return ((scaled - np.float32(MEAN)) / np.float32(STD)).astype(np.float32)


def preprocess(images: np.ndarray) -> np.ndarray:
    """Validate raw uint8 (N, H, W) images and return float32 (N, 1, 28, 28).

    Raises :class:`mlprop.SchemaError` naming every violation of ``SCHEMA``.
    """
    SCHEMA.validate(images)
    normalized = normalize(resize(images))
    return normalized.reshape(normalized.shape[0], *INPUT_SHAPE)
