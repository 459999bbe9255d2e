"""The fast serving path (``mlprop.digits.fast_predict``) on the CPU and, with CUDA, the GPU.

CPU: the fast path against ``pipeline.predict`` at batch 1, 64, 1024.

GPU (marked ``gpu``, skipped without CUDA; ``benchmarks/gpu.sh`` runs them and summarises):

- ``test_bench_gpu_device_resident``: uint8 batches already on the GPU -> probabilities,
  per variant (``VARIANTS``) at batch 1 .. 65536. ``eager-default`` is the plain model in
  eager mode with torch's default settings (fp32 storage, TF32 convolutions): the baseline
  of the "x times eager fp32" figures.
- ``test_bench_gpu_from_host``: the whole serving call from a NumPy uint8 batch (pinned
  upload, copy back) per variant.
- ``test_bench_gpu_unsynchronized``: the same call timed *without* synchronizing, kept to
  show by how much such a timing lies (never use it as a figure).

``torch.compile`` variants run only with ``MLPROP_BENCH_COMPILE=1`` (about 40 s of
compilation per shape).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

fast_predict = pytest.importorskip("mlprop.digits.fast_predict")

CPU_BATCHES = (1, 64, 1024)
GPU_BATCHES = (1, 64, 1024, 8192, 65536)
HOST_BATCHES = (1, 64, 1024, 8192)
COMPILE_BATCHES = (1, 65536)

VARIANTS = {
    "eager-default": dict(precision="tf32", channels_last=False, cuda_graphs=False,
                          fused_normalize=False),
    "eager-fp32-strict": dict(precision="fp32", channels_last=False, cuda_graphs=False,
                              fused_normalize=False),
    "eager-bf16-cl": dict(precision="bf16", channels_last=True, cuda_graphs=False),
    "graph-fp32-cl": dict(precision="fp32", channels_last=True, cuda_graphs=True),
    "graph-tf32-cl": dict(precision="tf32", channels_last=True, cuda_graphs=True),
    "graph-bf16-cl": dict(precision="bf16", channels_last=True, cuda_graphs=True),
    "graph-bf16-autocast-cl": dict(precision="bf16-autocast", channels_last=True,
                                   cuda_graphs=True),
    "compile-graph-bf16-cl": dict(precision="bf16", channels_last=True, cuda_graphs=True,
                                  compile=True),
}
HOST_VARIANTS = ("eager-default", "graph-fp32-cl", "graph-bf16-cl")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _images(count: int, side: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, side, side), dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    from mlprop.digits.pipeline import trained_model

    return trained_model()


_PREDICTORS: dict[tuple[str, str], object] = {}


def _predictor(model, variant: str, device: str):
    key = (variant, device)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = fast_predict.FastPredictor(model, device=device, **VARIANTS[variant])
    return _PREDICTORS[key]


@pytest.fixture(scope="module", autouse=True)
def _cudnn_autotune():
    """cuDNN picks the fastest algorithm per shape (restored afterwards)."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    yield
    torch.backends.cudnn.benchmark = previous
    _PREDICTORS.clear()


@pytest.mark.parametrize("batch", CPU_BATCHES)
@pytest.mark.parametrize("path", ["pipeline.predict", "fast_predict"])
def test_bench_cpu_serving(benchmark, model, batch, path, seconds):
    from mlprop.bench import timed_inference
    from mlprop.digits import pipeline

    images = _images(batch)
    fn = (lambda: pipeline.predict(images)) if path == "pipeline.predict" else (
        lambda: _predictor(model, "eager-default", "cpu")(images))
    timed_inference(benchmark, fn, device="cpu", batch=batch, seconds=seconds, path=path,
                    threads=torch.get_num_threads())


def _gpu_params(batches, variants):
    params = []
    for variant in variants:
        compiled = VARIANTS[variant].get("compile", False)
        for batch in batches:
            if compiled and batch not in COMPILE_BATCHES:
                continue
            marks = [pytest.mark.gpu, needs_cuda]
            if compiled:
                marks.append(pytest.mark.skipif(os.environ.get("MLPROP_BENCH_COMPILE") != "1",
                                                reason="set MLPROP_BENCH_COMPILE=1"))
            params.append(pytest.param(variant, batch, marks=marks, id=f"{variant}-{batch}"))
    return params


def _dtype(variant: str) -> str:
    precision = VARIANTS[variant]["precision"]
    return {"fp32": "float32", "tf32": "float32 (tf32 conv)"}.get(precision, precision)


@pytest.mark.parametrize(("variant", "batch"), _gpu_params(GPU_BATCHES, VARIANTS))
def test_bench_gpu_device_resident(benchmark, model, variant, batch, seconds):
    from mlprop.bench import timed_inference

    predictor = _predictor(model, variant, "cuda")
    images = torch.from_numpy(_images(batch)).cuda()
    if predictor.cuda_graphs:
        runner = predictor.graph(batch, 28, 28, host_io=False)
        runner.input.copy_(images)
        fn = runner.replay
    else:
        def fn():
            return predictor.run_device(images)
    timed_inference(benchmark, fn, device="cuda", batch=batch, dtype=_dtype(variant),
                    seconds=seconds, variant=variant, path="device-resident",
                    options=predictor.describe())


@pytest.mark.parametrize(("variant", "batch"), _gpu_params(HOST_BATCHES, HOST_VARIANTS))
def test_bench_gpu_from_host(benchmark, model, variant, batch, seconds):
    from mlprop.bench import timed_inference

    predictor = _predictor(model, variant, "cuda")
    images = _images(batch)
    timed_inference(benchmark, lambda: predictor(images), device="cuda", batch=batch,
                    dtype=_dtype(variant), seconds=seconds, variant=variant,
                    path="from-host", options=predictor.describe())
    if predictor.cuda_graphs:
        benchmark.extra_info["io_in_graph"] = all(
            runner.io_in_graph for runner in predictor.graphs.values())


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("batch", [64])
def test_bench_gpu_unsynchronized(benchmark, model, batch):
    """WRONG on purpose: no synchronize, so it times kernel launches (compare it with
    test_bench_gpu_device_resident[eager-default-64])."""
    predictor = _predictor(model, "eager-default", "cuda")
    images = torch.from_numpy(_images(batch)).cuda()

    def launch_only():
        return predictor.run_device(images)

    for _ in range(3):
        launch_only()
    torch.cuda.synchronize()
    benchmark.pedantic(launch_only, rounds=200, iterations=1, warmup_rounds=0)
    torch.cuda.synchronize()
    benchmark.extra_info.update(batch_size=batch, variant="eager-default",
                                path="unsynchronized (wrong)", device="cuda")
