"""Tests of ``mlprop.image_files.load_images``: PNG, .npy and IDX (plain/.gz) -> (N, H, W).

The loader returns a batch (a 2-D image becomes a batch of one), never unpickles, and
refuses what it cannot read with an error a user can act on (``SchemaError`` naming the
field, ``IdxFormatError``, ``FileNotFoundError``), never a crash from deep inside numpy.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlprop import IdxFormatError, MlpropError, SchemaError
from mlprop.digits.data import write_idx
from mlprop.image_files import load_images


def ramp(*shape: int) -> np.ndarray:
    """A deterministic uint8 array with many distinct values."""
    return (np.arange(int(np.prod(shape))) * 7 % 256).astype(np.uint8).reshape(shape)


# ------------------------------------------------------------------- PNG


def test_grayscale_png_loads_as_batch_of_one(tmp_path: Path):
    image = ramp(12, 20)
    path = tmp_path / "digit.png"
    Image.fromarray(image, mode="L").save(path)
    loaded = load_images(path)
    assert loaded.dtype == np.uint8
    assert loaded.shape == (1, 12, 20)
    np.testing.assert_array_equal(loaded[0], image)


def test_rgb_png_is_converted_to_grayscale(tmp_path: Path):
    gray = ramp(10, 10)
    rgb = np.stack([gray, gray, gray], axis=-1)
    rgb[0, 0] = (255, 0, 0)
    path = tmp_path / "color.png"
    Image.fromarray(rgb, mode="RGB").save(path)
    loaded = load_images(path)
    assert loaded.shape == (1, 10, 10)
    assert loaded.dtype == np.uint8
    # r == g == b stays exactly that gray level (ITU-R 601 weights sum to 1)
    np.testing.assert_array_equal(loaded[0].ravel()[1:], gray.ravel()[1:])
    assert abs(int(loaded[0, 0, 0]) - round(255 * 0.299)) <= 1


def test_rgba_and_palette_pngs_load(tmp_path: Path):
    rgba = np.zeros((9, 9, 4), np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray(ramp(9, 9), mode="L").convert("P").save(tmp_path / "p.png")
    assert load_images(tmp_path / "a.png").shape == (1, 9, 9)
    assert load_images(tmp_path / "p.png").shape == (1, 9, 9)


def test_png_is_recognised_by_content_not_suffix(tmp_path: Path):
    path = tmp_path / "digit.dat"
    Image.fromarray(ramp(8, 8), mode="L").save(path, format="PNG")
    np.testing.assert_array_equal(load_images(path)[0], ramp(8, 8))


def test_corrupt_png_raises_schema_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(SchemaError) as info:
        load_images(path)
    assert info.value.fields == [str(path)]


# ------------------------------------------------------------------- .npy


def test_npy_2d_becomes_batch_of_one(tmp_path: Path):
    path = tmp_path / "one.npy"
    np.save(path, ramp(28, 28))
    loaded = load_images(path)
    assert loaded.shape == (1, 28, 28)
    np.testing.assert_array_equal(loaded[0], ramp(28, 28))


def test_npy_3d_loads_unchanged(tmp_path: Path):
    path = tmp_path / "many.npy"
    np.save(path, ramp(4, 16, 12))
    loaded = load_images(path)
    assert loaded.shape == (4, 16, 12)
    np.testing.assert_array_equal(loaded, ramp(4, 16, 12))


def test_npy_keeps_its_dtype_for_the_caller_to_validate(tmp_path: Path):
    path = tmp_path / "float.npy"
    np.save(path, np.zeros((2, 8, 8), np.float32))
    assert load_images(path).dtype == np.float32


def test_npy_with_objects_is_refused_without_unpickling(tmp_path: Path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(SchemaError) as info:
        load_images(path)
    assert info.value.fields == [str(path)]
    assert "allow_pickle" in str(info.value)


@pytest.mark.parametrize(("shape", "ndim"), [((1, 2, 8, 8), 4), ((8,), 1), ((), 0)])
def test_npy_of_wrong_rank_raises_schema_error_naming_ndim(tmp_path: Path, shape, ndim):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros(shape, np.uint8))
    with pytest.raises(SchemaError) as info:
        load_images(path)
    (violation,) = info.value.violations
    assert violation.field == f"{path}: images.ndim"
    assert violation.actual.startswith(str(ndim))


def test_truncated_npy_raises_schema_error(tmp_path: Path):
    full = tmp_path / "full.npy"
    np.save(full, ramp(3, 8, 8))
    path = tmp_path / "cut.npy"
    path.write_bytes(full.read_bytes()[:100])
    with pytest.raises(SchemaError):
        load_images(path)


def test_empty_npy_raises_schema_error(tmp_path: Path):
    """An empty file named .npy: numpy raises EOFError, which must not escape."""
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    with pytest.raises(SchemaError) as info:
        load_images(path)
    assert info.value.fields == [str(path)]


def test_npz_archive_named_npy_raises_schema_error(tmp_path: Path):
    """np.load returns an NpzFile (not an array) for a zip; refuse it, do not crash."""
    path = tmp_path / "archive.npy"
    with open(path, "wb") as handle:
        np.savez(handle, images=ramp(2, 8, 8))
    with pytest.raises(SchemaError) as info:
        load_images(path)
    assert info.value.fields == [str(path)]


# ------------------------------------------------------------------- IDX


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_plain_and_gzip_load(tmp_path: Path, name: str):
    images = ramp(5, 28, 28)
    path = write_idx(tmp_path / name, images)
    loaded = load_images(path)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, images)


def test_idx_gzip_is_recognised_by_content_not_suffix(tmp_path: Path):
    path = write_idx(tmp_path / "images.gz", ramp(2, 8, 8))
    renamed = path.rename(tmp_path / "images.bin")
    np.testing.assert_array_equal(load_images(renamed), ramp(2, 8, 8))


def test_idx_2d_becomes_batch_of_one(tmp_path: Path):
    path = write_idx(tmp_path / "one-idx2-ubyte", ramp(8, 9))
    assert load_images(path).shape == (1, 8, 9)


def test_corrupt_idx_raises_idx_format_error(tmp_path: Path):
    path = tmp_path / "garbage-idx3-ubyte"
    path.write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(IdxFormatError) as info:
        load_images(path)
    assert info.value.path == str(path)
    assert isinstance(info.value, MlpropError)


# ------------------------------------------------------------------- missing


def test_missing_file_raises_file_not_found_naming_it(tmp_path: Path):
    path = tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_images(path)


def test_directory_is_not_an_image_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_images(tmp_path)


def test_accepts_str_paths(tmp_path: Path):
    path = tmp_path / "one.npy"
    np.save(path, ramp(8, 8))
    assert load_images(str(path)).shape == (1, 8, 8)
