"""``mlprop bench run``: the shipped target benchmarks (:mod:`mlprop.bench.suite`) in the
current project, as one pytest-benchmark run (so ``--benchmark-autosave``,
``--benchmark-compare`` and ``pytest-benchmark compare`` work on its results)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlprop.bench.revisions import CompareError
from mlprop.bench.suite import DEVICE_ENV, SUITE_PACKAGE
from mlprop.bench.timing import benchmark_environment

DEVICES = ("cpu", "cuda")


def suite_command(*, target: str | None = None, json_path: Path | None = None,
                  extra: Sequence[str] = ()) -> list[str]:
    """The pytest command line of the shipped suite."""
    command = [sys.executable, "-m", "pytest", "--pyargs", SUITE_PACKAGE, "--benchmark-only",
               "-p", "no:cacheprovider"]
    if target:
        command += ["--mlprop-target", target]
    if json_path is not None:
        command.append(f"--benchmark-json={json_path}")
    return [*command, *extra]


def check_device(device: str) -> None:
    """Refuse an unknown device, or CUDA where there is none."""
    kind = device.split(":")[0]
    if kind not in DEVICES:
        raise CompareError(f"--device: expected cpu or cuda[:N], got {device!r}")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CompareError("--device cuda: CUDA is not available on this machine "
                               f"(torch {torch.__version__})")


def run_suite(*, target: str | None = None, device: str = "cpu",
              json_path: Path | None = None, extra: Sequence[str] = (),
              cwd: Path | None = None) -> int:
    """Run the suite (output to this process's stdout/stderr); pytest's exit code."""
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise CompareError("pytest-benchmark is not installed (mlprop bench needs it): "
                           "pip install pytest-benchmark")
    check_device(device)
    if json_path is not None and not Path(json_path).resolve().parent.is_dir():
        raise CompareError(f"--json: directory {Path(json_path).parent} does not exist")
    env = benchmark_environment()
    env[DEVICE_ENV] = device
    return subprocess.run(suite_command(target=target, json_path=json_path, extra=extra),
                          cwd=cwd, env=env, check=False).returncode
