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
    not_checked,
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


ROUNDING_ULPS = 8
"""Float32 steps (relative to the range's magnitude) a value may sit outside input_range."""


@given(data=st.data())
def test_preprocess_output_is_finite_and_inside_declared_range(target, data):
    """Every preprocessed value is finite and inside `input_range` (give or take float32
    rounding: ``ROUNDING_ULPS`` steps).

    Catches: a forgotten /255 (values 255x too large), a per-image standardisation that
    divides by a zero standard deviation on constant (all-black/all-white) images."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    low, high = target.input_range
    # float32 rounding: (0 - MEAN) / STD computed in float32 may land a few ulps past the
    # same bound computed in float64 (a range declared from the formula is not a bug)
    slack = ROUNDING_ULPS * float(np.finfo(np.float32).eps) * max(1.0, abs(low), abs(high))
    with reproduction(target, images=images):
        out = as_numpy(target.preprocess(images))
        assert_finite(out, "preprocess output")
        if out.size and (out.min() < low - slack or out.max() > high + slack):
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
    output as their C-contiguous copy: every layout of :data:`mlprop.strategies.IMAGE_LAYOUTS`
    is tried on each drawn batch, so no layout depends on what Hypothesis happens to draw.

    Catches: `torch.from_numpy` on a flipped (negative-stride) array, `.view` on a
    non-contiguous array, writes that fail on read-only memory."""
    images, _ = data.draw(gen.valid_data(target.schema, min_batch=1, max_batch=4),
                          label="images")
    images = np.ascontiguousarray(images)
    expected = as_numpy(target.preprocess(images.copy()))
    for layout in gen.IMAGE_LAYOUTS:
        laid_out = gen.in_layout(images, layout)
        with reproduction(target, images=images, layout=layout, strides=laid_out.strides,
                          writeable=laid_out.flags.writeable):
            assert_close(target.preprocess(laid_out), expected,
                         f"preprocess output depends on the memory layout of its input "
                         f"({layout!r} layout)", atol=1e-6, rtol=1e-5)


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


# --- orientation and the declared normalisation (issue 24) -----------------------------

LIT_CONTRAST = 32
"""Least difference, in grey levels, between the lit half and the background in every channel
of the half-lit images (enough to stand far above float32 rounding after normalisation)."""

SIDES = {"top": (0, +1), "bottom": (0, -1), "left": (1, +1), "right": (1, -1)}
"""Lit side -> (image axis it lies along: 0 height, 1 width; +1 the first half, -1 the second)."""

OPPOSITE = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}


