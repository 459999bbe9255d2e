"""Read images a user hands to ``mlprop predict``: IDX (plain or .gz), .npy, PNG, JPEG.

Without a schema every loader returns an (N, H, W) array (the caller checks the dtype; a
colour PNG is converted to grayscale) and a single 2-D image becomes a batch of one. With an
:class:`~mlprop.schema.ImageSchema` (``load_images(path, schema)``) PNG and JPEG files keep
their colour and come back in the schema's layout (``(1, H, W)``, ``(1, H, W, C)`` or
``(1, C, H, W)``), a grayscale schema refuses a colour file and a colour schema a grayscale
one (a :class:`~mlprop.errors.SchemaError` naming the file), and a ``.npy`` array gets a batch
axis when it holds one image of the schema's layout. 16-bit PNGs are refused (their samples
do not fit uint8; PIL would clip them). Nothing is unpickled.

Invariant of every reader here: it returns an array or raises an
:class:`~mlprop.errors.MlpropError` naming the file and the defective part (header, shape,
data, chunk); library errors (numpy, PIL, zlib, ``tokenize``) never escape. A size a header
declares is checked against the bytes actually there before anything is allocated: a .npy
payload must match the file's size exactly, and a PNG's pixel data must decompress to the
size its IHDR declares before PIL decodes it, so memory stays within a small multiple of
the data in the file.
"""

from __future__ import annotations

import os
import struct
import tokenize
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from mlprop.errors import SchemaError, Violation
from mlprop.schema import ImageSchema

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_MAX_EXPANSION = 64
"""A JPEG may decode to at most this many times its file size (or 1 MiB): a header that
claims more is refused before the pixels are decoded."""
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_BANDS = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
          "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}


def _as_batch(array: np.ndarray, path: Path, schema: ImageSchema | None = None) -> np.ndarray:
    """One image (the schema's ndim less one) gets a batch axis; a batch stays as it is."""
    ndim = 3 if schema is None else schema.ndim
    if array.ndim == ndim - 1:
        array = array[np.newaxis]
    if array.ndim != ndim:
        shape = "(N, H, W)" if schema is None else schema.batch_shape
        raise SchemaError([Violation(f"{path}: images.ndim",
                                     f"{ndim - 1} (one image) or {ndim} {shape}",
                                     f"{array.ndim} {array.shape}")])
    return array


def _decode(image, path: Path, schema: ImageSchema | None) -> np.ndarray:
    """A PIL image as uint8: grayscale without a schema (the old behaviour), else with its
    colour kept and checked against the schema's channel count, in the schema's layout."""
    if image.mode in _WIDE_MODES:
        raise SchemaError([Violation(f"{path}: images.dtype", "8-bit samples (uint8)",
                                     f"{image.mode} samples (a 16-bit or float image)")])
    if schema is None:
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA"):
        alpha = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if alpha else "RGB")
    elif image.mode in ("YCbCr", "LAB", "HSV", "CMYK", "RGBX", "RGBa"):
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    channels = 1 if array.ndim == 2 else array.shape[2]
    if schema.layout == "HW" and channels != 1:
        raise SchemaError([Violation(f"{path}: images.channels",
                                     "1 (a grayscale image, for a grayscale model)",
                                     f"{channels} ({image.mode} colour image)")])
    if schema.layout != "HW" and channels == 1 and schema.channels != 1:
        raise SchemaError([Violation(f"{path}: images.channels",
                                     f"{schema.channels} (a colour image, for a colour model)",
                                     f"1 ({image.mode} grayscale image)")])
    if schema.layout == "HW":
        return array
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return np.ascontiguousarray(np.moveaxis(array, 2, 0)) if schema.layout == "CHW" else array


def _png_error(path: Path, field: str, actual: str) -> SchemaError:
    return SchemaError([Violation(str(path), "a readable PNG image", f"{field}: {actual}")])


#: Samples per pixel of each PNG colour type (PNG spec, table 11.1).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ZLIB_CHUNK = 1 << 16


def _png_raw_size(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines a PNG's IDAT stream must inflate to (PNG spec 7.2, 8.2)."""
    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)
    if not interlaced:
        return rows(width, height)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
               for x0, y0, dx, dy in passes)


def _check_png_data(path: Path, handle: IO[bytes]) -> None:
    """Inflate the IDAT chunks in bounded pieces, counting bytes, and compare with the size
    the IHDR declares: a header promising more pixels than the file holds is refused before
    PIL allocates the image."""
    handle.seek(len(PNG_MAGIC))
    head = handle.read(8 + 13)
    if len(head) < 21 or head[4:8] != b"IHDR" or struct.unpack(">I", head[:4])[0] != 13:
        raise _png_error(path, "IHDR", "missing or truncated first chunk")
    width, height, bits, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[8:])
    if colour not in _PNG_CHANNELS or bits not in (1, 2, 4, 8, 16):
        raise _png_error(path, "IHDR", f"colour type {colour} with bit depth {bits}")
    expected = _png_raw_size(width, height, bits * _PNG_CHANNELS[colour], interlace == 1)
    handle.read(4)  # IHDR's CRC: PIL checks it
    size = os.fstat(handle.fileno()).st_size
    inflater, produced = zlib.decompressobj(), 0
    while True:
        header = handle.read(8)
        if len(header) < 8:
            break
        length, kind = struct.unpack(">I4s", header)
        if length + 4 > size - handle.tell():  # PIL would read the declared length at once
            raise _png_error(path, f"chunk {kind!r}", f"declares {length} bytes, the file "
                                                      f"has {size - handle.tell()} left")
        if kind == b"IEND":
            break
        if kind != b"IDAT":
            handle.seek(length + 4, 1)
            continue
        remaining = length
        while remaining > 0:
            piece = handle.read(min(remaining, _ZLIB_CHUNK))
            if not piece:
                break
            remaining -= len(piece)
            if produced > expected:  # enough data for the IHDR: skip the rest
                continue
            try:
                produced += len(inflater.decompress(piece, _ZLIB_CHUNK))
                while inflater.unconsumed_tail and produced <= expected:
                    produced += len(inflater.decompress(inflater.unconsumed_tail, _ZLIB_CHUNK))
            except zlib.error as exc:
                raise _png_error(path, "IDAT", f"corrupt compressed data ({exc})") from None
        handle.seek(remaining + 4, 1)  # the rest of a short chunk, and its CRC
    if produced < expected:
        raise _png_error(path, "IDAT", f"image data inflates to {produced} bytes or fewer, "
                                       f"the IHDR ({width}x{height}, {bits}-bit) needs "
                                       f"{expected}")


