"""Properties of every augmentation of the target: ``fn(images, *, seed, magnitude)``."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.checks import as_numpy, assert_close, assert_dtype, assert_shape, fail, reproduction

SMALL_MAGNITUDE = 1e-4
"""At this magnitude every pixel may move by at most ``MAX_SMALL_CHANGE`` grey levels."""
MAX_SMALL_CHANGE = 2
EXTREME_MAGNITUDE = 0.05
"""On all-black/all-white images at this magnitude the median pixel moves at most
``MAX_EXTREME_MEDIAN_CHANGE`` (wrap-around moves half the pixels by ~255)."""
MAX_EXTREME_MEDIAN_CHANGE = 32
MONOTONE_SLACK = 0.8
MONOTONE_SEEDS = 12
MONOTONE_FLOOR = 0.5
"""Grey levels of mean change below which a weaker strong setting is noise, not a bug."""


def _augment(target, name, images, seed, magnitude):
    return as_numpy(target.augmentations[name].fn(images, seed=seed, magnitude=magnitude))


def _batches(target, **options):
    return gen.images(target.schema, **{"max_batch": 4, **options})


def _mean_change(before: np.ndarray, after: np.ndarray) -> float:
    return float(np.abs(after.astype(np.int16) - before.astype(np.int16)).mean())


@given(data=st.data(), seed=gen.seeds(), magnitude=gen.magnitudes())
def test_augmentation_keeps_shape_and_dtype(target, augmentation_name, data, seed, magnitude):
    """Output is uint8 with the input's shape, for every seed and magnitude.

    Catches: returning float pixels after a float-space transform; cropping or padding
    that changes the image size."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, augmentation=augmentation_name, images=images, seed=seed,
                      magnitude=magnitude):
        out = _augment(target, augmentation_name, images, seed, magnitude)
        assert_shape(out, images.shape, f"augmentation {augmentation_name!r} output")
        assert_dtype(out, "uint8", f"augmentation {augmentation_name!r} output")


@given(data=st.data(), seed=gen.seeds(), magnitude=gen.magnitudes(min_value=0.1))
def test_augmentation_is_deterministic_for_a_seed(target, augmentation_name, data, seed,
                                                  magnitude):
    """The same seed and magnitude give bit-identical output.

    Catches: an augmentation that draws from the global NumPy/torch RNG and ignores `seed`,
    so a failing training run can never be reproduced."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    with reproduction(target, augmentation=augmentation_name, images=images, seed=seed,
                      magnitude=magnitude):
        first = _augment(target, augmentation_name, images, seed, magnitude)
        np.random.seed(seed % 1000 + 1)  # disturb global state between the two calls
        second = _augment(target, augmentation_name, images.copy(), seed, magnitude)
        assert_close(second, first, f"augmentation {augmentation_name!r} is not "
                                    "deterministic for a fixed seed")


@given(data=st.data(), seed=gen.seeds())
def test_augmentation_is_identity_at_zero_magnitude(target, augmentation_name, data, seed):
    """magnitude == 0 returns the input unchanged.

    Catches: an off-by-one shift or a noise floor applied even at magnitude 0."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, augmentation=augmentation_name, images=images, seed=seed):
        assert_close(_augment(target, augmentation_name, images, seed, 0.0), images,
                     f"augmentation {augmentation_name!r} is not the identity at magnitude 0")


