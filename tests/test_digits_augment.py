"""Example-based unit tests of the reference augmentations (rotate, shift, scale, noise).

Specific known cases and error paths; the general invariants are properties in
``properties/test_augment.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlprop import SchemaError
from mlprop.digits.augment import (
    MAX_SHIFT_FRACTION,
    noise,
    random_augment,
    rotate,
    scale,
    shift,
)

AUGMENTATIONS = [rotate, shift, scale, noise, random_augment]
GEOMETRIC = [rotate, shift, scale]
IDS = [fn.__name__ for fn in AUGMENTATIONS]

# random_augment derives per-step seeds as (seed * 3 + k) % 2**63 *before* any validation:
# -1 and True become valid seeds, 1.5 is reported as 4.5, "3" and None raise TypeError.
_SEED_BUG = ("src bug: random_augment transforms the seed before validating it, so bad "
             "seeds are accepted or fail with the wrong error")


def _with_random_augment_bug(reason: str) -> list:
    """AUGMENTATIONS as params (random_augment's seed check was once a bug: ``reason``)."""
    return [pytest.param(fn, id=fn.__name__) for fn in AUGMENTATIONS]


def _images(shape=(4, 16, 20), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _digit_like(shape=(3, 28, 28)) -> np.ndarray:
    """A bright off-centre block on black: any rotation, shift or zoom moves pixels."""
    images = np.zeros(shape, dtype=np.uint8)
    images[:, 4:14, 6:12] = 255
    images[:, 18:22, 15:25] = 128
    return images


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
@pytest.mark.parametrize("shape", [(4, 16, 20), (1, 8, 8), (2, 64, 64)])
def test_identity_at_zero_magnitude(fn, shape):
    images = _images(shape)
    out = fn(images, seed=123, magnitude=0.0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_integer_zero_magnitude_is_accepted(fn):
    images = _images()
    np.testing.assert_array_equal(fn(images, seed=0, magnitude=0), images)


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_same_seed_gives_same_bytes(fn):
    images = _digit_like()
    first = fn(images, seed=7, magnitude=0.8)
    second = fn(images.copy(), seed=7, magnitude=0.8)
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_different_seeds_differ_at_full_magnitude(fn):
    images = _digit_like()
    assert not np.array_equal(fn(images, seed=1, magnitude=1.0),
                              fn(images, seed=2, magnitude=1.0))


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_full_magnitude_changes_the_images(fn):
    images = _digit_like()
    assert not np.array_equal(fn(images, seed=5, magnitude=1.0), images)


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 8, 20), (1, 64, 9)])
def test_uint8_in_uint8_out_same_shape(fn, shape):
    images = _images(shape, seed=3)
    out = fn(images, seed=11, magnitude=0.6)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == shape


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_empty_batch(fn):
    images = np.zeros((0, 12, 10), dtype=np.uint8)
    out = fn(images, seed=0, magnitude=0.5)
    assert out.shape == (0, 12, 10)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_input_is_not_written(fn):
    images = _digit_like()
    before = images.copy()
    fn(images, seed=9, magnitude=1.0)
    np.testing.assert_array_equal(images, before)


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_read_only_input_works(fn):
    images = _digit_like()
    expected = fn(images.copy(), seed=9, magnitude=1.0)
    images.setflags(write=False)
    np.testing.assert_array_equal(fn(images, seed=9, magnitude=1.0), expected)


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_output_does_not_alias_input_at_zero_magnitude(fn):
    images = _images()
    out = fn(images, seed=0, magnitude=0.0)
    assert not np.shares_memory(out, images)


def test_noise_on_saturated_image_clips_instead_of_wrapping():
    white = np.full((2, 28, 28), 255, dtype=np.uint8)
    out = noise(white, seed=0, magnitude=1.0)
    # half the jitter is positive: with clipping it stays at 255; with uint8 wrap-around
    # 255 + small would become small values instead
    assert np.quantile(out, 0.6) == 255
    assert (out == 255).mean() > 0.4
    assert (out < 128).mean() < 0.05  # only the rare < -2 sigma draws fall that far
    # and the mild noise keeps a saturated region bright
    mild = noise(white, seed=0, magnitude=0.05)  # std 3.2 grey levels
    assert mild.min() > 230


