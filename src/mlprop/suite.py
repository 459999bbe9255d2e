"""Where the property suite lives, and running it with pytest against a target.

The command line (``mlprop check``, ``mlprop demo``) and the fault sweep use this; it never
imports :mod:`mlprop.cli`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlprop.errors import MlpropError


class SuiteNotFoundError(MlpropError, FileNotFoundError):
    """The property suite is not where this installation expects it."""


def properties_dir() -> Path:
    """The property suite shipped beside the package (a source checkout)."""
    candidate = Path(__file__).resolve().parents[2] / "properties"
    if not candidate.is_dir():
        raise SuiteNotFoundError(f"property suite not found at {candidate}: run from a source "
                                 "checkout of mlprop")
    return candidate


def run_property_suite(target: str | None, extra: Sequence[str]) -> int:
    """Run ``pytest properties`` against ``target`` (``None``: as pytest resolves it) with
    ``extra`` pytest arguments (``--stats``: Hypothesis statistics); pytest's exit code."""
    suite = properties_dir()
    command = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics" if "--stats" in extra else "-rfE"]
    if target:
        command += ["--mlprop-target", target]
    command += [arg for arg in extra if arg != "--stats"]
    return subprocess.call(command, cwd=suite.parent)
