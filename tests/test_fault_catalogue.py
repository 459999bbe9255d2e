"""The fault catalogue: every fault is caught by the properties it names, and every property
is named by at least one fault (a property nothing trips is not finished).

Each fault runs only against the properties it names (seconds in all); the full sweep that
builds the kill matrix is ``mlprop faults``.
"""

from __future__ import annotations

import warnings

import pytest

from mlprop.checks import PropertyViolation
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties, run_fault, run_property
from mlprop.target import load_target


@pytest.fixture(scope="module")
def properties():
    return load_properties()


@pytest.fixture(scope="module")
def reference():
    return load_target("mlprop.digits:target")


def test_catalogue_has_at_least_fifteen_documented_faults():
    assert len(CATALOGUE) >= 15
    for fault in CATALOGUE.values():
        assert fault.description, f"fault {fault.name} has no docstring"
        assert fault.catches, f"fault {fault.name} names no property"


def test_every_property_is_named_by_some_fault(properties):
    named = {name for fault in CATALOGUE.values() for name in fault.every_catch}
    assert set(properties) - named == set(), "properties that no fault is expected to trip"
    assert named - set(properties) == set(), "faults naming properties that do not exist"


@pytest.mark.parametrize("fault_name", sorted(CATALOGUE))
def test_fault_is_caught_by_the_properties_it_names(fault_name, properties, reference):
    fault = CATALOGUE[fault_name]
    if not fault.applies(reference):  # colour faults: tests/test_colour_reference.py
        pytest.skip(f"{fault_name} cannot be planted in {reference.name!r}")
    result = run_fault(fault, reference, properties, only=fault.catches_for(reference))
    assert not result.expected_missed, (
        f"{fault_name} ({fault.description}) slipped past {result.expected_missed}")


def test_clean_target_passes_a_property_that_a_fault_trips(properties, reference):
    """The runner itself: the same property passes on the clean target, fails on the fault."""
    name = "test_preprocess_is_batch_independent"
    assert run_property(properties[name], reference) is None
    faulty = CATALOGUE["per_batch_normalization"].inject(reference)
    assert "batch-dependent" in run_property(properties[name], faulty)


def test_a_constant_attribution_map_is_named_not_reported_as_nan(properties, reference):
    """Batch-centred logits make every attribution 0: the subset-agreement property says
    that a map is constant instead of reporting Pearson r = nan with numpy's divide
    warning in the user's output."""
    faulty = CATALOGUE["batch_statistics_in_explained_model"].inject(reference)
    prop = properties["test_mean_attribution_maps_agree_across_disjoint_subsets"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(PropertyViolation, match="the map of subset 0 is constant"):
            prop(target=faulty)


def test_the_runner_reports_a_property_whose_field_is_missing_as_not_checked(properties,
                                                                            reference):
    """Outside pytest the runner honours ``requires`` as the plugin does: a property that
    needs a field the target leaves out is not checked (and never called), not a failure."""
    from mlprop.faults.sweep import property_outcome

    bare = reference.replace(trained_model=None, augmentations={})
    outcome = property_outcome(properties["test_attributions_are_complete"], bare)
    assert (outcome.status, outcome.message) == ("not checked",
                                                 "the target has no Target.trained_model")
    outcome = property_outcome(properties["test_augmentation_keeps_shape_and_dtype"], bare)
    assert outcome.message == "the target has no Target.augmentations"
    assert run_property(properties["test_attributions_are_complete"], bare) is None


def test_a_range_declared_from_the_formula_survives_float32_rounding(properties, reference):
    """(0 - MEAN) / STD in float64 is a few float32 steps above what a float32 preprocess
    computes on a black image (the worked example of docs/pages/how-to/training.md declares it
    so): no false alarm; a forgotten /255 is still far outside."""
    from mlprop.digits.preprocess import MEAN, STD
    from mlprop.faults import CATALOGUE

    exact = reference.replace(input_range=((0 - MEAN) / STD, (1 - MEAN) / STD))
    name = "test_preprocess_output_is_finite_and_inside_declared_range"
    assert run_property(properties[name], exact) is None
    assert run_property(properties[name], CATALOGUE["forgotten_scaling"].inject(exact))
