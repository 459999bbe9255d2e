"""Argument checks every reference augmentation shares.

An augmentation is ``fn(images, *, seed, magnitude)``. Invariant: it refuses, with one
:class:`~mlprop.errors.SchemaError` naming every bad field, images outside the pipeline's
schema, a seed that is not a non-negative int (``True`` is refused: a bool is an int to
Python) and a magnitude outside [0, 1], before drawing anything, so a bad call never returns
images augmented with a silently wrapped seed or an out-of-range strength.
"""

from __future__ import annotations

import numpy as np

from mlprop.errors import SchemaError, Violation
from mlprop.schema import ImageSchema


def check_arguments(schema: ImageSchema, images: np.ndarray, seed: int,
                    magnitude: float) -> None:
    """Validate ``images`` against ``schema``, then ``seed`` and ``magnitude`` together."""
    schema.validate(images)
    problems = []
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        problems.append(Violation("seed", "a non-negative int", repr(seed)))
    if isinstance(magnitude, bool) or not isinstance(
            magnitude, int | float | np.integer | np.floating) or not 0.0 <= magnitude <= 1.0:
        problems.append(Violation("magnitude", "a float in [0, 1]", repr(magnitude)))
    if problems:
        raise SchemaError(problems)
