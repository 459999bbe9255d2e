"""Reading monitor inputs from files: image batches, 1-D vectors (labels, predictions,
groups) and the built-in ``digits`` data, by the names ``drift_report`` takes.

Inputs are IDX (``.gz`` ok), ``.npy`` (never unpickled) or, for images, PNG; 1-D inputs may
also be ``.txt`` / ``.csv`` files with one value per line. A missing file is a
:class:`MonitorFileError` naming the flag it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlprop.errors import MlpropError
from mlprop.monitor.inputs import load_vector_file

__all__ = ["BUILTIN", "MonitorFileError", "load_batches", "load_vector"]

BUILTIN = "digits"
"""The source name that means the embedded digits data set rather than a file."""


class MonitorFileError(MlpropError, FileNotFoundError):
    """A monitor input file is missing; the message names the flag and the path."""


def load_vector(path: str | Path, flag: str) -> np.ndarray:
    """A 1-D array from ``.npy``, ``.txt`` / ``.csv`` (one value per line) or IDX; a
    missing file is a :class:`MonitorFileError`, a malformed one an mlprop error naming
    ``flag`` (:func:`mlprop.monitor.inputs.load_vector_file`)."""
    path = Path(path)
    if not path.is_file():
        raise MonitorFileError(f"{flag}: no such file: {path}")
    return load_vector_file(path, flag)


def _split_digits(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from mlprop.digits.data import load_default_dataset

    images, labels = load_default_dataset()
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    first, second = np.sort(order[:half]), np.sort(order[half:])
    return (images[first], labels[first]), (images[second], labels[second])


def _load_images(source: str, flag: str) -> np.ndarray:
    from mlprop.image_files import load_images

    if not Path(source).is_file():
        raise MonitorFileError(f"{flag}: no such file: {source} (or name the built-in '{BUILTIN}')")
    return load_images(source)


def load_batches(sources: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Images, labels and predictions of both batches, by drift_report's argument names.

    ``sources`` maps those names to a path, ``BUILTIN`` (images only) or None; ``seed``
    splits the built-in data into two halves when both sides name it."""
    out: dict[str, Any] = {}
    builtin_labels: dict[str, np.ndarray] = {}
    if sources["reference"] == BUILTIN and sources["current"] == BUILTIN:
        (out["reference"], ref_labels), (out["current"], cur_labels) = _split_digits(seed)
        builtin_labels = {"reference_labels": ref_labels, "current_labels": cur_labels}
    else:
        for side in ("reference", "current"):
            source = sources[side]
            if source == BUILTIN:
                from mlprop.digits.data import load_default_dataset

                out[side], builtin_labels[f"{side}_labels"] = load_default_dataset()
            else:
                out[side] = _load_images(source, f"--{side}")
    for name in ("reference_labels", "current_labels", "reference_predictions",
                 "current_predictions"):
        path = sources.get(name)
        if path is not None:
            out[name] = load_vector(path, "--" + name.replace("_", "-"))
    # the built-in data's labels are used where no file names them, and only in pairs
    for name, labels in builtin_labels.items():
        out.setdefault(name, labels)
    if len(builtin_labels) == 1 and ("reference_labels" in out) != ("current_labels" in out):
        out.pop(next(iter(builtin_labels)))
    return out
