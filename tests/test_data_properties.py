"""Property tests of ``mlprop.digits.data``: IDX round trips, stratified splits, leakage.

Hypothesis draws the arrays, label vectors, fractions, seeds and image batches; the
example-based tests in ``test_data.py`` pin the error messages and corrupt-file cases.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mlprop.strategies as gen
from mlprop.digits.data import (
    Leak,
    LeakageError,
    assert_no_leakage,
    find_leakage,
    load_default_dataset,
    read_idx,
    stratified_split,
    write_idx,
)

# ------------------------------------------------------------------- IDX round trip

IDX_DTYPES = ("uint8", "int8", "int16", "int32", "float32", "float64")
GZIP_MAGIC = b"\x1f\x8b"


@st.composite
def idx_arrays(draw: st.DrawFn) -> np.ndarray:
    """Arrays IDX can hold: every IDX dtype in any byte order, 1-4 dims (zero-length
    dims included), C-ordered, Fortran-ordered or a negatively strided view; floats
    include NaN, +-inf, -0.0 and subnormals."""
    dtype = np.dtype(draw(st.sampled_from(IDX_DTYPES)))
    dtype = dtype.newbyteorder(draw(st.sampled_from("=<>")))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
    if dtype.kind == "f":
        special = st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, -0.0])
        elements = st.one_of(special, hnp.from_dtype(dtype, allow_nan=True,
                                                     allow_infinity=True, allow_subnormal=True))
    else:
        elements = hnp.from_dtype(dtype)
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["C", "F", "reversed"]))
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "reversed":
        array = np.ascontiguousarray(array[::-1])[::-1]  # same values, negative stride
    return array


@given(array=idx_arrays(), suffix=st.sampled_from(["", ".gz"]))
def test_idx_write_read_round_trip_is_exact(array, suffix):
    """``read_idx(write_idx(p, a))`` has a's shape, a's dtype in native byte order and
    a's exact bytes (NaN, inf and -0.0 included), for plain and ``.gz`` files; ``.gz``
    paths are really gzip-compressed and plain files hold exactly header + payload.

    Catches: native (little-endian) bytes written where IDX demands big-endian, a float
    read back as int of the same width, dims written in the wrong order or a zero-length
    dim dropped, memory order instead of C order written for Fortran/strided arrays,
    NaN/-0.0 lost through a float conversion, and compression silently skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"array.idx{suffix}"
        assert write_idx(path, array) == path
        raw = path.read_bytes()
        back = read_idx(path)
    assert raw.startswith(GZIP_MAGIC) == (suffix == ".gz"), "gzip iff the path ends in .gz"
    if not suffix:
        assert len(raw) == 4 + 4 * array.ndim + array.nbytes, "plain file size"
    expected = array.astype(array.dtype.newbyteorder("="))
    assert back.dtype == expected.dtype, (back.dtype, array.dtype)
    assert back.dtype.isnative
    assert back.shape == array.shape
    assert back.flags.writeable
    assert back.tobytes() == expected.tobytes(), "values differ after the round trip"


# ------------------------------------------------------------------- stratified split

FRACTIONS = st.one_of(st.just(0.0), st.just(0.15), st.floats(0.0, 0.4))


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[np.ndarray, int, float, float]:
    """(labels, seed, val_fraction, test_fraction): 0..300 labels of 2..12 classes."""
    num_classes = draw(st.integers(2, 12), label="num_classes")
    labels = draw(gen.labels(num_classes, min_size=0, max_size=300), label="labels")
    return labels, draw(gen.seeds(), label="seed"), draw(FRACTIONS), draw(FRACTIONS)


