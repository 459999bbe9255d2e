"""The audit and the benchmark comparison in a user's project (issue 14), without mutmut or
timing: the project's equivalent list, the import guard, the property suite in mutmut's test
selection, the would-catch hints, the shipped target suite's run and the comparison's
bad-input refusals. The real runs are in tests/test_end_to_end.py."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from mlprop import bench, cli
from mlprop.audit import guard, mutation
from mlprop.audit import report as rep
from mlprop.audit.ml_mutants import OPERATORS, properties_for
from tests.user_project import plant_slowdown, write_project

GIT_ID = ["-c", "user.name=mlprop-test", "-c", "user.email=test@example.invalid"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, "-C", str(repo), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def project(tmp_path: Path, mlprop: str = "", mutmut: str = "") -> Path:
    root = write_project(tmp_path / "proj")
    with (root / "pyproject.toml").open("a") as handle:
        handle.write(textwrap.dedent(f"""
            [tool.mlprop]
            target = "digitpipe.mlprop_target:target"
            {mlprop}

            [tool.mutmut]
            source_paths = ["src/digitpipe"]
            {mutmut}
            """))
    return root


# --------------------------------------------------------------------------- audit


def test_the_equivalent_list_is_the_projects_own(tmp_path):
    root = project(tmp_path)
    config = mutation.load_config(root)
    assert mutation.equivalents_path(root, config) == root / "equivalent_mutants.toml"
    assert mutation.equivalents_path(root, config, Path("x.toml")) == Path("x.toml")
    named = project(tmp_path / "b", mlprop='equivalents = "audit/eq.toml"')
    with pytest.raises(mutation.AuditError, match=r"equivalents: no such file"):
        mutation.equivalents_path(named, mutation.load_config(named))
    (named / "audit").mkdir()
    (named / "audit" / "eq.toml").write_text('[ml]\n"a:b:dim:1" = "same"\n')
    path = mutation.equivalents_path(named, mutation.load_config(named))
    assert rep.load_equivalents(path).ml == {"a:b:dim:1": "same"}


def test_suite_true_adds_the_linked_property_suite_to_mutmuts_selection(tmp_path):
    root = project(tmp_path, mlprop="suite = true",
                   mutmut='pytest_add_cli_args_test_selection = ["tests"]')
    config = mutation.load_config(root)
    assert config.suite and config.packages(root) == ["digitpipe"]
    assert mutation.suite_tests(root, config) == [mutation.SUITE_LINK]
    (root / "mutants").mkdir()
    suite = mutation.link_suite(root)
    link = root / "mutants" / mutation.SUITE_LINK
    assert link.resolve() == suite and (link / "test_preprocess.py").is_file()
    assert mutation.link_suite(root) == suite  # idempotent
    no_selection = project(tmp_path / "b", mlprop="suite = true")
    assert mutation.suite_tests(no_selection, mutation.load_config(no_selection)) == [
        mutation.SUITE_LINK, "tests"]
    off = project(tmp_path / "c")
    assert mutation.suite_tests(off, mutation.load_config(off)) == []
    # the property suite is part of what the verdicts depend on
    assert mutation.fingerprint(root, config) != mutation.fingerprint(
        root, mutation.load_config(off))


def test_the_environment_loads_the_guard_and_passes_extra_tests(tmp_path):
    env = mutation.audit_environment(tmp_path, {"PYTEST_PLUGINS": "mine"},
                                     packages=["digitpipe"], extra_tests=["x"])
    assert env["PYTEST_PLUGINS"] == "mine,mlprop.audit.guard"
    assert env[guard.PACKAGES_ENV] == "digitpipe"
    assert json.loads(env[mutation.EXTRA_TESTS_ENV]) == ["x"]
    assert "PYTEST_PLUGINS" not in mutation.audit_environment(tmp_path, {})


def test_the_guard_names_a_package_imported_from_outside(tmp_path):
    inside = types.ModuleType("pkg")
    inside.__file__ = str(tmp_path / "mutants" / "src" / "pkg" / "__init__.py")
    assert guard.import_problem(["pkg"], tmp_path / "mutants", {"pkg": inside}) is None
    outside = types.ModuleType("pkg")
    outside.__file__ = "/usr/lib/python3/site-packages/pkg/__init__.py"
    problem = guard.import_problem(["pkg"], tmp_path / "mutants", {"pkg": outside})
    assert problem and "'pkg'" in problem and "site-packages/pkg" in problem
    assert problem.count("\n") == 0
    assert guard.import_problem(["no_such_package_xyz"], tmp_path, {}) is None


def test_a_guard_stop_is_the_audits_one_line_error(tmp_path, monkeypatch):
    root = project(tmp_path)
    (root / "mutants").mkdir()
    script = ("import pathlib; pathlib.Path('mutants/mlprop-import-guard.txt')"
              ".write_text('mlprop audit: package digitpipe is imported from /x'); exit(1)")
    monkeypatch.setattr(mutation, "mutmut_command",
                        lambda max_children: [sys.executable, "-c", script])
    with pytest.raises(mutation.AuditError) as stop:
        mutation.run_mutmut(root, mutation.load_config(root), max_children=1,
                            progress=lambda m: None, env=mutation.audit_environment(root))
    assert str(stop.value) == "mlprop audit: package digitpipe is imported from /x"


def test_mutation_paths_matching_no_file_are_refused(tmp_path):
    root = project(tmp_path, mutmut='only_mutate = ["src/digitpipe/nothing*.py"]')
    with pytest.raises(mutation.AuditError, match=r"match no \.py file"):
        mutation.run_audit(mutation.AuditOptions(root=root))


def test_every_operator_names_catalogue_properties_but_no_grad():
    for operator in OPERATORS:
        found = properties_for(operator)
        assert bool(found) == (operator != "no-grad"), operator
        assert all(name.startswith("test_") for name in found)
    assert "test_predict_is_deterministic" in properties_for("mode-call")


def test_survivors_of_a_run_without_the_suite_say_which_property_would_catch_them(tmp_path):
    ml = [mutation.MLOutcome("p.a:f:mode-call:1", "mode-call", "src/p/a.py", 3, "f",
                             "drop model.eval()", "survived",
                             would_catch=properties_for("mode-call"))]
    report = mutation.build_report(tmp_path, [], [], (ml, [], True), {"wall_seconds": 1.0},
                                   None, rep.Equivalents())
    text = rep.format_text(report)
    assert "test_predict_is_deterministic" in text and "suite = true" in text
    assert "`test_predict_is_deterministic`" in rep.format_markdown(report)


# --------------------------------------------------------------------------- bench


def test_a_shipped_suite_run_measures_the_sides_worktree(tmp_path):
    side = tmp_path / "base"
    (side / "src").mkdir(parents=True)
    run = bench.BenchmarkRun(tmp_path / "head", side, benchmarks=None, target="p.t:target")
    command = run.command(tmp_path / "out.json")
    assert command[3:5] == ["--pyargs", "mlprop.bench.suite"]
    assert command[command.index("--mlprop-target") + 1] == "p.t:target"
    assert "-o" not in command and run.cwd == side
    env = run.environment()
    assert env["PYTHONPATH"].split(":") == [str(side / "src"), str(side)]
    assert "MLPROP_BENCH_EXPECT_SRC" not in env
    (tmp_path / "out.json").write_text(json.dumps({
        "benchmarks": [{"fullname": "t", "stats": {"median": 1.0, "data": [1.0]}}],
        "mlprop": {"sources": {"p.t": "/elsewhere/p/t.py"}}}))
    with pytest.raises(bench.CompareError, match="another copy shadows it"):
        run.results(tmp_path / "out.json")


def user_repo(tmp_path: Path) -> tuple[Path, str, str]:
    repo = write_project(tmp_path / "repo")
    with (repo / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.mlprop]\ntarget = "digitpipe.mlprop_target:target"\n')
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    plant_slowdown(repo)
    git(repo, "commit", "-qam", "slower")
    return repo, base, git(repo, "rev-parse", "HEAD")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_compare_refuses_bad_input_in_one_line(tmp_path):
    repo, base, head = user_repo(tmp_path)
    (repo / "src" / "digitpipe" / "scoring.py").write_text("# edited\n")
    for argv, message in [
        ([base, "nope"], "unknown revision 'nope'"),
        ([base, head], "uncommitted changes"),
        ([base, head, "--allow-dirty", "--target", "digitpipe.gone:target"],
         "does not load at BASE"),
        ([base, head, "--allow-dirty", "--target", "nocolon"], "module:attribute"),
    ]:
        code, _, err = run_cli(["bench", "compare", *argv, "--repo", str(repo)])
        assert code == 2 and message in err, (argv, err)
        assert err.strip().count("\n") == 0, err
    assert git(repo, "worktree", "list").count("\n") == 0  # no worktree left behind
    assert (repo / "src" / "digitpipe" / "scoring.py").read_text() == "# edited\n"


def test_bench_run_refuses_cuda_without_cuda_and_a_missing_json_folder(tmp_path):
    import torch

    if not torch.cuda.is_available():
        code, _, err = run_cli(["bench", "run", "--device", "cuda"])
        assert code == 2 and "CUDA is not available" in err
    code, _, err = run_cli(["bench", "run", "--device", "tpu"])
    assert code == 2 and "expected cpu or cuda" in err
    code, _, err = run_cli(["bench", "run", "--json", str(tmp_path / "no" / "x.json")])
    assert code == 2 and "does not exist" in err


@pytest.mark.slow
def test_bench_run_writes_pytest_benchmark_json_for_the_projects_target(tmp_path):
    root = project(tmp_path)
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "mlprop.cli", "bench", "run", "--json",
                           str(out), "--", "--benchmark-max-time=0.01", "-k", "64"],
                          cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    data = json.loads(out.read_text())
    names = {b["name"] for b in data["benchmarks"]}
    assert {"test_bench_predict[64]", "test_bench_preprocess[64]",
            "test_bench_model_forward[64]"} <= names
    info = next(b for b in data["benchmarks"] if b["name"] == "test_bench_predict[64]")[
        "extra_info"]
    assert info["batch_size"] == 64 and info["images_per_second"] > 0
    assert info["latency_p50_us"] <= info["latency_p90_us"] <= info["latency_p99_us"]
    assert data["mlprop"]["target"] == "digitpipe.mlprop_target:target"
    assert data["mlprop"]["sources"]["digitpipe.pipeline"].startswith(str(root))
