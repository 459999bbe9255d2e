"""Hypothesis properties of :mod:`mlprop.monitor` (drift and fairness).

These are properties of the framework's own monitoring code, not of a target: no fault in
the audit catalogue (which plants bugs in a *target*) can trip them, so they live here in
``tests/`` rather than in ``properties/`` (where every property must be named by a fault).
Inputs come from :mod:`strategies`; realistic image samples come from the target's
``holdout()`` (whatever target is under test), with Hypothesis choosing the seeds.

Statistical properties aggregate many trials inside one example and state their tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import mlprop.strategies as gen
from mlprop.monitor import (
    FEATURE_NAMES,
    DriftConfig,
    MonitorInputError,
    apply_shift,
    drift_report,
    fairness_report,
    image_features,
)
from mlprop.monitor import stats as mstats
from mlprop.schema import ImageSchema

SCHEMA = ImageSchema(num_classes=10, min_side=1, max_side=16)
ALPHA = 0.05
FALSE_ALARM_TRIALS = 100
# The binomial standard error of a rate of ALPHA over FALSE_ALARM_TRIALS trials: the
# false-alarm rate may exceed alpha by at most three of them (about 0.065 over 100 trials).
FALSE_ALARM_TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / FALSE_ALARM_TRIALS)
SHIFT_TRIALS = 5
STATED_SHIFTS = ("brightness:0.05", "noise:0.05", "rotation:5", "contrast:0.2")


@pytest.fixture(scope="module")
def holdout_images(target) -> np.ndarray:
    images, _ = target.holdout()
    return np.asarray(images)


def _halves(pool: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(pool))
    half = len(pool) // 2
    return pool[order[:half]], pool[order[half:]]


# --------------------------------------------------------------------------- drift


@settings(max_examples=2)
@given(seed=gen.seeds())
def test_drift_false_alarm_rate_is_at_most_alpha(holdout_images, seed):
    """Two random halves of the holdout (one distribution) drift in at most
    alpha + 3 standard errors of the trials. Catches a missing or wrong multiple-testing
    correction (six tests at 0.05 each alarm about a quarter of the time), and p-values
    that are too small (a one-sided or mis-scaled KS distribution)."""
    rng = np.random.default_rng(seed)
    config = DriftConfig(alpha=ALPHA)
    alarms = sum(drift_report(*_halves(holdout_images, rng), config=config).drifted
                 for _ in range(FALSE_ALARM_TRIALS))
    rate = alarms / FALSE_ALARM_TRIALS
    assert rate <= ALPHA + FALSE_ALARM_TOLERANCE, (
        f"false-alarm rate {rate:.3f} over {FALSE_ALARM_TRIALS} splits exceeds alpha={ALPHA} "
        f"+ {FALSE_ALARM_TOLERANCE:.3f} (seed={seed})")


@settings(max_examples=5)
@given(pool=gen.images(SCHEMA, min_batch=4, max_batch=16, max_side=8), seed=gen.seeds())
def test_drift_false_alarm_rate_is_at_most_alpha_on_generated_images(pool, seed):
    """Two samples drawn with replacement from one generated pool of images (black, white,
    strokes, noise, ...: many ties and degenerate features) rarely drift: at most alpha +
    3 standard errors. Catches p-values that are wrong on ties or constant features
    (a zero-variance feature must give p = 1, not NaN or 0)."""
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(FALSE_ALARM_TRIALS // 2):
        reference = pool[rng.integers(0, len(pool), 40)]
        current = pool[rng.integers(0, len(pool), 40)]
        report = drift_report(reference, current, config=DriftConfig(alpha=ALPHA))
        assert all(0 <= row.p_value <= row.p_adjusted <= 1 for row in report.rows)
        alarms += report.drifted
    rate = alarms / (FALSE_ALARM_TRIALS // 2)
    tolerance = 3 * math.sqrt(ALPHA * (1 - ALPHA) / (FALSE_ALARM_TRIALS // 2))
    assert rate <= ALPHA + tolerance, f"false-alarm rate {rate:.3f} (seed={seed})"


@settings(max_examples=4)
@given(shift=st.sampled_from(STATED_SHIFTS), seed=gen.seeds())
def test_drift_detects_a_shift_of_stated_size(holdout_images, shift, seed):
    """Half the holdout against the other half corrupted by brightness +0.05 (13 gray
    levels), Gaussian noise of sd 0.05, a 5 degree rotation or 20% less contrast: drift is
    found in every one of several splits, and the rows flagged are exactly those whose
    adjusted p-value is below alpha. Catches a detector that never fires (an over-strict
    correction, a statistic that ignores the feature) and inverted verdicts."""
    rng = np.random.default_rng(seed)
    for trial in range(SHIFT_TRIALS):
        reference, current = _halves(holdout_images, rng)
        report = drift_report(reference, apply_shift(current, shift, seed=seed + trial))
        assert report.drifted, f"{shift} not detected (seed={seed}, trial {trial}):\n" \
                               f"{report.format()}"
        assert report.drifted_names == [
            row.name for row in report.rows if row.p_adjusted < report.config.alpha]


@given(batch=gen.images(SCHEMA, min_batch=1, max_batch=12), data=st.data())
def test_image_features_are_per_image_and_in_the_unit_range(batch, data):
    """Each image's features depend on that image only (bit for bit, wherever it sits in
    the batch) and lie in [0, 1]. Catches features normalised by batch statistics (a
    shift of the whole batch would vanish) and float sums whose rounding depends on the
    image's position."""
    features = image_features(batch)
    assert features.shape == (len(batch), len(FEATURE_NAMES))
    assert np.all((features >= 0) & (features <= 1)), features
    i = data.draw(st.integers(0, len(batch) - 1))
    assert np.array_equal(image_features(batch[i: i + 1])[0], features[i])


