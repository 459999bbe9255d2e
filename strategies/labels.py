"""Class labels (``int64 (N,)`` in ``[0, num_classes)``) and labelled image batches."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from mlprop.schema import ImageSchema
from mlprop.strategies._validation import check_int, check_optional_int, check_order
from mlprop.strategies.images import DEFAULT_MAX_PIXELS, DEFAULT_SIDE_CAP, images

__all__ = ["DEFAULT_MAX_LABELS", "labelled_batches", "labels"]

DEFAULT_MAX_LABELS = 8
"""``labels`` draws at most this many labels (or ``min_size``) unless told otherwise."""


def label_values(num_classes: int) -> st.SearchStrategy[int]:
    """One class index; the first and the last class are favoured."""
    edges = st.sampled_from(sorted({0, num_classes - 1}))
    return st.one_of(edges, st.integers(0, num_classes - 1))


def labels_of_size(num_classes: int, size: int | st.SearchStrategy[int]) -> st.SearchStrategy:
    """``int64`` label arrays of ``size`` (an int or a strategy for one); no checks."""
    return hnp.arrays(np.int64, size, elements=label_values(num_classes))


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, ImageSchema):
        raise InvalidArgument(
            f"num_classes={num_classes!r} is a schema; pass schema.num_classes instead"
        )
    return check_int(num_classes, "num_classes", min_value=1)


def labels(
    num_classes: int,
    *,
    size: int | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """``int64 (N,)`` arrays of class indices in ``[0, num_classes)``.

    Give either ``size`` (exactly N labels) or ``min_size`` / ``max_size`` (default 0 and
    ``max(min_size, 8)``), not both. Shrinks toward ``min_size`` labels, all 0.
    """
    num_classes = _check_num_classes(num_classes)
    size = check_optional_int(size, "size", min_value=0)
    min_size = check_optional_int(min_size, "min_size", min_value=0)
    max_size = check_optional_int(max_size, "max_size", min_value=0)
    if size is not None:
        if min_size is not None or max_size is not None:
            raise InvalidArgument(
                f"pass either size={size} or min_size/max_size "
                f"(got min_size={min_size}, max_size={max_size}), not both"
            )
        return labels_of_size(num_classes, size)
    low = 0 if min_size is None else min_size
    high = max(low, DEFAULT_MAX_LABELS) if max_size is None else max_size
    check_order(low, "min_size", high, "max_size")
    return labels_of_size(num_classes, st.integers(low, high))


@st.composite
def _with_labels(
    draw: st.DrawFn, batches: st.SearchStrategy[np.ndarray], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    batch = draw(batches)
    return batch, draw(labels_of_size(num_classes, batch.shape[0]))


def labelled_batches(
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
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """``(images, labels)``: an :func:`~mlprop.strategies.images` batch and one label per image.

    The image options are those of :func:`~mlprop.strategies.images`; labels are ``int64 (N,)`` in
    ``[0, schema.num_classes)``.
    """
    batches = images(
        schema,
        min_batch=min_batch,
        max_batch=max_batch,
        min_side=min_side,
        max_side=max_side,
        square=square,
        side_cap=side_cap,
        max_pixels=max_pixels,
        kinds=kinds,
    )
    return _with_labels(batches, schema.num_classes)
