"""Attributions for a target's trained model: the method chosen for the model, not the model
rewritten for the method.

Invariant: an attribution property judges the *model*, never its explainer's limits. Before
explaining, :func:`choose_method` inspects the model:

- ``"deep"`` (SHAP's DeepExplainer, exact and fast) only when every leaf module has an
  *additive* DeepLIFT rule (:data:`EXACT_DEEP_RULES`: convolutions, linear layers, batch norm,
  pooling, element-wise activations), no module instance is called twice in forward, and the
  traced forward uses no other non-linear operation between modules (a product of two
  activations as in squeeze-excitation or attention, a functional ``F.relu``, a normalisation
  computed in forward). In-place modules are explained through a copy with ``inplace=False``:
  the user never rewrites the model.
- ``"expected_gradients"`` otherwise (Erion et al. 2021: integrated gradients averaged over
  baselines drawn from the background): completeness holds for *any* differentiable model, in
  expectation. Each background image is used equally often with stratified path positions,
  so the sum of the attributions estimates ``f(x) - mean f(background)`` exactly in
  expectation, and its standard error is known from the samples
  (:attr:`Explanation.standard_error`): the completeness property's tolerance is derived from
  it and stated in its message. Draws come from a private generator seeded by ``seed`` and
  are the same for every input, so explanations are deterministic and batch-independent.
- A model whose output passes no gradient to its input (detached, rounded, an integer cast)
  cannot be explained by either: :class:`NotExplainable` names the layer, and the properties
  report themselves as not checked.

SHAP's pitfalls handled here: its additivity check uses a fixed absolute tolerance and
miscompares under ``ranked_outputs`` (we explain one output at a time with the check off);
GradientExplainer's ``rseed`` overwrites NumPy's global state and ``local_smoothing`` draws
from torch's (:func:`explain` restores both); importing shap emits
``PendingDeprecationWarning``\\ s that would reach the user's output (silenced here).
"""

from __future__ import annotations

import copy
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

EXACT_DEEP_RULES = frozenset({
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "Linear", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Dropout", "Dropout2d",
    "Dropout3d", "AlphaDropout", "Identity", "Flatten", "ReLU", "LeakyReLU", "ELU", "Sigmoid",
    "Tanh", "Softplus", "SELU", "GELU", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "Sequential",  # a leaf only when empty: the identity (an unused residual shortcut)
})
"""Leaf modules whose DeepExplainer rule keeps attributions additive in eval mode: linear
maps (batch norm in eval is affine), max pooling, and element-wise activations (the rescale
rule). Softmax has a rule, but not an additive one (it is not element-wise); GroupNorm,
LayerNorm, SiLU and attention have none (DeepExplainer passes gradients through them)."""

LINEAR_GRAPH_OPS = frozenset({
    "add", "iadd", "sub", "isub", "neg", "flatten", "view", "reshape", "permute",
    "transpose", "contiguous", "cat", "concat", "stack", "getitem", "getattr", "size",
    "unsqueeze", "squeeze", "chunk", "split", "clone", "to", "float", "expand", "mul",
    "truediv", "div",
})
"""Operations between modules that DeepLIFT's linear pass-through treats exactly: additions
(residual connections), reshapes, and ``mul``/``div`` *by a constant* (checked per node)."""

METHODS = ("auto", "deep", "expected_gradients", "gradient")
STANDARD_ERRORS = 4.0
"""Completeness tolerance of a sampled method, in standard errors of the sum of attributions
(a correct model is outside it with probability about 6e-5 per input)."""


class AttributionError(MlpropError, RuntimeError):
    """The model cannot be explained by the requested method; the message says why."""


class NotExplainable(AttributionError):
    """No available method can explain the model (no gradient reaches the input): a property
    cannot decide, the message names the layer."""


class ClassLogit(nn.Module):
    """The logit of one class, as a single-output model (shape (N, 1))."""

    def __init__(self, model: nn.Module, class_index: int) -> None:
        super().__init__()
        self.model = model
        self.class_index = class_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.class_index:self.class_index + 1]


@dataclass(frozen=True)
class Method:
    """The attribution method for a model, and why it was chosen."""

    name: str
    reason: str

    @property
    def label(self) -> str:
        return {"deep": "SHAP DeepExplainer (exact rules)",
                "expected_gradients": "expected gradients",
                "gradient": "SHAP GradientExplainer"}.get(self.name, self.name)


