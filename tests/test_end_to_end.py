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

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.user_project import (
    drop_training_line,
    plant_fault,
    plant_slowdown,
    plant_weak_test,
    restore_training,
    write_project,
)

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


def git(repo: Path, *args: str) -> str:
    done = run(["git", "-c", "user.name=user", "-c", "user.email=user@example.invalid",
                *args], repo)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _scoring_audit_project(venv: Path, root: Path) -> Path:
    """The user project after `mlprop init`, its mutation narrowed to the two-function
    scoring module, with the project's own reviewed equivalent."""
    project = write_project(root)
    assert run([str(venv / "bin" / "mlprop"), "init"], project).returncode == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'source_paths = ["src/digitpipe"]',
        'source_paths = ["src/digitpipe"]\nonly_mutate = ["src/digitpipe/scoring.py"]'))
    (project / "equivalent_mutants.toml").write_text(
        '[mutmut]\n"digitpipe.scoring.x_margin__mutmut_5" = "np.sort\'s default axis is the '
        'last one, axis 1 of a 2-d array"\n')
    return project


def test_user_project_mutation_audit_scores_and_gates(venv: Path, tmp_path_factory):
    """mlprop audit in the user's project (issue 14): the user's [tool.mutmut] (from mlprop
    init, narrowed to a two-function module), the project's own equivalent list, mlprop's
    property suite in the mutant runs (suite = true); a weak test fails the gate."""
    project = _scoring_audit_project(venv, tmp_path_factory.mktemp("audit-project"))
    mlprop = str(venv / "bin" / "mlprop")
    audit = [mlprop, "audit", "--fail-under", "100", "--ml-mutants", "--max-children", "2",
             "--json", "audit.json"]
    first = run(audit, project, timeout=240)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    report = json.loads((project / "audit.json").read_text())
    assert report["score"] == 100.0 and report["mutmut"]["overall"]["equivalent"] == 1
    assert report["mutmut"]["stale_equivalents"] == []  # not mlprop's own list
    assert report["ml_mutants"]["overall"]["kill_rate"] == 100.0
    assert report["timing"]["suite_in_mutant_runs"] is True
    assert "mlprop.digits" not in first.stdout + first.stderr

    plant_weak_test(project)
    second = run(audit, project, timeout=240)
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]
    assert "under 100%" in second.stderr
    assert "digitpipe.scoring.x_top_class__mutmut_" in second.stdout


def _verdicts(report: dict) -> dict[str, str]:
    """Mutant -> status, mutmut's and the ML mutants', from an audit JSON."""
    rows = {row["name"]: row["status"] for row in report["mutmut"]["survivors"]}
    rows.update({row["name"]: "equivalent" for row in report["mutmut"]["equivalent"]})
    rows.update({m["id"]: m["status"] for m in report["ml_mutants"]["mutants"]})
    return rows


