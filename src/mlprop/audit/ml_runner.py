"""Run ML-fault mutants against the tests that cover their function.

One worker process (``python -m mlprop.audit.ml_runner SPEC``) imports pytest, torch and
the code under test once, with one torch thread (GNU OpenMP deadlocks in children forked
after a multi-threaded op), trains or loads the target's model once, and then forks one
child per mutant.

Mutants on the training path are the exception: a child forked after the parent trained
inherits the parent's in-memory model (a user's ``functools.cache`` around ``train()``), so
the mutated training code would never run and every such mutant would survive. A probe
child first records which functions of the mutated files run while the model is trained;
the mutants in those functions are forked before the parent trains, each trains with its
mutant and meets every test that uses the trained model
(:mod:`mlprop.audit.training_path`).

A child swaps the mutated function's code object into the live function (``fn.__code__ =
...``: every reference to the function sees it, including the target's fields), runs the
covering tests fastest first with ``-x`` and reports its verdict. The parent enforces a
wall-clock timeout per child.

Verdicts: ``killed`` (a test failed; the first failing test is recorded), ``survived``,
``timeout``, ``no tests`` (nothing covers the function), ``error`` (the mutant could not be
applied). The worker writes one JSON line per mutant to its protocol stream.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

RUNNER_ENV = "MUTANT_UNDER_TEST"  # the plugin: one torch thread and the `mutmut` profile


@dataclass
class MLResult:
    """The verdict on one ML mutant."""

    id: str
    status: str
    killed_by: str | None = None
    tests: int = 0
    seconds: float = 0.0
    detail: str = ""


@dataclass
class WorkItem:
    """What a child needs: the mutant, where to swap it in, and its tests."""

    id: str
    module: str
    function: str
    path: str
    source: str = field(repr=False)
    tests: list[str] = field(default_factory=list)
    timeout: float = 120.0
    mutmut_name: str = ""
    """A mutant of mutmut's (``pkg.mod.x_fn__mutmut_3``), run in ``mutants/`` by naming it
    in ``MUTANT_UNDER_TEST`` (its trampolines read it on every call) instead of swapping
    ``source`` in."""


# --------------------------------------------------------------------------- code swapping


def _find_code(code: types.CodeType, qualname: str) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_qualname == qualname:
                return const
            found = _find_code(const, qualname)
            if found is not None:
                return found
    return None


def live_function(module: types.ModuleType, qualname: str) -> types.FunctionType:
    """The function object behind ``module.<qualname>``, unwrapped from decorators."""
    owner: Any = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    value = vars(owner)[parts[-1]] if isinstance(owner, type) else getattr(owner, parts[-1])
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    while hasattr(value, "__wrapped__"):
        value = value.__wrapped__
    if not isinstance(value, types.FunctionType):
        raise TypeError(f"{module.__name__}.{qualname} is not a Python function "
                        f"({type(value).__name__})")
    return value


def swap_in(module: types.ModuleType, qualname: str, mutated_source: str, filename: str,
            ) -> None:
    """Make ``module.<qualname>`` run the code it has in ``mutated_source``."""
    compiled = compile(mutated_source, filename, "exec", dont_inherit=True)
    new_code = _find_code(compiled, qualname)
    if new_code is None:
        raise LookupError(f"no function {qualname} in the mutated source of {filename}")
    function = live_function(module, qualname)
    if len(new_code.co_freevars) != len(function.__code__.co_freevars):
        raise ValueError(f"{qualname}: the mutant changes the function's closure")
    function.__code__ = new_code


# --------------------------------------------------------------------------- the worker


class _Failures:
    """pytest plugin: remember the failing tests, in order."""

    def __init__(self) -> None:
        self.nodeids: list[str] = []

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed and report.nodeid not in self.nodeids:
            self.nodeids.append(report.nodeid)


def _pytest_args(tests: Sequence[str], extra: Sequence[str], *, stop: bool = True,
                 ) -> list[str]:
    return [*(["-x"] if stop else []), "-q", "--tb=no", "-p", "no:cacheprovider",
            "-p", "no:randomly", "--rootdir=.", *extra, *tests]


def _child(item: WorkItem, extra: Sequence[str], write_fd: int) -> None:
    """Run in the forked child: swap, test, report, exit (never returns)."""
    payload: dict[str, Any] = {"id": item.id}
    code = 1
    try:
        import importlib

        import pytest

        if item.mutmut_name:
            os.environ["MUTANT_UNDER_TEST"] = item.mutmut_name
        elif item.source:  # an empty source is a clean run (no mutant): run every test
            module = importlib.import_module(item.module)
            swap_in(module, item.function, item.source, str(Path(item.path).resolve()))
        collector = _Failures()
        mutated = bool(item.source or item.mutmut_name)
        exit_code = int(pytest.main(_pytest_args(item.tests, extra, stop=mutated),
                                    plugins=[collector]))
        payload.update(exit_code=exit_code, failed=collector.nodeids,
                       killed_by=collector.nodeids[0] if collector.nodeids else None)
        code = 0
    except BaseException as exc:
        payload.update(error=f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):
        os.write(write_fd, json.dumps(payload).encode())
    os._exit(code)


def _verdict(item: WorkItem, payload: dict[str, Any] | None, seconds: float) -> MLResult:
    if payload is None:
        return MLResult(item.id, "suspicious", tests=len(item.tests), seconds=seconds,
                        detail="the child died without a verdict")
    if "error" in payload:
        return MLResult(item.id, "error", tests=len(item.tests), seconds=seconds,
                        detail=payload["error"])
    exit_code = payload["exit_code"]
    if exit_code == 0:
        return MLResult(item.id, "survived", tests=len(item.tests), seconds=seconds)
    if exit_code in (1, 3):
        clean = not (item.source or item.mutmut_name)
        return MLResult(item.id, "killed", killed_by=payload.get("killed_by"),
                        tests=len(item.tests), seconds=seconds,
                        detail=" ".join(payload.get("failed", [])) if clean else "")
    return MLResult(item.id, "suspicious", tests=len(item.tests), seconds=seconds,
                    detail=f"pytest exit code {exit_code}")


def run_items(items: Sequence[WorkItem], *, max_children: int, extra: Sequence[str] = (),
              report: Callable[[MLResult], None]) -> None:
    """Fork a child per item, ``max_children`` at a time; ``report`` each verdict."""
    pending = list(items)
    running: dict[int, tuple[WorkItem, float, int]] = {}  # pid -> (item, start, read fd)
    while pending or running:
        while pending and len(running) < max_children:
            item = pending.pop(0)
            if not item.tests:
                report(MLResult(item.id, "no tests"))
                continue
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(item, extra, write_fd)
            os.close(write_fd)
            running[pid] = (item, time.monotonic(), read_fd)
        if not running:
            continue
        pid, _ = os.waitpid(-1, os.WNOHANG)
        now = time.monotonic()
        if pid == 0:
            for child, (item, start, read_fd) in list(running.items()):
                if now - start > item.timeout:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    os.close(read_fd)
                    del running[child]
                    report(MLResult(item.id, "timeout", tests=len(item.tests),
                                    seconds=now - start,
                                    detail=f"no verdict within {item.timeout:.0f} s"))
            time.sleep(0.02)
            continue
        if pid not in running:
            continue
        item, start, read_fd = running.pop(pid)
        data = b""
        while select.select([read_fd], [], [], 0)[0]:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            data += chunk
        os.close(read_fd)
        try:
            payload = json.loads(data) if data else None
        except json.JSONDecodeError:
            payload = None
        report(_verdict(item, payload, now - start))


def _on_training_path(items: list[WorkItem], target: Any, coverage: dict[str, Any],
                      pytest_args: Sequence[str]) -> tuple[list[WorkItem], list[WorkItem]]:
    """Split ``items`` into those on the training path of ``target``'s model (tests and
    timeout extended: see :mod:`mlprop.audit.training_path`) and the rest."""
    from mlprop.audit import training_path as tp

    files = {os.path.realpath(item.path) for item in items}
    started = time.monotonic()
    called = tp.called_functions(target.trained_model, files)
    training = time.monotonic() - started  # each training-path child pays it again
    on_path, rest = tp.split_by_training_path(items, called)
    if not on_path:
        return [], rest
    durations = coverage.get("durations", {})
    known = sorted({*durations, *(t for item in items for t in item.tests)})
    using = tp.tests_using_the_model(target, sorted({t.split("::")[0] for t in known}),
                                     pytest_args)
    model_keys = [key for key in (tp.function_key(target.trained_model),
                                  tp.function_key(target.predict)) if key]
    extended = []
    for item in on_path:
        tests = tp.tests_for_training_path(
            tp.mutmut_key(item.module, item.function), item.tests, model_keys=model_keys,
            tests_by_key=coverage.get("tests_by_key", {}),
            callers=coverage.get("callers", {}), durations=durations,
            using_the_model=using)
        added = sum(durations.get(test, 0.0) for test in set(tests) - set(item.tests))
        extended.append(replace(item, tests=tests,
                                timeout=item.timeout + 2 * training + 10 * added))
    return extended, rest


def worker_main(spec_path: str) -> int:
    """Entry point of the worker process; see the module docstring."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    root = Path(spec["root"]).resolve()
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # pytest's output must not mix with the protocol
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as we do
    os.chdir(root)
    for entry in reversed(spec.get("sys_path", [])):
        sys.path.insert(0, str(root / entry))
    os.environ.update(spec.get("env", {}))

    def send(kind: str, **data: Any) -> None:
        protocol.write(json.dumps({"kind": kind, **data}) + "\n")

    try:
        import importlib

        import pytest
        import torch

        torch.set_num_threads(1)
        for name in sorted({item["module"] for item in spec["items"] if item["module"]}):
            module = importlib.import_module(name)
            where = Path(module.__file__).resolve()
            if root not in where.parents:
                send("fatal", message=f"{name} was imported from {where}, not from {root}")
                return 2
        items = [WorkItem(**item) for item in spec["items"]]
        trained = None
        training_path: list[WorkItem] = []
        if spec.get("warm_up"):
            tests = sorted({t.split("::")[0] for item in items for t in item.tests})
            pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir=.",
                         *spec.get("pytest_args", []), *tests])
            if spec.get("prepare"):  # train or load the target's model once, before forking
                from mlprop.target import load_target

                target = load_target(spec["prepare"])
                trained = target.trained_model
                if trained is not None:  # a target without one yet: nothing to warm
                    training_path, items = _on_training_path(
                        items, target, spec.get("coverage", {}),
                        spec.get("pytest_args", []))
        if spec.get("only_training_path"):  # the others were judged already
            items = []
    except BaseException as exc:
        send("fatal", message=f"worker set-up failed: {type(exc).__name__}: {exc}")
        return 2
    send("ready", training_path=[item.id for item in training_path])

    def run(batch: list[WorkItem]) -> None:
        run_items(batch, max_children=max(1, int(spec.get("max_children", 1))),
                  extra=spec.get("pytest_args", []),
                  report=lambda result: send("result", **asdict(result)))

    run(training_path)  # forked untrained: each child trains with its mutant
    if trained is not None and items:
        try:
            trained()
        except BaseException as exc:
            send("fatal", message=f"training the target's model failed: "
                                  f"{type(exc).__name__}: {exc}")
            return 2
    run(items)
    send("done")
    return 0


