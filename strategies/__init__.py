"""Hypothesis strategies for image-classification pipelines.

Built on :mod:`hypothesis.extra.numpy`; every strategy takes keyword-only options and checks
them when it is defined, raising :class:`hypothesis.errors.InvalidArgument`. Modules:

- :mod:`strategies.images`: raw ``uint8 (N, H, W)`` batches and single images of many kinds;
- :mod:`strategies.labels`: class labels and labelled batches;
- :mod:`strategies.schemas`: random valid :class:`~mlprop.schema.ImageSchema` instances;
- :mod:`strategies.data`: ``(images, labels)`` that a schema accepts;
- :mod:`strategies.invalid`: data with exactly one defect, and the field it trips;
- :mod:`strategies.params`: seeds and augmentation magnitudes.

Works against any target: only :mod:`mlprop.schema` and :mod:`mlprop.errors` are used.
"""

from strategies.data import IMAGE_LAYOUTS, LABEL_DTYPES, valid_data
from strategies.images import DEFAULT_MAX_PIXELS, DEFAULT_SIDE_CAP, IMAGE_KINDS, image, images
from strategies.invalid import INVALID_FIELDS, InvalidExample, invalid_data
from strategies.labels import labelled_batches, labels
from strategies.params import MAX_SEED, magnitudes, seeds
from strategies.schemas import image_schemas

__all__ = [
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
    "invalid_data",
    "labelled_batches",
    "labels",
    "magnitudes",
    "seeds",
    "valid_data",
]
