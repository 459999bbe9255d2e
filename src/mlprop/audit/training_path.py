"""Which mutants sit on the training path, and which tests they need.

A user's target usually trains once and caches the model in memory (``functools.cache``
around ``train()``). That hides mutants of the training code twice over:

- a process that forks mutants after it trained hands every child the clean model, so the
  mutated ``train()`` never runs (the ML worker therefore forks these mutants *before* it
  trains: :func:`called_functions` finds them);
- mutmut's coverage run records only the *first* test that triggered training as a test of
  ``train()`` (every later test got the cached model), so the mutant would meet one test,
  usually one that only looks at shapes. :func:`tests_for_training_path` adds the tests that
  use the trained model: those of the target's ``trained_model`` and ``predict`` functions
  and of every function that (transitively) called the mutated one in the coverage run.

Invariant: a mutant of a function that runs while the model trains is tested by a child
that trains with the mutant, against every test that depends on the trained model.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")


def mutmut_key(module: str, function: str) -> str:
    """mutmut's trampoline key: ``pkg.mod.x_fn`` or ``pkg.mod.xǁClassǁmethod``."""
    if "." in function:
        cls, _, method = function.rpartition(".")
        return f"{module}.xǁ{cls}ǁ{method}"
    return f"{module}.x_{function}"


def function_key(value: Any) -> str | None:
    """The mutmut key of a target field's function (``None``: not a plain function of a
    module, e.g. a lambda or a callable object: nothing mutmut could have recorded)."""
    value = getattr(value, "__func__", value)  # a bound method
    while hasattr(value, "__wrapped__"):
        value = value.__wrapped__
    if not isinstance(value, types.FunctionType) or "<" in value.__qualname__:
        return None
    return mutmut_key(value.__module__, value.__qualname__)


