"""Versioned model packages: safetensors weights + a JSON manifest with their SHA-256.

A package is a directory holding ``model.safetensors`` and ``manifest.json``. It is built in
a temporary sibling directory, ``fsync``-ed, and swapped into place atomically
(:func:`mlprop.atomic.replace_directory`), so a reader never sees a half-written package,
even after a ``SIGKILL``; a write that fails (disk full, no permission) raises
:class:`~mlprop.errors.WriteError` and leaves the previous package as it was.

Loading checks sizes before reading (the weights file's size against the manifest, a
manifest over :data:`MAX_MANIFEST_BYTES` is refused), recomputes the SHA-256, and refuses a
tampered, truncated or incomplete package with :class:`PackageIntegrityError` naming the file
and the field. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from mlprop import atomic
from mlprop.errors import PackageIntegrityError, WriteError

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
#: Largest manifest accepted: JSON parses into objects many times its text's size.
MAX_MANIFEST_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
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
    """Create ``path`` in the staging directory with ``data``, fsync-ed (WriteError on OSError)."""
    atomic.write_new_file(path, data)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_dead_staging(directory: Path) -> None:
    """Delete the temp directories of ``directory`` that killed writers on this host left.

    Staging directories are named ``.<name>.tmp-<pid>-<hex>`` and retired copies (from the
    two-rename fallback) ``.<name>.old-<pid>-<hex>``; one whose process no longer exists can
    never be completed or cleaned by it. Retired copies are removed only while the package
    itself is in place. A live writer's directory, or an unparsable name, is kept.
    """
    kinds = ["tmp", "old"] if directory.is_dir() else ["tmp"]
    for kind in kinds:
        prefix = f".{directory.name}.{kind}-"
        for candidate in directory.parent.glob(f"{prefix}*"):
            pid = candidate.name[len(prefix):].partition("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(candidate, ignore_errors=True)


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
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise atomic.write_error(directory, exc) from exc
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
    staging = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        atomic.recover_directory(directory)  # a crash inside a non-atomic swap elsewhere
        _remove_dead_staging(directory)
        staging.mkdir()
    except OSError as exc:
        raise atomic.write_error(directory, exc) from exc
    try:
        _write_synced(staging / WEIGHTS_FILE, weights)
        _write_synced(staging / MANIFEST_FILE,
                      json.dumps(manifest, indent=2, sort_keys=True).encode())
        atomic.fsync_directory(staging)
        retired = atomic.replace_directory(staging, directory)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    except WriteError:
        raise
    except OSError as exc:
        raise atomic.write_error(directory, exc) from exc
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
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_MANIFEST_BYTES:  # checked before reading or parsing it
                raise PackageIntegrityError(path, f"manifest is {size} bytes, over the "
                                                  f"{MAX_MANIFEST_BYTES}-byte limit")
            text = handle.read(MAX_MANIFEST_BYTES + 1).decode("utf-8")
        manifest = json.loads(text)
    except FileNotFoundError:
        raise PackageIntegrityError(path, "manifest is missing (incomplete package)") from None
    except OSError as exc:  # a directory in its place, no permission, ...
        raise PackageIntegrityError(path, f"manifest is unreadable ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageIntegrityError(path, f"manifest is not valid JSON ({exc})") from None
    except RecursionError:  # json's C parser on deeply nested arrays/objects
        raise PackageIntegrityError(path, "manifest is not valid JSON (nested too "
                                          "deeply)") from None
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
    if type(weights["bytes"]) is not int or weights["bytes"] < 0:
        raise PackageIntegrityError(path, "manifest 'weights.bytes' must be a non-negative "
                                          f"integer, got {weights['bytes']!r}")
    if not isinstance(weights["sha256"], str) or not _SHA256.fullmatch(weights["sha256"]):
        raise PackageIntegrityError(path, "manifest 'weights.sha256' must be 64 lowercase hex "
                                          f"digits, got {weights['sha256']!r}")
    return manifest


def load_state(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified weights and manifest of a package.

    The file's size is compared with the manifest's before a byte is read (so memory stays
    at the file's size), then the SHA-256; only verified bytes reach the safetensors parser.
    """
    manifest = read_manifest(directory)
    path = Path(directory) / WEIGHTS_FILE
    expected = manifest["weights"]
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != expected["bytes"]:
                raise PackageIntegrityError(path, f"size is {size} bytes, manifest says "
                                                  f"{expected['bytes']} (truncated or replaced)")
            data = handle.read(size + 1)
    except FileNotFoundError:
        raise PackageIntegrityError(path, "weights file is missing") from None
    except OSError as exc:
        raise PackageIntegrityError(path, f"weights file is unreadable ({exc.strerror})") from None
    if len(data) != expected["bytes"]:  # the file changed between fstat and read
        raise PackageIntegrityError(path, f"size is {len(data)} bytes, manifest says "
                                          f"{expected['bytes']} (truncated or replaced)")
    digest = sha256_bytes(data)
    if digest != expected["sha256"]:
        raise PackageIntegrityError(path, f"SHA-256 is {digest}, manifest says "
                                          f"{expected['sha256']} (tampered)")
    try:
        state = safetensors.torch.load(data)
    except safetensors.SafetensorError as exc:  # bad header length, JSON, offsets, shape
        raise PackageIntegrityError(path, f"not a valid safetensors file ({exc})") from None
    except KeyError as exc:  # a dtype safetensors knows and torch lacks (F4, F8_E8M0, ...)
        raise PackageIntegrityError(path, f"not a valid safetensors file (tensor dtype "
                                          f"{exc} is not supported by torch)") from None
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
