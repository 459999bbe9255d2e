"""Peak memory and wall time of each model (or training) property, per target: the suite's
memory must be bounded by the model and its input size, not by the number of examples.

    .venv/bin/python benchmarks/model_memory.py [--target SPEC ...] [--profile ci]
        [--scale 1.0] [--component model|training] [--whole] [--json model-memory.json]

Each property runs alone in a fresh process (``pytest --pyargs mlprop.properties.test_model
-k NAME``; with ``--whole`` the whole component in one process, the time and peak a CI job
sees); the process reports its own peak resident set (``ru_maxrss``) when it ends, so
the figure includes Python, torch and the test run. Defaults: the reference digits target
and the ResNet-18 at 3x224x224 of tests/large_model.py (the repository root must be the
working directory). A benchmark, not a test: nothing asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import resource, sys
import pytest
code = pytest.main(sys.argv[1:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""
BASELINE = "import resource, torch, mlprop.plugin; print('MAXRSS_KB', resource.getrusage(" \
           "resource.RUSAGE_SELF).ru_maxrss)"


def component_properties(component: str) -> list[str]:
    import importlib

    module = importlib.import_module(f"mlprop.properties.test_{component}")
    return [name for name in vars(module) if name.startswith("test_")]


def peak_kb(output: str) -> int:
    for line in output.splitlines():
        if line.startswith("MAXRSS_KB"):
            return int(line.split()[1])
    return -1


def measure(spec: str, name: str | None, profile: str, scale: float,
            component: str = "model") -> dict:
    """One property (``name``) or the whole component (``None``) in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPROP_", "PYTEST_"))}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "-q", "-p", "no:cacheprovider", "--pyargs",
         f"mlprop.properties.test_{component}", *(["-k", name] if name else []),
         "--mlprop-target", spec,
         "--mlprop-profile", profile, "--mlprop-examples-scale", str(scale),
         "-o", f"pythonpath={REPO / 'src'} {REPO}"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return {"property": name or f"the {component} component",
            "seconds": round(time.perf_counter() - started, 2),
            "peak_rss_mb": round(peak_kb(done.stdout) / 1024, 1),
            "passed": done.returncode == 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--component", default="model", choices=("model", "training"))
    parser.add_argument("--whole", action="store_true",
                        help="the whole component in one process (one row per target)")
    args = parser.parse_args(argv)
    targets = args.target or ["mlprop.digits:target", "tests.large_model:target"]
    baseline = subprocess.run([sys.executable, "-c", BASELINE], cwd=REPO, capture_output=True,
                              text=True, check=False)
    results = {"baseline_import_rss_mb": round(peak_kb(baseline.stdout) / 1024, 1),
               "profile": args.profile, "scale": args.scale, "component": args.component,
               "targets": {}}
    print(f"python + torch + mlprop imported: {results['baseline_import_rss_mb']} MB")
    for spec in targets:
        rows = []
        names = [None] if args.whole else component_properties(args.component)
        for name in names:
            row = measure(spec, name, args.profile, args.scale, args.component)
            rows.append(row)
            print(f"{spec:28s} {row['property']:62s} {row['seconds']:7.1f} s "
                  f"{row['peak_rss_mb']:8.1f} MB {'ok' if row['passed'] else 'FAILED'}",
                  flush=True)
        results["targets"][spec] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
