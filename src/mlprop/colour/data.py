"""The colour reference data set: the embedded 8x8 digits rendered in colour, offline.

Why this data set: nothing may be downloaded, and the colour data that ships with the
installed libraries is two photographs (``sklearn.datasets.load_sample_images``: a temple
and a flower, 427x640), too few to hold out anything. The 1,797 handwritten digits bundled
with scikit-learn are rendered at 32x32 (CIFAR size), ``uint8 (N, 32, 32, 3)`` channels last
as PIL and NumPy hold them, with *colour-dependent classes*: the ink is red-ish or blue-ish
and the class is ``digit + 10 * blue`` (20 classes). Each digit is rendered once in each ink
on a dark, slightly tinted background with seeded jitter (ink and background colours, a
little pixel noise), so a pipeline that swaps the red and blue channels (BGR read as RGB)
predicts the wrong class for every image, while the shape alone still tells the digit.
Both renderings of a digit land in the same split, so nothing leaks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mlprop.digits import data as digits_data

SIDE = 32
NUM_CLASSES = 20
RENDER_SEED = 0
RED, BLUE = 0, 1


def _upsample(images: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(N, 8, 8) uint8 -> (N, side, side) float32 intensities in [0, 1] (bilinear)."""
    batch = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    big = F.interpolate(batch, size=(side, side), mode="bilinear", align_corners=False)
    return big.squeeze(1).clamp(0.0, 1.0).numpy()


def render(digits: np.ndarray, inks: np.ndarray, seed: int = RENDER_SEED) -> np.ndarray:
    """Render grey (N, 8, 8) digits as uint8 (N, 32, 32, 3) with ``inks`` (0 red, 1 blue)."""
    rng = np.random.default_rng(seed)
    count = len(digits)
    strength = _upsample(digits)[..., None]
    ink = np.empty((count, 3), np.float32)
    ink[:, 1] = rng.uniform(0, 110, count)  # green: any amount, it never decides the class
    ink[:, 0] = np.where(inks == RED, rng.uniform(190, 255, count), rng.uniform(0, 70, count))
    ink[:, 2] = np.where(inks == RED, rng.uniform(0, 90, count), rng.uniform(130, 220, count))
    # a night-sky background: dark, blue-tinted (so the channel statistics differ)
    background = rng.uniform(0, 1, (count, 3)).astype(np.float32) * np.float32([20, 30, 60])
    noise = rng.normal(0.0, 4.0, (count, SIDE, SIDE, 3)).astype(np.float32)
    pixels = (strength * ink[:, None, None, :] + (1 - strength) * background[:, None, None, :]
              + noise)
    return np.rint(np.clip(pixels, 0, 255)).astype(np.uint8)


def load_colour_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images uint8 (2N, 32, 32, 3), labels int64 (2N,), source int64 (2N,))``: every
    deduplicated digit in red ink (class = digit) and in blue ink (class = digit + 10);
    ``source`` is the index of the digit it was rendered from."""
    digits, labels = digits_data.load_default_dataset()
    count = len(digits)
    inks = np.concatenate([np.full(count, RED), np.full(count, BLUE)])
    images = render(np.concatenate([digits, digits]), inks)
    classes = np.concatenate([labels, labels + 10]).astype(np.int64)
    source = np.concatenate([np.arange(count), np.arange(count)]).astype(np.int64)
    return images, classes, source
