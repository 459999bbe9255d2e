"""Edges of the model package's reader and writer that the mutation audit found untested:
the exact size limits (a file that grows between its size check and its read is read at
most one byte past the limit), each refusal naming its file and its reason, a dtype torch
lacks, a failing parent directory, and the clean-up of killed writers' leftovers when a
package is overwritten (and of the retired copy in the two-rename fallback).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlprop import PackageIntegrityError, atomic
from mlprop.digits import artifacts, data, pipeline
from mlprop.digits.artifacts import (
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    WEIGHTS_FILE,
    load_state,
    read_manifest,
    sha256_bytes,
)
from mlprop.errors import WriteError
from tests.test_artifacts import edit_manifest, rejected, save


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return save(tmp_path / "pkg", seed=3)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def lying_fstat(monkeypatch, size: int) -> None:
    """``os.fstat`` reports ``size`` bytes: the file grew after its size was checked."""
    monkeypatch.setattr(os, "fstat", lambda fd: SimpleNamespace(st_size=size))


# ------------------------------------------------------------------- manifest limits


def test_a_manifest_of_exactly_the_limit_is_read(package: Path):
    path = package / MANIFEST_FILE
    text = path.read_bytes()
    path.write_bytes(b" " * (MAX_MANIFEST_BYTES - len(text)) + text)
    assert read_manifest(package)["seed"] == 3


def test_a_manifest_one_byte_over_the_limit_is_refused_naming_size_and_limit(package: Path):
    path = package / MANIFEST_FILE
    text = path.read_bytes()
    size = MAX_MANIFEST_BYTES + 1
    path.write_bytes(b" " * (size - len(text)) + text)
    error = rejected(package)
    assert error.path == str(path)
    assert error.reason == (f"manifest is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte "
                            "limit")


def test_a_manifest_that_grows_after_its_size_check_is_read_only_to_the_limit(
        package: Path, monkeypatch):
    """At most limit + 1 bytes are read: here they are all blanks and ``[``, which is not
    JSON (reading one byte more would see ``[]``, reading all of it a JSON list)."""
    path = package / MANIFEST_FILE
    path.write_bytes(b" " * MAX_MANIFEST_BYTES + b"[]")
    lying_fstat(monkeypatch, 10)
    with pytest.raises(PackageIntegrityError) as info:
        read_manifest(package)
    monkeypatch.undo()
    assert info.value.path == str(path)
    assert "not valid JSON" in info.value.reason


def test_a_manifest_nested_too_deeply_is_refused_naming_the_file(package: Path):
    path = package / MANIFEST_FILE
    path.write_text("[" * 200_000)
    error = rejected(package)
    assert error.path == str(path)
    assert error.reason == "manifest is not valid JSON (nested too deeply)"


# ------------------------------------------------------------------- weights entry


def edit_weights_entry(directory: Path, **changes) -> None:
    """Change fields of the manifest's ``weights`` entry, keeping the others."""
    weights = json.loads((directory / MANIFEST_FILE).read_text())["weights"]
    edit_manifest(directory, weights={**weights, **changes})


MALFORMED_WEIGHTS_FIELDS = [
    *(("bytes", value, "must be a non-negative integer") for value in (-1, "12", True, 1.5)),
    *(("sha256", value, "must be 64 lowercase hex digits")
      for value in ("A" * 64, "0" * 63, "g" * 64, 12)),
]


@pytest.mark.parametrize(("field", "value", "requirement"), MALFORMED_WEIGHTS_FIELDS)
def test_a_malformed_weights_field_is_refused_naming_it_and_its_value(
        package: Path, field: str, value, requirement: str):
    edit_weights_entry(package, **{field: value})
    error = rejected(package)
    assert error.path == str(package / MANIFEST_FILE)
    assert error.reason == f"manifest 'weights.{field}' {requirement}, got {value!r}"


def test_zero_weights_bytes_passes_the_manifest_and_fails_on_the_file(package: Path):
    edit_weights_entry(package, bytes=0)
    error = rejected(package)
    assert error.path == str(package / WEIGHTS_FILE)
    assert "manifest says 0 (truncated or replaced)" in error.reason


# ------------------------------------------------------------------- weights file


def test_weights_that_grow_after_the_size_check_are_read_one_byte_past_it(
        package: Path, monkeypatch):
    """Memory stays at the manifest's size + 1, and the change is reported."""
    path = package / WEIGHTS_FILE
    expected = path.stat().st_size
    with path.open("ab") as handle:
        handle.write(b"\x00" * 10)
    lying_fstat(monkeypatch, expected)
    with pytest.raises(PackageIntegrityError) as info:
        load_state(package)
    monkeypatch.undo()
    assert info.value.path == str(path)
    assert info.value.reason == (f"size is {expected + 1} bytes, manifest says {expected} "
                                 "(truncated or replaced)")


def test_a_dtype_torch_lacks_is_refused_naming_it(package: Path):
    header = json.dumps({"w": {"dtype": "F8_E8M0", "shape": [2],
                               "data_offsets": [0, 2]}}).encode()
    header += b" " * (-len(header) % 8)
    weights = struct.pack("<Q", len(header)) + header + b"\x00\x00"
    (package / WEIGHTS_FILE).write_bytes(weights)
    edit_manifest(package, weights={"file": WEIGHTS_FILE, "bytes": len(weights),
                                    "sha256": sha256_bytes(weights)})
    error = rejected(package)
    assert error.path == str(package / WEIGHTS_FILE)
    assert error.reason == ("not a valid safetensors file (tensor dtype 'F8_E8M0' is not "
                            "supported by torch)")


# ------------------------------------------------------------------- writer


def test_a_parent_that_cannot_be_a_directory_is_a_write_error_naming_the_package(
        tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "pkg"
    with pytest.raises(WriteError) as info:
        save(target)
    assert info.value.path == str(target)
    assert "ENOTDIR" in str(info.value) or "EEXIST" in str(info.value)


def test_a_failing_write_is_a_write_error_naming_the_package(tmp_path: Path, monkeypatch):
    def full(path: Path, payload: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(artifacts, "_write_synced", full)
    with pytest.raises(WriteError, match="ENOSPC") as info:
        save(tmp_path / "pkg")
    assert info.value.path == str(tmp_path / "pkg")


def test_the_two_rename_fallback_removes_the_retired_copy(tmp_path: Path, monkeypatch):
    out = save(tmp_path / "pkg", seed=1)
    monkeypatch.setattr(atomic, "_rename_exchange", lambda first, second: False)
    save(out, seed=2)
    assert os.listdir(tmp_path) == ["pkg"]
    assert read_manifest(out)["seed"] == 2


def test_overwriting_removes_dead_writers_staging_and_retired_copies(tmp_path: Path):
    out = save(tmp_path / "pkg", seed=1)
    pid = dead_pid()
    for kind in ("tmp", "old"):
        (tmp_path / f".pkg.{kind}-{pid}-0123abcd").mkdir()
    save(out, seed=2)
    assert os.listdir(tmp_path) == ["pkg"]


def test_retired_copies_are_kept_while_the_package_is_missing(tmp_path: Path):
    """A killed two-rename fallback can leave the only copy retired; with one the next save
    moves it back (atomic.recover_directory), with two it cannot choose and keeps both."""
    pid = dead_pid()
    retired = [tmp_path / f".pkg.old-{pid}-{suffix}" for suffix in ("0123abcd", "4567cdef")]
    for copy in retired:
        copy.mkdir()
    save(tmp_path / "pkg")
    assert sorted(os.listdir(tmp_path)) == sorted(["pkg", *(copy.name for copy in retired)])


def test_a_leftover_that_cannot_be_removed_does_not_fail_the_save(tmp_path: Path,
                                                                 monkeypatch):
    stale = tmp_path / f".pkg.tmp-{dead_pid()}-0123abcd"
    stale.mkdir()
    real_rmdir = os.rmdir

    def busy(path, *args, **kwargs):
        if Path(os.fsdecode(path)).name == stale.name:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", busy)
    out = save(tmp_path / "pkg", seed=4)
    monkeypatch.undo()
    assert read_manifest(out)["seed"] == 4
    shutil.rmtree(stale)


def test_another_users_process_counts_as_alive(monkeypatch):
    def not_permitted(pid: int, signal: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_permitted)
    assert artifacts._pid_alive(12345) is True


# ------------------------------------------------------------------- neighbours


def test_an_empty_idx_array_counts_its_other_dimensions_against_the_limit(tmp_path: Path):
    """(0, 1024, 1024) int32 spans 4 MiB: over a 2 MiB cap even though it holds nothing."""
    with pytest.raises(data.IdxFormatError, match="is 4194304 bytes, over the 2097152"):
        data._declared_bytes(tmp_path / "x.idx", np.dtype(">i4"), (0, 1024, 1024), 2 << 20)


def test_the_reference_cache_directory_is_created_with_its_parents(tmp_path: Path,
                                                                   monkeypatch):
    cache = tmp_path / "deep" / "er" / "cache"
    monkeypatch.setenv("MLPROP_CACHE_DIR", str(cache))
    monkeypatch.setattr(pipeline, "_cached", lambda path: False)
    monkeypatch.setattr(pipeline, "train_and_evaluate",
                        lambda splits, config: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        pipeline.reference_package()
    assert cache.is_dir()


def test_an_uncreatable_cache_directory_is_a_write_error_naming_it(tmp_path: Path,
                                                                   monkeypatch):
    (tmp_path / "a-file").write_text("")
    cache = tmp_path / "a-file" / "cache"
    monkeypatch.setenv("MLPROP_CACHE_DIR", str(cache))
    monkeypatch.setattr(pipeline, "_cached", lambda path: False)
    with pytest.raises(WriteError) as info:
        pipeline.reference_package()
    assert info.value.path == str(cache)
    assert "ENOTDIR" in str(info.value) or "EEXIST" in str(info.value)
