"""Properties of ``target.predict``: the deployed path, raw uint8 -> probabilities."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.checks import as_numpy, assert_close, assert_shape, fail, reproduction, requires
from mlprop.profiles import examples_at_most
from mlprop.schema import ImageSchema

pytestmark = requires("predict")

SUM_ATOL = 1e-5


def _batches(target, **options):
    return gen.images(target.schema, **{"max_batch": 6, **options})


@given(data=st.data())
def test_predict_returns_one_row_per_image(target, data):
    """predict(images) has shape (N, num_classes) for N >= 0.

    Catches: `squeeze()` on the output (a batch of one loses its batch axis), an empty
    batch crashing the serving path."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, images=images):
        assert_shape(target.predict(images), (len(images), target.schema.num_classes),
                     "predict output")


@given(data=st.data())
def test_predict_rows_are_probability_distributions(target, data):
    """Every row is in [0, 1] and sums to 1.

    Catches: softmax over the batch axis (dim=0), returning logits instead of
    probabilities, log-probabilities from log_softmax."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    with reproduction(target, images=images):
        probabilities = as_numpy(target.predict(images)).astype(np.float64)
        if probabilities.min() < 0 or probabilities.max() > 1:
            fail("predict returns values outside [0, 1]", "probabilities",
                 f"values in [{probabilities.min()}, {probabilities.max()}]")
        sums = probabilities.sum(axis=1)
        worst = int(np.argmax(np.abs(sums - 1)))
        if abs(sums[worst] - 1) > SUM_ATOL:
            fail("predict rows do not sum to 1", f"1 +- {SUM_ATOL}",
                 f"row {worst} sums to {sums[worst]}")


@given(data=st.data())
def test_predict_is_deterministic(target, data):
    """Predicting the same batch twice gives identical probabilities.

    Catches: model.eval() forgotten on the serving path (dropout active at inference)."""
    images = data.draw(_batches(target, min_batch=1), label="images")
    with reproduction(target, images=images):
        assert_close(target.predict(images), target.predict(images.copy()),
                     "predict is not deterministic")


@given(data=st.data())
def test_predict_is_batch_independent(target, data):
    """Row i of predict(batch) equals predict(image i alone).

    Catches: BatchNorm in train mode at serve time (batch statistics), batch-level
    normalisation, rows shuffled on the way through."""
    images = data.draw(_batches(target, min_batch=2), label="images")
    with reproduction(target, images=images):
        batch = as_numpy(target.predict(images))
        for index in range(len(images)):
            assert_close(batch[index:index + 1], target.predict(images[index:index + 1]),
                         f"predict is batch-dependent: row {index} differs from predicting "
                         "that image alone", atol=1e-5, rtol=1e-4)


@requires("holdout")
@examples_at_most(1)
@given(st.just(None))
def test_predict_accuracy_on_holdout_meets_the_floor(target, _):
    """Accuracy of predict on target.holdout() is at least target.min_accuracy.

    Catches: train/serve skew (inverted colours, transposed images, other normalisation
    at serving time), an untrained or wrong model packaged for serving."""
    images, labels = target.holdout()
    with reproduction(target, holdout_size=len(labels), min_accuracy=target.min_accuracy):
        if len(labels) == 0:
            fail("holdout() is empty", "at least one labelled image", "0 images")
        predicted = as_numpy(target.predict(images)).argmax(axis=1)
        accuracy = float((predicted == labels).mean())
        if accuracy < target.min_accuracy:
            fail("predict's holdout accuracy is below min_accuracy (a floor on the quality of "
                 "the whole serving path: data, preprocessing, the model served, its training)",
                 f">= {target.min_accuracy}",
                 f"{accuracy:.4f} on {len(labels)} images "
                 f"({int((predicted != labels).sum())} misclassified)")


@requires("accepts_grey")
@given(data=st.data())
def test_predict_gives_a_grey_image_the_same_answer_in_grey_and_in_colour(target, data):
    """A grey image given as a colour image (every channel equal) and the same image given
    as one grayscale channel get the same probabilities, for targets that declare
    `accepts_grey`.

    Catches: a grayscale path that converts with the wrong rule (the grey values put in the
    red channel only, weighted luma coefficients applied backwards, another normalisation),
    so grayscale uploads are served by what is in effect another model."""
    schema = target.schema
    grey_schema = ImageSchema(num_classes=schema.num_classes, min_side=schema.min_side,
                              max_side=schema.max_side, size=schema.size)
    grey = data.draw(gen.images(grey_schema, min_batch=1, max_batch=4), label="grey images")
    colour = schema.from_channels_last(np.repeat(grey[..., np.newaxis], schema.channels,
                                                 axis=3))
    with reproduction(target, grey=grey):
        assert_close(target.predict(grey), target.predict(colour),
                     "a grey image gets another prediction as one channel than as equal "
                     f"{schema.channels} channels", atol=1e-5, rtol=1e-4)
