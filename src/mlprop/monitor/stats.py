"""Two-sample tests and effect sizes used by the drift report.

- :func:`ks_2samp_columns` / :func:`ks_2samp_uint8_columns`: the two-sided two-sample
  Kolmogorov–Smirnov statistic of many columns at once, with the asymptotic p-value that
  ``scipy.stats.ks_2samp(..., method="asymp")`` gives (the exact null distribution of a
  one-sample statistic with ``n = round(n1 * n2 / (n1 + n2))``). For ``uint8`` data the
  statistic comes from 256-bin histograms: the same value as from sorting, much faster.
- :func:`chi2_homogeneity`: Pearson's chi-squared test that two samples of categories come
  from one distribution (``scipy.stats.chi2_contingency(table, correction=False)``).
- :func:`psi` / :func:`psi_categorical`: the population stability index.
- :func:`adjust_pvalues`: Holm, Bonferroni or Benjamini–Hochberg corrections.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

__all__ = [
    "CORRECTIONS",
    "PSI_FLOOR",
    "adjust_pvalues",
    "chi2_homogeneity",
    "ks_2samp_columns",
    "ks_2samp_uint8_columns",
    "ks_count_below",
    "ks_pvalue",
    "ks_uint8_statistics",
    "psi",
    "psi_categorical",
    "psi_from_counts",
]

CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "fdr_bh", "none")
"""Multiple-testing corrections :func:`adjust_pvalues` knows."""

PSI_FLOOR = 1e-4
"""Bin proportions are floored at this before the PSI's logarithm (an empty bin is not
an infinite shift)."""


def ks_pvalue(statistic: np.ndarray | float, n1: int, n2: int) -> np.ndarray:
    """Two-sided asymptotic p-value of a two-sample KS statistic (scipy's ``asymp``).

    One observation against one (where scipy's effective size rounds to 0 and it returns
    NaN) is no evidence at all: p = 1.
    """
    m, n = sorted((float(n1), float(n2)), reverse=True)
    en = np.round(m * n / (m + n))
    if en < 1:
        return np.ones_like(np.asarray(statistic, dtype=np.float64))
    p = sps.kstwo.sf(np.asarray(statistic, dtype=np.float64), en)
    return np.clip(p, 0.0, 1.0)


def ks_2samp_columns(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic and p-value of each column: ``(n1, k)`` against ``(n2, k)`` -> two ``(k,)``."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    n1, n2 = reference.shape[0], current.shape[0]
    statistics = np.empty(reference.shape[1])
    for j in range(reference.shape[1]):
        a, b = np.sort(reference[:, j]), np.sort(current[:, j])
        pooled = np.concatenate([a, b])
        cdf1 = np.searchsorted(a, pooled, side="right") / n1
        cdf2 = np.searchsorted(b, pooled, side="right") / n2
        statistics[j] = np.abs(cdf1 - cdf2).max()
    return statistics, ks_pvalue(statistics, n1, n2)


def _uint8_cdfs(values: np.ndarray) -> np.ndarray:
    """``(256, k)`` empirical CDFs of the columns of a ``uint8 (n, k)`` array."""
    n, k = values.shape
    offsets = np.arange(k, dtype=np.int64) * 256
    flat = (values.astype(np.int64) + offsets).ravel()
    counts = np.bincount(flat, minlength=256 * k).reshape(k, 256).T
    return np.cumsum(counts, axis=0) / n


def ks_uint8_statistics(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """KS statistics of ``uint8 (n1, k)`` against ``uint8 (n2, k)`` columns, via 256-bin
    histograms (exactly the value sorting gives: the CDFs only step at integers)."""
    return np.abs(_uint8_cdfs(reference) - _uint8_cdfs(current)).max(axis=0)


def ks_2samp_uint8_columns(
    reference: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ks_2samp_columns` for ``uint8 (n, k)`` columns, via 256-bin histograms."""
    statistics = ks_uint8_statistics(reference, current)
    return statistics, ks_pvalue(statistics, reference.shape[0], current.shape[0])


def ks_count_below(statistics: np.ndarray, n1: int, n2: int, threshold: float) -> int:
    """How many of ``statistics`` have a :func:`ks_pvalue` below ``threshold``.

    The p-value falls as the statistic grows, so a binary search over the distinct
    statistics needs O(log k) evaluations of the KS distribution (milliseconds each at
    large ``n``) instead of ``k``.
    """
    distinct = np.unique(np.asarray(statistics, dtype=np.float64))  # ascending
    lo, hi = 0, len(distinct)  # find the first distinct value whose p-value is < threshold
    while lo < hi:
        mid = (lo + hi) // 2
        if float(ks_pvalue(distinct[mid], n1, n2)) < threshold:
            hi = mid
        else:
            lo = mid + 1
    if lo == len(distinct):
        return 0
    return int(np.count_nonzero(np.asarray(statistics) >= distinct[lo]))


def _category_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    categories, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    inverse = inverse.ravel()
    k = len(categories)
    ref = np.bincount(inverse[: len(reference)], minlength=k)
    cur = np.bincount(inverse[len(reference):], minlength=k)
    return ref, cur


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-squared statistic, p-value and degrees of freedom of the ``2 x K`` table
    of category counts (categories present in either sample); ``(0, 1, 0)`` for one category.
    """
    ref, cur = _category_counts(np.asarray(reference), np.asarray(current))
    table = np.stack([ref, cur]).astype(np.float64)
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(sps.chi2.sf(statistic, dof)), dof


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two histograms over the same bins: ``sum((c - r) * ln(c / r))`` on proportions
    floored at :data:`PSI_FLOOR`. Zero for equal proportions, never negative."""
    r = np.maximum(np.asarray(reference_counts, np.float64) / np.sum(reference_counts), PSI_FLOOR)
    c = np.maximum(np.asarray(current_counts, np.float64) / np.sum(current_counts), PSI_FLOOR)
    return float(max(0.0, np.sum((c - r) * np.log(c / r))))


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """PSI of a continuous variable over (at most) ``bins`` quantile bins of the reference.

    Tied quantiles merge bins, so a variable with few distinct values gets fewer bins.
    """
    reference, current = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    inner = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    ref = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1)
    cur = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1)
    return psi_from_counts(ref, cur)


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of a categorical variable over the categories present in either sample."""
    return psi_from_counts(*_category_counts(np.asarray(reference), np.asarray(current)))


def adjust_pvalues(p_values: np.ndarray, method: str = "holm") -> np.ndarray:
    """Family-wise (``holm``, ``bonferroni``) or false-discovery (``fdr_bh``) adjusted
    p-values, in the input's order; ``none`` returns them unchanged. Each is in ``[p, 1]``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; known: {list(CORRECTIONS)}")
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        stepped = np.maximum.accumulate(np.minimum(1.0, ranked * (m - np.arange(m))))
    else:  # fdr_bh
        scaled = ranked * m / np.arange(1, m + 1)
        stepped = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return np.maximum(adjusted, p)
