"""mlprop.profiles: failing examples release their frames, so a property's memory does not
grow with Hypothesis's shrink steps."""

from __future__ import annotations

import gc
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprop.profiles import apply_settings, property_settings, release_frames_on_failure


class Model:
    """Stands in for a network and its gradients."""


def _failing_property(alive_counts: list[int], refs: list):
    @given(st.lists(st.integers(0, 1000), min_size=3, max_size=30))
    def prop(values):
        gc.collect()
        alive_counts.append(sum(ref() is not None for ref in refs))
        model = Model()  # a local the failing frame would keep alive
        refs.append(weakref.ref(model))
        assert sum(values) < 50, "always fails for big sums; shrinking goes on"

    return prop


def _run(prop) -> None:
    with pytest.raises(AssertionError):
        prop()


def test_failing_examples_keep_no_models_alive_while_shrinking():
    alive: list[int] = []
    refs: list = []
    prop = _failing_property(alive, refs)
    apply_settings(prop, property_settings(prop, "ci"))
    _run(prop)
    assert len(alive) > 20  # it did shrink
    assert max(alive) <= 2, alive


def test_without_the_release_models_pile_up_meta():
    """Meta-test: the check above can fail (Hypothesis keeps failing frames by default)."""
    alive: list[int] = []
    refs: list = []
    prop = settings(property_settings(_failing_property([], []), "ci"))(
        _failing_property(alive, refs))
    _run(prop)
    assert max(alive) > 5, alive


def test_release_is_applied_once():
    prop = _failing_property([], [])
    release_frames_on_failure(prop)
    first = prop.hypothesis.inner_test
    release_frames_on_failure(prop)
    assert prop.hypothesis.inner_test is first
