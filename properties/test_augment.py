"""Properties of every augmentation of the target: ``fn(images, *, seed, magnitude)``."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.checks import (
    as_numpy,
    assert_close,
    assert_dtype,
    assert_shape,
    fail,
    not_checked,
    reproduction,
)

SMALL_MAGNITUDE = 1e-4
"""At this magnitude every pixel may move by at most ``MAX_SMALL_CHANGE`` grey levels, except
in a rare draw (``SMALL_REDRAWS``, ``SMALL_MAX_REPEATS``)."""
MAX_SMALL_CHANGE = 2
SMALL_REDRAWS = 32
"""Fresh seeds that re-augment a batch in which an image moved a lot at ``SMALL_MAGNITUDE``."""
SMALL_MAX_REPEATS = 1
"""Of those redraws, at most this many may move the same image a lot again."""
EXTREME_MAGNITUDE = 0.05
"""All-black/all-white images at this magnitude: each image's median pixel moves at most
``MAX_EXTREME_MEDIAN_CHANGE`` and no pixel jumps by more than ``MAX_EXTREME_JUMP`` against
a twin image ``EXTREME_TWIN_OFFSET`` levels inside the range."""
MAX_EXTREME_MEDIAN_CHANGE = 32
MAX_EXTREME_JUMP = 128
EXTREME_TWIN_OFFSET = 32
EXTREME_BATCH = 16
EXTREME_SEEDS = 8
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


def _per_image(values: np.ndarray, reduce) -> np.ndarray:
    """``reduce`` (np.max, np.median) over each image's pixels: one value per image."""
    return reduce(values.reshape(len(values), -1), axis=1)


