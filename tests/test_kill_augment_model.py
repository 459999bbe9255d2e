"""Exact behaviour of the reference augmentations, resize and CNN that the mutation audit
showed untested: the seeded draws behind each augmentation (golden comparisons with the
documented parametrization), argument errors, resize's range and dtype, and the CNN's
feature-map sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlprop.digits import augment
from mlprop.digits.augment import noise, random_augment, rotate, scale, shift
from mlprop.digits.model import DigitCNN
from mlprop.digits.preprocess import normalize, resize
from mlprop.errors import SchemaError, Violation


def images(count: int = 3, side: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, side, side),
                                                dtype=np.uint8)


def draws(seed: int, count: int, columns: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(count, columns))


def rotation(angles: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(angles), np.sin(angles)
    matrices = np.zeros((len(angles), 2, 3))
    matrices[:, 0, 0], matrices[:, 0, 1] = cos, -sin
    matrices[:, 1, 0], matrices[:, 1, 1] = sin, cos
    return matrices


def test_rotate_turns_by_magnitude_times_30_degrees_times_the_seeded_draw():
    batch = images()
    angles = np.deg2rad(0.7 * 30.0 * draws(5, 3)[:, 0])
    np.testing.assert_array_equal(rotate(batch, seed=5, magnitude=0.7),
                                  augment._affine(batch, rotation(angles)))


def test_a_quarter_turn_moves_a_corner_to_the_next_corner():
    image = np.zeros((1, 9, 9), np.uint8)
    image[0, 0, 0] = 255
    turned = augment._affine(image, rotation(np.array([np.pi / 2])))
    assert np.unravel_index(int(turned[0].argmax()), (9, 9)) in {(8, 0), (0, 8)}
    assert turned[0].max() > 200  # a rotation, not a shear: the corner stays a corner


def test_scale_zooms_by_one_plus_magnitude_times_0_3_times_the_draw():
    batch = images()
    factors = 1.0 + 0.5 * 0.3 * draws(2, 3)[:, 0]
    matrices = np.zeros((3, 2, 3))
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0 / factors
    np.testing.assert_array_equal(scale(batch, seed=2, magnitude=0.5),
                                  augment._affine(batch, matrices))


def test_shift_moves_by_magnitude_times_a_quarter_side_per_axis():
    batch = images()
    matrices = np.zeros((3, 2, 3))
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    matrices[:, :, 2] = 2.0 * 0.4 * 0.25 * draws(9, 3, 2)
    np.testing.assert_array_equal(shift(batch, seed=9, magnitude=0.4),
                                  augment._affine(batch, matrices))


def test_noise_adds_the_seeded_gaussian_draw():
    batch = images()
    jitter = np.random.default_rng(4).standard_normal(batch.shape) * (0.3 * 64.0)
    expected = np.rint(np.clip(batch + jitter, 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(noise(batch, seed=4, magnitude=0.3), expected)


@pytest.mark.parametrize("seed", [0, 11, 10**6, 2**62])
def test_random_augment_chains_rotate_shift_scale_with_derived_seeds(seed):
    batch = images()
    derived = [(seed * 3 + offset) % 2**63 for offset in range(3)]
    expected = scale(shift(rotate(batch, seed=derived[0], magnitude=0.6), seed=derived[1],
                           magnitude=0.6), seed=derived[2], magnitude=0.6)
    np.testing.assert_array_equal(random_augment(batch, seed=seed, magnitude=0.6), expected)


def test_bad_seed_and_magnitude_are_reported_together():
    with pytest.raises(SchemaError) as exc:
        rotate(images(), seed=-1, magnitude=1.5)
    assert exc.value.violations == [Violation("seed", "a non-negative int", "-1"),
                                    Violation("magnitude", "a float in [0, 1]", "1.5")]


# --------------------------------------------------------------------------- preprocess


def test_resize_stays_inside_0_255_even_where_float_rounding_overshoots():
    # bilinear weights of an 8x29 -> 28x28 resize sum to a hair over one
    out = resize(np.full((1, 8, 29), 255, np.uint8))
    assert out.dtype == np.float32
    assert out.max() <= 255.0 and out.min() > 254.99


@pytest.mark.parametrize("side", [8, 28, 40])
def test_resize_returns_float32_for_every_batch_size(side):
    for count in (0, 1, 3):
        out = resize(images(count, side))
        assert out.shape == (count, 28, 28) and out.dtype == np.float32, (count, side)


def test_resize_antialiases_when_shrinking():
    # a one-pixel checkerboard shrunk 64 -> 28 must average to grey, not alias to stripes
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)[None]
    out = resize(board)
    assert abs(float(out.mean()) - 127.5) < 2
    assert float(out.std()) < 12


def test_normalize_computes_in_float32():
    pixels = np.arange(256, dtype=np.float32)
    scaled = np.clip(pixels / np.float32(255.0), 0.0, 1.0)
    expected = ((scaled - np.float32(0.1307)) / np.float32(0.3081)).astype(np.float32)
    np.testing.assert_array_equal(normalize(pixels), expected)


# --------------------------------------------------------------------------- model


def test_conv_blocks_halve_the_side_28_14_7():
    model = DigitCNN().eval()
    x = torch.zeros(2, 1, 28, 28)
    first = model.features[:3](x)
    assert tuple(first.shape) == (2, 16, 14, 14)
    assert tuple(model.features(x).shape) == (2, 32, 7, 7)
