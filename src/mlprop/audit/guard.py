"""The audit's import guard: a pytest plugin loaded into every test run of ``mlprop audit``.

mutmut copies the project into ``mutants/`` and puts ``mutants/src`` (or ``mutants/``) first
on ``sys.path``; the ML-mutant worker runs from the project root. If a package named by the
mutation paths is imported from anywhere else (an installed copy in site-packages, a
``sys.path`` insertion in a conftest, a ``pythonpath`` setting that points outside), the
tests exercise unmutated code and every mutant looks like a survivor. This plugin stops the
run instead: ``mlprop audit`` loads it through ``PYTEST_PLUGINS`` and names the packages in
:data:`PACKAGES_ENV`; the first problem found is also written to :data:`REPORT_ENV`'s file so
that the audit can say it in one line whatever mutmut does with pytest's output.

It checks twice: when pytest is configured (where the package *would* be imported from,
without importing it) and after collection (where the test modules actually imported it
from). Outside an audit (no :data:`PACKAGES_ENV`) it does nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES_ENV = "MLPROP_AUDIT_PACKAGES"
"""Comma-separated top-level packages that must come from the directory tests run in."""
REPORT_ENV = "MLPROP_AUDIT_GUARD_FILE"
"""Where the first problem found is written (one line)."""
ROOTS_ENV = "MLPROP_AUDIT_ROOTS"
"""The directories the audit's own test runs start in (the project and its mutants/)."""


def _origin(name: str, modules: Mapping[str, ModuleType]) -> str | None:
    module = modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return None if spec is None else spec.origin


def import_problem(packages: Iterable[str], root: Path,
                   modules: Mapping[str, ModuleType] | None = None) -> str | None:
    """Why a test run in ``root`` would test the wrong code, or None: the first package of
    ``packages`` that is (or would be) imported from outside ``root``. A package that cannot
    be found at all is no problem of this guard (the tests fail on their own)."""
    modules = sys.modules if modules is None else modules
    root = root.resolve()
    for name in packages:
        origin = _origin(name, modules)
        if not origin or origin in {"built-in", "frozen", "namespace"}:
            continue
        where = Path(origin).resolve()
        if not where.is_relative_to(root):
            return (f"mlprop audit: package {name!r} is imported from {where.parent}, not "
                    f"from {root}: the tests would run the unmutated code (an installed copy "
                    "or a sys.path/pythonpath entry shadows the mutated one; uninstall it or "
                    "use an editable install, and do not add the original source directory "
                    "to sys.path in conftest.py)")
    return None


def _packages() -> list[str]:
    """The packages to guard in this process: none outside an audit, and none in a pytest
    run that the audit's tests start themselves in another directory (a project's tests
    may run pytest on scratch projects; those import what they like)."""
    roots = [Path(r).resolve() for r in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if r]
    if roots and Path.cwd().resolve() not in roots:
        return []
    return [p for p in os.environ.get(PACKAGES_ENV, "").split(",") if p]


def _stop(problem: str) -> None:
    report = os.environ.get(REPORT_ENV)
    if report:
        with contextlib.suppress(OSError):
            Path(report).write_text(problem + "\n", encoding="utf-8")


def pytest_configure(config: pytest.Config) -> None:
    packages = _packages()
    if not packages:
        return
    problem = import_problem(packages, Path.cwd())
    if problem:
        _stop(problem)
        raise pytest.UsageError(problem)


def pytest_collection_finish(session: pytest.Session) -> None:
    packages = _packages()
    if not packages:
        return
    problem = import_problem([p for p in packages if p in sys.modules], Path.cwd())
    if problem:
        _stop(problem)
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)
