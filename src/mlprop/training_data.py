"""Reading a target's ``training_data()``: one ``(images, labels)`` pair, or an iterable of
such batches for a set that does not fit in memory, each checked against the schema.

Invariant: a property that reads the training data sees only valid batches, or stops with a
:class:`~mlprop.errors.SchemaError` whose fields start with ``training_data`` (and name the
batch), never with a traceback from deep inside NumPy. Batches are yielded one at a time, so
memory is bounded by the largest batch, not by the data set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from mlprop.errors import SchemaError, Violation

__all__ = ["training_batches"]

FIELD = "training_data"


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0],
                                                                               np.ndarray)


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"{type(value).__name__}" + (f" of shape {shape}" if shape is not None else "")


def _checked(schema: Any, batch: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not _is_pair(batch):
        raise SchemaError([Violation(where, "an (images, labels) pair of numpy arrays",
                                     _describe(batch))])
    images, labels = batch
    try:
        schema.validate(images, labels)
    except SchemaError as exc:
        raise SchemaError([Violation(f"{where}.{v.field}", v.expected, v.actual)
                           for v in exc.violations]) from None
    return images, labels


def training_batches(target: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each ``(images, labels)`` batch of ``target.training_data()``, validated against
    ``target.schema`` (a single pair is one batch)."""
    if target.training_data is None:
        raise ValueError("training_batches: the target has no training_data")
    data = target.training_data()
    if _is_pair(data):
        yield _checked(target.schema, data, FIELD)
        return
    try:
        batches = iter(data)
    except TypeError:
        raise SchemaError([Violation(FIELD, "an (images, labels) pair or an iterable of them",
                                     _describe(data))]) from None
    for index, batch in enumerate(batches):
        yield _checked(target.schema, batch, f"{FIELD}[{index}]")
