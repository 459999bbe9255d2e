"""A correct occluding augmentation (random erasing / cutout, as torchvision's
``RandomErasing``) passes every augmentation property: the statistical ones must not raise
a false alarm when erased boxes land on background."""

from __future__ import annotations

import numpy as np
import pytest

import mlprop.digits
from mlprop import Augmentation
from mlprop.faults.sweep import load_properties, run_property

MAX_AREA = 0.4
"""At magnitude 1 a box covers up to 40 % of the image."""


def random_erasing(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """Per image, one box of area ``U(0.25, 1) * magnitude * MAX_AREA`` (aspect ratio
    0.5-2) at a random place, filled with black: identity at magnitude 0."""
    rng = np.random.default_rng(seed)
    out = np.array(images, copy=True)
    for image in out:
        height, width = image.shape
        area = rng.uniform(0.25, 1.0) * magnitude * MAX_AREA * height * width
        ratio = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
        box_h = min(height, round(float(np.sqrt(area * ratio))))
        box_w = min(width, round(float(np.sqrt(area / ratio))))
        top = rng.integers(0, height - box_h + 1)
        left = rng.integers(0, width - box_w + 1)
        image[top:top + box_h, left:left + box_w] = 0
    return out


OCCLUDING = mlprop.digits.target.replace(
    name="digits-with-erasing",
    augmentations={"erase": Augmentation(fn=random_erasing, label_preserving=False)})

AUGMENTATION_PROPERTIES = {name: prop for name, prop in load_properties().items()
                           if name.startswith("test_augmentation_")}


@pytest.mark.parametrize("name", sorted(AUGMENTATION_PROPERTIES))
def test_random_erasing_passes_every_augmentation_property(name):
    assert run_property(AUGMENTATION_PROPERTIES[name], OCCLUDING) is None


def test_random_erasing_is_a_real_occluder():
    images = np.full((4, 16, 16), 200, np.uint8)
    erased = random_erasing(images, seed=1, magnitude=1.0)
    assert (erased == 0).any() and (random_erasing(images, seed=1, magnitude=0.0) == images
                                    ).all()