def load_png(path: Path, schema: ImageSchema | None = None) -> np.ndarray:
    """A PNG as a uint8 (H, W) grayscale array (without a schema), or in ``schema``'s layout
    with its colour; a corrupt or lying file is a SchemaError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as handle:
            _check_png_data(path, handle)
        with Image.open(path) as image:
            return _decode(image, path, schema)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            struct.error, zlib.error, Image.DecompressionBombError) as exc:
        if isinstance(exc, SchemaError):
            raise
        # PIL: OSError (truncated), SyntaxError (bad chunk/CRC), ValueError (truncated IHDR)
        raise _png_error(path, "image", f"{type(exc).__name__}: {exc}") from None


def load_jpeg(path: Path, schema: ImageSchema | None = None) -> np.ndarray:
    """A JPEG decoded by Pillow, like :func:`load_png`; the size its header declares is
    checked against the file's size (``JPEG_MAX_EXPANSION``) before decoding."""
    from PIL import Image, UnidentifiedImageError

    def error(field: str, actual: str) -> SchemaError:
        return SchemaError([Violation(str(path), "a readable JPEG image", f"{field}: {actual}")])

    try:
        with Image.open(path, formats=["JPEG"]) as image:
            width, height = image.size
            declared = width * height * _BANDS.get(image.mode, 4)
            limit = max(1 << 20, JPEG_MAX_EXPANSION * path.stat().st_size)
            if declared > limit:
                raise error("header", f"declares {width}x{height} {image.mode} ({declared} "
                                      f"bytes), more than {limit} for a file of "
                                      f"{path.stat().st_size} bytes")
            image.load()
            return _decode(image, path, schema)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            struct.error, Image.DecompressionBombError, MemoryError) as exc:
        if isinstance(exc, SchemaError):
            raise
        raise error("image", f"{type(exc).__name__}: {exc}") from None


def _npy_error(path: Path, field: str, actual: str) -> SchemaError:
    return SchemaError([Violation(str(path), "a .npy array without objects",
                                  f"{field}: {actual}")])


def load_npy(path: Path) -> np.ndarray:
    """A .npy array, never unpickled; the header's shape x itemsize must equal the bytes
    after it before anything is allocated."""
    fmt = np.lib.format
    with open(path, "rb") as handle:
        if handle.read(4) == b"PK\x03\x04":  # np.save never writes a zip; np.savez does
            raise SchemaError([Violation(str(path), "a .npy array", "an .npz archive")])
        handle.seek(0)
        try:
            version = fmt.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, EOFError, tokenize.TokenError, SyntaxError, TypeError,
                OverflowError, MemoryError, RecursionError) as exc:
            # numpy: ValueError/EOFError; a bad header: tokenize.TokenError (NOTES.md)
            raise _npy_error(path, "header", f"{type(exc).__name__}: {exc}") from None
        if dtype.hasobject:
            raise _npy_error(path, "header", f"dtype {dtype} holds Python objects "
                                             "(allow_pickle=False)")
        if any(dim < 0 for dim in shape):
            raise _npy_error(path, "shape", f"negative dimension in {shape}")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        available = os.fstat(handle.fileno()).st_size - handle.tell()
        if declared != available:
            raise _npy_error(path, "data", f"header declares {shape} of {dtype} "
                                           f"({declared} bytes), file holds {available}")
        handle.seek(0)
        try:
            return np.load(handle, allow_pickle=False)
        except (ValueError, EOFError, tokenize.TokenError, OSError, MemoryError) as exc:
            raise _npy_error(path, "data", f"{type(exc).__name__}: {exc}") from None


def load_images(path: str | Path, schema: ImageSchema | None = None) -> np.ndarray:
    """Load one file as a batch, uint8-typed or not; the caller validates it.

    Without ``schema``: (N, H, W), colour PNG/JPEG converted to grayscale. With it: the
    schema's layout, colour kept (see the module docstring)."""
    from mlprop.digits.data import read_idx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(PNG_MAGIC):
        return _as_batch(load_png(path, schema), path, schema)
    if head.startswith(JPEG_MAGIC):
        return _as_batch(load_jpeg(path, schema), path, schema)
    if path.suffix == ".npy":
        return _as_batch(load_npy(path), path, schema)
    return _as_batch(read_idx(path), path, schema)
