"""Group fairness of a classifier's predictions, and a gate that fails CI on it.

For predictions, true labels and a group attribute (one value per sample), with a
*positive* class ``c`` (a prediction ``== c`` is a "selection"):

- **demographic parity difference**: ``max_g SR_g - min_g SR_g``, with the selection rate
  ``SR_g = P(pred == c | group g)``; in ``[0, 1]``, 0 when every group is selected alike;
- **equalized odds difference**: the larger of the spreads (max - min over groups) of the
  true positive rate ``P(pred == c | label == c, g)`` and of the false positive rate
  ``P(pred == c | label != c, g)``; in ``[0, 1]``. A group with no positive (negative)
  labels has no TPR (FPR) and is left out of that spread;
- **disparate impact ratio**: ``min_g SR_g / max_g SR_g``; in ``[0, 1]``, 1 when the rates are
  equal (also when no group is ever selected). The "four-fifths rule" asks for >= 0.8;
- **per-group accuracy** ``P(pred == label | g)``, and its spread, the accuracy gap.

These are fairlearn's ``demographic_parity_difference``, ``equalized_odds_difference``
(``agg="worst_case"``) and ``demographic_parity_ratio``, and ``MetricFrame`` of accuracy.

Binary data (labels and predictions within ``{0, 1}``) use ``c = 1``. Multi-class data
without an explicit ``positive`` is scored one-vs-rest for every class, and each metric
reports its worst class (largest difference, smallest ratio). Swapping or renaming the
groups never changes a metric.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlprop.monitor.inputs import (
    MonitorInputError,
    check_categories,
    check_groups,
    check_same_length,
)

__all__ = [
    "FairnessReport",
    "FairnessThresholds",
    "GroupStats",
    "fairness_report",
]


@dataclass(frozen=True)
class FairnessThresholds:
    """Limits of the fairness gate; ``None`` switches a check off.

    Defaults: demographic parity difference <= 0.1, equalized odds difference <= 0.1,
    disparate impact ratio >= 0.8 (the four-fifths rule), no limit on the accuracy gap.
    """

    max_demographic_parity: float | None = 0.1
    max_equalized_odds: float | None = 0.1
    min_disparate_impact: float | None = 0.8
    max_accuracy_gap: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and 0 <= value <= 1):
                raise MonitorInputError(name, "None or a number in [0, 1]", repr(value))


@dataclass(frozen=True)
class GroupStats:
    """One group's size and rates (for the positive class, or the worst class one-vs-rest:
    ``selection_rate``, ``true_positive_rate``, ``false_positive_rate`` are those of the class
    named by the report's ``demographic_parity_class``). ``None``: undefined (no positives
    or no negatives in the group)."""

    group: str
    size: int
    accuracy: float
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None


@dataclass(frozen=True)
class FairnessReport:
    """Fairness metrics, per-group statistics and the gate's verdict."""

    demographic_parity_difference: float
    equalized_odds_difference: float
    disparate_impact_ratio: float
    accuracy_gap: float
    per_group_accuracy: dict[str, float]
    groups: tuple[GroupStats, ...]
    positive: Any  # the positive class, or None (multi-class, one-vs-rest worst case)
    worst_class: dict[str, Any]  # metric name -> class giving its worst value
    thresholds: FairnessThresholds

    @property
    def failures(self) -> list[str]:
        """One line per threshold crossed (empty: the gate passes)."""
        t, out = self.thresholds, []
        checks = [
            ("demographic_parity_difference", self.demographic_parity_difference,
             t.max_demographic_parity, "<="),
            ("equalized_odds_difference", self.equalized_odds_difference,
             t.max_equalized_odds, "<="),
            ("disparate_impact_ratio", self.disparate_impact_ratio, t.min_disparate_impact,
             ">="),
            ("accuracy_gap", self.accuracy_gap, t.max_accuracy_gap, "<="),
        ]
        for name, value, limit, op in checks:
            if limit is None:
                continue
            if (op == "<=" and value > limit) or (op == ">=" and value < limit):
                out.append(f"{name} = {value:.4f}, expected {op} {limit}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["positive"] = _plain(self.positive)
        out["worst_class"] = {k: _plain(v) for k, v in self.worst_class.items()}
        out["passed"] = self.passed
        out["failures"] = self.failures
        return out

    def format(self) -> str:
        positive = ("one-vs-rest, worst class per metric" if self.positive is None
                    else f"positive class {self.positive!r}")
        lines = [f"fairness report: {sum(g.size for g in self.groups)} samples, "
                 f"{len(self.groups)} groups ({positive})",
                 f"{'group':<16} {'n':>7} {'accuracy':>9} {'selected':>9} {'TPR':>7} {'FPR':>7}"]

        def rate(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        for g in self.groups:
            lines.append(f"{g.group:<16} {g.size:>7} {g.accuracy:>9.3f} "
                         f"{g.selection_rate:>9.3f} {rate(g.true_positive_rate):>7} "
                         f"{rate(g.false_positive_rate):>7}")
        t = self.thresholds
        for label, value, limit, op, key in [
            ("demographic parity difference", self.demographic_parity_difference,
             t.max_demographic_parity, "<=", "demographic_parity_difference"),
            ("equalized odds difference", self.equalized_odds_difference,
             t.max_equalized_odds, "<=", "equalized_odds_difference"),
            ("disparate impact ratio", self.disparate_impact_ratio, t.min_disparate_impact,
             ">=", "disparate_impact_ratio"),
            ("accuracy gap", self.accuracy_gap, t.max_accuracy_gap, "<=", "accuracy_gap"),
        ]:
            verdict = "" if limit is None else (
                "  ok" if (value <= limit if op == "<=" else value >= limit)
                else "  FAIL") + f" (limit {op} {limit})"
            where = (f" [class {self.worst_class[key]!r}]"
                     if self.positive is None and key in self.worst_class else "")
            lines.append(f"{label:<30} {value:.4f}{where}{verdict}")
        lines.append("verdict: " + ("fair within the thresholds" if self.passed
                                    else "UNFAIR: " + "; ".join(self.failures)))
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _spread(values: list[float | None]) -> float:
    defined = [v for v in values if v is not None]
    return float(max(defined) - min(defined)) if len(defined) >= 2 else 0.0


@dataclass(frozen=True)
class _OneClass:
    selection: list[float]
    tpr: list[float | None]
    fpr: list[float | None]
    dp: float
    eo: float
    di: float


def _one_class(predictions: np.ndarray, labels: np.ndarray, members: list[np.ndarray],
               positive: Any) -> _OneClass:
    selected = predictions == positive
    actual = labels == positive
    selection, tpr, fpr = [], [], []
    for index in members:
        s, a = selected[index], actual[index]
        selection.append(float(s.mean()))
        positives, negatives = int(a.sum()), int((~a).sum())
        tpr.append(float(s[a].sum() / positives) if positives else None)
        fpr.append(float(s[~a].sum() / negatives) if negatives else None)
    high = max(selection)
    di = 1.0 if high == 0 else float(min(selection) / high)
    return _OneClass(selection, tpr, fpr, _spread(selection), max(_spread(tpr), _spread(fpr)),
                     di)


def fairness_report(
    predictions: Any,
    labels: Any,
    groups: Any,
    *,
    positive: Any = None,
    thresholds: FairnessThresholds | None = None,
) -> FairnessReport:
    """Fairness metrics of ``predictions`` against ``labels`` across ``groups``.

    ``predictions`` and ``labels``: 1-D class indices; ``groups``: one value (any type) per
    sample, at least two distinct. ``positive``: the class counted as a selection (default:
    1 for binary data, else every class one-vs-rest, worst case reported). Bad input raises
    :class:`~mlprop.monitor.inputs.MonitorInputError` naming the field.
    """
    thresholds = FairnessThresholds() if thresholds is None else thresholds
    if not isinstance(thresholds, FairnessThresholds):
        raise MonitorInputError("thresholds", "a FairnessThresholds", type(thresholds).__name__)
    predictions = check_categories(predictions, "predictions")
    labels = check_categories(labels, "labels")
    groups = check_groups(groups, "groups")
    check_same_length([("predictions", predictions), ("labels", labels), ("groups", groups)])
    try:
        names, inverse = np.unique(groups, return_inverse=True)
    except TypeError:  # an object array mixing types that do not compare (1 and "a")
        raise MonitorInputError("groups", "group values of one type (all str or all int)",
                                f"a mix of {sorted({type(g).__name__ for g in groups})}"
                                ) from None
    inverse = inverse.ravel()
    if len(names) < 2:
        raise MonitorInputError("groups", "at least two distinct groups",
                                f"only one, {_plain(names[0])!r}")
    members = [np.flatnonzero(inverse == k) for k in range(len(names))]
    classes = np.union1d(np.unique(predictions), np.unique(labels))
    if positive is not None:
        if isinstance(positive, bool) or not isinstance(positive, int | np.integer):
            raise MonitorInputError("positive", "an integer class", repr(positive))
        positive = int(positive)
        if positive not in classes:
            raise MonitorInputError("positive", f"a class present in the labels or predictions "
                                    f"{classes.tolist()}", repr(positive))
    elif set(classes.tolist()) <= {0, 1}:
        positive = 1  # binary data: 1 is the selection, even if nobody was selected
    candidates = [positive] if positive is not None else [int(c) for c in classes]
    scored = {c: _one_class(predictions, labels, members, c) for c in candidates}
    worst_dp = max(candidates, key=lambda c: scored[c].dp)
    worst_eo = max(candidates, key=lambda c: scored[c].eo)
    worst_di = min(candidates, key=lambda c: scored[c].di)
    correct = predictions == labels
    accuracy = [float(correct[index].mean()) for index in members]
    shown = scored[worst_dp]
    group_stats = tuple(
        GroupStats(str(_plain(name)), len(index), accuracy[k], shown.selection[k],
                   shown.tpr[k], shown.fpr[k])
        for k, (name, index) in enumerate(zip(names, members, strict=True))
    )
    return FairnessReport(
        demographic_parity_difference=scored[worst_dp].dp,
        equalized_odds_difference=scored[worst_eo].eo,
        disparate_impact_ratio=scored[worst_di].di,
        accuracy_gap=_spread(accuracy),
        per_group_accuracy={g.group: g.accuracy for g in group_stats},
        groups=group_stats,
        positive=positive,
        worst_class={"demographic_parity_difference": worst_dp,
                     "equalized_odds_difference": worst_eo,
                     "disparate_impact_ratio": worst_di},
        thresholds=thresholds,
    )
