"""Arrays drawn as small PNGs for reports: image batches, pairs and difference heatmaps.

Everything here takes NumPy arrays (a tensor is converted by the caller) and returns PNG
bytes or ``data:`` URIs to inline in HTML (a report needs no network and no side files).
Only the first ``MAX_IMAGES`` images of a batch are drawn; each is upscaled with nearest
neighbour so an 8x8 digit stays readable.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

__all__ = ["MAX_IMAGES", "as_images", "difference", "heatmap_png", "images_png", "is_drawable",
           "png_data_uri"]

MAX_IMAGES = 8
"""Images of one batch that a report draws (the rest are counted, not drawn)."""
TILE = 96
"""Smallest side, in pixels, that one drawn image is scaled up to."""


def as_images(array: Any) -> np.ndarray | None:
    """``array`` as a stack of 2-D images ``(N, H, W)`` (or ``(N, H, W, 3)``), or None.

    Accepts raw batches ``(N, H, W)``, preprocessed or attribution batches ``(N, C, H, W)``
    (one channel: that channel; three: RGB; else the mean over channels), single images
    ``(H, W)`` and rows of scores ``(N, K)`` (drawn as one ``N x K`` map)."""
    try:
        a = np.asarray(array)
    except Exception:
        return None
    if a.dtype == object or a.size == 0 or not (np.issubdtype(a.dtype, np.number)
                                                or a.dtype == bool):
        return None
    a = a.astype(np.float64) if a.dtype == bool else a
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        return a
    if a.ndim == 4:
        channels = a.shape[1]
        if channels == 1:
            return a[:, 0]
        if channels == 3:
            return np.moveaxis(a, 1, -1)
        if a.shape[-1] in (1, 3):  # channels last
            return a[..., 0] if a.shape[-1] == 1 else a
        return a.mean(axis=1)
    return None


def is_drawable(array: Any) -> bool:
    images = as_images(array)
    return images is not None and min(images.shape[1:3]) >= 2


def _to_uint8(images: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    if images.dtype == np.uint8 and low is None:
        return images
    values = images.astype(np.float64)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if low is None and finite.size else (low or 0.0)
    hi = float(finite.max()) if high is None and finite.size else (high or 1.0)
    if hi <= lo:
        hi = lo + 1.0
    scaled = np.clip((np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo),
                     0, 1)
    return (scaled * 255 + 0.5).astype(np.uint8)


def _strip(tiles: np.ndarray, scale: int, gap: int = 4, fill: int = 255) -> np.ndarray:
    """Images ``(N, H, W[, 3])`` side by side, each scaled by ``scale``, ``gap`` apart."""
    count, height, width = tiles.shape[:3]
    colour = tiles.ndim == 4
    up = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    shape = (height * scale, count * (width * scale + gap) - gap) + ((3,) if colour else ())
    canvas = np.full(shape, fill, np.uint8)
    for index in range(count):
        left = index * (width * scale + gap)
        canvas[:, left:left + width * scale] = up[index]
    return canvas


def _scale_for(height: int, width: int) -> int:
    return max(1, min(32, -(-TILE // max(1, min(height, width)))))


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def images_png(array: Any, *, low: float | None = None, high: float | None = None) -> bytes:
    """The first ``MAX_IMAGES`` images of a batch as one greyscale PNG strip.

    uint8 images are drawn as they are; other dtypes are scaled from ``[low, high]``
    (default: their own min and max) to black..white."""
    images = as_images(array)
    if images is None:
        raise ValueError(f"not drawable as images: shape {np.shape(array)}")
    images = images[:MAX_IMAGES]
    pixels = _to_uint8(images, low, high)
    return _png(_strip(pixels, _scale_for(*images.shape[1:3])))


def heatmap_png(array: Any, *, diverging: bool = False) -> bytes:
    """A colour heatmap strip: magnitudes (``magma``, 0 = black) or signed values
    (``diverging``: ``RdBu_r`` centred on 0, as attribution maps are drawn)."""
    from matplotlib import colormaps

    images = as_images(array)
    if images is None:
        raise ValueError(f"not drawable as a heatmap: shape {np.shape(array)}")
    images = images[:MAX_IMAGES].astype(np.float64)
    if images.ndim == 4:
        images = np.abs(images).mean(axis=-1) if not diverging else images.mean(axis=-1)
    values = np.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0)
    if diverging:
        bound = float(np.abs(values).max()) or 1.0
        normed = (values / bound + 1.0) / 2.0
        cmap = colormaps["RdBu_r"]
    else:
        top = float(values.max()) or 1.0
        normed = np.clip(values / top, 0.0, 1.0)
        cmap = colormaps["magma"]
    rgb = (cmap(normed)[..., :3] * 255 + 0.5).astype(np.uint8)
    return _png(_strip(rgb, _scale_for(*images.shape[1:3])))


def difference(first: Any, second: Any) -> np.ndarray | None:
    """``|first - second|`` in float64, or None when the shapes differ."""
    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape:
        return None
    return np.abs(a.astype(np.float64) - b.astype(np.float64))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
