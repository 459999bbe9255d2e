"""One mutation audit per project at a time.

Two ``mlprop audit`` runs on one project share ``mutants/`` (mutmut's copies, its
``.meta`` results and ``mutmut-stats.json``, mlprop's state and ML-mutant cache); run
together they would mutate and read the same files. :func:`audit_lock` holds
``mutants/mlprop-audit.lock`` (``filelock``, an ``flock`` the kernel drops when its holder
dies, so a killed audit never leaves a stale lock) around the whole run.

The second audit *waits* (saying so on stderr) rather than failing: the audit is
incremental, so once the first has finished the second finds ``mutants/`` up to date and
returns the same verdict in seconds; both commands end with a valid result, and CI jobs
that happen to overlap (a push and a nightly run) both pass or fail on the merits.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from mlprop.atomic import write_error

__all__ = ["LOCK_FILE", "audit_lock"]

LOCK_FILE = "mlprop-audit.lock"
"""The lock's name inside the project's ``mutants/`` directory."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def audit_lock(root: str | Path, *, progress: Callable[[str], None] = _stderr
               ) -> Iterator[Path]:
    """Hold the audit lock of the project at ``root`` (waiting while another process
    holds it); yields the lock file's path. A ``mutants/`` that cannot be created is a
    :class:`~mlprop.errors.WriteError` naming it."""
    directory = Path(root) / "mutants"
    path = directory / LOCK_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            progress(f"mlprop audit: another audit of {Path(root)} is running (it holds "
                     f"{path}); waiting for it to finish")
            lock.acquire()
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        yield path
    finally:
        lock.release()
