"""What a model property may spend: batch sizes scaled to the target's model, and a clear
failure instead of a killed process when the model does not fit.

Invariant: the memory of a model property is bounded by the model and its input size, not
by the number of examples. The batch it draws is at most :func:`model_batch` images (a
target sets ``thresholds={"model_batch": N}``; the default comes from the parameter count
times the input size: 6 for small CNNs, down to 2 for a ResNet-18 at 224x224), and a model
or forward pass that runs out of memory becomes a property failure naming the property, the
batch and the input size, and the setting that lowers them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mlprop.checks import fail

__all__ = ["LARGE_WORK", "MAX_BATCH", "MIN_BATCH", "memory_guard", "model_batch", "model_work"]

MAX_BATCH, MIN_BATCH = 6, 2
LARGE_WORK = 5e10
"""parameters x input values above which the model properties draw the smallest batches:
a ResNet-18 at 3x224x224 is 1.7e12, the reference digits CNN 8.3e7."""

_WORK: dict[int, tuple[Any, float]] = {}


def model_work(target: Any) -> float:
    """Trainable parameters of ``target.build_model(0)`` times the values of one input
    (computed once per target; the model is dropped straight away)."""
    key = id(target)
    if key not in _WORK:
        model = target.build_model(0)
        parameters = sum(p.numel() for p in model.parameters())
        del model
        values = 1
        for side in target.input_shape:
            values *= side
        _WORK[key] = (target, float(parameters * values))  # keep target alive: id stays its
    return _WORK[key][1]


def model_batch(target: Any) -> int:
    """The largest batch a model property draws for ``target``."""
    declared = target.thresholds.get("model_batch")
    if declared is not None:
        return max(1, int(declared))
    work = model_work(target)
    if work <= LARGE_WORK / MAX_BATCH:
        return MAX_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(LARGE_WORK / work)))


@contextlib.contextmanager
def memory_guard(target: Any, what: str, batch: int) -> Iterator[None]:
    """Turn an out-of-memory error inside the block into a property failure that says what
    ran out and how to ask for less."""
    try:
        yield
    except MemoryError:
        _out_of_memory(target, what, batch, "MemoryError")
    except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(exc).lower() and type(exc).__name__ != "OutOfMemoryError":
            raise
        _out_of_memory(target, what, batch, f"{type(exc).__name__}: {str(exc)[:200]}")


def _out_of_memory(target: Any, what: str, batch: int, error: str) -> None:
    shape = "x".join(str(side) for side in target.input_shape)
    fail(f"{what} ran out of memory at batch {batch} with inputs of shape {shape}",
         "the model and a batch of this size fit in memory",
         f"{error}. Lower the batch with Target(thresholds={{'model_batch': "
         f"{max(1, batch // 2)}}}) or the examples with --mlprop-examples-scale model=0.25")
