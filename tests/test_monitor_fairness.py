"""Example-based tests of :mod:`mlprop.monitor.fairness`: hand-computed metrics and the gate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlprop.monitor import FairnessThresholds, MonitorInputError, fairness_report

# Group a: 4 samples, labels 1 1 0 0, predictions 1 0 1 0 -> SR 0.5, TPR 0.5, FPR 0.5, acc 0.5
# Group b: 4 samples, labels 1 1 0 0, predictions 1 1 0 0 -> SR 0.5, TPR 1.0, FPR 0.0, acc 1.0
# Group c: 2 samples, labels 1 0,     predictions 0 0     -> SR 0.0, TPR 0.0, FPR 0.0, acc 0.5
LABELS = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1, 0])
PREDICTIONS = np.array([1, 0, 1, 0, 1, 1, 0, 0, 0, 0])
GROUPS = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 2)


def test_hand_computed_binary_metrics():
    report = fairness_report(PREDICTIONS, LABELS, GROUPS)
    assert report.positive == 1
    assert report.demographic_parity_difference == pytest.approx(0.5)
    assert report.equalized_odds_difference == pytest.approx(1.0)  # TPR 1.0 vs 0.0
    assert report.disparate_impact_ratio == pytest.approx(0.0)
    assert report.per_group_accuracy == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    assert report.accuracy_gap == pytest.approx(0.5)
    by_name = {g.group: g for g in report.groups}
    assert by_name["a"].true_positive_rate == 0.5 and by_name["b"].false_positive_rate == 0
    assert [g.size for g in report.groups] == [4, 4, 2]


def test_gate_reports_each_threshold_crossed():
    report = fairness_report(PREDICTIONS, LABELS, GROUPS)
    assert not report.passed
    assert [line.split(" = ")[0] for line in report.failures] == [
        "demographic_parity_difference", "equalized_odds_difference", "disparate_impact_ratio"]
    lenient = fairness_report(PREDICTIONS, LABELS, GROUPS, thresholds=FairnessThresholds(
        max_demographic_parity=0.5, max_equalized_odds=1.0, min_disparate_impact=0.0,
        max_accuracy_gap=0.4))
    assert lenient.failures == ["accuracy_gap = 0.5000, expected <= 0.4"]
    off = FairnessThresholds(None, None, None, None)
    assert fairness_report(PREDICTIONS, LABELS, GROUPS, thresholds=off).passed


def test_fair_predictions_pass_the_default_gate():
    labels = np.tile([1, 0, 1, 0], 5)
    groups = np.repeat([0, 1], 10)
    report = fairness_report(labels, labels, groups)  # perfect, equal base rates
    assert report.passed, report.failures
    assert (report.demographic_parity_difference, report.disparate_impact_ratio) == (0, 1)


def test_positive_class_choice():
    as_zero = fairness_report(PREDICTIONS, LABELS, GROUPS, positive=0)
    assert as_zero.positive == 0
    # selection of class 0: a 0.5, b 0.5, c 1.0 -> DP 0.5, DI 0.5
    assert as_zero.disparate_impact_ratio == pytest.approx(0.5)
    with pytest.raises(MonitorInputError, match=r"^positive: expected a class present"):
        fairness_report(PREDICTIONS, LABELS, GROUPS, positive=7)
    with pytest.raises(MonitorInputError, match=r"^positive: expected an integer class"):
        fairness_report(PREDICTIONS, LABELS, GROUPS, positive="1")


def test_nobody_selected_means_equal_rates():
    report = fairness_report(np.zeros(6, int), np.array([0, 1, 0, 1, 0, 1]),
                             np.array([0, 0, 0, 1, 1, 1]))
    assert report.disparate_impact_ratio == 1.0
    assert report.demographic_parity_difference == 0.0


def test_undefined_rates_are_left_out_of_equalized_odds():
    # group 1 has no positive labels: no TPR; its FPR still counts
    labels = np.array([1, 0, 0, 0])
    predictions = np.array([1, 0, 1, 0])
    report = fairness_report(predictions, labels, np.array([0, 0, 1, 1]))
    tpr = {g.group: g.true_positive_rate for g in report.groups}
    assert tpr == {"0": 1.0, "1": None}
    assert report.equalized_odds_difference == pytest.approx(0.5)  # FPR 0 vs 0.5
    assert "-" in report.format()


def test_multiclass_reports_the_worst_class():
    labels = np.array([0, 1, 2, 0, 1, 2])
    predictions = np.array([0, 1, 2, 2, 2, 2])  # group y always predicts 2
    report = fairness_report(predictions, labels, np.array(["x"] * 3 + ["y"] * 3))
    assert report.positive is None
    assert report.demographic_parity_difference == pytest.approx(2 / 3)  # class 2: 1/3 vs 1
    assert report.worst_class["demographic_parity_difference"] == 2
    assert report.disparate_impact_ratio == 0.0  # classes 0 and 1: never selected in y
    assert "[class 2]" in report.format()


def test_report_json_and_text():
    report = fairness_report(PREDICTIONS, LABELS, GROUPS)
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["passed"] is False and len(payload["failures"]) == 3
    assert payload["groups"][0]["group"] == "a"
    text = report.format()
    assert "demographic parity difference" in text and "FAIL" in text
    assert text.splitlines()[-1].startswith("verdict: UNFAIR")


def test_groups_may_be_ints_strings_or_bools():
    for groups in (np.array([0, 0, 1, 1, 2] * 2), np.array(list("aabbc") * 2),
                   np.array([True, False] * 5)):
        fairness_report(PREDICTIONS, LABELS, groups)


@pytest.mark.parametrize("predictions, labels, groups, field, message", [
    (PREDICTIONS[:-1], LABELS, GROUPS, "predictions", "expected 10 values"),
    (PREDICTIONS, LABELS, GROUPS[:3], "groups", "expected 10 values"),
    (PREDICTIONS, LABELS, np.full(10, "a"), "groups", "only one, 'a'"),
    (PREDICTIONS[:0], LABELS[:0], GROUPS[:0], "predictions", "an empty array"),
    (np.where(PREDICTIONS == 1, np.nan, 0.0), LABELS, GROUPS, "predictions", "NaN at index 0"),
    (PREDICTIONS, LABELS, np.array(["a", None] * 5, dtype=object), "groups", "NaN at index 1"),
    (PREDICTIONS, LABELS, np.array(["a", 1] * 5, dtype=object), "groups", "a mix of"),
    (PREDICTIONS, np.full(10, 0.5), GROUPS, "labels", "integer class indices"),
    (PREDICTIONS, np.array([1.0, np.inf] * 5), GROUPS, "labels", "finite"),
    (PREDICTIONS.reshape(2, 5), LABELS, GROUPS, "predictions", "1-D array"),
    (np.array(list("0101010101")), LABELS, GROUPS, "predictions", "integer class indices"),
])
def test_bad_input_names_the_field(predictions, labels, groups, field, message):
    with pytest.raises(MonitorInputError) as caught:
        fairness_report(predictions, labels, groups)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_integral_floats_and_columns_are_accepted():
    report = fairness_report(PREDICTIONS.astype(float)[:, None], LABELS.astype(bool), GROUPS)
    assert report.demographic_parity_difference == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, field", [
    ({"max_demographic_parity": 1.5}, "max_demographic_parity"),
    ({"min_disparate_impact": -0.1}, "min_disparate_impact"),
    ({"max_equalized_odds": float("nan")}, "max_equalized_odds"),
    ({"max_accuracy_gap": True}, "max_accuracy_gap"),
])
def test_bad_thresholds_name_the_field(kwargs, field):
    with pytest.raises(MonitorInputError) as caught:
        FairnessThresholds(**kwargs)
    assert caught.value.field == field
    with pytest.raises(MonitorInputError, match=r"^thresholds: "):
        fairness_report(PREDICTIONS, LABELS, GROUPS, thresholds={"max_dp": 0.1})
