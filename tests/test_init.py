"""``mlprop init`` in a user's project: what it writes, what it keeps, and bad input."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mlprop import cli
from mlprop.config import read_config
from mlprop.project_init import code_lines, estimate_shards, plan_init, workflow

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
                                      "profile": "ci", "suite": True, "audit_shards": 1}
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


# --------------------------------------------------------------------------- sharded audit

MODULE = '''"""A module docstring,
over two lines."""
import math  # a comment after code counts


def area(r):
    """A function docstring."""
    # a comment line does not
    return math.pi * r * r
'''  # 3 code lines: the import, the def, the return


def write_package(root: Path, modules: int) -> None:
    package = root / "src" / "my_pipeline"
    for k in range(modules):
        (package / f"m{k}.py").write_text(MODULE)


def test_code_lines_skip_blank_lines_comments_and_docstrings(project: Path):
    write_package(project, 2)
    (project / "src" / "my_pipeline" / "sub").mkdir()
    (project / "src" / "my_pipeline" / "sub" / "deep.py").write_text("x = 1\r\ny = 2\r\n")
    (project / "src" / "my_pipeline" / "broken.py").write_text('"""not closed\nz = (\n')
    # 2 * 3, 2 in the subpackage, 2 in the file ast cannot parse (counted line by line)
    assert code_lines(project / "src" / "my_pipeline") == 10


@pytest.mark.parametrize(("lines", "shards"), [(0, 1), (1, 1), (300, 1), (301, 2), (600, 2),
                                               (1021, 4), (2400, 8), (10**6, 8)])
def test_estimate_is_two_mutants_per_line_and_600_per_shard_clamped_to_8(lines: int,
                                                                         shards: int):
    assert estimate_shards(lines) == shards


def yaml_workflow(text: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(text)
    assert isinstance(data, dict), text
    return data


def shell_words(command: str, cwd: Path) -> list[str]:
    """The words ``command`` runs as shard 2 under GitHub's ``bash -e``: the expression
    expanded as GitHub does, then the shell's substitutions (``mlprop`` only echoes)."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    command = command.replace("${{ matrix.shard }}", "2")
    assert command.startswith("mlprop ")
    result = subprocess.run(["bash", "-e", "-c", "printf '%s\\n' " + command], cwd=cwd,
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def steps(job: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if key in step]


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_workflow_runs_the_audit_as_a_matrix_of_shards_and_merges_them(shards: int,
                                                                       tmp_path: Path):
    data = yaml_workflow(workflow("src/my_pipeline", shards))
    jobs = data["jobs"]
    assert set(jobs) == {"properties", "audit-shard", "audit", "bench"}
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(on)

    shard = jobs["audit-shard"]
    assert shard["strategy"] == {"fail-fast": False,
                                 "matrix": {"shard": list(range(1, shards + 1))}}
    assert "schedule" in shard["if"] and "workflow_dispatch" in shard["if"]
    (audit,) = [s["run"] for s in steps(shard, "run") if s["run"].startswith("mlprop audit")]
    expected = ["mlprop", "audit", "--shard", f"2/{shards}", "--ml-mutants", "--shard-output",
                "shard-2.json"]
    assert shell_words(audit, tmp_path) == expected  # no timings yet: no --timings
    (tmp_path / "audit-timings.json").write_text("{}")
    assert shell_words(audit, tmp_path) == [*expected[:5], "--timings", "audit-timings.json",
                                            *expected[5:]]
    caches = {s["uses"]: s["with"] for s in steps(shard, "uses") if "cache" in s["uses"]}
    mutants = caches["actions/cache@v4"]
    assert mutants["path"] == "mutants"
    assert "${{ matrix.shard }}" in mutants["key"] and "${{ github.sha }}" in mutants["key"]
    assert mutants["key"].startswith(mutants["restore-keys"])
    assert "${{ matrix.shard }}" in mutants["restore-keys"]
    timings = caches["actions/cache/restore@v4"]
    assert timings["path"] == "audit-timings.json"
    assert timings["restore-keys"] == "audit-timings-"
    (upload,) = [s["with"] for s in steps(shard, "uses") if "upload-artifact" in s["uses"]]
    assert upload["path"] == "shard-${{ matrix.shard }}.json"
    assert upload["name"].startswith("audit-shard-")

    merge = jobs["audit"]
    assert merge["needs"] == "audit-shard"
    assert merge["if"].startswith("always() && (") and "schedule" in merge["if"]
    (download,) = [s["with"] for s in steps(merge, "uses") if "download-artifact" in s["uses"]]
    assert download == {"pattern": "audit-shard-*", "merge-multiple": True}
    runs = [s["run"] for s in steps(merge, "run")]
    assert ("mlprop audit merge shard-*.json --fail-under 80 --json audit.json "
            "--markdown audit.md") in runs
    assert any("audit.md" in r and "$GITHUB_STEP_SUMMARY" in r for r in runs)
    assert any(r == "cp audit.json audit-timings.json" for r in runs)
    (save,) = [s["with"] for s in steps(merge, "uses") if "cache/save" in s["uses"]]
    assert save["path"] == timings["path"]  # a cache restores only under its saved path
    assert save["key"].startswith(timings["restore-keys"]) and "github.run_id" in save["key"]
    (report,) = [s["with"] for s in steps(merge, "uses") if "upload-artifact" in s["uses"]]
    assert report["path"].split() == ["audit.json", "audit.md"]
    # the other jobs are as they were
    assert steps(jobs["properties"], "run")[-1]["run"] == "pytest"
    assert "mlprop bench compare" in steps(jobs["bench"], "run")[-1]["run"]


@pytest.mark.parametrize("shards", [0, -1, 257, True, "2"])
def test_workflow_refuses_a_shard_count_github_cannot_run(shards: Any):
    with pytest.raises(ValueError, match="audit_shards: expected an integer in"):
        workflow("src/my_pipeline", shards)


def test_init_sizes_the_matrix_from_the_package_and_writes_audit_shards(project: Path):
    write_package(project, 250)  # 750 code lines, about 1500 mutants: 3 shards of 600
    code, out, _ = run(["init", "--dir", str(project)])
    assert code == 0
    assert read_config(project).get("audit_shards") == 3
    data = yaml_workflow((project / ".github" / "workflows" / "mlprop.yml").read_text())
    assert data["jobs"]["audit-shard"]["strategy"]["matrix"]["shard"] == [1, 2, 3]
    assert "in 3 shards, estimated from 750 code lines" in out


@pytest.mark.parametrize("force", [False, True])
def test_init_respects_an_existing_audit_shards(project: Path, force: bool):
    write_package(project, 250)  # the estimate would be 3
    (project / "pyproject.toml").write_text(USER_PYPROJECT + "\n[tool.mlprop]\naudit_shards = 5\n")
    plan = plan_init(project, force=force)
    assert plan.audit_shards == 5
    assert "matrix: {shard: [1, 2, 3, 4, 5]}" in (plan.workflow_text or "")
    assert "/5 --ml-mutants" in (plan.workflow_text or "")
    if force:  # the replaced section keeps the number the workflow was written for
        assert tomllib.loads(plan.pyproject_text or "")["tool"]["mlprop"]["audit_shards"] == 5


@pytest.mark.parametrize(("value", "message"), [
    ("0", "audit_shards: expected an integer >= 1"),
    ("'4'", "audit_shards: expected an integer ("),
    ("300", "audit_shards: expected at most 256"),
])
def test_init_refuses_a_bad_audit_shards_it_would_keep(project: Path, value: str, message: str):
    (project / "pyproject.toml").write_text(f"{USER_PYPROJECT}\n[tool.mlprop]\n"
                                            f"audit_shards = {value}\n")
    before = (project / "pyproject.toml").read_bytes()
    code, _, err = run(["init", "--dir", str(project)])
    assert code == 2 and message in err and "--force" in err
    assert (project / "pyproject.toml").read_bytes() == before
    assert not (project / ".github").exists()
    code, _, _ = run(["init", "--dir", str(project), "--force"])  # --force replaces it
    assert code == 0 and read_config(project).get("audit_shards") == 1
