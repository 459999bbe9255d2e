"""Random valid :class:`~mlprop.schema.ImageSchema` instances, for testing strategies and tools
that must work for any target."""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import strategies as st

from mlprop.schema import LAYOUTS, ImageSchema
from mlprop.strategies._validation import check_choices, check_int, check_order

__all__ = ["image_schemas"]


@st.composite
def _image_schemas(
    draw: st.DrawFn, min_classes: int, max_classes: int, max_side: int,
    layouts: tuple[str, ...],
) -> ImageSchema:
    num_classes = draw(st.integers(min_classes, max_classes))
    low = draw(st.integers(1, max_side))
    # Fixed-size schemas (min_side == max_side) are a real case, so they come up often.
    high = draw(st.one_of(st.just(low), st.integers(low, max_side)))
    layout = draw(st.sampled_from(layouts))
    if layout == "HW":
        return ImageSchema(num_classes=num_classes, min_side=low, max_side=high)
    channels = draw(st.sampled_from([3, 1, 4, 2]))
    size = None
    if draw(st.booleans()):
        size = (draw(st.integers(low, high)), draw(st.integers(low, high)))
    return ImageSchema(num_classes=num_classes, min_side=low, max_side=high,
                       channels=channels, layout=layout, size=size)


def image_schemas(
    *, min_classes: int = 2, max_classes: int = 20, max_side: int = 64,
    layouts: Collection[str] | None = None,
) -> st.SearchStrategy[ImageSchema]:
    """Valid schemas: ``min_classes <= num_classes <= max_classes`` and
    ``1 <= schema.min_side <= schema.max_side <= max_side``, in one of ``layouts`` (names
    from :data:`~mlprop.schema.LAYOUTS`; default grayscale ``("HW",)`` only; colour schemas
    get 3, 1, 4 or 2 channels and sometimes a fixed ``size``). Fixed-size schemas
    (``min_side == max_side``) are common. Shrinks to ``ImageSchema(min_classes, 1, 1)``."""
    min_classes = check_int(min_classes, "min_classes", min_value=2)
    max_classes = check_int(max_classes, "max_classes", min_value=2)
    check_order(min_classes, "min_classes", max_classes, "max_classes")
    max_side = check_int(max_side, "max_side", min_value=1)
    chosen = check_choices(layouts, "layouts", LAYOUTS, default=("HW",))
    return _image_schemas(min_classes, max_classes, max_side, chosen)