@st.composite
def two_batches(draw, *, min_batch: int = 2, max_batch: int = 24):
    """Two non-empty image batches of one shape (a generated batch cut in two)."""
    batch = draw(gen.images(SCHEMA, min_batch=min_batch, max_batch=max_batch))
    cut = draw(st.integers(1, len(batch) - 1))
    return batch[:cut], batch[cut:]


@given(batches=two_batches())
def test_ks_statistics_and_pvalues_agree_with_scipy(batches):
    """Every KS row of the report (each feature, and every pixel position) has the
    statistic and p-value of ``scipy.stats.ks_2samp(method="asymp")``, and the pixel row is
    the Bonferroni-combined smallest p-value. Catches an off-by-one CDF (side="left"),
    a one-sided statistic, the wrong effective sample size in the p-value."""
    reference, current = batches
    report = drift_report(reference, current, config=DriftConfig(correction="none"))
    if len(reference) == len(current) == 1:  # scipy: NaN (effective size 0); we: no evidence
        assert all(row.p_value == 1.0 for row in report.rows)
        return
    ref_f, cur_f = image_features(reference), image_features(current)
    for j, name in enumerate(FEATURE_NAMES):
        expected = sps.ks_2samp(ref_f[:, j], cur_f[:, j], method="asymp")
        row = report[name]
        assert row.statistic == pytest.approx(expected.statistic, abs=1e-12), name
        assert row.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300), name
    n1, n2 = len(reference), len(current)
    ref_px, cur_px = reference.reshape(n1, -1), current.reshape(n2, -1)
    d, p = mstats.ks_2samp_uint8_columns(ref_px, cur_px)
    for position in range(ref_px.shape[1]):
        expected = sps.ks_2samp(ref_px[:, position], cur_px[:, position], method="asymp")
        assert d[position] == pytest.approx(expected.statistic, abs=1e-12)
        assert p[position] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert report["pixels"].statistic == pytest.approx(d.max(), abs=1e-12)
    assert report["pixels"].p_value == pytest.approx(min(1.0, p.min() * p.size), rel=1e-9)


@given(reference=gen.labels(6, min_size=1, max_size=40),
       current=gen.labels(6, min_size=1, max_size=40))
