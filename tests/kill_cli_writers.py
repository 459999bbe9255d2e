"""Test helper (run as a script): SIGKILL the command-line writers at every file-system step.

``python tests/kill_cli_writers.py WRITER DIR`` sets up ``WRITER``'s previous state in DIR,
counts the writer's file-system events once (the hooks of ``tests/kill_writers.py``:
mkdir, write, fsync, rename...), then for each event k forks a child that runs the writer
and ``SIGKILL``s itself just before event k (halfway through the data for a write), plus
children killed after a random delay. After each kill it records what a reader finds
(``old``, ``new`` or ``corrupt: ...`` per file) and the temp files left, runs the writer to
the end and records that too. Prints JSON.

Writers: ``init`` (``mlprop init`` over a pyproject.toml without mlprop's sections and an
older workflow file: pyproject.toml and the workflow), ``audit-json`` (``mlprop audit
--json --markdown`` with a stub audit), ``bench-json`` (``mlprop bench compare --json`` with
a stub comparison), ``report`` (the property report: ``report.html``, ``summary.md`` and
``results.json`` over a previous report).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import kill_writers  # sets torch to one thread before any fork

OLD_PYPROJECT = '# the user\'s project\n[project]\nname = "pkg"\n\n[tool.black]\nx = 1\n'


def audit_result(score: float) -> dict[str, Any]:
    from mlprop.audit import report as rep

    overall = rep.tally(["killed"] * 9 + ["survived"]).as_dict()
    return {"mutmut": {"overall": overall, "modules": {"pkg.a": overall}, "survivors": [],
                       "equivalent": [], "stale_equivalents": []},
            "timing": {"wall_seconds": 1.0, "mutmut_seconds": 1.0, "mutants_tested": 10,
                       "mutants_per_minute": 600.0, "ml_seconds": None},
            "score": score, "passed": True, "verdict": "mlprop audit: passed"}


def report_results(seconds: float) -> dict[str, Any]:
    from mlprop.report import properties

    tests = [{"nodeid": f"t.py::test_{i}", "name": f"test_{i}", "test": f"test_{i}",
              "component": "model", "property": True, "status": "passed",
              "seconds": seconds, "reason": "", "examples": 10} for i in range(3)]
    return properties.build_results(tests=tests, session=None, seconds=seconds, exitstatus=0)


def setup(writer: str, root: Path) -> tuple[dict[str, bytes], Any]:
    """Create the previous state; return ``{file: old bytes}`` and the writer's action."""
    from mlprop import cli
    from mlprop.project_init import WORKFLOW_PATH

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    if writer == "init":
        (root / "src" / "pkg").mkdir(parents=True)
        (root / "src" / "pkg" / "__init__.py").touch()
        (root / "tests").mkdir()
        (root / "pyproject.toml").write_text(OLD_PYPROJECT)
        (root / WORKFLOW_PATH).parent.mkdir(parents=True)
        (root / WORKFLOW_PATH).write_text("# an older workflow\n")
        files = ["pyproject.toml", WORKFLOW_PATH.as_posix()]

        def action() -> None:
            cli.main(["init", "--dir", str(root), "--force"])
    elif writer == "audit-json":
        from mlprop.audit import mutation

        (root / "a.json").write_text(json.dumps(audit_result(50.0)))
        (root / "a.md").write_text("# old\n")
        mutation.run_audit = lambda options: audit_result(90.0)
        files = ["a.json", "a.md"]

        def action() -> None:
            cli.main(["audit", "--root", str(root), "--json", str(root / "a.json"),
                      "--markdown", str(root / "a.md")])
    elif writer == "bench-json":
        from mlprop import bench
        from mlprop.bench.compare import ComparisonReport

        (root / "b.json").write_text(json.dumps({"base": "old"}))
        bench.compare_revisions = lambda *a, **k: ComparisonReport(
            base="a" * 40, head="b" * 40, rounds=7, threshold=0.1)
        files = ["b.json"]

        def action() -> None:
            cli.main(["bench", "compare", "A", "B", "--repo", str(root), "--json",
                      str(root / "b.json")])
    elif writer == "report":
        from mlprop.report import properties

        directory = root / "report"
        directory.mkdir()
        properties.write_report(directory, report_results(1.0))
        files = [f"report/{name}" for name in ("report.html", "summary.md", "results.json")]

        def action() -> None:
            properties.write_report(directory, report_results(2.0))
    else:
        raise SystemExit(f"unknown writer {writer!r}")
    return {name: (root / name).read_bytes() for name in files}, action


def complete(name: str, data: bytes, new: bytes) -> bool:
    """Whether ``data`` is a whole new file (reports and bench JSON hold timestamps and
    timings, so a rerun's bytes differ: a JSON file must parse, an HTML page must end)."""
    if data == new:
        return True
    if name.endswith(".json"):
        try:
            json.loads(data)
        except ValueError:
            return False
        return True
    return name.endswith(".html") and data.rstrip().endswith(b"</html>")


def states(root: Path, old: dict[str, bytes], new: dict[str, bytes]) -> dict[str, str]:
    found = {}
    for name in old:
        path = root / name
        data = path.read_bytes() if path.exists() else None
        found[name] = ("missing" if data is None else "old" if data == old[name]
                       else "new" if complete(name, data, new[name])
                       else f"corrupt: {len(data)} bytes")
    return found


def quiet(action: Any) -> Any:
    """``action`` with its stdout dropped (the children share the parent's JSON pipe)."""
    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            action()
    return run


def temp_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*.tmp"))


def matrix(writer: str, root: Path, random_kills: int = 3) -> dict[str, Any]:
    old, action = setup(writer, root)
    action = quiet(action)
    saved = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    folders = [p.relative_to(root) for p in root.rglob("*") if p.is_dir()]

    def reset() -> None:  # the same previous state, byte for byte, before every kill
        shutil.rmtree(root)
        for name in folders:
            (root / name).mkdir(parents=True, exist_ok=True)
        for name, data in saved.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
    action()  # once here first: the forked children then start with every module imported
    reset()
    kill_writers.install_hooks()
    started = time.monotonic()
    events = kill_writers.count_events(action)
    span = time.monotonic() - started
    new = {name: (root / name).read_bytes() for name in old}
    assert new != old, "the writer changed nothing"
    rng = random.Random(18)
    kills: list[tuple[str, int, float | None]] = [
        (f"before {name} #{k}" if name != "write" else f"mid write #{k}", k, None)
        for k, name in enumerate(events, start=1)]
    kills += [(f"random delay {d * 1000:.1f} ms", 0, d)
              for d in (rng.uniform(0.0, span) for _ in range(random_kills))]
    rows = []
    for label, k, delay in kills:
        reset()
        status = kill_writers.run_forked(action, k, delay)
        after_kill, left = states(root, old, new), temp_files(root)
        rerun = kill_writers.run_forked(action, 0)
        rows.append({"kill": label, "signal": status, "after_kill": after_kill,
                     "leftovers": left, "rerun_exit": rerun,
                     "after_rerun": states(root, old, new),
                     "leftovers_after_rerun": temp_files(root)})
    return {"writer": writer, "events": events, "rows": rows}


if __name__ == "__main__":
    print(json.dumps(matrix(sys.argv[1], Path(sys.argv[2]))))
