"""Metamorphic relations of the trained serving path (``target.predict`` on ``holdout()``).

Statistical relations assert an aggregate rate over many holdout images with a stated
threshold (``DEFAULTS``; a target overrides them with ``Target(thresholds={...})``), and
Hypothesis chooses the seeds, magnitudes and subsets.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.checks import as_numpy, assert_close, fail, reproduction, requires
from mlprop.profiles import examples_at_most

pytestmark = requires("predict", "holdout")

DEFAULTS = {
    "invariance_agreement": 0.9,  # share of confident predictions an augmentation keeps
    "confidence": 0.9,  # a prediction this sure counts as confident
    "erasure_slack": 0.02,  # mean confidence may rise at most this much per erasure step
}
MIN_CONFIDENT = 16
SAMPLE = 64
ERASED_FRACTIONS = (0.0, 0.25, 0.5, 0.75)


def _threshold(target, name: str) -> float:
    return target.threshold(name, DEFAULTS[name])


def _confident(target, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded sample of holdout images the model classifies confidently, with their
    predicted class and its probability."""
    images, _ = target.holdout()
    order = np.random.default_rng(seed).permutation(len(images))[:SAMPLE]
    sample = images[order]
    probabilities = as_numpy(target.predict(sample))
    classes = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    keep = confidence >= _threshold(target, "confidence")
    if keep.sum() < MIN_CONFIDENT:
        fail("too few confidently classified holdout images for a metamorphic test",
             f">= {MIN_CONFIDENT} of {len(sample)} with p >= "
             f"{_threshold(target, 'confidence')}", str(int(keep.sum())))
    return sample[keep], classes[keep], confidence[keep]


@examples_at_most(4)
@given(seed=gen.seeds(), magnitude=st.floats(0.02, 0.15))
def test_label_preserving_augmentation_keeps_confident_predictions(target, augmentation_name,
                                                                   seed, magnitude):
    """At a small magnitude, a label-preserving augmentation keeps the predicted class of at
    least `invariance_agreement` of confidently classified holdout images (CheckList INV).
    Augmentations declared not label-preserving are exempt.

    Catches: an augmentation wrongly declared label-preserving (a flip on digits), a model
    that has not learnt the invariances its augmentations promise."""
    if not target.augmentations[augmentation_name].label_preserving:
        return
    images, classes, _ = _confident(target, seed)
    augment = target.augmentations[augmentation_name].fn
    details = {"augmentation": augmentation_name, "seed": seed, "magnitude": magnitude,
               "images": images}
    with reproduction(target, **details):
        changed = as_numpy(augment(images, seed=seed, magnitude=magnitude))
    with reproduction(target, **details, changed=changed):
        kept = float((as_numpy(target.predict(changed)).argmax(axis=1) == classes).mean())
        limit = _threshold(target, "invariance_agreement")
        if kept < limit:
            fail(f"augmentation {augmentation_name!r} (label_preserving=True) changes "
                 f"confident predictions at magnitude {magnitude:.3f}",
                 f"agreement >= {limit}", f"{kept:.3f} over {len(images)} images")


def _erase(images: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Set ``fraction`` of each image's ink pixels (far from its border colour) to that
    colour, in a seeded random order that is the same at every fraction."""
    erased = images.copy()
    rng = np.random.default_rng(seed)
    for index, image in enumerate(images):
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        background = np.uint8(np.median(border))
        ink = np.flatnonzero(np.abs(image.astype(np.int16) - background).ravel() > 32)
        chosen = rng.permutation(ink)[:round(fraction * len(ink))]
        erased[index].reshape(-1)[chosen] = background
    return erased


@examples_at_most(4)
@given(seed=gen.seeds())
def test_confidence_does_not_rise_as_the_digit_is_erased(target, seed):
    """Erasing a growing share of the ink of confidently classified images does not raise
    the model's mean confidence (top probability) (CheckList DIR), within a slack per step.

    Catches: confidence scaled by the wrong tensor (logits divided by the image's
    brightness), so faint, partial evidence yields over-confident predictions."""
    images, _, _ = _confident(target, seed)
    slack = _threshold(target, "erasure_slack")
    with reproduction(target, seed=seed, fractions=ERASED_FRACTIONS, images=images):
        means = []
        for fraction in ERASED_FRACTIONS:
            probabilities = as_numpy(target.predict(_erase(images, fraction, seed)))
            means.append(float(probabilities.max(axis=1).mean()))
        for step in range(1, len(means)):
            if means[step] > means[step - 1] + slack:
                fail("confidence rises as the digit is erased",
                     f"mean confidence non-increasing (slack {slack}) over erased fractions "
                     f"{ERASED_FRACTIONS}", str([round(m, 4) for m in means]))


@examples_at_most(10)
@given(seed=gen.seeds(), size=st.integers(1, 8), data=st.data())
def test_duplicated_image_gets_identical_rows(target, seed, size, data):
    """An image that appears twice in a batch gets the same probabilities in both rows.

    Catches: de-duplication or caching on the serving path that drops or misplaces rows,
    per-position state."""
    images, _ = target.holdout()
    order = np.random.default_rng(seed).permutation(len(images))[:size]
    batch = list(images[order])
    source = data.draw(st.integers(0, size - 1), label="duplicated row")
    position = data.draw(st.integers(0, size), label="inserted at")
    batch.insert(position, batch[source])
    original = source if source < position else source + 1
    with reproduction(target, seed=seed, size=size, duplicated=source, position=position,
                      images=np.stack(batch)):
        probabilities = as_numpy(target.predict(np.stack(batch)))
        if probabilities.shape[0] != len(batch):
            fail("predict returns the wrong number of rows for a batch with a duplicate",
                 str(len(batch)), str(probabilities.shape[0]))
        assert_close(probabilities[position], probabilities[original],
                     "the two copies of one image get different predictions", atol=1e-6)


@examples_at_most(10)
@given(seed=gen.seeds(), size=st.integers(2, 16), data=st.data())
def test_predictions_are_invariant_to_batch_order(target, seed, size, data):
    """predict(images[p]) == predict(images)[p] for a permutation p of holdout images.

    Catches: rows sorted or grouped on the way out (by confidence, by class), a serving
    queue that reorders requests."""
    images, _ = target.holdout()
    batch = images[np.random.default_rng(seed).permutation(len(images))[:size]]
    order = np.array(data.draw(st.permutations(range(len(batch))), label="permutation"))
    with reproduction(target, seed=seed, size=size, permutation=order.tolist(), images=batch):
        assert_close(target.predict(batch[order]), as_numpy(target.predict(batch))[order],
                     "predict is not invariant to the order of the batch", atol=1e-6)
