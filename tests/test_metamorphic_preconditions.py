"""The trained-model (metamorphic) properties never blame the pipeline for their own unmet
preconditions or for a weak but correct model, state their power, and a failed property names
its likely causes in the terminal (issue 24).

- Too few confident images in the first 64 drawn: more of the holdout is drawn; too few in
  the whole holdout: "not checked" with the counts and the threshold to change.
- Removing ink (erasing or fading it) is judged image by image against the intact image on
  the class predicted for it, with a sign test: a weakly trained ResNet whose mean
  confidence rises between two heavily erased versions (what the old relation called a
  failure) passes; a serving path that gets surer as the ink fades fails.
- The numbers the docstrings state (images needed, rejection counts) are the ones computed.

The weak models are the colour reference's ResNet trained with plain Adam for a few dozen
batches (a few seconds each on a CPU).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from mlprop.checks import PropertyViolation
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import _without_shrinking, load_properties, property_outcome
from mlprop.properties import test_metamorphic as metamorphic
from mlprop.target import load_target

pytest_plugins = ["pytester"]

INVARIANCE = "test_label_preserving_augmentation_keeps_confident_predictions"
REMOVAL = "test_removing_ink_does_not_make_the_model_surer_of_its_class"

colour_pipeline = importlib.import_module("mlprop.colour.pipeline")
colour_model = importlib.import_module("mlprop.colour.model")


@pytest.fixture(scope="module")
def properties():
    return load_properties()


@pytest.fixture(scope="module")
def digits():
    return load_target("mlprop.digits:target")


@pytest.fixture(scope="module")
def colour():
    return load_target("mlprop.colour:target")


def weak_colour_target(colour, steps: int, seed: int):
    """The colour target with its ResNet trained for only ``steps`` Adam steps of 64 images:
    a correct pipeline with a weak model."""
    splits = colour_pipeline.reference_splits()
    network = colour_model.build_model(seed)
    inputs = torch.from_numpy(colour.preprocess(splits.train.images))
    labels = torch.from_numpy(splits.train.labels)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    order = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network.train()
        for _ in range(steps):
            batch = torch.from_numpy(order.choice(len(labels), 64, replace=False))
            optimizer.zero_grad()
            nn.functional.cross_entropy(network(inputs[batch]), labels[batch]).backward()
            optimizer.step()
    network.eval()

    def predict(images):
        return colour_pipeline.probabilities(network, colour_pipeline.as_rgb(images))

    return colour.replace(trained_model=lambda: network, predict=predict, min_accuracy=0.75)


def _accuracy_and_confident_share(target) -> tuple[float, float]:
    images, labels = target.holdout()
    probabilities = target.predict(images)
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    return accuracy, float((probabilities.max(axis=1) >= 0.9).mean())


@pytest.mark.slow
def test_the_confident_sample_grows_until_the_holdout_gives_enough(colour, properties):
    """Report 1: a correct model with few confident predictions failed with "too few
    confidently classified holdout images" (14 of 64, 16 needed). The holdout is now drawn
    further until there are enough, and both statistical relations decide."""
    weak = weak_colour_target(colour, steps=70, seed=0)
    accuracy, share = _accuracy_and_confident_share(weak)
    holdout_size = len(weak.holdout()[1])
    assert 0.75 <= accuracy <= 0.9
    assert share * metamorphic.SAMPLE < 16  # the report's case: too few in the first 64
    assert share * holdout_size >= metamorphic.invariance_images_needed(0.9)
    for name in (INVARIANCE, REMOVAL):
        outcome = property_outcome(properties[name], weak)
        assert outcome.status == "passed", (name, outcome)


def _soften(probabilities) -> np.ndarray:
    """The same ranking, never confident (every top probability below 0.35 on the digits)."""
    flattened = np.asarray(probabilities, dtype=np.float64) ** 0.05
    return (flattened / flattened.sum(axis=1, keepdims=True)).astype(np.float32)


def test_a_holdout_without_enough_confident_images_is_not_checked_naming_the_threshold(
        digits, properties):
    """The whole holdout has fewer confident images than a relation needs: not checked,
    with the counts, the threshold's value and name, never a failure; lowering the
    threshold as the message says lets it decide."""
    unsure = digits.replace(predict=lambda images: _soften(digits.predict(images)))
    holdout_size = len(digits.holdout()[1])
    for name in (INVARIANCE, REMOVAL):
        outcome = property_outcome(properties[name], unsure)
        assert outcome.status == "not checked", (name, outcome)
        assert f"0 of the {holdout_size} holdout images" in outcome.message
        assert "probability >= 0.9 (threshold 'confidence')" in outcome.message
        assert "needs at least" in outcome.message
        assert "Target(thresholds={'confidence': ...})" in outcome.message
    relaxed = unsure.replace(thresholds={"confidence": 0.1})
    assert property_outcome(properties[REMOVAL], relaxed).status == "passed"


@pytest.mark.slow
def test_removing_ink_passes_the_weak_resnet_that_tripped_the_old_relation(colour,
                                                                          properties):
    """Report 2: a correct, weakly trained ResNet (holdout accuracy 0.92) whose mean top
    probability rises from 50 % to 75 % of the ink erased (0.49 -> 0.53: another class takes
    over once the digit is gone) failed "confidence does not rise as the digit is erased".
    Judged per image against the intact image, on the intact image's class, it passes."""
    weak = weak_colour_target(colour, steps=100, seed=5)
    accuracy, _ = _accuracy_and_confident_share(weak)
    assert 0.85 <= accuracy <= 0.95
    images, _ = weak.holdout()
    confident = images[weak.predict(images).max(axis=1) >= 0.9]
    means = [float(weak.predict(metamorphic._remove_ink(weak.schema, confident, "erase",
                                                        fraction, 0)).max(axis=1).mean())
             for fraction in (0.5, 0.75)]
    assert means[1] > means[0] + 0.02, means  # what the old relation reported as a failure
    for name in (REMOVAL, INVARIANCE):
        assert property_outcome(properties[name], weak).status == "passed", name


