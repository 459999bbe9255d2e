"""Named corruptions that shift an image distribution by a stated size (for demos and for
measuring detection power): ``brightness``, ``contrast``, ``noise``, ``rotation``.

Each takes ``uint8 (N, H, W)`` images, a size and a seed, and returns new ``uint8`` images
(values rounded and clipped to 0..255); size 0 is the identity.

- ``brightness:s``: add ``s * 255`` to every pixel (``-1 <= s <= 1``);
- ``contrast:s``: scale each image's deviations from its own mean by ``1 - s``
  (``-1 <= s <= 1``: positive lowers contrast, 1 makes the image flat gray);
- ``noise:s``: add Gaussian noise of standard deviation ``s * 255`` (``0 <= s <= 1``;
  the only one that uses the seed);
- ``rotation:s``: rotate every image by ``s`` degrees about its centre, counter-clockwise,
  bilinear, black outside (``-180 <= s <= 180``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlprop.monitor.inputs import MonitorInputError, check_images

__all__ = ["SHIFTS", "Shift", "apply_shift", "parse_shift"]


def _finish(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _brightness(images: np.ndarray, size: float, seed: int) -> np.ndarray:
    return _finish(images.astype(np.float64) + size * 255.0)


def _contrast(images: np.ndarray, size: float, seed: int) -> np.ndarray:
    values = images.astype(np.float64)
    mean = values.mean(axis=(1, 2), keepdims=True)
    return _finish(mean + (1.0 - size) * (values - mean))


def _noise(images: np.ndarray, size: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _finish(images.astype(np.float64) + rng.normal(0.0, size * 255.0, images.shape))


def _rotation(images: np.ndarray, size: float, seed: int) -> np.ndarray:
    from scipy import ndimage

    rotated = ndimage.rotate(images.astype(np.float64), size, axes=(2, 1), reshape=False,
                             order=1, mode="grid-constant", cval=0.0)
    return _finish(rotated)


_RANGES: dict[str, tuple[float, float]] = {
    "brightness": (-1.0, 1.0),
    "contrast": (-1.0, 1.0),
    "noise": (0.0, 1.0),
    "rotation": (-180.0, 180.0),
}

SHIFTS: dict[str, Callable[[np.ndarray, float, int], np.ndarray]] = {
    "brightness": _brightness,
    "contrast": _contrast,
    "noise": _noise,
    "rotation": _rotation,
}
"""Corruption name -> ``fn(images, size, seed)``."""


@dataclass(frozen=True)
class Shift:
    """A named corruption and its size, e.g. ``Shift("brightness", 0.3)``."""

    name: str
    size: float

    def __post_init__(self) -> None:
        if self.name not in SHIFTS:
            raise MonitorInputError("shift", f"one of {sorted(SHIFTS)}", repr(self.name))
        low, high = _RANGES[self.name]
        if not isinstance(self.size, int | float) or isinstance(self.size, bool) or not (
                math.isfinite(self.size) and low <= self.size <= high):
            raise MonitorInputError(f"shift {self.name}", f"a size in [{low:g}, {high:g}]",
                                    repr(self.size))

    def __str__(self) -> str:
        return f"{self.name}:{self.size:g}"

    def apply(self, images: np.ndarray, *, seed: int = 0) -> np.ndarray:
        return apply_shift(images, self, seed=seed)


def parse_shift(text: str) -> Shift:
    """``"NAME:SIZE"`` (``brightness:0.3``, ``rotation:15``) -> :class:`Shift`."""
    name, sep, size = str(text).partition(":")
    if not sep:
        raise MonitorInputError("shift", "NAME:SIZE, e.g. brightness:0.3", repr(text))
    try:
        value = float(size)
    except ValueError:
        raise MonitorInputError("shift", "NAME:SIZE with a numeric SIZE", repr(text)) from None
    return Shift(name.strip(), value)


def apply_shift(images: np.ndarray, shift: Shift | str, *, seed: int = 0,
                field: str = "images") -> np.ndarray:
    """``images`` corrupted by ``shift`` (a :class:`Shift` or ``"NAME:SIZE"``); a new array.

    Bad images raise :class:`~mlprop.monitor.inputs.MonitorInputError` naming ``field``.
    """
    if not isinstance(shift, Shift):
        shift = parse_shift(shift)
    images = check_images(images, field)
    if shift.size == 0:
        return images.copy()
    return SHIFTS[shift.name](images, float(shift.size), seed)
