"""Data a schema rejects, each example with exactly one defect and the field(s) it trips.

Semantics of :class:`InvalidExample`: ``field`` names the one defect, using the field names
of :meth:`mlprop.schema.ImageSchema.validate`; ``fields`` lists *every* field ``validate``
reports for the example, in the order it reports them. They differ in one case only: NaN or
inf in a float batch (``field="images.values"``) is necessarily also a float dtype, and
``ImageSchema`` reports both, so ``fields == ("images.dtype", "images.values")``. For every
other defect ``fields == (field,)``. Tests assert ``SchemaError.fields == list(ex.fields)``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from mlprop.schema import ImageSchema
from mlprop.strategies._validation import (
    batch_range,
    check_choices,
    check_int,
    check_schema,
    side_range,
)
from mlprop.strategies.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_SIDE_CAP,
    batch_of_shape,
    batch_upper,
    place_channels,
    schema_batch,
)
from mlprop.strategies.labels import labels_of_size

__all__ = ["INVALID_FIELDS", "InvalidExample", "invalid_data"]

INVALID_FIELDS: tuple[str, ...] = (
    "images.dtype",
    "images.values",
    "images.ndim",
    "images.height",
    "images.width",
    "images.channels",
    "images.layout",
    "images.alpha",
    "labels.dtype",
    "labels.ndim",
    "labels.length",
    "labels.values",
    "images",
    "labels",
)
"""Every defect ``invalid_data`` can produce, named by the field ``ImageSchema`` reports."""

_NEEDS_AN_IMAGE = frozenset({"images.values", "labels.values"})
_COLOUR_ONLY = frozenset({"images.channels", "images.layout", "images.alpha"})


def applicable_fields(schema: ImageSchema) -> tuple[str, ...]:
    """The defects ``schema`` can tell apart: channel, layout and alpha defects need a colour
    schema (alpha one of 3 channels), and a fixed size or side range that leaves room for
    a side other than the channel count."""
    fields = list(INVALID_FIELDS)
    unambiguous = schema.layout != "HW" and _sides_avoiding(schema) is not None
    if not unambiguous:
        fields = [f for f in fields if f not in _COLOUR_ONLY]
    elif schema.channels != 3:
        fields.remove("images.alpha")
    return tuple(fields)


def _sides_avoiding(schema: ImageSchema) -> list[int] | None:
    """Valid sides that differ from the channel count (``None`` if there are none)."""
    if schema.size is not None:
        ok = all(side != schema.channels for side in schema.size)
        return list(schema.size) if ok else None
    sides = [s for s in (schema.min_side, schema.max_side, schema.min_side + 1)
             if schema.min_side <= s <= schema.max_side and s != schema.channels]
    return sides or None


def _summary(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray(dtype={value.dtype}, shape={value.shape})"
    return f"{type(value).__name__}(len={len(value)})" if hasattr(value, "__len__") else repr(value)


@dataclass(frozen=True, eq=False)
class InvalidExample:
    """Images and labels with exactly one defect.

    ``field``: the defect, as the field name ``ImageSchema.validate`` uses.
    ``fields``: every field ``validate(images, labels)`` reports, in its order; ``(field,)``
    except for NaN/inf in float images (``field="images.values"``), which is also a wrong
    dtype: ``("images.dtype", "images.values")``. Defaults to ``(field,)``.
    ``description``: the defect in words, for failure messages.
    """

    images: Any
    labels: Any
    field: str
    description: str
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.fields:
            object.__setattr__(self, "fields", (self.field,))
        if self.field not in self.fields:
            raise ValueError(f"field {self.field!r} must be one of fields {self.fields!r}")

    def __repr__(self) -> str:
        return (
            f"InvalidExample(field={self.field!r}, fields={self.fields!r}, "
            f"description={self.description!r}, images={_summary(self.images)}, "
            f"labels={_summary(self.labels)})"
        )


@dataclass(frozen=True)
class _Context:
    schema: ImageSchema
    low: int
    high: int
    min_batch: int
    max_batch: int
    max_pixels: int

    def side(self, draw: st.DrawFn, index: int, *, avoid: int | None = None) -> int:
        """A valid height (``index`` 0) or width (1), never ``avoid`` when given."""
        if self.schema.size is not None:
            return int(self.schema.size[index])
        if avoid is None:
            return draw(st.integers(self.low, self.high))
        choices = [s for s in range(self.low, self.high + 1) if s != avoid]
        return draw(st.sampled_from(choices or [self.low]))

    def shape(
        self, draw: st.DrawFn, *, min_n: int = 0, h: int | None = None, w: int | None = None,
        avoid: int | None = None,
    ) -> tuple[int, int, int]:
        """A batch shape; ``h`` / ``w`` when given (invalid sides), else valid sides."""
        h = self.side(draw, 0, avoid=avoid) if h is None else h
        w = self.side(draw, 1, avoid=avoid) if w is None else w
        least = max(self.min_batch, min_n)
        n = draw(st.integers(least, batch_upper(least, self.max_batch, h,
                                                w * self.schema.channels, self.max_pixels)))
        return n, h, w

    def batch(self, draw: st.DrawFn, n: int, h: int, w: int) -> np.ndarray:
        """Images of shape ``n x h x w`` in the schema's layout (sides not checked)."""
        return draw(schema_batch(self.schema, n, h, w))

    def pair(self, draw: st.DrawFn, *, min_n: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Valid ``(images, labels)``, at least ``min_n`` of them."""
        n, h, w = self.shape(draw, min_n=min_n)
        return self.batch(draw, n, h, w), self.labels(draw, n)

    def labels(self, draw: st.DrawFn, n: int) -> np.ndarray:
        return draw(labels_of_size(self.schema.num_classes, n))


def _spots(draw: st.DrawFn, size: int) -> list[int]:
    """1 to 3 distinct flat positions in an array of ``size`` elements (``size >= 1``)."""
    return draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=min(3, size), unique=True))


def _images_dtype(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = ctx.pair(draw)
    dtype = np.dtype(
        draw(st.sampled_from(["float32", "float64", "int16", "int64", "uint16", "float16"]))
    )
    converted = batch.astype(dtype)
    detail = "same values"
    if dtype.kind == "f" and draw(st.booleans()):
        converted = converted / dtype.type(255)
        detail = "values scaled to [0, 1]"
    return InvalidExample(
        converted, targets, "images.dtype", f"images of dtype {dtype} instead of uint8 ({detail})"
    )


def _images_values(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = ctx.pair(draw, min_n=1)
    dtype = np.dtype(draw(st.sampled_from(["float32", "float64"])))
    converted = batch.astype(dtype)
    spots = _spots(draw, converted.size)
    bad = [draw(st.sampled_from([np.nan, np.inf, -np.inf])) for _ in spots]
    converted.flat[spots] = bad
    return InvalidExample(
        converted,
        targets,
        "images.values",
        f"{dtype} images with non-finite values {bad} at flat positions {spots}",
        ("images.dtype", "images.values"),
    )


def _colour_ndim(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    form = draw(st.sampled_from(["a single image without the batch axis",
                                 "a grayscale (N, H, W) batch", "an extra axis"]))
    if form.startswith("a single"):
        _, h, w = ctx.shape(draw, min_n=1)
        picture = ctx.batch(draw, 1, h, w)[0].copy()
        return InvalidExample(picture, ctx.labels(draw, picture.shape[0]), "images.ndim",
                              f"{form} {picture.shape} (labels: one per first-axis entry)")
    batch, targets = ctx.pair(draw)
    if form.startswith("a grey"):
        grey = np.ascontiguousarray(ctx.schema.to_channels_last(batch)[..., 0])
        return InvalidExample(grey, targets, "images.ndim", f"{form} {grey.shape} for a "
                                                           f"{ctx.schema.layout} schema")
    extra = batch[..., np.newaxis].copy()
    return InvalidExample(extra, targets, "images.ndim", f"{form} {extra.shape}")


def _images_ndim(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    if ctx.schema.layout != "HW":
        return _colour_ndim(draw, ctx)
    form = draw(st.sampled_from(["single image (H, W)", "(N, H, W, C)", "(N, C, H, W)"]))
    if form.startswith("single"):
        _, h, w = ctx.shape(draw)
        picture = draw(batch_of_shape(1, h, w))[0].copy()
        # validate() takes shape[0] (here H) as the number of images: match it so that
        # the missing batch axis is the only violation.
        return InvalidExample(
            picture,
            ctx.labels(draw, h),
            "images.ndim",
            f"a {form} without the batch axis (labels: one per row)",
        )
    batch, targets = ctx.pair(draw)
    channels = draw(st.sampled_from([1, 3]))
    axis = -1 if form == "(N, H, W, C)" else 1
    stacked = np.repeat(np.expand_dims(batch, axis), channels, axis=axis)
    return InvalidExample(stacked, targets, "images.ndim", f"4-D images {form} with C={channels}")


def _bad_side(draw: st.DrawFn, schema: ImageSchema) -> tuple[int, str]:
    if draw(st.booleans()):
        side = draw(
            st.one_of(
                st.just(schema.max_side + 1), st.integers(schema.max_side + 1, schema.max_side + 8)
            )
        )
        return side, f"above max_side={schema.max_side}"
    side = draw(st.one_of(st.just(schema.min_side - 1), st.integers(0, schema.min_side - 1)))
    return side, f"below min_side={schema.min_side}"


def _side_maker(axis_name: str) -> Callable[[st.DrawFn, _Context], InvalidExample]:
    def make(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
        side, why = _bad_side(draw, ctx.schema)
        if axis_name == "height":
            n, h, w = ctx.shape(draw, h=side)
        else:
            n, h, w = ctx.shape(draw, w=side)
        return InvalidExample(
            ctx.batch(draw, n, h, w),
            ctx.labels(draw, n),
            f"images.{axis_name}",
            f"images of shape {(n, h, w)}: {axis_name} {side} is {why}",
        )

    return make


def _channels_last(draw: st.DrawFn, ctx: _Context, channels: int) -> tuple[np.ndarray, ...]:
    """A valid-sided ``(N, H, W, channels)`` batch (sides never equal the schema's channel
    count, so the channel axis cannot be mistaken for the other layout) and labels."""
    n, h, w = ctx.shape(draw, avoid=ctx.schema.channels)
    planes = draw(schema_batch(_with_channels(ctx.schema, channels), n, h, w))
    return _with_channels(ctx.schema, channels).to_channels_last(planes), ctx.labels(draw, n)


def _with_channels(schema: ImageSchema, channels: int) -> ImageSchema:
    return ImageSchema(schema.num_classes, schema.min_side, schema.max_side, channels, "HWC")


def _images_channels(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    wanted = ctx.schema.channels
    others = [c for c in (1, 2, 3, 4, 5) if c != wanted and not (wanted == 3 and c == 4)]
    channels = draw(st.sampled_from(others))
    batch, targets = _channels_last(draw, ctx, channels)
    placed = place_channels(batch, ctx.schema.layout) if channels > 0 else batch
    return InvalidExample(placed, targets, "images.channels",
                          f"{channels} channel(s) instead of {wanted}: {placed.shape}")


def _images_layout(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = _channels_last(draw, ctx, ctx.schema.channels)
    flipped = "CHW" if ctx.schema.layout == "HWC" else "HWC"
    placed = place_channels(batch, flipped)
    return InvalidExample(placed, targets, "images.layout",
                          f"{flipped} images {placed.shape} where {ctx.schema.layout} is declared")


def _images_alpha(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = _channels_last(draw, ctx, 4)
    placed = place_channels(batch, ctx.schema.layout)
    return InvalidExample(placed, targets, "images.alpha",
                          f"RGBA images {placed.shape} where RGB (no alpha) is declared")


def _labels_dtype(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = ctx.pair(draw)
    dtype = np.dtype(draw(st.sampled_from(["float64", "float32", "str"])))
    return InvalidExample(
        batch,
        targets.astype(dtype),
        "labels.dtype",
        f"labels of dtype {dtype} (integral values) instead of an integer dtype",
    )


def _labels_ndim(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = ctx.pair(draw)
    form = draw(st.sampled_from(["column (N, 1)", "row (1, N)", "scalar ()"]))
    if form.startswith("column"):
        shaped = targets[:, None].copy()
    elif form.startswith("row"):
        shaped = targets[None, :].copy()
    else:
        shaped = np.asarray(targets[0] if targets.size else 0, dtype=np.int64)
    return InvalidExample(batch, shaped, "labels.ndim", f"labels as a {form} array")


def _labels_length(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, _ = ctx.pair(draw)
    n = batch.shape[0]
    pick = draw(st.integers(0, n + 2))
    count = pick if pick < n else pick + 1  # any length in [0, n + 3] except n
    return InvalidExample(
        batch, ctx.labels(draw, count), "labels.length", f"{n} image(s) but {count} label(s)"
    )


def _labels_values(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
    batch, targets = ctx.pair(draw, min_n=1)
    k = ctx.schema.num_classes
    out_of_range = st.one_of(
        st.sampled_from([k, -1]), st.integers(k, 2**31 - 1), st.integers(-(2**31), -1)
    )
    spots = _spots(draw, targets.size)
    bad = [draw(out_of_range) for _ in spots]
    targets[spots] = bad
    return InvalidExample(
        batch,
        targets,
        "labels.values",
        f"labels {bad} at positions {spots}, outside [0, {k - 1}]",
    )


def _not_an_array(name: str) -> Callable[[st.DrawFn, _Context], InvalidExample]:
    def make(draw: st.DrawFn, ctx: _Context) -> InvalidExample:
        batch, targets = ctx.pair(draw)
        if name == "images":
            return InvalidExample(batch.tolist(), targets, "images", "images as nested lists")
        return InvalidExample(batch, targets.tolist(), "labels", "labels as a list")

    return make


_MAKERS: dict[str, Callable[[st.DrawFn, _Context], InvalidExample]] = {
    "images.dtype": _images_dtype,
    "images.values": _images_values,
    "images.ndim": _images_ndim,
    "images.height": _side_maker("height"),
    "images.width": _side_maker("width"),
    "images.channels": _images_channels,
    "images.layout": _images_layout,
    "images.alpha": _images_alpha,
    "labels.dtype": _labels_dtype,
    "labels.ndim": _labels_ndim,
    "labels.length": _labels_length,
    "labels.values": _labels_values,
    "images": _not_an_array("images"),
    "labels": _not_an_array("labels"),
}


@st.composite
def _invalid(draw: st.DrawFn, ctx: _Context, fields: tuple[str, ...]) -> InvalidExample:
    return _MAKERS[draw(st.sampled_from(fields))](draw, ctx)


def invalid_data(
    schema: ImageSchema,
    *,
    fields: Collection[str] | None = None,
    min_batch: int = 0,
    max_batch: int = 4,
    side_cap: int | None = DEFAULT_SIDE_CAP,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> st.SearchStrategy[InvalidExample]:
    """:class:`InvalidExample` s that ``schema.validate(ex.images, ex.labels)`` rejects with
    exactly ``ex.fields``.

    Defects (``fields`` restricts them; names from :data:`INVALID_FIELDS`):

    - ``images.dtype``: int16/int64/uint16/float16/float32/float64 images holding in-range
      values (floats possibly scaled to [0, 1]);
    - ``images.values``: NaN/inf in float32/float64 images (also reports ``images.dtype``);
    - ``images.ndim``: a single ``(H, W)`` image, or ``(N, H, W, C)`` / ``(N, C, H, W)``
      (colour schemas: a single image without the batch axis, a grayscale ``(N, H, W)``
      batch, an extra trailing axis);
    - ``images.channels``: another channel count; ``images.layout``: channels first where
      channels last is declared or the other way round; ``images.alpha``: RGBA where RGB is
      declared. Colour schemas only (alpha: 3 channels), and only when a valid side can
      differ from the channel count (else the defects are ambiguous); by default the
      defects a schema cannot have are left out, naming one raises ``InvalidArgument``;
    - ``images.height`` / ``images.width``: that side above ``max_side`` or below
      ``min_side`` (down to 0, so "too small" exists for every schema), the other side valid;
    - ``labels.dtype``: float or string labels; ``labels.ndim``: ``(N, 1)``, ``(1, N)`` or
      0-d labels; ``labels.length``: a label count other than N; ``labels.values``: 1 to 3
      labels outside ``[0, num_classes)``;
    - ``images`` / ``labels``: nested Python lists instead of arrays.

    Everything else is valid: N within ``[min_batch, max_batch]`` (at least 1 where the
    defect needs an element), valid sides capped as in :func:`~mlprop.strategies.images`.
    """
    schema = check_schema(schema)
    min_batch, max_batch = batch_range(min_batch, max_batch)
    low, high = side_range(schema, None, None, side_cap)
    max_pixels = check_int(max_pixels, "max_pixels", min_value=1)
    applicable = applicable_fields(schema)
    chosen = check_choices(fields, "fields", INVALID_FIELDS, default=applicable)
    impossible = [f for f in chosen if f not in applicable]
    if impossible:
        raise InvalidArgument(f"fields {impossible} cannot occur for {schema!r} (colour "
                              "defects need a colour schema; alpha needs 3 channels)")
    if max_batch == 0:
        impossible = [f for f in chosen if f in _NEEDS_AN_IMAGE]
        if fields is not None and impossible:
            raise InvalidArgument(f"fields {impossible} need at least one image, but max_batch=0")
        chosen = tuple(f for f in chosen if f not in _NEEDS_AN_IMAGE)
    ctx = _Context(schema, low, high, min_batch, max_batch, max_pixels)
    return _invalid(ctx, chosen)
