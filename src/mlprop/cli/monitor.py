"""``mlprop drift`` and ``mlprop fairness``: CI gates (exit 1 on drift or unfairness).

Inputs (read by :mod:`mlprop.monitor.files`) are IDX (``.gz`` ok),
``.npy`` (never unpickled) or, for images, PNG; 1-D inputs (labels, predictions, groups) may
also be ``.txt`` / ``.csv`` files with one value per line. ``--reference digits`` /
``--current digits`` name the embedded scikit-learn digits (both: two seeded halves, with
their labels), and ``--shift NAME:SIZE`` corrupts the current batch for a demo.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from mlprop.cli.common import EXIT_OK, UsageError, non_negative_int
from mlprop.monitor.drift import DriftConfig, drift_report
from mlprop.monitor.fairness import FairnessThresholds, fairness_report
from mlprop.monitor.files import BUILTIN, load_batches, load_vector
from mlprop.monitor.inputs import MonitorInputError
from mlprop.monitor.shifts import SHIFTS, Shift, apply_shift, parse_shift
from mlprop.monitor.stats import CORRECTIONS

EXIT_FOUND = 1
"""Drift found or a fairness threshold crossed."""


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


def _limit(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'none', got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _shift(text: str) -> Shift:
    try:
        return parse_shift(text)
    except MonitorInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------- loading


def _flag_error(exc: MonitorInputError, sources: dict[str, str]) -> Exception:
    flag = "--" + exc.field.replace("_", "-")
    where = f" ({sources[exc.field]})" if exc.field in sources else ""
    v = exc.violation
    return UsageError(f"{flag}{where}: expected {v.expected}, got {v.actual}")



# --------------------------------------------------------------------------- handlers


def _drift(args: argparse.Namespace, reports: list | None = None) -> int:
    config = DriftConfig(alpha=args.alpha, correction=args.correction,
                         psi_threshold=args.psi_threshold)
    names = ("reference", "current", "reference_labels", "current_labels",
             "reference_predictions", "current_predictions")
    batches = load_batches({name: getattr(args, name) for name in names}, args.seed)
    sources = {name: str(getattr(args, name)) for name in names
               if getattr(args, name) is not None}
    try:
        for shift in args.shift:
            batches["current"] = apply_shift(batches["current"], shift, seed=args.seed,
                                             field="current")
        report = drift_report(config=config, **batches)
    except MonitorInputError as exc:
        raise _flag_error(exc, sources) from None
    if reports is not None:
        reports.append(report)
    if args.json:
        payload = report.to_dict()
        payload["shifts"] = [str(s) for s in args.shift]
        print(json.dumps(payload, indent=2))
    else:
        if args.shift:
            print(f"current batch corrupted by: {', '.join(str(s) for s in args.shift)}")
        print(report.format())
    return EXIT_FOUND if report.drifted else EXIT_OK


def _fairness(args: argparse.Namespace, reports: list | None = None) -> int:
    thresholds = FairnessThresholds(
        max_demographic_parity=args.max_dp, max_equalized_odds=args.max_eo,
        min_disparate_impact=args.min_di, max_accuracy_gap=args.max_accuracy_gap)
    arrays = {name: load_vector(getattr(args, name), f"--{name}")
              for name in ("predictions", "labels", "groups")}
    sources = {name: str(getattr(args, name)) for name in arrays}
    try:
        report = fairness_report(arrays["predictions"], arrays["labels"], arrays["groups"],
                                 positive=args.positive, thresholds=thresholds)
    except MonitorInputError as exc:
        raise _flag_error(exc, sources) from None
    if reports is not None:
        reports.append(report)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format())
    if not report.passed:
        print(f"mlprop fairness: {len(report.failures)} threshold(s) crossed", file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_FOUND


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``drift`` and ``fairness`` to the ``mlprop`` command's subparsers."""
    drift = subparsers.add_parser(
        "drift", help="test whether current images (labels, predictions) drifted from a "
        "reference batch; exit 1 on drift",
        description="Two-sample KS tests on image features and per-pixel intensities, "
        "chi-squared on labels and predictions, PSI; exit 1 when any row drifts.")
    drift.add_argument("--reference", required=True, metavar="SRC",
                       help=f"IDX (.gz), .npy or PNG images, or '{BUILTIN}'")
    drift.add_argument("--current", required=True, metavar="SRC",
                       help=f"IDX (.gz), .npy or PNG images, or '{BUILTIN}' (both "
                       f"'{BUILTIN}': two seeded halves of the embedded data)")
    for name in ("reference-labels", "current-labels", "reference-predictions",
                 "current-predictions"):
        drift.add_argument(f"--{name}", type=Path, metavar="FILE",
                           help=f"{name.replace('-', ' ')}: .npy, .txt or IDX, one per image")
    drift.add_argument("--shift", type=_shift, action="append", default=[],
                       metavar="NAME:SIZE", help="corrupt the current batch (repeatable): "
                       f"{', '.join(sorted(SHIFTS))}, e.g. brightness:0.3, rotation:15")
    drift.add_argument("--seed", type=non_negative_int, default=0,
                       help="seed of the built-in split and of noise shifts (default 0)")
    drift.add_argument("--alpha", type=_probability, default=0.05,
                       help="family-wise significance level (default 0.05)")
    drift.add_argument("--correction", choices=CORRECTIONS, default="holm",
                       help="multiple-testing correction (default holm)")
    drift.add_argument("--psi-threshold", type=_non_negative, default=None,
                       help="also require PSI >= this for a drift verdict (e.g. 0.1)")
    drift.add_argument("--json", action="store_true", help="print the report as JSON")
    drift.add_argument("--mlflow", action="store_true", default=None,
                       help="log the drift statistics to MLflow (needs mlprop[mlflow])")
    drift.set_defaults(handler=run)

    fair = subparsers.add_parser(
        "fairness", help="group fairness of predictions; exit 1 when a metric crosses its "
        "threshold",
        description="Demographic parity difference, equalized odds difference, disparate "
        "impact ratio and per-group accuracy; exit 1 when a threshold is crossed.")
    fair.add_argument("--predictions", required=True, type=Path, metavar="FILE",
                      help="predicted classes: .npy, .txt or IDX")
    fair.add_argument("--labels", required=True, type=Path, metavar="FILE",
                      help="true classes, one per prediction")
    fair.add_argument("--groups", required=True, type=Path, metavar="FILE",
                      help="group attribute, one per prediction (ints or strings)")
    fair.add_argument("--positive", type=int, default=None,
                      help="the class counted as a selection (default: 1 for binary data, "
                      "else every class one-vs-rest, worst reported)")
    fair.add_argument("--max-dp", type=_limit, default=0.1,
                      help="max demographic parity difference (default 0.1; 'none': off)")
    fair.add_argument("--max-eo", type=_limit, default=0.1,
                      help="max equalized odds difference (default 0.1; 'none': off)")
    fair.add_argument("--min-di", type=_limit, default=0.8,
                      help="min disparate impact ratio (default 0.8; 'none': off)")
    fair.add_argument("--max-accuracy-gap", type=_limit, default=None,
                      help="max spread of per-group accuracy (default: off)")
    fair.add_argument("--json", action="store_true", help="print the report as JSON")
    fair.add_argument("--mlflow", action="store_true", default=None,
                      help="log the fairness metrics to MLflow (needs mlprop[mlflow])")
    fair.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``drift`` or ``fairness``, by the subcommand given."""
    from mlprop import tracking

    mlflow = tracking.mlflow_requested(getattr(args, "mlflow", None))
    if mlflow:
        tracking.require_mlflow()
    reports: list = []
    code = _drift(args, reports) if args.command == "drift" else _fairness(args, reports)
    if mlflow and reports:
        _log_mlflow(args.command, reports[0])
    return code


def _log_mlflow(command: str, report) -> None:
    """One MLflow run: the report's numbers as metrics, its JSON as the artifact."""
    import tempfile

    from mlprop import tracking
    from mlprop.atomic import atomic_write_text

    payload = report.to_dict()
    metrics: dict[str, float] = {}
    if command == "drift":
        metrics["drifted"] = bool(payload.get("drifted"))
        metrics["rows_drifted"] = sum(bool(r.get("drifted")) for r in payload["rows"])
        for row in payload["rows"]:
            for key in ("statistic", "p_value", "p_adjusted", "psi"):
                if isinstance(row.get(key), int | float):
                    metrics[tracking.metric_key("drift", row["name"], key)] = row[key]
    else:
        for key, value in payload.items():
            if isinstance(value, int | float):
                metrics[tracking.metric_key("fairness", key)] = value
    with tempfile.TemporaryDirectory(prefix="mlprop-monitor-") as scratch:
        atomic_write_text(Path(scratch) / f"{command}.json",
                          json.dumps(payload, indent=2, default=str) + "\n")
        run_id = tracking.log_run(command=command, target_spec=_target_spec(),
                                  metrics=metrics, artifacts=Path(scratch))
    print(f"mlprop {command}: logged MLflow run {run_id}", file=sys.stderr)


def _target_spec() -> str:
    import os

    from mlprop.plugin import resolve_target_spec

    return resolve_target_spec(None, os.environ, Path.cwd())[0]
