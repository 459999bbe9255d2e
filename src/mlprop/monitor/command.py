"""``mlprop drift`` and ``mlprop fairness``: CI gates (exit 1 on drift or unfairness).

Registered by :mod:`mlprop.cli` through :func:`register`. Inputs are IDX (``.gz`` ok),
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
from typing import Any

import numpy as np

from mlprop.cli import non_negative_int
from mlprop.monitor.drift import DriftConfig, drift_report
from mlprop.monitor.fairness import FairnessThresholds, fairness_report
from mlprop.monitor.inputs import MonitorInputError
from mlprop.monitor.shifts import SHIFTS, Shift, apply_shift, parse_shift
from mlprop.monitor.stats import CORRECTIONS

__all__ = ["BUILTIN", "cmd_drift", "cmd_fairness", "load_vector", "register"]

BUILTIN = "digits"
"""The source name that means the embedded digits data set rather than a file."""

EXIT_OK, EXIT_FOUND = 0, 1


def _usage(message: str) -> Exception:
    from mlprop.cli import UsageError

    return UsageError(message)


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


def _parse_line(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_vector(path: str | Path, flag: str) -> np.ndarray:
    """A 1-D array from ``.npy``, ``.txt`` / ``.csv`` (one value per line) or IDX."""
    from mlprop.digits.data import read_idx
    from mlprop.image_files import load_npy

    path = Path(path)
    if not path.is_file():
        raise _usage(f"{flag}: no such file: {path}")
    if path.suffix == ".npy":
        return load_npy(path)
    if path.suffix in (".txt", ".csv"):
        lines = [line.strip() for line in path.read_text().splitlines()]
        values = [_parse_line(line) for line in lines if line]
        if any(isinstance(v, str) for v in values):
            return np.array([str(v) for v in values])
        if any(isinstance(v, float) for v in values):
            return np.array(values, dtype=np.float64)
        return np.array(values, dtype=np.int64)
    return read_idx(path)


def _split_digits(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from mlprop.digits.data import load_default_dataset

    images, labels = load_default_dataset()
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    first, second = np.sort(order[:half]), np.sort(order[half:])
    return (images[first], labels[first]), (images[second], labels[second])


def _load_images(source: str, flag: str) -> np.ndarray:
    from mlprop.image_files import load_images

    if not Path(source).is_file():
        raise _usage(f"{flag}: no such file: {source} (or name the built-in '{BUILTIN}')")
    return load_images(source)


def _batches(args: argparse.Namespace) -> dict[str, Any]:
    """Images, labels and predictions of both batches, by drift_report's argument names."""
    out: dict[str, Any] = {}
    builtin_labels: dict[str, np.ndarray] = {}
    if args.reference == BUILTIN and args.current == BUILTIN:
        (out["reference"], ref_labels), (out["current"], cur_labels) = _split_digits(args.seed)
        builtin_labels = {"reference_labels": ref_labels, "current_labels": cur_labels}
    else:
        for side in ("reference", "current"):
            source = getattr(args, side)
            if source == BUILTIN:
                from mlprop.digits.data import load_default_dataset

                out[side], builtin_labels[f"{side}_labels"] = load_default_dataset()
            else:
                out[side] = _load_images(source, f"--{side}")
    for name in ("reference_labels", "current_labels", "reference_predictions",
                 "current_predictions"):
        path = getattr(args, name)
        if path is not None:
            out[name] = load_vector(path, "--" + name.replace("_", "-"))
    # the built-in data's labels are used where no file names them, and only in pairs
    for name, labels in builtin_labels.items():
        out.setdefault(name, labels)
    if len(builtin_labels) == 1 and ("reference_labels" in out) != ("current_labels" in out):
        out.pop(next(iter(builtin_labels)))
    return out


def _flag_error(exc: MonitorInputError, sources: dict[str, str]) -> Exception:
    flag = "--" + exc.field.replace("_", "-")
    where = f" ({sources[exc.field]})" if exc.field in sources else ""
    v = exc.violation
    return _usage(f"{flag}{where}: expected {v.expected}, got {v.actual}")


# --------------------------------------------------------------------------- handlers


def cmd_drift(args: argparse.Namespace) -> int:
    config = DriftConfig(alpha=args.alpha, correction=args.correction,
                         psi_threshold=args.psi_threshold)
    batches = _batches(args)
    sources = {name: str(getattr(args, name)) for name in (
        "reference", "current", "reference_labels", "current_labels",
        "reference_predictions", "current_predictions") if getattr(args, name) is not None}
    try:
        for shift in args.shift:
            batches["current"] = apply_shift(batches["current"], shift, seed=args.seed,
                                             field="current")
        report = drift_report(config=config, **batches)
    except MonitorInputError as exc:
        raise _flag_error(exc, sources) from None
    if args.json:
        payload = report.to_dict()
        payload["shifts"] = [str(s) for s in args.shift]
        print(json.dumps(payload, indent=2))
    else:
        if args.shift:
            print(f"current batch corrupted by: {', '.join(str(s) for s in args.shift)}")
        print(report.format())
    return EXIT_FOUND if report.drifted else EXIT_OK


def cmd_fairness(args: argparse.Namespace) -> int:
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
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format())
    if not report.passed:
        print(f"mlprop fairness: {len(report.failures)} threshold(s) crossed", file=sys.stderr)
    return EXIT_OK if report.passed else EXIT_FOUND


def register(subparsers: Any) -> None:
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
    drift.set_defaults(handler=cmd_drift)

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
    fair.set_defaults(handler=cmd_fairness)
