"""Preprocessing of the colour reference, written the way ``torchvision.transforms.v2`` does
it, with torch alone: ``ToImage`` (HWC uint8 -> CHW), ``Resize(32, antialias=True)``,
``ToDtype(float32, scale=True)``, ``Normalize(MEAN, STD)``.

Invariants (``properties/test_preprocess.py``): deterministic, batch-independent (fixed
per-channel constants), never writes into its input, float32 ``(N, 3, 32, 32)`` inside
``INPUT_RANGE``, accepts N = 0 and N = 1; channel c of the output is channel c of the input
(permute, never ``view``/``reshape``), normalised with ``MEAN[c]`` and ``STD[c]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mlprop.colour.data import NUM_CLASSES, SIDE
from mlprop.schema import ImageSchema

SIZE = SIDE
MEAN = (0.18, 0.11, 0.21)
STD = (0.23, 0.08, 0.17)
"""Per-channel constants (R, G, B) on the [0, 1] scale, measured on the training images."""
SCHEMA = ImageSchema(num_classes=NUM_CLASSES, min_side=16, max_side=256, channels=3,
                     layout="HWC")
INPUT_SHAPE = (3, SIZE, SIZE)
# min over channels of -MEAN/STD = -0.11/0.08 = -1.375, max of (1-MEAN)/STD = 0.89/0.08 =
# 11.125, rounded outward so float32 rounding never steps outside.
INPUT_RANGE = (-1.3751, 11.1251)


def to_image(images: np.ndarray) -> torch.Tensor:
    """``ToImage``: uint8 (N, H, W, C) -> float32 tensor (N, C, H, W), still 0..255 (a copy:
    the caller's array is never shared)."""
    batch = torch.from_numpy(np.array(images, dtype=np.float32, copy=True))
    return batch.permute(0, 3, 1, 2).contiguous()


def resize(batch: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """``Resize((size, size), antialias=True)``: bilinear with a triangle filter, per image
    and per channel (convex weights: values stay in [0, 255])."""
    if batch.shape[0] == 0 or tuple(batch.shape[-2:]) == (size, size):
        return batch
    return F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True).clamp(0.0, 255.0)


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """``ToDtype(scale=True)`` + ``Normalize(MEAN, STD)``: ``(x / 255 - MEAN[c]) / STD[c]``."""
    mean = torch.tensor(MEAN, dtype=torch.float32).reshape(1, -1, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).reshape(1, -1, 1, 1)
    return ((batch / 255.0).clamp(0.0, 1.0) - mean) / std


def preprocess(images: np.ndarray) -> np.ndarray:
    """Validate raw uint8 (N, H, W, 3) RGB images and return float32 (N, 3, 32, 32).

    Raises :class:`mlprop.SchemaError` naming every violation of ``SCHEMA``.
    """
    SCHEMA.validate(images)
    if len(images) == 0:
        return np.zeros((0, *INPUT_SHAPE), np.float32)
    return normalize(resize(to_image(images))).numpy().astype(np.float32, copy=False)
