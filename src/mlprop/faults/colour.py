"""Colour faults: channel order, layouts, grey input, per-image randomness.

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlprop.checks import as_numpy
from mlprop.faults.catalogue import fault
from mlprop.faults.planting import (
    map_augmentations,
)
from mlprop.target import Target


def _is_colour(target: Target) -> bool:
    return target.schema.channels > 1


def _model_input_has_channels(target: Target) -> bool:
    return target.input_shape[0] > 1


def _channels_reversed(target: Target, images: Any) -> Any:
    """``images`` with the channel order reversed (RGB <-> BGR), in the schema's layout."""
    schema = target.schema
    if not isinstance(images, np.ndarray) or images.ndim != schema.ndim:
        return images
    last = schema.to_channels_last(images)
    if last.shape[-1] != schema.channels:
        return images
    return schema.from_channels_last(np.ascontiguousarray(last[..., ::-1]))


@fault("preprocess", "test_preprocess_keeps_each_channel_with_its_normalisation",
       "test_predict_accuracy_on_holdout_meets_the_floor", applies=_is_colour)
def bgr_channel_order(target: Target) -> Target:
    """Reads the channels in BGR order (an OpenCV ``cv2.imread`` habit) inside preprocessing
    while the model was trained on RGB: red and blue swap places."""
    serve = target.predict
    return target.replace(
        preprocess=lambda images: target.preprocess(_channels_reversed(target, images)),
        predict=None if serve is None else lambda images: serve(
            _channels_reversed(target, images)))


def _has_asymmetric_normalization(target: Target) -> bool:
    norm = target.channel_normalization
    return _is_colour(target) and norm is not None and (
        tuple(norm[0]) != tuple(norm[0])[::-1] or tuple(norm[1]) != tuple(norm[1])[::-1])


@fault("preprocess", "test_preprocess_keeps_each_channel_with_its_normalisation",
       applies=_has_asymmetric_normalization)
def normalization_constants_reversed(target: Target) -> Target:
    """Normalises with the per-channel mean and std in the reverse channel order (constants
    copied for BGR, images read as RGB)."""
    mean, std = (np.asarray(part, np.float32).reshape(1, -1, 1, 1)
                 for part in target.channel_normalization)

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        if out.ndim != 4 or out.shape[1] != mean.shape[1]:
            return out
        pixels = out * std + mean
        return ((pixels - mean[:, ::-1]) / std[:, ::-1]).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_puts_channel_constants_on_the_channel_axis",
       applies=_model_input_has_channels)
def channels_last_viewed_as_channels_first(target: Target) -> Target:
    """Turns channels-last pixels into the model's channels-first input with ``view`` /
    ``reshape`` instead of ``permute``: the colours are smeared across height and width."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        if out.ndim != 4:
            return out
        channels_last = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        return channels_last.reshape(out.shape)

    return target.replace(preprocess=preprocess)


def _has_colour_defects(target: Target) -> bool:
    from mlprop.strategies.invalid import applicable_fields

    return bool({"images.channels", "images.layout", "images.alpha"}
                & set(applicable_fields(target.schema)))


@fault("preprocess", "test_preprocess_rejects_wrong_channels_layout_and_alpha",
       applies=_has_colour_defects)
def guesses_channel_layout(target: Target) -> Target:
    """Guesses instead of refusing: moves a channel axis that looks misplaced to where the
    schema wants it, drops a fourth (alpha) channel and repeats or cuts channels to fit."""
    schema = target.schema

    def preprocess(images):
        array = np.asarray(images)
        if array.ndim == 4 and schema.layout != "HW":
            axis = schema.channel_axis
            other = 1 if axis == 3 else 3
            if array.shape[axis] != schema.channels and array.shape[other] == schema.channels:
                array = np.moveaxis(array, other, axis)
            if array.shape[axis] != schema.channels:
                last = schema.to_channels_last(array)
                last = np.resize(last[..., :1], (*last.shape[:-1], schema.channels)) if (
                    last.shape[-1] < schema.channels) else last[..., :schema.channels]
                array = schema.from_channels_last(np.ascontiguousarray(last))
        return target.preprocess(np.ascontiguousarray(array))

    return target.replace(preprocess=preprocess)


def _has_augmentations(target: Target) -> bool:
    return bool(target.augmentations)


@fault("augment", "test_augmentation_draws_random_parameters_per_image",
       applies=_has_augmentations)
def augmentation_parameters_drawn_per_batch(target: Target) -> Target:
    """Draws one set of random parameters for the whole batch (a batch-level transform
    applied to the batch tensor): every image gets the same angle, offset or noise."""

    def wrap(fn):
        def augmented(images, *, seed, magnitude):
            if not isinstance(images, np.ndarray) or len(images) == 0:
                return fn(images, seed=seed, magnitude=magnitude)
            rows = [as_numpy(fn(images[i:i + 1], seed=seed, magnitude=magnitude))
                    for i in range(len(images))]
            return np.concatenate(rows)

        return augmented

    return map_augmentations(target, wrap)


def _accepts_grey_in_colour(target: Target) -> bool:
    return target.accepts_grey and _is_colour(target) and target.predict is not None


@fault("predict", "test_predict_gives_a_grey_image_the_same_answer_in_grey_and_in_colour",
       applies=_accepts_grey_in_colour)
def grey_into_red_channel_only(target: Target) -> Target:
    """Serves grayscale uploads by putting the grey values into the first (red) channel and
    zeros into the others, instead of R = G = B."""
    schema = target.schema

    def predict(images):
        if isinstance(images, np.ndarray) and images.ndim == 3 and schema.ndim == 4:
            last = np.zeros((*images.shape, schema.channels), np.uint8)
            last[..., 0] = images
            images = schema.from_channels_last(last)
        return target.predict(images)

    return target.replace(predict=predict)
