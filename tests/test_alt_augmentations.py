"""The augmentation properties on correct augmentations people actually write (issue 24):
torchvision-style flips, greyscale, hue and colour jitter, an albumentations-style affine that
cuts sub-pixel shifts to whole pixels (``tests/alt_augmentations.py``). None of them may fail
a property; a property that cannot judge one says "not checked" with the reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlprop import Augmentation
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties, property_outcome
from mlprop.properties import test_augment as augment_properties
from tests import alt_augmentations as alt

AUGMENT_PROPERTIES = sorted(name for name in load_properties()
                            if name.startswith("test_augmentation_"))
FUNCTIONS = [(alt.random_horizontal_flip, False), (alt.random_grayscale, True),
             (alt.hue_jitter, True), (alt.colour_jitter, True), (alt.subpixel_affine, False)]


@pytest.fixture(scope="module")
def properties():
    return load_properties()


def _pictures(colour: bool) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (6, 24, 20, 3) if colour else (6, 24, 20), dtype=np.uint8)


@pytest.mark.parametrize(("fn", "colour"), FUNCTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_alternative_augmentation_honours_the_contract(fn, colour):
    images = _pictures(colour)
    original = images.copy()
    images.setflags(write=False)
    assert np.array_equal(fn(images, seed=3, magnitude=0.0), original)
    out = fn(images, seed=3, magnitude=1.0)
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert np.array_equal(fn(images, seed=3, magnitude=1.0), out)
    assert not np.array_equal(out, original)
    assert np.array_equal(images, original)
    copies = np.repeat(original[:1], 16, axis=0)
    results = {fn(copies, seed=1, magnitude=1.0)[i].tobytes() for i in range(16)}
    assert len(results) > 1, "random parameters are drawn per image"


def test_torchvision_greyscale_truncates_white_to_254_and_keeps_grey_pictures():
    white = np.full((4, 16, 16, 3), 255, np.uint8)
    always = alt.random_grayscale(white, seed=0, magnitude=1.0)
    assert set(np.unique(always)) <= {254, 255}
    grey = np.repeat(_pictures(False)[..., None], 3, axis=3)
    assert np.array_equal(alt.hue_jitter(grey, seed=0, magnitude=1.0), grey)


def test_albumentations_affine_cuts_a_sub_pixel_shift_to_no_shift():
    images = _pictures(True)[:, :8, :8]  # 10 % of 8 px is 0.8 px: int() makes it 0
    assert np.array_equal(alt.subpixel_affine(images, seed=5, magnitude=1.0), images)


@pytest.mark.parametrize("name", sorted(alt.TARGETS))
def test_no_augment_property_fails_a_correct_augmentation(name, properties):
    target = alt.TARGETS[name]
    outcomes = {prop: property_outcome(properties[prop], target) for prop in AUGMENT_PROPERTIES}
    failed = {prop: o.message for prop, o in outcomes.items() if o.status == "failed"}
    assert not failed
    for prop, outcome in outcomes.items():
        if outcome.status == "not checked":
            assert outcome.message, f"{prop} gave no reason"


def test_a_shift_that_never_reaches_a_whole_pixel_is_not_checked_with_the_reason(properties):
    def tiny_affine(images, *, seed, magnitude):  # at most 1 % of the side: 0.3 px at 32 px
        return alt.subpixel_affine(images, seed=seed, magnitude=magnitude * 0.1)

    target = alt.affine.replace(augmentations={"affine": Augmentation(fn=tiny_affine)})
    outcome = property_outcome(
        properties["test_augmentation_draws_random_parameters_per_image"], target)
    assert outcome.status == "not checked"
    assert "left it unchanged" in outcome.message and "magnitude 1.000" in outcome.message


@pytest.mark.parametrize("name", ["flip", "greyscale", "affine", "digits_affine"])
def test_one_draw_per_batch_is_still_caught_on_discrete_augmentations(name, properties):
    faulty = CATALOGUE["augmentation_parameters_drawn_per_batch"].inject(alt.TARGETS[name])
    outcome = property_outcome(
        properties["test_augmentation_draws_random_parameters_per_image"], faulty)
    assert outcome.status == "failed"
    assert "identical copies of one image" in outcome.message


def test_greyscale_summing_channels_in_uint8_is_caught_image_by_image(properties):
    """White becomes 84 on the few images a p = magnitude / 2 draw picks: a batch median never
    sees it, the per-image judgement does, and the correct greyscale passes."""
    prop = properties["test_augmentation_does_not_wrap_around_on_extreme_images"]
    faulty = CATALOGUE["greyscale_sum_wraps_uint8"].inject(alt.flip)
    outcome = property_outcome(prop, faulty)
    assert outcome.status == "failed" and "[greyscale]" in outcome.message
    assert property_outcome(prop, alt.greyscale).status == "passed"


def _seeded_invert(every: int, calls: list[int]):
    """Inverts every image when ``seed % every == 0`` (and magnitude > 0), whatever the
    magnitude: a large change in one draw in ``every``; records the seeds it is called with."""

    def invert(images, *, seed, magnitude):
        calls.append(seed)
        if magnitude > 0 and seed % every == 0:
            return 255 - images
        return images.copy()

    return invert


def test_a_rare_large_change_at_small_magnitude_is_redrawn_not_reported(properties):
    prop = properties["test_augmentation_change_vanishes_at_small_magnitude"]
    calls: list[int] = []
    rare = alt.digits_flip.replace(augmentations={"invert": Augmentation(
        fn=_seeded_invert(1 << 20, calls))})
    assert property_outcome(prop, rare).status == "passed"
    assert len(calls) > augment_properties.SMALL_REDRAWS, "seed 0 inverted, then redrawn"
    frequent = alt.digits_flip.replace(augmentations={"invert": Augmentation(
        fn=_seeded_invert(2, []))})
    outcome = property_outcome(prop, frequent)
    assert outcome.status == "failed" and "changes pixels a lot" in outcome.message


def test_per_image_false_alarm_bound_holds_for_the_constants():
    """The docstring's bound: max over e of E[(1 - e)^(c N - 1)], N the negative-binomial
    time to G results other than the most common one, truncated at the draw limit."""
    g = augment_properties.PER_IMAGE_OTHER_RESULTS
    c = augment_properties.PER_IMAGE_COPIES_PER_DRAW
    limit = augment_properties.PER_IMAGE_MAX_DRAWS

    def alarm(e: float) -> float:
        return sum(math.comb(n - 1, g - 1) * e**g * (1 - e) ** (n - g) * (1 - e) ** (c * n - 1)
                   for n in range(g, limit + 1))

    worst = max(alarm(10 ** (-k / 40)) for k in range(1, 200))
    assert worst < 2.3e-10
    assert alarm(0.5) < 1e-12  # a p = 0.5 flip
