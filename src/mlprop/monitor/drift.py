"""Data drift and prediction drift: compare a reference batch with a current one.

:func:`drift_report` tests, between a reference and a current batch of ``uint8 (N, H, W)``
images (and optionally their labels and predicted classes):

- each summary feature of :mod:`mlprop.monitor.features` (mean intensity, contrast, ink
  area, centre of mass), with a two-sample Kolmogorov–Smirnov test;
- the per-pixel intensity distribution (row ``pixels``): a KS test at every pixel position,
  Bonferroni-combined into one p-value (``min(1, P * min p)``) so that one row stands for all
  ``P = H * W`` positions; its PSI is that of the pooled 16-bin intensity histogram;
- ``labels`` and ``predictions``: Pearson's chi-squared test of homogeneity of the class
  counts.

The p-values of all rows form one family, adjusted by ``config.correction`` (Holm by
default: the chance of any false alarm on two samples of one distribution is at most
``alpha``). A row has drifted when its adjusted p-value is below ``alpha`` and, if
``config.psi_threshold`` is set, its population stability index reaches that threshold
(an effect-size floor: with large samples, tiny harmless shifts are significant).

Everything is invariant to the order of the images within each batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlprop.monitor import stats
from mlprop.monitor.features import FEATURE_NAMES, image_features
from mlprop.monitor.inputs import (
    MonitorInputError,
    check_categories,
    check_images,
    check_same_length,
)

__all__ = ["PIXEL_BINS", "DriftConfig", "DriftReport", "FeatureDrift", "drift_report"]

PIXEL_BINS = 16
"""Equal-width bins of the pooled intensity histogram behind the ``pixels`` row's PSI."""


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of a drift report.

    - ``alpha``: significance level of the whole family of tests (after correction);
    - ``correction``: ``holm`` (default), ``bonferroni``, ``fdr_bh`` or ``none``;
    - ``psi_threshold``: if set, a row drifts only when its PSI is at least this too
      (0.1: moderate, 0.25: major shift, by the usual rule of thumb);
    - ``psi_bins``: quantile bins of the reference for a feature's PSI.
    """

    alpha: float = 0.05
    correction: str = "holm"
    psi_threshold: float | None = None
    psi_bins: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not (
                0 < self.alpha < 1):
            raise MonitorInputError("alpha", "a number strictly between 0 and 1",
                                    repr(self.alpha))
        if self.correction not in stats.CORRECTIONS:
            raise MonitorInputError("correction", f"one of {list(stats.CORRECTIONS)}",
                                    repr(self.correction))
        if self.psi_threshold is not None and (
                isinstance(self.psi_threshold, bool)
                or not isinstance(self.psi_threshold, int | float)
                or not math.isfinite(self.psi_threshold) or self.psi_threshold < 0):
            raise MonitorInputError("psi_threshold", "None or a finite number >= 0",
                                    repr(self.psi_threshold))
        if isinstance(self.psi_bins, bool) or not isinstance(self.psi_bins, int) or (
                self.psi_bins < 2):
            raise MonitorInputError("psi_bins", "an integer >= 2", repr(self.psi_bins))


@dataclass(frozen=True)
class FeatureDrift:
    """One row of a drift report."""

    name: str
    test: str  # "ks", "ks-per-pixel" or "chi2"
    statistic: float
    p_value: float
    p_adjusted: float
    psi: float
    drifted: bool
    detail: str = ""


@dataclass(frozen=True)
class DriftReport:
    """Per-row statistics and verdicts; ``drifted`` when any row has drifted."""

    rows: tuple[FeatureDrift, ...]
    config: DriftConfig
    n_reference: int
    n_current: int
    image_shape: tuple[int, int] = field(default=(0, 0))

    @property
    def drifted(self) -> bool:
        return any(row.drifted for row in self.rows)

    @property
    def drifted_names(self) -> list[str]:
        return [row.name for row in self.rows if row.drifted]

    def __getitem__(self, name: str) -> FeatureDrift:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row {name!r} in this drift report; rows: "
                       f"{[row.name for row in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "image_shape": list(self.image_shape),
            "config": asdict(self.config),
            "rows": [asdict(row) for row in self.rows],
        }

    def format(self) -> str:
        """A plain-text table, one row per test, and a one-line verdict."""
        head = (f"drift report: {self.n_reference} reference vs {self.n_current} current "
                f"images {self.image_shape[0]}x{self.image_shape[1]}; alpha={self.config.alpha} "
                f"({self.config.correction})"
                + (f", psi >= {self.config.psi_threshold}"
                   if self.config.psi_threshold is not None else ""))
        lines = [head, f"{'row':<15} {'test':<12} {'statistic':>10} {'p':>10} {'p adj':>10} "
                       f"{'psi':>8}  verdict"]
        for row in self.rows:
            verdict = "DRIFT" if row.drifted else "ok"
            lines.append(f"{row.name:<15} {row.test:<12} {row.statistic:>10.4f} "
                         f"{row.p_value:>10.3g} {row.p_adjusted:>10.3g} {row.psi:>8.4f}  "
                         f"{verdict}" + (f"  ({row.detail})" if row.detail else ""))
        names = self.drifted_names
        lines.append(f"verdict: drift in {', '.join(names)}" if names else "verdict: no drift")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Test:
    name: str
    test: str
    statistic: float
    p_value: float
    psi: float
    detail: str = ""


def _pixel_test(reference: np.ndarray, current: np.ndarray, alpha: float) -> _Test:
    """KS at every pixel position, Bonferroni-combined: ``min(1, P * min_j p_j)``.

    All positions share the sample sizes, so the smallest p-value is that of the largest
    statistic, and the positions with ``p_j * P < alpha`` are found by a binary search over
    the statistics: a few calls to the KS distribution instead of ``P`` (each costs
    milliseconds at large ``n``).
    """
    n1, h, w = reference.shape
    n2, positions = current.shape[0], h * w
    d = stats.ks_uint8_statistics(reference.reshape(n1, positions),
                                  current.reshape(n2, positions))
    worst = int(np.argmax(d))
    combined = float(min(1.0, positions * float(stats.ks_pvalue(d[worst], n1, n2))))
    shifted = stats.ks_count_below(d, n1, n2, alpha / positions) if combined < alpha else 0
    hist_ref = np.bincount(reference.ravel() // (256 // PIXEL_BINS), minlength=PIXEL_BINS)
    hist_cur = np.bincount(current.ravel() // (256 // PIXEL_BINS), minlength=PIXEL_BINS)
    detail = f"{shifted}/{positions} positions with Bonferroni p < {alpha}"
    if d[worst] > 0:
        detail += f"; most shifted: row {worst // w}, col {worst % w}"
    return _Test("pixels", "ks-per-pixel", float(d[worst]), combined,
                 stats.psi_from_counts(hist_ref, hist_cur), detail)


def _category_test(name: str, reference: np.ndarray, current: np.ndarray) -> _Test:
    statistic, p, dof = stats.chi2_homogeneity(reference, current)
    return _Test(name, "chi2", statistic, p, stats.psi_categorical(reference, current),
                 f"{dof + 1} classes")


def _paired(name: str, reference: Any, current: Any, n_reference: int,
            n_current: int) -> tuple[np.ndarray, np.ndarray] | None:
    if reference is None and current is None:
        return None
    if reference is None or current is None:
        missing = f"reference_{name}" if reference is None else f"current_{name}"
        raise MonitorInputError(missing, f"{name} for both batches or for neither",
                                "None while the other batch has them")
    ref = check_categories(reference, f"reference_{name}")
    cur = check_categories(current, f"current_{name}")
    check_same_length([("reference", np.empty(n_reference)), (f"reference_{name}", ref)])
    check_same_length([("current", np.empty(n_current)), (f"current_{name}", cur)])
    return ref, cur


def drift_report(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    reference_labels: Any = None,
    current_labels: Any = None,
    reference_predictions: Any = None,
    current_predictions: Any = None,
    config: DriftConfig | None = None,
) -> DriftReport:
    """Test whether ``current`` images (labels, predictions) drifted from ``reference``.

    Images: ``uint8 (N, H, W)``, ``N >= 1``, both batches the same ``H x W``. Labels and
    predictions: 1-D class indices, one per image, given for both batches or neither.
    Bad input raises :class:`~mlprop.monitor.inputs.MonitorInputError` naming the field.
    """
    config = DriftConfig() if config is None else config
    if not isinstance(config, DriftConfig):
        raise MonitorInputError("config", "a DriftConfig", type(config).__name__)
    reference = check_images(reference, "reference")
    current = check_images(current, "current")
    if reference.shape[1:] != current.shape[1:]:
        raise MonitorInputError("current", f"images of the reference's size "
                                f"{reference.shape[1]}x{reference.shape[2]}",
                                f"{current.shape[1]}x{current.shape[2]}")
    labels = _paired("labels", reference_labels, current_labels, len(reference), len(current))
    predictions = _paired("predictions", reference_predictions, current_predictions,
                          len(reference), len(current))

    ref_features = image_features(reference, field="reference")
    cur_features = image_features(current, field="current")
    d, p = stats.ks_2samp_columns(ref_features, cur_features)
    tests = [
        _Test(name, "ks", float(d[j]), float(p[j]),
              stats.psi(ref_features[:, j], cur_features[:, j], bins=config.psi_bins))
        for j, name in enumerate(FEATURE_NAMES)
    ]
    tests.append(_pixel_test(reference, current, config.alpha))
    if labels is not None:
        tests.append(_category_test("labels", *labels))
    if predictions is not None:
        tests.append(_category_test("predictions", *predictions))

    adjusted = stats.adjust_pvalues(np.array([t.p_value for t in tests]), config.correction)
    rows = tuple(
        FeatureDrift(
            name=t.name, test=t.test, statistic=t.statistic, p_value=t.p_value,
            p_adjusted=float(q), psi=t.psi,
            drifted=bool(q < config.alpha and (config.psi_threshold is None
                                               or t.psi >= config.psi_threshold)),
            detail=t.detail,
        )
        for t, q in zip(tests, adjusted, strict=True)
    )
    return DriftReport(rows, config, len(reference), len(current),
                       (int(reference.shape[1]), int(reference.shape[2])))
