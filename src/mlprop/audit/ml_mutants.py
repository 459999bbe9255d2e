"""ML-fault mutants: the bugs ML code actually has, which mutmut's operators never make.

mutmut changes literals and operators one token at a time; it cannot drop a statement or
move a tensor axis. This pass uses libcst to make, inside function bodies only, mutants
such as a forgotten ``model.eval()``, a missing ``optimizer.zero_grad()``, an ignored seed,
a softmax over the wrong ``dim``, swapped axes, a flipped ``reduction``/``keepdim``/
``inplace`` flag, a dropped ``torch.no_grad()`` block or a changed dtype. Each operator is a
*category* in the audit report.

:func:`generate` is pure (source text in, mutants out); :mod:`mlprop.audit.ml_runner` runs
each mutant against the tests that cover its function.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from mlprop.audit.report import module_name

#: Operator categories, in report order, with what each one plants.
OPERATORS: dict[str, str] = {
    "mode-call": "drop a model.eval() / .train() call (wrong train/eval mode)",
    "zero-grad": "drop optimizer.zero_grad() (gradients accumulate across steps)",
    "seed": "drop a seeding call, a generator's seed, a generator= argument or a fork_rng() "
            "block",
    "dim": "reduce / softmax / argmax / concatenate over another dim or axis",
    "axes": "swap the axes of a permute, drop a transpose, (un)squeeze another axis",
    "reduction": "flip reduction='mean' <-> 'sum'",
    "flag": "flip a boolean flag (shuffle, keepdim, inplace, align_corners, antialias, ...)",
    "no-grad": "drop a torch.no_grad() / inference_mode() block",
    "dtype": "change a floating / uint8 dtype (.astype, dtype=, .float())",
}

#: Operator -> the catalogue faults (:mod:`mlprop.faults`) of the same kind: a
#: surviving ML mutant of a run without mlprop's properties names their ``catches``.
OPERATOR_FAULTS: dict[str, tuple[str, ...]] = {
    "mode-call": ("eval_forgotten_in_predict", "batchnorm_train_mode_at_serve",
                  "dropout_active_in_eval", "train_runs_in_eval_mode"),
    # training that no longer converges shows as a model that is no better than untrained
    "zero-grad": ("untrained_model_served", "input_ignored", "train_never_resets_gradients"),
    "seed": ("init_ignores_seed", "augmentation_ignores_seed", "jitter_at_inference",
             "train_draws_from_the_global_rng", "train_ignores_its_seed"),
    "dim": ("softmax_over_batch", "cross_sample_leakage", "per_batch_normalization"),
    "axes": ("transposed_at_serve", "squeeze_in_predict", "squeeze_single_image",
             "channels_last_viewed_as_channels_first"),
    "reduction": ("untrained_model_served", "per_batch_normalization"),
    "flag": ("dropout_active_in_eval", "shuffled_at_inference", "untrained_model_served"),
    "no-grad": (),  # outputs are unchanged: only memory and time differ
    "dtype": ("float64_output", "augmentation_returns_float", "noise_wraps_uint8"),
}


def properties_for(operator: str) -> list[str]:
    """The properties of mlprop's suite that catch faults of ``operator``'s kind (the
    ``catches`` of :data:`OPERATOR_FAULTS`' catalogue entries), in catalogue order."""
    from mlprop.faults import CATALOGUE

    found: list[str] = []
    for name in OPERATOR_FAULTS.get(operator, ()):
        fault = CATALOGUE.get(name)
        if fault is not None:
            found += [c for c in fault.every_catch if c not in found]
    return found


DIM_FUNCTIONS = frozenset({
    "softmax", "log_softmax", "argmax", "argmin", "mean", "sum", "max", "min", "std", "var",
    "prod", "cumsum", "logsumexp", "norm", "cat", "concat", "concatenate", "stack", "all",
    "any", "median", "nanmean", "nansum", "count_nonzero", "amax", "amin", "topk", "sort",
    "argsort", "flip", "roll", "normalize",
})
#: Functions (not methods) whose second positional argument is the dim.
DIM_SECOND_POSITIONAL = frozenset({"softmax", "log_softmax", "argmax", "argmin", "cat",
                                   "stack", "sum", "mean"})
AXIS_METHODS = frozenset({"squeeze", "unsqueeze", "flatten"})
TRANSPOSE_FUNCTIONS = frozenset({"transpose", "swapaxes", "swapdims", "movedim", "moveaxis"})
PERMUTE_FUNCTIONS = frozenset({"permute"})
FLAGS = frozenset({
    "shuffle", "keepdim", "keepdims", "inplace", "align_corners", "antialias", "drop_last",
    "batch_first", "bias", "affine", "track_running_stats", "ceil_mode", "count_include_pad",
    "training", "requires_grad", "bidirectional", "normalized", "unbiased", "replacement",
})
SEED_CALLS = frozenset({"manual_seed", "manual_seed_all", "seed", "set_seed", "seed_everything"})
RNG_CONSTRUCTORS = frozenset({"default_rng", "RandomState", "Random", "SeedSequence", "PCG64",
                              "PCG64DXSM", "MT19937", "Philox", "SFC64"})
FORK_RNG = frozenset({"fork_rng"})
NO_GRAD = frozenset({"no_grad", "inference_mode", "enable_grad"})
#: ``with`` blocks a mutant drops, by the context manager's name -> operator.
WITH_BLOCKS = {**dict.fromkeys(NO_GRAD, "no-grad"), **dict.fromkeys(FORK_RNG, "seed")}
MODE_CALLS = frozenset({"eval", "train"})
#: dtype name -> the dtype a mutant uses instead (precision and uint8 wrap-around faults).
DTYPE_SWAPS = {"float32": "float64", "float64": "float32", "float16": "float32",
               "bfloat16": "float32", "half": "float", "double": "float", "uint8": "int8"}
FLOAT_METHODS = {"float": "double", "double": "float", "half": "float"}


@dataclass(frozen=True)
class MLMutant:
    """One ML-fault mutant of one function of one module."""

    id: str               # "<module>:<function>:<operator>:<n>", stable across unrelated edits
    operator: str         # a key of OPERATORS
    module: str           # dotted module name, e.g. "mlprop.digits.train"
    path: str             # source path as given to generate(), e.g. "src/mlprop/digits/train.py"
    function: str         # qualified name of the top-level function or method, "DigitCNN.forward"
    line: int
    description: str      # what changed, one line: "drop model.eval()"
    source: str = field(repr=False)  # the whole mutated module
    diff: str = field(repr=False)

    @property
    def source_sha(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- helpers


def _call_name(call: cst.Call) -> str | None:
    """``softmax`` for ``torch.softmax(...)``, ``x.softmax(...)`` and ``softmax(...)``."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def _is_method_call(call: cst.Call) -> bool:
    """``x.f()`` on a value (not ``torch.f()``/``np.f()``/``F.f()`` on a module)."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    receiver = func.value
    while isinstance(receiver, cst.Attribute):
        receiver = receiver.value
    return not (isinstance(receiver, cst.Name) and receiver.value in {
        "torch", "np", "numpy", "F", "nn", "functional", "math", "random", "scipy"})


def _is_mode_call(call: cst.Call) -> bool:
    """``m.eval()``, ``m.train()``, ``m.train(False)`` on a value (not ``torch.train``)."""
    return _is_method_call(call) and all(
        isinstance(a.value, cst.Name) and a.value.value in {"True", "False"} for a in call.args)


def _int_value(node: cst.BaseExpression) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.value)
    if (isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus)
            and isinstance(node.expression, cst.Integer)):
        return -int(node.expression.value)
    return None


