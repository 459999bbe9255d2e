"""The trained-package cache of a reference pipeline: where it lives, its key, build-or-load.

Invariants:

- the key covers everything training reads: the configuration, the train and val splits
  and the pipeline's source files (never the test split), so a change to any of them trains
  a new package instead of serving a stale one;
- however many processes ask for the same package at once, one trains and writes it under
  a file lock beside it (``<name>.lock``) while the others wait and then load it; the
  package is written atomically, so a process killed at any point leaves either no package
  or a complete one, and the lock dies with its holder;
- a package that fails verification (truncated, altered, half-written) counts as missing
  and is trained again, never served.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

from filelock import FileLock

from mlprop.atomic import write_error
from mlprop.errors import PackageIntegrityError
from mlprop.reference.splits import Splits


def cache_dir() -> Path:
    """``$MLPROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlprop``, else ``~/.cache/mlprop``."""
    if os.environ.get("MLPROP_CACHE_DIR"):
        return Path(os.environ["MLPROP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlprop"


def cache_key(config_digest: str, splits: Splits, sources: Iterable[ModuleType]) -> str:
    """20 hex digits of the SHA-256 of the config's digest, the train and val images and
    labels, and the bytes of every source file in ``sources``."""
    digest = hashlib.sha256(config_digest.encode())
    for part in (splits.train, splits.val):
        digest.update(part.images.tobytes())
        digest.update(part.labels.tobytes())
    for module in sources:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:20]


def verified(load: Callable[[], object]) -> bool:
    """Whether ``load()`` (a package reader) finds a complete, verified package."""
    try:
        load()
    except PackageIntegrityError:
        return False
    return True


def build_or_load(path: Path, cached: Callable[[Path], bool], build: Callable[[Path], object],
                  what: str) -> Path:
    """``path`` once a verified package is there: ``build(path)`` writes it first when
    ``cached(path)`` says it is missing or bad, announcing ``mlprop: training <what>`` on
    stderr. The check, the training and the write happen under ``<path>.lock``; a caller that
    waited for the lock loads the package the holder wrote instead of training again."""
    if cached(path):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path.parent, exc) from exc
    with FileLock(path.parent / f"{path.name}.lock"):
        if not cached(path):  # nobody else wrote it while this process waited
            print(f"mlprop: training {what} (cached at {path})", file=sys.stderr)
            build(path)
    return path