@given(data=st.data(), seed=gen.seeds())
def test_augmentation_change_vanishes_at_small_magnitude(target, augmentation_name, data,
                                                         seed):
    """At a tiny magnitude no pixel moves by more than a rounding step or two.

    Catches: a change that does not scale with magnitude (a fixed one-pixel shift, a
    minimum noise level) and uint8 wrap-around of tiny negative noise (0 -> 255)."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    with reproduction(target, augmentation=augmentation_name, images=images, seed=seed,
                      magnitude=SMALL_MAGNITUDE):
        out = _augment(target, augmentation_name, images, seed, SMALL_MAGNITUDE)
        change = np.abs(out.astype(np.int16) - images.astype(np.int16))
        if change.max() > MAX_SMALL_CHANGE:
            fail(f"augmentation {augmentation_name!r} changes pixels a lot at magnitude "
                 f"{SMALL_MAGNITUDE}", f"every pixel within {MAX_SMALL_CHANGE} grey levels",
                 f"a pixel moved by {int(change.max())}")


@given(data=st.data(), seeds=st.lists(gen.seeds(), min_size=MONOTONE_SEEDS,
                                      max_size=MONOTONE_SEEDS, unique=True),
       low=st.floats(0.05, 0.25))
def test_augmentation_change_does_not_fall_as_magnitude_grows(target, augmentation_name,
                                                              data, seeds, low):
    """Averaged over ``MONOTONE_SEEDS`` seeds, the change at magnitude 4*m is at least
    ``MONOTONE_SLACK`` times the change at m, less a noise floor of ``MONOTONE_FLOOR`` grey
    levels (mean absolute change per pixel).

    Catches: an inverted magnitude (strength 1 - m) or a saturating/reset parameter that
    makes "stronger" augmentation weaker. Statistical: an occluding augmentation (random
    erasing, cutout) often lands its box on background, so a few seeds can make a stronger
    setting look weaker; enough seeds and the floor keep that from being a false alarm."""
    images = data.draw(_batches(target, min_batch=2, kinds=("strokes", "blobs", "lowres",
                                                            "gradient")), label="images")
    high = min(1.0, 4 * low)
    with reproduction(target, augmentation=augmentation_name, images=images, seeds=seeds,
                      magnitudes=(low, high)):
        weak = np.mean([_mean_change(images, _augment(target, augmentation_name, images, s,
                                                      low)) for s in seeds])
        strong = np.mean([_mean_change(images, _augment(target, augmentation_name, images, s,
                                                        high)) for s in seeds])
        if strong < MONOTONE_SLACK * weak - MONOTONE_FLOOR:
            fail(f"augmentation {augmentation_name!r} changes less at a larger magnitude",
                 f"mean change at {high:.3f} >= {MONOTONE_SLACK} x change at {low:.3f} "
                 f"({weak:.2f}) - {MONOTONE_FLOOR}", f"{strong:.2f}")


@given(data=st.data(), seed=gen.seeds(), magnitude=gen.magnitudes(), read_only=st.booleans())
def test_augmentation_never_writes_into_its_input(target, augmentation_name, data, seed,
                                                  magnitude, read_only):
    """The caller's array is unchanged afterwards, and read-only input works.

    Catches: in-place noise (`images += noise`) that corrupts the dataset in memory, so
    every epoch compounds the previous epoch's augmentation."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    original = images.copy()
    images.setflags(write=not read_only)
    with reproduction(target, augmentation=augmentation_name, images=original, seed=seed,
                      magnitude=magnitude, read_only=read_only):
        _augment(target, augmentation_name, images, seed, magnitude)
        assert_close(images, original, f"augmentation {augmentation_name!r} wrote into its "
                                       "input array")


@given(data=st.data(), seed=gen.seeds(), level=st.sampled_from([0, 255]))
def test_augmentation_does_not_wrap_around_on_extreme_images(target, augmentation_name, data,
                                                             seed, level):
    """All-black and all-white images stay mostly as they are at a small magnitude.

    Catches: uint8 arithmetic that wraps (255 + 3 -> 2, 0 - 3 -> 253) instead of
    clipping: the median pixel of a saturated image jumps by ~255."""
    shape = data.draw(_batches(target, min_batch=1, kinds=("black",)), label="shape").shape
    images = np.full(shape, level, np.uint8)
    with reproduction(target, augmentation=augmentation_name, level=level, shape=shape,
                      seed=seed, magnitude=EXTREME_MAGNITUDE):
        out = _augment(target, augmentation_name, images, seed, EXTREME_MAGNITUDE)
        median = float(np.median(np.abs(out.astype(np.int16) - level)))
        if median > MAX_EXTREME_MEDIAN_CHANGE:
            fail(f"augmentation {augmentation_name!r} wraps around on an image of all "
                 f"{level}", f"median pixel change <= {MAX_EXTREME_MEDIAN_CHANGE}",
                 f"{median:.0f}")


PER_IMAGE_COPIES = 8


@given(data=st.data(), seed=gen.seeds(), magnitude=st.floats(0.3, 1.0))
def test_augmentation_draws_random_parameters_per_image(target, augmentation_name, data, seed,
                                                        magnitude):
    """Copies of one image in one batch do not all come out alike: the random parameters are
    drawn per image. Augmentations declared `per_image=False` (one draw per batch, or no
    random parameters) are exempt.

    Catches: a batch-level transform applied to the whole batch tensor (several
    `transforms.v2` transforms draw one angle, offset or crop for every image of the tensor
    they get), so a batch holds one augmentation repeated instead of many."""
    if not target.augmentations[augmentation_name].per_image:
        return
    picture = data.draw(_batches(target, min_batch=1, max_batch=1, kinds=(
        "strokes", "blobs", "lowres", "gradient", "checkerboard")), label="image")
    # mid-range pixels: no transform is hidden by clipping at 0 or 255
    images = np.repeat(64 + picture // 2, PER_IMAGE_COPIES, axis=0)
    with reproduction(target, augmentation=augmentation_name, image=images[0], seed=seed,
                      magnitude=magnitude, copies=PER_IMAGE_COPIES):
        out = _augment(target, augmentation_name, images, seed, magnitude)
        if all(np.array_equal(out[0], out[index]) for index in range(1, len(out))):
            fail(f"augmentation {augmentation_name!r} (per_image=True) gives {len(out)} "
                 "identical copies of one image the same result",
                 "random parameters drawn per image (declare per_image=False if they are "
                 "drawn once per batch)", "every copy augmented identically")
