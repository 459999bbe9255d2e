"""``mlprop audit``: exit codes and reports with a faked audit; the driver's pieces.

Nothing here runs mutmut: the audit itself is faked, and the mutmut subprocess is replaced
by a tiny script that writes a ``.meta`` file the way mutmut does.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from mlprop import cli
from mlprop.audit import mutation
from mlprop.audit import report as rep
from mlprop.plugin import mutmut_import_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _away_from_the_repository(tmp_path, monkeypatch):
    """Every test here runs from its own temporary folder: an `mlprop audit` with the
    default --root would otherwise take the audit lock of the repository the tests run in,
    and under mlprop's own audit (which holds that lock, and whose ML mutants run the tests
    from the project's folder) wait for it until the mutant's timeout."""
    monkeypatch.chdir(tmp_path)


def fake_report(score: float | None, passed: bool) -> dict:
    overall = rep.tally(["killed"] * 9 + ["survived"]).as_dict()
    return {"mutmut": {"overall": overall, "modules": {"mlprop.digits.x": overall},
                       "survivors": [], "equivalent": [], "stale_equivalents": []},
            "timing": {"wall_seconds": 1.0, "mutmut_seconds": 1.0, "mutants_tested": 10,
                       "mutants_per_minute": 600.0, "ml_seconds": None},
            "score": score, "passed": passed,
            "verdict": "mlprop audit: passed" if passed else "mlprop audit: FAILED: low"}


@pytest.fixture
def fake_audit(monkeypatch):
    calls = []

    def install(result=None, error=None):
        def run(options):
            calls.append(options)
            if error is not None:
                raise error
            return result

        monkeypatch.setattr(mutation, "run_audit", run)
        return calls

    return install


def test_audit_passes_with_exit_0_and_writes_json_and_markdown(fake_audit, tmp_path, capsys):
    calls = fake_audit(fake_report(90.0, True))
    code = cli.main(["audit", "--fail-under", "85", "--json", str(tmp_path / "a.json"),
                     "--markdown", str(tmp_path / "a.md"), "--max-children", "3",
                     "--ml-mutants"])
    assert code == 0
    assert json.loads((tmp_path / "a.json").read_text())["score"] == 90.0
    assert (tmp_path / "a.md").read_text().startswith("# mlprop mutation audit")
    assert "mlprop.digits.x" in capsys.readouterr().out
    options = calls[0]
    assert (options.fail_under, options.max_children, options.ml_mutants) == (85.0, 3, True)
    assert options.equivalents is None  # the project's own list (mutation.equivalents_path)


def test_audit_under_the_threshold_exits_1(fake_audit, capsys):
    fake_audit(fake_report(80.0, False))
    assert cli.main(["audit", "--fail-under", "85"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_audit_that_cannot_run_exits_2_with_one_line(fake_audit, capsys):
    fake_audit(error=mutation.AuditError("mutmut is not installed"))
    assert cli.main(["audit"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mlprop audit: error: mutmut is not installed"]


@pytest.mark.parametrize("argv", [["audit", "--fail-under", "101"],
                                  ["audit", "--fail-under", "lots"],
                                  ["audit", "--max-children", "0"]])
def test_bad_audit_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_audit_report_paths_and_equivalents_are_checked_first(fake_audit, tmp_path, capsys):
    calls = fake_audit(fake_report(90.0, True))
    assert cli.main(["audit", "--json", str(tmp_path / "no" / "a.json")]) == 2
    assert cli.main(["audit", "--equivalents", str(tmp_path / "none.toml")]) == 2
    assert calls == []
    err = capsys.readouterr().err
    assert "--json: directory" in err and "--equivalents: no such file" in err


# --------------------------------------------------------------------------- configuration


def make_project(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "src" / "pkg" / "core").mkdir(parents=True)
    for name in ("__init__.py", "core/__init__.py", "core/a.py", "core/b.py", "other.py"):
        (tmp_path / "src" / "pkg" / name).write_text("def f():\n    return 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(f"""
        [tool.mutmut]
        source_paths = ["src/pkg"]
        only_mutate = ["src/pkg/core/*"]
        do_not_mutate = ["*/b.py"]
        pytest_add_cli_args = ["-p", "no:cacheprovider"]
        {extra}
        [tool.mlprop]
        target = "pkg:target"
    """))
    return tmp_path


def test_config_follows_mutmuts_only_and_do_not_mutate(tmp_path):
    config = mutation.load_config(make_project(tmp_path))
    assert config.mutated_files(tmp_path) == ["src/pkg/core/__init__.py", "src/pkg/core/a.py"]
    assert config.target == "pkg:target"
    assert config.pytest_add_cli_args == ("-p", "no:cacheprovider")


def test_missing_config_is_an_audit_error(tmp_path):
    with pytest.raises(mutation.AuditError, match=r"no pyproject\.toml"):
        mutation.load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.other]\n")
    with pytest.raises(mutation.AuditError, match=r"no \[tool.mutmut\]"):
        mutation.load_config(tmp_path)


def test_fingerprint_changes_with_tests_sources_and_config(tmp_path):
    root = make_project(tmp_path)
    config = mutation.load_config(root)
    first = mutation.fingerprint(root, config)
    assert mutation.fingerprint(root, config) == first
    (root / "tests" / "test_a.py").write_text("def test_a():\n    assert 1\n")
    second = mutation.fingerprint(root, config)
    (root / "src" / "pkg" / "other.py").write_text("X = 2\n")
    third = mutation.fingerprint(root, config)
    assert len({first, second, third}) == 3
    (root / "mutants").mkdir()
    (root / "mutants" / "junk.py").write_text("")
    assert mutation.fingerprint(root, config) == third  # mutants/ is output, not input


def test_fingerprint_follows_every_test_input_but_not_local_build_output(tmp_path):
    """Two working copies of one commit get one fingerprint (an editable install's
    *.egg-info or a hidden folder differs between them); a root conftest.py or a test folder
    that only mutmut's selection names changes the verdicts, so it changes the fingerprint."""
    root = make_project(tmp_path, extra='pytest_add_cli_args_test_selection = ["unit", "-q"]')
    (root / "unit").mkdir()
    (root / "unit" / "test_u.py").write_text("def test_u():\n    pass\n")
    config = mutation.load_config(root)
    first = mutation.fingerprint(root, config)
    (root / "src" / "pkg.egg-info").mkdir()
    (root / "src" / "pkg.egg-info" / "PKG-INFO").write_text("Name: pkg\n")
    (root / "tests" / ".hypothesis").mkdir()
    (root / "tests" / ".hypothesis" / "db").write_text("x")
    assert mutation.fingerprint(root, config) == first
    (root / "unit" / "test_u.py").write_text("def test_u():\n    assert 0\n")
    second = mutation.fingerprint(root, config)
    (root / "conftest.py").write_text("collect_ignore = []\n")
    assert len({first, second, mutation.fingerprint(root, config)}) == 3


