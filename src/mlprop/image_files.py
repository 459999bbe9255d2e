"""Read images a user hands to ``mlprop predict``: IDX (plain or .gz), .npy, PNG.

Every loader returns uint8 (N, H, W); a single 2-D image becomes a batch of one. Nothing is
unpickled (``np.load(allow_pickle=False)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlprop.errors import SchemaError, Violation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _as_batch(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise SchemaError([Violation(f"{path}: images.ndim", "2 (H, W) or 3 (N, H, W)",
                                     f"{array.ndim} {array.shape}")])
    return array


def load_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise SchemaError([Violation(str(path), "a readable PNG image", str(exc))]) from None


def load_npy(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:  # EOFError: an empty file
        raise SchemaError([Violation(str(path), "a .npy array without objects",
                                     str(exc))]) from None
    if not isinstance(loaded, np.ndarray):  # np.load opens a zip (.npz) whatever its name
        loaded.close()
        raise SchemaError([Violation(str(path), "a .npy array", "an .npz archive")])
    return loaded


def load_images(path: str | Path) -> np.ndarray:
    """Load one file as a uint8-typed-or-not (N, H, W) batch; the caller validates it."""
    from mlprop.digits.data import read_idx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(PNG_MAGIC):
        return _as_batch(load_png(path), path)
    if path.suffix == ".npy":
        return _as_batch(load_npy(path), path)
    return _as_batch(read_idx(path), path)
