"""Argument checks shared by the strategies: each raises ``InvalidArgument`` naming the option.

Every public strategy calls these eagerly, so a bad option fails where the strategy is
defined (in the ``@given`` decorator), not deep inside a test run.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np
from hypothesis.errors import InvalidArgument

from mlprop.schema import ImageSchema


def check_schema(schema: Any, name: str = "schema") -> ImageSchema:
    """``schema`` itself, if it is an :class:`ImageSchema`."""
    if not isinstance(schema, ImageSchema):
        raise InvalidArgument(
            f"{name}={schema!r} must be an mlprop.ImageSchema, not {type(schema).__name__}"
        )
    return schema


def check_int(value: Any, name: str, *, min_value: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) and at least ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgument(f"{name}={value!r} must be an int, not {type(value).__name__}")
    if min_value is not None and value < min_value:
        raise InvalidArgument(f"{name}={value!r} must be at least {min_value}")
    return int(value)


def check_optional_int(value: Any, name: str, *, min_value: int | None = None) -> int | None:
    """Like :func:`check_int`, but ``None`` passes through."""
    return None if value is None else check_int(value, name, min_value=min_value)


def check_order(low: float, low_name: str, high: float, high_name: str) -> None:
    """``low <= high``, or a message naming both options."""
    if low > high:
        raise InvalidArgument(f"{low_name}={low!r} must not be greater than {high_name}={high!r}")


def check_bool(value: Any, name: str) -> bool:
    """``value``, if it is a bool."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be a bool, not {type(value).__name__}")
    return value


def check_float(value: Any, name: str, *, min_value: float | None = None) -> float:
    """``value`` as a finite float (ints allowed, bools and NaN not), at least ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidArgument(f"{name}={value!r} must be a real number, not {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidArgument(f"{name}={value!r} must be finite")
    if min_value is not None and result < min_value:
        raise InvalidArgument(f"{name}={value!r} must be at least {min_value}")
    return result


def check_choices(
    values: Any, name: str, allowed: tuple[str, ...], *, default: tuple[str, ...]
) -> tuple[str, ...]:
    """A non-empty tuple of names from ``allowed`` (``default`` when ``values`` is None)."""
    if values is None:
        return default
    if isinstance(values, str) or not isinstance(values, Collection):
        raise InvalidArgument(
            f"{name}={values!r} must be a collection of names such as {list(allowed[:2])}"
        )
    chosen = tuple(values)
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise InvalidArgument(f"{name} has unknown entries {unknown}; choose from {list(allowed)}")
    if not chosen:
        raise InvalidArgument(f"{name} must not be empty; choose from {list(allowed)}")
    # Keep the canonical order (simplest first) so shrinking behaves the same either way.
    return tuple(a for a in allowed if a in chosen)


def side_range(
    schema: ImageSchema, min_side: int | None, max_side: int | None, side_cap: int | None
) -> tuple[int, int]:
    """The ``(low, high)`` side bounds images get, after narrowing and capping.

    ``min_side`` / ``max_side`` must lie inside the schema's range. When ``max_side`` is not
    given, the schema's ``max_side`` is capped at ``side_cap`` (but never below the low
    bound, since the schema forbids smaller images); ``side_cap=None`` means no cap.
    """
    min_side = check_optional_int(min_side, "min_side", min_value=1)
    max_side = check_optional_int(max_side, "max_side", min_value=1)
    side_cap = check_optional_int(side_cap, "side_cap", min_value=1)
    for name, value in (("min_side", min_side), ("max_side", max_side)):
        if value is not None and not schema.min_side <= value <= schema.max_side:
            raise InvalidArgument(
                f"{name}={value} is outside the schema's side range "
                f"[{schema.min_side}, {schema.max_side}]"
            )
    low = schema.min_side if min_side is None else min_side
    if max_side is not None:
        high = max_side
    elif side_cap is None:
        high = schema.max_side
    else:
        high = min(schema.max_side, max(low, side_cap))
    check_order(low, "min_side", high, "max_side")
    return low, high


def batch_range(min_batch: Any, max_batch: Any) -> tuple[int, int]:
    """Checked ``(min_batch, max_batch)``."""
    low = check_int(min_batch, "min_batch", min_value=0)
    high = check_int(max_batch, "max_batch", min_value=0)
    check_order(low, "min_batch", high, "max_batch")
    return low, high
