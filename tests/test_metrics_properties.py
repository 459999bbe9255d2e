"""Property tests of ``mlprop.digits.evaluate``: scikit-learn as a differential oracle,
bounds, and metamorphic relations (sample order, class relabelling).

The example-based tests in ``test_evaluate.py`` pin hand-checked cases and the errors.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

import mlprop.strategies as gen
from mlprop.digits.evaluate import confusion_matrix, evaluate

TOLERANCE = 1e-12


@st.composite
def labelled_predictions(draw: st.DrawFn, *, max_size: int = 200):
    """(labels, predictions, num_classes): 1..max_size samples of 2..12 classes.

    Predictions are either independent of the labels (most classes wrong, some never
    predicted) or the labels with a few entries changed (near-perfect, the usual case for
    a trained model), so both ends of every metric come up.
    """
    num_classes = draw(st.integers(2, 12), label="num_classes")
    size = draw(st.integers(1, max_size), label="size")
    labels = draw(gen.labels(num_classes, size=size), label="labels")
    if draw(st.booleans(), label="independent"):
        predictions = draw(gen.labels(num_classes, size=size), label="predictions")
    else:
        predictions = labels.copy()
        changed = draw(st.lists(st.integers(0, size - 1), max_size=min(size, 10)))
        for index in changed:
            predictions[index] = draw(st.integers(0, num_classes - 1))
    return labels, predictions, num_classes


def _close(actual, expected, what: str) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE, err_msg=what)


@given(case=labelled_predictions())
def test_metrics_agree_with_sklearn(case):
    """accuracy, per-class precision/recall/F1, their macro averages and the confusion
    matrix equal scikit-learn's (``labels=range(k)``, ``zero_division=0``) within 1e-12.

    Catches: precision and recall swapped (dividing by row instead of column sums), the
    confusion matrix transposed, macro averages taken over the classes present instead of
    all k, micro averaging passed off as macro, F1 as the mean instead of the harmonic
    mean, and NaN or 1 instead of 0 for a class never predicted or never present."""
    labels, predictions, k = case
    classes = list(range(k))
    metrics = evaluate(labels, predictions, k)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predictions, labels=classes, average=None, zero_division=0)
    macro = skm.precision_recall_fscore_support(
        labels, predictions, labels=classes, average="macro", zero_division=0)
    _close(metrics.accuracy, skm.accuracy_score(labels, predictions), "accuracy")
    _close(metrics.precision, precision, "precision")
    _close(metrics.recall, recall, "recall")
    _close(metrics.f1, f1, "f1")
    _close(metrics.macro_precision, macro[0], "macro precision")
    _close(metrics.macro_recall, macro[1], "macro recall")
    _close(metrics.macro_f1, macro[2], "macro f1")
    expected_confusion = skm.confusion_matrix(labels, predictions, labels=classes)
    np.testing.assert_array_equal(metrics.confusion, expected_confusion)
    np.testing.assert_array_equal(confusion_matrix(labels, predictions, k), expected_confusion)


@given(case=labelled_predictions())
def test_metrics_are_bounded_and_confusion_counts_every_sample(case):
    """Every metric lies in [0, 1] (no NaN); per-class arrays have k entries; the
    confusion matrix is k x k of non-negative integers summing to N, its row sums are the
    label counts and its column sums the prediction counts; a class never predicted has
    precision 0 and F1 0, a class never present has recall 0 and F1 0 (zero_division=0).

    Catches: a division by zero producing NaN/inf, a confusion matrix sized by the
    classes present, samples dropped by a wrong bincount length, and 1 used instead of 0
    for an empty denominator."""
    labels, predictions, k = case
    metrics = evaluate(labels, predictions, k)
    for name in ("precision", "recall", "f1"):
        values = getattr(metrics, name)
        assert values.shape == (k,), (name, values.shape)
        assert np.all((values >= 0) & (values <= 1)), (name, values)
    scalars = {"accuracy": metrics.accuracy, "macro_precision": metrics.macro_precision,
               "macro_recall": metrics.macro_recall, "macro_f1": metrics.macro_f1}
    for name, value in scalars.items():
        assert 0 <= value <= 1, (name, value)
    confusion = metrics.confusion
    assert confusion.shape == (k, k) and confusion.dtype.kind in "iu", confusion.dtype
    assert confusion.min() >= 0 and confusion.sum() == labels.size
    np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(labels, minlength=k))
    np.testing.assert_array_equal(confusion.sum(axis=0), np.bincount(predictions, minlength=k))
    never_predicted = np.setdiff1d(np.arange(k), predictions)
    never_present = np.setdiff1d(np.arange(k), labels)
    assert np.all(metrics.precision[never_predicted] == 0)
    assert np.all(metrics.recall[never_present] == 0)
    assert np.all(metrics.f1[np.union1d(never_predicted, never_present)] == 0)
    assert (metrics.accuracy == 1) == bool(np.array_equal(labels, predictions))


@given(case=labelled_predictions(), data=st.data())
def test_metrics_do_not_depend_on_sample_order(case, data):
    """Shuffling the (label, prediction) pairs together changes no metric.

    Catches: metrics computed on a prefix or a batch-sized slice, predictions compared
    with labels at an offset (``labels[1:] == predictions[:-1]``), and order-dependent
    accumulation."""
    labels, predictions, k = case
    order = np.array(data.draw(st.permutations(range(labels.size)), label="order"))
    before = evaluate(labels, predictions, k)
    after = evaluate(labels[order], predictions[order], k)
    np.testing.assert_array_equal(after.confusion, before.confusion)
    _close(after.accuracy, before.accuracy, "accuracy")
    for name in ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1"):
        _close(getattr(after, name), getattr(before, name), name)


@given(case=labelled_predictions(), data=st.data())
def test_relabelling_classes_permutes_per_class_metrics(case, data):
    """Renaming classes by a permutation p (class c becomes p[c] in labels and
    predictions alike) moves class c's precision/recall/F1 to position p[c] and
    ``confusion[i, j]`` to ``[p[i], p[j]]``; accuracy and macro averages are unchanged.

    Catches: per-class arrays indexed by order of first appearance or by ``np.unique``
    position instead of class id, and a metric that special-cases class 0 (skipping it
    as a "background" class)."""
    labels, predictions, k = case
    p = np.array(data.draw(st.permutations(range(k)), label="permutation"))
    before = evaluate(labels, predictions, k)
    after = evaluate(p[labels], p[predictions], k)
    np.testing.assert_array_equal(after.confusion[np.ix_(p, p)], before.confusion)
    for name in ("precision", "recall", "f1"):
        _close(getattr(after, name)[p], getattr(before, name), name)
    for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
        _close(getattr(after, name), getattr(before, name), name)
