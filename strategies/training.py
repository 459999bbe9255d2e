"""Small labelled sets that any working image classifier separates: the training properties'
inputs.

Each class drawn gets its own cell of a grid laid over the image: an image of that class is a
dark background with that cell lit, at a brightness (and, for colour schemas, a tint or plain
grey) drawn per image, plus faint pixel noise, so no two images are alike but the class is
always where the light is. The cells are large (a quarter of the image for up to four
classes), so resizing, small shifts, rotations and noise of a training augmentation keep the
class readable.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from mlprop.schema import ImageSchema
from mlprop.strategies._validation import check_int, check_order, check_schema, side_range
from mlprop.strategies.images import DEFAULT_SIDE_CAP, place_channels

__all__ = ["separable_sets"]

_NOISE = 12
"""Amplitude of the per-pixel noise (uint8 levels): far below the lit/dark contrast."""


def _grid(count: int) -> tuple[int, int]:
    """``(rows, cols)`` of the smallest near-square grid with at least ``count`` cells."""
    rows = max(1, math.isqrt(count - 1) + 1) if count > 1 else 1
    return rows, -(-count // rows)


def _picture(rng: np.random.Generator, h: int, w: int, channels: int, cell: int,
             grid: tuple[int, int], grey: bool) -> np.ndarray:
    rows, cols = grid
    row, col = divmod(cell, cols)
    top, bottom = row * h // rows, (row + 1) * h // rows
    left, right = col * w // cols, (col + 1) * w // cols
    dark = int(rng.integers(0, 50))
    bright = rng.integers(170, 256, size=1 if grey else channels)
    picture = np.full((h, w, channels), dark, np.int16)
    picture[top:bottom, left:right, :] = bright
    picture += rng.integers(-_NOISE, _NOISE + 1, size=picture.shape, dtype=np.int16)
    return np.clip(picture, 0, 255).astype(np.uint8)


@st.composite
def _separable(draw: st.DrawFn, schema: ImageSchema, classes: tuple[int, int],
               per_class: tuple[int, int], sides: tuple[int, int]) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    count = draw(st.integers(*classes), label="classes")
    chosen = draw(st.lists(st.integers(0, schema.num_classes - 1), min_size=count,
                           max_size=count, unique=True), label="class ids")
    grid = _grid(count)
    cells = draw(st.permutations(range(grid[0] * grid[1])), label="cells")[:count]
    each = draw(st.integers(*per_class), label="images per class")
    if schema.size is not None:
        h, w = int(schema.size[0]), int(schema.size[1])
    else:
        h = w = draw(st.integers(*sides), label="side")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="pixel seed"))
    greys = [schema.channels == 1 or bool(g) for g in rng.integers(0, 2, size=count * each)]
    pictures = [_picture(rng, h, w, schema.channels, cells[i % count], grid, greys[i])
                for i in range(count * each)]
    labels = np.array([chosen[i % count] for i in range(count * each)], np.int64)
    order = np.asarray(draw(st.permutations(range(count * each)), label="order"), np.int64)
    batch = place_channels(np.stack(pictures)[order], schema.layout)
    return batch, labels[order]


def separable_sets(
    schema: ImageSchema,
    *,
    min_classes: int = 2,
    max_classes: int = 4,
    min_per_class: int = 6,
    max_per_class: int = 10,
    min_side: int | None = None,
    max_side: int | None = None,
    side_cap: int | None = DEFAULT_SIDE_CAP,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """``(images, labels)`` that ``schema.validate`` accepts and any working CNN separates.

    Between ``min_classes`` and ``max_classes`` distinct classes of the schema (clipped to
    ``schema.num_classes``), each with between ``min_per_class`` and ``max_per_class``
    images (the same number for every class), in a shuffled order. The class of an image is
    the grid cell that is lit (see the module docstring); images are square (or the schema's
    fixed size) with sides as in :func:`~mlprop.strategies.images`, and at least one pixel per
    grid row and column. Labels are ``int64 (N,)``.
    """
    schema = check_schema(schema)
    low_classes = check_int(min_classes, "min_classes", min_value=2)
    high_classes = check_int(max_classes, "max_classes", min_value=2)
    check_order(low_classes, "min_classes", high_classes, "max_classes")
    low_each = check_int(min_per_class, "min_per_class", min_value=1)
    high_each = check_int(max_per_class, "max_per_class", min_value=1)
    check_order(low_each, "min_per_class", high_each, "max_per_class")
    low_side, high_side = side_range(schema, min_side, max_side, side_cap)
    high_classes = min(high_classes, schema.num_classes)
    low_classes = min(low_classes, high_classes)
    rows, cols = _grid(high_classes)
    needed = max(rows, cols)
    fixed = min(schema.size) if schema.size is not None else None
    if (fixed if fixed is not None else high_side) < needed:
        raise InvalidArgument(
            f"separable_sets: {high_classes} classes need images of at least {needed} pixels "
            f"a side (a {rows}x{cols} grid of cells), but the sides allowed are at most "
            f"{fixed if fixed is not None else high_side}; lower max_classes")
    return _separable(schema, (low_classes, high_classes), (low_each, high_each),
                      (max(low_side, needed), high_side))
