"""Input checks shared by drift and fairness: every defect is an error naming the field.

:class:`MonitorInputError` is a :class:`~mlprop.errors.MlpropError` and a ``ValueError``
carrying one :class:`~mlprop.errors.Violation` (field, expected, actual), so the ``mlprop``
command prints it on one line and exits 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlprop.errors import MlpropError, Violation

__all__ = [
    "MonitorInputError",
    "check_categories",
    "check_groups",
    "check_images",
    "check_same_length",
    "load_vector_file",
]


class MonitorInputError(MlpropError, ValueError):
    """Bad input to a monitor: ``field`` should have been ``expected`` but was ``actual``."""

    def __init__(self, field: str, expected: str, actual: str) -> None:
        self.violation = Violation(field, expected, actual)
        self.field = field
        super().__init__(str(self.violation))


def _describe(array: np.ndarray) -> str:
    return f"{array.dtype} array of shape {array.shape}"


def _as_array(values: Any, field: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise MonitorInputError(field, "an array", f"{type(values).__name__} ({exc})") from None


def _check_no_nan(array: np.ndarray, field: str) -> None:
    """NaN (or None, in an object array) anywhere: an error naming the first position."""
    if array.dtype.kind == "f" or array.dtype.kind == "c":
        bad = np.isnan(array)
    elif array.dtype.kind == "O":
        bad = np.array([v is None or (isinstance(v, float) and v != v) for v in array.ravel()],
                       dtype=bool).reshape(array.shape)
    else:
        return
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = where[0] if len(where) == 1 else where
        raise MonitorInputError(field, "no missing values",
                                f"NaN at index {index} ({int(bad.sum())} in all)")


def check_images(images: Any, field: str) -> np.ndarray:
    """``images`` as a ``uint8 (N, H, W)`` array with ``N >= 1`` (no copy when it is one)."""
    array = _as_array(images, field)
    _check_no_nan(array, field)
    if array.ndim != 3:
        raise MonitorInputError(field, "images of shape (N, H, W)", _describe(array))
    if array.dtype != np.uint8:
        raise MonitorInputError(field, "uint8 images (N, H, W) in 0..255", _describe(array))
    if array.shape[0] == 0:
        raise MonitorInputError(field, "at least one image", "an empty batch "
                                f"{array.shape}")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise MonitorInputError(field, "images at least 1x1", f"shape {array.shape}")
    return array


def check_categories(values: Any, field: str, *, min_size: int = 1) -> np.ndarray:
    """Class labels or predicted classes: a 1-D integer (or bool) array, no NaN, non-empty.

    Integral floats (``1.0``) are accepted and become ``int64``; ``(N, 1)`` columns too.
    """
    array = _as_array(values, field)
    _check_no_nan(array, field)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise MonitorInputError(field, "a 1-D array of class indices", _describe(array))
    if array.shape[0] < min_size:
        raise MonitorInputError(field, f"at least {min_size} value(s)",
                                "an empty array" if array.shape[0] == 0 else _describe(array))
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            index = int(np.flatnonzero(~np.isfinite(array))[0])
            raise MonitorInputError(field, "finite class indices",
                                    f"{array[index]} at index {index}")
        if not (array == np.round(array)).all():
            index = int(np.flatnonzero(array != np.round(array))[0])
            raise MonitorInputError(field, "integer class indices",
                                    f"{array[index]} at index {index}")
        return array.astype(np.int64)
    raise MonitorInputError(field, "integer class indices", _describe(array))


def check_groups(values: Any, field: str = "groups") -> np.ndarray:
    """A group attribute: 1-D, non-empty, no NaN/None, any hashable scalar type."""
    array = _as_array(values, field)
    _check_no_nan(array, field)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise MonitorInputError(field, "a 1-D array with one group per sample", _describe(array))
    if array.shape[0] == 0:
        raise MonitorInputError(field, "at least one value", "an empty array")
    return array


def check_same_length(arrays: Sequence[tuple[str, np.ndarray]]) -> None:
    """All named arrays have one length. The odd one out is named: the first whose length
    differs from the most common length (on a tie, from the first array's)."""
    lengths = [len(array) for _, array in arrays]
    common = max(lengths, key=lambda n: (lengths.count(n), n == lengths[0]))
    reference = next(name for (name, _), n in zip(arrays, lengths, strict=True) if n == common)
    for (name, _), n in zip(arrays, lengths, strict=True):
        if n != common:
            raise MonitorInputError(name, f"{common} values (one per entry of {reference})",
                                    f"{n}")


_INT64 = np.iinfo(np.int64)


def _parse_value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_text_vector(path: Path, flag: str) -> np.ndarray:
    """One value per line: all integers -> int64, else all numbers -> float64, else str."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise MonitorInputError(flag, "UTF-8 text, one value per line",
                                f"{path} line {line}: invalid byte {exc.object[exc.start]:#04x}"
                                ) from None
    numbered = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    values = [(n, _parse_value(line)) for n, line in numbered if line]
    if any(isinstance(v, str) for _, v in values):
        return np.array([str(v) for _, v in values])
    for n, value in values:
        if isinstance(value, int) and not _INT64.min <= value <= _INT64.max:
            raise MonitorInputError(flag, f"integers within int64 ({_INT64.min}..{_INT64.max})",
                                    f"{path} line {n}: {value}")
    if any(isinstance(v, float) for _, v in values):
        return np.array([v for _, v in values], dtype=np.float64)
    return np.array([v for _, v in values], dtype=np.int64)


def load_vector_file(path: str | Path, flag: str) -> np.ndarray:
    """A 1-D input (labels, predictions, groups) from ``.npy``, ``.txt`` / ``.csv`` (one
    value per line) or IDX (plain or ``.gz``).

    Invariant: returns an array (its shape and values are checked later by
    :func:`check_categories` / :func:`check_groups`) or raises an
    :class:`~mlprop.errors.MlpropError` naming ``flag``, the file and the defect (a line
    number for text); a missing file is a ``FileNotFoundError`` naming both. Memory stays
    within a small multiple of the file's size (the binary readers check declared sizes
    against the file first).
    """
    from mlprop.digits.data import read_idx
    from mlprop.image_files import load_npy

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag}: no such file: {path}")
    if path.suffix == ".npy":
        return load_npy(path)
    if path.suffix in (".txt", ".csv"):
        return _parse_text_vector(path, flag)
    return read_idx(path)
