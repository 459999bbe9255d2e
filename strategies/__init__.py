"""Hypothesis strategies for image-classification pipelines.

Built on :mod:`hypothesis.extra.numpy`; every strategy takes keyword-only options and checks
them when it is defined, raising :class:`hypothesis.errors.InvalidArgument`. Modules:

- :mod:`mlprop.strategies.images`: raw ``uint8`` batches and single images of many kinds, in the
  schema's layout (grayscale ``(N, H, W)``, colour ``(N, H, W, C)`` or ``(N, C, H, W)``);
- :mod:`mlprop.strategies.labels`: class labels and labelled batches;
- :mod:`mlprop.strategies.schemas`: random valid :class:`~mlprop.schema.ImageSchema` instances;
- :mod:`mlprop.strategies.data`: ``(images, labels)`` that a schema accepts;
- :mod:`mlprop.strategies.invalid`: data with exactly one defect, and the field it trips;
- :mod:`mlprop.strategies.params`: seeds and augmentation magnitudes;
- :mod:`mlprop.strategies.training`: small labelled sets any working classifier separates.

Works against any target: only :mod:`mlprop.schema` and :mod:`mlprop.errors` are used.
"""

from mlprop.strategies.data import IMAGE_LAYOUTS, LABEL_DTYPES, in_layout, valid_data
from mlprop.strategies.images import (
    COLOUR_MODES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_SIDE_CAP,
    IMAGE_KINDS,
    image,
    images,
)
from mlprop.strategies.invalid import INVALID_FIELDS, InvalidExample, invalid_data
from mlprop.strategies.labels import labelled_batches, labels
from mlprop.strategies.params import MAX_SEED, magnitudes, seeds
from mlprop.strategies.schemas import image_schemas
from mlprop.strategies.training import separable_sets

__all__ = [
    "COLOUR_MODES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_SIDE_CAP",
    "IMAGE_KINDS",
    "IMAGE_LAYOUTS",
    "INVALID_FIELDS",
    "LABEL_DTYPES",
    "MAX_SEED",
    "InvalidExample",
    "image",
    "image_schemas",
    "images",
    "in_layout",
    "invalid_data",
    "labelled_batches",
    "labels",
    "magnitudes",
    "seeds",
    "separable_sets",
    "valid_data",
]