def called_functions(call: Callable[[], Any], files: set[str]) -> set[tuple[str, str]]:
    """``(file, qualname)`` of every function defined in ``files`` (real paths) that runs
    during ``call()``. Recorded in a forked child, so that this process stays as it was:
    untrained, its caches empty. Raises RuntimeError when ``call`` fails or the child dies."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the probe child: never returns
        os.close(read_fd)
        seen: set[tuple[str, str]] = set()

        def profile(frame: types.FrameType, event: str, arg: Any) -> None:
            if event == "call" and frame.f_code.co_filename in files:
                seen.add((frame.f_code.co_filename, frame.f_code.co_qualname))

        payload: dict[str, Any]
        try:
            sys.setprofile(profile)
            try:
                call()
            finally:
                sys.setprofile(None)
            payload = {"called": sorted(seen)}
        except BaseException as exc:
            payload = {"error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(OSError):
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(write_fd, data):]
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError(f"the training probe died (wait status {status})")
    payload = json.loads(b"".join(chunks))
    if "error" in payload:
        raise RuntimeError(f"training the target's model failed: {payload['error']}")
    return {(file, name) for file, name in payload["called"]}


def plain_qualname(qualname: str) -> str:
    """The source's name of a function whose copy mutmut renamed in ``mutants/``:
    ``x_train__mutmut_orig`` -> ``train``, ``Net.xǁNetǁforward__mutmut_3`` ->
    ``Net.forward`` (what a trampoline calls), ``xǁNetǁforward__mutmut_orig`` (from a
    mutant's key) -> ``Net.forward``; any other name unchanged."""
    head, _, last = qualname.rpartition(".")
    stem, marker, tail = last.partition("__mutmut_")
    if not marker or not (tail == "orig" or tail.isdigit()):
        return qualname
    if stem.startswith("xǁ") and stem.count("ǁ") == 2:
        _, cls, method = stem.split("ǁ")  # a key names its class; a method's copy, its head
        return f"{head}.{method}" if head else f"{cls}.{method}"
    if stem.startswith("x_"):
        return f"{head}.{stem[2:]}" if head else stem[2:]
    return qualname


def split_by_training_path(items: Sequence[Item], called: set[tuple[str, str]],
                           ) -> tuple[list[Item], list[Item]]:
    """``(on the training path, the rest)``: the items (with ``path`` and ``function``)
    whose function ran while the model trained (under its own name or, in ``mutants/``,
    as mutmut's renamed copy)."""
    ran = {(file, plain_qualname(name)) for file, name in called}
    on_path = [item for item in items
               if (os.path.realpath(item.path), item.function) in ran]  # type: ignore[attr-defined]
    return on_path, [item for item in items if item not in on_path]


def callers_of(key: str, callers: Mapping[str, Iterable[str]]) -> set[str]:
    """Every function that called ``key``, directly or through others (mutmut's
    ``function_dependencies``: callee -> callers), ``key`` excluded."""
    found: set[str] = set()
    todo = [key]
    while todo:
        for caller in callers.get(todo.pop(), ()):
            if caller not in found and caller != key:
                found.add(caller)
                todo.append(caller)
    return found


def tests_for_training_path(key: str, own: Sequence[str], *, model_keys: Iterable[str],
                            tests_by_key: Mapping[str, Sequence[str]],
                            callers: Mapping[str, Iterable[str]],
                            durations: Mapping[str, float],
                            using_the_model: Iterable[str] = ()) -> list[str]:
    """The tests a training-path mutant of ``key`` must meet: its own (``own``), those
    that use the trained model (``using_the_model``, from :func:`tests_using_the_model`),
    those mutmut saw call the target's model functions (``model_keys``) and those of every
    caller of ``key``; fastest first, like mutmut."""
    keys = {*model_keys, *callers_of(key, callers)}
    tests = set(own).union(using_the_model, *(tests_by_key.get(k, ()) for k in keys))
    return sorted(tests, key=lambda test: (durations.get(test, 0.0), test))


def _unwrapped_code(value: Any) -> types.CodeType | None:
    value = getattr(value, "__func__", value)
    while hasattr(value, "__wrapped__"):
        value = value.__wrapped__
    return value.__code__ if isinstance(value, types.FunctionType) else None


def tests_using_the_model(target: Any, test_paths: Sequence[str],
                          pytest_args: Sequence[str]) -> set[str]:
    """The node ids of the tests in ``test_paths`` that ask for the trained model: those
    that call the target's ``trained_model`` or ``predict`` (the fields, or the functions
    behind them). Runs the tests once, unmutated, in a forked child (this process stays
    untrained). A user's test that reaches the model only through a cache object of its
    own (``functools.cache`` called directly) is not seen: name such tests in a function
    the target's fields call. Raises RuntimeError when the child dies."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the probe child: never returns
        os.close(read_fd)
        payload: dict[str, Any]
        try:
            payload = {"tests": sorted(_record_model_users(target, test_paths, pytest_args))}
        except BaseException as exc:
            payload = {"error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(OSError):
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(write_fd, data):]
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise RuntimeError(f"the model-usage probe died (wait status {status})")
    payload = json.loads(b"".join(chunks))
    if "error" in payload:
        raise RuntimeError(f"finding the tests that use the trained model failed: "
                           f"{payload['error']}")
    return set(payload["tests"])


def _record_model_users(target: Any, test_paths: Sequence[str],
                        pytest_args: Sequence[str]) -> set[str]:
    import pytest

    current: list[str | None] = [None]
    users: set[str] = set()
    fields = ("trained_model", "predict")
    watched = {code for code in (_unwrapped_code(getattr(target, name)) for name in fields)
               if code is not None}

    def recording(function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if current[0] is not None:
                users.add(current[0])
            return function(*args, **kwargs)
        return call

    for name in fields:  # a field that is a cache object is seen through its wrapper
        if getattr(target, name) is not None:
            object.__setattr__(target, name, recording(getattr(target, name)))

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call" and current[0] is not None and frame.f_code in watched:
            users.add(current[0])

    class Tracker:
        def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
            current[0] = nodeid

        def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
            current[0] = None

    sys.setprofile(profile)
    try:
        pytest.main(["-q", "--tb=no", "-p", "no:cacheprovider", "-p", "no:randomly",
                     "--rootdir=.", *pytest_args, *test_paths], plugins=[Tracker()])
    finally:
        sys.setprofile(None)
    return users
