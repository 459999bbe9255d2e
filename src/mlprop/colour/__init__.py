"""The colour reference pipeline: digits rendered in red or blue ink (20 colour-dependent
classes), RGB ``uint8 (N, H, W, 3)`` in, a small ResNet at 32x32.

``mlprop.colour:target`` is the second reference target of the property suite: colour
channels, per-channel normalisation, channels-last raw images, batch norm, residual blocks.
"""

from mlprop.colour import augment
from mlprop.colour.model import build_model
from mlprop.colour.pipeline import (
                                    holdout,
                                    load_model,
                                    predict,
                                    save_model,
                                    trained_model,
                                    training_data,
)
from mlprop.colour.preprocess import INPUT_RANGE, INPUT_SHAPE, MEAN, SCHEMA, STD, preprocess
from mlprop.colour.train import fit
from mlprop.target import Augmentation, Target

AUGMENTATIONS = {
    "shift": Augmentation(fn=augment.shift, label_preserving=True),
    "brightness": Augmentation(fn=augment.brightness, label_preserving=True),
    "noise": Augmentation(fn=augment.noise, label_preserving=True),
}

target = Target(
    name="colour",
    schema=SCHEMA,
    input_shape=INPUT_SHAPE,
    input_range=INPUT_RANGE,
    preprocess=preprocess,
    augmentations=AUGMENTATIONS,
    build_model=build_model,
    trained_model=trained_model,
    predict=predict,
    holdout=holdout,
    min_accuracy=0.9,
    channel_normalization=(MEAN, STD),
    accepts_grey=True,
    train=fit,
    training_data=training_data,
    save_model=save_model,
    load_model=load_model,
)

__all__ = ["target"]