def test_noise_on_black_image_clips_instead_of_wrapping():
    black = np.zeros((2, 28, 28), dtype=np.uint8)
    out = noise(black, seed=0, magnitude=1.0)
    assert np.quantile(out, 0.4) == 0
    assert (out == 0).mean() > 0.4
    assert (out > 128).mean() < 0.05
    assert noise(black, seed=0, magnitude=0.05).max() < 25


@pytest.mark.parametrize("fn", GEOMETRIC, ids=[fn.__name__ for fn in GEOMETRIC])
def test_geometric_augmentation_keeps_a_saturated_centre_saturated(fn):
    white = np.full((3, 28, 28), 255, dtype=np.uint8)
    out = fn(white, seed=4, magnitude=1.0)
    # the centre stays inside the image under +-30 deg, +-25 % shift (<= 7 px), zoom
    assert out[:, 12:16, 12:16].min() >= 254


def test_noise_standard_deviation_grows_with_magnitude():
    grey = np.full((4, 32, 32), 128, dtype=np.uint8)
    stds = [float((noise(grey, seed=3, magnitude=m).astype(float) - 128).std())
            for m in (0.1, 0.2, 0.4)]
    # MAX_NOISE_STD = 64: std ~ magnitude * 64 (no clipping at these levels)
    np.testing.assert_allclose(stds, [6.4, 12.8, 25.6], rtol=0.05)


def _centroid(image: np.ndarray) -> np.ndarray:
    weights = image.astype(np.float64)
    rows, cols = np.indices(image.shape)
    return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("magnitude", [0.5, 1.0])
def test_shift_moves_a_lit_block_by_the_seeded_amount(seed, magnitude):
    height, width = 40, 60  # non-square: catches a swap of the x and y axes
    image = np.zeros((1, height, width), dtype=np.uint8)
    image[0, 19:22, 29:32] = 255  # 3x3 block centred at (20, 30)
    out = shift(image, seed=seed, magnitude=magnitude)
    # theta's translation (tx, ty) = 2 * magnitude * 0.25 * u with u ~ U[-1, 1) drawn from
    # default_rng(seed); grid_sample reads input at output + t, so content moves by -t,
    # i.e. by -tx * width / 2 columns and -ty * height / 2 rows.
    tx, ty = 2 * magnitude * MAX_SHIFT_FRACTION * np.random.default_rng(seed).uniform(
        -1.0, 1.0, size=(1, 2))[0]
    expected = np.array([20 - ty * height / 2, 30 - tx * width / 2])
    np.testing.assert_allclose(_centroid(out[0]), expected, atol=0.25)
    # bounded by 25 % of each side
    moved = _centroid(out[0]) - [20, 30]
    assert abs(moved[0]) <= 0.25 * height * magnitude + 0.25
    assert abs(moved[1]) <= 0.25 * width * magnitude + 0.25


def test_shift_displacement_is_proportional_to_magnitude():
    image = np.zeros((1, 40, 40), dtype=np.uint8)
    image[0, 19:22, 19:22] = 255
    half = _centroid(shift(image, seed=5, magnitude=0.5)[0]) - 20
    full = _centroid(shift(image, seed=5, magnitude=1.0)[0]) - 20
    np.testing.assert_allclose(full, 2 * half, atol=0.3)
    assert np.abs(full).max() > 1.0  # the seed actually moves it


def test_rotate_preserves_the_centroid_of_a_centred_block():
    image = np.zeros((1, 29, 29), dtype=np.uint8)
    image[0, 10:19, 12:17] = 255  # centred on the image centre (14, 14)
    out = rotate(image, seed=1, magnitude=1.0)
    assert not np.array_equal(out, image)
    np.testing.assert_allclose(_centroid(out[0]), [14, 14], atol=0.2)


