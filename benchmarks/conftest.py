"""pytest configuration of the benchmark suites (pytest-benchmark).

- ``machine_info`` gets the GPU (pytest-benchmark's machine id is only OS-Python-bits, so a
  GPU box and a CPU box would otherwise look alike) and torch's CUDA build.
- The JSON gets ``mlprop.sources`` (which files ``mlprop`` and the reference pipeline were
  imported from) and the load average at the start, under ``mlprop``.
- Under ``mlprop bench compare`` (``MLPROP_BENCH_EXPECT_SRC`` set) the run stops at once if
  ``mlprop`` was not imported from that ``src/``, and the timing harness
  (``mlprop.bench``) is this checkout's, whichever revision's ``src/`` is measured; its
  timing rounds take turns with the other side's process (``mlprop.bench.Turns``), so a
  ``compare``-marked benchmark must time through ``mlprop.bench.timed_inference``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HARNESS = HERE.parent / "src" / "mlprop" / "bench"


def _use_this_checkouts_harness() -> None:
    """Load ``mlprop.bench`` from this checkout, not from the ``src/`` being measured."""
    import mlprop

    for name in [name for name in sys.modules if name.startswith("mlprop.bench.")]:
        del sys.modules[name]  # submodules of the measured src/'s harness, if any
    spec = importlib.util.spec_from_file_location(
        "mlprop.bench", HARNESS / "__init__.py", submodule_search_locations=[str(HARNESS)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["mlprop.bench"] = module  # its submodules now resolve inside HARNESS
    spec.loader.exec_module(module)
    mlprop.bench = module


def _check_measured_source(expected: str) -> None:
    import mlprop

    where = Path(mlprop.__file__).resolve()
    if not where.is_relative_to(Path(expected).resolve()):
        raise pytest.UsageError(f"mlprop was imported from {where}, not from {expected}: "
                                "set PYTHONPATH as well as -o pythonpath")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compare: the quick set that `mlprop bench compare` "
                            "runs (the target's contract only)")
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it)")
    expected = os.environ.get("MLPROP_BENCH_EXPECT_SRC")
    if expected:
        _check_measured_source(expected)
        if (HARNESS / "__init__.py").is_file():
            _use_this_checkouts_harness()
    config.stash[_LOAD] = os.getloadavg() if hasattr(os, "getloadavg") else None


_LOAD = pytest.StashKey[object]()


@pytest.fixture(scope="module")
def seconds(request) -> float:
    """Time budget per benchmark: ``--benchmark-max-time`` (default 1 s)."""
    return float(request.config.getoption("benchmark_max_time"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ``mlprop bench compare``: let the other side run on alone."""
    bench = sys.modules.get("mlprop.bench")
    turns = bench.current_turns() if bench and hasattr(bench, "current_turns") else None
    if turns is not None:
        turns.finish()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    from mlprop.bench import gpu_machine_info

    machine_info["mlprop_gpu"] = gpu_machine_info()


def _sources() -> dict[str, str]:
    found = {}
    for name in ("mlprop", "mlprop.digits.pipeline", "mlprop.bench"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            found[name] = str(Path(module.__file__).resolve())
    return found


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    sources = _sources()
    harness = sources.pop("mlprop.bench", None)
    output_json["mlprop"] = {"sources": sources, "harness": harness,
                             "loadavg_at_start": config.stash.get(_LOAD, None)}
