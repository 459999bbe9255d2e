"""Tests for :mod:`mlprop.leakage`: planted exact and near copies of holdout images are found
with their indices; the disjoint digits reference splits show no leak; flat images match
only on exact bytes."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mlprop.digits import pipeline
from mlprop.leakage import Leak, find_leaks
from mlprop.schema import ImageSchema

GREY = ImageSchema(num_classes=10, min_side=8, max_side=64)


def _train_batches(images: np.ndarray, labels: np.ndarray, size: int):
    for start in range(0, len(images), size):
        yield images[start:start + size], labels[start:start + size]


def _reference():
    splits = pipeline.reference_splits()
    holdout, _ = pipeline.holdout()
    train = np.concatenate([splits.train.images, splits.val.images])
    labels = np.concatenate([splits.train.labels, splits.val.labels])
    return holdout, train, labels


def _shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shifted copies, the uncovered border filled with black (not what the detector
    assumes: it compares only the part still visible)."""
    h, w = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return padded[:, 2 - dy:2 - dy + h, 2 - dx:2 - dx + w]


def _resize_round_trip(images: np.ndarray, side: int) -> np.ndarray:
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    mid = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear",
                                          align_corners=False)
    back = torch.nn.functional.interpolate(mid, size=images.shape[1:3], mode="bilinear",
                                           align_corners=False)
    return np.clip(np.rint(back[:, 0].numpy()), 0, 255).astype(np.uint8)


def _clip(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0, 255).astype(np.uint8)


def test_disjoint_reference_splits_show_no_leak():
    holdout, train, labels = _reference()
    start = time.perf_counter()
    leaks = find_leaks(holdout, _train_batches(train, labels, 500), GREY)
    elapsed = time.perf_counter() - start
    print(f"digits reference: {len(holdout)} holdout x {len(train)} training images, "
          f"{elapsed:.2f} s, {len(leaks)} leaks")
    assert leaks == []


PLANTS = {
    "exact": lambda x, rng: x.copy(),
    "shift down 1": lambda x, rng: _shift(x, 1, 0),
    "shift up-right 1": lambda x, rng: _shift(x, -1, 1),
    "shift left 2": lambda x, rng: _shift(x, 0, -2),
    "brightness +10": lambda x, rng: _clip(x.astype(int) + 10),
    "resize 8->9->8": lambda x, rng: _resize_round_trip(x, 9),
    "resize 8->7->8": lambda x, rng: _resize_round_trip(x, 7),
    "noise +-3": lambda x, rng: _clip(x.astype(int) + rng.integers(-3, 4, x.shape)),
}


@pytest.mark.parametrize("kind", list(PLANTS))
def test_planted_copies_are_found_with_their_indices(kind):
    holdout, train, labels = _reference()
    rng = np.random.default_rng(3)
    chosen = rng.choice(len(holdout), size=6, replace=False)
    copies = PLANTS[kind](holdout[chosen], rng)
    # plant them at known rows of the second of three batches
    batches = list(_train_batches(train, labels, 600))
    images, batch_labels = batches[1]
    rows = rng.choice(len(images), size=len(chosen), replace=False)
    images = images.copy()
    images[rows] = copies
    batches[1] = (images, batch_labels)
    leaks = find_leaks(holdout, iter(batches), GREY)
    found = {(leak.holdout_index, leak.batch, leak.row) for leak in leaks}
    assert found == {(int(i), 1, int(r)) for i, r in zip(chosen, rows, strict=True)}, [
        leak.describe() for leak in leaks]
    expected_kind = "exact" if kind == "exact" else "near"
    assert {leak.kind for leak in leaks} == {expected_kind}


def test_same_class_different_images_are_not_reported():
    holdout, train, labels = _reference()
    _, holdout_labels = pipeline.holdout()
    # training data made only of the holdout's own classes, none of its images
    ones = train[labels == 1]
    assert len(ones) > 50
    leaks = find_leaks(holdout[holdout_labels == 1], [(ones, labels[labels == 1])], GREY)
    assert leaks == []


def _upsample(images: np.ndarray, side: int) -> np.ndarray:
    x = torch.nn.functional.interpolate(torch.from_numpy(images.astype(np.float32))[:, None],
                                        size=(side, side), mode="bilinear")
    return np.clip(np.rint(x[:, 0].numpy()), 0, 255).astype(np.uint8)


def test_copies_stored_at_another_size_are_found():
    holdout, train, labels = _reference()
    big = _upsample(train, 16)  # the whole training set stored at 16x16
    big[[10, 700]] = _upsample(holdout[[4, 200]], 16)
    leaks = find_leaks(holdout, [(big, labels)], GREY)
    assert [(leak.holdout_index, leak.row, leak.kind) for leak in leaks] == [
        (4, 10, "near"), (200, 700, "near")], [leak.describe() for leak in leaks]


