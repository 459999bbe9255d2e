"""Image-level summary features for drift detection.

Every feature is computed per image from its own pixels only (so a batch's features do not
depend on the other images or their order) and scaled to ``[0, 1]`` so images of different
sizes are comparable:

- ``mean_intensity``: mean pixel value / 255;
- ``contrast``: RMS contrast, the standard deviation of the pixels / 255;
- ``ink_area``: fraction of pixels at or above :data:`INK_THRESHOLD` (bright strokes);
- ``centre_row`` / ``centre_col``: the intensity-weighted centre of mass as a fraction of
  the height / width (0: top / left edge, 1: bottom / right); 0.5 for an all-black image.

The per-pixel intensity distribution is not a scalar feature: :mod:`mlprop.monitor.drift`
tests it position by position on the raw pixels.
"""

from __future__ import annotations

import numpy as np

from mlprop.monitor.inputs import check_images

__all__ = ["FEATURE_NAMES", "INK_THRESHOLD", "image_features"]

FEATURE_NAMES: tuple[str, ...] = (
    "mean_intensity",
    "contrast",
    "ink_area",
    "centre_row",
    "centre_col",
)
"""Column names of :func:`image_features`, in order."""

INK_THRESHOLD = 128
"""A pixel counts as ink when its value is at least this (mid-gray)."""


def image_features(images: np.ndarray, *, field: str = "images") -> np.ndarray:
    """``float64 (N, len(FEATURE_NAMES))``: one row of summary features per image.

    ``images`` must be ``uint8 (N, H, W)`` with ``N >= 1``; otherwise a
    :class:`~mlprop.monitor.inputs.MonitorInputError` naming ``field``.
    """
    images = check_images(images, field)
    n, h, w = images.shape
    # Exact integer sums, then one division each: a row's features are bit-identical
    # wherever the image sits in the batch (a float matmul's rounding is not).
    values = images.astype(np.int64)
    count = h * w
    total = values.sum(axis=(1, 2))
    squares = (values * values).sum(axis=(1, 2))
    mean = total / (255.0 * count)
    contrast = np.sqrt((count * squares - total * total) / float(count * count)) / 255.0
    ink = np.count_nonzero(images.reshape(n, count) >= INK_THRESHOLD, axis=1) / count
    row_moment = (values.sum(axis=2) * np.arange(h, dtype=np.int64)).sum(axis=1)
    col_moment = (values.sum(axis=1) * np.arange(w, dtype=np.int64)).sum(axis=1)
    dark = total == 0
    safe = np.where(dark, 1, total)
    centre_row = np.where(dark | (h == 1), 0.5, row_moment / (safe * max(h - 1, 1.0)))
    centre_col = np.where(dark | (w == 1), 0.5, col_moment / (safe * max(w - 1, 1.0)))
    return np.stack([mean, contrast, ink, centre_row, centre_col], axis=1)