def test_chi_squared_agrees_with_scipy(reference, current):
    """The chi-squared row on labels equals ``scipy.stats.chi2_contingency`` (no Yates
    correction) on the 2 x K table of the classes present. Catches expected counts
    from the wrong margins, a wrong number of degrees of freedom, empty classes kept."""
    statistic, p, dof = mstats.chi2_homogeneity(reference, current)
    classes = np.union1d(reference, current)
    table = np.array([[np.sum(reference == c) for c in classes],
                      [np.sum(current == c) for c in classes]])
    if len(classes) == 1:
        assert (statistic, p, dof) == (0.0, 1.0, 0)
        return
    expected = sps.chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert dof == expected.dof


@given(batches=two_batches(min_batch=2, max_batch=16), data=st.data())
def test_drift_report_is_invariant_to_sample_order(batches, data):
    """Shuffling the images (with their labels and predictions) within either batch leaves
    the report exactly unchanged. Catches a report that pairs reference image i with
    current image i, or any use of the batch's order."""
    reference, current = batches
    ref_labels = data.draw(gen.labels(4, size=len(reference)))
    cur_labels = data.draw(gen.labels(4, size=len(current)))
    ref_order = np.array(data.draw(st.permutations(range(len(reference)))), dtype=np.intp)
    cur_order = np.array(data.draw(st.permutations(range(len(current)))), dtype=np.intp)
    before = drift_report(reference, current, reference_labels=ref_labels,
                          current_labels=cur_labels, reference_predictions=ref_labels,
                          current_predictions=cur_labels)
    after = drift_report(reference[ref_order], current[cur_order],
                         reference_labels=ref_labels[ref_order],
                         current_labels=cur_labels[cur_order],
                         reference_predictions=ref_labels[ref_order],
                         current_predictions=cur_labels[cur_order])
    assert after.to_dict() == before.to_dict()


@given(batches=two_batches())
def test_drift_report_is_neutral_on_identical_batches(batches):
    """A batch compared with itself: every statistic and PSI is 0, every p-value 1, no
    drift. Catches PSI without smoothing (log 0), NaN from constant features."""
    reference, _ = batches
    report = drift_report(reference, reference.copy())
    for row in report.rows:
        assert (row.statistic, row.psi, row.p_value, row.drifted) == (0.0, 0.0, 1.0, False), row


@given(p=st.lists(st.floats(0, 1), min_size=1, max_size=30),
       method=st.sampled_from(("holm", "bonferroni", "fdr_bh")))
def test_adjusted_pvalues_are_valid_and_agree_with_scipy(p, method):
    """Adjusted p-values lie in [p, 1], keep the order of the raw ones, and for
    Benjamini-Hochberg equal ``scipy.stats.false_discovery_control``. Catches a correction
    that lowers a p-value, or that breaks the ranks."""
    raw = np.array(p)
    adjusted = mstats.adjust_pvalues(raw, method)
    assert np.all(adjusted >= raw) and np.all(adjusted <= 1)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-15)
    if method == "fdr_bh":
        np.testing.assert_allclose(adjusted, sps.false_discovery_control(raw), rtol=1e-12)


# --------------------------------------------------------------------------- fairness


@st.composite
def fairness_data(draw, *, num_classes: int | None = None, min_size: int = 2,
                  max_size: int = 60, max_groups: int = 4):
    """(predictions, labels, groups) with at least two groups."""
    classes = num_classes or draw(st.integers(2, 4))
    n = draw(st.integers(min_size, max_size))
    predictions = draw(gen.labels(classes, size=n))
    labels = draw(gen.labels(classes, size=n))
    groups = draw(gen.labels(draw(st.integers(2, max_groups)), size=n))
    groups[:2] = [0, 1]  # two groups at least
    return predictions, labels, groups


@given(data=fairness_data())
def test_fairness_metrics_are_in_their_ranges(data):
    """Differences and per-group accuracies lie in [0, 1], the disparate impact ratio in
    [0, 1]. Catches a signed difference (min - max), a ratio the wrong way up (max / min),
    rates divided by the wrong count."""
    report = fairness_report(*data)
    assert 0 <= report.demographic_parity_difference <= 1
    assert 0 <= report.equalized_odds_difference <= 1
    assert 0 <= report.disparate_impact_ratio <= 1
    assert 0 <= report.accuracy_gap <= 1
    assert all(0 <= a <= 1 for a in report.per_group_accuracy.values())


