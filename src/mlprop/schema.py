"""``ImageSchema``: what a raw batch of images (and labels) must look like.

A raw batch is a ``uint8`` array of shape ``(N, H, W)`` with ``min_side <= H, W <= max_side``;
labels are integers of shape ``(N,)`` in ``[0, num_classes)``. ``validate`` collects *every*
violation before raising, so a user fixes their data in one round trip.
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


@dataclass(frozen=True)
class ImageSchema:
    """Bounds of the raw images a target accepts.

    Invariant: ``1 <= min_side <= max_side`` and ``num_classes >= 2``.
    """

    num_classes: int
    min_side: int
    max_side: int

    def __post_init__(self) -> None:
        for name in ("num_classes", "min_side", "max_side"):
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
        if images.ndim != 3:
            found.append(Violation("images.ndim", "3 (N, H, W)", f"{images.ndim} {images.shape}"))
        else:
            for axis, name in ((1, "height"), (2, "width")):
                side = images.shape[axis]
                if not self.min_side <= side <= self.max_side:
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
