"""Properties of ``target.preprocess``: raw uint8 (N, H, W) -> float32 (N, *input_shape)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.checks import (
    as_numpy,
    assert_close,
    assert_dtype,
    assert_finite,
    assert_shape,
    fail,
    reproduction,
    requires,
)
from mlprop.errors import SchemaError


def _batches(target, **options):
    return gen.images(target.schema, **{"max_batch": 6, **options})


@given(data=st.data())
def test_preprocess_output_has_declared_shape_and_dtype(target, data):
    """Output is float32 of shape (N, *input_shape) for every valid batch, N = 0 included.

    Catches: float64 leaking out of a NumPy normalization; `np.squeeze` dropping the batch
    axis of a batch of one; a resize to the wrong size."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, images=images):
        out = target.preprocess(images)
        assert_shape(out, (len(images), *target.input_shape), "preprocess output")
        assert_dtype(out, "float32", "preprocess output")


@given(data=st.data())
def test_preprocess_output_is_finite_and_inside_declared_range(target, data):
    """Every preprocessed value is finite and inside `input_range`.

    Catches: a forgotten /255 (values 255x too large), a per-image standardisation that
    divides by a zero standard deviation on constant (all-black/all-white) images."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    low, high = target.input_range
    with reproduction(target, images=images):
        out = as_numpy(target.preprocess(images))
        assert_finite(out, "preprocess output")
        if out.size and (out.min() < low or out.max() > high):
            fail("preprocess output leaves the declared input_range",
                 f"values in [{low}, {high}]", f"values in [{out.min()}, {out.max()}]")


@given(data=st.data())
def test_preprocess_is_deterministic(target, data):
    """Preprocessing the same batch twice gives bit-identical output.

    Catches: random jitter or augmentation applied at inference time."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    with reproduction(target, images=images):
        assert_close(target.preprocess(images), target.preprocess(images.copy()),
                     "preprocess is not deterministic: a second call differs")


@given(data=st.data())
def test_preprocess_is_batch_independent(target, data):
    """Row i of preprocess(batch) equals preprocess(image i alone).

    Catches: normalisation with batch statistics (mean/std of the batch), which makes a
    sample's features depend on which other samples are served with it."""
    images = data.draw(_batches(target, min_batch=2), label="images")
    with reproduction(target, images=images):
        batch = as_numpy(target.preprocess(images))
        for index in range(len(images)):
            alone = as_numpy(target.preprocess(images[index:index + 1]))
            assert_close(batch[index:index + 1], alone,
                         f"preprocess is batch-dependent: row {index} of the batch differs "
                         "from preprocessing that image alone", atol=1e-6, rtol=1e-5)


@given(data=st.data())
def test_preprocess_is_permutation_equivariant(target, data):
    """preprocess(batch[p]) == preprocess(batch)[p] for every permutation p.

    Catches: shuffling or sorting the batch on the way through (a DataLoader with
    shuffle=True at inference), which misaligns outputs with inputs."""
    images = data.draw(_batches(target, min_batch=2), label="images")
    order = np.array(data.draw(st.permutations(range(len(images))), label="permutation"))
    with reproduction(target, images=images, permutation=order.tolist()):
        assert_close(target.preprocess(images[order]), as_numpy(target.preprocess(images))[order],
                     "preprocess is not permutation-equivariant", atol=1e-6, rtol=1e-5)


@given(data=st.data(), read_only=st.booleans())
def test_preprocess_never_writes_into_its_input(target, data, read_only):
    """The caller's array is unchanged after preprocessing, and a read-only array works.

    Catches: in-place normalisation or clipping (`images -= ...`, `np.clip(..., out=images)`)
    that corrupts the caller's data."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    original = images.copy()
    images.setflags(write=not read_only)
    with reproduction(target, images=original, read_only=read_only):
        target.preprocess(images)
        assert_close(images, original, "preprocess wrote into its input array")


@given(data=st.data())
def test_preprocess_accepts_empty_and_single_batches(target, data):
    """N = 0 and N = 1 give (0, *input_shape) and (1, *input_shape).

    Catches: code that stacks a list of rows (fails on N = 0) or squeezes (N = 1)."""
    single = data.draw(_batches(target, min_batch=1, max_batch=1), label="single")
    empty = np.zeros((0, *single.shape[1:]), np.uint8)
    for images in (empty, single):
        with reproduction(target, images=images):
            assert_shape(target.preprocess(images), (len(images), *target.input_shape),
                         f"preprocess output for a batch of {len(images)}")


IMAGE_FIELDS = ("images", "images.dtype", "images.values", "images.ndim", "images.height",
                "images.width")


def _assert_rejected(target, example) -> None:
    """``preprocess`` refuses ``example`` (one defect) with an error naming its field."""
    with reproduction(target, images=example.images, defect=example.description):
        try:
            target.preprocess(example.images)
        except SchemaError as exc:
            if not set(example.fields) & set(exc.fields):
                fail("preprocess rejected invalid input but named the wrong field",
                     f"one of {list(example.fields)}", str(exc.fields))
            return
        except (ValueError, TypeError):
            return
        fail("preprocess accepted invalid input", f"an error naming {example.fields[0]} "
             f"({example.description})", "it returned normally")


@given(data=st.data())
def test_preprocess_rejects_invalid_images_with_a_clear_error(target, data):
    """Images that break the schema raise a ValueError/TypeError naming the problem.

    Catches: silently casting float or oversized input to uint8 (garbage predictions
    instead of an error), and bare tracebacks from deep inside numpy or torch."""
    example = data.draw(gen.invalid_data(target.schema, fields=IMAGE_FIELDS), label="invalid")
    _assert_rejected(target, example)


@given(data=st.data())
def test_preprocess_accepts_every_valid_memory_layout(target, data):
    """Fortran-ordered, strided, negative-stride and read-only arrays preprocess to the same
    output as their C-contiguous copy.

    Catches: `torch.from_numpy` on a flipped (negative-stride) array, `.view` on a
    non-contiguous array, writes that fail on read-only memory."""
    images, _ = data.draw(gen.valid_data(target.schema, min_batch=1, max_batch=4,
                                         varied_layout=True), label="images")
    with reproduction(target, images=np.ascontiguousarray(images),
                      strides=images.strides, writeable=images.flags.writeable):
        assert_close(target.preprocess(images), target.preprocess(np.ascontiguousarray(images)),
                     "preprocess output depends on the memory layout of its input",
                     atol=1e-6, rtol=1e-5)


# --- colour: channel identity and layout (issue 15) -------------------------------------

CHANNEL_MEAN_ATOL = 2e-3
"""Tolerance, on the [0, 1] pixel scale, of a de-normalised per-channel mean."""


def _denormalised_channel_means(target, images: np.ndarray) -> np.ndarray:
    """(N, C) per-channel means of preprocess(images) mapped back to [0, 1] pixels with the
    target's declared ``channel_normalization``."""
    mean, std = (np.asarray(part, np.float64).reshape(1, -1, 1, 1)
                 for part in target.channel_normalization)
    out = as_numpy(target.preprocess(images)).astype(np.float64)
    return (out * std + mean).mean(axis=(2, 3))