@given(block=fairness_data(max_size=20), copies=st.integers(2, 4), data=st.data())
def test_fairness_metrics_are_neutral_when_predictions_ignore_the_group(block, copies, data):
    """When every group holds the same (label, prediction) pairs (each in its own shuffled
    order), the group tells nothing: both differences and the accuracy gap are 0 and the
    disparate impact ratio is 1. Catches metrics computed on the whole data set instead
    of per group, or mixed-up group memberships."""
    predictions, labels, _ = block
    parts = []
    for g in range(copies):
        order = np.array(data.draw(st.permutations(range(len(labels)))), dtype=np.intp)
        parts.append((predictions[order], labels[order], np.full(len(labels), g)))
    report = fairness_report(*(np.concatenate(column) for column in zip(*parts, strict=True)))
    assert report.demographic_parity_difference == pytest.approx(0, abs=1e-12)
    assert report.equalized_odds_difference == pytest.approx(0, abs=1e-12)
    assert report.disparate_impact_ratio == pytest.approx(1, abs=1e-12)
    assert report.accuracy_gap == pytest.approx(0, abs=1e-12)


@given(data=fairness_data(), names=st.permutations(["x", "y", "z", "w"]))
def test_fairness_metrics_are_unchanged_by_renaming_groups(data, names):
    """Renaming the groups (a permutation of names, ints to strings) changes no metric and
    only the names of the per-group accuracies. Catches a metric anchored to the first or
    a 'privileged' group by position."""
    predictions, labels, groups = data
    renamed = np.array([names[g] for g in groups])
    before = fairness_report(predictions, labels, groups)
    after = fairness_report(predictions, labels, renamed)
    for metric in ("demographic_parity_difference", "equalized_odds_difference",
                   "disparate_impact_ratio", "accuracy_gap"):
        assert getattr(after, metric) == pytest.approx(getattr(before, metric), abs=1e-12)
    assert {names[int(g)]: a for g, a in before.per_group_accuracy.items()} == \
        after.per_group_accuracy


@st.composite
def binary_data_with_both_labels_per_group(draw):
    """Binary (predictions, labels, groups) where every group has both labels (so every
    group's TPR and FPR are defined, as fairlearn's definitions need)."""
    predictions, labels, groups = draw(fairness_data(num_classes=2))
    names = np.unique(groups)
    extra = draw(gen.labels(2, size=2 * len(names)))
    return (np.concatenate([predictions, extra]),
            np.concatenate([labels, np.tile([0, 1], len(names))]),
            np.concatenate([groups, np.repeat(names, 2)]))


@pytest.fixture(scope="module")
def fairlearn():
    """fairlearn's metrics (a test-only dependency, in the ``dev`` extra); imported once."""
    return pytest.importorskip("fairlearn.metrics")


@given(data=binary_data_with_both_labels_per_group(), positive=st.sampled_from([None, 0, 1]))
def test_fairness_metrics_agree_with_fairlearn(fairlearn, data, positive):
    """On binary data the metrics equal fairlearn's ``demographic_parity_difference``,
    ``equalized_odds_difference``, ``demographic_parity_ratio`` and ``MetricFrame``
    accuracy by group (where fairlearn's rates are defined: every group has both labels and
    some group is selected). Catches TPR and FPR swapped, a selection rate over labels
    instead of predictions, the positive class ignored."""
    from sklearn.metrics import accuracy_score

    predictions, labels, groups = data
    pos = 1 if positive is None else positive
    report = fairness_report(predictions, labels, groups, positive=positive)
    # fairlearn's metrics take 0/1 with 1 the positive class: binarise for it
    selected, actual = (predictions == pos).astype(int), (labels == pos).astype(int)
    assert report.demographic_parity_difference == pytest.approx(
        fairlearn.demographic_parity_difference(actual, selected, sensitive_features=groups),
        abs=1e-12)
    assert report.equalized_odds_difference == pytest.approx(
        fairlearn.equalized_odds_difference(actual, selected, sensitive_features=groups),
        abs=1e-12)
    if selected.any():
        assert report.disparate_impact_ratio == pytest.approx(
            fairlearn.demographic_parity_ratio(actual, selected, sensitive_features=groups),
            abs=1e-12)
    frame = fairlearn.MetricFrame(metrics=accuracy_score, y_true=labels, y_pred=predictions,
                                  sensitive_features=groups)
    expected = {str(g): float(a) for g, a in frame.by_group.items()}
    assert report.per_group_accuracy == pytest.approx(expected, abs=1e-12)


