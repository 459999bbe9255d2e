"""The whole property suite holds for two alternative correct targets (tests/alt_targets.py),
so it is not tuned to the reference pipeline."""

from __future__ import annotations

import pytest

from mlprop.faults.sweep import load_properties, run_property
from tests import alt_targets

PROPERTIES = load_properties()


@pytest.mark.parametrize("prop", sorted(PROPERTIES))
@pytest.mark.parametrize("target", [alt_targets.minmax, alt_targets.wide], ids=lambda t: t.name)
def test_alternative_target_satisfies_property(target, prop):
    failure = run_property(PROPERTIES[prop], target)
    assert failure is None, f"{prop} fails on the correct target {target.name!r}: {failure}"


def test_alternative_targets_differ_from_the_reference():
    assert alt_targets.minmax.input_shape != (1, 28, 28)
    assert type(alt_targets.wide.build_model(0)).__name__ == "WideNet"
