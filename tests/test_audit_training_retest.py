"""mutmut's survivors on the training path are re-tested against the trained model's tests
(mlprop.audit.retest), with a real mutmut run on a tiny project whose model is cached in
memory: mutmut's coverage run sees only the first test call ``fit()`` (the others get the
cached model), so without the re-test every mutant of ``fit`` survives (mutmut score 25 %
on this project before the re-test existed)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mutmut")

PYPROJECT = """
[project]
name = "cachedfit"
version = "0.1.0"

[tool.pytest.ini_options]
pythonpath = ["."]

[tool.mlprop]
target = "pkg.target:target"

[tool.mutmut]
source_paths = ["pkg"]
only_mutate = ["pkg/training.py"]
pytest_add_cli_args_test_selection = ["tests"]
pytest_add_cli_args = ["-p", "no:cacheprovider"]
process_isolation = "forkserver"
"""

TRAINING = """
import functools


class Model:
    def __init__(self):
        self.weight = 0.0
        self.training = True


def fit(steps=3):
    model = Model()
    for _ in range(steps):
        model.weight += 2.0
    model.training = False
    return model


@functools.cache
def _fitted():
    return fit()


def trained_model():
    return _fitted()
"""

TARGET = """
from mlprop import ImageSchema, Target

from pkg import training

target = Target(name="cached-fit", schema=ImageSchema(num_classes=2, min_side=4, max_side=8),
                input_shape=(1, 4, 4), input_range=(0.0, 1.0), preprocess=lambda x: x,
                trained_model=training.trained_model)
"""

TESTS = """
from pkg.training import trained_model


def test_a_model_is_trained():  # runs first: trains and fills the cache
    assert trained_model() is not None


def test_the_weight_is_six():
    assert trained_model().weight == 6.0


def test_the_model_is_in_eval_mode():
    assert trained_model().training is False
"""


def write(root: Path) -> Path:
    files = {"pyproject.toml": PYPROJECT, "pkg/__init__.py": "", "pkg/training.py": TRAINING,
             "pkg/target.py": TARGET, "tests/test_training.py": TESTS}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def audit(root: Path) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", "mlprop.cli", "audit", "--json", "a.json"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((root / "a.json").read_text()), done.stderr


def survivors(report: dict) -> set[str]:
    return {s["name"].rpartition(".")[2] for s in report["mutmut"]["survivors"]}


def test_training_path_survivors_meet_the_trained_models_tests(tmp_path):
    root = write(tmp_path / "proj")
    first, err = audit(root)
    retest = first["timing"]["training_path_retest"]
    assert retest["on_training_path"] == retest["survivors"] == 9, err[-3000:]
    assert retest["killed"] == 7
    # left: the two mutants of `self.training = True` (fit sets it to False anyway)
    assert survivors(first) == {"xǁModelǁ__init____mutmut_3", "xǁModelǁ__init____mutmut_4"}
    assert first["score"] == 83.33
    meta = json.loads((root / "mutants" / "pkg" / "training.py.meta").read_text())
    assert sum(code == 1 for code in meta["exit_code_by_key"].values()) == 10  # 3 + 7

    again, err = audit(root)  # nothing changed: reused, not re-run
    assert again["timing"]["training_path_retest"]["reused"] is True
    assert "handed to the re-test" not in err
    assert again["score"] == 83.33

    # a weakened test: the kills it made are handed back to mutmut and judged again
    tests = root / "tests" / "test_training.py"
    tests.write_text(tests.read_text().replace("weight == 6.0", "weight is not None"))
    weak, err = audit(root)
    assert "earlier re-test kill(s) handed back to mutmut" in err
    # what changes the weight survives now; what changes the mode is still caught
    assert survivors(weak) - survivors(first) == {
        "x_fit__mutmut_1", "x_fit__mutmut_4", "x_fit__mutmut_5", "x_fit__mutmut_6",
        "xǁModelǁ__init____mutmut_2"}
    assert weak["score"] == 41.67
