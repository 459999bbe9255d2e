"""Example-based unit tests of the reference preprocessing (resize, normalize, preprocess).

These pin specific known values and error paths; the Hypothesis properties in
``properties/test_preprocess.py`` cover the general invariants.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlprop import SchemaError
from mlprop.digits.preprocess import (
    INPUT_RANGE,
    INPUT_SHAPE,
    MEAN,
    SCHEMA,
    SIZE,
    STD,
    normalize,
    preprocess,
    resize,
)

BLACK = np.float32((0.0 - MEAN) / STD)
WHITE = np.float32((1.0 - MEAN) / STD)


def test_constants_describe_the_reference_pipeline():
    assert INPUT_SHAPE == (1, 28, 28)
    assert SIZE == 28
    assert (SCHEMA.num_classes, SCHEMA.min_side, SCHEMA.max_side) == (10, 8, 64)
    low, high = INPUT_RANGE
    assert low <= BLACK < WHITE <= high
    # the declared bounds are tight: within 1e-3 of the true extremes
    assert BLACK - low < 1e-3 and high - WHITE < 1e-3


@pytest.mark.parametrize(("value", "expected"), [(0, BLACK), (255, WHITE)])
@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 28, 28), (3, 64, 64), (2, 8, 20)])
def test_constant_images_map_to_known_values(shape, value, expected):
    images = np.full(shape, value, dtype=np.uint8)
    out = preprocess(images)
    assert out.shape == (shape[0], *INPUT_SHAPE)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 8, 8), (2, 64, 64), (3, 8, 20), (1, 20, 8), (2, 28, 28)])
def test_output_shape_and_dtype(shape):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = preprocess(images)
    assert isinstance(out, np.ndarray)
    assert out.shape == (shape[0], 1, 28, 28)
    assert out.dtype == np.float32
    assert INPUT_RANGE[0] <= out.min() and out.max() <= INPUT_RANGE[1]


def test_mid_grey_maps_to_known_value():
    out = preprocess(np.full((1, 8, 8), 128, dtype=np.uint8))
    np.testing.assert_allclose(out, (128 / 255 - MEAN) / STD, rtol=0, atol=1e-5)


def test_28x28_input_is_not_resized():
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = preprocess(images)
    np.testing.assert_array_equal(out[:, 0], normalize(images.astype(np.float32)))
    # and pixel (i, j) lands at (i, j): a single lit pixel stays where it was
    single = np.zeros((1, 28, 28), dtype=np.uint8)
    single[0, 5, 17] = 255
    lit = np.argwhere(preprocess(single)[0, 0] > BLACK)
    assert lit.tolist() == [[5, 17]]


def test_normalize_known_values_and_clipping():
    pixels = np.array([0.0, 255.0, 51.0, -10.0, 300.0], dtype=np.float32)
    out = normalize(pixels)
    assert out.dtype == np.float32
    expected = np.array([BLACK, WHITE, (0.2 - MEAN) / STD, BLACK, WHITE], dtype=np.float32)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_resize_of_constant_image_is_constant_and_in_pixel_range():
    out = resize(np.full((2, 8, 20), 200, dtype=np.uint8))
    assert out.shape == (2, 28, 28)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 200.0, atol=1e-3)
    extremes = resize(np.array([[[0, 255] * 4] * 8], dtype=np.uint8))  # a stripe pattern
    assert extremes.min() >= 0.0 and extremes.max() <= 255.0


def test_resize_empty_batch():
    out = resize(np.zeros((0, 9, 9), dtype=np.uint8))
    assert out.shape == (0, 28, 28)
    assert out.dtype == np.float32


def test_read_only_input_works_and_is_unchanged():
    images = np.random.default_rng(2).integers(0, 256, (2, 10, 12), dtype=np.uint8)
    before = images.copy()
    images.setflags(write=False)
    out = preprocess(images)
    np.testing.assert_array_equal(images, before)
    np.testing.assert_array_equal(out, preprocess(before))


def test_writable_input_is_not_modified_and_output_does_not_alias_it():
    images = np.full((1, 28, 28), 7, dtype=np.uint8)
    out = preprocess(images)
    out[...] = 0.0
    assert (images == 7).all()


@pytest.mark.parametrize("count", [0, 1])
def test_small_batches(count):
    out = preprocess(np.zeros((count, 8, 8), dtype=np.uint8))
    assert out.shape == (count, 1, 28, 28)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("images", "field"),
    [
        pytest.param(np.zeros((1, 8, 8), dtype=np.float32), "images.dtype", id="float"),
        pytest.param(np.zeros((8, 8), dtype=np.uint8), "images.ndim", id="2-D"),
        pytest.param(np.zeros((1, 1, 8, 8), dtype=np.uint8), "images.ndim", id="4-D"),
        pytest.param(np.zeros((1, 7, 8), dtype=np.uint8), "images.height", id="height-7"),
        pytest.param(np.zeros((1, 8, 7), dtype=np.uint8), "images.width", id="width-7"),
        pytest.param(np.zeros((1, 65, 8), dtype=np.uint8), "images.height", id="height-65"),
        pytest.param(np.zeros((1, 8, 65), dtype=np.uint8), "images.width", id="width-65"),
        pytest.param([[[0] * 8] * 8], "images", id="list"),
    ],
)
def test_invalid_input_raises_schema_error_naming_the_field(images, field):
    with pytest.raises(SchemaError) as info:
        preprocess(images)
    assert info.value.fields == [field]
    assert field in str(info.value)


def test_every_violation_is_reported_at_once():
    with pytest.raises(SchemaError) as info:
        preprocess(np.zeros((1, 7, 65), dtype=np.int16))
    assert info.value.fields == ["images.dtype", "images.height", "images.width"]


def test_nan_float_input_reports_non_finite_values():
    images = np.full((1, 8, 8), np.nan, dtype=np.float32)
    with pytest.raises(SchemaError) as info:
        preprocess(images)
    assert "images.values" in info.value.fields


def test_schema_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"images\.dtype"):
        preprocess(np.zeros((1, 8, 8), dtype=np.int64))
