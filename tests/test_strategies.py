"""Meta-tests of the ``strategies`` package: bounds, edge-case coverage, validity, arguments."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import mlprop.strategies as S
from mlprop.errors import SchemaError
from mlprop.schema import LAYOUTS, ImageSchema
from mlprop.strategies.invalid import applicable_fields

SCHEMA = ImageSchema(num_classes=10, min_side=8, max_side=64)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIND = settings(max_examples=500, database=None, phases=[Phase.generate])
SHRINK = settings(max_examples=100, database=None, phases=[Phase.generate, Phase.shrink])


def sample(strategy: st.SearchStrategy[Any], n: int = 100) -> list[Any]:
    """``n`` examples drawn the way ``@given`` draws them (no shrinking, no database)."""
    seen: list[Any] = []

    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        seen.append(value)

    collect()
    return seen


def reachable(strategy: st.SearchStrategy[Any], condition: Callable[[Any], bool]) -> Any:
    """An example satisfying ``condition`` (``find`` raises ``NoSuchExample`` otherwise)."""
    return find(strategy, condition, settings=FIND)


def check_batch(batch: np.ndarray, low: int, high: int, min_batch: int, max_batch: int) -> None:
    assert isinstance(batch, np.ndarray)
    assert batch.dtype == np.uint8
    assert batch.ndim == 3
    assert batch.flags.c_contiguous and batch.flags.writeable
    n, h, w = batch.shape
    assert min_batch <= n <= max_batch
    assert low <= h <= high and low <= w <= high


# --- images ---------------------------------------------------------------------------------


@FAST
@given(data=st.data())
def test_images_respect_schema_batch_and_side_bounds(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=48), label="schema")
    min_batch = data.draw(st.integers(0, 3), label="min_batch")
    max_batch = data.draw(st.integers(min_batch, 6), label="max_batch")
    batch = data.draw(S.images(schema, min_batch=min_batch, max_batch=max_batch), label="batch")
    high = min(schema.max_side, max(schema.min_side, S.DEFAULT_SIDE_CAP))
    check_batch(batch, schema.min_side, high, min_batch, max_batch)
    schema.validate(batch)


@FAST
@given(data=st.data())
def test_images_respect_narrowed_sides_and_square(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=40), label="schema")
    low = data.draw(st.integers(schema.min_side, schema.max_side), label="min_side")
    high = data.draw(st.integers(low, schema.max_side), label="max_side")
    square = data.draw(st.booleans(), label="square")
    batch = data.draw(
        S.images(schema, min_side=low, max_side=high, square=square, max_batch=3), label="batch"
    )
    check_batch(batch, low, high, 0, 3)
    if square:
        assert batch.shape[1] == batch.shape[2]


def test_side_cap_applies_by_default_and_can_be_lifted() -> None:
    assert all(b.shape[1] <= 32 and b.shape[2] <= 32 for b in sample(S.images(SCHEMA), 50))
    uncapped = S.images(SCHEMA, side_cap=None, max_batch=1)
    assert reachable(uncapped, lambda b: b.shape[1] > 32).shape[1] <= 64
    explicit = S.images(SCHEMA, max_side=64, max_batch=1)
    assert reachable(explicit, lambda b: b.shape[2] > 32).shape[2] <= 64


def test_side_cap_never_goes_below_the_schema_minimum() -> None:
    schema = ImageSchema(num_classes=3, min_side=40, max_side=50)
    for batch in sample(S.images(schema, max_batch=2), 20):
        assert batch.shape[1:] == (40, 40)
        schema.validate(batch)


def test_max_pixels_lowers_the_batch_size_but_not_below_one() -> None:
    schema = ImageSchema(num_classes=3, min_side=4, max_side=30)
    for batch in sample(S.images(schema, max_batch=100, max_pixels=400), 50):
        n, h, w = batch.shape
        assert n * h * w <= 400 or n == 1


@FAST
@given(data=st.data())
def test_image_is_a_single_valid_image(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=40), label="schema")
    picture = data.draw(S.image(schema), label="image")
    assert picture.dtype == np.uint8 and picture.ndim == 2
    schema.validate(picture[None])


@pytest.mark.parametrize("kind", S.IMAGE_KINDS)
def test_every_kind_gives_valid_images_even_at_one_pixel(kind: str) -> None:
    for schema in (ImageSchema(2, 1, 3), SCHEMA):
        for picture in sample(S.image(schema, kinds=[kind]), 25):
            assert picture.dtype == np.uint8
            schema.validate(picture[None])


def test_kinds_restrict_the_images() -> None:
    assert all(not b.any() for b in sample(S.images(SCHEMA, kinds=["black"]), 30))
    assert all((b == 255).all() for b in sample(S.images(SCHEMA, kinds=["white"]), 30))


# --- edge cases are reachable ---------------------------------------------------------------


def _per_image(b: np.ndarray) -> np.ndarray:
    return b.reshape(b.shape[0], b.shape[1] * b.shape[2])


def _mixed_black_and_white(b: np.ndarray) -> bool:
    flat = _per_image(b)
    return bool((flat == 0).all(axis=1).any() and (flat == 255).all(axis=1).any())


EDGE_CASES: dict[str, Callable[[np.ndarray], bool]] = {
    "empty batch (N=0)": lambda b: b.shape[0] == 0,
    "one image (N=1)": lambda b: b.shape[0] == 1,
    "largest batch": lambda b: b.shape[0] == 8,
    "all-black batch": lambda b: len(b) > 1 and not b.any(),
    "all-white batch": lambda b: len(b) > 1 and bool((b == 255).all()),
    "0 and 255 in one image": lambda b: len(b) > 0 and b[0].min() == 0 and b[0].max() == 255,
    "an image with a single lit pixel": lambda b: (
        np.count_nonzero(_per_image(b), axis=1) == 1
    ).any(),
    "a mid-gray value": lambda b: bool(((b > 0) & (b < 255)).any()),
    "black and white images in one batch": _mixed_black_and_white,
    "non-square images": lambda b: b.shape[1] != b.shape[2],
    "smallest side": lambda b: b.shape[1] == SCHEMA.min_side,
    "largest (capped) side": lambda b: b.shape[2] == S.DEFAULT_SIDE_CAP,
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_image_edge_case_is_reachable(name: str) -> None:
    reachable(S.images(SCHEMA), EDGE_CASES[name])


def test_edge_pixel_values_are_frequent() -> None:
    # Measured over 25 runs of 300: 0 in 74-95% of batches, 255 in 59-75%.
    batches = sample(S.images(SCHEMA, min_batch=1, max_batch=3), 300)
    with_zero = sum(bool((b == 0).any()) for b in batches) / len(batches)
    with_max = sum(bool((b == 255).any()) for b in batches) / len(batches)
    assert with_zero > 0.6, with_zero
    assert with_max > 0.45, with_max


def test_images_shrink_to_small_black_batches() -> None:
    assert find(S.images(SCHEMA), lambda b: True, settings=SHRINK).shape == (0, 8, 8)
    smallest = find(S.images(SCHEMA, min_batch=1), lambda b: True, settings=SHRINK)
    assert smallest.shape == (1, 8, 8) and not smallest.any()
    two = find(S.images(SCHEMA), lambda b: len(b) >= 2 and b.any(), settings=SHRINK)
    assert two.shape == (2, 8, 8)


# --- labels ---------------------------------------------------------------------------------


@FAST
@given(data=st.data())
def test_labels_respect_class_and_size_bounds(data: st.DataObject) -> None:
    num_classes = data.draw(st.integers(1, 300), label="num_classes")
    min_size = data.draw(st.integers(0, 5), label="min_size")
    max_size = data.draw(st.integers(min_size, 10), label="max_size")
    values = data.draw(S.labels(num_classes, min_size=min_size, max_size=max_size))
    assert values.dtype == np.int64 and values.ndim == 1
    assert min_size <= len(values) <= max_size
    assert ((values >= 0) & (values < num_classes)).all()
    exact = data.draw(S.labels(num_classes, size=max_size), label="exact")
    assert exact.shape == (max_size,)


def test_labels_reach_the_first_and_last_class() -> None:
    reachable(S.labels(50, min_size=2), lambda y: 0 in y and 49 in y)


@FAST
@given(data=st.data())
def test_labelled_batches_have_one_valid_label_per_image(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=40), label="schema")
    batch, values = data.draw(S.labelled_batches(schema, max_batch=5), label="pair")
    assert values.dtype == np.int64 and values.shape == (batch.shape[0],)
    schema.validate(batch, values)


# --- schemas --------------------------------------------------------------------------------


@FAST
@given(schema=S.image_schemas(min_classes=3, max_classes=7, max_side=20))
def test_image_schemas_are_valid_and_bounded(schema: ImageSchema) -> None:
    assert isinstance(schema, ImageSchema)
    assert 3 <= schema.num_classes <= 7
    assert 1 <= schema.min_side <= schema.max_side <= 20


def test_image_schemas_reach_fixed_and_ranged_sizes_and_shrink() -> None:
    reachable(S.image_schemas(), lambda s: s.min_side == s.max_side > 1)
    reachable(S.image_schemas(), lambda s: s.min_side > 1 and s.max_side > s.min_side)
    assert find(S.image_schemas(), lambda s: True, settings=SHRINK) == ImageSchema(2, 1, 1)


# --- valid and invalid data -----------------------------------------------------------------


@FAST
@given(data=st.data())
def test_valid_data_is_accepted(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=40), label="schema")
    varied = data.draw(st.booleans(), label="varied_layout")
    batch, values = data.draw(S.valid_data(schema, max_batch=4, varied_layout=varied))
    schema.validate(batch, values)
    if not varied:
        assert batch.flags.c_contiguous and values.dtype == np.int64


@pytest.mark.parametrize(
    "condition",
    [
        lambda p: not p[0].flags.c_contiguous and not p[0].flags.f_contiguous,
        lambda p: not p[0].flags.writeable,
        lambda p: p[1].dtype == np.uint8,
    ],
    ids=["non-contiguous images", "read-only images", "uint8 labels"],
)
def test_varied_layouts_are_reachable(condition: Callable[[Any], bool]) -> None:
    reachable(S.valid_data(SCHEMA, min_batch=2, varied_layout=True), condition)


def assert_rejected_with_exactly(schema: ImageSchema, example: S.InvalidExample) -> None:
    assert example.field in example.fields
    with pytest.raises(SchemaError) as caught:
        schema.validate(example.images, example.labels)
    assert caught.value.fields == list(example.fields), example


@FAST
@given(data=st.data())
def test_invalid_data_is_rejected_with_exactly_its_fields(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=40), label="schema")
    assert_rejected_with_exactly(schema, data.draw(S.invalid_data(schema), label="example"))


@pytest.mark.parametrize("field", S.INVALID_FIELDS)
def test_each_invalid_field_is_produced_and_rejected(field: str) -> None:
    schemas = S.image_schemas(max_side=24, layouts=LAYOUTS).filter(
        lambda schema: field in applicable_fields(schema))

    @settings(max_examples=15, deadline=None, database=None)
    @given(schema=schemas, data=st.data())
    def check(schema: ImageSchema, data: st.DataObject) -> None:
        example = data.draw(S.invalid_data(schema, fields=[field]), label="example")
        assert example.field == field
        assert_rejected_with_exactly(schema, example)

    check()


def test_nan_examples_report_dtype_and_values() -> None:
    for example in sample(S.invalid_data(SCHEMA, fields=["images.values"]), 20):
        assert example.fields == ("images.dtype", "images.values")
        assert not np.isfinite(example.images).all()


def test_too_small_sides_exist_even_when_min_side_is_one() -> None:
    schema = ImageSchema(num_classes=2, min_side=1, max_side=4)
    strategy = S.invalid_data(schema, fields=["images.height"])
    reachable(strategy, lambda ex: ex.images.shape[1] == 0)
    reachable(strategy, lambda ex: ex.images.shape[1] == 5)


def test_invalid_data_without_images_skips_defects_that_need_one() -> None:
    examples = sample(S.invalid_data(SCHEMA, max_batch=0), 60)
    assert {ex.field for ex in examples}.isdisjoint({"images.values", "labels.values"})
    for example in examples:
        assert_rejected_with_exactly(SCHEMA, example)


def test_invalid_example_fields_default_to_its_field() -> None:
    example = S.InvalidExample(np.zeros(3), None, "images.ndim", "1-D")
    assert example.fields == ("images.ndim",)
    assert "images.ndim" in repr(example)
    with pytest.raises(ValueError, match="must be one of"):
        S.InvalidExample(None, None, "labels", "x", ("images",))


# --- seeds and magnitudes -------------------------------------------------------------------


@FAST
@given(seed=S.seeds(), magnitude=S.magnitudes(), scaled=S.magnitudes(min_value=2, max_value=5))
def test_seeds_and_magnitudes_respect_their_bounds(
    seed: int, magnitude: float, scaled: float
) -> None:
    assert isinstance(seed, int) and 0 <= seed <= S.MAX_SEED
    assert isinstance(magnitude, float) and 0.0 <= magnitude <= 1.0
    assert 2.0 <= scaled <= 5.0


def test_seeds_shrink_to_zero_and_reach_large_values() -> None:
    assert find(S.seeds(), lambda s: True, settings=SHRINK) == 0
    reachable(S.seeds(), lambda s: s > 2**31)


def test_magnitudes_favour_zero_and_small_values() -> None:
    drawn = sample(S.magnitudes(), 200)
    assert 0.0 in drawn and 1.0 in drawn
    assert sum(m < 0.01 for m in drawn) / len(drawn) > 0.3
    assert not any(str(m) == "-0.0" for m in drawn)
    assert find(S.magnitudes(), lambda m: True, settings=SHRINK) == 0.0


# --- argument validation --------------------------------------------------------------------

BAD_ARGUMENTS: dict[str, Callable[[], Any]] = {
    "images: not a schema": lambda: S.images((10, 8, 64)),
    "images: min_batch > max_batch": lambda: S.images(SCHEMA, min_batch=5, max_batch=2),
    "images: negative min_batch": lambda: S.images(SCHEMA, min_batch=-1),
    "images: float max_batch": lambda: S.images(SCHEMA, max_batch=2.5),
    "images: bool max_batch": lambda: S.images(SCHEMA, max_batch=True),
    "images: min_side below schema": lambda: S.images(SCHEMA, min_side=4),
    "images: max_side above schema": lambda: S.images(SCHEMA, max_side=65),
    "images: min_side > max_side": lambda: S.images(SCHEMA, min_side=20, max_side=10),
    "images: zero side_cap": lambda: S.images(SCHEMA, side_cap=0),
    "images: non-bool square": lambda: S.images(SCHEMA, square=1),
    "images: unknown kind": lambda: S.images(SCHEMA, kinds=["zebra"]),
    "images: unknown colour mode": lambda: S.images(SCHEMA, colours=["sepia"]),
    "image_schemas: unknown layout": lambda: S.image_schemas(layouts=["WHC"]),
    "invalid_data: channel defect on a grey schema": lambda: S.invalid_data(
        SCHEMA, fields=["images.channels"]),
    "invalid_data: alpha defect on a 4-channel schema": lambda: S.invalid_data(
        ImageSchema(3, 8, 16, channels=4, layout="HWC"), fields=["images.alpha"]),
    "images: kinds as a string": lambda: S.images(SCHEMA, kinds="black"),
    "images: no kinds": lambda: S.images(SCHEMA, kinds=[]),
    "images: zero max_pixels": lambda: S.images(SCHEMA, max_pixels=0),
    "image: not a schema": lambda: S.image(None),
    "labels: zero classes": lambda: S.labels(0, size=3),
    "labels: a schema as num_classes": lambda: S.labels(SCHEMA, size=3),
    "labels: size and max_size": lambda: S.labels(3, size=3, max_size=4),
    "labels: negative size": lambda: S.labels(3, size=-1),
    "labels: min_size > max_size": lambda: S.labels(3, min_size=4, max_size=2),
    "labelled_batches: not a schema": lambda: S.labelled_batches("digits"),
    "image_schemas: one class": lambda: S.image_schemas(max_classes=1),
    "image_schemas: zero side": lambda: S.image_schemas(max_side=0),
    "image_schemas: min_classes > max_classes": lambda: S.image_schemas(
        min_classes=9, max_classes=3
    ),
    "valid_data: min_batch > max_batch": lambda: S.valid_data(SCHEMA, min_batch=3, max_batch=1),
    "valid_data: non-bool varied_layout": lambda: S.valid_data(SCHEMA, varied_layout="yes"),
    "invalid_data: not a schema": lambda: S.invalid_data(object()),
    "invalid_data: unknown field": lambda: S.invalid_data(SCHEMA, fields=["images.colour"]),
    "invalid_data: field impossible without images": lambda: S.invalid_data(
        SCHEMA, fields=["labels.values"], max_batch=0
    ),
    "magnitudes: negative": lambda: S.magnitudes(min_value=-1.0),
    "magnitudes: min > max": lambda: S.magnitudes(min_value=0.5, max_value=0.1),
    "magnitudes: nan": lambda: S.magnitudes(max_value=float("nan")),
    "magnitudes: infinite": lambda: S.magnitudes(max_value=float("inf")),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_raise_invalid_argument_at_definition(case: str) -> None:
    with pytest.raises(InvalidArgument):
        BAD_ARGUMENTS[case]()


def test_invalid_argument_messages_name_the_option() -> None:
    with pytest.raises(InvalidArgument, match=r"min_batch=5.*max_batch=2"):
        S.images(SCHEMA, min_batch=5, max_batch=2)
    with pytest.raises(InvalidArgument, match=r"schema\.num_classes"):
        S.labels(SCHEMA, size=3)


# --- colour ---------------------------------------------------------------------------------

RGB = ImageSchema(num_classes=10, min_side=8, max_side=64, channels=3, layout="HWC")
RGB_CHW = ImageSchema(num_classes=10, min_side=8, max_side=64, channels=3, layout="CHW")
IMAGENET = ImageSchema(num_classes=1000, min_side=224, max_side=224, channels=3, layout="CHW",
                       size=(224, 224))


@FAST
@given(data=st.data())
def test_colour_images_come_in_the_declared_layout_and_channels(data: st.DataObject) -> None:
    schema = data.draw(S.image_schemas(max_side=40, layouts=("HWC", "CHW")), label="schema")
    batch = data.draw(S.images(schema, max_batch=4), label="batch")
    assert batch.dtype == np.uint8 and batch.ndim == 4 and batch.flags.c_contiguous
    assert batch.shape[schema.channel_axis] == schema.channels
    if schema.size is not None:
        assert tuple(batch.shape[a] for a in schema.side_axes) == schema.size
    schema.validate(batch)
    picture = data.draw(S.image(schema), label="image")
    assert picture.ndim == 3
    schema.validate(picture[None])


def _channels(batch: np.ndarray, schema: ImageSchema = RGB) -> np.ndarray:
    return schema.to_channels_last(batch)


COLOUR_CASES: dict[str, Callable[[np.ndarray], bool]] = {
    "grey but not black (all channels equal)": lambda b: b.any() and all(
        (c == c[..., :1]).all() for c in _channels(b)),
    "one saturated channel": lambda b: any(
        (c[..., 0] == 255).all() and not c[..., 1:].any() for c in _channels(b)),
    "per-channel distinct constants": lambda b: any(
        len({int(c[..., k].min()) for k in range(3)}) == 3 and all(
            c[..., k].min() == c[..., k].max() for k in range(3)) for c in _channels(b)),
    "every channel 0 or 255, mixed": lambda b: any(
        set(np.unique(c).tolist()) == {0, 255} and all(
            c[..., k].min() == c[..., k].max() for k in range(3)) for c in _channels(b)),
    "a channel swap changes a non-constant image": lambda b: any(
        c.std() > 0 and not np.array_equal(c, c[..., ::-1]) and not np.array_equal(
            c[..., 0], c[..., 1]) for c in _channels(b)),
}


@pytest.mark.parametrize("name", COLOUR_CASES)
def test_colour_edge_case_is_reachable(name: str) -> None:
    reachable(S.images(RGB, min_batch=1, max_batch=3), COLOUR_CASES[name])


def test_colour_images_in_chw_hold_the_same_cases() -> None:
    reachable(S.images(RGB_CHW, min_batch=1, max_batch=2),
              lambda b: b.shape[1] == 3 and (b[:, 0] == 255).all() and not b[:, 1:].any())


def test_colour_images_shrink_to_one_all_black_image() -> None:
    smallest = find(S.images(RGB, min_batch=1), lambda b: True, settings=SHRINK)
    assert smallest.shape == (1, 8, 8, 3) and not smallest.any()


def test_fixed_size_schema_gets_its_real_size_and_the_budget_counts_channels() -> None:
    for batch in sample(S.images(IMAGENET, max_batch=8), 10):
        assert batch.shape[1:] == (3, 224, 224)
        assert batch.shape[0] <= 1  # 224 * 224 * 3 > the default pixel budget: one image
    for batch in sample(S.images(RGB, max_batch=100, max_pixels=3000), 30):
        n, h, w, c = batch.shape
        assert n * h * w * c <= 3000 or n == 1


@pytest.mark.parametrize("field", ["images.channels", "images.layout", "images.alpha"])
def test_colour_defects_are_named_by_the_schema(field: str) -> None:
    for schema in (RGB, RGB_CHW):
        for example in sample(S.invalid_data(schema, fields=[field]), 20):
            assert_rejected_with_exactly(schema, example)


def test_default_invalid_data_leaves_out_defects_a_schema_cannot_have() -> None:
    assert set(applicable_fields(SCHEMA)).isdisjoint(
        {"images.channels", "images.layout", "images.alpha"})
    assert "images.alpha" not in applicable_fields(ImageSchema(3, 8, 16, channels=4,
                                                               layout="HWC"))
    assert {"images.channels", "images.layout", "images.alpha"} <= set(applicable_fields(RGB))
    # the only valid side equals the channel count: channels-first cannot be told apart
    assert "images.layout" not in applicable_fields(ImageSchema(3, 3, 3, channels=3,
                                                                layout="HWC"))


def test_valid_data_varies_the_memory_layout_of_colour_batches() -> None:
    for images, labels in sample(S.valid_data(RGB, max_batch=3, varied_layout=True), 30):
        RGB.validate(images, labels)


def test_in_layout_keeps_the_values_in_every_layout_and_refuses_unknown_ones():
    batch = np.arange(2 * 5 * 7, dtype=np.uint8).reshape(2, 5, 7)
    seen = set()
    for layout in S.IMAGE_LAYOUTS:
        laid_out = S.in_layout(batch, layout)
        assert np.array_equal(laid_out, batch), layout
        seen.add((laid_out.flags.c_contiguous, laid_out.flags.writeable, laid_out.strides))
    assert len(seen) == len(S.IMAGE_LAYOUTS)  # five different memory layouts
    with pytest.raises(InvalidArgument, match="layout"):
        S.in_layout(batch, "diagonal")


# --- separable_sets: the training properties' data ----------------------------------------

SEPARABLE_SCHEMAS = [SCHEMA, ImageSchema(num_classes=2, min_side=4, max_side=16),
                     ImageSchema(num_classes=1000, min_side=16, max_side=64, channels=3,
                                 layout="HWC"),
                     ImageSchema(num_classes=5, min_side=8, max_side=64, channels=3,
                                 layout="CHW", size=(20, 24))]


@pytest.mark.parametrize("schema", SEPARABLE_SCHEMAS, ids=["grey", "two", "hwc", "chw"])
def test_separable_sets_are_valid_balanced_and_separable_by_the_lit_cell(schema):
    for images, labels in sample(S.separable_sets(schema, max_classes=5), 25):
        schema.validate(images, labels)
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        classes, counts = np.unique(labels, return_counts=True)
        assert 2 <= len(classes) <= min(5, schema.num_classes) and len(set(counts)) == 1
        assert len(labels) == len(classes) * counts[0] and 6 <= counts[0] <= 10
        # the class is readable from where the image is bright: a nearest-centroid rule on
        # the thresholded pixels is right on every image
        bright = (schema.to_channels_last(images).mean(axis=-1) > 110).reshape(len(images), -1)
        centroids = np.stack([bright[labels == c].mean(axis=0) for c in classes])
        distances = ((bright[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
        assert (classes[distances.argmin(axis=1)] == labels).all()
        assert len({image.tobytes() for image in images}) == len(images)


def test_separable_sets_draw_grey_and_tinted_colour_images_and_any_class_ids():
    schema = SEPARABLE_SCHEMAS[2]
    tinted = reachable(S.separable_sets(schema), lambda pair: any(
        np.ptp(image[image.mean(axis=-1) > 150].astype(int).mean(axis=0)) > 20
        for image in pair[0]))
    assert tinted[0].shape[-1] == 3
    assert reachable(S.separable_sets(schema), lambda pair: pair[1].max() > 500)


@pytest.mark.parametrize(("options", "message"), [
    ({"min_classes": 1}, "min_classes=1 must be at least 2"),
    ({"min_classes": 4, "max_classes": 3}, "must not be greater than max_classes"),
    ({"min_per_class": 0}, "min_per_class=0 must be at least 1"),
    ({"max_per_class": 2.0}, "max_per_class=2.0 must be an int"),
    ({"max_side": 100}, "outside the schema's side range"),
    ({"max_classes": 10, "max_side": 3, "min_side": 2},
     "10 classes need images of at least 4 pixels"),
])
def test_separable_sets_reject_bad_options_at_definition(options, message):
    schema = ImageSchema(num_classes=10, min_side=2, max_side=64)
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        S.separable_sets(schema, **options)


def test_separable_sets_reject_a_schema_too_small_for_its_classes():
    with pytest.raises(InvalidArgument, match="lower max_classes"):
        S.separable_sets(ImageSchema(num_classes=4, min_side=1, max_side=1))
    with pytest.raises(InvalidArgument, match=re.escape("must be an mlprop.ImageSchema")):
        S.separable_sets(10)
