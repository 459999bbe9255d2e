"""The ML-mutant worker end to end on a tiny project (a few seconds; no mutmut)."""

from __future__ import annotations

import textwrap
from dataclasses import asdict
from pathlib import Path

from mlprop.audit import ml_mutants, ml_runner

MODULE = """
import numpy as np


def column_totals(x):
    return np.asarray(x).sum(axis=0)


def serve(model):
    model.eval()
    return 1


def uncovered(x):
    return x.mean(dim=1)
"""

TESTS = """
import numpy as np

from pkg.mod import column_totals, serve


def test_column_totals():
    assert column_totals([[1, 2], [3, 4]]).tolist() == [4, 6]


class Model:
    def eval(self):
        return self


def test_serve():
    assert serve(Model()) == 1


def test_broken():
    assert False
"""


def make_project(root: Path) -> None:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text(textwrap.dedent(MODULE))
    (root / "tests").mkdir()
    (root / "tests" / "test_mod.py").write_text(textwrap.dedent(TESTS))


def test_worker_kills_keeps_and_skips_mutants(tmp_path):
    make_project(tmp_path)
    mutants = ml_mutants.generate((tmp_path / "pkg" / "mod.py").read_text(), "pkg/mod.py")
    by_function = {m.function: m for m in mutants}
    assert set(by_function) == {"column_totals", "serve", "uncovered"}
    tests = {"column_totals": ["tests/test_mod.py::test_column_totals"],
             "serve": ["tests/test_mod.py::test_serve"], "uncovered": []}
    items = [ml_runner.WorkItem(id=m.id, module=m.module, function=m.function, path=m.path,
                                source=m.source, tests=tests[m.function], timeout=60)
             for m in mutants]
    clean = ml_runner.WorkItem(id="clean", module="", function="", path="", source="",
                               tests=["tests/test_mod.py::test_column_totals"], timeout=60)
    broken = ml_runner.WorkItem(id="clean-broken", module="", function="", path="",
                                source="", timeout=60,
                                tests=["tests/test_mod.py::test_broken",
                                       "tests/test_mod.py::test_serve"])
    spec = {"root": str(tmp_path), "sys_path": ["."], "max_children": 2, "warm_up": True,
            "items": [asdict(i) for i in [*items, clean, broken]], "prepare": None,
            "pytest_args": [], "env": {"MUTANT_UNDER_TEST": "mlprop-ml-mutant"}}
    seen = []
    results = {r.id: r for r in ml_runner.run_worker(spec, tmp_path / "spec.json",
                                                     on_result=seen.append)}
    assert len(seen) == 5
    killed = results[by_function["column_totals"].id]
    assert killed.status == "killed"
    assert killed.killed_by == "tests/test_mod.py::test_column_totals"
    assert results[by_function["serve"].id].status == "survived"
    assert results[by_function["uncovered"].id].status == "no tests"
    assert results["clean"].status == "survived"  # the unmutated code passes
    # a clean run does not stop at the first failure and lists every failing test
    assert results["clean-broken"].status == "killed"
    assert results["clean-broken"].detail == "tests/test_mod.py::test_broken"
    assert sum(results[m.id].status == "killed" for m in mutants) == 1


TRAINING = """
import functools


class Model:
    training = True

    def train(self):
        self.training = True

    def eval(self):
        self.training = False


def fit():
    model = Model()
    model.train()
    model.eval()
    return model


@functools.cache
def _fitted():  # the user's in-memory cache of the trained model
    return fit()


def trained_model():
    return _fitted()


def serve(model):
    model.eval()
    return model
"""

TRAINING_TARGET = """
from mlprop import ImageSchema, Target

from pkg import training

target = Target(name="cached", schema=ImageSchema(num_classes=2, min_side=4, max_side=8),
                input_shape=(1, 4, 4), input_range=(0.0, 1.0), preprocess=lambda x: x,
                trained_model=training.trained_model)
"""

TRAINING_TESTS = """
from pkg.training import Model, serve, trained_model


def test_the_trained_model_is_in_eval_mode():
    assert not trained_model().training


def test_there_is_a_trained_model():  # the one test mutmut saw call fit() (cache)
    assert trained_model() is not None


def test_serve_returns_its_model():
    model = Model()
    assert serve(model) is model
"""


def test_training_path_mutants_run_before_the_model_is_trained(tmp_path):
    """A mutant in the training code must train with the mutant: the worker trains the
    target's model once before forking, and a child forked after that inherits the user's
    cached model (the mutated ``fit`` never runs: the mutant survived before the fix). And
    it must meet the tests of the trained model, not only the one test that mutmut's
    coverage run saw call ``fit`` (the others got the cached model). Mutants off the
    training path still fork from the trained parent with their own tests."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "training.py").write_text(textwrap.dedent(TRAINING))
    (tmp_path / "pkg" / "target.py").write_text(textwrap.dedent(TRAINING_TARGET))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_training.py").write_text(textwrap.dedent(TRAINING_TESTS))
    mutants = ml_mutants.generate((tmp_path / "pkg" / "training.py").read_text(),
                                  "pkg/training.py")
    in_fit = [m for m in mutants if m.function == "fit" and ".eval()" in m.description]
    in_serve = [m for m in mutants if m.function == "serve"]
    assert in_fit and in_serve, [m.description for m in mutants]
    tests = {"fit": ["tests/test_training.py::test_there_is_a_trained_model"],
             "serve": ["tests/test_training.py::test_serve_returns_its_model"]}
    coverage = {"tests_by_key": {"pkg.training.x_trained_model": [
        "tests/test_training.py::test_the_trained_model_is_in_eval_mode",
        "tests/test_training.py::test_there_is_a_trained_model"]}, "callers": {},
        "durations": {}}
    items = [ml_runner.WorkItem(id=m.id, module=m.module, function=m.function, path=m.path,
                                source=m.source, tests=tests[m.function], timeout=60)
             for m in [*in_fit, *in_serve]]
    spec = {"root": str(tmp_path), "sys_path": ["."], "max_children": 1, "warm_up": True,
            "items": [asdict(i) for i in items], "prepare": "pkg.target:target",
            "coverage": coverage, "pytest_args": [],
            "env": {"MUTANT_UNDER_TEST": "mlprop-ml-mutant"}}
    results = {r.id: r for r in ml_runner.run_worker(spec, tmp_path / "spec.json")}
    for mutant in in_fit:
        assert results[mutant.id].status == "killed", results[mutant.id]
        assert results[mutant.id].tests == 2  # its own test and the trained model's
    for mutant in in_serve:  # the test does not look at the mode: survives either way
        assert results[mutant.id].status == "survived", results[mutant.id]

