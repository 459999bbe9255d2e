"""Data for the reference pipeline: digits loader, IDX (MNIST) I/O, splits, leakage.

Every function here guards one invariant of the data feeding the model:

- :func:`load_digits_uint8` / :func:`load_default_dataset`: raw images are ``uint8``
  ``(N, 8, 8)`` in ``0..255`` with ``int64`` labels, no byte-identical duplicates.
- :func:`read_idx` / :func:`write_idx`: an IDX file round-trips exactly; a corrupt
  file raises :class:`~mlprop.errors.IdxFormatError` naming the path and the defect,
  and never makes the reader allocate the size a header merely claims.
- :func:`load_idx_dataset`: MNIST-style directories load as ``uint8 (N, H, W)`` images
  and ``int64 (N,)`` labels of matching length.
- :func:`stratified_split`: train/val/test are disjoint, cover every index once,
  keep each class's proportions and depend only on the seed.
- :func:`find_leakage` / :func:`assert_no_leakage`: no image appears in two parts.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import math
import os
import stat
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from mlprop.atomic import fsync_directory
from mlprop.errors import IdxFormatError, MlpropError, SchemaError, Violation

__all__ = [
    "IDX_DTYPES",
    "MAX_IDX_BYTES",
    "DatasetError",
    "Leak",
    "LeakageError",
    "Split",
    "assert_no_leakage",
    "deduplicate",
    "find_leakage",
    "load_default_dataset",
    "load_digits_uint8",
    "load_idx_dataset",
    "read_idx",
    "stratified_split",
    "write_idx",
]

#: IDX type code -> big-endian numpy dtype (the only element types IDX can hold).
IDX_DTYPES: Mapping[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Largest payload (bytes) :func:`read_idx` accepts; larger headers are refused up front.
MAX_IDX_BYTES = 2**31

#: Bytes read at a time from a gzip stream, so a lying header cannot force a huge buffer.
_GZIP_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NDIM = 32  # numpy's portable limit; an IDX header may claim up to 255
_MAX_DIM = 2**32 - 1  # dims are big-endian uint32
_DIGITS_MAX = 16  # sklearn's digits pixels are integers 0..16


class DatasetError(MlpropError, ValueError):
    """A dataset (directory, labels, split arguments) is unusable; the message says why."""


class LeakageError(DatasetError):
    """The same image is in two parts of a split; ``leaks`` pairs every occurrence in a later
    part with the first occurrence in each earlier part."""

    def __init__(self, leaks: list[Leak], *, shown: int = 5) -> None:
        self.leaks = list(leaks)
        lines = "\n".join(f"  - {leak}" for leak in self.leaks[:shown])
        more = len(self.leaks) - shown
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{len(self.leaks)} image(s) appear in more than one part:\n{lines}{tail}"
        )


# --------------------------------------------------------------------------- digits


def load_digits_uint8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as ``uint8 (N, 8, 8)`` in 0..255, ``int64`` labels.

    Pixels are rescaled from 0..16 by ``round(x * 255 / 16)`` (half up), so 0 -> 0 and
    16 -> 255. Invariant: the dtype/range every target's schema expects. Prevents feeding
    the pipeline float 0..16 images that pass shape checks but are 16x too dark.
    No download: the data ships inside scikit-learn.
    """
    from sklearn.datasets import load_digits  # local: importing sklearn is slow

    bunch = load_digits()
    raw = np.asarray(bunch.images, dtype=np.float64)
    if raw.size and (raw.min() < 0 or raw.max() > _DIGITS_MAX):
        raise DatasetError(f"sklearn digits pixels outside 0..{_DIGITS_MAX}")
    images = np.floor(raw * 255.0 / _DIGITS_MAX + 0.5).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return images, labels


