"""Benchmarks of a target (pytest-benchmark), shipped with mlprop.

Run in your project: ``mlprop bench run [--target X] [--device cpu|cuda] [--json FILE]``, or
``pytest --pyargs mlprop.bench.suite --benchmark-only`` (every pytest-benchmark option
works: ``--benchmark-autosave``, ``--benchmark-compare``, ``--benchmark-json``). The target
is the one mlprop's pytest plugin resolves. What is timed, each at batch 1, 64 and 1024
(and 16384 on CUDA):

- ``predict`` end to end from uint8 images (the serving path),
- ``preprocess``,
- the trained model's forward pass on preprocessed inputs (``build_model(0)`` when the
  target has no trained model yet: a forward pass costs the same whatever the weights),
- each augmentation (batch 64, magnitude 0.5).

Everything goes through :func:`mlprop.bench.timed_inference`: warm-up outside the timing,
pedantic rounds, ``torch.cuda.synchronize()`` inside the timed call on CUDA, turn-taking
under ``mlprop bench compare``; ``extra_info`` holds images per second and the latency
percentiles p50/p90/p99 in microseconds. The ``compare`` marker picks the batch-64 set that
``mlprop bench compare`` runs. Images are random uint8 of the schema's layout, at the
schema's fixed size or the side nearest 28 within its bounds.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from mlprop.bench.suite import DEVICE_ENV

DEVICE = os.environ.get(DEVICE_ENV, "cpu")
BATCHES = (1, 64, 1024) + ((16384,) if DEVICE.startswith("cuda") else ())
COMPARE_BATCH = 64
AUGMENT_BATCH = 64
MAGNITUDE = 0.5


def images_for(target, count: int, side: int = 28, seed: int = 0) -> np.ndarray:
    """``count`` random uint8 images the target's schema accepts."""
    schema = target.schema
    size = getattr(schema, "size", None)
    if size is None:
        side = max(schema.min_side, min(side, schema.max_side))
        size = (side, side)
    channels = getattr(schema, "channels", 1)
    batch = np.random.default_rng(seed).integers(0, 256, (count, *size, channels),
                                                 dtype=np.uint8)
    if hasattr(schema, "from_channels_last"):
        return np.ascontiguousarray(schema.from_channels_last(batch))
    return np.ascontiguousarray(batch[..., 0])


def as_tensor(batch, device):
    """A float32 tensor on ``device`` (``mlprop.checks.as_tensor`` plus the move)."""
    import torch

    if not isinstance(batch, torch.Tensor):
        batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    return batch.detach().to(device=device, dtype=torch.float32)


def add_percentiles(benchmark) -> None:
    """Latency p50/p90/p99 (microseconds) of the timed rounds into ``extra_info``."""
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    data = getattr(stats, "data", None)
    if data:
        for q in (50, 90, 99):
            benchmark.extra_info[f"latency_p{q}_us"] = float(np.percentile(data, q)) * 1e6


def _batches():
    return [pytest.param(b, marks=pytest.mark.compare) if b == COMPARE_BATCH else b
            for b in BATCHES]


@pytest.fixture(scope="module")
def seconds(request) -> float:
    """Time budget per benchmark: ``--benchmark-max-time`` (default 1 s)."""
    return float(request.config.getoption("benchmark_max_time"))


@pytest.fixture(scope="module")
def bench_device():
    import torch

    device = torch.device(DEVICE)
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"{DEVICE_ENV}={DEVICE} but CUDA is not available")
    return device


def _time(benchmark, fn, device, batch, seconds, **extra):
    from mlprop.bench import timed_inference

    timed_inference(benchmark, fn, device=device, batch=batch, seconds=seconds, **extra)
    add_percentiles(benchmark)


@pytest.mark.parametrize("batch", _batches())
def test_bench_predict(benchmark, target, bench_device, batch, seconds):
    """The serving path from raw uint8 images: validation, preprocessing, model, softmax."""
    if target.predict is None:
        pytest.skip("the target has no predict")
    images = images_for(target, batch)
    _time(benchmark, lambda: target.predict(images), bench_device, batch, seconds)


@pytest.mark.parametrize("batch", _batches())
def test_bench_preprocess(benchmark, target, bench_device, batch, seconds):
    images = images_for(target, batch)
    _time(benchmark, lambda: target.preprocess(images), bench_device, batch, seconds,
          input_side=int(images.shape[target.schema.side_axes[0]])
          if hasattr(target.schema, "side_axes") else int(images.shape[1]))


@pytest.mark.parametrize("batch", _batches())
def test_bench_model_forward(benchmark, target, bench_device, batch, seconds):
    """The trained model (else ``build_model(0)``) in eval mode on preprocessed inputs."""
    import torch

    if target.trained_model is not None:
        model, which = target.trained_model(), "trained"
    elif target.build_model is not None:
        model, which = target.build_model(0), "build_model(0)"
    else:
        pytest.skip("the target has no trained_model or build_model")
    model = model.to(bench_device).eval()
    inputs = as_tensor(target.preprocess(images_for(target, batch)), bench_device)

    def forward():
        with torch.inference_mode():
            return model(inputs)

    _time(benchmark, forward, bench_device, batch, seconds, model=which,
          threads=torch.get_num_threads())


@pytest.mark.compare
def test_bench_augmentation(benchmark, target, bench_device, augmentation_name, seconds):
    """Each augmentation at batch 64, magnitude 0.5 (parametrized by mlprop's plugin)."""
    if augmentation_name not in target.augmentations:
        pytest.skip("the target has no augmentations")
    fn = target.augmentations[augmentation_name].fn
    images = images_for(target, AUGMENT_BATCH)
    _time(benchmark, lambda: fn(images, seed=0, magnitude=MAGNITUDE), bench_device,
          AUGMENT_BATCH, seconds, magnitude=MAGNITUDE)
