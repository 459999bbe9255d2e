"""The timing helpers and the comparison statistics of ``mlprop.bench`` (no timing asserted).

CUDA synchronization is checked on any machine by recording calls to a stand-in for
``torch.cuda.synchronize``; the real CUDA path is exercised only with CUDA.
"""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mlprop import bench

REPO = Path(__file__).resolve().parents[1]


class FakeBenchmark:
    """pytest-benchmark's fixture, reduced to what the helpers use; records the order."""

    def __init__(self, events: list[str], median: float | None = 0.002) -> None:
        self.events, self.median, self.extra_info = events, median, {}
        self.stats = None
        self.pedantic_args: dict = {}

    def pedantic(self, fn, *, rounds, iterations, warmup_rounds):
        self.pedantic_args = dict(rounds=rounds, iterations=iterations,
                                  warmup_rounds=warmup_rounds)
        self.events.append("timing starts")
        for _ in range(rounds * iterations):
            result = fn()
        self.events.append("timing ends")
        if self.median is not None:
            self.stats = SimpleNamespace(stats=SimpleNamespace(median=self.median))
        return result


@pytest.fixture
def fake_cuda(monkeypatch):
    """``torch.cuda.synchronize`` and ``get_device_name`` that record instead of failing."""
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    return events


def test_synchronized_on_cuda_waits_after_every_call(fake_cuda):
    timed = bench.synchronized(lambda: fake_cuda.append("work"), "cuda")
    timed()
    timed()
    assert fake_cuda == ["work", "sync", "work", "sync"]


def test_synchronized_on_cpu_is_the_function_itself():
    def fn():
        return 1

    assert bench.synchronized(fn, "cpu") is fn


def test_timed_inference_warms_up_outside_and_syncs_inside_the_timing(fake_cuda):
    fake = FakeBenchmark(fake_cuda)
    bench.timed_inference(fake, lambda: fake_cuda.append("work"), device="cuda", batch=64,
                          rounds=3, warmup=2)
    start = fake_cuda.index("timing starts")
    warm, timed = fake_cuda[:start], fake_cuda[start + 1:fake_cuda.index("timing ends")]
    assert warm.count("work") == 2 and warm[-1] == "sync"  # warm-up done and waited for
    assert timed == ["work", "sync"] * 3  # every timed call waits for the device
    assert fake.pedantic_args == dict(rounds=3, iterations=1, warmup_rounds=0)


def test_timed_inference_records_throughput_and_device(fake_cuda):
    fake = FakeBenchmark(fake_cuda, median=0.002)
    bench.timed_inference(fake, lambda: None, device="cuda", batch=64, rounds=5,
                          dtype="bfloat16", variant="x")
    info = fake.extra_info
    assert info["images_per_second"] == pytest.approx(32_000)
    assert info["latency_p50_us"] == pytest.approx(2000)
    assert info["device_name"] == "Fake GPU" and info["dtype"] == "bfloat16"
    assert info["batch_size"] == 64 and info["variant"] == "x"
    assert info["torch"] == torch.__version__


def test_timed_inference_without_stats_adds_no_throughput():
    fake = FakeBenchmark([], median=None)  # --benchmark-disable: no stats
    bench.timed_inference(fake, lambda: None, device="cpu", batch=1, rounds=2)
    assert "images_per_second" not in fake.extra_info


def test_timed_inference_chooses_rounds_from_the_budget():
    fake = FakeBenchmark([])
    bench.timed_inference(fake, lambda: None, device="cpu", batch=1, seconds=1e-9)
    assert fake.pedantic_args["rounds"] == bench.MIN_ROUNDS


@given(per_round=st.floats(0, 10), budget=st.floats(0, 100))
def test_auto_rounds_stays_within_bounds(per_round, budget):
    assert bench.MIN_ROUNDS <= bench.auto_rounds(per_round, budget) <= bench.MAX_ROUNDS


def test_auto_rounds_fills_the_budget():
    assert bench.auto_rounds(0.01, 1.0) == 100


