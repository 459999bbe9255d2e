"""Faults planted in the target's augmentations: seeds, uint8 wrap-around, magnitudes.

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

import numpy as np

from mlprop.checks import as_numpy
from mlprop.faults.catalogue import fault
from mlprop.faults.planting import (
    map_augmentations,
)
from mlprop.target import Augmentation, Target


@fault("augment", "test_augmentation_is_deterministic_for_a_seed")
def augmentation_ignores_seed(target: Target) -> Target:
    """Draws its randomness from the global NumPy RNG instead of ``seed``."""
    return map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: fn(
        images, seed=int(np.random.randint(0, 2**31)), magnitude=magnitude))


@fault("augment", "test_augmentation_does_not_wrap_around_on_extreme_images",
       "test_augmentation_change_vanishes_at_small_magnitude")
def noise_wraps_uint8(target: Target) -> Target:
    """Adds integer noise in uint8 arithmetic: 255 + 3 wraps to 2 (replaces every augmentation)."""

    def noisy(images, *, seed, magnitude):
        rng = np.random.default_rng(seed)
        amplitude = int(np.ceil(magnitude * 64))
        noise = rng.integers(-amplitude, amplitude + 1, size=np.shape(images))
        return np.asarray(images, np.uint8) + noise.astype(np.uint8)

    return map_augmentations(target, lambda fn: noisy)


@fault("augment", "test_augmentation_is_identity_at_zero_magnitude",
       "test_augmentation_change_vanishes_at_small_magnitude")
def shift_at_zero_magnitude(target: Target) -> Target:
    """Always shifts by one pixel on top of the augmentation, even at magnitude 0."""
    return map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: np.roll(
        as_numpy(fn(images, seed=seed, magnitude=magnitude)), 1, axis=-1))


@fault("augment", "test_augmentation_never_writes_into_its_input")
def augmentation_writes_into_input(target: Target) -> Target:
    """Writes the augmented pixels back into the caller's array (``images[...] = out``)."""

    def wrap(fn):
        def augmented(images, *, seed, magnitude):
            out = as_numpy(fn(images, seed=seed, magnitude=magnitude))
            images[...] = out
            return out

        return augmented

    return map_augmentations(target, wrap)


@fault("augment", "test_augmentation_keeps_shape_and_dtype")
def augmentation_returns_float(target: Target) -> Target:
    """Returns float32 pixels from a float-space transform, never cast back to uint8."""
    return map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: as_numpy(
        fn(images, seed=seed, magnitude=magnitude)).astype(np.float32))


@fault("augment", "test_augmentation_change_does_not_fall_as_magnitude_grows",
       "test_augmentation_is_identity_at_zero_magnitude")
def inverted_magnitude(target: Target) -> Target:
    """Uses ``1 - magnitude`` as the strength: stronger settings augment less."""
    return map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: fn(
        images, seed=seed, magnitude=1.0 - magnitude))


def _is_rgb(target: Target) -> bool:
    return target.schema.channels == 3


@fault("augment", "test_augmentation_does_not_wrap_around_on_extreme_images", applies=_is_rgb)
def greyscale_sum_wraps_uint8(target: Target) -> Target:
    """Adds a random greyscale (each image with probability ``magnitude / 2``) that averages
    the channels in uint8 arithmetic, ``(R + G + B) // 3``: the sum wraps, so white becomes
    84 instead of 255, on the few images the draw picks."""
    schema = target.schema

    def greyscale(images, *, seed, magnitude):
        last = schema.to_channels_last(np.asarray(images))
        chosen = np.random.default_rng(seed).random(len(last)) < magnitude / 2
        out = last.copy()
        picked = last[chosen]
        out[chosen] = ((picked[..., 0] + picked[..., 1] + picked[..., 2]) // 3)[..., None]
        return schema.from_channels_last(out)

    return target.replace(augmentations={
        **target.augmentations, "greyscale": Augmentation(fn=greyscale, label_preserving=False)})


@fault("augment", "test_augmentation_does_not_wrap_around_on_extreme_images")
def brightness_wraps_uint8(target: Target) -> Target:
    """Adds a random brightening, applied to a random half of the images, that adds up to
    ``magnitude * 64`` grey levels in uint8 arithmetic: bright pixels wrap (250 + 8 -> 2)
    while dark ones are fine."""

    def brighten(images, *, seed, magnitude):
        images = np.asarray(images)
        rng = np.random.default_rng(seed)
        applied = rng.random(len(images)) < 0.5
        deltas = (magnitude * 64 * rng.random(len(images))).astype(np.uint8) * applied
        return images + deltas.astype(np.uint8).reshape((-1,) + (1,) * (images.ndim - 1))

    return target.replace(augmentations={
        **target.augmentations, "brighten": Augmentation(fn=brighten, label_preserving=True)})
