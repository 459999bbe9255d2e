"""CPU inference benchmarks of the target (pytest-benchmark; skipped by the test command).

Run: ``pytest benchmarks --benchmark-enable --benchmark-only`` (add ``--benchmark-autosave``
to keep a result for later ``--benchmark-compare``). GPU timing belongs to issue 6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlprop.checks import as_tensor

BATCHES = (1, 64, 1024)


def _images(target, count: int) -> np.ndarray:
    side = max(target.schema.min_side, min(28, target.schema.max_side))
    return np.random.default_rng(0).integers(0, 256, (count, side, side), dtype=np.uint8)


@pytest.mark.parametrize("batch", BATCHES)
def test_bench_preprocess(benchmark, target, batch):
    images = _images(target, batch)
    benchmark.extra_info.update(batch_size=batch, device="cpu", torch=torch.__version__)
    benchmark(target.preprocess, images)


@pytest.mark.parametrize("batch", BATCHES)
def test_bench_model_forward(benchmark, target, batch):
    model = target.trained_model().eval()
    inputs = as_tensor(target.preprocess(_images(target, batch)))

    def forward():
        with torch.inference_mode():
            return model(inputs)

    forward()  # warm-up outside the timing
    benchmark.extra_info.update(batch_size=batch, device="cpu", dtype="float32",
                                torch=torch.__version__)
    benchmark(forward)
    benchmark.extra_info["images_per_second"] = batch / benchmark.stats.stats.median


@pytest.mark.parametrize("batch", BATCHES)
def test_bench_predict_end_to_end(benchmark, target, batch):
    images = _images(target, batch)
    target.predict(images[:1])  # load the model outside the timing
    benchmark.extra_info.update(batch_size=batch, device="cpu", torch=torch.__version__)
    benchmark(target.predict, images)
    benchmark.extra_info["images_per_second"] = batch / benchmark.stats.stats.median
