"""Interrupted writers: SIGKILL at every file-system step, a full disk, no permission.

Invariants checked:

- ``mlprop.atomic`` writes, model packages (``artifacts.save_package``) and the
  trained-model cache (``pipeline.reference_package``) leave the previous content intact
  whatever step a ``SIGKILL`` interrupts, and a rerun succeeds and cleans up.
- ``ENOSPC`` / ``EACCES`` / ``EROFS`` become a :class:`~mlprop.errors.WriteError` naming
  the path, with no temp file left behind.
- Two processes building the same cached model at once train it once and both load it.

The kill matrix runs in one subprocess (``tests/kill_writers.py``) that forks a child per
kill point; the hook that kills at a given step lives in that helper, not in the library.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mlprop import atomic
from mlprop.digits import artifacts, pipeline
from mlprop.digits.model import build_model
from mlprop.errors import MlpropError, WriteError

HELPER = Path(__file__).with_name("kill_writers.py")


def run_helper(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HELPER), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


# --------------------------------------------------------------------------- SIGKILL


@pytest.mark.parametrize("writer", ["save", "save-two-renames", "cache"])
def test_sigkill_at_every_step_leaves_a_loadable_package(tmp_path: Path, writer: str):
    done = run_helper("matrix", writer, str(tmp_path / "work"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    events = result["events"]
    assert {"write", "fsync", "rename" if writer == "cache" else "exchange"} <= set(events)
    if writer == "cache":
        assert "train" in events
    rows = result["rows"]
    assert len(rows) == len(events) + 4
    allowed = {"save": {"old", "new"}, "save-two-renames": {"old", "new"},
               "cache": {"missing", "new"}}[writer]
    for row in rows:
        if not row["kill"].startswith("random"):
            assert row["signal"] == 9, row  # the child really died at that step
        state = row["after_kill"]
        if writer == "save-two-renames" and state == "missing":
            # the one window of the non-atomic fallback: old moved aside, new not yet in;
            # the retired copy is beside it and the next save puts it back first
            # (a random-delay kill can land in it too: that is timing, not a bug)
            assert row["kill"] == f"before rename #{events.index('rename') + 2}" or row[
                "kill"].startswith("random"), row
            assert any(".old-" in name for name in row["leftovers"]), row
        else:
            assert state in allowed, row
        assert row["rerun_exit"] == 0, row
        assert row["after_rerun"] == "new", row
        assert row["leftovers_after_rerun"] == [], row


def test_two_processes_building_the_cache_train_once(tmp_path: Path):
    cache, count = tmp_path / "cache", tmp_path / "trained.txt"
    command = [sys.executable, str(HELPER), "cache", str(cache), str(count), "1.0"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    assert len(count.read_text().splitlines()) == 1  # one trainer ran, the other waited
    path = Path(paths.pop())
    artifacts.load_package(path, pipeline.model_dimensions)
    assert sorted(p.name for p in cache.iterdir()) == sorted([path.name, f"{path.name}.lock"])


# --------------------------------------------------------------------------- atomic writes


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_and_keeps_the_mode(tmp_path: Path):
    path = tmp_path / "state.json"
    assert atomic.atomic_write_text(path, "one") == path
    path.chmod(0o600)
    atomic.atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o600
    assert temp_files(tmp_path) == []


def enospc(*args: object, **kwargs: object) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_is_a_write_error_and_keeps_the_old_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "state.json"
    path.write_text("old")
    monkeypatch.setattr(os, "write", enospc)
    with pytest.raises(WriteError) as info:
        atomic.atomic_write_text(path, "new" * 1000)
    monkeypatch.undo()
    assert info.value.path == str(path) and info.value.errno == errno.ENOSPC
    assert str(info.value) == f"{path}: cannot write: No space left on device (ENOSPC)"
    assert isinstance(info.value, MlpropError) and isinstance(info.value, OSError)
    assert path.read_text() == "old"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_unwritable_directory_is_a_write_error(tmp_path: Path, monkeypatch, code: int):
    """Root ignores permission bits, so EACCES/EROFS are simulated where the temp file
    is created."""
    def refuse(*args: object, **kwargs: object) -> object:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(WriteError, match=errno.errorcode[code]) as info:
        atomic.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert info.value.path == str(tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root bypasses permission bits (the EACCES test above simulates it)")
def test_read_only_directory_for_real(tmp_path: Path):
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(WriteError, match="EACCES"):
            atomic.atomic_write_bytes(directory / "x.bin", b"data")
        with pytest.raises(WriteError, match="EACCES"):
            save(directory / "pkg")
    finally:
        directory.chmod(0o700)
    assert list(directory.iterdir()) == []


def test_interrupt_while_writing_removes_the_temp_file(tmp_path: Path, monkeypatch):
    def interrupted(fd: int, data: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_bytes(tmp_path / "x.bin", b"data")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- packages


def save(directory: Path, seed: int = 1) -> Path:
    return artifacts.save_package(directory, build_model(seed), architecture="DigitCNN",
                                  metrics={}, schema={}, preprocessing={}, seed=seed)


def test_package_save_on_a_full_disk_keeps_the_previous_package(tmp_path: Path, monkeypatch):
    out = save(tmp_path / "pkg", seed=1)
    monkeypatch.setattr(os, "write", enospc)
    with pytest.raises(WriteError, match="ENOSPC") as info:
        save(out, seed=2)
    monkeypatch.undo()
    assert info.value.path.startswith(str(tmp_path / ".pkg.tmp-"))  # names the file
    assert artifacts.read_manifest(out)["seed"] == 1
    assert os.listdir(tmp_path) == ["pkg"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_package_save_without_permission_is_a_write_error(tmp_path: Path, monkeypatch,
                                                          code: int):
    real_mkdir = os.mkdir

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        if Path(str(path)).name.startswith(".pkg.tmp-"):
            raise OSError(code, os.strerror(code), str(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(WriteError, match=errno.errorcode[code]) as info:
        save(tmp_path / "pkg")
    assert info.value.path == str(tmp_path / "pkg")
    assert os.listdir(tmp_path) == []


def test_a_killed_writers_staging_directory_is_removed_by_the_next_save(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".pkg.tmp-{dead}-0123abcd"
    stale.mkdir()
    # a live writer's: kept. The writer is a sleeper of this test's own, never a process
    # the test does not own: a mutant of the liveness check that sends a real signal
    # (``os.kill(pid, 1)``) once hung up mutmut itself through ``os.getppid()``
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        alive = tmp_path / f".pkg.tmp-{writer.pid}-0123abcd"
        alive.mkdir()
        save(tmp_path / "pkg")
        assert sorted(os.listdir(tmp_path)) == sorted(["pkg", alive.name])
        assert writer.poll() is None, "the staging clean-up signalled a live writer"
    finally:
        writer.kill()
        writer.wait()
