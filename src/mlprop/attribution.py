"""SHAP attributions for a target's trained model, with the known pitfalls handled.

- DeepExplainer hooks leaf modules: functional activations (``F.relu``), in-place ReLU and a
  module instance reused in forward break it or its additivity. :func:`diagnose` finds
  those and :class:`AttributionError` names them instead of a bare shap traceback.
- SHAP's own additivity check uses a fixed absolute tolerance and miscompares under
  ``ranked_outputs``: we explain one output at a time (a :class:`ClassLogit` wrapper) with
  its check off, and the completeness property checks additivity relative to the scale.
- GradientExplainer's ``rseed`` overwrites NumPy's global state and ``local_smoothing``
  draws from torch's: :func:`explain` restores both.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlprop.errors import MlpropError

FUNCTIONAL_NONLINEARITIES = {
    "relu", "relu_", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax",
    "max_pool2d", "max_pool1d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
    "leaky_relu", "elu", "dropout",
}


class AttributionError(MlpropError, RuntimeError):
    """The model cannot be explained exactly by DeepExplainer; the message says why."""


class ClassLogit(nn.Module):
    """The logit of one class, as a single-output model (shape (N, 1))."""

    def __init__(self, model: nn.Module, class_index: int) -> None:
        super().__init__()
        self.model = model
        self.class_index = class_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.class_index:self.class_index + 1]


def diagnose(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """Why DeepExplainer would not explain ``model`` exactly (empty: no known problem)."""
    problems = []
    for name, module in model.named_modules():
        if getattr(module, "inplace", False):
            problems.append(f"module {name!r} ({type(module).__name__}) is in-place "
                            "(inplace=True): use a non-in-place instance")
    calls: dict[str, int] = {}
    handles = [module.register_forward_hook(
        lambda m, i, o, key=name: calls.__setitem__(key, calls.get(key, 0) + 1))
        for name, module in model.named_modules() if not list(module.children())]
    try:
        with torch.no_grad():
            model.eval()(sample[:1])
    finally:
        for handle in handles:
            handle.remove()
    problems += [f"module {name!r} is called {count} times in forward: give each use its "
                 "own instance" for name, count in calls.items() if count > 1]
    problems += _functional_calls(model)
    problems += _unsupported_layers(model)
    return problems


def _unsupported_layers(model: nn.Module) -> list[str]:
    """Leaf modules DeepExplainer has no rule for: it falls back to plain gradients."""
    try:
        from shap.explainers._deep.deep_pytorch import op_handler
    except ImportError:  # another shap layout: cannot tell
        return []
    return [f"module {name!r} of type {type(module).__name__} has no DeepExplainer rule "
            "(its plain gradient is used, so attributions are not additive)"
            for name, module in model.named_modules()
            if not list(module.children()) and name and type(module).__name__ not in op_handler]


def _functional_calls(model: nn.Module) -> list[str]:
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # not traceable (data-dependent control flow): cannot tell
        return []
    found = []
    for node in graph.nodes:
        if node.op in ("call_function", "call_method"):
            name = getattr(node.target, "__name__", str(node.target))
            if name in FUNCTIONAL_NONLINEARITIES:
                found.append(f"forward calls {name} functionally ({node.name}): DeepExplainer "
                             "only sees nn.Module layers; use a module instance")
    return found


@dataclass(frozen=True)
class Explanation:
    """Attributions (N, *input_shape) for ``classes``; ``baseline`` is E[f(background)]."""

    values: np.ndarray
    classes: np.ndarray
    outputs: np.ndarray
    baseline: np.ndarray

    def per_pixel(self) -> np.ndarray:
        """Attributions summed over the channel axis: ``(N, H, W)`` maps, one value per
        pixel whatever the number of channels (for a grey model the single channel)."""
        return self.values.sum(axis=1)

    def completeness_gap(self) -> np.ndarray:
        """|sum(attributions) - (f(x) - E[f(background)])| per input."""
        totals = self.values.reshape(len(self.values), -1).sum(axis=1)
        return np.abs(totals - (self.outputs - self.baseline))


def _logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(inputs)


def explain(model: nn.Module, inputs: torch.Tensor, background: torch.Tensor, *,
            classes: Sequence[int] | None = None, method: str = "deep",
            nsamples: int = 200, seed: int = 0) -> Explanation:
    """Attributions of each input's logit for ``classes`` (default: the predicted class).

    ``method="deep"`` (DeepExplainer, exact for module-only ReLU networks) or ``"gradient"``
    (GradientExplainer with ``nsamples`` and ``seed``). Global NumPy and torch random state
    is the same afterwards as before.
    """
    import shap

    model = model.eval()
    inputs = inputs.detach().to(torch.float32)
    background = background.detach().to(torch.float32)
    logits = _logits(model, inputs)
    chosen = (logits.argmax(dim=1).numpy() if classes is None
              else np.asarray(classes, dtype=np.int64))
    if len(chosen) != len(inputs):
        raise ValueError(f"classes: expected {len(inputs)} entries, got {len(chosen)}")
    values = np.zeros(tuple(inputs.shape), dtype=np.float64)
    baseline = np.zeros(len(inputs), dtype=np.float64)
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cls in np.unique(chosen):
                rows = np.flatnonzero(chosen == cls)
                head = ClassLogit(model, int(cls)).eval()
                if method == "deep":
                    explainer = shap.DeepExplainer(head, background)
                    raw = explainer.shap_values(inputs[rows], check_additivity=False)
                    expected = float(np.asarray(explainer.expected_value).reshape(-1)[0])
                elif method == "gradient":
                    explainer = shap.GradientExplainer(head, background)
                    raw = explainer.shap_values(inputs[rows], nsamples=nsamples, rseed=seed)
                    expected = float(_logits(head, background).mean())
                else:
                    raise ValueError(f"method: expected 'deep' or 'gradient', got {method!r}")
                values[rows] = np.asarray(raw, dtype=np.float64).reshape(
                    (len(rows), *inputs.shape[1:]))
                baseline[rows] = expected
    except AttributionError:
        raise
    except (RuntimeError, AssertionError, ValueError) as exc:
        problems = diagnose(model, inputs)
        reason = "; ".join(problems) or "no known cause found"
        raise AttributionError(f"SHAP {method} explainer failed on this model ({reason}): "
                               f"{str(exc).splitlines()[0]}") from exc
    finally:
        np.random.set_state(numpy_state)
    outputs = logits.numpy()[np.arange(len(chosen)), chosen].astype(np.float64)
    return Explanation(values, chosen, outputs, baseline)


def max_sensitivity(reference: np.ndarray, perturbed: Sequence[np.ndarray]) -> float:
    """Yeh et al. 2019 max-sensitivity, relative: max_j ||phi(x_j) - phi(x)|| / ||phi(x)||."""
    scale = float(np.linalg.norm(reference)) or 1.0
    return max(float(np.linalg.norm(p - reference)) / scale for p in perturbed)


def top_k_overlap(first: np.ndarray, second: np.ndarray, k: int) -> float:
    """|top-k(|first|) & top-k(|second|)| / k over flattened attributions."""
    a = np.argsort(-np.abs(first).ravel(), kind="stable")[:k]
    b = np.argsort(-np.abs(second).ravel(), kind="stable")[:k]
    return len(set(a.tolist()) & set(b.tolist())) / k
