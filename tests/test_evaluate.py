"""Example-based unit tests of the metrics (confusion_matrix, evaluate, format_metrics).

scikit-learn is the oracle on fixed and seeded-random label/prediction arrays, including
classes that are never predicted and classes that never occur.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mlprop.digits.evaluate import Metrics, confusion_matrix, evaluate, format_metrics


def _random_case(seed: int, count: int, k: int, skip_true=(), skip_pred=()):
    rng = np.random.default_rng(seed)
    true_pool = [c for c in range(k) if c not in skip_true]
    pred_pool = [c for c in range(k) if c not in skip_pred]
    return rng.choice(true_pool, count), rng.choice(pred_pool, count), k


CASES = {
    "perfect": ([0, 1, 2, 2], [0, 1, 2, 2], 3),
    "all-wrong": ([0, 1, 2], [1, 2, 0], 3),
    "never-predicted": ([0, 1, 2, 2, 1], [0, 0, 2, 2, 0], 3),  # class 1 never predicted
    "never-present": ([0, 0, 1, 1], [0, 2, 1, 2], 3),  # class 2 never a label
    "absent-both-ways": ([0, 1, 1, 0], [0, 1, 0, 0], 4),  # classes 2, 3 nowhere
    "single": ([4], [4], 10),
    "binary": ([0, 1, 1, 1, 0, 0], [0, 1, 0, 1, 1, 0], 2),
    "random-10": _random_case(0, 200, 10),
    "random-10-skips": _random_case(1, 150, 10, skip_true=(3, 7), skip_pred=(5, 7)),
    "random-3-small": _random_case(2, 9, 3),
    "random-5-one-predicted": _random_case(3, 50, 5, skip_pred=(0, 1, 2, 3)),
}


@pytest.mark.parametrize(("labels", "predictions", "k"), CASES.values(), ids=CASES.keys())
def test_agrees_with_sklearn(labels, predictions, k):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    result = evaluate(labels, predictions, k)
    assert isinstance(result, Metrics)
    classes = list(range(k))
    assert result.accuracy == pytest.approx(skm.accuracy_score(labels, predictions))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predictions, labels=classes, average=None, zero_division=0)
    np.testing.assert_allclose(result.precision, precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.recall, recall, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.f1, f1, rtol=0, atol=1e-12)
    expected_confusion = skm.confusion_matrix(labels, predictions, labels=classes)
    np.testing.assert_array_equal(result.confusion, expected_confusion)
    np.testing.assert_array_equal(confusion_matrix(labels, predictions, k), expected_confusion)
    np.testing.assert_array_equal(result.confusion.sum(axis=1), support)
    for average, mine in (("precision", result.macro_precision),
                          ("recall", result.macro_recall), ("f1", result.macro_f1)):
        index = ("precision", "recall", "f1").index(average)
        macro = skm.precision_recall_fscore_support(
            labels, predictions, labels=classes, average="macro", zero_division=0)[index]
        assert mine == pytest.approx(macro), average


def test_known_values_by_hand():
    # class 0: TP 1, FP 2 (two 1s predicted as 0), FN 0 -> P 1/3, R 1, F1 0.5
    # class 1: TP 0 (never predicted) -> P 0, R 0, F1 0; class 2 absent -> 0 everywhere
    result = evaluate(np.array([0, 1, 1]), np.array([0, 0, 0]), 3)
    assert result.accuracy == pytest.approx(1 / 3)
    np.testing.assert_allclose(result.precision, [1 / 3, 0, 0])
    np.testing.assert_allclose(result.recall, [1, 0, 0])
    np.testing.assert_allclose(result.f1, [0.5, 0, 0])
    np.testing.assert_array_equal(result.confusion, [[1, 0, 0], [2, 0, 0], [0, 0, 0]])
    assert result.macro_f1 == pytest.approx(0.5 / 3)


def test_confusion_matrix_orientation_rows_are_true_classes():
    confusion = confusion_matrix(np.array([0, 0, 0]), np.array([1, 1, 2]), 3)
    np.testing.assert_array_equal(confusion, [[0, 2, 1], [0, 0, 0], [0, 0, 0]])
    assert confusion.dtype.kind == "i"


def test_accepts_lists_and_other_integer_dtypes():
    expected = evaluate(np.array([0, 1, 2]), np.array([0, 2, 2]), 3)
    for labels, predictions in (([0, 1, 2], [0, 2, 2]),
                                (np.array([0, 1, 2], np.uint8), np.array([0, 2, 2], np.int32))):
        result = evaluate(labels, predictions, 3)
        assert result.accuracy == expected.accuracy
        np.testing.assert_array_equal(result.confusion, expected.confusion)


def test_empty_input_gives_zero_accuracy_and_zero_matrix():
    result = evaluate(np.zeros(0, np.int64), np.zeros(0, np.int64), 4)
    assert result.accuracy == 0.0
    np.testing.assert_array_equal(result.confusion, np.zeros((4, 4)))
    for values in (result.precision, result.recall, result.f1):
        np.testing.assert_array_equal(values, np.zeros(4))


@pytest.mark.parametrize(
    ("labels", "predictions", "match"),
    [
        pytest.param([0, 1, 2], [0, 1], r"\(3,\) and \(2,\)", id="length-mismatch"),
        pytest.param([[0, 1]], [[0, 1]], r"1-D.*\(1, 2\) and \(1, 2\)", id="2-D"),
        pytest.param(0, 0, r"1-D.*\(\) and \(\)", id="0-D"),
    ],
)
def test_bad_shapes_raise_value_error_naming_them(labels, predictions, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(np.asarray(labels), np.asarray(predictions), 3)
    with pytest.raises(ValueError, match=match):
        evaluate(np.asarray(labels), np.asarray(predictions), 3)


@pytest.mark.parametrize(
    ("labels", "predictions", "match"),
    [
        pytest.param([0, 3], [0, 1], r"labels must lie in \[0, 2\], got values from 0 to 3",
                     id="label-too-high"),
        pytest.param([-1, 1], [0, 1], r"labels must lie in \[0, 2\], got values from -1 to 1",
                     id="negative-label"),
        pytest.param([0, 1], [0, 5], r"predictions must lie in \[0, 2\].*0 to 5",
                     id="prediction-too-high"),
        pytest.param([0, 1], [-2, 1], r"predictions must lie in \[0, 2\].*-2 to 1",
                     id="negative-prediction"),
    ],
)
def test_out_of_range_values_raise_value_error_naming_them(labels, predictions, match):
    with pytest.raises(ValueError, match=match):
        evaluate(np.asarray(labels), np.asarray(predictions), 3)


def test_as_dict_is_json_ready():
    result = evaluate(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    summary = json.loads(json.dumps(result.as_dict()))
    assert summary["accuracy"] == pytest.approx(0.75)
    assert summary["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert summary["macro_f1"] == pytest.approx(result.macro_f1)
    assert len(summary["precision"]) == len(summary["recall"]) == len(summary["f1"]) == 3


def test_format_metrics_table():
    result = evaluate(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    text = format_metrics(result)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert [line.split()[0] for line in lines[1:4]] == ["0", "1", "2"]
    assert lines[2].split() == ["1", "1.000", "0.500", "0.667", "2"]
    macro = [line for line in lines if line.split()[0] == "macro"]
    assert len(macro) == 1
    assert macro[0].split()[-1] == "4"  # total support
    assert f"{result.macro_f1:.3f}" in macro[0]
    assert "accuracy 0.7500" in text
