"""Revisions: resolve commits and check them out as temporary ``git worktree`` s that are
always removed again (the user's own work tree is never touched)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from mlprop.errors import MlpropError

# ---------------------------------------------------------------------------------------
# Revisions


class CompareError(MlpropError):
    """A comparison that cannot run (bad revision, not a repository, a failed run)."""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout}")
    return done.stdout.strip()


def repository_root(directory: Path) -> Path:
    try:
        return Path(git(directory, "rev-parse", "--show-toplevel"))
    except CompareError:
        raise CompareError(f"{directory} is not inside a git repository") from None


def resolve_revision(repo: Path, revision: str) -> str:
    """The full commit hash of ``revision`` (raises :class:`CompareError` naming it)."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except CompareError:
        raise CompareError(f"unknown revision {revision!r} in {repo}") from None


@contextlib.contextmanager
def worktrees(repo: Path, commits: Mapping[str, str]) -> Iterator[dict[str, Path]]:
    """Check out each ``label: commit`` as a detached ``git worktree`` in a temporary
    directory; removes them (and prunes git's records) afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="mlprop-bench-"))
    made: dict[str, Path] = {}
    try:
        for label, commit in commits.items():
            path = parent / label
            git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
            made[label] = path
        yield made
    finally:
        for path in made.values():
            with contextlib.suppress(CompareError):
                git(repo, "worktree", "remove", "--force", str(path))
        with contextlib.suppress(CompareError):
            git(repo, "worktree", "prune")
        shutil.rmtree(parent, ignore_errors=True)