@requires("channel_normalization")
@given(data=st.data())
def test_preprocess_keeps_each_channel_with_its_normalisation(target, data):
    """Permuting the raw input's channels permutes the per-channel means of the output (mapped
    back to pixels with the declared `channel_normalization` (mean, std)) in the same way.
    Targets with one channel, or whose model input has another channel count, pass trivially.

    Catches: BGR/RGB confusion (an OpenCV-style channel reversal inside preprocessing) and
    per-channel mean/std constants applied in the wrong channel order."""
    schema = target.schema
    if schema.channels < 2 or target.input_shape[0] != schema.channels:
        return
    images = data.draw(_batches(target, min_batch=1, max_batch=3, colours=(
        "saturated", "constants", "extremes", "distinct", "independent")), label="images")
    order = np.array(data.draw(st.permutations(range(schema.channels)), label="channel order"))
    permuted = schema.from_channels_last(np.ascontiguousarray(
        schema.to_channels_last(images)[..., order]))
    with reproduction(target, images=images, channel_order=order.tolist()):
        expected = _denormalised_channel_means(target, images)[:, order]
        assert_close(_denormalised_channel_means(target, permuted), expected,
                     f"permuting the input channels by {order.tolist()} does not permute the "
                     "de-normalised per-channel means of the output the same way",
                     atol=CHANNEL_MEAN_ATOL)


@given(data=st.data())
def test_preprocess_puts_channel_constants_on_the_channel_axis(target, data):
    """An image whose channels hold distinct constants comes out constant over height and
    width in every channel of the model input (grayscale: a constant image stays constant).

    Catches: channels-last images read as channels-first (`x.view(N, C, H, W)` or
    `reshape` instead of `permute(0, 3, 1, 2)`), which smears the colours across the image."""
    schema = target.schema
    shape = data.draw(_batches(target, min_batch=1, max_batch=3, kinds=("black",)),
                      label="shape").shape
    count = schema.channels
    levels = data.draw(st.lists(st.integers(0, 255), min_size=count, max_size=count,
                                unique=count <= 256), label="channel constants")
    last = schema.to_channels_last(np.zeros(shape, np.uint8)).shape
    images = schema.from_channels_last(np.ascontiguousarray(np.broadcast_to(
        np.array(levels, np.uint8), last)))
    low, high = target.input_range
    tolerance = 1e-4 * (high - low)
    with reproduction(target, shape=shape, channel_constants=levels):
        out = as_numpy(target.preprocess(images)).astype(np.float64)
        spread = out.max(axis=(2, 3)) - out.min(axis=(2, 3))
        if spread.max() > tolerance:
            image, channel = np.unravel_index(int(spread.argmax()), spread.shape)
            fail("a channel of the model input is not constant for an image of per-channel "
                 "constants (the channel values are smeared across height and width)",
                 f"max - min over (H, W) <= {tolerance:.2g} in every channel",
                 f"{spread.max():.4g} in image {image}, channel {channel}")


COLOUR_FIELDS = ("images.channels", "images.layout", "images.alpha")


@given(data=st.data())
def test_preprocess_rejects_wrong_channels_layout_and_alpha(target, data):
    """A colour batch with another channel count, the other channel layout (channels first
    where channels last is declared, or the reverse) or an alpha channel where none is
    declared raises an error naming it. Grayscale targets pass trivially.

    Catches: preprocessing that "helpfully" guesses (transposes whatever looks channels-first,
    drops a fourth channel): a layout bug upstream then yields plausible garbage, never an
    error."""
    from mlprop.strategies.invalid import applicable_fields

    fields = [f for f in COLOUR_FIELDS if f in applicable_fields(target.schema)]
    if not fields:
        return
    example = data.draw(gen.invalid_data(target.schema, fields=fields), label="invalid")
    _assert_rejected(target, example)
