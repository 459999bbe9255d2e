"""pytest hooks of the shipped target benchmarks (loaded when pytest collects this folder).

- ``machine_info`` gets the GPU (pytest-benchmark's machine id is only OS-Python-bits).
- The JSON gets, under ``mlprop``: the target spec, ``sources`` (the file of every loaded
  module of the target's top-level package: ``mlprop bench compare`` checks that each side
  measured its own worktree), the device and the load average at the start.
- Under ``mlprop bench compare`` the other side is released when this run ends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_LOAD = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compare: the quick set that `mlprop bench compare` "
                            "runs (the target's contract only)")
    config.stash[_LOAD] = os.getloadavg() if hasattr(os, "getloadavg") else None


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    from mlprop.bench import gpu_machine_info

    machine_info["mlprop_gpu"] = gpu_machine_info()


def target_sources(spec: str) -> dict[str, str]:
    """The files of the loaded modules of ``spec``'s top-level package."""
    top = spec.partition(":")[0].split(".")[0]
    found = {}
    for name, module in list(sys.modules.items()):
        if (name == top or name.startswith(top + ".")) and getattr(module, "__file__", None):
            found[name] = str(Path(module.__file__).resolve())
    return dict(sorted(found.items()))


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    from mlprop.bench.suite import DEVICE_ENV
    from mlprop.checks import CURRENT_SPEC

    spec = CURRENT_SPEC.get("spec") or ""
    output_json["mlprop"] = {"target": spec, "sources": target_sources(spec) if spec else {},
                             "device": os.environ.get(DEVICE_ENV, "cpu"),
                             "loadavg_at_start": config.stash.get(_LOAD, None)}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ``mlprop bench compare``: let the other side run on alone."""
    from mlprop.bench import current_turns

    turns = current_turns()
    if turns is not None:
        turns.finish()
