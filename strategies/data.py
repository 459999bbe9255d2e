"""Data a schema accepts: ``(images, labels)`` pairs for which ``schema.validate`` passes."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from mlprop.schema import ImageSchema
from mlprop.strategies._validation import check_bool
from mlprop.strategies.images import DEFAULT_SIDE_CAP
from mlprop.strategies.labels import labelled_batches

__all__ = ["IMAGE_LAYOUTS", "LABEL_DTYPES", "in_layout", "valid_data"]

IMAGE_LAYOUTS: tuple[str, ...] = ("C", "F", "strided", "reversed", "readonly")
"""Memory layouts ``valid_data(..., varied_layout=True)`` gives images: C-contiguous,
Fortran-ordered, a non-contiguous view (every other column of a wider array), a view with
negative strides, and a read-only array."""

LABEL_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(t) for t in (np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint64)
)
"""Integer label dtypes ``valid_data(..., varied_layout=True)`` may use (when they fit)."""


def in_layout(batch: np.ndarray, layout: str) -> np.ndarray:
    """``batch`` (the same values) in memory layout ``layout``, one of
    :data:`IMAGE_LAYOUTS`."""
    if layout not in IMAGE_LAYOUTS:
        raise InvalidArgument(f"layout: expected one of {IMAGE_LAYOUTS}, got {layout!r}")
    if layout == "F":
        return np.asfortranarray(batch)
    if layout == "strided":  # every other element of the last axis of a wider array
        wide = np.zeros((*batch.shape[:-1], 2 * batch.shape[-1]), np.uint8)
        wide[..., ::2] = batch
        return wide[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(batch[:, ::-1, ::-1])[:, ::-1, ::-1]
    if layout == "readonly":
        frozen = batch.copy()
        frozen.flags.writeable = False
        return frozen
    return batch


@st.composite
def _varied(
    draw: st.DrawFn, pairs: st.SearchStrategy[tuple[np.ndarray, np.ndarray]], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    batch, targets = draw(pairs)
    batch = in_layout(batch, draw(st.sampled_from(IMAGE_LAYOUTS)))
    fitting = [d for d in LABEL_DTYPES if np.iinfo(d).max >= num_classes - 1]
    return batch, targets.astype(draw(st.sampled_from(fitting)))


def valid_data(
    schema: ImageSchema,
    *,
    min_batch: int = 0,
    max_batch: int = 8,
    min_side: int | None = None,
    max_side: int | None = None,
    side_cap: int | None = DEFAULT_SIDE_CAP,
    varied_layout: bool = False,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """``(images, labels)`` that ``schema.validate(images, labels)`` accepts.

    By default the canonical form: C-contiguous ``uint8 (N, H, W)`` images and ``int64 (N,)``
    labels, as :func:`~mlprop.strategies.labelled_batches` gives them (the options mean the same).
    With ``varied_layout=True`` the data covers more of what the schema accepts: images in
    any of :data:`IMAGE_LAYOUTS` (Fortran order, non-contiguous, negative strides,
    read-only) and labels of any integer dtype in :data:`LABEL_DTYPES` that holds every
    class. A pipeline that mishandles those (writes into its input, assumes contiguity or
    int64) is buggy by the target contract.
    """
    check_bool(varied_layout, "varied_layout")
    pairs = labelled_batches(
        schema,
        min_batch=min_batch,
        max_batch=max_batch,
        min_side=min_side,
        max_side=max_side,
        side_cap=side_cap,
    )
    return _varied(pairs, schema.num_classes) if varied_layout else pairs
