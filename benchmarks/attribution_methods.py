"""Time and peak memory of the attribution properties per target, each property in a fresh
process (so peak RSS is that property's), under the mlprop-ci settings the fault sweep uses.

    .venv/bin/python benchmarks/attribution_methods.py [--target SPEC ...] [--json F]

Targets default to the digits and colour references, the five modern models of
``tests/modern_models.py`` and a stock-style ResNet-18 at 3x224x224
(``tests.modern_models:resnet18_224``). Each row: target, property, outcome (passed,
failed, not checked), seconds (the property's own run, model loading excluded: the trained
model is loaded once before the clock starts), peak RSS of the process in MB, and the
attribution method the target's model gets. A benchmark, not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

DEFAULT_TARGETS = ("mlprop.digits:target", "mlprop.colour:target",
                   "tests.modern_models:resnet", "tests.modern_models:groupnorm",
                   "tests.modern_models:convnext", "tests.modern_models:efficientnet",
                   "tests.modern_models:vit", "tests.modern_models:resnet18_224")

ONE = r"""
import json, resource, sys, time
import numpy as np, torch
from mlprop.faults import sweep as runner
from mlprop.target import load_target

spec, name = sys.argv[1], sys.argv[2]
target = load_target(spec)
model = target.trained_model()
images, _ = target.holdout()
try:
    from mlprop.attribution import choose_method
    method = choose_method(model, torch.as_tensor(np.asarray(target.preprocess(images[:2])))).name
except ImportError:
    method = "deep"
prop = runner.load_properties()[name]
started = time.perf_counter()
if hasattr(runner, "property_outcome"):
    outcome = runner.property_outcome(prop, target)
    status, message = outcome.status, outcome.message
else:
    message = runner.run_property(prop, target)
    status = "passed" if message is None else "failed"
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"target": spec, "property": name, "status": status,
                  "message": (message or "")[:300], "seconds": round(seconds, 2),
                  "peak_rss_mb": round(peak), "method": method}))
"""

PROPERTIES = ("test_attributions_are_complete",
              "test_attributions_are_deterministic_and_leave_global_rng_alone",
              "test_attributions_are_stable_under_small_perturbations",
              "test_removing_top_attributed_features_hurts_more_than_random",
              "test_attributions_are_batch_independent",
              "test_mean_attribution_maps_agree_across_disjoint_subsets")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPROP_", "PYTEST_"))}
    env.update(CI="true", PYTHONPATH=os.pathsep.join([str(Path.cwd()), env.get(
        "PYTHONPATH", "")]))
    rows = []
    for spec in args.target or DEFAULT_TARGETS:
        for name in PROPERTIES:
            done = subprocess.run([sys.executable, "-c", ONE, spec, name], env=env,
                                  capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if lines else {
                "target": spec, "property": name, "status": "error",
                "message": done.stderr.strip().splitlines()[-1:], "seconds": None}
            rows.append(row)
            print(f"{spec:36} {name:66} {row['status']:12} {row.get('seconds')} s "
                  f"{row.get('peak_rss_mb')} MB {row.get('method', '')}", flush=True)
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["target"]] = totals.get(row["target"], 0.0) + float(row["seconds"] or 0)
    for spec, seconds in totals.items():
        print(f"{spec}: {seconds:.1f} s for the six attribution properties")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load": os.getloadavg()},
            "rows": rows, "totals": totals}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
