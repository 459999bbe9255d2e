"""Classification metrics computed with NumPy alone.

Definitions follow scikit-learn (``zero_division=0``): precision of a class never predicted
and recall of a class never present are 0; macro averages are unweighted means over
``num_classes`` classes. ``properties/`` checks them against scikit-learn as an oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Accuracy, per-class and macro precision/recall/F1, and the confusion matrix."""

    accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    confusion: np.ndarray

    @property
    def macro_precision(self) -> float:
        return float(self.precision.mean())

    @property
    def macro_recall(self) -> float:
        return float(self.recall.mean())

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    def as_dict(self) -> dict:
        """JSON-ready summary (used in the model package's manifest)."""
        return {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "precision": [float(v) for v in self.precision],
            "recall": [float(v) for v in self.recall],
            "f1": [float(v) for v in self.f1],
            "confusion": self.confusion.tolist(),
        }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class i predicted as class j."""
    for name, values in (("labels", labels), ("predictions", predictions)):
        kind = np.asarray(values).dtype.kind
        if kind not in "iu" and np.asarray(values).size:
            raise ValueError(f"{name} must be integer class indices, got dtype "
                             f"{np.asarray(values).dtype}")
    labels = np.asarray(labels).astype(np.int64)
    predictions = np.asarray(predictions).astype(np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D of equal length, got "
                         f"{labels.shape} and {predictions.shape}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes - 1}], got values from "
                             f"{values.min()} to {values.max()}")
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def evaluate(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> Metrics:
    """All metrics of ``predictions`` against ``labels`` (empty input: accuracy 0)."""
    confusion = confusion_matrix(labels, predictions, num_classes)
    true_positives = np.diag(confusion).astype(np.float64)
    precision = _safe_divide(true_positives, confusion.sum(axis=0))
    recall = _safe_divide(true_positives, confusion.sum(axis=1))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    total = confusion.sum()
    accuracy = float(true_positives.sum() / total) if total else 0.0
    return Metrics(accuracy, precision, recall, f1, confusion)


def format_metrics(metrics: Metrics) -> str:
    """A plain-text table: per-class precision/recall/F1 and the macro averages."""
    lines = [f"{'class':>6} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}"]
    support = metrics.confusion.sum(axis=1)
    for cls, (p, r, f, s) in enumerate(zip(metrics.precision, metrics.recall, metrics.f1,
                                           support, strict=True)):
        lines.append(f"{cls:>6} {p:>9.3f} {r:>7.3f} {f:>6.3f} {int(s):>7}")
    lines.append(f"{'macro':>6} {metrics.macro_precision:>9.3f} {metrics.macro_recall:>7.3f} "
                 f"{metrics.macro_f1:>6.3f} {int(support.sum()):>7}")
    lines.append(f"accuracy {metrics.accuracy:.4f}")
    return "\n".join(lines)
