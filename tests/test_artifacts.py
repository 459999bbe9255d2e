"""Tests of ``mlprop.digits.artifacts``: model packages (safetensors + JSON manifest).

A package round-trips exactly, its manifest records everything needed to serve it, it is
written atomically (a failed save leaves the previous package as it was), and loading
refuses anything tampered, truncated, incomplete or built for another architecture with a
``PackageIntegrityError`` that names the offending file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import struct
from datetime import datetime
from pathlib import Path

import pytest
import torch
from torch import nn

from mlprop import MlpropError, PackageIntegrityError, atomic
from mlprop.digits import artifacts
from mlprop.digits.artifacts import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_KEYS,
    WEIGHTS_FILE,
    load_package,
    load_state,
    read_manifest,
    save_package,
)
from mlprop.digits.model import DigitCNN, build_model
from mlprop.errors import WriteError

METRICS = {"accuracy": 0.5, "confusion": [[1, 0], [0, 1]]}
SCHEMA = {"num_classes": 10, "min_side": 8, "max_side": 64}
PREPROCESSING = {"size": 28, "mean": 0.1307, "std": 0.3081}


def save(directory: Path, model: nn.Module | None = None, *, seed: int = 0, **extra) -> Path:
    """Save ``model`` (default: ``build_model(seed)``) with fixed metadata."""
    return save_package(directory, model if model is not None else build_model(seed),
                        architecture="DigitCNN", metrics=METRICS, schema=SCHEMA,
                        preprocessing=PREPROCESSING, seed=seed, extra=extra or None)


def rejected(directory: Path, build=DigitCNN) -> PackageIntegrityError:
    """The error ``load_package`` raises for ``directory`` (fails if it loads)."""
    with pytest.raises(PackageIntegrityError) as info:
        load_package(directory, build)
    return info.value


def siblings(directory: Path) -> list[str]:
    """Names beside ``directory`` other than itself (temp/retired leftovers)."""
    return sorted(p.name for p in directory.parent.iterdir() if p.name != directory.name)


def edit_manifest(directory: Path, **changes) -> None:
    path = directory / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del manifest[key]
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return save(tmp_path / "pkg", seed=3)


# ------------------------------------------------------------------- round trip


def test_round_trip_gives_identical_state_dict(package: Path):
    original = build_model(3).state_dict()
    loaded, _ = load_package(package, DigitCNN)
    state = loaded.state_dict()
    assert state.keys() == original.keys()
    for name, tensor in original.items():
        assert state[name].dtype == tensor.dtype, name
        assert torch.equal(state[name], tensor), name


def test_round_trip_gives_identical_outputs_in_eval_mode(package: Path):
    original = build_model(3).eval()
    loaded, _ = load_package(package, DigitCNN)
    assert not loaded.training
    inputs = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(inputs), original(inputs))


def test_load_state_returns_verified_tensors_and_manifest(package: Path):
    state, manifest = load_state(package)
    assert set(state) == set(build_model(3).state_dict())
    assert manifest == read_manifest(package)


def test_save_returns_the_directory_with_exactly_two_files(tmp_path: Path):
    out = save(tmp_path / "nested" / "deeper" / "pkg")
    assert out == tmp_path / "nested" / "deeper" / "pkg"
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, MANIFEST_FILE])
    assert siblings(out) == []


class _WithTransposedBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.arange(12.0).reshape(3, 4).t())


def test_save_accepts_non_contiguous_tensors(tmp_path: Path):
    model = _WithTransposedBuffer()
    assert not model.table.is_contiguous()
    out = save(tmp_path / "buf", model)
    loaded, _ = load_package(out, _WithTransposedBuffer)
    assert torch.equal(loaded.table, model.table)


# ------------------------------------------------------------------- manifest


def test_manifest_records_everything_needed_to_serve(package: Path):
    manifest = read_manifest(package)
    assert set(REQUIRED_KEYS) <= set(manifest)
    assert manifest["format_version"] == FORMAT_VERSION == 1
    created = datetime.fromisoformat(manifest["created"])
    assert created.tzinfo is not None
    data = (package / WEIGHTS_FILE).read_bytes()
    assert manifest["weights"] == {"file": WEIGHTS_FILE,
                                   "sha256": hashlib.sha256(data).hexdigest(),
                                   "bytes": len(data)}
    assert manifest["architecture"] == "DigitCNN"
    assert manifest["metrics"] == METRICS
    assert manifest["schema"] == SCHEMA
    assert manifest["preprocessing"] == PREPROCESSING
    assert manifest["seed"] == 3
    assert {"mlprop", "torch", "numpy", "safetensors", "python"} <= set(manifest["versions"])
    assert manifest["versions"]["torch"] == torch.__version__


def test_manifest_is_plain_sorted_json(package: Path):
    text = (package / MANIFEST_FILE).read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=2, sort_keys=True)


def test_extra_metadata_is_stored(tmp_path: Path):
    out = save(tmp_path / "pkg", train_config={"epochs": 2}, data="somewhere")
    manifest = read_manifest(out)
    assert manifest["train_config"] == {"epochs": 2}
    assert manifest["data"] == "somewhere"


def test_weights_are_safetensors_not_pickle(package: Path):
    """safetensors: 8-byte little-endian header length, then a JSON header starting '{'."""
    data = (package / WEIGHTS_FILE).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    assert 2 <= header_len <= len(data) - 8
    assert data[8:9] == b"{"
    header = json.loads(data[8:8 + header_len])
    assert "features.0.weight" in header
    assert not data.startswith(b"\x80")  # pickle protocol 2+ opcode
    assert not data.startswith(b"PK")  # torch.save's zip container


# ------------------------------------------------------------------- refusals


def test_tampered_weights_are_refused_naming_sha256_and_the_file(package: Path):
    weights = package / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # same size, one bit different
    weights.write_bytes(bytes(data))
    error = rejected(package)
    assert error.path == str(weights)
    assert "SHA-256" in str(error)
    assert str(weights) in str(error)
    assert isinstance(error, MlpropError)


def test_truncated_weights_are_refused(package: Path):
    weights = package / WEIGHTS_FILE
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    error = rejected(package)
    assert error.path == str(weights)
    assert "truncated" in error.reason
    assert str(len(data) // 2) in error.reason


def test_missing_manifest_is_refused(package: Path):
    (package / MANIFEST_FILE).unlink()
    error = rejected(package)
    assert error.path == str(package / MANIFEST_FILE)
    assert "missing" in error.reason


def test_missing_weights_are_refused(package: Path):
    (package / WEIGHTS_FILE).unlink()
    error = rejected(package)
    assert error.path == str(package / WEIGHTS_FILE)
    assert "missing" in error.reason


@pytest.mark.parametrize("text", ["{not json", "", '{"format_version": 1'])
def test_manifest_that_is_not_json_is_refused(package: Path, text: str):
    (package / MANIFEST_FILE).write_text(text)
    error = rejected(package)
    assert error.path == str(package / MANIFEST_FILE)
    assert "JSON" in error.reason


def test_manifest_that_is_not_utf8_is_refused(package: Path):
    (package / MANIFEST_FILE).write_bytes(b"\xff\xfe\x00garbage")
    assert rejected(package).path == str(package / MANIFEST_FILE)


@pytest.mark.parametrize("text", ["[1, 2]", "42", "null"])
def test_manifest_that_is_not_an_object_is_refused(package: Path, text: str):
    (package / MANIFEST_FILE).write_text(text)
    assert "JSON object" in rejected(package).reason


@pytest.mark.parametrize("key", ["format_version", "weights", "seed", "versions"])
def test_manifest_missing_a_key_is_refused_naming_it(package: Path, key: str):
    edit_manifest(package, **{key: None})
    error = rejected(package)
    assert error.path == str(package / MANIFEST_FILE)
    assert repr(key) in error.reason


@pytest.mark.parametrize("version", [0, 2, "1", 1.5, True, 1.0])
def test_unsupported_format_version_is_refused(package: Path, version):
    edit_manifest(package, format_version=version)
    error = rejected(package)
    assert "format_version" in error.reason
    assert repr(version) in error.reason


@pytest.mark.parametrize(
    "weights",
    [{"file": WEIGHTS_FILE, "sha256": "0" * 64},  # no bytes
     "model.safetensors",
     {"file": "../elsewhere.safetensors", "sha256": "0" * 64, "bytes": 1}],
)
def test_malformed_weights_entry_is_refused(package: Path, weights):
    edit_manifest(package, weights=weights)
    error = rejected(package)
    assert error.path == str(package / MANIFEST_FILE)
    assert "weights" in error.reason


def test_manifest_with_matching_hash_of_garbage_is_refused_as_not_safetensors(package: Path):
    garbage = b"\x00" * 64
    (package / WEIGHTS_FILE).write_bytes(garbage)
    edit_manifest(package, weights={"file": WEIGHTS_FILE, "bytes": len(garbage),
                                    "sha256": hashlib.sha256(garbage).hexdigest()})
    error = rejected(package)
    assert error.path == str(package / WEIGHTS_FILE)
    assert "safetensors" in error.reason


def test_weights_of_another_architecture_are_refused(tmp_path: Path):
    out = save_package(tmp_path / "lin", nn.Linear(4, 3), architecture="Linear",
                       metrics={}, schema={}, preprocessing={}, seed=0)
    error = rejected(out, DigitCNN)
    assert error.path == str(out / WEIGHTS_FILE)
    assert "Linear" in error.reason
    assert "\n" not in str(error)


def test_weights_of_a_differently_sized_model_are_refused(tmp_path: Path):
    out = save(tmp_path / "wide", DigitCNN(width=8))
    error = rejected(out, DigitCNN)
    assert "DigitCNN" in error.reason


@pytest.mark.parametrize("name", [MANIFEST_FILE, WEIGHTS_FILE])
def test_a_directory_in_place_of_a_package_file_is_refused(package: Path, name: str):
    (package / name).unlink()
    (package / name).mkdir()
    error = rejected(package)
    assert error.path == str(package / name)
    assert "unreadable" in error.reason


def test_non_existent_directory_is_refused(tmp_path: Path):
    error = rejected(tmp_path / "nope")
    assert error.path == str(tmp_path / "nope")
    assert "no such package directory" in error.reason


def test_a_file_instead_of_a_directory_is_refused(tmp_path: Path):
    path = tmp_path / "file"
    path.write_text("x")
    assert rejected(path).path == str(path)


# ------------------------------------------------------------------- atomic writes


def test_overwriting_replaces_the_package_and_leaves_no_siblings(tmp_path: Path):
    out = save(tmp_path / "pkg", seed=1)
    (out / "stale.txt").write_text("from the old package")
    save(out, seed=2)
    loaded, manifest = load_package(out, DigitCNN)
    assert manifest["seed"] == 2
    for name, tensor in build_model(2).state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert not (out / "stale.txt").exists()
    assert siblings(out) == []
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []


def _assert_previous_intact(out: Path, seed: int) -> None:
    _, manifest = load_package(out, DigitCNN)
    assert manifest["seed"] == seed
    assert siblings(out) == []


def test_failure_while_writing_keeps_the_previous_package(tmp_path: Path, monkeypatch):
    out = save(tmp_path / "pkg", seed=1)

    def broken(path, data):
        path.write_bytes(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_write_synced", broken)
    with pytest.raises(OSError, match="disk full"):
        save(out, seed=2)
    _assert_previous_intact(out, seed=1)


def test_failure_writing_a_fresh_package_leaves_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(artifacts, "_write_synced",
                        lambda path, data: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "pkg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing_call", [1, 2], ids=["retire-old", "install-new"])
def test_failure_while_renaming_keeps_the_previous_package(tmp_path: Path, monkeypatch,
                                                           failing_call: int):
    """Whichever rename of the two-rename fallback (no ``renameat2``) fails, the old
    package is still at its path afterwards."""
    out = save(tmp_path / "pkg", seed=1)
    monkeypatch.setattr(atomic, "_rename_exchange", lambda first, second: False)
    real_replace = artifacts.os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == failing_call:
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="rename failed"):
        save(out, seed=2)
    monkeypatch.undo()
    _assert_previous_intact(out, seed=1)


def test_failing_atomic_swap_keeps_the_previous_package(tmp_path: Path, monkeypatch):
    out = save(tmp_path / "pkg", seed=1)

    def exchange_fails(first, second):
        raise OSError(errno.EIO, "I/O error", str(second))

    monkeypatch.setattr(atomic, "_rename_exchange", exchange_fails)
    with pytest.raises(WriteError, match="I/O error"):
        save(out, seed=2)
    monkeypatch.undo()
    _assert_previous_intact(out, seed=1)


def test_interrupted_save_leaves_no_temp_dir(tmp_path: Path, monkeypatch):
    def interrupted(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(artifacts, "_write_synced", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path / "pkg")
    assert list(tmp_path.iterdir()) == []
