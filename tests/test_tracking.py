"""--mlflow on check, audit, bench compare, drift and fairness, and the audit/bench reports.

Runs are logged to a real local MLflow store (sqlite in a temporary directory, set through
``MLFLOW_TRACKING_URI``) and read back with ``MlflowClient``; the suite, mutmut and the
benchmarks themselves are replaced by recorded results, so each test takes about a second.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from mlprop.bench.compare import ComparisonReport
from mlprop.bench.stats import BenchmarkComparison
from mlprop.cli import audit as audit_cli
from mlprop.cli import bench as bench_cli
from mlprop.cli import main
from mlprop.cli.check import log_check_run
from mlprop.report import runs

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return "sqlite:///" + str(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


@pytest.fixture(autouse=True)
def _tracking(store, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("MLPROP_TARGET", raising=False)
    monkeypatch.chdir(tmp_path)


def _last_run(command: str):
    client = MlflowClient()
    runs_found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`mlprop.command` = '{command}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    assert runs_found, f"no MLflow run for {command}"
    run = runs_found[0]
    return run, sorted(a.path for a in client.list_artifacts(run.info.run_id))


BASE_PARAMS = {"target", "mlprop_version", "torch_version", "hypothesis_version",
               "python_version", "git_commit"}


def test_check_results_become_an_mlflow_run_with_the_report_as_artifacts(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    results = {"target": {"spec": "mlprop.digits:target", "name": "digits"},
               "profile": "mlprop-ci", "counts": {"passed": 40, "failed": 2, "error": 0,
                                                  "skipped": 1, "xfailed": 0, "xpassed": 0},
               "total": 43, "examples": 900, "seconds": 61.5,
               "components": {"preprocess": [{"status": "passed"}, {"status": "failed"}]}}
    (report / "results.json").write_text(json.dumps(results))
    (report / "report.html").write_text("<html></html>")
    run_id = log_check_run(report)
    run, artifacts = _last_run("check")
    assert run.info.run_id == run_id
    assert BASE_PARAMS | {"profile", "target_name"} <= set(run.data.params)
    assert run.data.params["target"] == "mlprop.digits:target"
    assert run.data.metrics["properties_failed"] == 2.0
    assert run.data.metrics["properties_passed"] == 40.0
    assert run.data.metrics["preprocess.failed"] == 1.0
    assert artifacts == ["report.html", "results.json"]
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "mlprop.digits:target"


AUDIT = {"format": 1, "score": 97.5, "passed": True, "fail_under": 85.0,
         "verdict": "mlprop audit: passed (mutmut score 97.5%, gate 85%)",
         "mutmut": {"overall": {"total": 40, "killed": 39, "survived": 1, "score": 97.5},
                    "modules": {"mlprop.digits.train": {"total": 40, "killed": 39,
                                                        "timeout": 0, "survived": 1,
                                                        "no_tests": 0, "equivalent": 0,
                                                        "score": 97.5}},
                    "survivors": [{"name": "mlprop.digits.train.x_train__mutmut_7",
                                   "path": "src/mlprop/digits/train.py",
                                   "status": "survived", "diff": "-    a\n+    b"}],
                    "equivalent": [], "stale_equivalents": []},
         "ml_mutants": {"overall": {"total": 4, "killed": 3, "timeout": 0, "survived": 1,
                                    "equivalent": 0, "other": 0, "kill_rate": 75.0},
                        "by_operator": {"seed": {"total": 4, "killed": 3, "timeout": 0,
                                                 "survived": 1, "equivalent": 0, "other": 0,
                                                 "kill_rate": 75.0}},
                        "mutants": [], "stale_equivalents": []},
         "timing": {}}


def _audit_args(tmp_path: Path, **overrides) -> argparse.Namespace:
    values = {"fail_under": 85.0, "json": None, "markdown": None, "max_children": None,
              "ml_mutants": True, "equivalents": None, "root": tmp_path, "report": None,
              "history": [], "force": False, "mlflow": None}
    values.update(overrides)
    return argparse.Namespace(**values)


def test_audit_report_and_mlflow_run(tmp_path):
    stats = tmp_path / "mutants" / "mutmut-stats.json"
    stats.parent.mkdir()
    stats.write_text(json.dumps({"tests_by_mangled_function_name": {
        "mlprop.digits.train.x_train": ["tests/test_digits_train.py::test_loss_falls"]},
        "duration_by_test": {}}))
    old = tmp_path / "audit-1.json"
    old.write_text(json.dumps({**AUDIT, "score": 91.0}))
    args = _audit_args(tmp_path, report=tmp_path / "r", history=[old], mlflow=True)
    assert audit_cli.run(args, audit=lambda options: AUDIT) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "src/mlprop/digits/train.py" in html and "x_train__mutmut_7" in html
    assert "tests/test_digits_train.py::test_loss_falls" in html
    assert "Score over time" in html and (tmp_path / "r" / runs.AUDIT_HISTORY_PNG).is_file()
    assert "91.0% → 97.5%" in (tmp_path / "r" / "summary.md").read_text()
    run, artifacts = _last_run("audit")
    assert run.data.metrics["mutation_score"] == 97.5
    assert run.data.metrics["ml_mutant_kill_rate"] == 75.0
    assert run.data.metrics["mutants_survived"] == 1.0
    assert {"report.html", "summary.md", "results.json", runs.AUDIT_HISTORY_PNG} <= set(
        artifacts)


def test_audit_report_into_another_runs_directory_exits_2_before_the_audit(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "summary.md").write_text("keep me")

    def audit(options):
        raise AssertionError("the audit must not start")

    args = _audit_args(tmp_path, report=tmp_path / "r")
    with pytest.raises(audit_cli.UsageError, match="already holds a report"):
        audit_cli.run(args, audit=audit)
    assert (tmp_path / "r" / "summary.md").read_text() == "keep me"


def _comparison() -> ComparisonReport:
    report = ComparisonReport(base="a" * 40, head="b" * 40, rounds=3, threshold=0.1)
    report.comparisons = [
        BenchmarkComparison("benchmarks/test_bench_cpu.py::test_bench_predict_end_to_end[64]",
                            (0.010, 0.011, 0.010), (0.013, 0.014, 0.013), (1.3, 1.27, 1.3),
                            1.3, 1.27, 1.3, "regression"),
        BenchmarkComparison("benchmarks/test_bench_cpu.py::test_bench_augmentation[rotate]",
                            (0.002, 0.002, 0.002), (0.002, 0.002, 0.002), (1.0, 1.0, 1.0),
                            1.0, 0.99, 1.01, "same")]
    return report


def test_bench_report_plots_each_benchmark_and_logs_images_per_second(tmp_path):
    args = argparse.Namespace(report=tmp_path / "b", force=False, mlflow=True, repo=tmp_path,
                              fail_over=10.0)
    report_dir, mlflow_on = bench_cli._prepare_outputs(args)
    bench_cli._write_outputs(args, _comparison(), report_dir, mlflow_on, 12.0, None)
    pngs = sorted(p.name for p in (tmp_path / "b").glob("*.png"))
    assert pngs == ["bench-test_bench_augmentation_rotate.png",
                    "bench-test_bench_predict_end_to_end_64.png"]
    md = (tmp_path / "b" / "summary.md").read_text()
    assert "regression: test_bench_predict_end_to_end[64]" in md
    assert (tmp_path / "b" / "report.html").read_text().count("data:image/png;base64,") == 2
    run, artifacts = _last_run("bench compare")
    metrics = run.data.metrics
    assert metrics["images_per_s.test_bench_predict_end_to_end_64.base"] == pytest.approx(6400)
    assert metrics["calls_per_s.test_bench_augmentation_rotate.head"] == pytest.approx(500)
    assert metrics["regressions"] == 1.0
    assert run.data.params["base"] == "a" * 40
    assert "bench-test_bench_predict_end_to_end_64.png" in artifacts


def test_drift_statistics_are_logged(capsys):
    code = main(["drift", "--reference", "digits", "--current", "digits", "--shift",
                 "brightness:0.3", "--mlflow"])
    assert code == 1
    run, artifacts = _last_run("drift")
    assert run.data.metrics["drifted"] == 1.0
    assert any(key.startswith("drift.") and key.endswith(".p_adjusted")
               for key in run.data.metrics)
    assert artifacts == ["drift.json"]


def test_mlflow_missing_exits_2_with_the_install_command(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    code = main(["drift", "--reference", "digits", "--current", "digits", "--mlflow"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mlprop[mlflow]'" in err[0]
