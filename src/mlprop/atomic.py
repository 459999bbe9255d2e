"""Crash-safe writes: a reader sees the old content or the complete new one, never a mix.

Invariants of every writer here:

- The new content goes to a temp file (or directory) *in the same directory* as the
  target, is flushed and ``fsync``-ed, and only then renamed over the target with
  ``os.replace`` (atomic on POSIX); the directory is ``fsync``-ed afterwards so the rename
  itself survives a power cut.
- On any failure (an exception, ``KeyboardInterrupt``) the temp file is removed and the
  target keeps its previous content. A ``SIGKILL`` can leave a temp file (named
  ``.<name>.<pid>-<random>.tmp``) but never a damaged target; the next successful write of
  the same path removes the temp files of writers that no longer run.
- An ``OSError`` (``ENOSPC``, ``EACCES``, ``EROFS``, ...) is re-raised as
  :class:`~mlprop.errors.WriteError` naming the target path and the reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import tempfile
import uuid
from pathlib import Path

from mlprop.errors import WriteError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_directory",
    "recover_directory",
    "replace_directory",
    "write_error",
    "write_new_file",
]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def write_error(path: str | os.PathLike[str], exc: OSError) -> WriteError:
    """``exc`` as a :class:`WriteError` naming ``path`` and the errno (``ENOSPC``...)."""
    if isinstance(exc, WriteError):
        return exc
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return WriteError(path, f"{reason} ({name})" if name else reason, exc.errno)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Persist renames in ``directory``; best effort (not every platform can open one)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written (a short write is not an error)."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _target_mode(path: Path) -> int:
    """Permissions for the new file: the replaced file's, else rw-r--r--."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o644


def write_new_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Create ``path`` (which must not exist) with ``data``, ``fsync``-ed before returning.

    For files inside a private staging directory, where no reader can look yet. On failure
    the partial file is removed and an ``OSError`` becomes a :class:`WriteError`.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (see the module docstring); return it.

    The new file keeps the permissions of the file it replaces (else ``0o644``).
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-",
                                        suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp_name, _target_mode(path))
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise
    fsync_directory(path.parent)
    _remove_dead_temps(path)
    return path


def _remove_dead_temps(path: Path) -> None:
    """Delete ``.<name>.<pid>-<random>.tmp`` files beside ``path`` whose writer is gone
    (killed mid-write); best effort, a live writer's file is kept."""
    prefix = f".{path.name}."
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid = name[len(prefix):].partition("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    entry.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; not a pid
        return True
    return True


def atomic_write_text(path: str | os.PathLike[str], text: str, *,
                      encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded with ``encoding``."""
    return atomic_write_bytes(path, text.encode(encoding))


def _rename_exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``.

    Returns False when the platform or file system cannot (no ``renameat2`` in libc,
    ``ENOSYS``, ``EINVAL``); raises ``OSError`` for a real failure.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                 _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def replace_directory(new: str | os.PathLike[str],
                      target: str | os.PathLike[str]) -> Path | None:
    """Move the complete directory ``new`` to ``target``, replacing a directory there.

    Returns the path that now holds ``target``'s previous content (the caller deletes it),
    or None when there was none. On Linux the swap is one atomic
    ``renameat2(RENAME_EXCHANGE)``: at every instant ``target`` is the old or the new
    directory. Elsewhere it is two renames (old aside, new in); a failure of the second
    puts the old one back, but a crash between them leaves ``target`` missing and the old
    content at ``.<name>.old-<pid>-<hex>`` beside it (see :func:`recover_directory`).
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        fsync_directory(target.parent)
        return None
    if _rename_exchange(new, target):
        fsync_directory(target.parent)
        return new
    retired = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex}"
    os.replace(target, retired)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(retired, target)  # put the previous content back
        raise
    fsync_directory(target.parent)
    return retired


def recover_directory(target: str | os.PathLike[str]) -> Path | None:
    """After a crash inside the two-rename fallback of :func:`replace_directory`: if
    ``target`` is missing and one retired copy lies beside it, move it back; return it."""
    target = Path(target)
    if target.exists():
        return None
    retired = sorted(target.parent.glob(f".{target.name}.old-*"))
    if len(retired) != 1 or not retired[0].is_dir():
        return None
    os.replace(retired[0], target)
    fsync_directory(target.parent)
    return target
