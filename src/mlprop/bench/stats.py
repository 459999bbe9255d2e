"""Comparison statistics: per-benchmark HEAD/BASE ratios over lockstep jobs, their bootstrap
interval and verdict, the text table, and reading pytest-benchmark JSON.

A regression is flagged only when the median ratio exceeds ``1 + threshold`` *and* the
bootstrap interval of that median lies above 1, so one noisy job neither makes nor hides a
regression.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlprop.errors import MlpropError

# ---------------------------------------------------------------------------------------
# Summaries of paired rounds


def bootstrap_median_interval(values: Sequence[float], *, confidence: float = 0.95,
                              resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values`` (seeded, reproducible)."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("bootstrap_median_interval: no values")
    if data.size == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, data.size, (resamples, data.size))], axis=1)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(medians, tail)), float(np.quantile(medians, 1.0 - tail))


@dataclass(frozen=True)
class BenchmarkComparison:
    """One benchmark's BASE and HEAD medians over the rounds, and the verdict."""

    name: str
    base: tuple[float, ...]
    head: tuple[float, ...]
    ratios: tuple[float, ...]
    ratio: float
    low: float
    high: float
    verdict: str  # "regression", "improvement", "same" or "noisy"

    @property
    def base_median(self) -> float:
        return statistics.median(self.base)

    @property
    def head_median(self) -> float:
        return statistics.median(self.head)


def verdict(ratio: float, low: float, high: float, threshold: float) -> str:
    """``regression`` only if ``ratio > 1 + threshold`` and the interval lies above 1;
    ``improvement`` symmetrically; ``noisy`` if the ratio is past a threshold but the
    interval still holds 1; else ``same``."""
    if ratio > 1.0 + threshold:
        return "regression" if low > 1.0 else "noisy"
    if ratio < 1.0 / (1.0 + threshold):
        return "improvement" if high < 1.0 else "noisy"
    return "same"


def compare_medians(base_runs: Sequence[Mapping[str, float]],
                    head_runs: Sequence[Mapping[str, float]], *,
                    threshold: float) -> list[BenchmarkComparison]:
    """Pair job i of BASE with job i of HEAD; compare every benchmark both ran."""
    if len(base_runs) != len(head_runs) or not base_runs:
        raise ValueError("compare_medians: expected the same, non-zero number of rounds "
                         f"for both sides, got {len(base_runs)} and {len(head_runs)}")
    names = sorted(set.intersection(*(set(run) for run in [*base_runs, *head_runs])))
    results = []
    for name in names:
        base = tuple(run[name] for run in base_runs)
        head = tuple(run[name] for run in head_runs)
        ratios = tuple(h / b for b, h in zip(base, head, strict=True))
        ratio = statistics.median(ratios)
        low, high = bootstrap_median_interval(ratios)
        results.append(BenchmarkComparison(name, base, head, ratios, ratio, low, high,
                                           verdict(ratio, low, high, threshold)))
    return results


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_comparisons(comparisons: Sequence[BenchmarkComparison], threshold: float,
                       statistic: str = "trimmed") -> str:
    """A table: BASE and HEAD times (median over the jobs of each job's ``statistic``),
    the median ratio, its min-max over the jobs and its 95% interval."""
    header = ("benchmark", "BASE", "HEAD", "HEAD/BASE", "min-max", "95% CI", "verdict")
    rows = [header]
    for c in comparisons:
        rows.append((c.name, _duration(c.base_median), _duration(c.head_median),
                     f"{c.ratio:.3f}", f"{min(c.ratios):.3f}-{max(c.ratios):.3f}",
                     f"{c.low:.3f}-{c.high:.3f}", c.verdict.upper() if c.verdict ==
                     "regression" else c.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in rows]
    rounds = len(comparisons[0].ratios) if comparisons else 0
    name = "10%-trimmed mean" if statistic == "trimmed" else statistic
    lines.append(f"{rounds} lockstep jobs, each job's {name} of the timing rounds; "
                 f"regression: HEAD/BASE > {1 + threshold:.2f} and the 95% interval above 1")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# pytest-benchmark JSON


STATISTICS = ("trimmed", "median", "mean", "min")
TRIM = 0.1


def trimmed_mean(values: Sequence[float], trim: float = TRIM) -> float:
    """The mean of ``values`` without the lowest and highest ``trim`` fraction of them."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("trimmed_mean: no values")
    cut = int(len(ordered) * trim)
    kept = ordered[cut:len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


class BenchmarkJsonError(MlpropError, ValueError):
    """A pytest-benchmark JSON file that cannot be read: names the file and the field."""

    def __init__(self, path: object, field: str, problem: str) -> None:
        self.path, self.field = str(path), field
        super().__init__(f"{path}: not a pytest-benchmark JSON file: {field}: {problem}")


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BenchmarkJsonError(path, "encoding", f"not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise BenchmarkJsonError(path, "JSON", f"{exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise BenchmarkJsonError(path, "JSON", "nested too deeply") from None
    if not isinstance(data, dict):
        raise BenchmarkJsonError(path, "top level", f"expected an object, got "
                                 f"{type(data).__name__}")
    return data


def _finite(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def read_times(path: Path, statistic: str = "median") -> dict[str, float]:
    """``{fullname: seconds}`` from a ``--benchmark-json`` file: each benchmark's
    ``statistic`` over its rounds: ``trimmed`` (the mean of the middle 80%, from the raw
    rounds that ``--benchmark-save-data`` keeps), ``median``, ``mean`` or ``min``.

    A malformed file is a :class:`BenchmarkJsonError` naming the file and the field."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic: expected one of {STATISTICS}, got {statistic!r}")
    data = _load_json(path)
    benchmarks = data.get("benchmarks", [])
    if not isinstance(benchmarks, list):
        raise BenchmarkJsonError(path, "benchmarks", "expected a list")
    times = {}
    for index, bench in enumerate(benchmarks):
        where = f"benchmarks[{index}]"
        if not isinstance(bench, dict):
            raise BenchmarkJsonError(path, where, "expected an object")
        name = bench.get("fullname") or bench.get("name")
        if not isinstance(name, str) or not name:
            raise BenchmarkJsonError(path, f"{where}.name", "expected a non-empty string")
        stats = bench.get("stats")
        if not isinstance(stats, dict):
            raise BenchmarkJsonError(path, f"{where}.stats", "expected an object")
        if statistic == "trimmed":
            rounds = stats.get("data")
            if not rounds:
                raise BenchmarkJsonError(path, f"{where}.stats.data", "no raw rounds for the "
                                         "trimmed mean (run with --benchmark-save-data)")
            if not isinstance(rounds, list) or not all(_finite(v) for v in rounds):
                raise BenchmarkJsonError(path, f"{where}.stats.data",
                                         "expected a list of finite numbers")
            value = trimmed_mean(rounds)
        else:
            value = stats.get(statistic)
            if not _finite(value):
                raise BenchmarkJsonError(path, f"{where}.stats.{statistic}",
                                         f"expected a finite number, got {value!r}")
        times[name] = float(value)
    return times


def read_sources(path: Path) -> dict[str, str]:
    """The ``mlprop`` sources a ``--benchmark-json`` run imported (benchmarks/conftest.py
    records them under ``mlprop.sources``)."""
    section = _load_json(path).get("mlprop", {})
    sources = section.get("sources", {}) if isinstance(section, dict) else None
    if not isinstance(sources, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
        raise BenchmarkJsonError(path, "mlprop.sources", "expected an object of strings")
    return dict(sources)
