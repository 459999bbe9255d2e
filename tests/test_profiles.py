"""mlprop.profiles: failing examples release their frames, so a property's memory does not
grow with Hypothesis's shrink steps."""

from __future__ import annotations

import gc
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprop.profiles import (
    apply_settings,
    examples_at_most,
    property_settings,
    release_frames_on_failure,
)


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


def _calls_until_reported(profile: str, *, costly: bool = False) -> int:
    """Examples run by an always-failing property before Hypothesis reports the failure."""
    calls: list[tuple[int, int]] = []

    @given(st.integers(0, 100), st.integers(0, 100))
    def prop(a, b):
        calls.append((a, b))
        raise AssertionError("always fails")

    if costly:
        prop = examples_at_most(3)(prop)
    apply_settings(prop, property_settings(prop, profile, database=None))
    _run(prop)
    return len(calls)


def test_a_failure_is_reported_without_the_explain_phase_replays():
    """Under ``ci`` and ``mutmut``, and for a costly property under every profile, a failure
    is reported without the explain phase's replays (hundreds of runs of the failing example:
    39 s of a SHAP property's 45 s), and a costly property stops at its first failure."""
    dev = _calls_until_reported("dev")
    assert dev > 100  # the explain phase runs: what a cheap property keeps in dev
    assert _calls_until_reported("ci") < 30
    assert _calls_until_reported("mutmut") < 30
    for profile in ("dev", "thorough", "ci"):
        assert _calls_until_reported(profile, costly=True) <= 5
