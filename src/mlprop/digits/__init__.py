"""The reference pipeline: handwritten digits (8x8, upscaled to 28x28) and a small CNN.

``mlprop.digits:target`` is the default target of the property suite and the code that the
mutation audit mutates. It is assembled by the kit (:mod:`mlprop.reference.targets`) from
the digits' own preprocessing, augmentations, network, training and pipeline modules.
"""

from mlprop.digits import augment, pipeline
from mlprop.digits.model import NUM_CLASSES, build_model
from mlprop.digits.preprocess import INPUT_RANGE, INPUT_SHAPE, MEAN, SCHEMA, STD, preprocess
from mlprop.digits.train import fit
from mlprop.reference.targets import label_preserving, reference_target

AUGMENTATIONS = label_preserving(rotate=augment.rotate, shift=augment.shift,
                                 scale=augment.scale, noise=augment.noise)

target = reference_target(
    "digits", schema=SCHEMA, input_shape=INPUT_SHAPE, input_range=INPUT_RANGE,
    preprocess=preprocess, augmentations=AUGMENTATIONS, build_model=build_model, train=fit,
    pipeline=pipeline, min_accuracy=0.95, channel_normalization=((MEAN,), (STD,)))

__all__ = ["NUM_CLASSES", "target"]