def test_rotate_by_the_seeded_angle():
    image = np.zeros((1, 41, 41), dtype=np.uint8)
    image[0, 20, 20:36] = 255  # a horizontal bar from the centre to the right
    image[0, 19:22, 19:22] = 255
    out = rotate(image, seed=2, magnitude=1.0)
    angle = 30.0 * np.random.default_rng(2).uniform(-1.0, 1.0, size=(1, 1))[0, 0]
    rows, cols = np.nonzero(out[0] > 127)
    # the bar's direction (about the centre (20, 20)) turned by |angle| degrees
    far = np.argmax((rows - 20) ** 2 + (cols - 20) ** 2)
    turned = math.degrees(math.atan2(rows[far] - 20, cols[far] - 20))
    assert abs(abs(turned) - abs(angle)) < 4.0
    assert abs(angle) > 5.0  # the seed produces a visible rotation


def test_scale_zooms_about_the_centre():
    image = np.zeros((1, 41, 41), dtype=np.uint8)
    image[0, 15:26, 15:26] = 255  # 11x11 centred square
    factor = 1.0 + 0.3 * np.random.default_rng(0).uniform(-1.0, 1.0, size=(1, 1))[0, 0]
    out = scale(image, seed=0, magnitude=1.0)
    np.testing.assert_allclose(_centroid(out[0]), [20, 20], atol=0.2)
    area = out[0].astype(np.float64).sum() / 255.0
    np.testing.assert_allclose(area, 121 * factor**2, rtol=0.1)


def test_random_augment_is_deterministic_and_changes_images():
    images = _digit_like()
    first = random_augment(images, seed=10, magnitude=0.3)
    assert first.tobytes() == random_augment(images, seed=10, magnitude=0.3).tobytes()
    assert not np.array_equal(first, images)


@pytest.mark.parametrize("fn", _with_random_augment_bug(
    "src bug: random_augment computes (seed * 3 + k) % 2**63 on a NumPy int64 seed, which "
    "raises OverflowError"))
def test_numpy_integer_seed_is_accepted(fn):
    images = _digit_like()
    np.testing.assert_array_equal(fn(images, seed=np.int64(3), magnitude=0.5),
                                  fn(images, seed=3, magnitude=0.5))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None], ids=repr)
@pytest.mark.parametrize("fn", _with_random_augment_bug(_SEED_BUG))
def test_bad_seed_raises_schema_error_naming_seed(fn, seed):
    with pytest.raises(SchemaError) as info:
        fn(_images(), seed=seed, magnitude=0.5)
    assert info.value.fields == ["seed"]
    assert repr(seed) in str(info.value)


@pytest.mark.parametrize("magnitude", [-0.1, 1.1, math.nan, math.inf, "0.5", None], ids=repr)
@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_bad_magnitude_raises_schema_error_naming_magnitude(fn, magnitude):
    with pytest.raises(SchemaError) as info:
        fn(_images(), seed=0, magnitude=magnitude)
    assert info.value.fields == ["magnitude"]
    assert "magnitude" in str(info.value)


@pytest.mark.parametrize("fn", _with_random_augment_bug(_SEED_BUG))
def test_bad_seed_and_magnitude_are_reported_together(fn):
    with pytest.raises(SchemaError) as info:
        fn(_images(), seed=-1, magnitude=2.0)
    assert info.value.fields == ["seed", "magnitude"]


@pytest.mark.parametrize(
    ("images", "field"),
    [
        pytest.param(np.zeros((1, 8, 8), dtype=np.float64), "images.dtype", id="float"),
        pytest.param(np.zeros((8, 8), dtype=np.uint8), "images.ndim", id="2-D"),
        pytest.param(np.zeros((1, 7, 8), dtype=np.uint8), "images.height", id="side-7"),
        pytest.param(np.zeros((1, 8, 65), dtype=np.uint8), "images.width", id="side-65"),
        pytest.param([[[0] * 8] * 8], "images", id="list"),
    ],
)
@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_bad_images_raise_schema_error_naming_the_field(fn, images, field):
    with pytest.raises(SchemaError) as info:
        fn(images, seed=0, magnitude=0.5)
    assert info.value.fields == [field]


@pytest.mark.parametrize("fn", AUGMENTATIONS, ids=IDS)
def test_seed_and_magnitude_are_keyword_only(fn):
    with pytest.raises(TypeError):
        fn(_images(), 0, 0.5)
