"""CPU benchmarks of the target under test (pytest-benchmark; skipped by the test command).

Run: ``pytest benchmarks --benchmark-only`` (``--benchmark-only`` overrides the
``--benchmark-skip`` in pyproject's addopts); add ``--benchmark-autosave`` to keep a result
for a later ``--benchmark-compare``. The target part is the suite mlprop ships for any
target (:mod:`mlprop.bench.suite.test_target`: ``predict`` end to end, ``preprocess``, the
trained model's forward pass at batch 1/64/1024, each augmentation at batch 64; the same
benchmarks ``mlprop bench run`` times in a user's project), imported here; this file adds
preprocessing with resizing from the largest side and one SHAP explanation. Benchmarks
marked ``compare`` are the quick set that ``mlprop bench compare BASE HEAD --benchmarks
benchmarks`` runs against both revisions: they use nothing but the target contract, so they
run against any revision's ``src/`` (benchmarks/conftest.py loads HEAD's harness, the
shipped suite included, whichever ``src/`` is measured).

Everything is timed with :func:`mlprop.bench.timed_inference` (warm-up outside the timing,
pedantic rounds, synchronized on CUDA, and taking turns with the other side under
``mlprop bench compare``); ``extra_info`` holds images per second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlprop.bench.suite.test_target import (  # noqa: F401 - collected here: the target part
    bench_device,
    test_bench_augmentation,
    test_bench_model_forward,
    test_bench_predict,
    test_bench_preprocess,
)


def _images(target, count: int, side: int = 28) -> np.ndarray:
    side = max(target.schema.min_side, min(side, target.schema.max_side))
    return np.random.default_rng(0).integers(0, 256, (count, side, side), dtype=np.uint8)


def _as_tensor(batch) -> torch.Tensor:
    """``mlprop.checks.as_tensor``, repeated on purpose: these benchmarks import nothing
    from ``mlprop`` but the target and the harness, so they also run against an older
    ``src/``."""
    if isinstance(batch, torch.Tensor):
        return batch.detach().to(torch.float32)
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))


def test_bench_preprocess_resizing(benchmark, target, seconds):
    """64 images of the schema's largest side, resized to the model's input size."""
    from mlprop.bench import timed_inference

    images = _images(target, 64, side=target.schema.max_side)
    timed_inference(benchmark, lambda: target.preprocess(images), device="cpu", batch=64,
                    seconds=seconds, input_side=images.shape[1])


def test_bench_shap_explanation(benchmark, target):
    """One SHAP explanation (DeepExplainer, 32 holdout images as background) of one image."""
    pytest.importorskip("shap")
    from mlprop.attribution import explain

    model = target.trained_model().eval()
    holdout, _ = target.holdout()
    background = _as_tensor(target.preprocess(holdout[:32]))
    inputs = _as_tensor(target.preprocess(holdout[32:33]))
    explain(model, inputs, background)  # warm-up: shap's import and first-call costs
    benchmark.extra_info.update(background=32, inputs=1, method="deep")
    benchmark.pedantic(explain, args=(model, inputs, background), rounds=5, iterations=1)
