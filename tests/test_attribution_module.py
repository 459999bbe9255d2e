"""Unit tests of mlprop.attribution (diagnosis, RNG hygiene, errors) and `mlprop explain`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlprop.attribution import (
    AttributionError,
    choose_method,
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


def test_functional_activation_breaks_deep_completeness_so_auto_chooses_expected_gradients():
    model, inputs, background = _seeded(Functional), _data(1, 3), _data(2, 8)
    assert explain(model, inputs, background, method="deep").completeness_gap().max() > 1e-3
    assert choose_method(model, inputs).name == "expected_gradients"
    result = explain(model, inputs, background)
    assert result.method == "expected_gradients" and result.samples == 8 * 8
    assert (result.completeness_gap() <= result.completeness_tolerance(1e-3)).all()


def test_reused_activation_fails_deep_by_name_and_auto_explains_it():
    model = _seeded(Reused)
    with pytest.raises(AttributionError, match=r"'act' is called 2 times"):
        explain(model, _data(1, 2), _data(2, 8), method="deep")
    assert explain(model, _data(1, 2), _data(2, 8)).method == "expected_gradients"


def test_inplace_activation_is_explained_exactly_through_a_copy():
    model = _seeded(Good)
    model.body[2] = nn.ReLU(inplace=True)
    result = explain(model, _data(1, 2), _data(2, 8))
    assert result.method == "deep" and result.completeness_gap().max() < 1e-4
    assert model.body[2].inplace


def test_expected_gradients_are_deterministic_and_batch_independent():
    model, inputs, background = _seeded(Functional), _data(1, 3), _data(2, 8)
    first = explain(model, inputs, background, method="expected_gradients", seed=3)
    again = explain(model, inputs, background, method="expected_gradients", seed=3)
    alone = explain(model, inputs[1:2], background, method="expected_gradients", seed=3)
    other = explain(model, inputs, background, method="expected_gradients", seed=4)
    assert np.array_equal(first.values, again.values)
    np.testing.assert_allclose(alone.values[0], first.values[1], rtol=1e-6, atol=1e-9)
    assert not np.array_equal(first.values, other.values)


def test_the_sampled_tolerance_shrinks_with_more_samples():
    model, inputs, background = _seeded(Functional), _data(1, 3), _data(2, 8)
    few = explain(model, inputs, background, method="expected_gradients", nsamples=16)
    many = explain(model, inputs, background, method="expected_gradients", nsamples=512)
    assert few.samples == 16 and many.samples == 512
    assert many.standard_error.mean() < few.standard_error.mean()


@pytest.mark.parametrize("method", ["deep", "gradient", "expected_gradients", "auto"])
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


def test_explaining_emits_no_warning_of_shap_into_the_users_output():
    """shap's import warns about its colour maps (three PendingDeprecationWarnings): a user's
    run of the suite from the wheel, without this repository's filterwarnings, must not show
    them. A fresh process, every warning an error."""
    import subprocess
    import sys

    code = ("import torch; from torch import nn; from mlprop.attribution import explain\n"
            "m = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.ReLU(), nn.Linear(3, 2))\n"
            "x = torch.rand(3, 1, 4, 4)\n"
            "print(explain(m, x, x).method, explain(m, x, x, method='expected_gradients').method)")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["deep", "expected_gradients"]