@pytest.mark.parametrize("spec", ["mlprop.digits:target", "mlprop.colour:target"])
def test_a_serving_path_surer_of_fainter_images_is_caught(spec, properties):
    target = load_target(spec)
    faulty = CATALOGUE["logits_divided_by_brightness"].inject(target)
    prop = _without_shrinking(properties[REMOVAL], None)
    with pytest.raises(PropertyViolation) as caught:
        prop(target=faulty)
    message = str(caught.value)
    assert "fading" in message and "surer of the class it predicted" in message
    assert "sign test" in message and "rises on" in message
    assert property_outcome(properties[REMOVAL], target).status == "passed"


def test_the_stated_power_is_the_computed_one():
    """The docstrings' numbers: images needed for power 0.9, and where each test rejects."""
    from scipy.stats import binom

    needed = metamorphic.removal_images_needed()
    assert needed == 23 and metamorphic._fewest_rejected_rises(needed) == 19
    alpha = metamorphic.SIGNIFICANCE / len(metamorphic.REMOVALS)
    assert metamorphic._sign_test(19, 23) < alpha <= metamorphic._sign_test(18, 23)
    for images in range(1, needed):  # fewer images do not reach the stated power
        assert binom.sf(metamorphic._fewest_rejected_rises(images) - 1, images, 0.9) < 0.9
    assert metamorphic.invariance_images_needed(0.9) == 49
    assert metamorphic._rejected_agreements(60, 0.9) == 47
    assert binom.cdf(47, 60, 0.9) < metamorphic.SIGNIFICANCE <= binom.cdf(48, 60, 0.9)
    assert binom.cdf(metamorphic._rejected_agreements(49, 0.9), 49, 0.7) >= 0.9
    for name, numbers in ((REMOVAL, ("at least 23", "19 rises", "0.01")),
                          (INVARIANCE, ("49", "47 kept", "0.01"))):
        doc = " ".join(getattr(metamorphic, name).__doc__.split())
        assert all(number in doc for number in numbers), (name, numbers)


def test_the_invariance_failure_states_images_rate_and_threshold(digits, properties):
    faulty = CATALOGUE["flip_declared_label_preserving"].inject(digits)
    prop = _without_shrinking(properties[INVARIANCE], None)
    with pytest.raises(PropertyViolation) as caught:
        prop(target=faulty, augmentation_name="flip")
    message = str(caught.value)
    assert "confident holdout images kept their class" in message
    assert "invariance_agreement 0.9" in message and "binomial p =" in message


FAULTY_TARGET = """
from mlprop.faults import CATALOGUE
from mlprop.target import load_target

target = CATALOGUE["inverted_colors_at_serve"].inject(load_target("mlprop.digits:target"))
"""


def _run(pytester, spec: str):
    pytester.makepyfile(faulty_target=FAULTY_TARGET)
    pytester.syspathinsert()
    return pytester.runpytest("-p", "no:cacheprovider", "-W",
                              "ignore::pytest.PytestAssertRewriteWarning", "--pyargs",
                              "mlprop.properties", "--mlprop-target", spec, "-k",
                              "accuracy_on_holdout")


def test_the_terminal_names_the_likely_causes_of_a_failed_property(pytester):
    """Without --mlprop-report: the end of the run lists, for each failed property, the
    catalogue faults it is known to catch, with their descriptions."""
    result = _run(pytester, "faulty_target:target")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*= mlprop: likely causes =*",
        "test_predict_accuracy_on_holdout_meets_the_floor failed; bugs it is known to catch*",
        "  - inverted_colors_at_serve (predict): Train/serve skew: the serving path inverts*",
        "  - untrained_model_served (predict): *"])
    passing = _run(pytester, "mlprop.digits:target")
    passing.assert_outcomes(passed=1)
    assert "likely causes" not in passing.stdout.str()
