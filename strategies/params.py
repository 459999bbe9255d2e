"""Scalar parameters of augmentations and models: seeds and magnitudes."""

from __future__ import annotations

from hypothesis import strategies as st

from mlprop.strategies._validation import check_float, check_order

__all__ = ["MAX_SEED", "magnitudes", "seeds"]

MAX_SEED = 2**32 - 1
"""Largest seed: what ``numpy.random.default_rng`` and ``torch.manual_seed`` all accept."""


def seeds() -> st.SearchStrategy[int]:
    """Seeds: Python ints in ``[0, 2**32 - 1]``, shrinking to 0."""
    return st.integers(0, MAX_SEED)


def magnitudes(*, min_value: float = 0.0, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Augmentation strengths: finite floats in ``[min_value, max_value]`` (never NaN, -0.0).

    ``min_value`` itself (0 by default: the identity) and small values (the lowest 1% of the
    range, subnormals included) are drawn often, since "small magnitude, small change" is
    where augmentations break. Shrinks toward ``min_value``. Requires
    ``0 <= min_value <= max_value``.
    """
    low = check_float(min_value, "min_value", min_value=0.0)
    high = check_float(max_value, "max_value")
    check_order(low, "min_value", high, "max_value")
    if low == high:
        return st.just(low)
    small = low + (high - low) / 100
    return st.one_of(
        st.just(low),
        st.floats(low, small),
        st.floats(low, high),
        st.just(high),
    )
