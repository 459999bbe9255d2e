"""ML-fault mutant generation on small snippets, and swapping a mutant into live code."""

from __future__ import annotations

import functools
import sys
import textwrap
import types

import pytest

from mlprop.audit import ml_mutants
from mlprop.audit.ml_runner import live_function, swap_in


def mutants_of(code: str, **kwargs) -> list[ml_mutants.MLMutant]:
    return ml_mutants.generate(textwrap.dedent(code), "src/pkg/mod.py", **kwargs)


def only(code: str, operator: str) -> ml_mutants.MLMutant:
    found = [m for m in mutants_of(code) if m.operator == operator]
    assert len(found) == 1, [(m.id, m.description) for m in found]
    return found[0]


def changed_lines(mutant: ml_mutants.MLMutant) -> tuple[list[str], list[str]]:
    lines = mutant.diff.splitlines()[2:]
    return ([line[1:].strip() for line in lines if line.startswith("-")],
            [line[1:].strip() for line in lines if line.startswith("+")])


def test_every_operator_has_a_description():
    assert set(ml_mutants.OPERATORS) == {"mode-call", "zero-grad", "seed", "dim", "axes",
                                         "reduction", "flag", "no-grad", "dtype"}


def test_mode_calls_are_dropped_as_statements_and_in_expressions():
    code = """
    def serve(model, x):
        model.eval()
        return model(x)

    def fresh(build):
        return build().eval()

    def fit(model):
        model.train(True)
        torch.train()
    """
    found = [m for m in mutants_of(code) if m.operator == "mode-call"]
    assert [m.id for m in found] == ["pkg.mod:serve:mode-call:1", "pkg.mod:fresh:mode-call:1",
                                     "pkg.mod:fit:mode-call:1"]
    assert changed_lines(found[0]) == (["model.eval()"], ["pass"])
    assert changed_lines(found[1]) == (["return build().eval()"], ["return build()"])
    assert found[2].description == "drop model.train(True)"


def test_zero_grad_is_dropped():
    mutant = only("""
    def step(model, optimizer, loss_fn, x, y):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    """, "zero-grad")
    assert changed_lines(mutant) == (["optimizer.zero_grad()"], ["pass"])
    assert mutant.function == "step" and mutant.line == 3


def test_seeds_generators_and_fork_rng_are_removed():
    code = """
    def init(seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Net()

    def draws(seed, n):
        rng = np.random.default_rng(seed)
        g = torch.Generator().manual_seed(seed)
        return rng.uniform(size=n), torch.rand(n, generator=g)
    """
    found = {m.description: m for m in mutants_of(code) if m.operator == "seed"}
    assert set(found) == {
        "drop the `with torch.random.fork_rng(devices=[]):` block",
        "drop torch.manual_seed(seed)",
        "unseeded np.random.default_rng() instead of np.random.default_rng(seed)",
        "drop torch.Generator().manual_seed(seed)",
        "drop generator= from rand() (draws from the global RNG)",
    }
    fork = found["drop the `with torch.random.fork_rng(devices=[]):` block"]
    removed, added = changed_lines(fork)
    assert removed[0] == "with torch.random.fork_rng(devices=[]):"
    assert added == ["torch.manual_seed(seed)", "return Net()"]
    assert changed_lines(found["drop torch.manual_seed(seed)"])[1] == ["pass"]


def test_a_generator_argument_is_dropped():
    """An unseeded shuffle: DataLoader / randperm draw from the global RNG instead."""
    code = """
    def loader(data, seed):
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(data), generator=g)
        return DataLoader(data, shuffle=True, generator=g, batch_size=8), order
    """
    found = {m.description: m for m in mutants_of(code) if m.operator == "seed"}
    randperm = found["drop generator= from randperm() (draws from the global RNG)"]
    assert changed_lines(randperm)[1] == ["order = torch.randperm(len(data))"]
    loader = found["drop generator= from DataLoader() (draws from the global RNG)"]
    assert changed_lines(loader)[1] == [
        "return DataLoader(data, shuffle=True, batch_size=8), order"]


def test_dims_and_axes_move():
    code = """
    def head(logits, x):
        p = torch.softmax(logits, dim=1)
        q = F.log_softmax(logits, -1)
        k = logits.argmax(1)
        s = x.sum(axis=0)
        t = np.stack([a, b], 1)
        n = sum(values, 0)
        return p, q, k, s, t
    """
    found = [m.description for m in mutants_of(code) if m.operator == "dim"]
    assert found == ["softmax over 0 instead of dim=1", "log_softmax over 0 instead of dim -1",
                     "argmax over 0 instead of dim 1", "sum over 1 instead of axis=0",
                     "stack over 0 instead of dim 1"]  # builtin sum(values, 0): untouched


def test_axes_operator_swaps_permutes_drops_transposes_and_moves_squeezes():
    code = """
    def layout(x):
        a = x.permute(0, 2, 3, 1)
        b = x.transpose(1, 2)
        c = x.unsqueeze(1).squeeze(0)
        return a, b, c
    """
    found = [m for m in mutants_of(code) if m.operator == "axes"]
    descriptions = [m.description for m in found]
    assert "swap the last two axes of x.permute(0, 2, 3, 1)" in descriptions
    assert "drop x.transpose(1, 2)" in descriptions
    assert "unsqueeze(0) instead of unsqueeze(1)" in descriptions
    assert "squeeze(1) instead of squeeze(0)" in descriptions
    permute = next(m for m in found if "permute" in m.description)
    assert changed_lines(permute)[1] == ["a = x.permute(0, 2, 1, 3)"]


