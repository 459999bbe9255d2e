"""Raw images: ``uint8`` batches (or one image) in the schema's layout and channels.

Grayscale schemas get ``(N, H, W)``; colour schemas ``(N, H, W, C)`` or ``(N, C, H, W)``.

Not just random pixels: each image is one of several *kinds* (:data:`IMAGE_KINDS`), from
all-black and all-white through saturated strokes, blobs, checkerboards and a single lit
pixel to upsampled low-resolution noise and plain random arrays. Kinds are listed simplest
first, so examples shrink toward small batches of small, all-black images. The edge values
0 and 255 appear in most images.

A colour image combines a kind with a *colour mode* (:data:`COLOUR_MODES`): grey (all channels
equal), one saturated channel, per-channel constants, per-channel extremes (each channel 0 or
255), channel-distinct intensities (a channel swap changes the image) and independent
channels. Grey comes first, so colour images shrink to all zeros too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlprop.schema import ImageSchema
from mlprop.strategies._validation import (
    batch_range,
    check_bool,
    check_choices,
    check_int,
    check_schema,
    side_range,
)

__all__ = ["COLOUR_MODES", "DEFAULT_MAX_PIXELS", "DEFAULT_SIDE_CAP", "IMAGE_KINDS", "image",
           "images"]

IMAGE_KINDS: tuple[str, ...] = (
    "black",  # all 0
    "white",  # all 255
    "constant",  # one gray level everywhere
    "pixel",  # a single lit pixel on black (or a single dark pixel on white)
    "strokes",  # 1-3 saturated lines, 1-3 pixels thick
    "blobs",  # 1-3 filled rectangles or disks at 255
    "checkerboard",  # 0/255 squares of any cell size (1: finest alternation)
    "gradient",  # a 0..255 ramp along rows or columns
    "lowres",  # random low-resolution pixels, upsampled by repetition
    "noise",  # a plain hypothesis.extra.numpy array, edge values favoured
)
"""Names of the image kinds, simplest first; pass a subset as ``kinds=`` to restrict."""

COLOUR_MODES: tuple[str, ...] = (
    "grey",  # every channel the same kind image (a grey picture in RGB)
    "saturated",  # one channel holds the kind image, the others are 0
    "constants",  # each channel its own constant
    "extremes",  # each channel all 0 or all 255
    "distinct",  # the kind image at a different intensity per channel
    "independent",  # each channel its own kind image
)
"""Names of the colour modes of multi-channel images, simplest first (``colours=``)."""

DEFAULT_SIDE_CAP = 32
"""Images are at most this many pixels a side unless ``max_side`` or ``side_cap`` says so."""

DEFAULT_MAX_PIXELS = 1 << 16
"""Soft cap on pixels per batch: the batch size shrinks to fit (never below ``min_batch``)."""

_PIXELS = st.one_of(st.sampled_from([0, 255]), st.integers(0, 255))
_MAX_SHAPES = 3


def _invertible(draw: st.DrawFn, image: np.ndarray) -> np.ndarray:
    """``image``, or its negative (255 - image), as drawn: bright-on-dark shrinks first."""
    return 255 - image if draw(st.booleans()) else image


@st.composite
def _pixel(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    image = np.zeros((h, w), np.uint8)
    image[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = draw(
        st.one_of(st.just(255), st.integers(1, 254))
    )
    return _invertible(draw, image)


@st.composite
def _strokes(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    image = np.zeros((h, w), np.uint8)
    for _ in range(draw(st.integers(1, _MAX_SHAPES))):
        r0, r1 = draw(st.integers(0, h - 1)), draw(st.integers(0, h - 1))
        c0, c1 = draw(st.integers(0, w - 1)), draw(st.integers(0, w - 1))
        thickness = draw(st.integers(1, max(1, min(3, h, w))))
        steps = max(abs(r1 - r0), abs(c1 - c0)) + 1
        rows = np.rint(np.linspace(r0, r1, steps)).astype(np.intp)
        cols = np.rint(np.linspace(c0, c1, steps)).astype(np.intp)
        for dr in range(thickness):
            for dc in range(thickness):
                image[np.minimum(rows + dr, h - 1), np.minimum(cols + dc, w - 1)] = 255
    return _invertible(draw, image)


@st.composite
def _blobs(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    image = np.zeros((h, w), np.uint8)
    rows, cols = np.ogrid[:h, :w]
    for _ in range(draw(st.integers(1, _MAX_SHAPES))):
        if draw(st.sampled_from(["rect", "disk"])) == "rect":
            r0, r1 = sorted((draw(st.integers(0, h - 1)), draw(st.integers(0, h - 1))))
            c0, c1 = sorted((draw(st.integers(0, w - 1)), draw(st.integers(0, w - 1))))
            image[r0 : r1 + 1, c0 : c1 + 1] = 255
        else:
            r, c = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            radius = draw(st.integers(0, max(h, w) // 2))
            image[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = 255
    return _invertible(draw, image)


@st.composite
def _checkerboard(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    cell = draw(st.integers(1, max(1, max(h, w) // 2)))
    phase = int(draw(st.booleans()))
    rows, cols = np.ogrid[:h, :w]
    return (((rows // cell + cols // cell + phase) % 2) * 255).astype(np.uint8)


@st.composite
def _gradient(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    along_rows = draw(st.booleans())
    ramp = np.rint(np.linspace(0, 255, w if along_rows else h)).astype(np.uint8)
    if draw(st.booleans()):
        ramp = ramp[::-1]
    shaped = ramp[None, :] if along_rows else ramp[:, None]
    return np.ascontiguousarray(np.broadcast_to(shaped, (h, w)))


@st.composite
def _lowres(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    fh = draw(st.integers(min(2, h), max(2, h)))
    fw = draw(st.integers(min(2, w), max(2, w)))
    small = draw(hnp.arrays(np.uint8, (math.ceil(h / fh), math.ceil(w / fw)), elements=_PIXELS))
    return np.ascontiguousarray(np.repeat(np.repeat(small, fh, axis=0), fw, axis=1)[:h, :w])


@functools.lru_cache(maxsize=4096)
def kind_strategy(kind: str, h: int, w: int) -> st.SearchStrategy[np.ndarray]:
    """Images of one kind and shape ``(h, w)``; a fresh, writable array every draw.

    A shape with a zero side (used for invalid data) has a single possible image.
    """
    if h == 0 or w == 0 or kind == "black":
        return st.builds(lambda: np.zeros((h, w), np.uint8))
    if kind == "white":
        return st.builds(lambda: np.full((h, w), 255, np.uint8))
    if kind == "constant":
        return st.integers(0, 255).map(lambda v: np.full((h, w), v, np.uint8))
    if kind == "noise":
        return hnp.arrays(np.uint8, (h, w), elements=_PIXELS)
    makers = {
        "pixel": _pixel,
        "strokes": _strokes,
        "blobs": _blobs,
        "checkerboard": _checkerboard,
        "gradient": _gradient,
        "lowres": _lowres,
    }
    return makers[kind](h, w)


@st.composite
def colour_image(draw: st.DrawFn, kind: str, h: int, w: int, c: int,
                 colours: tuple[str, ...] = COLOUR_MODES) -> np.ndarray:
    """One ``(h, w, c)`` image: ``kind`` combined with a drawn colour mode."""
    mode = draw(st.sampled_from(colours))
    if mode == "grey" or h == 0 or w == 0:
        base = draw(kind_strategy(kind, h, w))
        return np.ascontiguousarray(np.repeat(base[:, :, None], c, axis=2))
    if mode == "saturated":
        out = np.zeros((h, w, c), np.uint8)
        out[:, :, draw(st.integers(0, c - 1))] = draw(kind_strategy(kind, h, w))
        return out
    if mode in ("constants", "extremes"):
        values = st.sampled_from([0, 255]) if mode == "extremes" else _PIXELS
        levels = [draw(values) for _ in range(c)]
        return np.ascontiguousarray(np.broadcast_to(np.array(levels, np.uint8), (h, w, c)))
    if mode == "distinct":
        base = draw(kind_strategy(kind, h, w)).astype(np.float32)
        levels = draw(st.lists(st.integers(32, 255), min_size=c, max_size=c, unique=True)
                      ) if c <= 224 else list(range(c))
        scaled = base[:, :, None] * (np.array(levels, np.float32) / 255.0)
        return np.rint(scaled).astype(np.uint8)
    planes = [draw(kind_strategy(draw(st.sampled_from(IMAGE_KINDS)), h, w)) for _ in range(c)]
    return np.stack(planes, axis=2)


def place_channels(batch: np.ndarray, layout: str) -> np.ndarray:
    """A channels-last ``(N, H, W, C)`` batch in ``layout`` (C-contiguous)."""
    if layout == "HW":
        return np.ascontiguousarray(batch[..., 0])
    if layout == "CHW":
        return np.ascontiguousarray(np.moveaxis(batch, -1, 1))
    return np.ascontiguousarray(batch)


@st.composite
def schema_batch(draw: st.DrawFn, schema: ImageSchema, n: int, h: int, w: int,
                 kinds: tuple[str, ...] = IMAGE_KINDS,
                 colours: tuple[str, ...] = COLOUR_MODES) -> np.ndarray:
    """A batch of ``n`` images of ``h x w`` in ``schema``'s layout and channels."""
    if schema.layout == "HW":
        return draw(batch_of_shape(n, h, w, kinds))
    c = schema.channels
    if n == 0:
        return place_channels(np.zeros((0, h, w, c), np.uint8), schema.layout)
    shared = draw(st.sampled_from(kinds)) if n > 1 and draw(st.booleans()) else None
    pictures = [draw(colour_image(shared or draw(st.sampled_from(kinds)), h, w, c, colours))
                for _ in range(n)]
    return place_channels(np.stack(pictures), schema.layout)


