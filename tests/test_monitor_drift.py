"""Example-based tests of :mod:`mlprop.monitor` drift: features, statistics, shifts, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from scipy import stats as sps

from mlprop.errors import MlpropError
from mlprop.monitor import (
    FEATURE_NAMES,
    SHIFTS,
    DriftConfig,
    MonitorInputError,
    Shift,
    apply_shift,
    drift_report,
    image_features,
    parse_shift,
)
from mlprop.monitor import stats as mstats


@pytest.fixture(scope="module")
def digits():
    from mlprop.digits.data import load_default_dataset

    return load_default_dataset()


@pytest.fixture(scope="module")
def halves(digits):
    images, labels = digits
    order = np.random.default_rng(0).permutation(len(images))
    a, b = order[: len(images) // 2], order[len(images) // 2:]
    return images[a], labels[a], images[b], labels[b]


# --------------------------------------------------------------------------- features


def test_features_of_hand_made_images():
    black = np.zeros((5, 5), np.uint8)
    white = np.full((5, 5), 255, np.uint8)
    corner = black.copy()
    corner[4, 0] = 255  # bottom-left pixel
    half = black.copy()
    half[:, 3:] = 200  # the right two columns, ink (200 >= 128)
    features = image_features(np.stack([black, white, corner, half]))
    assert features.shape == (4, len(FEATURE_NAMES))
    mean, contrast, ink, row, col = features.T
    np.testing.assert_allclose(mean, [0, 1, 1 / 25, 10 * 200 / 255 / 25])
    np.testing.assert_allclose(contrast[:2], [0, 0])
    assert contrast[2] == pytest.approx(np.std(corner / 255.0))
    np.testing.assert_allclose(ink, [0, 1, 1 / 25, 10 / 25])
    np.testing.assert_allclose(row, [0.5, 0.5, 1.0, 0.5])  # black: 0.5 by convention
    np.testing.assert_allclose(col, [0.5, 0.5, 0.0, 3.5 / 4])


def test_features_of_a_single_row_or_column_centre_at_one_half():
    features = image_features(np.full((2, 1, 6), 9, np.uint8))
    assert (features[:, 3] == 0.5).all()
    assert features[:, 4] == pytest.approx(0.5)


def test_features_are_batch_independent():
    images = np.random.default_rng(1).integers(0, 256, (30, 7, 9), dtype=np.uint8)
    whole = image_features(images)
    for i in (0, 13, 29):
        assert (image_features(images[i: i + 1])[0] == whole[i]).all()


# --------------------------------------------------------------------------- statistics


def test_ks_uint8_columns_equal_the_sorting_version_and_scipy():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 6, (40, 5), dtype=np.uint8)  # many ties
    b = rng.integers(1, 7, (31, 5), dtype=np.uint8)
    d8, p8 = mstats.ks_2samp_uint8_columns(a, b)
    d, p = mstats.ks_2samp_columns(a, b)
    np.testing.assert_array_equal(d8, d)
    np.testing.assert_allclose(p8, p)
    for j in range(5):
        expected = sps.ks_2samp(a[:, j], b[:, j], method="asymp")
        assert d[j] == pytest.approx(expected.statistic)
        assert p[j] == pytest.approx(expected.pvalue)


def test_ks_count_below_matches_brute_force():
    rng = np.random.default_rng(3)
    statistics = rng.uniform(0, 0.5, 200)
    for threshold in (1e-9, 1e-3, 0.05, 0.5, 1.0):
        brute = int(np.sum(mstats.ks_pvalue(statistics, 80, 90) < threshold))
        assert mstats.ks_count_below(statistics, 80, 90, threshold) == brute


def test_ks_pvalue_is_one_for_one_observation_each():
    assert mstats.ks_pvalue(1.0, 1, 1) == 1.0


def test_chi2_homogeneity_hand_computed():
    # table [[10, 0], [0, 10]]: expected 5 everywhere, chi2 = 4 * 25 / 5 = 20, dof 1
    statistic, p, dof = mstats.chi2_homogeneity(np.zeros(10, int), np.ones(10, int))
    assert (statistic, dof) == (20.0, 1)
    assert p == pytest.approx(sps.chi2.sf(20, 1))
    assert mstats.chi2_homogeneity(np.full(3, 7), np.full(4, 7)) == (0.0, 1.0, 0)


def test_psi_hand_computed_and_properties():
    assert mstats.psi_from_counts([50, 50], [50, 50]) == 0
    # 0.5/0.5 -> 0.8/0.2: (0.3 ln 1.6) + (-0.3 ln 0.4)
    expected = 0.3 * np.log(1.6) - 0.3 * np.log(0.4)
    assert mstats.psi_from_counts([5, 5], [8, 2]) == pytest.approx(expected)
    assert mstats.psi_from_counts([10, 0], [0, 10]) > 0  # empty bins floored, finite
    assert np.isfinite(mstats.psi_from_counts([10, 0], [0, 10]))
    x = np.random.default_rng(4).normal(size=500)
    assert mstats.psi(x, x) == 0
    assert mstats.psi(x, x + 1) > 0.25
    assert mstats.psi_categorical(np.array([1, 1, 2]), np.array([2, 1, 1])) == 0


def test_adjust_pvalues_hand_computed():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(mstats.adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 1])
    # Holm: sorted 0.01*4, 0.03*3, 0.04*2, 0.5*1 -> 0.04, 0.09, 0.09 (monotone), 0.5
    np.testing.assert_allclose(mstats.adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(mstats.adjust_pvalues(p, "fdr_bh"),
                               sps.false_discovery_control(p))
    np.testing.assert_array_equal(mstats.adjust_pvalues(p, "none"), p)
    with pytest.raises(ValueError, match="unknown correction"):
        mstats.adjust_pvalues(p, "sidak")


# --------------------------------------------------------------------------- shifts


def test_shifts_are_the_identity_at_size_zero(digits):
    images = digits[0][:20]
    for name in SHIFTS:
        out = apply_shift(images, Shift(name, 0))
        assert out is not images
        np.testing.assert_array_equal(out, images)


def test_brightness_adds_and_clips():
    images = np.array([[[0, 100, 250]]], np.uint8)
    np.testing.assert_array_equal(apply_shift(images, "brightness:0.1"), [[[26, 126, 255]]])
    np.testing.assert_array_equal(apply_shift(images, "brightness:-0.1"), [[[0, 74, 224]]])


def test_contrast_scales_around_each_images_mean():
    images = np.array([[[100, 200]], [[0, 0]]], np.uint8)
    np.testing.assert_array_equal(apply_shift(images, "contrast:0.5"), [[[125, 175]], [[0, 0]]])
    np.testing.assert_array_equal(apply_shift(images, "contrast:1"), [[[150, 150]], [[0, 0]]])


def test_rotation_by_90_degrees_is_rot90_counter_clockwise(digits):
    images = digits[0][:5]
    np.testing.assert_array_equal(apply_shift(images, "rotation:90"),
                                  np.rot90(images, 1, axes=(1, 2)))


def test_small_rotation_keeps_the_ink(digits):
    """mode='grid-constant': a tiny rotation does not blank the border rows."""
    images = digits[0]
    rotated = apply_shift(images, "rotation:0.5")
    assert abs(rotated.mean() - images.mean()) < 0.5
    expected = ndimage.rotate(images.astype(float), 0.5, axes=(2, 1), reshape=False, order=1,
                              mode="grid-constant")
    np.testing.assert_array_equal(rotated, np.clip(np.rint(expected), 0, 255))


def test_noise_is_seeded(digits):
    images = digits[0][:10]
    a = apply_shift(images, "noise:0.1", seed=5)
    assert (a == apply_shift(images, "noise:0.1", seed=5)).all()
    assert (a != apply_shift(images, "noise:0.1", seed=6)).any()
    assert a.dtype == np.uint8 and a.shape == images.shape


@pytest.mark.parametrize("text, field", [
    ("brightness", "shift"), ("blur:0.1", "shift"), ("noise:abc", "shift"),
    ("noise:-0.1", "shift noise"), ("brightness:2", "shift brightness"),
    ("rotation:nan", "shift rotation"),
])
def test_bad_shifts_name_the_problem(text, field):
    with pytest.raises(MonitorInputError) as caught:
        parse_shift(text)
    assert caught.value.field == field


def test_parse_shift_round_trips():
    assert parse_shift("rotation:15") == Shift("rotation", 15.0)
    assert str(parse_shift("brightness:0.3")) == "brightness:0.3"


# --------------------------------------------------------------------------- report


def test_same_distribution_has_no_drift(halves):
    ref, ref_labels, cur, cur_labels = halves
    report = drift_report(ref, cur, reference_labels=ref_labels, current_labels=cur_labels)
    assert not report.drifted, report.format()
    assert [row.name for row in report.rows] == [*FEATURE_NAMES, "pixels", "labels"]
    assert report.n_reference == len(ref) and report.image_shape == (8, 8)


@pytest.mark.parametrize("shift, must_drift", [
    ("brightness:0.3", "mean_intensity"),
    ("contrast:0.5", "contrast"),
    ("noise:0.1", "pixels"),
    ("rotation:15", "pixels"),
])
def test_shifts_are_detected_in_the_right_rows(halves, shift, must_drift):
    ref, _, cur, _ = halves
    report = drift_report(ref, apply_shift(cur, shift, seed=1))
    assert report.drifted
    assert report[must_drift].drifted, report.format()
    assert report[must_drift].p_adjusted < 0.05


def test_label_and_prediction_drift_are_chi_squared_rows(halves):
    ref, ref_labels, cur, cur_labels = halves
    skewed = np.where(cur_labels < 3, 0, cur_labels)  # classes 1, 2 relabelled 0
    report = drift_report(ref, cur, reference_labels=ref_labels, current_labels=cur_labels,
                          reference_predictions=ref_labels, current_predictions=skewed)
    assert not report["labels"].drifted
    assert report["predictions"].drifted and report.drifted_names == ["predictions"]
    assert report["predictions"].test == "chi2"
    assert report["predictions"].psi > 0.25


def test_psi_threshold_gates_significant_but_small_shifts(halves):
    ref, _, cur, _ = halves
    shifted = apply_shift(cur, "brightness:0.002")  # one gray level: significant, tiny
    assert drift_report(ref, shifted).drifted
    gated = drift_report(ref, shifted, config=DriftConfig(psi_threshold=10.0))
    assert not gated.drifted
    assert gated["pixels"].p_adjusted < 0.05


def test_report_serialises_and_formats(halves):
    ref, _, cur, _ = halves
    report = drift_report(ref, apply_shift(cur, "brightness:0.3"))
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["drifted"] is True
    assert payload["config"] == {"alpha": 0.05, "correction": "holm", "psi_threshold": None,
                                 "psi_bins": 10}
    assert {row["name"] for row in payload["rows"]} >= set(FEATURE_NAMES)
    text = report.format()
    assert "verdict: drift in mean_intensity" in text
    with pytest.raises(KeyError, match="no row 'labels'"):
        report["labels"]


def test_correction_none_alarms_more_than_holm(halves):
    ref, _, cur, _ = halves
    plain = drift_report(ref, cur, config=DriftConfig(correction="none"))
    holm = drift_report(ref, cur)
    for a, b in zip(plain.rows, holm.rows, strict=True):
        assert a.p_adjusted == a.p_value <= b.p_adjusted


@pytest.mark.parametrize("kwargs, field", [
    ({"alpha": 0}, "alpha"), ({"alpha": 1.5}, "alpha"), ({"alpha": True}, "alpha"),
    ({"correction": "sidak"}, "correction"), ({"psi_threshold": -1}, "psi_threshold"),
    ({"psi_threshold": float("nan")}, "psi_threshold"), ({"psi_bins": 1}, "psi_bins"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(MonitorInputError) as caught:
        DriftConfig(**kwargs)
    assert caught.value.field == field
    assert isinstance(caught.value, MlpropError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("images, expected", [
    (np.zeros((0, 8, 8), np.uint8), "at least one image"),
    (np.zeros((3, 8), np.uint8), "shape (N, H, W)"),
    (np.zeros((3, 8, 8), np.float32), "uint8"),
    (np.full((3, 8, 8), np.nan), "NaN at index (0, 0, 0)"),
    (np.zeros((3, 0, 8), np.uint8), "at least 1x1"),
])
def test_bad_images_name_the_batch(images, expected):
    good = np.zeros((3, 8, 8), np.uint8)
    with pytest.raises(MonitorInputError, match=r"^current: ") as caught:
        drift_report(good, images)
    assert expected in str(caught.value)


def test_size_mismatch_names_the_current_batch():
    with pytest.raises(MonitorInputError, match=r"current: expected images of the reference's "
                                                r"size 8x8, got 28x28"):
        drift_report(np.zeros((3, 8, 8), np.uint8), np.zeros((3, 28, 28), np.uint8))


def test_labels_must_be_given_for_both_batches_and_match_lengths():
    images = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(MonitorInputError, match=r"^current_labels: expected labels for both"):
        drift_report(images, images, reference_labels=np.zeros(4, int))
    with pytest.raises(MonitorInputError, match=r"^reference_predictions: expected 4 values"):
        drift_report(images, images, reference_predictions=np.zeros(3, int),
                     current_predictions=np.zeros(4, int))
    with pytest.raises(MonitorInputError, match=r"^current_labels: expected integer class"):
        drift_report(images, images, reference_labels=np.zeros(4, int),
                     current_labels=np.full(4, 0.5))
    with pytest.raises(MonitorInputError, match=r"^config: expected a DriftConfig"):
        drift_report(images, images, config={"alpha": 0.1})
