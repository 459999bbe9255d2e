"""The whole property suite on the models people train today (tests/modern_models.py): a
stock-torchvision-style ResNet (in-place ReLU reused), a GroupNorm ResNet, ConvNeXt blocks
(LayerNorm, GELU), EfficientNet blocks (SiLU, squeeze-excitation) and a tiny ViT (attention).

No property may fail these correct pipelines (a property may say it could not decide), the
attribution properties explain each with a method that is exact for it, and the catalogue's
attribution faults are still caught on each.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlprop.attribution import NotExplainable, choose_method, explain
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties, property_outcome
from mlprop.target import load_target
from tests import modern_models

pytestmark = pytest.mark.slow

PROPERTIES = load_properties()
ATTRIBUTION = [name for name, prop in PROPERTIES.items()
               if prop.__module__.endswith("test_attribution")]
ATTRIBUTION_FAULTS = sorted(name for name, fault in CATALOGUE.items()
                            if set(fault.every_catch) & set(ATTRIBUTION))
@pytest.mark.parametrize("prop", sorted(PROPERTIES))
@pytest.mark.parametrize("target", modern_models.TARGETS, ids=lambda t: t.name)
def test_no_property_fails_a_correct_modern_model(target, prop):
    outcome = property_outcome(PROPERTIES[prop], target)
    assert outcome.status != "failed", (
        f"{prop} fails on the correct target {target.name!r}: {outcome.message}")


@pytest.mark.parametrize("fault_name", ATTRIBUTION_FAULTS)
@pytest.mark.parametrize("target", modern_models.TARGETS, ids=lambda t: t.name)
def test_attribution_faults_are_still_caught(target, fault_name):
    fault = CATALOGUE[fault_name]
    faulty = fault.inject(target)
    names = [*fault.catches_for(target), *(n for n in ATTRIBUTION
                                           if n not in fault.catches_for(target))]
    outcomes = {}
    for name in names:
        outcome = property_outcome(PROPERTIES[name], faulty)
        if outcome.status == "failed":
            return
        outcomes[name] = outcome.status
    pytest.fail(f"{fault_name} slipped past every attribution property on {target.name}: "
                f"{outcomes}")


def _sample(target) -> torch.Tensor:
    images, _ = target.holdout()
    return torch.from_numpy(target.preprocess(images[:2]))


@pytest.mark.parametrize("target", modern_models.TARGETS, ids=lambda t: t.name)
def test_modern_models_are_explained_with_expected_gradients_and_why(target):
    method = choose_method(target.trained_model(), _sample(target))
    assert method.name == "expected_gradients"
    assert "DeepExplainer is not exact" in method.reason


def test_reference_models_keep_the_exact_deep_explainer():
    for spec in ("mlprop.digits:target", "mlprop.colour:target"):
        target = load_target(spec)
        method = choose_method(target.trained_model(), _sample(target))
        assert method.name == "deep", (spec, method.reason)


def test_in_place_activations_are_explained_through_a_copy_and_the_model_is_untouched():
    digits = load_target("mlprop.digits:target")
    model = digits.trained_model()
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True
    inputs, background = _sample(digits), _sample(digits).flip(0)
    assert choose_method(model, inputs).name == "deep"
    result = explain(model, inputs, background)
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert result.method == "deep" and result.completeness_gap().max() < 1e-3


def test_a_reused_in_place_relu_is_explained_completely():
    target = modern_models.resnet
    model = target.trained_model()
    result = explain(model, _sample(target), _sample(target).flip(0))
    assert model.relu.inplace and model.layer1.relu.inplace  # the user's model is unchanged
    assert result.method == "expected_gradients" and result.samples > 0
    assert (result.completeness_gap() <= result.completeness_tolerance(1e-3)).all()


class Quantize(nn.Module):
    """Rounds its input to quarter steps: no gradient passes (torch.round's is zero)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4) / 4


def test_a_model_no_method_can_explain_makes_attribution_properties_not_checked():
    digits = load_target("mlprop.digits:target")
    quantized = digits.replace(
        trained_model=lambda: nn.Sequential(Quantize(), digits.trained_model()).eval())
    with pytest.raises(NotExplainable, match=r"module '0' \(Quantize\) passes no gradient"):
        explain(quantized.trained_model(), _sample(digits), _sample(digits).flip(0))
    for name in ATTRIBUTION:
        outcome = property_outcome(PROPERTIES[name], quantized)
        assert outcome.status == "not checked", (name, outcome)
        assert "Quantize" in outcome.message
