"""The report directory: checked before any work starts, written atomically.

Invariants:

- :func:`prepare_report_dir` runs before the work (the suite, the audit, the comparison): a
  directory that cannot be created or written is a :class:`ReportError` at once, and so is
  one that already holds a report (``report.html``, ``summary.md``, ``results.json`` ...)
  unless ``force`` is set: a report never overwrites another run's files by accident.
- Every file is written with :mod:`mlprop.atomic` (temp file, fsync, rename): a failure
  while writing leaves the previous file or none, never a half-written ``report.html``.
- ``summary.md`` is also appended to ``$GITHUB_STEP_SUMMARY`` when that is set (GitHub
  Actions shows it on the job's page).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlprop.atomic import atomic_write_bytes
from mlprop.errors import MlpropError, WriteError

__all__ = ["REPORT_FILES", "ReportError", "append_step_summary", "prepare_report_dir",
           "write_report_files"]

REPORT_FILES = ("report.html", "summary.md", "results.json")
"""Files every mlprop report writes (a directory holding one is another run's report)."""


class ReportError(MlpropError, ValueError):
    """The report directory cannot be used (unwritable, or holds another run's report)."""


def prepare_report_dir(directory: str | os.PathLike[str], *, force: bool = False,
                       extra_names: Iterable[str] = ()) -> Path:
    """Create ``directory`` if needed and check it can take a report; return it resolved.

    Raises :class:`ReportError` when it is a file, cannot be created or written, or holds
    files of a previous report (``REPORT_FILES`` and ``extra_names``) and ``force`` is off.
    """
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise ReportError(f"report directory {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"report directory {path} cannot be created: "
                          f"{exc.strerror or exc}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".mlprop-probe-")
    except OSError as exc:
        raise ReportError(f"report directory {path} is not writable: "
                          f"{exc.strerror or exc}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    existing = sorted(name for name in (*REPORT_FILES, *extra_names)
                      if (path / name).exists())
    if existing and not force:
        raise ReportError(f"report directory {path} already holds a report "
                          f"({', '.join(existing)}); choose another directory or pass "
                          "--force to overwrite it")
    return path.resolve()


def write_report_files(directory: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write ``files`` (name -> text or bytes) atomically into ``directory``.

    ``report.html`` goes last, so a reader that finds it finds the rest of the report too.
    Raises :class:`~mlprop.errors.WriteError` naming the file on failure.
    """
    order = sorted(files, key=lambda name: name == "report.html")
    written = []
    for name in order:
        content = files[name]
        data = content.encode("utf-8") if isinstance(content, str) else content
        written.append(atomic_write_bytes(directory / name, data))
    return written


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when set; return its path.

    A summary file that cannot be written is reported as a :class:`WriteError`."""
    environ = os.environ if environ is None else environ
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        raise WriteError(target, exc.strerror or str(exc), exc.errno) from exc
    return Path(target)