@given(data=fairness_data(num_classes=4, min_size=8))
def test_multiclass_fairness_is_the_worst_one_vs_rest_class(data):
    """Multi-class data without a positive class: each metric is the worst over the
    classes scored one-vs-rest, each of which matches the binary computation. Catches a
    multi-class report that looks at class 1 only."""
    predictions, labels, groups = data
    report = fairness_report(predictions, labels, groups)
    classes = np.union1d(predictions, labels)
    per_class = [fairness_report(predictions, labels, groups, positive=int(c)) for c in classes]
    assert report.demographic_parity_difference == pytest.approx(
        max(r.demographic_parity_difference for r in per_class), abs=1e-12)
    assert report.equalized_odds_difference == pytest.approx(
        max(r.equalized_odds_difference for r in per_class), abs=1e-12)
    assert report.disparate_impact_ratio == pytest.approx(
        min(r.disparate_impact_ratio for r in per_class), abs=1e-12)


# --------------------------------------------------------------------------- bad input

DEFECTS = ("mismatched_length", "single_group", "empty", "nan")


@st.composite
def bad_fairness_input(draw):
    """(predictions, labels, groups, field it trips) with exactly one defect."""
    predictions, labels, groups = draw(fairness_data(num_classes=2, min_size=3))
    defect = draw(st.sampled_from(DEFECTS))
    column = draw(st.sampled_from(["predictions", "labels", "groups"]))
    arrays = {"predictions": predictions, "labels": labels, "groups": groups}
    if defect == "mismatched_length":
        arrays[column] = arrays[column][:-1]
    elif defect == "single_group":
        arrays["groups"] = np.zeros_like(groups)
        column = "groups"
    elif defect == "empty":
        arrays[column] = arrays[column][:0]
    else:
        values = arrays[column].astype(np.float64)
        values[draw(st.integers(0, len(values) - 1))] = np.nan
        arrays[column] = values
    return arrays, column


@given(case=bad_fairness_input())
def test_bad_fairness_input_raises_an_error_naming_the_field(case):
    """Mismatched lengths, a single group, an empty array or a NaN raise
    ``MonitorInputError`` (a ``ValueError``) naming the offending field, never a bare
    numpy error or silently wrong numbers."""
    arrays, field = case
    with pytest.raises(MonitorInputError) as caught:
        fairness_report(arrays["predictions"], arrays["labels"], arrays["groups"])
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: expected")


@given(batches=two_batches(min_batch=3),
       defect=st.sampled_from(("mismatched_length", "empty", "nan", "one_sided", "shape")),
       side=st.sampled_from(("reference", "current")))
def test_bad_drift_input_raises_an_error_naming_the_field(batches, defect, side):
    """Labels of the wrong length, an empty batch, NaN pixels or labels, labels for one
    batch only, or batches of different image sizes raise ``MonitorInputError`` naming the
    field."""
    reference, current = batches
    kwargs = {"reference": reference, "current": current,
              "reference_labels": np.zeros(len(reference), np.int64),
              "current_labels": np.zeros(len(current), np.int64)}
    if defect == "mismatched_length":
        kwargs[f"{side}_labels"] = kwargs[f"{side}_labels"][:-1]
        field = f"{side}_labels"
    elif defect == "empty":
        kwargs[side] = kwargs[side][:0]
        field = side
    elif defect == "nan":
        labels = kwargs[f"{side}_labels"].astype(np.float64)
        labels[-1] = np.nan
        kwargs[f"{side}_labels"] = labels
        field = f"{side}_labels"
    elif defect == "one_sided":
        kwargs[f"{side}_labels"] = None
        field = f"{side}_labels"
    else:
        kwargs["current"] = np.zeros((len(current), 3, 2), np.uint8)
        assume(reference.shape[1:] != (3, 2))
        field = "current"
    with pytest.raises(MonitorInputError) as caught:
        drift_report(**kwargs)
    assert caught.value.field == field