@given(case=split_cases())
def test_split_parts_are_disjoint_sorted_and_cover_every_index_once(case):
    """train, val and test are sorted, read-only int64 index arrays that together hold
    every index 0..N-1 exactly once.

    Catches: an index dropped or duplicated at a class boundary (off-by-one slicing),
    overlapping slices that put one sample in train and test (leakage), and parts left
    in class order instead of index order."""
    labels, seed, val_fraction, test_fraction = case
    split = stratified_split(labels, seed=seed, val_fraction=val_fraction,
                             test_fraction=test_fraction)
    for name, part in split.parts().items():
        assert part.dtype == np.int64, (name, part.dtype)
        assert part.ndim == 1, (name, part.shape)
        assert not part.flags.writeable, f"{name} is writable"
        assert np.all(np.diff(part) > 0), f"{name} not strictly increasing: {part}"
    joined = np.concatenate([split.train, split.val, split.test])
    assert np.array_equal(np.sort(joined), np.arange(labels.size)), "not a partition"


@given(case=split_cases())
def test_split_depends_only_on_the_seed(case):
    """Two calls with the same labels, seed and fractions give identical parts.

    Catches: a split drawn from the global NumPy RNG (reseeded here between the calls)
    or from an unseeded generator, either of which makes validation and test metrics
    irreproducible."""
    labels, seed, val_fraction, test_fraction = case
    first = stratified_split(labels, seed=seed, val_fraction=val_fraction,
                             test_fraction=test_fraction)
    np.random.seed(seed % 2**32)  # a split that secretly uses the global RNG would change
    np.random.random(7)
    second = stratified_split(labels.copy(), seed=seed, val_fraction=val_fraction,
                              test_fraction=test_fraction)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name


@given(case=split_cases())
def test_split_keeps_every_class_proportion_within_one_sample(case):
    """For a class with c members, val and test hold within 1 of c*val_fraction and
    c*test_fraction members; train holds the rest, at least 1, and within 1 of
    c*(1 - val - test). The documented exception: a class of c >= 3 gets at least one
    member in each part whose fraction is > 0, and lifting a share below 0.5 to 1 takes
    that member from train (so train is then within 2, not 1).

    Catches: fractions applied to the whole dataset instead of per class (a rare class
    vanishing from val/test), floor instead of rounding drifting a part's share, the
    val and test fractions swapped, and train left empty for a small class."""
    labels, seed, val_fraction, test_fraction = case
    split = stratified_split(labels, seed=seed, val_fraction=val_fraction,
                             test_fraction=test_fraction)
    train_fraction = 1 - val_fraction - test_fraction
    tolerance = 1 + 1e-9
    for cls in np.unique(labels):
        c = int(np.count_nonzero(labels == cls))
        counts = {name: int(np.count_nonzero(labels[part] == cls))
                  for name, part in split.parts().items()}
        lifted = sum(1 for f in (val_fraction, test_fraction) if c >= 3 and 0 < c * f < 0.5)
        for name, fraction in (("val", val_fraction), ("test", test_fraction)):
            assert abs(counts[name] - c * fraction) <= tolerance, (cls, c, name, counts)
            if c >= 3 and fraction > 0:
                assert counts[name] >= 1, f"class {cls} ({c} members) missing from {name}"
        assert counts["train"] >= 1, f"class {cls} ({c} members) missing from train"
        assert abs(counts["train"] - c * train_fraction) <= tolerance + lifted, (cls, c, counts)


# ------------------------------------------------------------------- leakage


def _distinct(batch: np.ndarray) -> np.ndarray:
    """``batch`` without repeated images, first occurrences in their original order."""
    flat = batch.reshape(len(batch), math.prod(batch.shape[1:]))
    _, first = np.unique(flat, axis=0, return_index=True)
    return batch[np.sort(first)]