def test_three_shards_merged_give_the_unsharded_audit(venv: Path, tmp_path_factory):
    """Issue 26, from the wheel in the user's project: 3 shards run in any order on three
    working copies of the same tree, balanced by the last audit's seconds, merge into the
    unsharded run's verdicts, score and gate; a partial merge never passes; a shard of
    another tree, a damaged file and an overlap are refused with exit 2 naming the file."""
    import shutil

    project = _scoring_audit_project(venv, tmp_path_factory.mktemp("shard-project"))
    mlprop = str(venv / "bin" / "mlprop")
    copies = tmp_path_factory.mktemp("working-copies")
    for name in ("one", "two", "three", "edited"):
        shutil.copytree(project, copies / name)
    edited = copies / "edited" / "src" / "digitpipe" / "scoring.py"
    edited.write_text(edited.read_text() + "\n# an edit on another commit\n")
    options = ["--ml-mutants", "--no-suite", "--max-children", "2"]
    whole = run([mlprop, "audit", *options, "--fail-under", "100", "--json", "audit.json"],
                project, timeout=240)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    unsharded = json.loads((project / "audit.json").read_text())
    timings = str(project / "audit.json")

    shard_files = {}
    for index, copy in ((3, "three"), (1, "one"), (2, "two")):
        shard_files[index] = copies / f"shard-{index}.json"
        done = run([mlprop, "audit", *options, "--shard", f"{index}/3", "--timings", timings,
                    "--shard-output", str(shard_files[index])], copies / copy, timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"shard {index}/3" in done.stderr
    parts = [set(json.loads(shard_files[k].read_text())["units"]) for k in (1, 2, 3)]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])

    merge = [mlprop, "audit", "merge", "--fail-under", "100", "--json", "merged.json"]
    merged_run = run([*merge, *(str(shard_files[k]) for k in (2, 3, 1))], copies)
    assert merged_run.returncode == 0, merged_run.stdout[-3000:] + merged_run.stderr
    merged = json.loads((copies / "merged.json").read_text())
    assert _verdicts(merged) == _verdicts(unsharded)
    assert merged["score"] == unsharded["score"] and merged["passed"] is True
    assert merged["mutmut"]["overall"] == unsharded["mutmut"]["overall"]
    assert merged["ml_mutants"]["overall"] == unsharded["ml_mutants"]["overall"]
    assert len(unsharded["unit_seconds"]) == len(set().union(*parts))

    partial = run([*merge, str(shard_files[1]), str(shard_files[3])], copies)
    assert partial.returncode == 1 and "missing 2/3" in partial.stderr, partial.stderr

    foreign = copies / "foreign-1.json"
    done = run([mlprop, "audit", *options, "--shard", "1/3", "--timings", timings,
                "--shard-output", str(foreign)], copies / "edited", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    refused = run([*merge, str(foreign), str(shard_files[2]), str(shard_files[3])], copies)
    assert refused.returncode == 2 and "field 'fingerprint'" in refused.stderr, refused.stderr
    damaged = copies / "damaged.json"
    damaged.write_text(shard_files[2].read_text()[:-200])
    refused = run([*merge, str(shard_files[1]), str(damaged), str(shard_files[3])], copies)
    assert refused.returncode == 2 and "damaged.json" in refused.stderr, refused.stderr
    refused = run([*merge, str(shard_files[1]), str(shard_files[1])], copies)
    assert refused.returncode == 2 and "twice" in refused.stderr, refused.stderr
    refused = run([mlprop, "audit", "--shard", "0/0"], copies / "one")
    assert refused.returncode == 2 and "--shard" in refused.stderr


def test_user_project_bench_compare_flags_a_planted_slowdown(venv: Path, tmp_path_factory):
    """mlprop bench compare in the user's repository: the shipped target benchmarks on two
    commits (the user's target imported from each); A == A passes, a 30 % slower predict
    is flagged. Low rounds: the figures with the default rounds are in the issue's note."""
    project = write_project(tmp_path_factory.mktemp("bench-project"))
    mlprop = str(venv / "bin" / "mlprop")
    assert run([mlprop, "init"], project).returncode == 0
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "A")
    plant_slowdown(project, 0.3)
    git(project, "commit", "-qam", "B: predict 30% slower")
    fast = ["-k", "predict", "--rounds", "3", "--timing-rounds", "20"]
    same = run([mlprop, "bench", "compare", "HEAD~1", "HEAD~1", *fast, "--json", "same.json"],
               project, timeout=300)
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-3000:]
    for _attempt in range(2):  # a shared CI machine: one retry if the noise hid it
        slower = run([mlprop, "bench", "compare", "HEAD~1", "HEAD", *fast, "--json",
                      "slow.json"], project, timeout=300)
        if slower.returncode == 1:
            break
    assert slower.returncode == 1, slower.stdout[-3000:] + slower.stderr[-3000:]
    (flagged,) = json.loads((project / "slow.json").read_text())["comparisons"]
    assert flagged["name"].endswith("test_bench_predict[64]") and flagged["ratio"] > 1.1
    assert run(["git", "worktree", "list"], project).stdout.count("\n") == 1


def test_user_projects_training_code_is_checked_from_the_wheel(venv: Path, tmp_path_factory):
    """The trained project's own fit, training_data and checksummed checkpoints (issue 25):
    the training component passes on them from the installed wheel, and dropping one line of
    the loop fails exactly the property that names that bug."""
    project = write_project(tmp_path_factory.mktemp("trained-project"), trained=True)
    mlprop = str(venv / "bin" / "mlprop")
    init = run([mlprop, "init", "--target", "digitpipe.trained_target:target"], project)
    assert init.returncode == 0, init.stderr
    training = ["--", "--mlprop-components", "training", "-p", "no:cacheprovider"]
    clean = run([mlprop, "check", *training], project)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr
    assert "10 passed" in clean.stdout, clean.stdout[-3000:]
    for line, prop, message in [
        ("optimizer.zero_grad()", "test_train_resets_gradients_between_optimizer_steps",
         "train does not reset the gradients between optimizer steps"),
        ("model.train()", "test_train_runs_the_forwards_it_trains_on_in_training_mode",
         "train trains on forward passes made in eval mode"),
        ("torch.manual_seed(seed)", "test_train_same_seed_gives_identical_weights",
         "gives different weights in two runs"),
    ]:
        text = drop_training_line(project, line)
        try:
            broken = run([mlprop, "check", *training], project)
        finally:
            restore_training(project, text)
        assert broken.returncode == 1, (line, broken.stdout[-3000:])
        failed = {row.split("::")[-1].split()[0] for row in broken.stdout.splitlines()
                  if row.startswith("FAILED")}
        assert failed == {prop}, (line, failed)
        assert message in broken.stdout, (line, broken.stdout[-3000:])