def test_gpu_machine_info_names_the_gpu_or_none():
    info = bench.gpu_machine_info()
    assert info["torch"] == torch.__version__
    if torch.cuda.is_available():
        assert info["gpu"] == torch.cuda.get_device_name(0)
    else:
        assert info["gpu"] is None and info["cuda_available"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_timed_inference_on_a_real_gpu():
    fake = FakeBenchmark([])
    x = torch.randn(256, 256, device="cuda")
    bench.timed_inference(fake, lambda: x @ x, device="cuda", batch=256, rounds=3)
    assert fake.extra_info["device_name"] == torch.cuda.get_device_name()


# --- the comparison statistics


def test_bootstrap_interval_is_reproducible_and_holds_the_median():
    values = [1.0, 1.1, 0.9, 1.05, 0.95]
    low, high = bench.bootstrap_median_interval(values)
    assert (low, high) == bench.bootstrap_median_interval(values)
    assert low <= 1.0 <= high


def test_bootstrap_interval_of_one_value_is_that_value():
    assert bench.bootstrap_median_interval([1.3]) == (1.3, 1.3)
    with pytest.raises(ValueError):
        bench.bootstrap_median_interval([])


@pytest.mark.parametrize(("ratio", "low", "high", "expected"), [
    (1.20, 1.15, 1.25, "regression"),
    (1.20, 0.98, 1.40, "noisy"),  # past the threshold, but 1 is inside the interval
    (1.05, 1.02, 1.08, "same"),  # beyond the noise, below the threshold
    (0.80, 0.75, 0.85, "improvement"),
    (0.80, 0.60, 1.10, "noisy"),
])
def test_verdict(ratio, low, high, expected):
    assert bench.verdict(ratio, low, high, threshold=0.10) == expected


def _runs(values: list[float], name: str = "b") -> list[dict[str, float]]:
    return [{name: v} for v in values]


def test_a_planted_20_percent_slowdown_is_a_regression():
    base = [1.00, 1.03, 0.98, 1.05, 1.01]
    head = [v * 1.2 for v in [1.01, 0.99, 1.02, 1.00, 1.03]]
    (result,) = bench.compare_medians(_runs(base), _runs(head), threshold=0.10)
    assert result.verdict == "regression" and result.ratio == pytest.approx(1.2, abs=0.03)


@given(st.lists(st.floats(1e-6, 10), min_size=1, max_size=9))
def test_identical_sides_are_never_a_regression(medians):
    (result,) = bench.compare_medians(_runs(medians), _runs(medians), threshold=0.10)
    assert result.verdict == "same" and result.ratio == 1.0


def test_one_noisy_round_does_not_flag():
    base = [1.0] * 5
    head = [1.0, 1.0, 1.6, 1.0, 1.0]  # one round hit by a load spike
    (result,) = bench.compare_medians(_runs(base), _runs(head), threshold=0.10)
    assert result.verdict == "same"


def test_only_benchmarks_both_sides_ran_are_compared():
    results = bench.compare_medians([{"a": 1.0, "b": 1.0}], [{"a": 1.0}], threshold=0.1)
    assert [r.name for r in results] == ["a"]


def test_mismatched_rounds_are_refused():
    with pytest.raises(ValueError, match="rounds"):
        bench.compare_medians([{"a": 1.0}], [], threshold=0.1)


def test_the_table_names_each_benchmark_and_flags_regressions():
    results = bench.compare_medians(_runs([1.0, 1.0, 1.0]), _runs([1.3, 1.3, 1.3]),
                                    threshold=0.10)
    table = bench.format_comparisons(results, 0.10)
    assert "REGRESSION" in table and "1.300" in table and "3 lockstep jobs" in table


def test_jobs_alternate_who_goes_first():
    assert [bench.first_side(i) for i in range(4)] == ["base", "head", "base", "head"]


def test_read_times_and_sources_from_pytest_benchmark_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({
        "benchmarks": [{"name": "t[1]", "fullname": "b/t.py::t[1]",
                        "stats": {"median": 0.5, "min": 0.4, "mean": 0.6,
                                  "data": [9.0] + [0.5] * 8 + [0.0]}}],
        "mlprop": {"sources": {"mlprop": "/x/src/mlprop/__init__.py"}}}))
    assert bench.read_times(path) == {"b/t.py::t[1]": 0.5}
    assert bench.read_times(path, "min") == {"b/t.py::t[1]": 0.4}
    assert bench.read_times(path, "trimmed") == {"b/t.py::t[1]": 0.5}  # 9.0 and 0.0 cut
    with pytest.raises(ValueError, match="statistic"):
        bench.read_times(path, "p99")
    assert bench.read_sources(path) == {"mlprop": "/x/src/mlprop/__init__.py"}