@st.composite
def distinct_parts(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """train/val/test image arrays (train non-empty) with no image in two places."""
    schema = draw(gen.image_schemas(max_classes=10, max_side=6), label="schema")
    pool = _distinct(draw(gen.images(schema, min_batch=1, max_batch=16), label="pool"))
    n_train = draw(st.integers(1, len(pool)), label="n_train")
    n_val = draw(st.integers(0, len(pool) - n_train), label="n_val")
    return {"train": pool[:n_train], "val": pool[n_train:n_train + n_val],
            "test": pool[n_train + n_val:]}


@st.composite
def planted(draw: st.DrawFn, *, unique: bool = False):
    """(parts, plants): distinct parts, then copies of train images inserted into val
    and test at random positions. ``plants[part]`` lists, for each final index of that
    part, the train index of the image copied there, or None for an original image.
    ``unique=True`` plants each train image at most once overall."""
    parts = draw(distinct_parts())
    n_train = len(parts["train"])
    count = draw(st.integers(0, min(6, n_train) if unique else 6), label="copies")
    sources = draw(st.lists(st.integers(0, n_train - 1), min_size=count, max_size=count,
                            unique=unique), label="sources")
    tags: dict[str, list[int | None]] = {name: [None] * len(parts[name])
                                         for name in ("val", "test")}
    images = {name: list(parts[name]) for name in ("val", "test")}
    for source in sources:
        name = draw(st.sampled_from(["val", "test"]))
        position = draw(st.integers(0, len(tags[name])))
        tags[name].insert(position, source)
        images[name].insert(position, parts["train"][source])
    shape = parts["train"].shape[1:]
    result = {"train": parts["train"]}
    result.update({name: np.array(images[name], np.uint8).reshape(-1, *shape)
                   for name in ("val", "test")})
    return result, tags


def _expected_leaks(tags: dict[str, list[int | None]]) -> list[Leak]:
    """Leaks for parts ordered train, val, test whose only repeats are the planted copies."""
    expected = [Leak("train", source, name, index)
                for name in ("val", "test")
                for index, source in enumerate(tags[name]) if source is not None]
    first_in_val: dict[int, int] = {}
    for index, source in enumerate(tags["val"]):
        if source is not None:
            first_in_val.setdefault(source, index)
    expected += [Leak("val", first_in_val[source], "test", index)
                 for index, source in enumerate(tags["test"]) if source in first_in_val]
    return expected


@given(case=planted())
def test_find_leakage_reports_exactly_the_planted_copies(case):
    """Copies of train images inserted into val/test are reported as exactly the
    (part, index) pairs where they were planted, each paired with its train index (and a
    copy in test with the first copy of the same image in val); nothing else is reported,
    no leak twice; ``assert_no_leakage`` raises iff there is a leak, carrying the same list.

    Catches: positions shifted by one, repeats within one part reported as leaks, a copy
    paired with the last instead of the first earlier occurrence, only the first earlier
    part searched (val-test copies of one train image missed), and a quadratic pairing
    of every copy with every other copy."""
    parts, tags = case
    leaks = find_leakage(parts)
    expected = _expected_leaks(tags)
    assert Counter(leaks) == Counter(expected), (leaks, expected)
    planted_at = {(name, index) for name in ("val", "test")
                  for index, source in enumerate(tags[name]) if source is not None}
    assert {(leak.part_b, leak.index_b) for leak in leaks if leak.part_a == "train"} == planted_at
    if expected:
        with pytest.raises(LeakageError) as caught:
            assert_no_leakage(parts)
        assert caught.value.leaks == leaks
    else:
        assert_no_leakage(parts)


@given(case=planted(unique=True), data=st.data())
def test_find_leakage_ignores_images_differing_in_one_pixel(case, data):
    """A planted copy with one pixel changed (by any nonzero amount) is not a leak.

    Catches: near-duplicate detection by a lossy key (mean, downsampled or quantised
    pixels, a truncated hash, only the first row), which flags distinct images and makes
    ``assert_no_leakage`` fail on clean data."""
    parts, tags = case
    shape = parts["train"].shape[1:]
    for name in ("val", "test"):
        for index, source in enumerate(tags[name]):
            if source is None:
                continue
            row = data.draw(st.integers(0, shape[0] - 1), label="row")
            col = data.draw(st.integers(0, shape[1] - 1), label="col")
            delta = data.draw(st.one_of(st.just(1), st.integers(1, 255)), label="delta")
            image = parts[name][index]
            image[row, col] = (int(image[row, col]) + delta) % 256
            assume(not any(np.array_equal(image, other) for other in parts["train"]))
    others = [image for name in ("val", "test") for image in parts[name]]
    assume(len(_distinct(np.array(others, np.uint8).reshape(-1, *shape))) == len(others))
    assert find_leakage(parts) == []
    assert_no_leakage(parts)


def _pairs(leaks: list[Leak]) -> set[frozenset[tuple[str, int]]]:
    return {frozenset({(leak.part_a, leak.index_a), (leak.part_b, leak.index_b)})
            for leak in leaks}


@given(case=planted(), order=st.permutations(["train", "val", "test"]))
def test_find_leakage_does_not_depend_on_part_order(case, order):
    """Reordering the mapping of parts leaves unchanged which images leak between which
    two parts, and (when no image repeats inside one part, so "first occurrence" is
    unambiguous) the exact set of leaked location pairs.

    Catches: leaks searched only from the first part (train) outward, so train images
    copied between val and test, or a val/test reordering, hide leaks; and comparisons
    made only between neighbouring parts (train-val, val-test) missing train-test."""
    parts, tags = case
    reordered = {name: parts[name] for name in order}
    leaks, again = find_leakage(parts), find_leakage(reordered)

    def by_image(found: list[Leak]) -> set[tuple[frozenset[str], bytes]]:
        return {(frozenset({leak.part_a, leak.part_b}),
                 parts[leak.part_b][leak.index_b].tobytes()) for leak in found}

    assert by_image(leaks) == by_image(again)
    repeats = any(len(set(ts) - {None}) < len(ts) - ts.count(None) for ts in tags.values())
    if not repeats:
        assert _pairs(leaks) == _pairs(again)


# ------------------------------------------------------------------- default dataset


@pytest.fixture(scope="module")
def default_dataset() -> tuple[np.ndarray, np.ndarray]:
    return load_default_dataset()


def test_default_dataset_is_uint8_digits_without_duplicates(default_dataset):
    """The default dataset is uint8 (N, 8, 8) with int64 labels 0..9 (all ten present),
    one label per image, no two images byte-identical.

    Catches: float 0..16 pixels passed through unscaled, labels out of step with images
    after deduplication, and a lossy image key in deduplication that drops distinct
    digits (whole classes can vanish)."""
    images, labels = default_dataset
    assert images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (8, 8)
    assert labels.dtype == np.int64 and labels.shape == images.shape[:1]
    assert set(np.unique(labels).tolist()) == set(range(10))
    assert len(_distinct(images)) == len(images)


@settings(max_examples=25)
@given(seed=gen.seeds(), val_fraction=FRACTIONS, test_fraction=FRACTIONS)
def test_default_dataset_splits_never_leak(default_dataset, seed, val_fraction,
                                           test_fraction):
    """Any stratified split of the default dataset (any seed and fractions) leaves no
    image in two parts, and every digit appears in every part whose fraction is > 0.

    Catches: val and test shares swapped or a class-level floor lost (a digit missing
    from validation), and, should the bundled data ever gain duplicates, deduplication
    dropped from the loader (today's digits have none, so that fault is latent)."""
    images, labels = default_dataset
    split = stratified_split(labels, seed=seed, val_fraction=val_fraction,
                             test_fraction=test_fraction)
    assert_no_leakage({name: images[part] for name, part in split.parts().items()})
    assert min(Counter(labels.tolist()).values()) >= 3  # so the floor of one applies
    for name, fraction in (("val", val_fraction), ("test", test_fraction)):
        if fraction > 0:
            present = set(np.unique(labels[getattr(split, name)]).tolist())
            assert present == set(range(10)), (name, fraction, present)
