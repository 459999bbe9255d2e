"""Exact behaviour of ``mlprop.digits.data`` that the mutation audit showed untested.

Each test pins one promise of the module (an error's fields and message, a boundary, a
rounding rule, where a temporary file lives); all are fast and example-based.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mlprop.digits import data
from mlprop.digits.data import (
    DatasetError,
    Leak,
    LeakageError,
    Split,
    assert_no_leakage,
    deduplicate,
    find_leakage,
    load_idx_dataset,
    read_idx,
    stratified_split,
    write_idx,
)
from mlprop.errors import IdxFormatError, SchemaError, Violation


def leaks(count: int) -> list[Leak]:
    return [Leak("train", i, "test", i) for i in range(count)]


# --------------------------------------------------------------------------- leakage


@pytest.mark.parametrize(("count", "tail"), [(5, None), (6, "  ... and 1 more")])
def test_leakage_error_lists_five_leaks_then_counts_the_rest(count, tail):
    message = str(LeakageError(leaks(count)))
    lines = message.split("\n")
    assert lines[0] == f"{count} image(s) appear in more than one part:"
    assert lines[1:6] == [f"  - {leak}" for leak in leaks(5)]
    assert lines[6:] == ([tail] if tail else [])


def test_assert_no_leakage_shows_five_by_default():
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1)
    with pytest.raises(LeakageError) as exc:
        assert_no_leakage({"train": images, "test": images})
    assert str(exc.value).endswith("\n  ... and 1 more")
    assert len(exc.value.leaks) == 6


def test_parts_may_hold_scalar_images_but_not_be_scalars():
    assert find_leakage({"a": np.array([1, 2]), "b": np.array([2])}) == [Leak("a", 1, "b", 0)]
    with pytest.raises(DatasetError) as exc:
        find_leakage({"x": np.array(3)})
    assert str(exc.value) == "part 'x' must be an array of images, got a scalar"


# --------------------------------------------------------------------------- digits


class _Bunch:
    def __init__(self, images, target):
        self.images, self.target = images, target


def fake_digits(monkeypatch, images: np.ndarray) -> None:
    import sklearn.datasets

    monkeypatch.setattr(sklearn.datasets, "load_digits",
                        lambda: _Bunch(images, np.zeros(len(images), dtype=np.int64)))


def test_digits_pixels_are_rescaled_by_rounding_half_up(monkeypatch):
    levels = np.zeros((1, 8, 8))
    levels.flat[:17] = np.arange(17)
    fake_digits(monkeypatch, levels)
    images, _ = data.load_digits_uint8()
    expected = [int(np.floor(v * 255 / 16 + 0.5)) for v in range(17)]
    assert images.flat[:17].tolist() == expected
    assert expected[:3] == [0, 16, 32] and expected[8] == 128 and expected[-1] == 255


@pytest.mark.parametrize("bad", [17.0, -1.0])
def test_digits_outside_0_to_16_are_refused(monkeypatch, bad):
    levels = np.full((1, 8, 8), 8.0)
    levels[0, 0, 0] = bad
    fake_digits(monkeypatch, levels)
    with pytest.raises(DatasetError) as exc:
        data.load_digits_uint8()
    assert str(exc.value) == "sklearn digits pixels outside 0..16"


def test_deduplicate_accepts_one_dimensional_images_and_may_keep_nothing():
    images, labels = deduplicate(np.array([1, 1, 2], np.uint8), np.array([0, 0, 1]))
    assert images.tolist() == [1, 2] and labels.tolist() == [0, 1]
    same = np.zeros((2, 8, 8), np.uint8)
    images, labels = deduplicate(same, np.array([3, 4]))  # one image, two labels: dropped
    assert images.shape == (0, 8, 8) and labels.shape == (0,)


# --------------------------------------------------------------------------- IDX read


class _Trickle(io.RawIOBase):
    """A stream that returns one byte per read, like a slow pipe."""

    def __init__(self, payload: bytes) -> None:
        self._data = io.BytesIO(payload)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1) if size and size > 0 else size)


def test_short_reads_are_reassembled():
    assert data._read_upto(_Trickle(b"abcdef"), 4) == b"abcd"
    assert data._read_upto(_Trickle(b"ab"), 4) == b"ab"


def test_wrong_magic_message_shows_the_first_two_bytes(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(bytes([1, 2, 8, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(IdxFormatError) as exc:
        read_idx(path)
    assert exc.value.reason == "wrong magic: first two bytes are 0102, not 0000"


def test_truncated_header_message_counts_the_dim_bytes(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0]))
    with pytest.raises(IdxFormatError) as exc:
        read_idx(path)
    assert exc.value.reason == "truncated header: 3 dims need 12 bytes, found 5"


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_thirty_two_dims_is_the_most_idx_allows(tmp_path, suffix):
    array = np.arange(2, dtype=np.uint8).reshape((2,) + (1,) * 31)
    assert array.ndim == 32
    back = read_idx(write_idx(tmp_path / f"a.idx{suffix}", array))
    np.testing.assert_array_equal(back, array)
    with pytest.raises(SchemaError) as exc:
        write_idx(tmp_path / "b.idx", array.reshape((2,) + (1,) * 32))
    assert exc.value.violations == [Violation("array.ndim", "1..32", "33")]
    with pytest.raises(SchemaError) as exc:
        write_idx(tmp_path / "c.idx", np.uint8(1))
    assert exc.value.violations == [Violation("array.ndim", "1..32", "0")]


def test_trailing_bytes_message_counts_them(tmp_path):
    path = write_idx(tmp_path / "a.idx", np.arange(4, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"xyz")
    with pytest.raises(IdxFormatError) as exc:
        read_idx(path)
    assert exc.value.reason == "3 trailing bytes after the 4 declared data bytes"


class _ShortFile:
    """A real file's descriptor (so fstat sees its size) whose read comes back short."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("rb")

    def fileno(self) -> int:
        return self._handle.fileno()

    def read(self, size: int) -> bytes:
        return self._handle.read(size)[:-1]


