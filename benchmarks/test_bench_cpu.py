"""CPU benchmarks of the target under test (pytest-benchmark; skipped by the test command).

Run: ``pytest benchmarks --benchmark-only`` (``--benchmark-only`` overrides the
``--benchmark-skip`` in pyproject's addopts); add ``--benchmark-autosave`` to keep a result
for a later ``--benchmark-compare``. Benchmarks marked ``compare`` are the quick set that
``mlprop bench compare BASE HEAD`` runs against both revisions: they use nothing but the
target contract, so they run against any revision's ``src/``.

Everything is timed with :func:`mlprop.bench.timed_inference` (warm-up outside the timing,
pedantic rounds, synchronized on CUDA, and taking turns with the other side under
``mlprop bench compare``); ``extra_info`` holds images per second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

BATCHES = (1, 64, 1024)
COMPARE_BATCH = 64
AUGMENT_BATCH = 64


def _images(target, count: int, side: int = 28) -> np.ndarray:
    side = max(target.schema.min_side, min(side, target.schema.max_side))
    return np.random.default_rng(0).integers(0, 256, (count, side, side), dtype=np.uint8)


def _as_tensor(batch) -> torch.Tensor:
    """``mlprop.checks.as_tensor``, repeated on purpose: the ``compare`` benchmarks import
    nothing from ``mlprop`` but the target, so they also run against an older ``src/``."""
    if isinstance(batch, torch.Tensor):
        return batch.detach().to(torch.float32)
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))


def _compare(batch: int):
    return [pytest.param(batch, marks=pytest.mark.compare)] if batch == COMPARE_BATCH \
        else [batch]


def _batches():
    return [param for batch in BATCHES for param in _compare(batch)]


@pytest.mark.parametrize("batch", _batches())
def test_bench_preprocess(benchmark, target, batch, seconds):
    from mlprop.bench import timed_inference

    images = _images(target, batch)
    timed_inference(benchmark, lambda: target.preprocess(images), device="cpu", batch=batch,
                    seconds=seconds, input_side=images.shape[1])


def test_bench_preprocess_resizing(benchmark, target, seconds):
    """64 images of the schema's largest side, resized to the model's input size."""
    from mlprop.bench import timed_inference

    images = _images(target, 64, side=target.schema.max_side)
    timed_inference(benchmark, lambda: target.preprocess(images), device="cpu", batch=64,
                    seconds=seconds, input_side=images.shape[1])


@pytest.mark.parametrize("batch", _batches())
def test_bench_model_forward(benchmark, target, batch, seconds):
    from mlprop.bench import timed_inference

    model = target.trained_model().eval()
    inputs = _as_tensor(target.preprocess(_images(target, batch)))

    def forward():
        with torch.inference_mode():
            return model(inputs)

    timed_inference(benchmark, forward, device="cpu", batch=batch, seconds=seconds,
                    threads=torch.get_num_threads())


@pytest.mark.parametrize("batch", _batches())
def test_bench_predict_end_to_end(benchmark, target, batch, seconds):
    """The serving path from raw uint8 images: validation, preprocessing, model, softmax."""
    from mlprop.bench import timed_inference

    images = _images(target, batch)
    timed_inference(benchmark, lambda: target.predict(images), device="cpu", batch=batch,
                    seconds=seconds, threads=torch.get_num_threads())


@pytest.mark.parametrize("name", [pytest.param("rotate", marks=pytest.mark.compare),
                                  "shift", "scale", "noise"])
def test_bench_augmentation(benchmark, target, name, seconds):
    """Each augmentation of the reference pipeline at batch 64, magnitude 0.5."""
    from mlprop.bench import timed_inference

    if name not in target.augmentations:
        pytest.skip(f"target {target.name} has no augmentation {name!r}")
    fn = target.augmentations[name].fn
    images = _images(target, AUGMENT_BATCH)
    timed_inference(benchmark, lambda: fn(images, seed=0, magnitude=0.5), device="cpu",
                    batch=AUGMENT_BATCH, seconds=seconds, magnitude=0.5)


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
