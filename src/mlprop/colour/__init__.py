"""The colour reference pipeline: digits rendered in red or blue ink (20 colour-dependent
classes), RGB ``uint8 (N, H, W, 3)`` in, a small ResNet at 32x32.

``mlprop.colour:target`` is the second reference target of the property suite: colour
channels, per-channel normalisation, channels-last raw images, batch norm, residual blocks.
It is assembled by the kit (:mod:`mlprop.reference.targets`) from the colour's own modules.
"""

from mlprop.colour import augment, pipeline
from mlprop.colour.model import build_model
from mlprop.colour.preprocess import INPUT_RANGE, INPUT_SHAPE, MEAN, SCHEMA, STD, preprocess
from mlprop.colour.train import fit
from mlprop.reference.targets import label_preserving, reference_target

AUGMENTATIONS = label_preserving(shift=augment.shift, brightness=augment.brightness,
                                 noise=augment.noise)

target = reference_target(
    "colour", schema=SCHEMA, input_shape=INPUT_SHAPE, input_range=INPUT_RANGE,
    preprocess=preprocess, augmentations=AUGMENTATIONS, build_model=build_model, train=fit,
    pipeline=pipeline, min_accuracy=0.9, channel_normalization=(MEAN, STD), accepts_grey=True)

__all__ = ["target"]
