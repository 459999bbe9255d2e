"""Monitoring: data drift, prediction drift and group fairness, with CI gates.

- :func:`drift_report` (:mod:`mlprop.monitor.drift`): KS tests on image summary features
  and per-pixel intensities, chi-squared on labels and predictions, PSI, one corrected
  family of tests -> :class:`DriftReport`;
- :func:`fairness_report` (:mod:`mlprop.monitor.fairness`): demographic parity difference,
  equalized odds difference, disparate impact ratio, per-group accuracy, and a gate
  (:class:`FairnessThresholds`) -> :class:`FairnessReport`;
- :mod:`mlprop.monitor.shifts`: named corruptions (brightness, contrast, noise, rotation);
- :mod:`mlprop.monitor.files`: reading their inputs from files (``mlprop drift`` /
  ``mlprop fairness`` live in :mod:`mlprop.cli.monitor`).

Framework code: nothing here imports a particular target (the CLI's built-in demo data
aside, loaded only by :mod:`mlprop.monitor.files`).
"""

from mlprop.monitor.drift import DriftConfig, DriftReport, FeatureDrift, drift_report
from mlprop.monitor.fairness import (
    FairnessReport,
    FairnessThresholds,
    GroupStats,
    fairness_report,
)
from mlprop.monitor.features import FEATURE_NAMES, image_features
from mlprop.monitor.inputs import MonitorInputError
from mlprop.monitor.shifts import SHIFTS, Shift, apply_shift, parse_shift

__all__ = [
    "FEATURE_NAMES",
    "SHIFTS",
    "DriftConfig",
    "DriftReport",
    "FairnessReport",
    "FairnessThresholds",
    "FeatureDrift",
    "GroupStats",
    "MonitorInputError",
    "Shift",
    "apply_shift",
    "drift_report",
    "fairness_report",
    "image_features",
    "parse_shift",
]
