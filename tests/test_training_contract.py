"""The training stage of the target contract (issue 25, item 1): ``train``, ``training_data``,
``save_model`` and ``load_model`` are optional, validated at construction, and the training
data is read batch by batch with errors that name ``training_data``."""

from __future__ import annotations

import numpy as np
import pytest

from mlprop.errors import SchemaError, TargetError
from mlprop.target import OPTIONAL_FIELDS, load_target
from mlprop.training_data import training_batches

DIGITS = load_target("mlprop.digits:target")


def _train(images, labels, *, seed, epochs):
    return None


def _images(count: int = 3) -> np.ndarray:
    return np.zeros((count, 8, 8), np.uint8)


def test_the_training_fields_are_optional_and_listed_as_such():
    assert DIGITS.replace(train=None).train is None
    for name in ("train", "training_data", "save_model", "load_model"):
        assert name in OPTIONAL_FIELDS


def test_a_train_with_another_signature_is_refused_naming_train():
    DIGITS.replace(train=_train)  # the documented signature is accepted
    with pytest.raises(TargetError, match=r"train: expected a callable "
                       r"train\(images, labels, \*, seed, epochs\)"):
        DIGITS.replace(train=lambda images, labels: None)
    with pytest.raises(TargetError, match="training_data"):
        DIGITS.replace(training_data=lambda split: None)


def test_save_model_and_load_model_come_together():
    DIGITS.replace(save_model=lambda model, path: None, load_model=lambda path: None)
    with pytest.raises(TargetError, match=r"load_model: expected a callable: save_model and "
                       r"load_model come together \(both or neither\), and save_model is given"):
        DIGITS.replace(save_model=lambda model, path: None, load_model=None)
    with pytest.raises(TargetError, match=r"save_model: .*load_model is given"):
        DIGITS.replace(save_model=None, load_model=lambda path: None)


def test_one_pair_and_an_iterable_of_batches_are_both_read():
    labels = np.array([0, 1, 2])
    one = DIGITS.replace(training_data=lambda: (_images(), labels))
    assert [len(b[0]) for b in training_batches(one)] == [3]
    streamed = DIGITS.replace(training_data=lambda: ((_images(2), labels[:2]) for _ in range(4)))
    assert [len(b[0]) for b in training_batches(streamed)] == [2, 2, 2, 2]


@pytest.mark.parametrize(("data", "field"), [
    (lambda: (_images().astype(np.float32), np.array([0, 1, 2])), "training_data.images.dtype"),
    (lambda: (_images(), np.array([0, 1, 12])), "training_data.labels.values"),
    (lambda: [(_images(), np.array([0, 1, 2])), (_images(), np.array([0, 1]))],
     "training_data[1].labels.length"),
    (lambda: [(_images(), np.array([0, 1, 2])), "not a batch"], "training_data[1]"),
    (lambda: 42, "training_data"),
])
def test_bad_training_data_is_a_schema_error_naming_training_data(data, field):
    with pytest.raises(SchemaError) as caught:
        list(training_batches(DIGITS.replace(training_data=data)))
    assert field in caught.value.fields
