"""Faults planted in ``Target.preprocess``: batch statistics, scaling, dtype, layout.

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from mlprop.checks import as_numpy
from mlprop.faults.catalogue import fault
from mlprop.faults.planting import (
    sides_swapped,
    valid_batch,
)
from mlprop.target import Target


@fault("preprocess", "test_preprocess_is_batch_independent")
def per_batch_normalization(target: Target) -> Target:
    """Normalises with the batch's mean and std instead of fixed constants."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        if out.size == 0:
            return out
        return ((out - out.mean()) / (out.std() + 1e-6) * out.std() + out.mean() * 0.9
                ).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_output_is_finite_and_inside_declared_range")
def forgotten_scaling(target: Target) -> Target:
    """Forgets the /255: preprocessed values are 255 times too large."""
    return target.replace(preprocess=lambda images: as_numpy(target.preprocess(images)) * 255)


@fault("preprocess", "test_preprocess_output_has_declared_shape_and_dtype")
def float64_output(target: Target) -> Target:
    """Returns float64 (a NumPy normalisation with Python float constants)."""
    return target.replace(
        preprocess=lambda images: as_numpy(target.preprocess(images)).astype(np.float64))


@fault("preprocess", "test_preprocess_never_writes_into_its_input")
def preprocess_writes_into_input(target: Target) -> Target:
    """Clips the caller's array in place before preprocessing (``np.clip(out=images)``)."""

    def preprocess(images):
        if isinstance(images, np.ndarray) and images.dtype == np.uint8:
            np.clip(images, 1, 254, out=images)
        return target.preprocess(images)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_accepts_empty_and_single_batches",
       "test_preprocess_output_has_declared_shape_and_dtype")
def squeeze_single_image(target: Target) -> Target:
    """Calls ``np.squeeze`` on the output, dropping the batch axis of a batch of one."""
    return target.replace(preprocess=lambda images: np.squeeze(as_numpy(target.preprocess(images))))


@fault("preprocess", "test_preprocess_accepts_empty_and_single_batches")
def empty_batch_crash(target: Target) -> Target:
    """Preprocesses image by image and ``np.stack``s the rows: fails on an empty batch."""

    def preprocess(images):
        rows = [as_numpy(target.preprocess(images[i:i + 1]))[0] for i in range(len(images))]
        return np.stack(rows)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_rejects_invalid_images_with_a_clear_error")
def no_input_validation(target: Target) -> Target:
    """Silently casts whatever arrives to uint8 (float input wraps to garbage)."""

    def preprocess(images):
        array = np.asarray(images)
        if array.ndim == 2:
            array = array[np.newaxis]
        with np.errstate(invalid="ignore"):
            array = np.nan_to_num(array).astype(np.uint8)
        side_low, side_high = target.schema.min_side, target.schema.max_side
        if array.ndim == 3 and not (side_low <= min(array.shape[1:]) and
                                    max(array.shape[1:]) <= side_high):
            array = np.zeros((len(array), side_low, side_low), np.uint8)
        if array.ndim != 3:
            array = np.zeros((1, side_low, side_low), np.uint8)
        return target.preprocess(array)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_is_permutation_equivariant",
       "test_preprocess_is_batch_independent")
def shuffled_at_inference(target: Target) -> Target:
    """Shuffles the batch on the way through (a DataLoader with shuffle=True at inference)."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        return out[np.random.default_rng(len(out)).permutation(len(out))]

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_output_is_finite_and_inside_declared_range")
def nan_on_constant_image(target: Target) -> Target:
    """Standardises each image by its own std: divides by zero on constant images."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        spread = np.asarray(images, np.float64).std(axis=(1, 2)).reshape(-1, 1, 1, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (out * (spread / spread)).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_accepts_every_valid_memory_layout")
