"""``ImageSchema``: what a raw batch of images (and labels) must look like.

A raw batch is a ``uint8`` array with the batch axis first, in the schema's ``layout``:
``"HW"`` (grayscale, ``(N, H, W)``, the default), ``"HWC"`` (channels last, as PIL, OpenCV and
NumPy hold images: ``(N, H, W, C)``) or ``"CHW"`` (channels first, as ``torchvision.io`` and
``transforms.v2.ToImage`` give them: ``(N, C, H, W)``), with ``channels`` channels (1; 3 for
RGB; 4 for RGBA; any C) and ``min_side <= H, W <= max_side`` (exactly ``size`` when a fixed
size is declared). Labels are integers of shape ``(N,)`` in ``[0, num_classes)``.
``validate`` collects *every* violation before raising, so a user fixes their data in one
round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlprop.errors import SchemaError, TargetError, Violation


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray(dtype={value.dtype}, shape={value.shape})"
    return type(value).__name__


LAYOUTS: tuple[str, ...] = ("HW", "HWC", "CHW")
"""Raw image layouts, batch axis first: grayscale, channels last, channels first."""

_SHAPES = {"HW": "(N, H, W)", "HWC": "(N, H, W, {c})", "CHW": "(N, {c}, H, W)"}


@dataclass(frozen=True)
class ImageSchema:
    """Bounds of the raw images a target accepts.

    ``channels`` and ``layout`` describe colour (the defaults, 1 and ``"HW"``, are the
    grayscale ``(N, H, W)`` batches of every schema written before colour existed);
    ``size=(H, W)`` fixes the image size (``None``: any size within the side bounds).

    Invariant: ``1 <= min_side <= max_side``, ``num_classes >= 2``, ``layout`` in
    :data:`LAYOUTS`, ``channels == 1`` for ``"HW"``, and a ``size`` within the side bounds.
    """

    #: Number of classes; labels are integers in ``[0, num_classes)``.
    num_classes: int
    #: Smallest height and width of a raw image.
    min_side: int
    #: Largest height and width of a raw image.
    max_side: int
    #: Channels of a raw image: 1 (grayscale), 3 (RGB), 4 (RGBA), any C.
    channels: int = 1
    #: Raw batch layout: ``"HW"`` ``(N, H, W)``, ``"HWC"`` ``(N, H, W, C)`` or ``"CHW"``
    #: ``(N, C, H, W)``.
    layout: str = "HW"
    #: ``(H, W)``: a fixed image size, or None for any size within the side bounds.
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("num_classes", "min_side", "max_side", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TargetError(f"schema.{name}", "an int", repr(value))
        if self.num_classes < 2:
            raise TargetError("schema.num_classes", ">= 2", str(self.num_classes))
        if self.min_side < 1:
            raise TargetError("schema.min_side", ">= 1", str(self.min_side))
        if self.max_side < self.min_side:
            raise TargetError(
                "schema.max_side", f">= min_side ({self.min_side})", str(self.max_side)
            )
        if self.layout not in LAYOUTS:
            raise TargetError("schema.layout", f"one of {list(LAYOUTS)}", repr(self.layout))
        if self.channels < 1:
            raise TargetError("schema.channels", ">= 1", str(self.channels))
        if self.layout == "HW" and self.channels != 1:
            raise TargetError("schema.channels", "1 for layout 'HW' (declare layout 'HWC' or "
                              "'CHW' for colour)", str(self.channels))
        if self.size is not None:
            size = self.size
            ok = (isinstance(size, tuple) and len(size) == 2 and all(
                isinstance(v, int | np.integer) and not isinstance(v, bool)
                and self.min_side <= v <= self.max_side for v in size))
            if not ok:
                raise TargetError("schema.size", f"None or (H, W) with sides in "
                                  f"[{self.min_side}, {self.max_side}]", repr(size))

    @property
    def ndim(self) -> int:
        """Dimensions of a raw batch: 3 for ``"HW"``, else 4."""
        return 3 if self.layout == "HW" else 4

    @property
    def channel_axis(self) -> int | None:
        """The batch's channel axis (``None`` for ``"HW"``)."""
        return {"HW": None, "HWC": 3, "CHW": 1}[self.layout]

    @property
    def side_axes(self) -> tuple[int, int]:
        """The batch's height and width axes."""
        return (2, 3) if self.layout == "CHW" else (1, 2)

    @property
    def batch_shape(self) -> str:
        """The batch's shape in words, e.g. ``(N, H, W, 3)``."""
        return _SHAPES[self.layout].format(c=self.channels)

    def from_channels_last(self, batch: np.ndarray) -> np.ndarray:
        """A ``(N, H, W, C)`` batch in this schema's layout (a view for ``"HWC"``)."""
        if self.layout == "HW":
            return batch[..., 0]
        if self.layout == "CHW":
            return np.ascontiguousarray(np.moveaxis(batch, -1, 1))
        return batch

    def to_channels_last(self, batch: np.ndarray) -> np.ndarray:
        """This schema's batch as ``(N, H, W, C)`` (C = 1 for ``"HW"``)."""
        if self.layout == "HW":
            return batch[..., np.newaxis]
        if self.layout == "CHW":
            return np.moveaxis(batch, 1, -1)
        return batch

    def _channel_violations(self, shape: tuple[int, ...]) -> tuple[list[Violation], bool]:
        """Violations of the channel axis, and whether the side axes can be trusted."""
        axis = self.channel_axis
        if axis is None or shape[axis] == self.channels:
            return [], True
        other = 1 if axis == 3 else 3
        if shape[other] == self.channels:
            flipped = "CHW (channels first)" if other == 1 else "HWC (channels last)"
            return [Violation("images.layout", f"{self.layout} {self.batch_shape}",
                              f"{flipped} {shape}")], False
        if self.channels == 3 and shape[axis] == 4:
            return [Violation("images.alpha", f"3 channels (RGB, no alpha) {self.batch_shape}",
                              f"4 channels (RGBA) {shape}")], True
        return [Violation("images.channels", f"{self.channels} {self.batch_shape}",
                          f"{shape[axis]} {shape}")], True

    def image_violations(self, images: Any) -> list[Violation]:
        """Every way ``images`` breaks this schema (empty list: valid)."""
        if not isinstance(images, np.ndarray):
            return [Violation("images", "a numpy.ndarray", _describe(images))]
        found: list[Violation] = []
        if images.dtype != np.uint8:
            found.append(Violation("images.dtype", "uint8", str(images.dtype)))
            if images.dtype.kind in "fc" and images.size and not np.isfinite(images).all():
                bad = int(images.size - np.count_nonzero(np.isfinite(images)))
                found.append(
                    Violation("images.values", "finite values", f"{bad} NaN or inf values")
                )
        if images.ndim != self.ndim:
            found.append(Violation("images.ndim", f"{self.ndim} {self.batch_shape}",
                                   f"{images.ndim} {images.shape}"))
            return found
        channel_problems, sides_known = self._channel_violations(images.shape)
        found += channel_problems
        if not sides_known:
            return found
        for axis, name, index in zip(self.side_axes, ("height", "width"), (0, 1), strict=True):
            side = images.shape[axis]
            if self.size is not None and self.min_side <= side <= self.max_side:
                if side != self.size[index]:
                    found.append(Violation(f"images.{name}", f"{self.size[index]} (fixed size "
                                           f"{self.size[0]}x{self.size[1]})", str(side)))
            elif not self.min_side <= side <= self.max_side:
                found.append(
                    Violation(
                        f"images.{name}",
                        f"between {self.min_side} and {self.max_side}",
                        str(side),
                    )
                )
        return found

    def label_violations(self, labels: Any, num_images: int | None) -> list[Violation]:
        """Every way ``labels`` breaks this schema, given the number of images."""
        if not isinstance(labels, np.ndarray):
            return [Violation("labels", "a numpy.ndarray", _describe(labels))]
        found: list[Violation] = []
        integer = labels.dtype.kind in "iu"
        if not integer:
            found.append(Violation("labels.dtype", "an integer dtype (int64)", str(labels.dtype)))
        if labels.ndim != 1:
            found.append(Violation("labels.ndim", "1 (N,)", f"{labels.ndim} {labels.shape}"))
        elif num_images is not None and labels.shape[0] != num_images:
            found.append(
                Violation("labels.length", f"{num_images} (one per image)", str(labels.shape[0]))
            )
        if integer and labels.size:
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= self.num_classes:
                found.append(
                    Violation(
                        "labels.values",
                        f"in [0, {self.num_classes - 1}]",
                        f"values from {low} to {high}",
                    )
                )
        return found

    def validate(self, images: Any, labels: Any = None) -> None:
        """Raise :class:`SchemaError` listing every violation of ``images`` (and ``labels``)."""
        found = self.image_violations(images)
        if labels is not None:
            num_images = None
            if isinstance(images, np.ndarray) and images.ndim >= 1:
                num_images = images.shape[0]
            found += self.label_violations(labels, num_images)
        if found:
            raise SchemaError(found)
