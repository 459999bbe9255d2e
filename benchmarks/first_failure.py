"""Time to first failure: for each fault of the catalogue, plant it in a correct target and
run the property suite with ``-x``, as a user's CI would; record the seconds until pytest
stops and the property that stopped it.

    .venv/bin/python benchmarks/first_failure.py [--target mlprop.digits:target]
        [--fault NAME ...] [--json first-failure.json] [-- EXTRA PYTEST ARGS]

Output: one line per fault on stdout, then a summary (median and worst, overall and per
component); ``--json`` writes ``{"target", "machine", "faults": [{"fault", "component",
"seconds", "first_failure", "expected", "named_property_first", "exit_code"}],
"summary": {...}}``. Seconds are wall time of the whole pytest process (start-up included),
under ``CI=true`` (the mlprop-ci profile) with the model cache warm (one warm-up run first).
A benchmark, not a test: run it on demand; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAULTY_TARGET = """
from mlprop.faults import CATALOGUE
from mlprop.target import load_target

target = CATALOGUE[{fault!r}].inject(load_target({spec!r}))
"""

FAILED = re.compile(r"^FAILED (\S+?)(?: - |$)", re.MULTILINE)


def run_suite(spec: str, workdir: Path, extra: list[str]) -> tuple[float, int, str | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPROP_", "PYTEST_"))}
    env.update(CI="true", PYTHONPATH=str(workdir))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "mlprop.properties",
                           "-x", "-q", "-rf", "-p", "no:cacheprovider", "--mlprop-target",
                           spec, *extra], cwd=workdir, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    found = FAILED.search(done.stdout)
    first = found.group(1).split("::")[-1] if found else None
    return seconds, done.returncode, first


def named_property(test_id: str | None) -> str | None:
    """The property's name without its parametrization (``[noise]``), as the catalogue
    names it."""
    return None if test_id is None else test_id.split("[", 1)[0]


def summarize(rows: list[dict]) -> dict:
    def stats(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 2), "worst": round(max(values), 2),
                "count": len(values)} if values else {}

    by_component: dict[str, list[float]] = {}
    for row in rows:
        by_component.setdefault(row["component"], []).append(row["seconds"])
    return {"all": stats([row["seconds"] for row in rows]),
            "by_component": {c: stats(v) for c, v in sorted(by_component.items())},
            "not_caught": [row["fault"] for row in rows if row["exit_code"] != 1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="mlprop.digits:target")
    parser.add_argument("--fault", action="append", default=[])
    parser.add_argument("--json", type=Path)
    parser.add_argument("extra", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra

    from mlprop.faults import CATALOGUE
    from mlprop.target import load_target

    reference = load_target(args.target)
    names = [name for name in (args.fault or list(CATALOGUE))
             if CATALOGUE[name].applies(reference)]  # a BGR swap needs a colour target
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlprop-first-failure-") as scratch:
        workdir = Path(scratch)
        warm, _, _ = run_suite(args.target, workdir, ["-k", "accuracy or attributions_are_"
                                                      "complete", *extra])
        print(f"warm-up (model cache, imports): {warm:.1f} s", file=sys.stderr)
        for name in names:
            fault = CATALOGUE[name]
            module = f"faulty_{name}"
            (workdir / f"{module}.py").write_text(FAULTY_TARGET.format(fault=name,
                                                                       spec=args.target))
            seconds, code, first = run_suite(f"{module}:target", workdir, extra)
            row = {"fault": name, "component": fault.component, "seconds": round(seconds, 2),
                   "first_failure": first, "expected": list(fault.catches),
                   "named_property_first": named_property(first) in fault.catches,
                   "exit_code": code}
            rows.append(row)
            print(f"{name:40s} {fault.component:10s} {seconds:6.1f} s  {first}", flush=True)
    summary = summarize(rows)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({
            "target": args.target,
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                        "loadavg": os.getloadavg()},
            "faults": rows, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