def run_worker(spec: dict[str, Any], spec_path: Path, *,
               on_result: Callable[[MLResult], None] | None = None,
               python: str = sys.executable, env: dict[str, str] | None = None,
               ) -> list[MLResult]:
    """Start the worker on ``spec`` (written to ``spec_path``), collect every verdict."""
    import subprocess

    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    results: list[MLResult] = []
    env = dict(os.environ if env is None else env)
    # the code under test must win over an installed copy from the first import on
    # (``-m`` imports this package before the worker can touch sys.path)
    paths = [str(Path(spec["root"]) / entry) for entry in spec.get("sys_path", [])]
    env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    process = subprocess.Popen([python, "-m", "mlprop.audit.ml_runner", str(spec_path)],
                               stdout=subprocess.PIPE, text=True, cwd=spec["root"], env=env,
                               start_new_session=True)
    fatal = None
    try:
        for line in process.stdout:
            message = json.loads(line)
            if message["kind"] == "result":
                message.pop("kind")
                result = MLResult(**message)
                results.append(result)
                if on_result is not None:
                    on_result(result)
            elif message["kind"] == "fatal":
                fatal = message["message"]
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        process.wait()
    if fatal is not None:
        raise RuntimeError(f"ML-mutant worker: {fatal}")
    if process.returncode != 0:
        raise RuntimeError(f"ML-mutant worker exited with code {process.returncode}")
    return results


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1]))