def _half_contrasts(out: np.ndarray) -> np.ndarray:
    """(2, C) mean of the first half minus mean of the second half of each channel of a
    (C, H, W) model input, along height (row 0) and width (row 1); a middle line is left out."""
    height, width = out.shape[1:]
    vertical = out[:, :height // 2].mean(axis=(1, 2)) - out[:, (height + 1) // 2:].mean(axis=(1, 2))
    horizontal = (out[:, :, :width // 2].mean(axis=(1, 2))
                  - out[:, :, (width + 1) // 2:].mean(axis=(1, 2)))
    return np.stack([vertical, horizontal])


def _preprocessed_alone(target, channels_last: np.ndarray) -> np.ndarray:
    """preprocess of one (H, W, C) image in the schema's layout, as float64 (C', H', W')."""
    image = np.ascontiguousarray(target.schema.from_channels_last(channels_last[np.newaxis]))
    return as_numpy(target.preprocess(image)).astype(np.float64)[0]


@st.composite
def _half_lit(draw, shape: tuple[int, ...]):
    """(side, image, lit levels, background levels): an (H, W, C) image lit in one half (the
    middle line of an odd side drawn in or out), lit brighter or darker than the background
    in every channel by at least LIT_CONTRAST."""
    sides = [side for side, (axis, _) in SIDES.items() if shape[axis] >= 2]
    side = draw(st.sampled_from(sides))
    axis, direction = SIDES[side]
    length, count = shape[axis], shape[2]
    lit_lines = length // 2 + (length % 2 and draw(st.booleans()))
    dark = np.array(draw(st.lists(st.integers(0, 255 - LIT_CONTRAST), min_size=count,
                                  max_size=count)))
    bright = np.minimum(dark + np.array(draw(st.lists(
        st.integers(LIT_CONTRAST, 255), min_size=count, max_size=count))), 255)
    lit, background = (bright, dark) if draw(st.booleans()) else (dark, bright)
    image = np.empty(shape, np.uint8)
    image[...] = background.astype(np.uint8)
    band = slice(0, lit_lines) if direction > 0 else slice(length - lit_lines, length)
    image[(slice(None), band) if axis else band] = lit.astype(np.uint8)
    return side, image, lit.astype(np.uint8), background.astype(np.uint8)


@given(data=st.data())
def test_preprocess_keeps_the_image_orientation(target, data):
    """An image lit only in one half (top, bottom, left or right) comes out lit in the same
    half of the model input, in the declared (C, H, W) layout. Measured on the difference D
    between the preprocessed image and its mirror image (lit in the other half), so padding
    and crops common to both cancel: in every channel the contrast of D between the two halves
    along the lit axis exceeds its contrast across it, and has the sign that the lit level has
    over the background (two constant images of those levels, so any normalisation, inverting
    ones included, is judged on its own scale). Halves survive a centre crop, a letterbox or an
    aspect-preserving resize; the lit side, image size, levels and middle line are drawn.

    Catches: height and width swapped on the way to channels-first (``permute(0, 3, 2, 1)``
    instead of ``permute(0, 3, 1, 2)``: a transposed image, square shapes still match), and
    images read upside down (a bottom-left origin) or mirrored."""
    schema = target.schema
    low, high = target.input_range
    tolerance = 1e-4 * (high - low)
    if min(target.input_shape[1:]) < 2:
        not_checked(f"the model input {target.input_shape} has a side under 2 pixels: it has no "
                    "halves to compare")
    options = {} if schema.size is not None or schema.max_side < 2 else {
        "min_side": max(2, schema.min_side)}
    cap = max(gen.DEFAULT_SIDE_CAP, 2 * max(target.input_shape[1:]))  # down- and upscaling
    shape = schema.to_channels_last(data.draw(_batches(
        target, min_batch=1, max_batch=1, kinds=("black",), side_cap=cap, **options),
        label="shape")).shape[1:]
    if max(shape[:2]) < 2:
        not_checked(f"the schema's images are {shape[0]}x{shape[1]}: no side has two halves")
    side, image, lit, background = data.draw(_half_lit(shape), label="half-lit image")
    axis, direction = SIDES[side]
    mirror = np.ascontiguousarray(np.flip(image, axis=axis))
    other = ("left - right", "top - bottom")[axis]
    along_name = f"{side} - {OPPOSITE[side]}"
    with reproduction(target, image=schema.from_channels_last(image[np.newaxis]), lit_side=side,
                      lit_levels=lit.tolist(), background_levels=background.tolist()):
        contrasts = _half_contrasts(_preprocessed_alone(target, image)
                                    - _preprocessed_alone(target, mirror))
        along, across = direction * contrasts[axis], contrasts[1 - axis]
        response = (_preprocessed_alone(target, np.broadcast_to(lit, shape)).mean(axis=(1, 2))
                    - _preprocessed_alone(target, np.broadcast_to(background, shape)
                                          ).mean(axis=(1, 2)))
        shows = np.maximum(np.abs(along), np.abs(across)) > tolerance
        if not shows.any():
            not_checked("an image lit in one half and its mirror image give the same model input "
                        "in every channel; only a pipeline that keeps where the light is can be "
                        "judged")
        swapped = shows & (np.abs(along) <= np.abs(across) + tolerance)
        if swapped.any():
            c = int(np.flatnonzero(swapped)[0])
            fail(f"an image whose {side} half is set apart (another level than the rest) does "
                 "not come out set apart along the same axis of the model input: height and "
                 "width are swapped (a transposed or quarter-turned "
                 "image)", f"|{along_name} contrast| > |{other} contrast| in channel {c} (of the "
                 "image minus its mirror image)",
                 f"{along_name} {along[c]:.4g}, {other} {across[c]:.4g}")
        calibrated = shows & (np.abs(response) > tolerance)
        if not calibrated.any():
            not_checked("constant images of the lit and the background levels give the same "
                        "model input (a per-image standardisation?), so which way is brighter "
                        "cannot be told; the flip check needs brightness to reach the model")
        flipped = calibrated & (np.sign(along) != np.sign(response))
        if flipped.any():
            c = int(np.flatnonzero(flipped)[0])
            what = "upside down" if axis == 0 else "mirrored left to right"
            fail(f"an image whose {side} half is set apart (another level than the rest) comes "
                 f"out set apart in the {OPPOSITE[side]} half of the model input: the image is "
                 f"flipped {what}",
                 f"{along_name} contrast (of the image minus its mirror image) with the sign of "
                 f"(constant lit image - constant background image) = {response[c]:.4g} in "
                 f"channel {c}", f"{along_name} contrast {along[c]:.4g}")


def _declared_normalisation(target) -> tuple[np.ndarray, np.ndarray]:
    """The declared (mean, std), as float64 arrays of shape (C,), after checking that they
    describe the model input's channels (else not checked; a target without the declaration
    never gets here: ``requires("channel_normalization")``)."""
    mean, std = (np.asarray(part, np.float64) for part in target.channel_normalization)
    if target.input_shape[0] != len(mean):
        not_checked(f"channel_normalization gives {len(mean)} channel(s) (one per raw channel) "
                    f"but the model input has {target.input_shape[0]}: which constant belongs "
                    "to which model channel is not declared")
    return mean, std


def _normalisation_hint(level: float, value: float, mean: float, std: float) -> str:
    """What a wrong value looks like, in words (empty when nothing familiar)."""
    expected = (level / 255 - mean) / std
    if abs(value - (expected - mean) / std) <= CHANNEL_MEAN_ATOL / std ** 2:
        return "; it equals the value normalised twice"
    if 0 < level < 255 and abs(value - (1 - mean) / std) <= CHANNEL_MEAN_ATOL / std:
        return "; it is what level 255 gives: scaled by the image's own maximum instead of 255?"
    return ""


@requires("channel_normalization")
@given(data=st.data())
def test_preprocess_normalises_constant_images_with_the_declared_constants(target, data):
    """A constant image of level v_c in channel c comes out as (v_c / 255 - mean_c) / std_c at
    every pixel of channel c of the model input, with the declared `channel_normalization`
    (mean, std), within half a grey level (resize interpolation and float32 rounding). Levels
    0, 255 and in between are drawn, the same in every channel or not; images are square, so
    an aspect-preserving resize or a letterbox adds no padding. Grey targets declare one
    (mean,), (std,).

    Catches: scaling by each image's own maximum (`x / x.max()`) instead of by 255, and
    normalising twice (with `input_range` widened to match, so the range check passes);
    constants that do not match what preprocess really does."""
    mean, std = _declared_normalisation(target)
    schema = target.schema
    shape = data.draw(_batches(target, min_batch=1, max_batch=4, kinds=("black",), square=True),
                      label="shape").shape
    count = schema.channels
    level = st.one_of(st.sampled_from([0, 255]), st.integers(0, 255))
    rows = []
    for _ in range(shape[0]):
        same = data.draw(st.booleans(), label="same level in every channel")
        rows.append([data.draw(level, label="level")] * count if same else
                    data.draw(st.lists(level, min_size=count, max_size=count), label="levels"))
    levels = np.array(rows, np.float64)
    last = schema.to_channels_last(np.zeros(shape, np.uint8)).shape
    images = schema.from_channels_last(np.ascontiguousarray(np.broadcast_to(
        levels.astype(np.uint8)[:, None, None, :], last)))
    expected = (levels / 255 - mean) / std
    tolerance = CHANNEL_MEAN_ATOL / std
    with reproduction(target, shape=shape, levels=levels.astype(int).tolist()):
        out = as_numpy(target.preprocess(images)).astype(np.float64)
        error = np.abs(out - expected[:, :, None, None]).max(axis=(2, 3)) / tolerance
        if error.max() > 1:
            image, c = np.unravel_index(int(error.argmax()), error.shape)
            spot = np.unravel_index(int(np.abs(out[image, c] - expected[image, c]).argmax()),
                                    out.shape[2:])
            value = float(out[image, c][spot])
            fail("a constant image does not come out as (v / 255 - mean) / std with the declared "
                 "channel_normalization",
                 f"level {levels[image, c]:.0f} in channel {c} -> ({levels[image, c]:.0f} / 255 - "
                 f"{mean[c]:.4g}) / {std[c]:.4g} = {expected[image, c]:.5g} "
                 f"(within {tolerance[c]:.2g}) at every pixel",
                 f"{value:.5g} at pixel {tuple(int(i) for i in spot)} of image {image}, which "
                 f"reads as level {255 * (value * std[c] + mean[c]):.1f}"
                 + _normalisation_hint(levels[image, c], value, mean[c], std[c]))
