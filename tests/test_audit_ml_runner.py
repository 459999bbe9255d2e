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
