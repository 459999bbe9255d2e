"""Split containers and the once-per-process memo of a reference pipeline's seeded split.

Invariant: a split is computed from its seed alone and at most once per process and seed,
so ``training_data()`` and ``holdout()`` of one process always describe the very arrays the
cached model was trained and tested on (the bug it prevents: a holdout drawn from a second,
differently ordered split that overlaps the training data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Images (uint8, the pipeline's raw layout) and labels (int64 N,) of one split."""

    images: np.ndarray
    labels: np.ndarray

    def copies(self) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` as fresh arrays: a caller that writes into them cannot
        change the split every later caller sees."""
        return self.images.copy(), self.labels.copy()


@dataclass(frozen=True)
class Splits:
    """The train, val and test parts of one seeded split (disjoint rows of one data set)."""

    train: Dataset
    val: Dataset
    test: Dataset

    def images_by_part(self) -> dict[str, np.ndarray]:
        """``{"train": ..., "val": ..., "test": ...}``: the parts a leakage check compares."""
        return {"train": self.train.images, "val": self.val.images, "test": self.test.images}


def take(images: np.ndarray, labels: np.ndarray, parts: tuple[np.ndarray, ...]) -> Splits:
    """``Splits`` of the rows ``parts`` (train, val, test row indices) of images and labels."""
    return Splits(*(Dataset(images[rows], labels[rows]) for rows in parts))


def memoised(memo: dict[int, Splits], seed: int, compute: Callable[[], Splits]) -> Splits:
    """``memo[seed]``, computed by ``compute()`` the first time this seed is asked for."""
    if seed not in memo:
        memo[seed] = compute()
    return memo[seed]
