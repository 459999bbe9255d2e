"""Where a run happened: library versions and the git commit (for reports and MLflow)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["git_commit", "versions"]

PACKAGES = ("mlprop", "torch", "hypothesis", "numpy", "pytest")


def versions() -> dict[str, str]:
    """Python's and the installed versions of mlprop and its main dependencies (read from
    package metadata: nothing is imported)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit(directory: Path | None = None) -> str | None:
    """The commit checked out in ``directory`` (``+dirty`` when the tree has changes), or
    None outside a git repository."""
    cwd = directory or Path.cwd()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = status.returncode == 0 and bool(status.stdout.strip())
    return commit.stdout.strip() + ("+dirty" if dirty else "")
