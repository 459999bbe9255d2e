"""Time per Hypothesis example of the slowest properties (pytest-benchmark).

Each property runs a fixed number of derandomized examples (generation only, no database,
no deadline) against the target under test; ``extra_info`` holds ``examples`` (counted by
wrapping the property's ``hypothesis.inner_test``) and ``seconds_per_example`` (the round's
time, data generation included, divided by them). The slowest properties come from
``CI=true pytest properties --durations=15``; one that is missing is skipped.
"""

from __future__ import annotations

import importlib

import pytest
from hypothesis import HealthCheck, Phase, settings

SLOW_PROPERTIES = (
    ("properties.test_model", "test_loss_falls_when_overfitting_one_small_batch", 1),
    ("properties.test_attribution", "test_attributions_are_stable_under_small_perturbations",
     2),
    ("properties.test_attribution", "test_attributions_are_complete", 2),
    ("properties.test_model", "test_model_is_batch_independent_in_eval_mode", 5),
    ("properties.test_predict", "test_predict_is_batch_independent", 5),
    ("properties.test_model", "test_model_forward_is_deterministic_in_eval_mode", 5),
)


def _property(module_name: str, name: str):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.skip(f"{module_name}: {exc}")
    prop = getattr(module, name, None)
    if prop is None or not hasattr(prop, "hypothesis"):
        pytest.skip(f"{module_name}.{name} is not a Hypothesis property here")
    return prop


class _Counted:
    """Swap in fixed settings and a counting inner test for the duration of a block."""

    def __init__(self, prop, examples: int) -> None:
        self.prop, self.calls = prop, 0
        self.settings = settings(max_examples=examples, derandomize=True, database=None,
                                 deadline=None, phases=(Phase.explicit, Phase.generate),
                                 suppress_health_check=list(HealthCheck))

    def __enter__(self):
        hyp = self.prop.hypothesis
        self.saved = (hyp.inner_test, self.prop._hypothesis_internal_use_settings)
        inner = hyp.inner_test

        def counting(*args, **kwargs):
            self.calls += 1
            return inner(*args, **kwargs)

        hyp.inner_test = counting
        self.prop._hypothesis_internal_use_settings = self.settings
        return self

    def __exit__(self, *exc) -> None:
        self.prop.hypothesis.inner_test, self.prop._hypothesis_internal_use_settings = \
            self.saved


@pytest.mark.parametrize(("module_name", "name", "examples"), SLOW_PROPERTIES,
                         ids=[name for _, name, _ in SLOW_PROPERTIES])
def test_bench_property_example(benchmark, target, module_name, name, examples):
    prop = _property(module_name, name)
    target.trained_model()  # load (or train) the model outside the timing
    with _Counted(prop, 1):
        prop(target=target)  # warm-up: imports and first-call costs (SHAP, the model)
    with _Counted(prop, examples) as counted:
        benchmark.pedantic(prop, kwargs={"target": target}, rounds=1, iterations=1)
    median = benchmark.stats.stats.median if benchmark.stats else float("nan")
    benchmark.extra_info.update(examples=counted.calls,
                                seconds_per_example=median / max(counted.calls, 1))