def test_benchmarks_never_run_under_the_test_command():
    """CI's `pytest` collects tests/ and properties/ only, and skips benchmarks anyway."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    ini = config["ini_options"]
    assert "benchmarks" not in ini["testpaths"]
    assert "--benchmark-skip" in ini["addopts"].split()
    mutmut = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert not any("benchmarks" in arg for arg in mutmut["pytest_add_cli_args_test_selection"])


def _benchmark_script(name: str):
    """``benchmarks/<name>.py`` loaded as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_summary_computes_ratios_and_goals(tmp_path):
    """benchmarks/gpu_summary.py on a made-up GPU result (the real one needs a GPU)."""
    summary = _benchmark_script("gpu_summary")

    def row(variant, batch, seconds, path="device-resident"):
        return {"name": f"{variant}-{batch}", "stats": {"median": seconds},
                "extra_info": {"variant": variant, "batch_size": batch, "path": path}}

    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"machine_info": {"mlprop_gpu": {"gpu": "Fake H100"}},
                                "benchmarks": [
        row("eager-default", 1, 400e-6), row("graph-bf16-cl", 1, 40e-6),
        row("eager-default", 65536, 65536 / 3.2e6), row("graph-bf16-cl", 65536, 65536 / 12e6),
        row("eager-default", 64, 2e-3), row("eager-default", 64, 0.2e-3,
                                            path="unsynchronized (wrong)")]}))
    text = summary.summarise(*summary.load(path))
    assert "Fake H100" in text
    assert "3.75x (graph-bf16-cl) -> met" in text
    assert "12.00 M (graph-bf16-cl, batch 65536) -> met" in text
    assert "40.0 us (graph-bf16-cl) -> met" in text
    assert "200.0 us vs 2000.0 us synchronized" in text


def test_no_turns_outside_a_comparison(monkeypatch):
    for name in bench.TURN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(bench.timing, "_TURNS", {})
    assert bench.current_turns() is None


def test_layout_jitter_keeps_a_bounded_ring():
    jitter = bench.LayoutJitter(keep=3, max_bytes=1 << 12)
    for _ in range(10):
        jitter()
    assert len(jitter._ring) == 3


def test_trimmed_mean_drops_both_tails():
    assert bench.trimmed_mean([100.0, 1, 2, 3, 4, 5, 6, 7, 8, -100.0]) == 4.5
    assert bench.trimmed_mean([2.0, 4.0]) == 3.0  # too few to trim
    with pytest.raises(ValueError):
        bench.trimmed_mean([])


def test_trimmed_needs_the_raw_rounds(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": [{"name": "t", "stats": {"median": 1.0}}]}))
    with pytest.raises(ValueError, match="benchmark-save-data"):
        bench.read_times(path, "trimmed")


def test_first_failure_summary_names_the_property_and_the_faults_not_caught():
    """benchmarks/first_failure.py's bookkeeping: a parametrized property id counts as the
    property the catalogue names; a fault whose run did not fail is listed as not caught."""
    first_failure = _benchmark_script("first_failure")

    assert first_failure.named_property("test_x[noise]") == "test_x"
    assert first_failure.named_property("test_x") == "test_x"
    assert first_failure.named_property(None) is None
    rows = [{"fault": "a", "component": "augment", "seconds": 4.0, "exit_code": 1},
            {"fault": "b", "component": "augment", "seconds": 8.0, "exit_code": 1},
            {"fault": "c", "component": "model", "seconds": 30.0, "exit_code": 0}]
    summary = first_failure.summarize(rows)
    assert summary["all"] == {"median": 8.0, "worst": 30.0, "count": 3}
    assert summary["by_component"]["augment"] == {"median": 6.0, "worst": 8.0, "count": 2}
    assert summary["not_caught"] == ["c"]
