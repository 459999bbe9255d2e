"""The fast serving path gives the predictions of the plain fp32 path, for every option.

The property (Hypothesis, images from ``strategies``): for the same raw images, a
``FastPredictor`` variant and ``pipeline.predict`` agree on every row's argmax wherever the
reference's top-2 margin exceeds twice the variant's probability tolerance, and every
probability is within that tolerance. CPU variants always run; CUDA variants are skipped
without CUDA (``benchmarks/gpu.sh`` runs them on a GPU).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.digits import pipeline
from mlprop.digits.fast_predict import (
    FastPredictor,
    bucket_for,
    chunks,
    to_model_input,
)
from mlprop.digits.preprocess import INPUT_RANGE, SCHEMA
from mlprop.digits.preprocess import preprocess as reference_preprocess
from mlprop.errors import SchemaError

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs CUDA")

# variant: (FastPredictor options, probability tolerance)
VARIANTS = {
    "cpu-fp32": (dict(device="cpu"), 0.0),  # bit-identical
    "cpu-fp32-channels_last": (dict(device="cpu", channels_last=True), 1e-5),
    "cpu-fp32-fused": (dict(device="cpu", fused_normalize=True), 1e-5),
    "cpu-bf16": (dict(device="cpu", precision="bf16"), 0.05),
    "cpu-bf16-autocast": (dict(device="cpu", precision="bf16-autocast"), 0.05),
    "cuda-fp32-eager": (dict(device="cuda", cuda_graphs=False), 1e-4),
    "cuda-fp32-graphs": (dict(device="cuda", graph_batches=(1, 8, 64)), 1e-4),
    "cuda-tf32-graphs": (dict(device="cuda", precision="tf32", graph_batches=(1, 8, 64)),
                         1e-2),
    "cuda-bf16-graphs": (dict(device="cuda", precision="bf16", graph_batches=(1, 8, 64)),
                         0.05),
    "cuda-bf16-autocast": (dict(device="cuda", precision="bf16-autocast"), 0.05),
}
HOLDOUT_AGREEMENT = {"fp32": 1.0, "tf32": 0.995, "bf16": 0.99, "bf16-autocast": 0.99}


def _params():
    return [pytest.param(name, marks=[needs_cuda] if name.startswith("cuda") else [])
            for name in VARIANTS]


@functools.cache
def predictor(name: str) -> FastPredictor:
    options, _ = VARIANTS[name]
    return FastPredictor(pipeline.trained_model(), **options)


def assert_same_predictions(reference: np.ndarray, fast: np.ndarray, atol: float) -> None:
    """Probabilities within ``atol``; argmax equal where the top-2 margin exceeds 2 atol."""
    assert fast.shape == reference.shape and fast.dtype == np.float32
    worst = float(np.abs(fast - reference).max()) if reference.size else 0.0
    assert worst <= atol, f"probabilities differ by {worst} > {atol}"
    ordered = np.sort(reference, axis=1)
    decided = (ordered[:, -1] - ordered[:, -2]) > 2 * atol
    flipped = np.flatnonzero(decided & (fast.argmax(1) != reference.argmax(1)))
    assert flipped.size == 0, f"argmax differs on rows {flipped.tolist()}"


@pytest.mark.parametrize("name", _params())
@settings(deadline=None)
@given(images=gen.images(SCHEMA, min_batch=1, max_batch=12, side_cap=None))
def test_fast_path_gives_the_predictions_of_the_plain_fp32_path(name, images):
    """Every option of the fast path agrees with ``pipeline.predict`` (argmax, tolerance)."""
    _, atol = VARIANTS[name]
    assert_same_predictions(pipeline.predict(images), predictor(name)(images), atol)


@settings(deadline=None)
@given(images=gen.images(SCHEMA, min_batch=0, max_batch=6, side_cap=None))
def test_cpu_default_is_bit_identical_to_pipeline_predict(images):
    np.testing.assert_array_equal(predictor("cpu-fp32")(images), pipeline.predict(images))


@settings(deadline=None)
@given(images=gen.images(SCHEMA, min_batch=0, max_batch=6, side_cap=None))
def test_device_normalization_matches_preprocess(images):
    """Exact mode repeats preprocess bit for bit; fused mode stays within 5e-7 and inside
    the declared input range."""
    reference = reference_preprocess(images)
    exact = to_model_input(torch.from_numpy(images)).numpy()
    np.testing.assert_array_equal(exact, reference)
    fused = to_model_input(torch.from_numpy(images), fused=True).numpy()
    np.testing.assert_allclose(fused, reference, rtol=0, atol=5e-7)
    if fused.size:
        assert INPUT_RANGE[0] <= fused.min() and fused.max() <= INPUT_RANGE[1]


@pytest.mark.parametrize("name", _params())
def test_holdout_argmax_agreement_rate(name):
    """On real digits, the variant's argmax agrees with the plain path's on (nearly) all."""
    images, _ = pipeline.holdout()
    fast = predictor(name)
    agreement = float((fast(images).argmax(1) == pipeline.predict(images).argmax(1)).mean())
    assert agreement >= HOLDOUT_AGREEMENT[fast.precision], agreement


def test_empty_batch_gives_an_empty_result():
    out = predictor("cpu-fp32")(np.zeros((0, 28, 28), np.uint8))
    assert out.shape == (0, 10) and out.dtype == np.float32


@pytest.mark.parametrize("bad", [np.zeros((2, 28, 28), np.float32), np.zeros((28, 28), np.uint8),
                                 np.zeros((1, 4, 28), np.uint8), [[0]]])
def test_invalid_input_is_refused_like_pipeline_predict(bad):
    with pytest.raises(SchemaError) as fast_error:
        predictor("cpu-fp32")(bad)
    with pytest.raises(SchemaError) as reference_error:
        pipeline.predict(bad)
    assert str(fast_error.value) == str(reference_error.value)


def test_input_is_not_written():
    images = np.random.default_rng(0).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    before = images.copy()
    predictor("cpu-fp32")(images)
    np.testing.assert_array_equal(images, before)


def test_callers_model_is_left_untouched():
    model = pipeline.trained_model()
    FastPredictor(model, device="cpu", precision="bf16", channels_last=True)
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(("options", "message"), [
    (dict(precision="fp16"), "precision"),
    (dict(device="tpu"), "device"),
    (dict(device="cpu", cuda_graphs=True), "cuda_graphs"),
    (dict(device="cpu", graph_batches=()), "graph_batches"),
    (dict(device="cpu", graph_batches=(0, 4)), "graph_batches"),
])
def test_bad_options_are_refused_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        FastPredictor(pipeline.trained_model(), **options)


@pytest.mark.skipif(CUDA, reason="checks the message shown without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        FastPredictor(pipeline.trained_model(), device="cuda")


def test_describe_names_the_options():
    text = FastPredictor(pipeline.trained_model(), device="cpu", precision="bf16",
                         channels_last=True).describe()
    assert text == "cpu: bf16, channels_last"


@given(count=st.integers(1, 5000),
       batches=st.lists(st.integers(1, 700), min_size=1, max_size=4, unique=True))
def test_chunks_cover_every_row_once_with_captured_sizes(count, batches):
    batches = sorted(batches)
    pieces = chunks(count, batches)
    assert pieces[0][0] == 0 and pieces[-1][1] == count
    for (start, stop, bucket), following in zip(pieces, [*pieces[1:], None], strict=True):
        assert 0 < stop - start <= bucket and bucket in batches
        assert bucket == bucket_for(stop - start, batches)
        if following is not None:
            assert following[0] == stop


def test_bucket_for_picks_the_smallest_that_holds():
    assert bucket_for(1, (1, 64)) == 1
    assert bucket_for(2, (1, 64)) == 64
    assert bucket_for(65, (1, 64)) == 64


def test_fast_target_is_a_valid_target_with_the_fast_path():
    from mlprop.target import load_target

    fast = load_target("mlprop.digits.fast_predict:target")
    assert fast.name == "digits-fast"
    images, _ = fast.holdout()
    np.testing.assert_allclose(fast.predict(images[:5]), pipeline.predict(images[:5]),
                               atol=1e-4)


@needs_cuda
def test_graph_padding_and_chunking_do_not_change_rows():
    """A batch padded into a captured size, or split across several, gives the rows of
    the eager CUDA path."""
    graphed = FastPredictor(pipeline.trained_model(), device="cuda", graph_batches=(1, 4))
    eager = predictor("cuda-fp32-eager")
    images = np.random.default_rng(1).integers(0, 256, (11, 28, 28), dtype=np.uint8)
    for count in (1, 3, 4, 11):
        np.testing.assert_allclose(graphed(images[:count]), eager(images[:count]), atol=1e-5)
    assert {key[0] for key in graphed.graphs} == {1, 4}


@needs_cuda
def test_graph_replay_reads_new_inputs():
    """A replayed graph sees the new batch, not the one it was captured with."""
    graphed = predictor("cuda-fp32-graphs")
    rng = np.random.default_rng(2)
    first, second = (rng.integers(0, 256, (8, 28, 28), dtype=np.uint8) for _ in range(2))
    out_first = graphed(first)
    out_second = graphed(second)
    np.testing.assert_allclose(out_second, pipeline.predict(second), atol=1e-4)
    assert not np.allclose(out_first, out_second)
