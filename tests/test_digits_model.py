"""Example-based unit tests of the reference CNN (DigitCNN, build_model)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from mlprop.digits.model import NUM_CLASSES, DigitCNN, build_model
from mlprop.digits.preprocess import INPUT_SHAPE


@pytest.fixture(autouse=True)
def _restore_global_torch_rng():
    """These tests reseed torch's global RNG; give other tests back the state they had."""
    with torch.random.fork_rng(devices=[]):
        yield


@pytest.mark.parametrize("count", [1, 3])
def test_output_is_logits_of_shape_n_by_10(count):
    model = build_model(0).eval()
    with torch.no_grad():
        out = model(torch.zeros(count, *INPUT_SHAPE))
    assert out.shape == (count, NUM_CLASSES) == (count, 10)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_output_is_not_a_probability_distribution():
    """The model returns logits: softmax belongs to the serving path, not the network."""
    model = build_model(1).eval()
    with torch.no_grad():
        out = model(torch.randn(4, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0)))
    assert not torch.allclose(out.sum(dim=1), torch.ones(4))
    assert (out < 0).any()


def test_custom_num_classes():
    model = DigitCNN(num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, *INPUT_SHAPE)).shape == (2, 3)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_same_seed_gives_identical_parameters():
    first, second = _state(build_model(42)), _state(build_model(42))
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_different_seeds_give_different_parameters():
    first, second = _state(build_model(0)), _state(build_model(1))
    weights = [name for name in first if name.endswith("weight")]
    assert weights
    for name in weights:
        assert not torch.equal(first[name], second[name]), name


def test_build_model_does_not_depend_on_global_rng():
    torch.manual_seed(123)
    first = _state(build_model(5))
    torch.manual_seed(999)
    torch.rand(10)
    second = _state(build_model(5))
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_build_model_leaves_global_rng_state_unchanged():
    torch.manual_seed(2024)
    before = torch.get_rng_state().clone()
    build_model(3)
    assert torch.equal(torch.get_rng_state(), before)
    # and the next global draw is what it would have been without the call
    drawn = torch.rand(5)
    torch.set_rng_state(before)
    assert torch.equal(torch.rand(5), drawn)


def test_build_model_returns_a_fresh_digit_cnn_each_call():
    first, second = build_model(0), build_model(0)
    assert isinstance(first, DigitCNN)
    assert first is not second
    with torch.no_grad():
        next(first.parameters()).add_(1.0)
    assert not torch.equal(next(first.parameters()), next(second.parameters()))


def test_activations_and_pools_are_distinct_non_inplace_modules():
    model = build_model(0)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(relus) == 3
    assert len(pools) == 2
    assert len({id(m) for m in relus}) == len(relus)  # never reused
    assert len({id(m) for m in pools}) == len(pools)
    assert not any(m.inplace for m in relus)
    # modules() deduplicates: count registrations too, so a reused instance shows up
    registered = [m for _, m in model.named_modules(remove_duplicate=False)
                  if isinstance(m, nn.ReLU | nn.MaxPool2d)]
    assert len(registered) == len(relus) + len(pools)


def test_forward_has_no_functional_activations():
    """Every activation/pool is a module call in the traced graph (SHAP hooks them)."""
    graph = fx.symbolic_trace(build_model(0)).graph
    functional = {F.relu, torch.relu, F.max_pool2d, torch.max_pool2d, torch.sigmoid,
                  torch.tanh, F.softmax, torch.softmax, F.dropout}
    calls = [node.target for node in graph.nodes if node.op in ("call_function", "call_method")]
    assert not [c for c in calls if c in functional or c in ("relu", "relu_", "softmax")]
    modules = [node.target for node in graph.nodes if node.op == "call_module"]
    assert len(modules) == len(set(modules))  # each module called exactly once


def test_eval_mode_forward_is_deterministic_and_train_mode_uses_dropout():
    model = build_model(0)
    inputs = torch.rand(8, *INPUT_SHAPE, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(inputs), model(inputs))
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        first = model(inputs)
        second = model(inputs)
    assert not torch.equal(first, second)


def test_every_parameter_gets_a_gradient():
    model = build_model(0).eval()
    inputs = torch.rand(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(2))
    model(inputs).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name
