"""mlprop: property-based and mutation testing for image-classification pipelines."""

from mlprop.errors import (
    IdxFormatError,
    MlpropError,
    PackageIntegrityError,
    SchemaError,
    TargetError,
    Violation,
)
from mlprop.schema import ImageSchema
from mlprop.target import Augmentation, Target, load_target

__version__ = "0.1.0"

__all__ = [
    "Augmentation",
    "IdxFormatError",
    "ImageSchema",
    "MlpropError",
    "PackageIntegrityError",
    "SchemaError",
    "Target",
    "TargetError",
    "Violation",
    "__version__",
    "load_target",
]
