"""mlprop as a user gets it: the wheel, installed in a new virtual environment outside this
checkout, used in a small project of the user's own (tests/user_project.py).

Offline: the new environment gets its dependencies by a path entry to this environment's
site-packages (plain path, so the editable install of mlprop that lives there is not
activated), and mlprop itself only from the wheel (``pip install --no-deps --no-index``).
Checks: the wheel's top-level names; ``mlprop init``; plain ``pytest`` running the user's
tests and mlprop's properties; ``mlprop check``; ``pytest --pyargs mlprop.properties``; and
the same runs failing, naming the property, once a fault is planted in the user's code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.user_project import plant_fault, write_project

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def clean_environment() -> dict[str, str]:
    """The user's shell: no PYTHONPATH or mlprop/Hypothesis/pytest settings of this run."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MLPROP_", "PYTEST_", "HYPOTHESIS_"))
           and name not in ("PYTHONPATH", "MUTANT_UNDER_TEST", "VIRTUAL_ENV")}
    env["CI"] = "true"
    return env


def run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=clean_environment(), capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                "--no-build-isolation", "--wheel-dir", str(out), str(REPO)], REPO)
    assert done.returncode == 0, done.stderr
    (found,) = out.glob("mlprop-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user-env") / "venv"
    done = run([sys.executable, "-m", "venv", "--without-pip", str(root)], root.parent)
    assert done.returncode == 0, done.stderr
    python = root / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                        "['purelib'])"], root.parent).stdout.strip())
    # dependencies from this environment, as a plain path (its .pth files stay inactive)
    (purelib / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                "--no-deps", "--no-index", str(wheel)], root.parent)
    assert done.returncode == 0, done.stderr
    where = run([str(python), "-c", "import mlprop, mlprop.properties, mlprop.strategies; "
                 "print(mlprop.__file__)"], root.parent)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(purelib), where.stdout
    return root


@pytest.fixture(scope="module")
def project(venv: Path, tmp_path_factory) -> Path:
    return write_project(tmp_path_factory.mktemp("digitpipe-project"))


def test_wheel_installs_only_the_mlprop_namespace(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"mlprop", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert "mlprop/properties/test_preprocess.py" in names
    assert "mlprop/strategies/__init__.py" in names
    assert not any(name.startswith(("strategies/", "properties/")) for name in names)


def test_user_project_end_to_end(venv: Path, project: Path):
    bin_dir = venv / "bin"
    init = run([str(bin_dir / "mlprop"), "init"], project)
    assert init.returncode == 0, init.stderr
    assert "wrote [tool.mlprop]" in init.stdout
    assert (project / ".github" / "workflows" / "mlprop.yml").is_file()

    plain = run([str(bin_dir / "python"), "-m", "pytest", "-p", "no:cacheprovider"], project)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr
    assert "tests/test_pipeline.py ." in plain.stdout  # the user's own test ran
    assert "test_preprocess.py ........." in plain.stdout  # and mlprop's properties
    assert ("mlprop target: digitpipe.mlprop_target:target (from [tool.mlprop] in "
            f"{project / 'pyproject.toml'}); mlprop profile: mlprop-ci") in plain.stdout
    assert "mlprop: not checked" in plain.stdout and "Target.trained_model" in plain.stdout

    check = run([str(bin_dir / "mlprop"), "check", "--", "--mlprop-components",
                 "preprocess,predict"], project)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    assert "all properties hold" in check.stderr

    pyargs = run([str(bin_dir / "python"), "-m", "pytest", "-p", "no:cacheprovider",
                  "--pyargs", "mlprop.properties", "--mlprop-components", "preprocess"],
                 project)
    assert pyargs.returncode == 0, pyargs.stdout[-3000:] + pyargs.stderr
    assert " passed" in pyargs.stdout and "test_pipeline" not in pyargs.stdout

    plant_fault(project)
    broken = run([str(bin_dir / "python"), "-m", "pytest", "-p", "no:cacheprovider",
                  "--mlprop-components", "preprocess"], project)
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert "FAILED" in broken.stdout and "test_preprocess_is_batch_independent" in broken.stdout
    assert "preprocess is batch-dependent" in broken.stdout
    check = run([str(bin_dir / "mlprop"), "check", "--", "--mlprop-components", "preprocess",
                 "-x"], project)
    assert check.returncode == 1
    assert "some properties failed" in check.stderr
