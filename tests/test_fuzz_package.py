"""Fuzz the model package loader: manifest JSON, safetensors header and payload, and sizes
and hashes that disagree.

Oracle (``tests/fuzzing.py``): ``load_package`` returns a model or raises an ``MlpropError``
(``PackageIntegrityError``) naming the file; traced peak memory stays under
``max(2 MiB, 8 x the package's size)``. Budget: ``MLPROP_FUZZ_EXAMPLES``.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mlprop.digits import artifacts
from mlprop.digits.artifacts import MANIFEST_FILE, WEIGHTS_FILE, load_package, sha256_bytes
from mlprop.digits.model import DigitCNN, build_model
from tests.fuzzing import WORKDIR, check_reader, fuzz_settings, mutations

SEED_DIR = artifacts.save_package(WORKDIR / "seed-package", build_model(0),
                                  architecture="DigitCNN", metrics={}, schema={},
                                  preprocessing={}, seed=0)
SEED_MANIFEST = (SEED_DIR / MANIFEST_FILE).read_bytes()
SEED_WEIGHTS = (SEED_DIR / WEIGHTS_FILE).read_bytes()
HEADER_LENGTH = struct.unpack("<Q", SEED_WEIGHTS[:8])[0]
PACKAGE = WORKDIR / "fuzz-package"


def write_package(manifest: bytes, weights: bytes | None) -> Path:
    if PACKAGE.exists():
        shutil.rmtree(PACKAGE)
    PACKAGE.mkdir()
    (PACKAGE / MANIFEST_FILE).write_bytes(manifest)
    if weights is not None:
        (PACKAGE / WEIGHTS_FILE).write_bytes(weights)
    return PACKAGE


def matching_manifest(weights: bytes) -> bytes:
    """The seed manifest with the size and SHA-256 of ``weights``, so that they reach the
    safetensors parser."""
    manifest = json.loads(SEED_MANIFEST)
    manifest["weights"].update(bytes=len(weights), sha256=sha256_bytes(weights))
    return json.dumps(manifest).encode()


def load(directory: Path) -> Any:
    return load_package(directory, DigitCNN)


def check_package(directory: Path) -> None:
    size = sum(p.stat().st_size for p in directory.iterdir())
    check_reader("package", load, directory, factor=max(8, 8 * size // 1024),
                 names=str(directory))


@fuzz_settings(4)
@given(manifest=mutations(SEED_MANIFEST, header=len(SEED_MANIFEST)))
def test_fuzz_manifest_bytes(manifest: bytes):
    check_package(write_package(manifest, SEED_WEIGHTS))


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@fuzz_settings(4)
@given(edits=st.dictionaries(st.sampled_from([*artifacts.REQUIRED_KEYS, "weights.file",
                                              "weights.sha256", "weights.bytes"]),
                             JSON, min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(artifacts.REQUIRED_KEYS), max_size=2))
def test_fuzz_manifest_fields(edits: dict[str, Any], drop: list[str]):
    """Generated structure: any JSON value in any manifest field, fields missing."""
    manifest = json.loads(SEED_MANIFEST)
    for key, value in edits.items():
        if key.startswith("weights.") and isinstance(manifest.get("weights"), dict):
            manifest["weights"][key.split(".")[1]] = value
        else:
            manifest[key] = value
    for key in drop:
        manifest.pop(key, None)
    check_package(write_package(json.dumps(manifest).encode(), SEED_WEIGHTS))


@fuzz_settings(4)
@given(weights=mutations(SEED_WEIGHTS, header=8 + HEADER_LENGTH),
       rehash=st.booleans())
def test_fuzz_weights(weights: bytes, rehash: bool):
    """Mutated weights: with the seed manifest (size/hash disagree) or with a manifest that
    matches them (the bytes reach the safetensors parser and load_state_dict)."""
    manifest = matching_manifest(weights) if rehash else SEED_MANIFEST
    check_package(write_package(manifest, weights))


DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "F8_E8M0",
          "F4", "C64", "ZZ"]


@st.composite
def safetensors_files(draw: st.DrawFn) -> bytes:
    """Generated safetensors files: the model's tensor names (or others) with any dtype,
    shape and offsets, a header length that may lie, and a short payload."""
    names = draw(st.lists(st.sampled_from([*build_model(0).state_dict(), "x", "__metadata__"]),
                          max_size=4, unique=True))
    header: dict[str, Any] = {}
    for name in names:
        begin = draw(st.integers(0, 64))
        header[name] = {"dtype": draw(st.sampled_from(DTYPES)),
                        "shape": draw(st.lists(st.integers(0, 2**40), max_size=4)),
                        "data_offsets": [begin, begin + draw(st.integers(0, 64))]}
    text = json.dumps(header).encode()
    length = draw(st.sampled_from([len(text), len(text) + 1, 0, 2**63, 2**32]))
    return struct.pack("<Q", length) + text + draw(st.binary(max_size=128))


@fuzz_settings(4)
@given(weights=safetensors_files())
def test_fuzz_safetensors_structure(weights: bytes):
    check_package(write_package(matching_manifest(weights), weights))
