"""Tests of ``mlprop.digits.data``: digits loader, IDX I/O, IDX datasets, splits, leakage."""

from __future__ import annotations

import gzip
import os
import time
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
    load_default_dataset,
    load_digits_uint8,
    load_idx_dataset,
    read_idx,
    stratified_split,
    write_idx,
)
from mlprop.errors import IdxFormatError, MlpropError, SchemaError

IDX_DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
SUFFIXES = ["", ".gz"]


def header(code: int, *dims: int) -> bytes:
    """An IDX header with type ``code`` and the given dims (no validation: for corruption)."""
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def put(path: Path, raw: bytes, *, compress: bool) -> Path:
    """Write ``raw`` to ``path``, gzip-compressed if asked."""
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def sample(dtype: str, shape: tuple[int, ...] = (2, 3, 4)) -> np.ndarray:
    """A deterministic array with negative values where the dtype allows them."""
    values = np.arange(int(np.prod(shape))).reshape(shape)
    if np.dtype(dtype).kind != "u":
        values = values - values.size // 2
    return values.astype(dtype)


# ------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_digits_uint8()


@pytest.fixture(scope="module")
def default_dataset() -> tuple[np.ndarray, np.ndarray]:
    return load_default_dataset()


def test_digits_are_uint8_8x8_with_int64_labels(digits):
    """The bundled digits load as uint8 (N, 8, 8) and int64 (N,), labels 0..9."""
    images, labels = digits
    assert images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (8, 8)
    assert labels.dtype == np.int64 and labels.shape == (images.shape[0],)
    assert set(np.unique(labels)) == set(range(10))


def test_digits_span_full_uint8_range_in_17_levels(digits):
    """0..16 maps to round(k*255/16): 0 and 255 both occur, nothing else but those levels."""
    images, _ = digits
    levels = {int(np.floor(k * 255 / 16 + 0.5)) for k in range(17)}
    assert images.min() == 0 and images.max() == 255
    assert set(np.unique(images).tolist()) <= levels


def test_bundled_digits_have_no_exact_duplicates(digits, default_dataset):
    """Finding: sklearn's digits hold no byte-identical images, so dedup keeps all of them."""
    images, _ = digits
    assert len({image.tobytes() for image in images}) == images.shape[0]
    assert default_dataset[0].shape == images.shape


def test_deduplicate_keeps_first_and_drops_conflicting_labels():
    """Repeats go (first kept); an image seen with two labels goes entirely."""
    a, b, c = (np.full((2, 2), v, np.uint8) for v in (1, 2, 3))
    images = np.stack([a, b, a, c, b, c])
    labels = np.array([0, 1, 0, 2, 1, 3])  # c has labels 2 and 3: conflicting
    kept_images, kept_labels = deduplicate(images, labels)
    assert np.array_equal(kept_images, np.stack([a, b]))
    assert np.array_equal(kept_labels, [0, 1])


def test_deduplicate_rejects_label_count_mismatch():
    with pytest.raises(DatasetError, match="one label per image"):
        deduplicate(np.zeros((3, 2, 2), np.uint8), np.zeros(2, np.int64))


# ------------------------------------------------------------------- IDX round trip


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("dtype", IDX_DTYPES)
def test_idx_round_trip_is_exact(tmp_path, dtype, suffix):
    """read_idx(write_idx(p, a)) has a's dtype, shape and values, and is writable."""
    array = sample(dtype)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    assert path == tmp_path / f"a.idx{suffix}"
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert np.array_equal(back, array)
    assert back.flags.writeable


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("shape", [(0,), (5,), (0, 28, 28), (2, 1, 3, 2)])
def test_idx_round_trip_shapes(tmp_path, shape, suffix):
    array = sample("uint8", shape)
    assert np.array_equal(read_idx(write_idx(tmp_path / f"a{suffix}", array)), array)


def test_idx_writes_big_endian_header_and_data(tmp_path):
    """Bytes on disk follow the IDX spec: 00 00 code ndim, big-endian dims, big-endian data."""
    path = write_idx(tmp_path / "a", np.array([1, -2], dtype=np.int16))
    assert path.read_bytes() == header(0x0B, 2) + bytes.fromhex("0001fffe")


def test_gzip_is_written_for_gz_suffix_and_detected_by_magic(tmp_path):
    """.gz on write compresses; on read the 1f 8b magic, not the name, decides."""
    array = sample("int32")
    packed = write_idx(tmp_path / "a.gz", array)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    renamed = packed.rename(tmp_path / "no-suffix")
    assert np.array_equal(read_idx(renamed), array)
    plain = write_idx(tmp_path / "plain", array).rename(tmp_path / "misnamed.gz")
    assert np.array_equal(read_idx(plain), array)