def _image_key(image: np.ndarray) -> bytes:
    """Digest identifying an image by dtype, shape and bytes (C order)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.dtype.str}{image.shape}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.digest()


def deduplicate(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop byte-identical repeats of an image, keeping its first occurrence.

    An image that occurs with two different labels is dropped entirely (no copy kept):
    its label is unknowable. Invariant: every image in the result is unique, so no split
    can put one copy in train and another in test. Prevents optimistic test accuracy
    from duplicates leaking across splits.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim < 1 or labels.shape != images.shape[:1]:
        raise DatasetError(
            f"need one label per image: images {images.shape}, labels {labels.shape}"
        )
    first: dict[bytes, int] = {}
    conflicting: set[bytes] = set()
    keys = [_image_key(image) for image in images]
    for index, key in enumerate(keys):
        if key not in first:
            first[key] = index
        elif labels[first[key]] != labels[index]:
            conflicting.add(key)
    keep = np.array(
        sorted(i for key, i in first.items() if key not in conflicting), dtype=np.int64
    )
    return images[keep], labels[keep]


def load_default_dataset() -> tuple[np.ndarray, np.ndarray]:
    """The reference pipeline's data: :func:`load_digits_uint8`, deduplicated.

    (The bundled digits hold no byte-identical duplicates today; deduplicating anyway
    keeps the no-leakage invariant if the source ever changes.)
    """
    return deduplicate(*load_digits_uint8())


# --------------------------------------------------------------------------- IDX read


def _read_upto(stream: IO[bytes], size: int) -> bytes:
    """Read up to ``size`` bytes, fewer only at end of stream."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _GZIP_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _parse_header(path: Path, stream: IO[bytes]) -> tuple[np.dtype, tuple[int, ...]]:
    """Read and validate the magic and dimensions; return (big-endian dtype, shape)."""
    magic = _read_upto(stream, 4)
    if len(magic) < 4:
        raise IdxFormatError(path, f"truncated header: {len(magic)} of 4 magic bytes")
    if magic[:2] != b"\x00\x00":
        raise IdxFormatError(path, f"wrong magic: first two bytes are {magic[:2].hex()}, not 0000")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise IdxFormatError(path, f"wrong magic: unknown dtype code 0x{code:02x}")
    if not 1 <= ndim <= _MAX_NDIM:
        raise IdxFormatError(path, f"wrong magic: ndim {ndim} (need 1..{_MAX_NDIM})")
    raw_dims = _read_upto(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IdxFormatError(
            path, f"truncated header: {ndim} dims need {4 * ndim} bytes, found {len(raw_dims)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    return IDX_DTYPES[code], shape


def _declared_bytes(path: Path, dtype: np.dtype, shape: tuple[int, ...], max_bytes: int) -> int:
    """Payload size the header claims; refuse it before allocating if it exceeds the cap."""
    size = math.prod(shape) * dtype.itemsize
    # an empty array's other dims count too: numpy cannot even shape (0, 2**28, 2**28, 2**28)
    spanned = math.prod(d for d in shape if d) * dtype.itemsize
    if max(size, spanned) > max_bytes:
        raise IdxFormatError(
            path, f"declared shape {shape} of {dtype.name} is {spanned} bytes, over the "
            f"{max_bytes}-byte limit"
        )
    return size


def _read_plain_payload(path: Path, stream: IO[bytes], header_len: int, size: int) -> bytes:
    """Check the file size against the declared size first, then read exactly ``size``."""
    available = os.fstat(stream.fileno()).st_size - header_len
    if available < size:
        raise IdxFormatError(path, f"truncated data: header declares {size} bytes, "
                                   f"file has {available}")
    if available > size:
        raise IdxFormatError(path, f"{available - size} trailing bytes after the "
                                   f"{size} declared data bytes")
    data = stream.read(size)
    if len(data) != size:  # the file shrank between stat and read
        raise IdxFormatError(path, f"truncated data: read {len(data)} of {size} bytes")
    return data


def _read_gzip_payload(path: Path, stream: IO[bytes], size: int) -> bytes:
    """Read ``size`` bytes in bounded chunks; the stream must end exactly there."""
    data = _read_upto(stream, size)
    if len(data) < size:
        raise IdxFormatError(path, f"truncated data: header declares {size} bytes, "
                                   f"stream has {len(data)}")
    if stream.read(1):
        raise IdxFormatError(path, f"trailing bytes after the {size} declared data bytes")
    return data


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as raw:
        return raw.read(2) == _GZIP_MAGIC


def read_idx(path: str | os.PathLike[str], *, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (plain, or gzip detected by its 1f 8b magic) into a native array.

    Invariant: returns exactly the array :func:`write_idx` stored (same dtype, shape,
    values, native byte order, writable). Anything else raises ``IdxFormatError`` naming
    the path and the defect: wrong magic, truncated header or data, trailing bytes, or a
    declared size over ``max_bytes``. A header's claimed size is never allocated before
    the data is there. Prevents silently training on a half-downloaded or mislabelled
    file, and a hostile header exhausting memory. A missing file raises
    ``FileNotFoundError``.
    """
    path = Path(path)
    if _is_gzip(path):
        return _read_gzip_idx(path, max_bytes)
    with path.open("rb") as stream:
        dtype, shape = _parse_header(path, stream)
        size = _declared_bytes(path, dtype, shape, max_bytes)
        data = _read_plain_payload(path, stream, 4 + 4 * len(shape), size)
    return _to_array(data, dtype, shape)


def _read_gzip_idx(path: Path, max_bytes: int) -> np.ndarray:
    """Gzip branch of :func:`read_idx`; a corrupt gzip stream is an ``IdxFormatError``."""
    try:
        with gzip.open(path, "rb") as stream:
            dtype, shape = _parse_header(path, stream)
            size = _declared_bytes(path, dtype, shape, max_bytes)
            data = _read_gzip_payload(path, stream, size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise IdxFormatError(path, f"corrupt gzip stream: {exc}") from exc
    return _to_array(data, dtype, shape)


def _to_array(data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Big-endian bytes -> writable native-endian array of ``shape``."""
    flat = np.frombuffer(data, dtype=dtype)
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


# --------------------------------------------------------------------------- IDX write


def _idx_code(dtype: np.dtype) -> int:
    """The IDX type code for ``dtype``; ``SchemaError`` if IDX cannot hold it."""
    for code, idx_dtype in IDX_DTYPES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    names = ", ".join(d.name for d in IDX_DTYPES.values())
    raise SchemaError([Violation("array.dtype", f"one of {names} (IDX types)", str(dtype))])


def _check_idx_shape(shape: tuple[int, ...]) -> None:
    """``SchemaError`` unless the shape fits an IDX header that :func:`read_idx` accepts."""
    if not 1 <= len(shape) <= _MAX_NDIM:
        raise SchemaError([Violation("array.ndim", f"1..{_MAX_NDIM}", str(len(shape)))])
    if max(shape) > _MAX_DIM:
        raise SchemaError([Violation("array.shape", f"every dim <= {_MAX_DIM}", str(shape))])


def _check_idx_size(nbytes: int) -> None:
    """``SchemaError`` if :func:`read_idx` would refuse the payload as too large."""
    if nbytes > MAX_IDX_BYTES:
        raise SchemaError([Violation("array.nbytes", f"<= {MAX_IDX_BYTES}", str(nbytes))])


def _idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


def _target_mode(path: Path) -> int:
    """Permissions for the new file: the replaced file's, else rw-r--r--."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o644


_fsync_directory = fsync_directory
"""Persist the rename; best effort (not every platform can open a directory)."""


def _atomic_write(path: Path, chunks: Iterable[bytes], *, compress: bool) -> None:
    """Write ``chunks`` to a temp file beside ``path``, fsync, then ``os.replace``.

    Invariant: readers see the old file or the complete new one, never a partial one,
    and no temp file is left behind, even when writing fails.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                    for chunk in chunks:
                        packed.write(chunk)
            else:
                for chunk in chunks:
                    raw.write(chunk)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp_name, _target_mode(path))
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)


def write_idx(path: str | os.PathLike[str], array: Any) -> Path:
    """Write ``array`` as IDX (gzip-compressed when ``path`` ends in ``.gz``); return the path.

    Invariant: ``read_idx(write_idx(p, a))`` equals ``a`` in dtype, shape and values,
    and the write is atomic (temp file in the same directory, fsync, ``os.replace``).
    A dtype IDX cannot hold (int64, bool, float16, ...) raises ``SchemaError`` instead
    of being silently cast. Prevents truncated files after a crash and labels quietly
    wrapped by a narrowing cast.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _idx_code(array.dtype)
    _check_idx_shape(array.shape)
    _check_idx_size(array.nbytes)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code])
    chunks = (_idx_header(code, array.shape), memoryview(payload.reshape(-1).view(np.uint8)))
    _atomic_write(path, chunks, compress=path.suffix == ".gz")
    return path


# --------------------------------------------------------------------------- IDX datasets

_SPLITS = ("train", "t10k")


def _candidate_names(split: str, kind: str, rank: int) -> list[str]:
    """File names MNIST mirrors use, e.g. ``train-images-idx3-ubyte`` and dotted/gz forms."""
    stems = [f"{split}-{kind}-idx{rank}-ubyte", f"{split}-{kind}.idx{rank}-ubyte"]
    return [stem + suffix for stem in stems for suffix in ("", ".gz")]


def _find_file(directory: Path, split: str, kind: str, rank: int) -> Path | None:
    """The first existing candidate (plain before gz, dashed before dotted), or None."""
    for name in _candidate_names(split, kind, rank):
        if (directory / name).is_file():
            return directory / name
    return None


def _load_images(path: Path) -> np.ndarray:
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise IdxFormatError(
            path, f"expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    return images


def _load_labels(path: Path, count: int) -> np.ndarray:
    labels = read_idx(path)
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise IdxFormatError(path, f"expected integer labels (N,), got {labels.dtype} "
                                   f"{labels.shape}")
    if labels.shape[0] != count:
        raise IdxFormatError(path, f"{labels.shape[0]} labels for {count} images")
    return labels.astype(np.int64)


def _load_pair(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Load ``split``'s images and labels; None if neither exists, error if only one."""
    images_path = _find_file(directory, split, "images", 3)
    labels_path = _find_file(directory, split, "labels", 1)
    if images_path is None and labels_path is None:
        return None
    if images_path is None or labels_path is None:
        found = images_path or labels_path
        kind, rank = ("images", 3) if images_path is None else ("labels", 1)
        expected = " or ".join(_candidate_names(split, kind, rank))
        raise DatasetError(f"{directory}: found {found.name} but not its pair ({expected})")
    images = _load_images(images_path)
    return images, _load_labels(labels_path, images.shape[0])


def load_idx_dataset(directory: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Load the MNIST-style IDX files in ``directory``: ``uint8 (N,H,W)``, ``int64 (N,)``.

    Concatenates the ``train`` then ``t10k`` pairs that exist (at least one required;
    plain or ``.gz``, dashed or dotted names). Invariant: images are 3-D uint8, labels
    1-D with one per image, and both parts share (H, W). Prevents a half-present pair,
    a swapped images/labels file or a size mismatch from loading silently.
    """
    directory = Path(directory)
    if not directory.is_dir():
        if not directory.exists():
            raise FileNotFoundError(errno.ENOENT, "IDX dataset directory not found", str(directory))
        raise NotADirectoryError(errno.ENOTDIR, "IDX dataset path is not a directory",
                                 str(directory))
    pairs = [pair for split in _SPLITS if (pair := _load_pair(directory, split)) is not None]
    if not pairs:
        expected = ", ".join(
            _candidate_names(split, kind, rank)[0]
            for split in _SPLITS for kind, rank in (("images", 3), ("labels", 1))
        )
        raise DatasetError(f"{directory}: no IDX image/label pair found; expected {expected} "
                           "(optionally .gz, or dotted like train-images.idx3-ubyte)")
    sides = {images.shape[1:] for images, _ in pairs}
    if len(sides) > 1:
        raise DatasetError(f"{directory}: train and t10k images differ in size: {sorted(sides)}")
    return (np.concatenate([images for images, _ in pairs]),
            np.concatenate([labels for _, labels in pairs]))


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True, eq=False)
class Split:
    """Sorted, read-only ``int64`` index arrays of a train/val/test split.

    ``eq=False``: comparing index arrays needs ``np.array_equal``, not ``==``.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            indices = np.array(getattr(self, name), dtype=np.int64, copy=True)
            indices.setflags(write=False)
            object.__setattr__(self, name, indices)

    def parts(self) -> dict[str, np.ndarray]:
        """``{"train": ..., "val": ..., "test": ...}``, e.g. to index images for leakage."""
        return {"train": self.train, "val": self.val, "test": self.test}


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DatasetError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:  # also rejects NaN
        raise DatasetError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _check_split_args(seed: Any, val_fraction: Any, test_fraction: Any) -> tuple[float, float]:
    """Validate split arguments; return the fractions as floats."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DatasetError(f"seed must be a non-negative int, got {seed!r}")
    val = _check_fraction("val_fraction", val_fraction)
    test = _check_fraction("test_fraction", test_fraction)
    if val + test >= 1:
        raise DatasetError(
            f"val_fraction + test_fraction must be < 1 (train needs data), got {val + test}"
        )
    return val, test


def _class_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(n_val, n_test) for a class of ``n``: rounded shares, >= 1 each when ``n >= 3``.

    Train always keeps at least one member when ``n >= 1``; shrinking val/test to make
    room never takes them below that minimum.
    """
    floors = [1 if n >= 3 and f > 0 else 0 for f in (val_fraction, test_fraction)]
    counts = [max(math.floor(n * f + 0.5), low) for f, low in
              zip((val_fraction, test_fraction), floors, strict=True)]
    while n >= 1 and n - sum(counts) < 1:
        order = sorted((0, 1), key=lambda i: counts[i] - floors[i], reverse=True)
        counts[order[0]] -= 1
    return counts[0], counts[1]


def stratified_split(
    labels: Any, *, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Split:
    """Split indices ``0..N-1`` into train/val/test, class by class, from ``seed`` alone.

    Each class is permuted by ``np.random.default_rng(seed)`` (classes in sorted order)
    and cut by its rounded shares. Invariants: parts are disjoint and cover every index
    exactly once; val and test keep each class's share within one sample, train holds the
    rest (at least one member; within one sample unless a share below 0.5 was raised to one
    member), with at least one member in every part whose fraction is > 0 when a class has
    >= 3 members; same seed, same
    split. Prevents test leakage, a class missing from validation, and irreproducible
    metrics.
    """
    val_fraction, test_fraction = _check_split_args(seed, val_fraction, test_fraction)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DatasetError(f"labels must be 1-D (N,), got shape {labels.shape}")
    rng = np.random.default_rng(int(seed))
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val, n_test = _class_counts(members.size, val_fraction, test_fraction)
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    joined = {name: np.sort(np.concatenate(chunks)) if chunks else np.empty(0, np.int64)
              for name, chunks in parts.items()}
    return Split(**joined)


# --------------------------------------------------------------------------- leakage


class Leak(NamedTuple):
    """Image ``index_a`` of part ``part_a`` is byte-identical to ``index_b`` of ``part_b``."""

    part_a: str
    index_a: int
    part_b: str
    index_b: int


def find_leakage(parts: Mapping[str, Any]) -> list[Leak]:
    """Identical images (same dtype, shape, bytes) in two different parts, by hashing.

    ``parts`` maps a name to an array of images (first axis indexes images). Each
    occurrence in a later part is paired with the first occurrence in every earlier part
    (mapping order), so the result grows linearly, not quadratically, with repeats;
    repeats inside one part are not leaks. Linear time (blake2b digests). Prevents a
    test score inflated by test images the model trained on.
    """
    first_seen: dict[bytes, dict[str, int]] = {}
    leaks: list[Leak] = []
    for name, images in parts.items():
        images = np.asarray(images)
        if images.ndim < 1:
            raise DatasetError(f"part {name!r} must be an array of images, got a scalar")
        for index, image in enumerate(images):
            seen = first_seen.setdefault(_image_key(image), {})
            leaks.extend(Leak(other, first, name, index)
                         for other, first in seen.items() if other != name)
            seen.setdefault(name, index)
    return leaks


def assert_no_leakage(parts: Mapping[str, Any], *, shown: int = 5) -> None:
    """Raise :class:`LeakageError`, listing the first ``shown`` leaks, if parts share an image."""
    leaks = find_leakage(parts)
    if leaks:
        raise LeakageError(leaks, shown=shown)
