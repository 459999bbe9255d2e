"""Unit tests of mlprop.attribution (diagnosis, RNG hygiene, errors) and `mlprop explain`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlprop.attribution import (
    AttributionError,
    diagnose,
    explain,
    max_sensitivity,
    top_k_overlap,
)


class Good(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.body(x)


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flat, self.a, self.b, self.act = nn.Flatten(), nn.Linear(16, 8), nn.Linear(8, 3), \
            nn.ReLU()

    def forward(self, x):
        return self.act(self.b(self.act(self.a(self.flat(x)))))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flat, self.a, self.b = nn.Flatten(), nn.Linear(16, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(self.flat(x))))


def _data(seed: int = 0, count: int = 6) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(count, 1, 4, 4))
                            .astype(np.float32))


def _seeded(cls):
    torch.manual_seed(0)
    return cls()


def test_diagnose_accepts_a_module_only_network():
    assert diagnose(_seeded(Good), _data()) == []


def test_diagnose_names_inplace_reused_and_functional_activations():
    inplace = _seeded(Good)
    inplace.body[2] = nn.ReLU(inplace=True)
    assert any("in-place" in p for p in diagnose(inplace, _data()))
    assert any("called 2 times" in p for p in diagnose(_seeded(Reused), _data()))
    assert any("functionally" in p for p in diagnose(_seeded(Functional), _data()))


def test_deep_explanations_are_complete_for_a_module_only_network():
    result = explain(_seeded(Good), _data(1, 3), _data(2, 8))
    assert result.values.shape == (3, 1, 4, 4)
    assert result.completeness_gap().max() < 1e-4


def test_functional_activation_breaks_completeness():
    result = explain(_seeded(Functional), _data(1, 3), _data(2, 8))
    assert result.completeness_gap().max() > 1e-3


def test_inplace_activation_raises_an_attribution_error_naming_the_module():
    model = _seeded(Good)
    model.body[2] = nn.ReLU(inplace=True)
    with pytest.raises(AttributionError, match=r"body\.2"):
        explain(model, _data(1, 2), _data(2, 8))


@pytest.mark.parametrize("method", ["deep", "gradient"])
def test_explaining_leaves_global_random_state_alone(method):
    model = _seeded(Good)
    np.random.seed(123)
    torch.manual_seed(456)
    numpy_before, torch_before = np.random.get_state()[1].copy(), torch.get_rng_state()
    explain(model, _data(1, 2), _data(2, 8), method=method, nsamples=20, seed=7)
    assert np.array_equal(np.random.get_state()[1], numpy_before)
    assert torch.equal(torch.get_rng_state(), torch_before)


def test_unknown_method_and_wrong_class_count_are_refused():
    with pytest.raises(AttributionError, match="method"):
        explain(_seeded(Good), _data(1, 2), _data(2, 8), method="lime")
    with pytest.raises(ValueError, match="classes"):
        explain(_seeded(Good), _data(1, 2), _data(2, 8), classes=[0])


def test_sensitivity_and_overlap_on_known_values():
    reference = np.array([1.0, 0.0, 0.0, 0.0])
    assert max_sensitivity(reference, [reference]) == 0.0
    assert max_sensitivity(reference, [np.array([0.0, 1.0, 0.0, 0.0])]) == pytest.approx(
        np.sqrt(2))
    assert top_k_overlap(np.array([3.0, -2.0, 1.0]), np.array([-3.0, 2.0, 0.0]), 2) == 1.0
    assert top_k_overlap(np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0]), 1) == 0.0


def test_explain_command_writes_a_png_and_prints_figures(tmp_path, capsys, monkeypatch):
    from mlprop import cli
    from mlprop.digits import pipeline

    monkeypatch.setattr(pipeline, "trained_model", lambda: pipeline.model_dimensions().eval())
    out = tmp_path / "grid.png"
    assert cli.main(["explain", "--n", "4", "--background", "8", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    assert "seconds per explanation" in printed and "max-sensitivity" in printed


def test_explain_command_refuses_bad_arguments(tmp_path, capsys):
    from mlprop import cli

    assert cli.main(["explain", "--n", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert cli.main(["explain", "--out", str(tmp_path / "x.jpg")]) == 2
    assert "--out" in capsys.readouterr().err