def test_audit_environment_pins_the_cache_and_the_profile(tmp_path):
    env = mutation.audit_environment(tmp_path, {"MLPROP_PROFILE": "ci", "KEEP": "1"})
    assert env["MLPROP_CACHE_DIR"] == str(tmp_path / "mutants" / mutation.CACHE_DIR)
    assert env["MLPROP_PROFILE"] == "mutmut" and env["KEEP"] == "1"


def test_mutmut_keys_match_the_trampoline_names():
    assert mutation.mutmut_key("mlprop.digits.train", "train") == "mlprop.digits.train.x_train"
    assert mutation.mutmut_key("mlprop.digits.model", "DigitCNN.forward") == (
        "mlprop.digits.model.xǁDigitCNNǁforward")


FAKE_MUTMUT = """
import json, pathlib, sys, time
meta = pathlib.Path("mutants/src/pkg/core/a.py.meta")
meta.parent.mkdir(parents=True, exist_ok=True)
names = ["pkg.core.a.x_f__mutmut_%d" % i for i in (1, 2, 3)]
print("Generating mutants"); print("    done in 5ms (1 files mutated)")
for i in range(1, 4):
    sys.stdout.write("\\r\\u280b %d/3  \\U0001f389 %d \\U0001fae5 0" % (i, i)); sys.stdout.flush()
meta.write_text(json.dumps({"exit_code_by_key": dict(zip(names, [1, 0, 36])),
    "hash_by_function_name": {}, "type_check_error_by_key": {},
    "durations_by_key": dict.fromkeys(names, 0.1), "estimated_durations_by_key": {}}))
print("\\n2.00 mutations/second")
"""


def test_run_mutmut_reports_progress_counts_tested_mutants_then_skips_reruns(
        tmp_path, monkeypatch):
    root = make_project(tmp_path)
    config = mutation.load_config(root)
    monkeypatch.setattr(mutation, "mutmut_command",
                        lambda max_children: [sys.executable, "-c", FAKE_MUTMUT])
    messages: list[str] = []
    run = mutation.run_mutmut(root, config, max_children=2, progress=messages.append,
                              env=mutation.audit_environment(root))
    assert not run.skipped and run.tested == 3
    assert any(re.search(r"mutmut: 3/3 mutants tested", m) for m in messages)
    assert "mutmut: 2.00 mutations/second" in messages

    def no_second_run(max_children):
        raise AssertionError("mutmut must not run when nothing changed")

    monkeypatch.setattr(mutation, "mutmut_command", no_second_run)
    again = mutation.run_mutmut(root, config, max_children=2, progress=messages.append,
                                env=mutation.audit_environment(root))
    assert again.skipped and again.tested == 0
    assert "nothing changed" in messages[-1]