def test_write_accepts_non_contiguous_arrays(tmp_path):
    array = np.asfortranarray(sample("float32", (3, 4)))[:, ::2]
    assert np.array_equal(read_idx(write_idx(tmp_path / "a", array)), array)


@pytest.mark.parametrize("value", [
    np.zeros(3, np.int64), np.zeros(3, np.uint16), np.zeros(3, np.float16),
    np.zeros(3, bool), np.zeros(3, np.complex64), np.array(["a"]), np.uint8(7),
])
def test_write_rejects_what_idx_cannot_hold(tmp_path, value):
    """int64, bool, float16, 0-d ... raise a ValueError-type SchemaError; no file is made."""
    with pytest.raises(SchemaError) as info:
        write_idx(tmp_path / "a", value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MlpropError)
    assert info.value.fields[0].startswith("array.")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- atomic write


def test_write_leaves_no_temp_files(tmp_path):
    for name in ("a", "b.gz", "a"):  # the second "a" replaces the first
        write_idx(tmp_path / name, sample("uint8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.gz"]


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    """A crash before the rename leaves the previous file intact and no temp behind."""
    path = write_idx(tmp_path / "a", sample("uint8"))
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_idx(path, sample("float64"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_write_fsyncs_before_replace(tmp_path, monkeypatch):
    """Durability: the temp file's data is fsynced before it takes the final name."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    write_idx(tmp_path / "a", sample("uint8"))
    assert events.index("fsync") < events.index("replace")


def test_write_keeps_permissions_of_replaced_file(tmp_path):
    path = write_idx(tmp_path / "a", sample("uint8"))
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    write_idx(path, sample("uint8"))
    assert path.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------- corrupt IDX

CORRUPTIONS: dict[str, tuple[bytes, str]] = {
    "empty file": (b"", "truncated header"),
    "short magic": (b"\x00\x00\x08", "truncated header"),
    "nonzero first bytes": (b"\x01\x00" + header(0x08, 3)[2:] + b"abc", "wrong magic"),
    "unknown dtype code": (header(0x0A, 3) + b"abc", "unknown dtype code 0x0a"),
    "ndim zero": (header(0x08), "ndim 0"),
    "truncated dims": (header(0x08, 2, 2)[:-2], "truncated header"),
    "truncated data": (header(0x0C, 3) + b"\x00" * 11, "truncated data"),
    "trailing bytes": (header(0x08, 3) + b"abcd", "trailing bytes"),
    "60000x28x28, 10-byte body": (header(0x08, 60000, 28, 28) + b"\x00" * 10, "truncated data"),
    "2**32-1 items": (header(0x08, 2**32 - 1) + b"\x00" * 10, "limit"),
    "2**32-1 float64 items": (header(0x0E, 2**32 - 1), "limit"),
    "product over limit": (header(0x08, 2**16, 2**16, 2**16) + b"\x00", "limit"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_idx_raises_error_naming_path_and_defect(tmp_path, case, compress):
    """Every defect is an IdxFormatError whose message names the file and what is wrong."""
    raw, reason = CORRUPTIONS[case]
    path = put(tmp_path / "bad-file", raw, compress=compress)
    with pytest.raises(IdxFormatError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert reason in info.value.reason


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("case", ["60000x28x28, 10-byte body", "2**32-1 items"])
def test_huge_declared_size_is_rejected_without_allocating(tmp_path, case, compress):
    """A header's claim is checked against the data before any buffer of that size exists."""
    path = put(tmp_path / "huge", CORRUPTIONS[case][0], compress=compress)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(IdxFormatError):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 8 * 2**20, f"peak allocation {peak} bytes"


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_corrupt_gzip_stream_is_idx_format_error(tmp_path, damage):
    packed = gzip.compress(header(0x08, 1000) + bytes(range(250)) * 4)
    raw = packed[:2] + b"garbage!" * 4 if damage == "garbage" else packed[: len(packed) // 2]
    path = put(tmp_path / "bad.gz", raw, compress=False)
    with pytest.raises(IdxFormatError, match=r"bad\.gz"):
        read_idx(path)


def test_max_bytes_caps_a_valid_file(tmp_path):
    path = write_idx(tmp_path / "a", np.zeros(100, np.uint8))
    assert read_idx(path, max_bytes=100).shape == (100,)
    with pytest.raises(IdxFormatError, match="limit"):
        read_idx(path, max_bytes=99)


def test_missing_idx_file_is_file_not_found_naming_path(tmp_path):
    missing = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match="nope-idx3-ubyte"):
        read_idx(missing)


# ------------------------------------------------------------------- IDX datasets

def write_pair(directory: Path, split: str, count: int, *, style: str = "dash",
               suffix: str = "", side: int = 4) -> np.ndarray:
    """Write ``count`` side x side images and labels for ``split``; return the images."""
    sep = "-" if style == "dash" else "."
    images = (np.arange(count * side * side) % 251).astype(np.uint8).reshape(count, side, side)
    images += np.uint8(0 if split == "train" else 100)
    write_idx(directory / f"{split}-images{sep}idx3-ubyte{suffix}", images)
    write_idx(directory / f"{split}-labels{sep}idx1-ubyte{suffix}",
              (np.arange(count) % 10).astype(np.uint8))
    return images


@pytest.mark.parametrize(("style", "suffix"),
                         [("dash", ""), ("dash", ".gz"), ("dot", ""), ("dot", ".gz")])
def test_load_idx_dataset_concatenates_train_then_t10k(tmp_path, style, suffix):
    train = write_pair(tmp_path, "train", 5, style=style, suffix=suffix)
    test = write_pair(tmp_path, "t10k", 3, style=style, suffix=suffix)
    images, labels = load_idx_dataset(tmp_path)
    assert images.dtype == np.uint8 and images.shape == (8, 4, 4)
    assert labels.dtype == np.int64
    assert np.array_equal(images, np.concatenate([train, test]))
    assert np.array_equal(labels, [0, 1, 2, 3, 4, 0, 1, 2])


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_load_idx_dataset_accepts_a_single_pair(tmp_path, split):
    written = write_pair(tmp_path, split, 2)
    images, labels = load_idx_dataset(str(tmp_path))
    assert np.array_equal(images, written) and labels.shape == (2,)


def test_load_idx_dataset_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        load_idx_dataset(tmp_path / "no-such-dir")


def test_load_idx_dataset_path_is_a_file(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="file"):
        load_idx_dataset(tmp_path / "file")


def test_load_idx_dataset_without_pair_names_directory_and_expected_files(tmp_path):
    (tmp_path / "README").write_text("not data")
    with pytest.raises(DatasetError) as info:
        load_idx_dataset(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message


def test_load_idx_dataset_rejects_half_a_pair(tmp_path):
    write_pair(tmp_path, "train", 2)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte"):
        load_idx_dataset(tmp_path)


def test_load_idx_dataset_rejects_label_count_mismatch(tmp_path):
    write_pair(tmp_path, "train", 3)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(IdxFormatError, match=r"train-labels-idx1-ubyte: .*2 labels for 3"):
        load_idx_dataset(tmp_path)


@pytest.mark.parametrize("images", [np.zeros((2, 4, 4), np.float32), np.zeros((2, 16), np.uint8)])
def test_load_idx_dataset_rejects_non_uint8_3d_images(tmp_path, images):
    write_pair(tmp_path, "train", 2)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte: .*uint8 images"):
        load_idx_dataset(tmp_path)


def test_load_idx_dataset_rejects_2d_labels(tmp_path):
    write_pair(tmp_path, "train", 2)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((2, 1), np.uint8))
    with pytest.raises(IdxFormatError, match="integer labels"):
        load_idx_dataset(tmp_path)


def test_load_idx_dataset_rejects_mismatched_image_sizes(tmp_path):
    write_pair(tmp_path, "train", 2, side=4)
    write_pair(tmp_path, "t10k", 2, side=5)
    with pytest.raises(DatasetError, match="differ in size"):
        load_idx_dataset(tmp_path)


def test_load_idx_dataset_propagates_corruption_with_path(tmp_path):
    write_pair(tmp_path, "train", 2)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(IdxFormatError, match="truncated data") as info:
        load_idx_dataset(tmp_path)
    assert info.value.path == str(path)


# ------------------------------------------------------------------- splits


@pytest.fixture(scope="module")
def default_split(default_dataset) -> Split:
    return stratified_split(default_dataset[1], seed=0)


def test_split_parts_are_disjoint_and_cover_every_index(default_dataset, default_split):
    n = default_dataset[1].shape[0]
    joined = np.concatenate(list(default_split.parts().values()))
    assert joined.dtype == np.int64
    assert np.array_equal(np.sort(joined), np.arange(n))


def test_split_parts_are_sorted_and_read_only(default_split):
    for indices in default_split.parts().values():
        assert np.all(np.diff(indices) > 0)
        with pytest.raises(ValueError, match="read-only"):
            indices[0] = 0


def test_split_preserves_each_class_proportion(default_dataset, default_split):
    """Per class, each part's count is within one of its fraction of the class."""
    labels = default_dataset[1]
    fractions = {"train": 0.70, "val": 0.15, "test": 0.15}
    for cls in np.unique(labels):
        size = int(np.sum(labels == cls))
        for name, indices in default_split.parts().items():
            count = int(np.sum(labels[indices] == cls))
            assert abs(count - size * fractions[name]) <= 1, (cls, name, count, size)


@pytest.mark.parametrize("size", [3, 4, 5, 7])
def test_split_small_classes_get_a_member_in_every_part(size):
    labels = np.repeat([0, 1], [size, 40])
    split = stratified_split(labels, seed=3, val_fraction=0.1, test_fraction=0.05)
    for indices in split.parts().values():
        assert np.sum(labels[indices] == 0) >= 1


@pytest.mark.parametrize("size", [1, 2])
def test_split_tiny_class_keeps_a_training_member(size):
    labels = np.repeat([0, 1], [size, 20])
    split = stratified_split(labels, seed=0, val_fraction=0.45, test_fraction=0.45)
    assert np.sum(labels[split.train] == 0) >= 1


def test_split_large_fractions_still_leave_train_data():
    labels = np.zeros(4, np.int64)
    split = stratified_split(labels, seed=0, val_fraction=0.45, test_fraction=0.45)
    assert [len(p) for p in split.parts().values()] == [1, 1, 2]  # val shrank to make room


def test_split_zero_fraction_leaves_part_empty():
    split = stratified_split(np.arange(30) % 3, seed=0, val_fraction=0.0, test_fraction=0.2)
    assert split.val.size == 0 and split.test.size == 6 and split.train.size == 24


def test_split_of_no_labels_is_empty():
    split = stratified_split(np.array([], np.int64), seed=0)
    assert all(p.size == 0 and p.dtype == np.int64 for p in split.parts().values())


def test_split_is_deterministic_for_a_seed(default_dataset):
    labels = default_dataset[1]
    first, again = stratified_split(labels, seed=7), stratified_split(labels, seed=7)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(first, name), getattr(again, name))


def test_split_differs_between_seeds(default_dataset):
    labels = default_dataset[1]
    a, b = stratified_split(labels, seed=1), stratified_split(labels, seed=2)
    assert not np.array_equal(a.test, b.test)
    assert a.test.size == b.test.size


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": True}, "seed"),
    ({"seed": 0, "val_fraction": -0.1}, "val_fraction"),
    ({"seed": 0, "val_fraction": 1.0}, "val_fraction"),
    ({"seed": 0, "test_fraction": float("nan")}, "test_fraction"),
    ({"seed": 0, "test_fraction": "0.1"}, "test_fraction"),
    ({"seed": 0, "val_fraction": 0.5, "test_fraction": 0.5}, "< 1"),
])
def test_split_rejects_bad_arguments(kwargs, match):
    with pytest.raises(DatasetError, match=match):
        stratified_split(np.zeros(10, np.int64), **kwargs)