def _call_counts(model: nn.Module, sample: torch.Tensor) -> dict[str, int]:
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
    return calls


def diagnose(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """Why DeepExplainer would not explain ``model`` exactly (empty: no known problem)."""
    problems = []
    for name, module in model.named_modules():
        if getattr(module, "inplace", False):
            problems.append(f"module {name!r} ({type(module).__name__}) is in-place "
                            "(inplace=True): explained through a copy with inplace=False")
    problems += [f"module {name!r} is called {count} times in forward (one instance reused)"
                 for name, count in _call_counts(model, sample).items() if count > 1]
    problems += _graph_problems(model)
    problems += _custom_functions(model, sample)
    problems += _unsupported_layers(model)
    return problems


def _unsupported_layers(model: nn.Module) -> list[str]:
    """Leaf modules without an additive DeepExplainer rule."""
    return [f"module {name!r} of type {type(module).__name__} has no additive DeepExplainer "
            "rule" for name, module in model.named_modules()
            if not list(module.children()) and name
            and type(module).__name__ not in EXACT_DEEP_RULES]


def _is_constant(argument: object) -> bool:
    return isinstance(argument, int | float) or (
        isinstance(argument, torch.fx.Node) and argument.op == "get_attr")


def _graph_problems(model: nn.Module) -> list[str]:
    """Operations in the traced forward that DeepLIFT cannot pass through exactly."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # data-dependent control flow and the like: cannot tell
        return [f"forward cannot be traced ({type(exc).__name__}), so operations between "
                "modules cannot be checked"]
    found = []
    for node in graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        name = getattr(node.target, "__name__", str(node.target)).strip("_")
        if name in FUNCTIONAL_NONLINEARITIES:
            found.append(f"forward calls {name} functionally ({node.name})")
        elif name in ("mul", "truediv", "div", "imul", "itruediv"):
            if not any(_is_constant(arg) for arg in node.args):
                found.append(f"forward multiplies or divides two activations ({node.name})")
        elif name not in LINEAR_GRAPH_OPS:
            found.append(f"forward calls {name} between modules ({node.name})")
    return found


def choose_method(model: nn.Module, sample: torch.Tensor) -> Method:
    """DeepExplainer where it is exact for ``model``, expected gradients otherwise."""
    blocking = [p for p in diagnose(model, sample) if "in-place" not in p]
    if not blocking:
        return Method("deep", "every layer has an additive DeepExplainer rule")
    return Method("expected_gradients", "DeepExplainer is not exact for this model: "
                  + "; ".join(blocking[:3]) + (f" (+{len(blocking) - 3} more)"
                                               if len(blocking) > 3 else ""))


def without_inplace(model: nn.Module) -> nn.Module:
    """``model`` itself when no module is in-place, else a copy with ``inplace=False``
    everywhere (the same function; DeepExplainer's hooks cannot see in-place outputs)."""
    if not any(getattr(m, "inplace", False) for m in model.modules()):
        return model
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
    return twin


def _private_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without in-place modules for SHAP to hook: its hooks stay on the
    modules when it fails midway, and must never reach the user's model."""
    twin = without_inplace(model)
    return copy.deepcopy(model) if twin is model else twin


@dataclass(frozen=True)
class Explanation:
    """Attributions (N, *input_shape) for ``classes``; ``baseline`` is E[f(background)].

    ``standard_error`` (sampled methods only, else zeros) is the standard error of each
    input's sum of attributions as an estimate of ``f(x) - baseline``; ``samples`` the
    number of path samples per input (0 for an exact method)."""

    values: np.ndarray
    classes: np.ndarray
    outputs: np.ndarray
    baseline: np.ndarray
    method: str = "deep"
    method_reason: str = ""
    standard_error: np.ndarray | None = None
    samples: int = 0

    def per_pixel(self) -> np.ndarray:
        """Attributions summed over the channel axis: ``(N, H, W)`` maps, one value per
        pixel whatever the number of channels (for a grey model the single channel)."""
        return self.values.sum(axis=1)

    def completeness_gap(self) -> np.ndarray:
        """|sum(attributions) - (f(x) - E[f(background)])| per input."""
        totals = self.values.reshape(len(self.values), -1).sum(axis=1)
        return np.abs(totals - (self.outputs - self.baseline))

    def completeness_tolerance(self, rtol: float) -> np.ndarray:
        """Per input: ``rtol`` times the output's scale (at least 1), and for a sampled
        method at least :data:`STANDARD_ERRORS` standard errors."""
        scale = np.maximum(np.abs(self.outputs - self.baseline), 1.0)
        error = (np.zeros_like(scale) if self.standard_error is None
                 else STANDARD_ERRORS * self.standard_error)
        return np.maximum(rtol * scale, error)

    @property
    def method_label(self) -> str:
        label = Method(self.method, self.method_reason).label
        return f"{label}, {self.samples} samples per input" if self.samples else label


def _logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(inputs)


def _import_shap():
    with warnings.catch_warnings():  # shap's import warns about its own colour maps
        warnings.simplefilter("ignore")
        import shap
    return shap


def default_samples(model: nn.Module, inputs: torch.Tensor) -> tuple[int, int]:
    """(path samples per background image, chunk size) for expected gradients, scaled so
    the cost per input stays bounded by the model and input size: 8 samples per background
    image and chunks of 64 for a small CNN, 1 and 2 for a ResNet-18 at 3x224x224."""
    parameters = sum(p.numel() for p in model.parameters())
    work = float(parameters) * float(np.prod(tuple(inputs.shape[1:])))
    per_background = int(max(1, min(8, 2e10 / max(work, 1.0))))
    chunk = int(max(2, min(64, 1e11 / max(work, 1.0))))
    return per_background, chunk


def explain(model: nn.Module, inputs: torch.Tensor, background: torch.Tensor, *,
            classes: Sequence[int] | None = None, method: str = "auto",
            nsamples: int | None = None, seed: int = 0) -> Explanation:
    """Attributions of each input's logit for ``classes`` (default: the predicted class).

    ``method``: ``"auto"`` (:func:`choose_method`), ``"deep"`` (DeepExplainer),
    ``"expected_gradients"`` (``nsamples`` path samples per input, default from
    :func:`default_samples`, drawn with ``seed``) or ``"gradient"`` (SHAP's
    GradientExplainer). Global NumPy and torch random state is the same afterwards as
    before. Raises :class:`NotExplainable` when no gradient reaches the input."""
    if method not in METHODS:
        raise AttributionError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    model = model.eval()
    inputs = inputs.detach().to(torch.float32)
    background = background.detach().to(torch.float32)
    logits = _logits(model, inputs)
    chosen = (logits.argmax(dim=1).numpy() if classes is None
              else np.asarray(classes, dtype=np.int64))
    if len(chosen) != len(inputs):
        raise ValueError(f"classes: expected {len(inputs)} entries, got {len(chosen)}")
    picked = (choose_method(model, inputs) if method == "auto"
              else Method(method, "requested"))
    outputs = logits.numpy()[np.arange(len(chosen)), chosen].astype(np.float64)
    if picked.name == "expected_gradients":
        return _expected_gradients(model, inputs, background, chosen, outputs, picked,
                                   nsamples, seed)
    try:
        values, baseline = _shap_values(_private_copy(model), inputs, background, chosen,
                                        picked.name, nsamples or 200, seed)
    except AttributionError as exc:
        if method != "auto":
            raise
        fallback = Method("expected_gradients", f"DeepExplainer failed on this model ({exc})")
        return _expected_gradients(model, inputs, background, chosen, outputs, fallback,
                                   nsamples, seed)
    return Explanation(values, chosen, outputs, baseline, picked.name, picked.reason)


def _shap_values(model: nn.Module, inputs: torch.Tensor, background: torch.Tensor,
                 chosen: np.ndarray, method: str, nsamples: int, seed: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    shap = _import_shap()
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
                else:
                    explainer = shap.GradientExplainer(head, background)
                    raw = explainer.shap_values(inputs[rows], nsamples=nsamples, rseed=seed)
                    expected = float(_logits(head, background).mean())
                values[rows] = np.asarray(raw, dtype=np.float64).reshape(
                    (len(rows), *inputs.shape[1:]))
                baseline[rows] = expected
    except (RuntimeError, AssertionError, ValueError) as exc:
        problems = diagnose(model, inputs)
        reason = "; ".join(problems) or "no known cause found"
        raise AttributionError(f"SHAP {method} explainer failed on this model ({reason}): "
                               f"{str(exc).splitlines()[0]}") from exc
    finally:
        np.random.set_state(numpy_state)
    return values, baseline


def _batch_dependent(model: nn.Module, points: torch.Tensor) -> bool:
    """Whether ``model`` (in eval mode) gives a row another output in a batch than alone: its
    gradients then mix the images of a batch, a bug of the model for the properties to judge
    (not a limit of the method)."""
    pair = points[:2]
    if len(pair) < 2:
        return False
    together = _logits(model, pair)
    alone = torch.cat([_logits(model, pair[i:i + 1]) for i in range(len(pair))])
    return not torch.allclose(together, alone, rtol=1e-4, atol=1e-5)


def _path_draws(count: int, per_background: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Background index and path position of each sample: every background image
    ``per_background`` times, positions stratified over (0, 1) for each, from ``seed``."""
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(count), per_background)
    strata = np.tile(np.arange(per_background), count)
    alphas = (strata + rng.random(count * per_background)) / per_background
    return index, alphas.astype(np.float32)


def _gradients(model: nn.Module, points: torch.Tensor, cls: int, chunk: int) -> torch.Tensor:
    grads = []
    for start in range(0, len(points), chunk):
        leaf = points[start:start + chunk].clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(leaf.clone())[:, cls]
            if not out.requires_grad:
                raise NotExplainable(
                    "the model's output does not depend differentiably on its input "
                    f"({_detaching_layer(model, points[:1])}): gradient-based attributions "
                    "cannot explain it, and DeepExplainer cannot either. To have its "
                    "attributions checked, let trained_model() return a model whose forward "
                    "keeps the autograd graph")
            (grad,) = torch.autograd.grad(out.sum(), leaf)
        grads.append(grad.detach())
    return torch.cat(grads)


def _expected_gradients(model: nn.Module, inputs: torch.Tensor, background: torch.Tensor,
                        chosen: np.ndarray, outputs: np.ndarray, picked: Method,
                        nsamples: int | None, seed: int) -> Explanation:
    per_background, chunk = default_samples(model, inputs)
    if nsamples is not None:
        per_background = max(1, int(nsamples) // max(1, len(background)))
    index, alphas = _path_draws(len(background), per_background, seed)
    starts = background[torch.from_numpy(index)]
    weights = torch.from_numpy(alphas).reshape(-1, *([1] * (inputs.dim() - 1)))
    background_logits = _logits(model, background).numpy().astype(np.float64)
    values = np.zeros(tuple(inputs.shape), dtype=np.float64)
    baseline = np.zeros(len(inputs), dtype=np.float64)
    error = np.zeros(len(inputs), dtype=np.float64)
    for row in range(len(inputs)):
        cls = int(chosen[row])
        delta = inputs[row:row + 1] - starts
        grads = _gradients(model, starts + weights * delta, cls, chunk)
        terms = (delta * grads).double()
        values[row] = terms.mean(dim=0).numpy()
        totals = terms.flatten(1).sum(dim=1).numpy()
        differences = outputs[row] - background_logits[index, cls]
        if not np.any(totals) and np.abs(differences).max() > 1e-6 * max(
                1.0, float(np.abs(outputs[row]))) and not _batch_dependent(model, background):
            raise NotExplainable(
                "no gradient reaches the input although the output changes along the path "
                f"({_blocking_layer(model, inputs[row:row + 1], cls)}): the model is not "
                "differentiable there (rounding, sign, argmax, an integer cast). To have its "
                "attributions checked, let trained_model() return the model without that "
                "layer (the float model before quantisation)")
        baseline[row] = float(background_logits[:, cls].mean())
        residuals = totals - differences
        error[row] = float(residuals.std(ddof=1) / np.sqrt(len(residuals))) if len(
            residuals) > 1 else float(np.abs(residuals).max())
    return Explanation(values, chosen, outputs, baseline, picked.name, picked.reason,
                       error, len(index))


@dataclass(frozen=True)
class _LeafTrace:
    """One leaf module's call in a forward and backward pass."""

    name: str
    module: nn.Module
    output_requires_grad: bool
    output_gets_gradient: bool
    input_gets_gradient: bool
    output_varies: bool


def _nonzero_grad(tensor: torch.Tensor) -> bool:
    return bool(tensor.retains_grad and tensor.grad is not None and tensor.grad.abs().sum() > 0)


def _leaf_traces(model: nn.Module, sample: torch.Tensor, cls: int) -> list[_LeafTrace]:
    """Each leaf module's call in a forward and backward pass of ``cls``'s logit over
    ``sample``, in call order, on a copy of ``model`` without in-place modules."""
    twin = _private_copy(model)
    seen: list[tuple[str, nn.Module, torch.Tensor | None, torch.Tensor]] = []

    def record(name: str):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                return
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            for tensor in (first, output):
                if tensor is not None and tensor.requires_grad and not tensor.is_leaf:
                    tensor.retain_grad()
            seen.append((name, module, first, output))
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in
               twin.named_modules() if not list(module.children()) and name]
    try:
        leaf = sample.clone().requires_grad_(True)
        with torch.enable_grad():
            out = twin.eval()(leaf * 1.0)[:, cls]
            if out.requires_grad:
                out.sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    return [_LeafTrace(name, module, output.requires_grad, _nonzero_grad(output),
                       first is not None and _nonzero_grad(first),
                       bool(len(output) > 1 and (output.detach() != output.detach()[:1]).any()))
            for name, module, first, output in seen]


def _detaching_layer(model: nn.Module, sample: torch.Tensor) -> str:
    for trace in _leaf_traces(model, sample, 0):
        if not trace.output_requires_grad:
            return (f"module {trace.name!r} ({type(trace.module).__name__}) returns a tensor "
                    "detached from its input")
    return "an operation outside the modules detaches it (.detach(), torch.no_grad, .numpy())"


def _blocking_layer(model: nn.Module, sample: torch.Tensor, cls: int) -> str:
    for trace in _leaf_traces(model, sample, cls):
        if trace.output_gets_gradient and not trace.input_gets_gradient:
            return (f"module {trace.name!r} ({type(trace.module).__name__}) passes no "
                    "gradient to its input")
    return "an operation in forward passes no gradient"


def gradient_blockers(model: nn.Module, sample: torch.Tensor, cls: int) -> list[str]:
    """Leaf modules whose output varies across ``sample`` and receives a gradient, but which
    pass none to their input: a non-differentiable step (rounding, sign, an integer cast)
    inside a model that is otherwise differentiable."""
    return [f"module {trace.name!r} ({type(trace.module).__name__})"
            for trace in _leaf_traces(model, sample, cls)
            if trace.output_varies and trace.output_gets_gradient
            and not trace.input_gets_gradient]


def _custom_functions(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """Custom autograd functions in the backward graph of ``model(sample)``: DeepExplainer's
    module hooks cannot see through them, whatever the module around them looks like."""
    leaf = sample[:1].clone().requires_grad_(True)
    with torch.enable_grad():
        out = model.eval()(leaf * 1.0)
    found: dict[str, None] = {}
    stack, seen = [getattr(out, "grad_fn", None)], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            found[type(node).__name__.removesuffix("Backward")] = None
        stack.extend(next_node for next_node, _ in node.next_functions)
    return [f"forward applies the custom autograd function {name}" for name in found]


def max_sensitivity(reference: np.ndarray, perturbed: Sequence[np.ndarray]) -> float:
    """Yeh et al. 2019 max-sensitivity, relative: max_j ||phi(x_j) - phi(x)|| / ||phi(x)||."""
    scale = float(np.linalg.norm(reference)) or 1.0
    return max(float(np.linalg.norm(p - reference)) / scale for p in perturbed)


def top_k_overlap(first: np.ndarray, second: np.ndarray, k: int) -> float:
    """|top-k(|first|) & top-k(|second|)| / k over flattened attributions."""
    a = np.argsort(-np.abs(first).ravel(), kind="stable")[:k]
    b = np.argsort(-np.abs(second).ravel(), kind="stable")[:k]
    return len(set(a.tolist()) & set(b.tolist())) / k