def test_a_file_that_shrinks_while_read_is_truncated_data(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"HEAD" + bytes(10))
    stream = _ShortFile(path)
    stream._handle.seek(4)
    with pytest.raises(IdxFormatError) as exc:
        data._read_plain_payload(path, stream, 4, 10)
    assert (exc.value.path, exc.value.reason) == (str(path), "truncated data: read 9 of 10 bytes")
    stream._handle.close()


def test_trailing_gzip_data_is_detected_without_reading_it_all(tmp_path):
    path = tmp_path / "a.idx.gz"
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 2, 5, 6]) + bytes(32 << 20)
    path.write_bytes(gzip.compress(raw, compresslevel=1))
    tracemalloc.start()
    try:
        with pytest.raises(IdxFormatError) as exc:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exc.value.reason == "trailing bytes after the 2 declared data bytes"
    assert peak < 8 << 20  # one byte of the 32 MiB tail is enough


def test_corrupt_gzip_message_names_the_gzip_problem(tmp_path):
    path = tmp_path / "a.idx.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 30)
    with pytest.raises(IdxFormatError) as exc:
        read_idx(path)
    assert exc.value.path == str(path)
    assert exc.value.reason.startswith("corrupt gzip stream: ")


# --------------------------------------------------------------------------- IDX write


def test_unsupported_dtype_violation_lists_the_idx_types(tmp_path):
    with pytest.raises(SchemaError) as exc:
        write_idx(tmp_path / "a.idx", np.zeros(3, np.int64))
    assert exc.value.violations == [Violation(
        "array.dtype", "one of uint8, int8, int16, int32, float32, float64 (IDX types)",
        "int64")]


def test_a_dim_over_the_uint32_range_is_a_shape_violation(tmp_path):
    huge = np.broadcast_to(np.uint8(0), (2**32,))  # zero strides: no memory
    with pytest.raises(SchemaError) as exc:
        write_idx(tmp_path / "a.idx", huge)
    assert exc.value.violations == [Violation("array.shape", "every dim <= 4294967295",
                                              "(4294967296,)")]
    largest = np.broadcast_to(np.uint8(0), (2**32 - 1,))  # fits the header, not the cap
    with pytest.raises(SchemaError) as exc:
        write_idx(tmp_path / "b.idx", largest)
    assert exc.value.fields == ["array.nbytes"]


def test_payload_cap_is_inclusive(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_IDX_BYTES", 16)
    write_idx(tmp_path / "ok.idx", np.zeros(16, np.uint8))
    with pytest.raises(SchemaError) as exc:
        write_idx(tmp_path / "big.idx", np.zeros(17, np.uint8))
    assert exc.value.violations == [Violation("array.nbytes", "<= 16", "17")]


def test_temporary_file_lives_beside_the_target(tmp_path, monkeypatch):
    moves = []
    real_replace = os.replace

    def recording_replace(src, dst):
        moves.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(data.os, "replace", recording_replace)
    target = tmp_path / "a.idx"
    write_idx(target, np.arange(3, dtype=np.uint8))
    (temporary, destination), = moves
    assert destination == target
    assert temporary.parent == tmp_path
    assert temporary.name.startswith(".a.idx.") and temporary.name.endswith(".tmp")


def test_gzip_output_is_reproducible_no_name_no_time(tmp_path):
    path = write_idx(tmp_path / "a.idx.gz", np.arange(5, dtype=np.uint8))
    raw = path.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] & 0x08 == 0  # FNAME flag: no file name stored
    assert raw[4:8] == b"\x00\x00\x00\x00"  # MTIME 0


