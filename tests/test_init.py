"""``mlprop init`` in a user's project: what it writes, what it keeps, and bad input."""

from __future__ import annotations

import contextlib
import io
import tomllib
from pathlib import Path

import pytest

from mlprop import cli
from mlprop.config import read_config

USER_PYPROJECT = '''# my project: keep this comment
[project]
name = "my-pipeline"   # trailing comment
version = "0.1"

[tool.ruff]
line-length = 90  # keep me
'''


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src" / "my_pipeline").mkdir(parents=True)
    (tmp_path / "src" / "my_pipeline" / "__init__.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text(USER_PYPROJECT)
    return tmp_path


def test_init_adds_sections_keeping_the_users_text(project: Path):
    code, out, _ = run(["init", "--dir", str(project)])
    assert code == 0
    text = (project / "pyproject.toml").read_text()
    assert text.startswith(USER_PYPROJECT)  # every byte of the user's file survives
    data = tomllib.loads(text)
    assert data["tool"]["mlprop"] == {"target": "my_pipeline.mlprop_target:target",
                                      "profile": "ci", "suite": True}
    assert data["tool"]["mutmut"]["source_paths"] == ["src/my_pipeline"]
    assert data["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == ["tests"]
    # a training cache filled by mutmut's clean run must not reach the mutants (issue 14)
    assert data["tool"]["mutmut"]["process_isolation"] == "forkserver"
    assert read_config(project).get("suite") is True  # what it wrote validates
    workflow = (project / ".github" / "workflows" / "mlprop.yml").read_text()
    for needle in ("pull_request", "schedule", "mlprop audit", "mlprop bench compare",
                   "path: mutants"):
        assert needle in workflow
    assert "wrote [tool.mlprop]" in out and "mlprop.yml" in out


def test_init_never_overwrites_without_force(project: Path):
    (project / "pyproject.toml").write_text(USER_PYPROJECT + '\n[tool.mlprop]\ntarget = "a:b"\n')
    workflow = project / ".github" / "workflows" / "mlprop.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("mine\n")
    code, out, _ = run(["init", "--dir", str(project)])
    assert code == 0
    data = tomllib.loads((project / "pyproject.toml").read_text())
    assert data["tool"]["mlprop"] == {"target": "a:b"}
    assert "mutmut" in data["tool"]  # the missing section is still added
    assert workflow.read_text() == "mine\n"
    assert "kept [tool.mlprop]" in out and "--force" in out
    code, out, _ = run(["init", "--dir", str(project), "--force", "--target", "x.y:t"])
    assert code == 0
    assert tomllib.loads((project / "pyproject.toml").read_text())["tool"]["mlprop"][
        "target"] == "x.y:t"
    assert workflow.read_text() != "mine\n"


def test_init_finds_a_single_top_level_package(tmp_path: Path):
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'other-name'\n")
    assert run(["init", "--dir", str(tmp_path)])[0] == 0
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["tool"]["mutmut"]["source_paths"] == ["pipe"]
    assert "pytest_add_cli_args_test_selection" not in data["tool"]["mutmut"]


@pytest.mark.parametrize(("setup", "message"), [
    ("no-pyproject", "no pyproject.toml in"),
    ("malformed", "not valid TOML"),
    ("missing-package", "--package: no package 'nope'"),
    ("two-packages", "several packages"),
    ("no-package", "no Python package found"),
    ("bad-target", "--target: expected 'module:attribute'"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, setup: str,
                                                            message: str):
    argv = ["init", "--dir", str(tmp_path)]
    for name in ("a", "b"):
        if setup == "two-packages" or (setup != "no-package" and name == "a"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text("")
    if setup != "no-pyproject":
        (tmp_path / "pyproject.toml").write_text(
            "[project\nname=" if setup == "malformed" else "[project]\nname = 'x'\n")
    if setup == "missing-package":
        argv += ["--package", "nope"]
    if setup == "bad-target":
        argv += ["--target", "no-colon"]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _, err = run(argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlprop init: error: ")
    assert message in lines[0]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_init_tells_how_to_have_the_training_code_checked(project: Path):
    code, out, _ = run(["init", "--dir", str(project)])
    assert code == 0
    assert "train(images, labels, *, seed, epochs)" in out
    assert "training_data()" in out and "save_model(model, path)" in out
