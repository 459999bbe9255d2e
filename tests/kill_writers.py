"""Test helper (run as a script, never imported by the library): kill writers with SIGKILL.

``python tests/kill_writers.py matrix WRITER DIR`` runs ``WRITER`` (``save``: a model
package over a previous one; ``save-two-renames``: the same without ``renameat2``;
``cache``: the trained-model cache with a stub trainer) once to count its file-system
events (mkdir, write, fsync, rename, exchange, rmtree, train), then, for each event k,
forks a child that runs the writer and ``SIGKILL``s itself just before event k (halfway
through the data, for a write), plus a few children killed after a random delay. After
each kill the parent records what is at the package path (``old``, ``new``, ``missing`` or
``corrupt: ...``) and the temp leftovers, then runs the writer to the end and records that
too. Prints the results as JSON.

``python tests/kill_writers.py cache DIR COUNT_FILE SLEEP`` runs the cache writer once
(stub trainer: appends a line to COUNT_FILE and sleeps SLEEP seconds) and prints the path.

The kill hook is this file's wrapping of ``os`` functions: the library reads no environment
variable for it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

torch.set_num_threads(1)  # forking after multi-threaded OpenMP work can deadlock

from mlprop import atomic  # noqa: E402
from mlprop.digits import artifacts, pipeline  # noqa: E402
from mlprop.digits.evaluate import evaluate  # noqa: E402
from mlprop.digits.model import build_model  # noqa: E402
from mlprop.errors import PackageIntegrityError  # noqa: E402

EVENTS: list[str] = []
KILL_AT: list[int] = [0]  # 1-based event number to die at; 0: never


def _hooked(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        EVENTS.append(name)
        if len(EVENTS) == KILL_AT[0]:
            if name == "write":  # die halfway through the data
                fd, data = args
                real(fd, bytes(memoryview(data).cast("B")[: len(data) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper


def install_hooks() -> None:
    os.write = _hooked("write", os.write)
    os.fsync = _hooked("fsync", os.fsync)
    os.replace = _hooked("rename", os.replace)
    os.mkdir = _hooked("mkdir", os.mkdir)
    shutil.rmtree = _hooked("rmtree", shutil.rmtree)
    atomic._rename_exchange = _hooked("exchange", atomic._rename_exchange)


def stub_trainer(count_file: Path | None, sleep: float) -> None:
    def fake_train(splits: Any, config: Any = pipeline.DEFAULT_CONFIG,
                   on_epoch: Any = None) -> Any:
        EVENTS.append("train")
        if len(EVENTS) == KILL_AT[0]:
            os.kill(os.getpid(), signal.SIGKILL)
        if count_file is not None:
            with open(count_file, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        time.sleep(sleep)
        labels = splits.test.labels
        return build_model(7), evaluate(labels, labels, 10), []

    pipeline.train_and_evaluate = fake_train


def save(directory: Path, seed: int) -> Path:
    return artifacts.save_package(directory, build_model(seed), architecture="DigitCNN",
                                  metrics={}, schema={}, preprocessing={}, seed=seed)


def state(path: Path, seeds: dict[int, str]) -> str:
    """What a reader finds at ``path`` now."""
    if not path.exists():
        return "missing"
    try:
        _, manifest = artifacts.load_package(path, pipeline.model_dimensions)
    except PackageIntegrityError as exc:
        return f"corrupt: {exc}"
    return seeds.get(manifest["seed"], f"seed {manifest['seed']}")


def leftovers(directory: Path, keep: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir()
                  if p != keep and not p.name.endswith(".lock"))


def run_forked(action: Callable[[], None], kill_at: int, delay: float | None = None) -> int:
    """Run ``action`` in a forked child dying at event ``kill_at`` (or after ``delay`` s);
    return the child's wait status signal (9 when killed) or its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            EVENTS.clear()
            KILL_AT[0] = kill_at
            action()
        except BaseException as exc:  # report in the parent, never run its code here
            print(f"child failed: {exc!r}", file=sys.stderr)
            code = 3
        os._exit(code)
    if delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def count_events(action: Callable[[], None]) -> list[str]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        EVENTS.clear()
        KILL_AT[0] = 0
        action()
        os.write(write, json.dumps(EVENTS).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        events = json.loads(pipe.read() or b"[]")
    os.waitpid(pid, 0)
    return events


def matrix(writer: str, root: Path, random_kills: int = 4) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    if writer == "save-two-renames":  # the fallback where renameat2 is unavailable
        atomic._rename_exchange = lambda first, second: False
        writer = "save"
    if writer == "save":
        target = root / "pkg"
        seeds = {1: "old", 2: "new"}

        def reset() -> None:
            if target.exists():
                shutil.rmtree(target)
            for extra in root.iterdir():
                shutil.rmtree(extra, ignore_errors=True)
            save(target, 1)

        def action() -> None:
            save(target, 2)
    elif writer == "cache":
        os.environ["MLPROP_CACHE_DIR"] = str(root / "cache")
        stub_trainer(None, 0.0)
        pipeline.reference_splits()  # sklearn's data loaded before any fork
        target = pipeline.cache_dir() / \
            f"digits-{pipeline._cache_key(pipeline.DEFAULT_CONFIG, pipeline.reference_splits())}"
        seeds = {pipeline.DEFAULT_CONFIG.seed: "new"}

        def reset() -> None:
            shutil.rmtree(root / "cache", ignore_errors=True)

        def action() -> None:
            pipeline.reference_package()
    else:
        raise SystemExit(f"unknown writer {writer!r}")
    install_hooks()
    reset()
    events = count_events(action)
    rows = []
    rng = random.Random(18)
    kills: list[tuple[str, int, float | None]] = [
        (f"before {name} #{k}" if name != "write" else f"mid write #{k}", k, None)
        for k, name in enumerate(events, start=1)]
    kills += [(f"random delay {d * 1000:.1f} ms", 0, d)
              for d in (rng.uniform(0.0, 0.01) for _ in range(random_kills))]
    for label, k, delay in kills:
        reset()
        status = run_forked(action, k, delay)
        after_kill = state(target, seeds)
        left = leftovers(target.parent, target)
        rerun = run_forked(action, 0)
        rows.append({"kill": label, "signal": status, "after_kill": after_kill,
                     "leftovers": left, "rerun_exit": rerun,
                     "after_rerun": state(target, seeds),
                     "leftovers_after_rerun": leftovers(target.parent, target)})
    return {"writer": writer, "events": events, "rows": rows}


def main(argv: list[str]) -> None:
    if argv[0] == "matrix":
        print(json.dumps(matrix(argv[1], Path(argv[2]))))
    elif argv[0] == "cache":
        os.environ["MLPROP_CACHE_DIR"] = argv[1]
        stub_trainer(Path(argv[2]), float(argv[3]))
        path = pipeline.reference_package()
        artifacts.load_package(path, pipeline.model_dimensions)
        print(path)
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
