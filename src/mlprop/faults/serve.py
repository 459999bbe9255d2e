"""Faults planted in ``Target.predict``: train mode at serve time, softmax axis, skew.

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlprop.checks import as_numpy, as_tensor
from mlprop.faults.catalogue import fault
from mlprop.faults.planting import (
    serve,
    sides_swapped,
)
from mlprop.target import Target


@fault("predict", "test_predict_is_deterministic",
       catches_on={"colour": ("test_predict_is_batch_independent",)})
def eval_forgotten_in_predict(target: Target) -> Target:
    """Serves with the model in train mode (model.eval() forgotten): dropout at inference,
    batch norm normalising with the statistics of the served batch (the colour reference has
    no dropout: there it shows as batch dependence)."""
    model = target.trained_model()
    return target.replace(predict=lambda images: serve(target, model, images, train_mode=True))


@fault("predict", "test_predict_is_batch_independent")
def batchnorm_train_mode_at_serve(target: Target) -> Target:
    """Normalises logits with a BatchNorm layer left in train mode: batch statistics."""
    model = target.trained_model()
    norm = nn.BatchNorm1d(target.schema.num_classes, affine=False)

    def predict(images):
        inputs = as_tensor(target.preprocess(images))
        model.eval()
        norm.train()
        with torch.no_grad():
            logits = model(inputs)
            if len(logits) > 1:
                logits = norm(logits)
            return torch.softmax(logits, dim=1).numpy()

    return target.replace(predict=predict)


@fault("predict", "test_predict_rows_are_probability_distributions")
def softmax_over_batch(target: Target) -> Target:
    """Applies softmax over dim=0 (the batch) instead of the classes."""
    model = target.trained_model()
    return target.replace(predict=lambda images: serve(target, model, images, softmax_dim=0))


@fault("predict", "test_predict_returns_one_row_per_image")
def squeeze_in_predict(target: Target) -> Target:
    """Calls ``.squeeze()`` on the probabilities: a batch of one loses its batch axis."""
    return target.replace(predict=lambda images: np.squeeze(as_numpy(target.predict(images))))


@fault("predict", "test_predict_accuracy_on_holdout_meets_the_floor")
def inverted_colors_at_serve(target: Target) -> Target:
    """Train/serve skew: the serving path inverts colours (255 - x) before predicting."""
    return target.replace(predict=lambda images: target.predict(
        255 - np.asarray(images, np.uint8) if np.asarray(images).dtype == np.uint8 else images))


@fault("predict", "test_predict_accuracy_on_holdout_meets_the_floor")
def untrained_model_served(target: Target) -> Target:
    """Packages and serves a freshly initialised model instead of the trained one."""
    model = target.build_model(0)
    return target.replace(predict=lambda images: serve(target, model, images))


@fault("predict", "test_predict_accuracy_on_holdout_meets_the_floor")
def transposed_at_serve(target: Target) -> Target:
    """Train/serve skew: the serving path transposes each image (H and W swapped)."""
    return target.replace(predict=lambda images: target.predict(sides_swapped(target, images)))
