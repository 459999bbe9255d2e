"""The reference-pipeline kit (``mlprop.reference``) on its own, with tiny stand-ins.

The pipelines' tests reach most of the kit through ``mlprop.digits``; these pin what they
cannot see: the names the packages kept importable, the target wiring, the split memo, and
the training loop's hooks and seeding with a model of a few parameters (milliseconds).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

import mlprop.colour
import mlprop.digits
from mlprop.colour import pipeline as colour_pipeline
from mlprop.digits import pipeline as digits_pipeline
from mlprop.reference import splits, targets, training
from mlprop.reference.checkpoints import Checkpoints
from mlprop.target import Augmentation


def test_label_preserving_keeps_order_and_marks_every_augmentation():
    def first(images, *, seed, magnitude):
        return images

    def second(images, *, seed, magnitude):
        return images

    made = targets.label_preserving(b=first, a=second)
    assert list(made) == ["b", "a"]
    assert made["b"] == Augmentation(fn=first, label_preserving=True)
    assert made["a"].fn is second and made["a"].label_preserving


def test_reference_target_takes_the_pipeline_functions_from_the_pipeline():
    for target, pipeline in ((mlprop.digits.target, digits_pipeline),
                             (mlprop.colour.target, colour_pipeline)):
        for name in ("trained_model", "predict", "holdout", "training_data", "save_model",
                     "load_model"):
            assert getattr(target, name) == getattr(pipeline, name), (target.name, name)
    assert mlprop.digits.target.name == "digits" and mlprop.colour.target.name == "colour"
    assert mlprop.colour.target.accepts_grey and not mlprop.digits.target.accepts_grey


def test_a_split_is_computed_once_per_seed_and_hands_out_copies():
    calls = []
    images, labels = np.arange(24, dtype=np.uint8).reshape(6, 2, 2), np.arange(6)

    def compute():
        calls.append(1)
        return splits.take(images, labels, (np.array([0, 1, 2]), np.array([3]),
                                            np.array([4, 5])))

    memo: dict = {}
    first = splits.memoised(memo, 1, compute)
    assert splits.memoised(memo, 1, compute) is first and calls == [1]
    splits.memoised(memo, 2, compute)
    assert calls == [1, 1]
    np.testing.assert_array_equal(first.test.labels, [4, 5])
    np.testing.assert_array_equal(first.val.images, images[3:4])
    parts = first.images_by_part()
    assert list(parts) == ["train", "val", "test"] and parts["train"] is first.train.images
    copied_images, copied_labels = first.train.copies()
    copied_images[...] = 255
    copied_labels[...] = -1
    np.testing.assert_array_equal(first.train.images, images[:3])
    np.testing.assert_array_equal(first.train.labels, [0, 1, 2])


def test_the_base_config_digest_is_the_sha256_of_its_sorted_json():
    config = training.TrainConfig(epochs=3, seed=4)
    payload = json.dumps(asdict(config), sort_keys=True).encode()
    assert config.digest() == hashlib.sha256(payload).hexdigest()
    assert training.TrainConfig(epochs=3, seed=5).digest() != config.digest()


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))


def _run(seed: int, log: list | None = None) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    inputs, labels = torch.randn(10, 3, generator=generator), torch.arange(10) % 2
    torch.manual_seed(99)
    network = Tiny()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    log = [] if log is None else log

    def epoch_batches(epoch):
        log.append(("epoch", epoch))
        return training.tensor_batches(inputs, labels)

    return training.run_epochs(network, optimizer, seed=seed, epochs=2, rows=10, batch_size=4,
                               epoch_batches=epoch_batches,
                               after_step=lambda: log.append("step"),
                               after_epoch=lambda epoch, loss: log.append(("end", epoch)))


def test_the_loop_calls_its_hooks_in_order_and_returns_an_eval_model():
    log: list = []
    network = _run(0, log)
    assert log == [("epoch", 0), "step", "step", "step", ("end", 0),
                   ("epoch", 1), "step", "step", "step", ("end", 1)]
    assert not network.training


def test_the_loop_is_seeded_and_leaves_the_global_rng_alone():
    first = _run(1)
    for a, b in zip(first.parameters(), _run(1).parameters(), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(),
                                                     _run(2).parameters(), strict=True))
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    network = Tiny()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    torch.random.set_rng_state(before)
    training.run_epochs(network, optimizer, seed=3, epochs=1, rows=4, batch_size=2,
                        epoch_batches=lambda epoch: training.tensor_batches(
                            torch.ones(4, 3), torch.zeros(4, dtype=torch.int64)))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_save_trained_records_the_config_metrics_and_extras(tmp_path):
    written = {}

    def save_package(path, network, **fields):
        written.update(fields, path=path, network=network)
        return path

    checkpoints = Checkpoints(fields={"architecture": "Tiny"}, build=Tiny,
                              save_package=save_package,
                              load_package=lambda path, build: (build(), {}))
    config = training.TrainConfig(seed=8)
    network = Tiny()
    assert checkpoints.save_trained(tmp_path, network, {"accuracy": 1.0}, config,
                                    data="x") == tmp_path
    assert written == {"architecture": "Tiny", "metrics": {"accuracy": 1.0}, "seed": 8,
                       "extra": {"train_config": asdict(config), "data": "x"},
                       "path": tmp_path, "network": network}
    assert isinstance(checkpoints.load_model(tmp_path), Tiny)
