"""Unit tests of ImageSchema.validate: every violation is listed with field/expected/actual."""

from __future__ import annotations

import numpy as np
import pytest

from mlprop import ImageSchema, SchemaError, TargetError

SCHEMA = ImageSchema(num_classes=10, min_side=8, max_side=64)


def _fields(images, labels=None) -> list[str]:
    with pytest.raises(SchemaError) as info:
        SCHEMA.validate(images, labels)
    return info.value.fields


def test_valid_batches_pass_including_empty():
    SCHEMA.validate(np.zeros((0, 8, 8), np.uint8), np.zeros(0, np.int64))
    SCHEMA.validate(np.zeros((2, 8, 64), np.uint8), np.array([0, 9]))


@pytest.mark.parametrize(
    ("images", "labels", "expected"),
    [
        (np.zeros((2, 8, 8), np.float32), None, ["images.dtype"]),
        (np.zeros((8, 8), np.uint8), None, ["images.ndim"]),
        (np.zeros((1, 1, 8, 8), np.uint8), None, ["images.ndim"]),
        (np.zeros((1, 7, 8), np.uint8), None, ["images.height"]),
        (np.zeros((1, 8, 65), np.uint8), None, ["images.width"]),
        (np.zeros((2, 8, 8), np.uint8), np.array([0, 10]), ["labels.values"]),
        (np.zeros((2, 8, 8), np.uint8), np.array([-1, 0]), ["labels.values"]),
        (np.zeros((2, 8, 8), np.uint8), np.array([0.0, 1.0]), ["labels.dtype"]),
        (np.zeros((2, 8, 8), np.uint8), np.array([0, 1, 2]), ["labels.length"]),
        (np.zeros((2, 8, 8), np.uint8), np.zeros((2, 1), np.int64), ["labels.ndim"]),
        ([[0]], None, ["images"]),
        (np.zeros((2, 8, 8), np.uint8), [0, 1], ["labels"]),
    ],
)
def test_each_violation_is_named(images, labels, expected):
    assert _fields(images, labels) == expected


def test_nan_in_float_input_is_reported_with_the_dtype():
    images = np.zeros((1, 8, 8), np.float64)
    images[0, 3, 3] = np.nan
    assert _fields(images) == ["images.dtype", "images.values"]


def test_all_violations_are_listed_at_once():
    images = np.zeros((3, 4, 100), np.int16)
    fields = _fields(images, np.array([0.5, 1.5]))
    assert fields == ["images.dtype", "images.height", "images.width", "labels.dtype",
                      "labels.length"]


def test_message_names_expected_and_actual():
    with pytest.raises(SchemaError) as info:
        SCHEMA.validate(np.zeros((1, 8, 8), np.float32))
    message = str(info.value)
    assert "images.dtype" in message and "uint8" in message and "float32" in message


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_classes=1, min_side=8, max_side=8),
        dict(num_classes=10, min_side=0, max_side=8),
        dict(num_classes=10, min_side=9, max_side=8),
        dict(num_classes=10.0, min_side=8, max_side=8),
        dict(num_classes=True, min_side=8, max_side=8),
    ],
)
def test_bad_schema_is_refused(kwargs):
    with pytest.raises(TargetError):
        ImageSchema(**kwargs)