def test_split_rejects_2d_labels():
    with pytest.raises(DatasetError, match="1-D"):
        stratified_split(np.zeros((4, 2), np.int64), seed=0)


# ------------------------------------------------------------------- leakage


def test_leakage_finds_planted_duplicates():
    train = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    test = np.full((4, 2, 2), 200, np.uint8)
    test[1], test[3] = train[2], train[4]
    leaks = find_leakage({"train": train, "test": test})
    assert leaks == [Leak("train", 2, "test", 1), Leak("train", 4, "test", 3)]


def test_leakage_ignores_repeats_within_one_part():
    repeated = np.zeros((3, 2, 2), np.uint8)
    assert find_leakage({"train": repeated, "test": np.ones((2, 2, 2), np.uint8)}) == []


def test_leakage_needs_same_shape_not_just_same_bytes():
    a = np.zeros((1, 2, 3), np.uint8)
    b = np.zeros((1, 3, 2), np.uint8)
    assert find_leakage({"a": a, "b": b}) == []


def test_leakage_pairs_each_repeat_with_first_occurrence():
    """Repeats give one leak per later occurrence per earlier part, not all pairs."""
    same = np.zeros((3, 2, 2), np.uint8)
    leaks = find_leakage({"train": same, "val": same[:2], "test": same[:1]})
    assert leaks == [Leak("train", 0, "val", 0), Leak("train", 0, "val", 1),
                     Leak("train", 0, "test", 0), Leak("val", 0, "test", 0)]


def test_no_leakage_in_deduplicated_default_split(default_dataset, default_split):
    images = default_dataset[0]
    parts = {name: images[indices] for name, indices in default_split.parts().items()}
    assert find_leakage(parts) == []
    assert_no_leakage(parts)


def test_assert_no_leakage_lists_first_leaks():
    train = np.arange(8, dtype=np.uint8).reshape(8, 1, 1)
    with pytest.raises(LeakageError) as info:
        assert_no_leakage({"train": train, "test": train[::-1]}, shown=3)
    assert len(info.value.leaks) == 8
    message = str(info.value)
    assert "8 image(s)" in message and "and 5 more" in message
    assert str(Leak("train", 7, "test", 0)) in message
    assert isinstance(info.value, MlpropError)


def test_data_module_exports_public_api():
    for name in data.__all__:
        assert hasattr(data, name), name