def test_a_failing_mutmut_run_is_an_audit_error_naming_the_failure(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    script = ("print('....F'); print('FAILED tests/test_a.py::test_a - boom'); "
              "print('failed to collect stats. runner returned 1'); raise SystemExit(1)")
    monkeypatch.setattr(mutation, "mutmut_command",
                        lambda max_children: [sys.executable, "-c", script])
    with pytest.raises(mutation.AuditError) as exc:
        mutation.run_mutmut(root, mutation.load_config(root), max_children=1,
                            progress=lambda m: None, env=mutation.audit_environment(root))
    message = str(exc.value)
    assert "exit code 1" in message and "FAILED tests/test_a.py::test_a - boom" in message


def test_build_report_gates_on_the_score_and_on_ml_survivors(tmp_path):
    outcomes = [rep.MutantOutcome(f"pkg.a.x_f__mutmut_{i}", "src/pkg/a.py", "pkg.a", status)
                for i, status in enumerate(["killed"] * 8 + ["timeout", "survived"], 1)]
    ml = [mutation.MLOutcome("pkg.a:f:dim:1", "dim", "src/pkg/a.py", 3, "f", "d", "killed"),
          mutation.MLOutcome("pkg.a:f:seed:1", "seed", "src/pkg/a.py", 4, "f", "s",
                             "equivalent", reason="r")]
    timing = {"wall_seconds": 1.0}
    passed = mutation.build_report(tmp_path, outcomes, [], (ml, [], True), timing, 85.0,
                                   rep.Equivalents())
    assert passed["passed"] and passed["score"] == 90.0
    assert passed["mutmut"]["survivors"][0]["name"] == "pkg.a.x_f__mutmut_10"
    assert passed["ml_mutants"]["by_operator"]["seed"]["kill_rate"] is None
    assert passed["ml_mutants"]["overall"]["kill_rate"] == 100.0
    failed = mutation.build_report(tmp_path, outcomes, [], None, timing, 95.0,
                                   rep.Equivalents())
    assert not failed["passed"] and "under 95%" in failed["verdict"]
    ml.append(mutation.MLOutcome("pkg.a:f:flag:1", "flag", "src/pkg/a.py", 5, "f", "x",
                                 "survived"))
    missed = mutation.build_report(tmp_path, outcomes, [], (ml, [], True), timing, None,
                                   rep.Equivalents())
    assert not missed["passed"] and "1 ML mutant(s)" in missed["verdict"]


# --------------------------------------------------------------------------- the repository


def test_mutmut_config_of_this_repository_is_consistent():
    """The deselected tests exist (a rename would silently widen the selection) and only
    the reference pipeline and its kit are mutated, both of them."""
    config = mutation.load_config(ROOT)
    files = config.mutated_files(ROOT)
    assert files and all(f.startswith(("src/mlprop/digits/", "src/mlprop/reference/"))
                         for f in files)
    assert any(f.startswith("src/mlprop/reference/") for f in files)
    import tomllib

    selection = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]
    for arg in selection:
        if arg.startswith("--deselect="):
            path, _, name = arg.removeprefix("--deselect=").partition("::")
            assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), arg
        elif arg.startswith("--ignore="):
            assert (ROOT / arg.removeprefix("--ignore=")).exists(), arg


def test_under_mutmut_the_package_must_come_from_mutants_src(tmp_path):
    mutants = tmp_path / "mutants"
    (mutants / "src" / "mlprop").mkdir(parents=True)
    inside = str(mutants / "src" / "mlprop" / "__init__.py")
    assert mutmut_import_problem(mutants, inside) is None
    problem = mutmut_import_problem(mutants, str(tmp_path / "site" / "mlprop" / "__init__.py"))
    assert problem and "shadows mutants/src" in problem
    assert mutmut_import_problem(tmp_path, "/anywhere/mlprop/__init__.py") is None


def test_the_ml_fingerprint_can_leave_the_mutated_files_out(tmp_path):
    root = make_project(tmp_path)
    config = mutation.load_config(root)
    mutated = config.mutated_files(root)
    before = mutation.fingerprint(root, config, exclude=mutated)
    (root / "src" / "pkg" / "core" / "a.py").write_text("def f():\n    return 2\n")
    assert mutation.fingerprint(root, config, exclude=mutated) == before
    (root / "tests" / "test_a.py").write_text("def test_a():\n    assert 2\n")
    assert mutation.fingerprint(root, config, exclude=mutated) != before


def test_import_guard_ignores_pytest_runs_started_elsewhere(tmp_path, monkeypatch):
    """The audit's guard applies in the project and its mutants/ only: a test of the project
    that runs pytest on a scratch project in a temporary directory is not the audit's run."""
    from mlprop.audit import guard

    monkeypatch.setenv(guard.PACKAGES_ENV, "mlprop")
    monkeypatch.setenv(guard.ROOTS_ENV, str(tmp_path / "project"))
    monkeypatch.chdir(tmp_path)
    assert guard._packages() == []
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert guard._packages() == ["mlprop"]
