"""The reference pipeline: handwritten digits (8x8, upscaled to 28x28) and a small CNN.

``mlprop.digits:target`` is the default target of the property suite and the code that the
mutation audit mutates.
"""

from mlprop.digits import augment
from mlprop.digits.model import NUM_CLASSES, build_model
from mlprop.digits.pipeline import (
                                    holdout,
                                    load_model,
                                    predict,
                                    save_model,
                                    trained_model,
                                    training_data,
)
from mlprop.digits.preprocess import INPUT_RANGE, INPUT_SHAPE, MEAN, SCHEMA, STD, preprocess
from mlprop.digits.train import fit
from mlprop.target import Augmentation, Target

AUGMENTATIONS = {
    "rotate": Augmentation(fn=augment.rotate, label_preserving=True),
    "shift": Augmentation(fn=augment.shift, label_preserving=True),
    "scale": Augmentation(fn=augment.scale, label_preserving=True),
    "noise": Augmentation(fn=augment.noise, label_preserving=True),
}

target = Target(
    name="digits",
    schema=SCHEMA,
    input_shape=INPUT_SHAPE,
    input_range=INPUT_RANGE,
    preprocess=preprocess,
    augmentations=AUGMENTATIONS,
    build_model=build_model,
    trained_model=trained_model,
    predict=predict,
    holdout=holdout,
    min_accuracy=0.95,
    channel_normalization=((MEAN,), (STD,)),
    train=fit,
    training_data=training_data,
    save_model=save_model,
    load_model=load_model,
)

__all__ = ["NUM_CLASSES", "target"]