def _int_node(value: int) -> cst.BaseExpression:
    if value < 0:
        return cst.UnaryOperation(cst.Minus(), cst.Integer(str(-value)))
    return cst.Integer(str(value))


def _other_axis(value: int) -> int:
    return 1 if value == 0 else 0


def _without(args: Sequence[cst.Arg], index: int) -> list[cst.Arg]:
    """``args`` less the one at ``index``, the last one left without a trailing comma."""
    kept = [arg for i, arg in enumerate(args) if i != index]
    if kept and index == len(args) - 1:
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return kept


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node).strip()


def _dtype_swap(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """``np.float32`` -> ``np.float64``, ``"uint8"`` -> ``"int8"``; None if not a dtype."""
    if isinstance(node, cst.Attribute) and node.attr.value in DTYPE_SWAPS:
        return node.with_changes(attr=cst.Name(DTYPE_SWAPS[node.attr.value]))
    if isinstance(node, cst.Name) and node.value in DTYPE_SWAPS and node.value not in {
            "half", "double"}:
        return cst.Name(DTYPE_SWAPS[node.value])
    if isinstance(node, cst.SimpleString):
        text = node.evaluated_value
        if isinstance(text, str) and text in DTYPE_SWAPS and text not in {"half", "double"}:
            quote = node.value[0]
            return cst.SimpleString(f"{quote}{DTYPE_SWAPS[text]}{quote}")
    return None


# --------------------------------------------------------------------------- finding sites


@dataclass
class _Site:
    operator: str
    target: cst.CSTNode
    replace: Callable[[cst.CSTNode], cst.CSTNode | cst.FlattenSentinel]
    description: str
    function: str
    line: int


class _SiteFinder(cst.CSTVisitor):
    """Collect every mutation site inside function bodies, with its enclosing function."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self) -> None:
        super().__init__()
        self.sites: list[_Site] = []
        self._statement_calls: set[int] = set()
        self._scopes: list[tuple[str, str]] = []  # ("class"|"def", name)

    # scope tracking: the function a mutant belongs to is the outermost def (and its class)
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._scopes.append(("class", node.name.value))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(("def", node.name.value))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def _function(self) -> str | None:
        names: list[str] = []
        for kind, name in self._scopes:
            names.append(name)
            if kind == "def":
                return ".".join(names)
        return None

    def _add(self, operator: str, target: cst.CSTNode,
             replace: Callable[[cst.CSTNode], cst.CSTNode | cst.FlattenSentinel],
             description: str) -> None:
        function = self._function()
        if function is None:  # module or class level: not swapped at run time, skip
            return
        line = self.get_metadata(PositionProvider, target).start.line
        self.sites.append(_Site(operator, target, replace, description, function, line))

    # statements -------------------------------------------------------------------------

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        if len(node.body) != 1 or not isinstance(node.body[0], cst.Expr):
            return
        call = node.body[0].value
        if not isinstance(call, cst.Call):
            return
        name = _call_name(call)
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        operator = ("mode-call" if name in MODE_CALLS and _is_mode_call(call) else
                    "zero-grad" if name == "zero_grad" and receiver is not None else None)
        if operator is not None:  # a whole statement: drop it
            self._statement_calls.add(id(call))
            self._add(operator, node, lambda _: cst.SimpleStatementLine([cst.Pass()]),
                      f"drop {_code(call)}")
        if name in SEED_CALLS and not isinstance(getattr(call.func, "value", None), cst.Call):
            self._add("seed", node, lambda _: cst.SimpleStatementLine([cst.Pass()]),
                      f"drop {_code(call)}")

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            if not isinstance(call, cst.Call) or item.asname is not None:
                continue
            name = _call_name(call)
            operator = WITH_BLOCKS.get(name or "")
            if operator is None:
                continue

            def drop(updated: cst.CSTNode, item_code: str = _code(call)) -> cst.CSTNode:
                kept = [i for i in updated.items if _code(i.item) != item_code]
                if kept:
                    kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                    return updated.with_changes(items=kept)
                body = updated.body
                statements = body.body if isinstance(body, cst.IndentedBlock) else [
                    cst.SimpleStatementLine(list(body.body))]
                return cst.FlattenSentinel(list(statements))

            self._add(operator, node, drop, f"drop the `with {_code(call)}:` block")

    # calls -------------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        name = _call_name(node)
        if name is None:
            return
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        statement = id(node) in self._statement_calls
        if name in MODE_CALLS and _is_mode_call(node) and not statement:
            self._add("mode-call", node, lambda _, r=receiver: r, f"drop {_code(node)}")
        if name == "zero_grad" and receiver is not None and not statement:
            self._add("zero-grad", node, lambda _, r=receiver: r, f"drop {_code(node)}")
        if name in SEED_CALLS and isinstance(receiver, cst.Call):  # Generator().manual_seed(s)
            self._add("seed", node, lambda _, r=receiver: r, f"drop {_code(node)}")
        if name in RNG_CONSTRUCTORS and node.args:
            self._add("seed", node, lambda n: n.with_changes(args=[]),
                      f"unseeded {_code(node.func)}() instead of {_code(node)}")
        self._dim_sites(node, name)
        self._axes_sites(node, name, receiver)
        self._keyword_sites(node, name)

    def _dim_sites(self, node: cst.Call, name: str) -> None:
        if name not in DIM_FUNCTIONS:
            return
        for index, arg in enumerate(node.args):
            keyword = arg.keyword.value if arg.keyword else None
            positional = (keyword is None and (
                (index == 0 and _is_method_call(node)) or
                (index == 1 and isinstance(node.func, cst.Attribute) and not _is_method_call(
                    node) and name in DIM_SECOND_POSITIONAL)))
            if keyword in {"dim", "axis"} or positional:
                value = _int_value(arg.value)
                if value is None:
                    continue
                new = _other_axis(value)

                def swap(n: cst.Call, index: int = index, new: int = new) -> cst.Call:
                    args = list(n.args)
                    args[index] = args[index].with_changes(value=_int_node(new))
                    return n.with_changes(args=args)

                what = f"{keyword}={value}" if keyword else f"dim {value}"
                self._add("dim", node, swap, f"{name} over {new} instead of {what}")

    def _axes_sites(self, node: cst.Call, name: str, receiver: cst.BaseExpression | None,
                    ) -> None:
        ints = [_int_value(a.value) for a in node.args if a.keyword is None]
        if name in AXIS_METHODS and receiver is not None and _is_method_call(node) and (
                len(node.args) == 1 and ints[0] is not None):
            new = _other_axis(ints[0])

            def move(n: cst.Call, new: int = new) -> cst.Call:
                return n.with_changes(args=[n.args[0].with_changes(value=_int_node(new))])

            self._add("axes", node, move, f"{name}({new}) instead of {name}({ints[0]})")
        if name in PERMUTE_FUNCTIONS and _is_method_call(node) and len(ints) >= 2 and all(
                v is not None for v in ints) and len(ints) == len(node.args):
            def permute(n: cst.Call) -> cst.Call:
                args = list(n.args)
                last, before = args[-1].value, args[-2].value
                args[-2], args[-1] = args[-2].with_changes(value=last), args[-1].with_changes(
                    value=before)
                return n.with_changes(args=args)

            self._add("axes", node, permute, f"swap the last two axes of {_code(node)}")
        if name in TRANSPOSE_FUNCTIONS and receiver is not None and _is_method_call(node) and (
                len(node.args) == 2 and all(v is not None for v in ints)):
            self._add("axes", node, lambda _, r=receiver: r, f"drop {_code(node)}")

    def _keyword_sites(self, node: cst.Call, name: str) -> None:
        for index, arg in enumerate(node.args):
            keyword = arg.keyword.value if arg.keyword else None
            value = arg.value

            def set_value(n: cst.Call, new: cst.BaseExpression, index: int = index) -> cst.Call:
                args = list(n.args)
                args[index] = args[index].with_changes(value=new)
                return n.with_changes(args=args)

            if keyword == "generator":  # DataLoader(shuffle=True, generator=g), randperm
                self._add("seed", node,
                          lambda n, index=index: n.with_changes(args=_without(n.args, index)),
                          f"drop generator= from {name}() (draws from the global RNG)")
            elif keyword == "reduction" and isinstance(value, cst.SimpleString) and (
                    value.evaluated_value in {"mean", "sum"}):
                old = value.evaluated_value
                new = "sum" if old == "mean" else "mean"
                quote = value.value[0]
                self._add("reduction", node,
                          lambda n, new=f"{quote}{new}{quote}", s=set_value: s(
                              n, cst.SimpleString(new)),
                          f"reduction={new!r} instead of {old!r}")
            elif keyword in FLAGS and isinstance(value, cst.Name) and value.value in {
                    "True", "False"}:
                new = "False" if value.value == "True" else "True"
                self._add("flag", node, lambda n, new=new, s=set_value: s(n, cst.Name(new)),
                          f"{keyword}={new} instead of {value.value} in {name}()")
            elif keyword == "dtype" or (name == "astype" and index == 0 and keyword is None):
                swapped = _dtype_swap(value)
                if swapped is not None:
                    self._add("dtype", node, lambda n, new=swapped, s=set_value: s(n, new),
                              f"{_code(swapped)} instead of {_code(value)} in {name}()")
        if name in FLOAT_METHODS and not node.args and _is_method_call(node):
            new_name = FLOAT_METHODS[name]
            self._add("dtype", node,
                      lambda n, new=new_name: n.with_changes(
                          func=n.func.with_changes(attr=cst.Name(new))),
                      f".{new_name}() instead of .{name}()")


class _Replace(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode,
                 replace: Callable[[cst.CSTNode], cst.CSTNode | cst.FlattenSentinel]) -> None:
        super().__init__()
        self.target = target
        self.replace = replace

    def on_leave(self, original_node, updated_node):
        if original_node is self.target:
            return self.replace(updated_node)
        return updated_node


# --------------------------------------------------------------------------- public API


def generate(source: str, path: str | Path, *, module: str | None = None,
             operators: Sequence[str] | None = None) -> list[MLMutant]:
    """Every ML-fault mutant of ``source`` (the text of the file at ``path``).

    Only code inside functions and methods is mutated: that is what
    :mod:`~mlprop.audit.ml_runner` can swap in at run time. ``operators`` restricts the
    categories (default: all of :data:`OPERATORS`).
    """
    unknown = set(operators or ()) - set(OPERATORS)
    if unknown:
        raise ValueError(f"unknown ML-mutant operators {sorted(unknown)}; "
                         f"known: {list(OPERATORS)}")
    chosen = set(operators or OPERATORS)
    module = module or module_name(path)
    wrapper = MetadataWrapper(cst.parse_module(source))
    finder = _SiteFinder()
    wrapper.visit(finder)
    tree = wrapper.module
    mutants: list[MLMutant] = []
    counters: dict[tuple[str, str], int] = {}
    for site in finder.sites:
        if site.operator not in chosen:
            continue
        mutated = tree.visit(_Replace(site.target, site.replace)).code
        if mutated == source:
            continue
        key = (site.function, site.operator)
        counters[key] = counters.get(key, 0) + 1
        diff = "\n".join(difflib.unified_diff(
            source.splitlines(), mutated.splitlines(), fromfile=str(path), tofile=str(path),
            lineterm="", n=1))
        mutants.append(MLMutant(
            id=f"{module}:{site.function}:{site.operator}:{counters[key]}",
            operator=site.operator, module=module, path=str(path), function=site.function,
            line=site.line, description=site.description, source=mutated, diff=diff))
    return mutants


def generate_for_paths(root: Path, paths: Sequence[str | Path],
                       operators: Sequence[str] | None = None) -> list[MLMutant]:
    """:func:`generate` over files (``paths`` relative to ``root``), in path order."""
    mutants: list[MLMutant] = []
    for path in sorted(str(p) for p in paths):
        mutants.extend(generate((root / path).read_text(encoding="utf-8"), path,
                                operators=operators))
    return mutants
