"""Unit tests of the target contract: construction, validation and loading."""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest

from mlprop import Augmentation, ImageSchema, Target, TargetError, load_target

SCHEMA = ImageSchema(num_classes=3, min_side=4, max_side=8)


def _identity(images, *, seed, magnitude):
    return images


def make_target(**changes) -> Target:
    fields = dict(
        name="toy",
        schema=SCHEMA,
        input_shape=(1, 4, 4),
        input_range=(0.0, 1.0),
        preprocess=lambda images: images,
        augmentations={"same": Augmentation(fn=_identity)},
        build_model=lambda seed: None,
        trained_model=lambda: None,
        predict=lambda images: images,
        holdout=lambda: (np.zeros((0, 4, 4), np.uint8), np.zeros(0, np.int64)),
        min_accuracy=0.5,
    )
    fields.update(changes)
    return Target(**fields)


def test_valid_target_constructs_and_replace_revalidates():
    target = make_target()
    assert target.name == "toy"
    assert dataclasses.replace(target, name="other").name == "other"
    with pytest.raises(TargetError, match="name"):
        dataclasses.replace(target, name="")


def test_target_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_target().name = "x"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schema", "not a schema"),
        ("input_shape", (1, 28)),
        ("input_shape", (1, 0, 28)),
        ("input_shape", [1, 28, 28]),
        ("input_range", (1.0, 0.0)),
        ("input_range", (0.0, float("inf"))),
        ("preprocess", "not callable"),
        ("preprocess", lambda a, b: a),
        ("augmentations", {"x": _identity}),
        ("augmentations", ["rotate"]),
        ("build_model", lambda: None),
        ("trained_model", lambda seed: None),
        ("predict", lambda: None),
        ("holdout", lambda n: None),
        ("min_accuracy", 1.5),
        ("min_accuracy", True),
        ("expected_failed_checks", {"check": 3}),
        ("thresholds", {"rate": "high"}),
    ],
)
def test_bad_field_names_the_field(field, value):
    with pytest.raises(TargetError) as info:
        make_target(**{field: value})
    assert info.value.violation.field.startswith(field)
    assert field in str(info.value)


def test_augmentation_signature_is_checked():
    with pytest.raises(TargetError, match="fn"):
        Augmentation(fn=lambda images, seed: images)
    with pytest.raises(TargetError, match="label_preserving"):
        Augmentation(fn=_identity, label_preserving="yes")


def test_mappings_are_read_only_copies():
    checks = {"test_x": "reason"}
    target = make_target(expected_failed_checks=checks)
    checks["test_y"] = "later"
    assert dict(target.expected_failed_checks) == {"test_x": "reason"}
    with pytest.raises(TypeError):
        target.expected_failed_checks["z"] = "no"


def test_threshold_override_and_default():
    target = make_target(thresholds={"agreement": 0.8})
    assert target.threshold("agreement", 0.9) == 0.8
    assert target.threshold("other", 0.25) == 0.25


@pytest.fixture
def fake_module(monkeypatch):
    module = types.ModuleType("mlprop_fake_target_module")
    module.target = make_target()
    module.not_a_target = 42
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def test_load_target_returns_the_named_target(fake_module):
    assert load_target(f"{fake_module}:target").name == "toy"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_colon", "module:attribute"),
        ("a:b:c", "module:attribute"),
        (":target", "module:attribute"),
        ("mlprop_no_such_module_xyz:target", "ModuleNotFoundError"),
        ("{module}:missing", "no such attribute"),
        ("{module}:not_a_target", "int"),
    ],
)
def test_load_target_errors_name_the_spec(fake_module, spec, fragment):
    spec = spec.format(module=fake_module)
    with pytest.raises(TargetError) as info:
        load_target(spec)
    assert fragment in str(info.value)


def test_module_failing_at_import_is_reported(tmp_path, monkeypatch):
    (tmp_path / "mlprop_broken_target.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TargetError, match="boom at import"):
        load_target("mlprop_broken_target:target")


def test_reference_target_loads():
    target = load_target("mlprop.digits:target")
    assert target.name == "digits"
    assert set(target.augmentations) >= {"rotate", "shift", "noise", "scale"}