def _seed_family(seed: int, count: int, salt: int) -> list[int]:
    """``count`` seeds for repeated draws: ``seed`` itself, then seeds derived from it with
    NumPy's ``SeedSequence`` (``salt`` keeps the families of different uses apart)."""
    derived = np.random.SeedSequence(seed, spawn_key=(salt,)).generate_state(max(0, count - 1))
    return [seed, *(int(value) for value in derived)]


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
    """At a tiny magnitude no pixel moves by more than a rounding step or two, but in a rare
    draw: an augmentation may take a discrete, large action (a flip, a greyscale) with a
    probability that shrinks with the magnitude (``RandomHorizontalFlip(p=magnitude / 2)``).
    So an image that moves a lot is re-augmented with ``SMALL_REDRAWS`` fresh seeds, and it
    fails only if more than ``SMALL_MAX_REPEATS`` of them move it a lot again. An action drawn
    with probability q comes back twice in 32 draws with probability below 496 q^2 (5e-6 for
    q = 1e-4, 5e-4 for q = 1e-3); a change that does not scale with the magnitude moves the
    image in (nearly) every draw.

    Catches: a change that does not scale with magnitude (a fixed one-pixel shift, a
    minimum noise level) and uint8 wrap-around of tiny negative noise (0 -> 255)."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    with reproduction(target, augmentation=augmentation_name, images=images, seed=seed,
                      magnitude=SMALL_MAGNITUDE):
        out = _augment(target, augmentation_name, images, seed, SMALL_MAGNITUDE)
        moved = _per_image(np.abs(out.astype(np.int16) - images.astype(np.int16)), np.max)
        if moved.max() <= MAX_SMALL_CHANGE:
            return
        again = np.zeros(len(images), int)
        redraws = _seed_family(seed, SMALL_REDRAWS + 1, salt=1)[1:]
        for redraw in redraws:
            other = _augment(target, augmentation_name, images, redraw, SMALL_MAGNITUDE)
            again += _per_image(np.abs(other.astype(np.int16) - images.astype(np.int16)),
                                np.max) > MAX_SMALL_CHANGE
        again[moved <= MAX_SMALL_CHANGE] = 0
        if again.max() > SMALL_MAX_REPEATS:
            index = int(np.argmax(again))
            fail(f"augmentation {augmentation_name!r} changes pixels a lot at magnitude "
                 f"{SMALL_MAGNITUDE}", f"every pixel within {MAX_SMALL_CHANGE} grey levels "
                 f"(a larger change only in a rare draw: at most {SMALL_MAX_REPEATS} of "
                 f"{SMALL_REDRAWS} fresh seeds)",
                 f"a pixel of image {index} moved by {int(moved[index])}, and the image "
                 f"moved by more than {MAX_SMALL_CHANGE} again with {int(again[index])} of "
                 f"{SMALL_REDRAWS} fresh seeds")


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
    """At a small magnitude no image of an all-black or all-white batch wraps around, judged
    image by image over ``EXTREME_SEEDS`` seeds (batches of ``EXTREME_BATCH``): each image's
    median pixel moves by at most ``MAX_EXTREME_MEDIAN_CHANGE`` levels, and no pixel jumps: a
    twin batch ``EXTREME_TWIN_OFFSET`` levels inside the range, augmented with the same seed,
    differs from it pixel by pixel by that offset give or take ``MAX_EXTREME_JUMP`` (a fill or
    an erased box is the same in both, an interpolated or clipped pixel moves less; a wrapped
    pixel jumps by ~255). Black and white are grey, so correct colour augmentations (greyscale,
    hue, saturation) and flips leave them as they are.

    Catches: uint8 arithmetic that wraps (255 + 3 -> 2, 0 - 3 -> 253) instead of clipping,
    also when it hits only some images (a random greyscale computing ``(R + G + B) // 3`` in
    uint8 turns white into 84) or some pixels (integer noise added in uint8)."""
    drawn = data.draw(_batches(target, min_batch=1, kinds=("black",)), label="shape").shape
    shape = (EXTREME_BATCH, *drawn[1:])
    twin_level = level - EXTREME_TWIN_OFFSET if level else EXTREME_TWIN_OFFSET
    images = np.full(shape, level, np.uint8)
    twins = np.full(shape, twin_level, np.uint8)
    seeds = _seed_family(seed, EXTREME_SEEDS, salt=2)
    with reproduction(target, augmentation=augmentation_name, level=level, shape=shape,
                      seeds=seeds, magnitude=EXTREME_MAGNITUDE, twin_level=twin_level):
        for each in seeds:
            out = _augment(target, augmentation_name, images, each, EXTREME_MAGNITUDE)
            twin = _augment(target, augmentation_name, twins, each, EXTREME_MAGNITUDE)
            median = _per_image(np.abs(out.astype(np.int16) - level), np.median)
            jump = _per_image(np.abs(out.astype(np.int16) - twin.astype(np.int16)
                                     - (level - twin_level)), np.max)
            where = f"image {{}} of {EXTREME_BATCH} with seed {each}"
            if median.max() > MAX_EXTREME_MEDIAN_CHANGE:
                index = int(np.argmax(median))
                fail(f"augmentation {augmentation_name!r} wraps around on an image of all "
                     f"{level}", f"median pixel change of every image <= "
                     f"{MAX_EXTREME_MEDIAN_CHANGE}", f"{median[index]:.0f} on "
                     + where.format(index))
            if jump.max() > MAX_EXTREME_JUMP:
                index = int(np.argmax(jump))
                fail(f"augmentation {augmentation_name!r} wraps around on an image of all "
                     f"{level}", f"each pixel moves like the pixel of an image of all "
                     f"{twin_level} (same seed), within {MAX_EXTREME_JUMP} levels",
                     f"a pixel jumped by {int(jump[index])} more on " + where.format(index))


PER_IMAGE_KINDS = ("strokes", "blobs", "lowres", "gradient", "checkerboard")
PER_IMAGE_CANDIDATES = 4
"""Drawn pictures tried, in turn, until the augmentation acts on one in different ways
(:func:`_per_image_candidates`)."""
PER_IMAGE_OTHER_RESULTS = 8
"""Calibration stops once this many draws of the image alone differ from its most common
result (G)."""
PER_IMAGE_COPIES_PER_DRAW = 15
"""Copies in the batches per calibration draw that was needed (c)."""
PER_IMAGE_MAX_DRAWS = 256
PER_IMAGE_GIVE_UP_DRAWS = 64
"""A picture that came out one way only in this many draws is given up early."""
PER_IMAGE_BATCH_VALUES = 1 << 22
"""Values (copies x pixels x channels) per augmentation call of the judgement."""


def _probe(target, picture: np.ndarray) -> np.ndarray:
    """A batch of one: ``picture`` dimmed into mid-range (nothing clipped at 0 or 255) plus a
    fixed ramp rising to the right and downwards at a different slope in each channel, so no
    flip, rotation or transpose leaves it as it is and it is not grey."""
    schema = target.schema
    last = schema.to_channels_last(picture).astype(np.float64)
    _, height, width, channels = last.shape
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    cols = np.linspace(0.0, 1.0, width)[None, :, None]
    slope = np.arange(channels)[None, None, :] % 3
    ramp = (16 + 24 * slope) * cols + (40 - 12 * slope) * rows
    probe = np.rint(48 + last // 4 + ramp).astype(np.uint8)
    return np.ascontiguousarray(schema.from_channels_last(probe))


def _per_image_candidates(largest: int, magnitude: float) -> list[tuple[int | None, float]]:
    """(side, magnitude) of each picture tried: two of any drawn size at the drawn magnitude,
    then one at the largest side drawn by default, then that at full strength (a shift cut to
    whole pixels may act only on large images or at large magnitudes)."""
    return [(None, magnitude), (None, magnitude), (largest, magnitude), (largest, 1.0)]


def _calibration(augment, image: np.ndarray, seeds: list[int]) -> tuple[int, str]:
    """Augment ``image`` alone with ``seeds`` in turn until ``PER_IMAGE_OTHER_RESULTS`` results
    differ from the most common one: the draws that took (0 if never), and why not."""
    counts: dict[bytes, int] = {}
    drawn = other = 0
    for drawn, each in enumerate(seeds, 1):
        result = np.ascontiguousarray(augment(image, each))
        key = result.tobytes() + str((result.shape, result.dtype)).encode()
        counts[key] = counts.get(key, 0) + 1
        other = drawn - max(counts.values())
        if other >= PER_IMAGE_OTHER_RESULTS:
            return drawn, ""
        if other == 0 and drawn >= PER_IMAGE_GIVE_UP_DRAWS:
            break
    if len(counts) == 1:
        same = np.array_equal(result, image)
        return 0, (f"{'left it unchanged' if same else 'changed it the same way'} in all "
                   f"{drawn} draws")
    return 0, (f"gave a result other than its most common one in only {other} of {drawn} "
               "draws")


@given(data=st.data(), seed=gen.seeds(), magnitude=st.floats(0.3, 1.0))
def test_augmentation_draws_random_parameters_per_image(target, augmentation_name, data, seed,
                                                        magnitude):
    """Copies of one image in one batch do not all come out alike: the random parameters are
    drawn per image. Augmentations declared `per_image=False` (one draw per batch, or no
    random parameters) are exempt.

    First the augmentation must be seen to act on the image, in more than one way: the image
    alone is augmented with fresh seeds until ``PER_IMAGE_OTHER_RESULTS`` (G = 8) results
    differ from its most common result, after N draws (at most ``PER_IMAGE_MAX_DRAWS``).
    A picture it never changes (a flip of a symmetric picture, a shift below one pixel cut to
    0 px), always changes the same way or too rarely is replaced by the next drawn one, the
    last ones larger and at full magnitude; if none of ``PER_IMAGE_CANDIDATES`` will do, the
    property is not checked. The copies are mid-range, not symmetric and not grey
    (:func:`_probe`), so flips, greyscale and hue changes act on them (a constant, symmetric
    or grey picture made every copy come out alike, a false alarm, before). Then
    ``PER_IMAGE_COPIES_PER_DRAW`` x N copies (c = 15) are
    augmented in batches, each with its own seed, and it fails only if every batch gives all
    its copies the same result. A per-image draw whose result differs from the most common one
    with probability e gives that with probability at most (1 - e)^(15 N - 1); N is at least
    the negative-binomial time to 8 such results, so the false alarm probability is at most
    (1 / (1 + c))^G = 16^-8 = 2.3e-10 per example, whatever e (an 8-copy batch of a p = 0.5
    flip: 1 in 128). One draw for the whole batch gives identical copies in every batch.

    Catches: a batch-level transform applied to the whole batch tensor (several
    `transforms.v2` transforms draw one angle, offset or crop for every image of the tensor
    they get), so a batch holds one augmentation repeated instead of many."""
    if not target.augmentations[augmentation_name].per_image:
        not_checked(f"augmentation {augmentation_name!r} is declared per_image=False: its "
                    "random parameters are drawn once per batch by design")
    schema = target.schema
    largest = min(schema.max_side, max(schema.min_side, gen.DEFAULT_SIDE_CAP))
    tried = []
    for candidate, (side, strength) in enumerate(_per_image_candidates(largest, magnitude)):
        picture = data.draw(_batches(target, min_batch=1, max_batch=1, kinds=PER_IMAGE_KINDS,
                                     min_side=side, max_side=side), label=f"picture {candidate}")
        image = _probe(target, picture)
        calibration = _seed_family(seed, PER_IMAGE_MAX_DRAWS + 1, salt=10 + candidate)[1:]
        with reproduction(target, augmentation=augmentation_name, image=image[0],
                          seeds=calibration, magnitude=strength):
            draws, why = _calibration(
                lambda images, each, strength=strength: _augment(
                    target, augmentation_name, images, each, strength), image, calibration)
        if draws:
            magnitude = strength
            break
        tried.append(f"{'x'.join(map(str, image.shape[1:]))} at magnitude {strength:.3f}: {why}")
    else:
        not_checked(f"augmentation {augmentation_name!r} did not act on any of "
                    f"{PER_IMAGE_CANDIDATES} pictures alone in more than one way ("
                    f"{'; '.join(tried)}), so per-image draws cannot be told from one draw per "
                    "batch; larger images (a larger schema.max_side) or an augmentation that "
                    "acts on them would let it decide")
    copies = PER_IMAGE_COPIES_PER_DRAW * draws
    per_call = int(np.clip(PER_IMAGE_BATCH_VALUES // image.size, 2, copies))
    calls = -(-(copies - 1) // (per_call - 1))
    seeds = _seed_family(seed, calls, salt=3)
    batch = np.repeat(image, per_call, axis=0)
    with reproduction(target, augmentation=augmentation_name, image=image[0], seeds=seeds,
                      magnitude=magnitude, copies=per_call, calibration_draws=draws):
        for each in seeds:
            out = _augment(target, augmentation_name, batch, each, magnitude)
            if (out != out[:1]).any():
                return
        fail(f"augmentation {augmentation_name!r} (per_image=True) gives {per_call} "
             f"identical copies of one image the same result in each of {calls} batches",
             "random parameters drawn per image (declare per_image=False if they are drawn "
             f"once per batch): alone, the image came out other than its most common result "
             f"in {PER_IMAGE_OTHER_RESULTS} of {draws} draws, so {per_call * calls} copies "
             "all come out alike with probability < 2.3e-10",
             "every copy augmented identically in every batch")