def test_directory_fsync_failures_are_ignored(tmp_path, monkeypatch):
    def failing(fd):
        raise OSError(errno.EINVAL, "fsync of a directory not supported here")

    monkeypatch.setattr(data.os, "fsync", failing)
    data._fsync_directory(tmp_path)


def test_a_failed_replace_leaves_no_temporary_file(tmp_path, monkeypatch):
    def replace_that_loses_the_file(src, dst):
        os.unlink(src)
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(data.os, "replace", replace_that_loses_the_file)
    with pytest.raises(OSError, match="cross-device"):
        write_idx(tmp_path / "a.idx", np.arange(3, dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- IDX datasets


def test_labels_of_the_wrong_kind_name_their_file(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.float32))
    with pytest.raises(IdxFormatError) as exc:
        load_idx_dataset(tmp_path)
    assert exc.value.path == str(labels)
    assert exc.value.reason == "expected integer labels (N,), got float32 (2,)"


def test_a_lone_labels_file_names_the_images_it_expected(tmp_path):
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(DatasetError) as exc:
        load_idx_dataset(tmp_path)
    assert str(exc.value) == (
        f"{tmp_path}: found train-labels-idx1-ubyte but not its pair (train-images-idx3-ubyte "
        "or train-images-idx3-ubyte.gz or train-images.idx3-ubyte or "
        "train-images.idx3-ubyte.gz)")


def test_missing_and_non_directory_paths_carry_errno_and_name(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError) as exc:
        load_idx_dataset(missing)
    assert (exc.value.errno, exc.value.strerror, exc.value.filename) == (
        errno.ENOENT, "IDX dataset directory not found", str(missing))
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(NotADirectoryError) as exc:
        load_idx_dataset(afile)
    assert (exc.value.errno, exc.value.strerror, exc.value.filename) == (
        errno.ENOTDIR, "IDX dataset path is not a directory", str(afile))


def test_empty_directory_message_lists_the_expected_files(tmp_path):
    with pytest.raises(DatasetError) as exc:
        load_idx_dataset(tmp_path)
    assert str(exc.value) == (
        f"{tmp_path}: no IDX image/label pair found; expected train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
        "(optionally .gz, or dotted like train-images.idx3-ubyte)")


def test_parts_of_different_height_are_refused(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 30, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(1, np.uint8))
    with pytest.raises(DatasetError, match=r"differ in size: \[\(28, 28\), \(30, 28\)\]"):
        load_idx_dataset(tmp_path)


# --------------------------------------------------------------------------- splits


def test_split_stores_private_int64_copies():
    given = np.array([3, 1], dtype=np.int32)
    mine = np.array([0, 2], dtype=np.int64)
    split = Split(train=given, val=mine, test=[4])
    assert split.train.dtype == split.val.dtype == split.test.dtype == np.int64
    assert not np.shares_memory(split.val, mine)
    assert mine.flags.writeable  # the caller's array is left alone
    mine[0] = 9
    assert split.val.tolist() == [0, 2]


@pytest.mark.parametrize("name", ["val_fraction", "test_fraction"])
@pytest.mark.parametrize("value", [1, 1.5])
def test_fractions_must_be_below_one(name, value):
    with pytest.raises(DatasetError) as exc:
        stratified_split([0, 1], seed=0, **{name: value})
    assert str(exc.value) == f"{name} must be in [0, 1), got {value!r}"


def test_fractions_summing_to_one_or_more_are_refused_with_the_sum():
    with pytest.raises(DatasetError) as exc:
        stratified_split([0, 1], seed=0, val_fraction=0.5, test_fraction=0.75)
    assert str(exc.value).endswith("(train needs data), got 1.25")


def test_a_singleton_class_stays_in_train():
    assert data._class_counts(1, 0.6, 0.3) == (0, 0)
    split = stratified_split([0, 0, 0, 0, 1], seed=0, val_fraction=0.6, test_fraction=0.3)
    assert 4 in split.train.tolist()


def test_the_share_over_its_minimum_gives_way_first():
    # 3 members, val 0.5 -> 2, test 0.45 -> 1: train would be empty; val (one over its
    # minimum of 1) gives one back, test keeps its minimum.
    assert data._class_counts(3, 0.5, 0.45) == (1, 1)
    assert data._class_counts(3, 0.45, 0.5) == (1, 1)
    assert data._class_counts(4, 0.6, 0.3) == (2, 1)