def test_reads_a_targets_training_batches():
    from mlprop.target import load_target
    from mlprop.training_data import training_batches

    target = load_target("mlprop.digits:target")
    holdout, _ = target.holdout()
    assert find_leaks(holdout, training_batches(target), target.schema) == []


@pytest.mark.slow
def test_colour_reference_no_leak_and_planted_copies_found():
    from mlprop.target import load_target
    from mlprop.training_data import training_batches

    target = load_target("mlprop.colour:target")
    holdout, _ = target.holdout()
    batches = list(training_batches(target))
    start = time.perf_counter()
    assert find_leaks(holdout, iter(batches), target.schema) == []
    print(f"colour reference: {len(holdout)} holdout x {sum(len(b[0]) for b in batches)} "
          f"training images, {time.perf_counter() - start:.2f} s, no leak")
    images, labels = batches[0]
    images = images.copy()
    last = target.schema.to_channels_last(holdout)
    images[3] = target.schema.from_channels_last(
        _clip(last[[11]].astype(int) - 15))[0]  # darker
    images[40] = target.schema.from_channels_last(np.roll(last[[90]], 1, axis=2))[0]
    leaks = find_leaks(holdout, [(images, labels)], target.schema)
    assert [(leak.holdout_index, leak.row, leak.kind) for leak in leaks] == [
        (11, 3, "near"), (90, 40, "near")], [leak.describe() for leak in leaks]


def test_flat_images_match_only_on_exact_bytes():
    holdout = np.zeros((3, 8, 8), np.uint8)
    holdout[1] = 200
    holdout[2, 3, 3] = 5  # a nearly flat image
    train = np.zeros((4, 8, 8), np.uint8)
    train[1] = 201  # not the same bytes as holdout[1]
    train[2, 3, 4] = 5  # holdout[2] shifted, but flat: no near match
    train[3] = 200
    leaks = find_leaks(holdout, [(train, np.zeros(4, np.int64))], GREY)
    assert [(leak.holdout_index, leak.row, leak.kind) for leak in leaks] == [
        (0, 0, "exact"), (1, 3, "exact")]


def test_colour_layouts_and_larger_images():
    rng = np.random.default_rng(0)
    # smooth random colour pictures, 40x40 (compared at the 32-pixel working size)
    base = rng.integers(0, 256, (30, 5, 5, 3)).astype(np.float32)
    pictures = torch.nn.functional.interpolate(torch.from_numpy(base).permute(0, 3, 1, 2),
                                               size=(40, 40), mode="bicubic")
    hwc = np.clip(pictures.permute(0, 2, 3, 1).numpy(), 0, 255).astype(np.uint8)
    holdout, train = hwc[:10], hwc[10:].copy()
    train[4] = np.clip(holdout[7].astype(int) + 12, 0, 255)
    train[9] = np.roll(holdout[2], 1, axis=1)
    for layout, convert in (("HWC", lambda x: x), ("CHW", lambda x: np.moveaxis(x, -1, 1))):
        schema = ImageSchema(num_classes=3, min_side=8, max_side=64, channels=3,
                             layout=layout)
        leaks = find_leaks(convert(holdout), [(convert(train), np.zeros(20, np.int64))],
                           schema)
        assert [(leak.holdout_index, leak.row) for leak in leaks] == [(7, 4), (2, 9)]


def test_max_pairs_bounds_the_report():
    holdout, _, _ = _reference()
    leaks = find_leaks(holdout, [(holdout.copy(), np.zeros(len(holdout), np.int64))], GREY,
                       max_pairs=5)
    assert len(leaks) == 5 and all(isinstance(leak, Leak) for leak in leaks)
    with pytest.raises(ValueError, match="max_pairs"):
        find_leaks(holdout, [], GREY, max_pairs=0)


@pytest.mark.slow
def test_time_on_a_synthetic_60k_set():
    holdout, train, labels = _reference()
    rng = np.random.default_rng(1)
    # 60k training images: the reference images, shifted and noised, none a copy of a holdout
    picks = rng.integers(0, len(train), 60_000)
    big = _clip(np.roll(train[picks], rng.integers(-1, 2), axis=2).astype(int)
                + rng.integers(-20, 21, (60_000, 1, 1)))
    big[12_345] = holdout[17]
    start = time.perf_counter()
    leaks = find_leaks(holdout, _train_batches(big, labels[picks], 10_000), GREY)
    elapsed = time.perf_counter() - start
    print(f"synthetic: {len(holdout)} holdout x 60000 training images, {elapsed:.2f} s, "
          f"{len(leaks)} leaks")
    assert (17, 1, 2345) in {(leak.holdout_index, leak.batch, leak.row) for leak in leaks}