@st.composite
def batch_of_shape(
    draw: st.DrawFn, n: int, h: int, w: int, kinds: tuple[str, ...] = IMAGE_KINDS
) -> np.ndarray:
    """A C-contiguous ``uint8`` batch of exactly shape ``(n, h, w)``.

    Either every image has its own kind, or (drawn) the whole batch shares one kind, which
    makes uniform batches (all black, all white) common.
    """
    if n == 0:
        return np.zeros((0, h, w), np.uint8)
    shared = draw(st.sampled_from(kinds)) if n > 1 and draw(st.booleans()) else None
    pictures = [draw(kind_strategy(shared or draw(st.sampled_from(kinds)), h, w)) for _ in range(n)]
    return np.stack(pictures).astype(np.uint8, copy=False)


def batch_upper(min_batch: int, max_batch: int, h: int, w: int, max_pixels: int) -> int:
    """Largest batch size that keeps ``n * h * w`` within ``max_pixels`` (soft: >= 1)."""
    fits = max(1, max_pixels // max(1, h * w))
    return max(min_batch, min(max_batch, fits))


def draw_sides(draw: st.DrawFn, schema: ImageSchema, low: int, high: int,
               square: bool) -> tuple[int, int]:
    """``(h, w)``: the schema's fixed size, else drawn within ``[low, high]``."""
    if schema.size is not None:
        return int(schema.size[0]), int(schema.size[1])
    h = draw(st.integers(low, high))
    return h, h if square else draw(st.integers(low, high))


@st.composite
def _images(
    draw: st.DrawFn,
    schema: ImageSchema,
    low: int,
    high: int,
    square: bool,
    min_batch: int,
    max_batch: int,
    max_pixels: int,
    kinds: tuple[str, ...],
    colours: tuple[str, ...],
) -> np.ndarray:
    h, w = draw_sides(draw, schema, low, high, square)
    n = draw(st.integers(min_batch, batch_upper(min_batch, max_batch, h, w * schema.channels,
                                                max_pixels)))
    return draw(schema_batch(schema, n, h, w, kinds, colours))


def images(
    schema: ImageSchema,
    *,
    min_batch: int = 0,
    max_batch: int = 8,
    min_side: int | None = None,
    max_side: int | None = None,
    square: bool = False,
    side_cap: int | None = DEFAULT_SIDE_CAP,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    kinds: Collection[str] | None = None,
    colours: Collection[str] | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Batches of raw images that ``schema.validate`` accepts: C-contiguous ``uint8`` in the
    schema's layout, ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``.

    - ``min_batch <= N <= max_batch``. A soft pixel budget: the upper end of N is lowered so
      that ``N * H * W <= max_pixels``, but never below ``max(min_batch, 1)``.
    - ``H`` and ``W`` lie in ``[min_side, max_side]``, which default to the schema's range,
      with the upper end capped at ``side_cap`` (default 32; ``None``: no cap) unless
      ``max_side`` is given. The cap never goes below the schema's ``min_side``.
    - ``square=True`` forces ``H == W``. A schema with a fixed ``size`` gets exactly that
      size (the side options are then ignored): a 224x224 schema gets 224x224 images; pass
      ``side_cap=None`` to draw up to ``max_side`` where a property needs real sizes.
    - The pixel budget counts channels: ``N * H * W * C <= max_pixels`` (soft).
    - ``kinds`` restricts the image kinds (names from :data:`IMAGE_KINDS`); images within a
      batch may have different kinds. ``colours`` restricts the colour modes of
      multi-channel images (names from :data:`COLOUR_MODES`).

    Shrinks toward ``N = min_batch``, the smallest side and all-zero pixels.
    """
    schema = check_schema(schema)
    min_batch, max_batch = batch_range(min_batch, max_batch)
    low, high = side_range(schema, min_side, max_side, side_cap)
    check_bool(square, "square")
    max_pixels = check_int(max_pixels, "max_pixels", min_value=1)
    chosen = check_choices(kinds, "kinds", IMAGE_KINDS, default=IMAGE_KINDS)
    modes = check_choices(colours, "colours", COLOUR_MODES, default=COLOUR_MODES)
    return _images(schema, low, high, square, min_batch, max_batch, max_pixels, chosen, modes)


@st.composite
def _image(
    draw: st.DrawFn, schema: ImageSchema, low: int, high: int, square: bool,
    kinds: tuple[str, ...], colours: tuple[str, ...]
) -> np.ndarray:
    h, w = draw_sides(draw, schema, low, high, square)
    if schema.layout == "HW":
        return draw(kind_strategy(draw(st.sampled_from(kinds)), h, w))
    return draw(schema_batch(schema, 1, h, w, kinds, colours))[0].copy()


def image(
    schema: ImageSchema,
    *,
    min_side: int | None = None,
    max_side: int | None = None,
    square: bool = False,
    side_cap: int | None = DEFAULT_SIDE_CAP,
    kinds: Collection[str] | None = None,
    colours: Collection[str] | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """One raw image, ``uint8 (H, W)`` (or ``(H, W, C)`` / ``(C, H, W)`` for colour schemas);
    the options mean what they mean for :func:`images`."""
    schema = check_schema(schema)
    low, high = side_range(schema, min_side, max_side, side_cap)
    check_bool(square, "square")
    chosen = check_choices(kinds, "kinds", IMAGE_KINDS, default=IMAGE_KINDS)
    modes = check_choices(colours, "colours", COLOUR_MODES, default=COLOUR_MODES)
    return _image(schema, low, high, square, chosen, modes)
