"""Where the property suite lives, and running it with pytest against a target.

The suite is the package :mod:`mlprop.properties` (installed with mlprop; in a checkout the
editable install maps it to the top-level ``properties/`` folder). ``mlprop check`` runs it
in the current directory, so the project's ``[tool.mlprop]`` and pytest configuration
apply. The command line (``mlprop check``, ``mlprop demo``) and the fault sweep use this;
it never imports :mod:`mlprop.cli`.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlprop.errors import MlpropError

SUITE_PACKAGE = "mlprop.properties"


class SuiteNotFoundError(MlpropError, FileNotFoundError):
    """The property suite is not importable (a broken installation)."""


def properties_dir() -> Path:
    """The directory of the installed property suite."""
    try:
        package = importlib.import_module(SUITE_PACKAGE)
    except ImportError as exc:
        raise SuiteNotFoundError(f"property suite not found: cannot import {SUITE_PACKAGE} "
                                 f"({exc}); reinstall mlprop") from None
    return Path(package.__file__).resolve().parent


def pytest_command(target: str | None, extra: Sequence[str]) -> list[str]:
    """The pytest command line of ``mlprop check`` (``--stats``: Hypothesis statistics)."""
    properties_dir()  # fail early with a clear message
    command = [sys.executable, "-m", "pytest", "--pyargs", SUITE_PACKAGE, "-q",
               "-p", "no:cacheprovider",
               "--hypothesis-show-statistics" if "--stats" in extra else "-rfE"]
    if target:
        command += ["--mlprop-target", target]
    return command + [arg for arg in extra if arg != "--stats"]


def run_property_suite(target: str | None, extra: Sequence[str],
                       cwd: Path | None = None) -> int:
    """Run the suite against ``target`` (``None``: as the plugin resolves it from ``cwd``,
    default the current directory) with ``extra`` pytest arguments; pytest's exit code."""
    return subprocess.call(pytest_command(target, extra), cwd=cwd or Path.cwd())