def test_reduction_flags_no_grad_and_dtypes():
    code = """
    def loss():
        return nn.CrossEntropyLoss(reduction="mean")

    def mean(x):
        return x.mean(dim=1, keepdim=True)

    def serve(model, x):
        with torch.no_grad():
            y = model(x)
        return y

    def cast(a):
        return a.astype(np.float32), np.zeros(3, dtype="uint8"), torch.tensor(a).float()
    """
    reduction = only(code, "reduction")
    assert changed_lines(reduction)[1] == ['return nn.CrossEntropyLoss(reduction="sum")']
    flag = only(code, "flag")
    assert flag.description == "keepdim=False instead of True in mean()"
    no_grad = only(code, "no-grad")
    assert changed_lines(no_grad) == (["with torch.no_grad():", "y = model(x)"],
                                      ["y = model(x)"])
    dtypes = [m.description for m in mutants_of(code) if m.operator == "dtype"]
    assert dtypes == ["np.float64 instead of np.float32 in astype()",
                      '"int8" instead of "uint8" in zeros()', ".double() instead of .float()"]


def test_only_function_bodies_are_mutated_and_every_mutant_compiles():
    code = """
    import torch
    SCALE = torch.ones(3).sum(dim=0)  # module level: never mutated

    class Net(nn.Module):
        act = nn.ReLU(inplace=True)   # class level: never mutated

        def forward(self, x):
            return torch.softmax(self.body(x), dim=1)

        def predict(self, x):
            self.eval()
            with torch.inference_mode():
                return self(x).argmax(dim=1)
    """
    found = mutants_of(code)
    assert {m.function for m in found} == {"Net.forward", "Net.predict"}
    assert {m.id for m in found} == {"pkg.mod:Net.forward:dim:1", "pkg.mod:Net.predict:dim:1",
                                     "pkg.mod:Net.predict:mode-call:1",
                                     "pkg.mod:Net.predict:no-grad:1"}
    for mutant in found:
        compile(mutant.source, mutant.path, "exec")
        assert mutant.source != textwrap.dedent(code)
        assert len(mutant.source_sha) == 16


def test_operators_can_be_restricted_and_unknown_ones_are_refused():
    code = "def f(x):\n    x.eval()\n    return x.sum(dim=1)\n"
    assert [m.operator for m in ml_mutants.generate(code, "m.py", operators=["dim"])] == ["dim"]
    with pytest.raises(ValueError, match="unknown ML-mutant operators"):
        ml_mutants.generate(code, "m.py", operators=["nonsense"])


def test_ids_survive_edits_elsewhere_in_the_file():
    before = "def f(x):\n    x.eval()\n\ndef g(m):\n    m.eval()\n"
    after = "def f(x):\n    y = 1\n    x.eval()\n    return y\n\ndef g(m):\n    m.eval()\n"
    ids = [m.id for m in ml_mutants.generate(before, "m.py")]
    assert ids == [m.id for m in ml_mutants.generate(after, "m.py")]


def test_module_name_drops_src_and_init():
    assert ml_mutants.module_name("src/mlprop/digits/train.py") == "mlprop.digits.train"
    assert ml_mutants.module_name("src/mlprop/digits/__init__.py") == "mlprop.digits"
    assert ml_mutants.module_name("pkg/mod.py") == "pkg.mod"


# --------------------------------------------------------------------------- swapping


SOURCE = """
import functools

def helper(x):
    return x + 1

def wrapped(f):
    @functools.wraps(f)
    def inner(*args):
        return f(*args)
    return inner

@wrapped
def decorated(x):
    return x * 2

class Box:
    def __init__(self, v):
        super().__init__()
        self.v = v

    def get(self):
        return self.v
"""


@pytest.fixture
def live_module():
    module = types.ModuleType("mlprop_swap_probe")
    module.__file__ = "mlprop_swap_probe.py"
    exec(compile(SOURCE, module.__file__, "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_swap_in_changes_the_function_for_every_reference(live_module):
    alias = live_module.helper
    swap_in(live_module, "helper", SOURCE.replace("x + 1", "x - 1"), "probe.py")
    assert alias(10) == 9 and live_module.helper(10) == 9


def test_swap_in_reaches_decorated_functions_and_methods(live_module):
    swap_in(live_module, "decorated", SOURCE.replace("x * 2", "x * 3"), "probe.py")
    assert live_module.decorated(2) == 6
    mutated = SOURCE.replace("return self.v", "return -self.v").replace(
        "self.v = v", "self.v = v + 1")
    swap_in(live_module, "Box.get", mutated, "probe.py")
    swap_in(live_module, "Box.__init__", mutated, "probe.py")  # super() needs its cell
    box = live_module.Box(4)
    assert box.get() == -5


def test_swap_in_refuses_what_it_cannot_swap(live_module):
    with pytest.raises(LookupError, match="no function missing"):
        swap_in(live_module, "missing", SOURCE, "probe.py")
    with pytest.raises(TypeError, match="not a Python function"):
        live_module.not_a_function = functools.partial(print)
        live_function(live_module, "not_a_function")
    closure = SOURCE.replace("def helper(x):\n    return x + 1",
                             "def helper(x):\n    return (lambda: x)()")
    swap_in(live_module, "helper", closure, "probe.py")  # a lambda inside: still no freevars
    assert live_module.helper(3) == 3
