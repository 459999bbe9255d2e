"""Versioned model packages: safetensors weights + a JSON manifest with their SHA-256.

A package is a directory holding ``model.safetensors`` and ``manifest.json``. It is built in
a temporary sibling directory and moved into place with a rename, so a reader never sees a
half-written package. Loading recomputes the SHA-256 and refuses a tampered, truncated or
incomplete package with :class:`PackageIntegrityError`. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from mlprop.errors import PackageIntegrityError

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
REQUIRED_KEYS = ("format_version", "created", "weights", "architecture", "metrics", "schema",
                 "preprocessing", "seed", "versions")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    from mlprop import __version__

    return {"mlprop": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": getattr(safetensors, "__version__", "unknown"),
            "python": platform.python_version()}


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def save_package(directory: str | Path, model: nn.Module, *, architecture: str,
                 metrics: Mapping[str, Any], schema: Mapping[str, Any],
                 preprocessing: Mapping[str, Any], seed: int,
                 extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a package at ``directory`` atomically; returns the directory.

    An existing package at ``directory`` is replaced only once the new one is complete.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise PackageIntegrityError(directory, "exists and is not a package directory; "
                                               "refusing to replace it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in
             model.state_dict().items()}
    weights = safetensors.torch.save(state)
    manifest = {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_bytes(weights), "bytes": len(weights)},
        "architecture": architecture,
        "metrics": dict(metrics),
        "schema": dict(schema),
        "preprocessing": dict(preprocessing),
        "seed": seed,
        "versions": library_versions(),
        **(dict(extra) if extra else {}),
    }
    staging = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        _write_synced(staging / WEIGHTS_FILE, weights)
        _write_synced(staging / MANIFEST_FILE,
                      json.dumps(manifest, indent=2, sort_keys=True).encode())
        retired = None
        if directory.exists():
            retired = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex}"
            os.replace(directory, retired)
        try:
            os.replace(staging, directory)
        except BaseException:
            if retired is not None:  # put the previous package back
                os.replace(retired, directory)
            raise
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Parse and check the manifest of the package at ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PackageIntegrityError(directory, "no such package directory")
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageIntegrityError(path, "manifest is missing (incomplete package)") from None
    except OSError as exc:  # a directory in its place, no permission, ...
        raise PackageIntegrityError(path, f"manifest is unreadable ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageIntegrityError(path, f"manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise PackageIntegrityError(path, "manifest is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise PackageIntegrityError(path, f"manifest lacks keys {missing}")
    if type(manifest["format_version"]) is not int or \
            manifest["format_version"] != FORMAT_VERSION:  # JSON true/1.0 == 1 in Python
        raise PackageIntegrityError(path, f"format_version {manifest['format_version']!r} is "
                                          f"not supported (expected {FORMAT_VERSION})")
    weights = manifest["weights"]
    if not isinstance(weights, dict) or not {"file", "sha256", "bytes"} <= set(weights):
        raise PackageIntegrityError(path, "manifest 'weights' needs file, sha256 and bytes")
    if weights["file"] != WEIGHTS_FILE:
        raise PackageIntegrityError(path, f"weights file must be {WEIGHTS_FILE!r}, "
                                          f"got {weights['file']!r}")
    return manifest


def load_state(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified weights and manifest of a package (SHA-256 and size checked first)."""
    manifest = read_manifest(directory)
    path = Path(directory) / WEIGHTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PackageIntegrityError(path, "weights file is missing") from None
    except OSError as exc:
        raise PackageIntegrityError(path, f"weights file is unreadable ({exc.strerror})") from None
    expected = manifest["weights"]
    if len(data) != expected["bytes"]:
        raise PackageIntegrityError(path, f"size is {len(data)} bytes, manifest says "
                                          f"{expected['bytes']} (truncated or replaced)")
    digest = sha256_bytes(data)
    if digest != expected["sha256"]:
        raise PackageIntegrityError(path, f"SHA-256 is {digest}, manifest says "
                                          f"{expected['sha256']} (tampered)")
    try:
        state = safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise PackageIntegrityError(path, f"not a valid safetensors file ({exc})") from None
    return state, manifest


def load_package(directory: str | Path,
                 build: Callable[[], nn.Module]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model with ``build()`` and load the verified weights into it (eval mode)."""
    state, manifest = load_state(directory)
    model = build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PackageIntegrityError(Path(directory) / WEIGHTS_FILE,
                                    f"weights do not fit {manifest['architecture']}: "
                                    f"{str(exc).splitlines()[0]}") from None
    model.eval()
    return model, manifest