def from_numpy_without_copy(target: Target) -> Target:
    """Wraps the input with ``torch.from_numpy`` (no copy): fails on negative strides."""

    def preprocess(images):
        if isinstance(images, np.ndarray):
            with warnings.catch_warnings():  # torch warns about read-only arrays
                warnings.simplefilter("ignore", UserWarning)
                images = torch.from_numpy(images).numpy()
        return target.preprocess(images)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_is_deterministic")
def jitter_at_inference(target: Target) -> Target:
    """Adds random jitter in preprocessing (training-time augmentation left on)."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        low, high = target.input_range
        noise = np.random.default_rng().uniform(-1e-3, 1e-3, size=out.shape)
        return np.clip(out + noise, low, high).astype(np.float32)

    return target.replace(preprocess=preprocess)


# issue 24: orientation and the declared per-channel normalisation



def _transposable(target: Target) -> bool:
    size = target.schema.size
    return size is None or size[0] == size[1]


@fault("preprocess", "test_preprocess_keeps_the_image_orientation", applies=_transposable)
def transposed_in_preprocess(target: Target) -> Target:
    """Swaps height and width on the way to channels-first (``permute(0, 3, 2, 1)`` instead of
    ``permute(0, 3, 1, 2)`` on a channels-last batch): every image reaches the model
    transposed, and shapes still match for square inputs."""
    return target.replace(
        preprocess=lambda images: target.preprocess(sides_swapped(target, images)))


@fault("preprocess", "test_preprocess_keeps_the_image_orientation")
def upside_down_in_preprocess(target: Target) -> Target:
    """Reads the rows bottom-up (a decoder with a bottom-left origin, as in BMP files or an
    OpenGL texture read-back): every image reaches the model upside down."""

    def preprocess(images):
        if valid_batch(target, images):
            images = np.ascontiguousarray(np.flip(images, axis=target.schema.side_axes[0]))
        return target.preprocess(images)

    return target.replace(preprocess=preprocess)


def _declares_normalization(target: Target) -> bool:
    norm = target.channel_normalization
    return norm is not None and len(norm[0]) == target.input_shape[0]


def _normalization_arrays(target: Target) -> tuple[np.ndarray, np.ndarray]:
    mean, std = (np.asarray(part, np.float32).reshape(1, -1, 1, 1)
                 for part in target.channel_normalization)
    return mean, std


@fault("preprocess", "test_preprocess_normalises_constant_images_with_the_declared_constants",
       applies=_declares_normalization)
def scaled_by_image_maximum(target: Target) -> Target:
    """Scales each image by its own maximum (``x / x.max()``, clamped for black images)
    instead of by 255: a dim image comes out as bright as a saturated one, and every value
    stays inside the declared range."""
    mean, std = _normalization_arrays(target)

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        if out.ndim != 4 or out.shape[1] != mean.shape[1] or len(out) == 0:
            return out
        pixels = out * std + mean
        peak = np.maximum(pixels.max(axis=(1, 2, 3), keepdims=True), np.float32(1 / 255))
        return ((pixels / peak - mean) / std).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_normalises_constant_images_with_the_declared_constants",
       applies=_declares_normalization, catches_on={"colour": (
           "test_preprocess_normalises_constant_images_with_the_declared_constants",
           "test_preprocess_keeps_each_channel_with_its_normalisation")})
def normalized_twice(target: Target) -> Target:
    """Applies ``Normalize(mean, std)`` twice (in the dataset transform and again in a model
    wrapper), with ``input_range`` honestly widened to what comes out, so the range check
    passes."""
    mean, std = _normalization_arrays(target)
    low, high = target.input_range
    lowest = float(((low - mean) / std).min())
    highest = float(((high - mean) / std).max())

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        if out.ndim != 4 or out.shape[1] != mean.shape[1]:
            return out
        return ((out - mean) / std).astype(np.float32)

    return target.replace(preprocess=preprocess, input_range=(
        lowest - 1e-3 * (1 + abs(lowest)), highest + 1e-3 * (1 + abs(highest))))
