"""``mlprop check``: run the property suite against a target and summarise."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlprop.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser("check", help="run the property suite against a target")
    check.add_argument("--target", help="MODULE:ATTR (default: as pytest resolves it)")
    check.add_argument("--report", type=Path, default=None, metavar="DIR",
                       help="write report.html, summary.md and results.json to DIR (also "
                            "appended to $GITHUB_STEP_SUMMARY when set)")
    check.add_argument("--force", action="store_true",
                       help="let --report overwrite a report already in DIR")
    check.add_argument("--mlflow", action="store_true", default=None,
                       help="log the run to MLflow ($MLFLOW_TRACKING_URI or MLflow's local "
                            "default; needs the mlprop[mlflow] extra)")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER,
                       help="extra pytest arguments after --")
    check.set_defaults(handler=run)


def run_property_suite(target: str | None, extra: Sequence[str]) -> int:
    """Run the suite (:func:`mlprop.suite.run_property_suite`); map pytest's exit to ours."""
    from mlprop import suite

    code = suite.run_property_suite(target, extra)
    return _exit_code(code)


def _exit_code(code: int) -> int:
    if code == 0:
        print("mlprop check: all properties hold", file=sys.stderr)
        return EXIT_OK
    if code == 1:
        print("mlprop check: some properties failed (see above)", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if code == 5:
        print("mlprop check: no property ran (empty selection)", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"mlprop check: pytest stopped with exit code {code}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    from mlprop import tracking
    from mlprop.report import ReportError, prepare_report_dir

    mlflow = tracking.mlflow_requested(getattr(args, "mlflow", None))
    report = getattr(args, "report", None)
    if report is None and not mlflow:
        return run_property_suite(args.target, args.pytest_args)
    try:
        if mlflow:
            tracking.require_mlflow()
        with tempfile.TemporaryDirectory(prefix="mlprop-report-") as scratch:
            directory = (prepare_report_dir(report, force=args.force) if report is not None
                         else Path(scratch))
            extra = [*args.pytest_args, "--mlprop-report", str(directory)]
            if args.force or report is None:
                extra.append("--mlprop-report-force")
            code = run_property_suite(args.target, extra)
            if mlflow:
                log_check_run(directory)
            return code
    except ReportError as exc:
        raise UsageError(f"--report: {exc}") from None


def log_check_run(directory: Path) -> str | None:
    """Log ``directory``'s results.json and files as an MLflow run; None without results."""
    from mlprop import tracking

    try:
        results = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        print("mlprop check: no results to log to MLflow (the run stopped early)",
              file=sys.stderr)
        return None
    counts = results.get("counts", {})
    metrics = {f"properties_{status}": count for status, count in counts.items()}
    metrics.update(properties_total=results.get("total", 0),
                   examples=results.get("examples", 0), seconds=results.get("seconds", 0.0))
    for component, entries in results.get("components", {}).items():
        if entries:
            metrics[f"{component}.passed"] = sum(e["status"] == "passed" for e in entries)
            metrics[f"{component}.failed"] = sum(e["status"] in ("failed", "error", "xpassed")
                                                 for e in entries)
    target = results.get("target", {})
    run_id = tracking.log_run(
        command="check", target_spec=target.get("spec"),
        params={"profile": results.get("profile"), "target_name": target.get("name")},
        metrics=metrics, artifacts=directory)
    print(f"mlprop check: logged MLflow run {run_id}", file=sys.stderr)
    return run_id
