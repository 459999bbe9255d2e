"""Interrupted command-line writers, a full disk, no permission, and two audits at once.

Invariants checked:

- ``mlprop init`` (pyproject.toml, then the workflow), ``mlprop audit --json --markdown``,
  ``mlprop bench compare --json`` and the property report (``results.json``, ``summary.md``,
  then ``report.html``): a ``SIGKILL`` at any file-system step leaves every file either its
  old bytes or a complete new file, and a rerun exits 0, writes the new state and removes
  the temp files the killed writer left (``tests/kill_cli_writers.py``).
- ``ENOSPC`` / ``EACCES`` (simulated: we run as root) make ``mlprop init``, ``mlprop audit
  --report`` and ``mlprop check --report`` exit 2 with one line naming the path, and leave
  the project as it was: no temp file, no empty directory, no half report.
- Two ``mlprop audit`` processes started together on one project run one after the other
  (the second waits on ``mutants/mlprop-audit.lock``), both exit 0 with a valid JSON report
  and the ``mutants/`` state they share is never written by both at once.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from mlprop import cli
from mlprop.audit import mutation
from mlprop.project_init import WORKFLOW_PATH
from mlprop.report import properties
from tests.kill_cli_writers import OLD_PYPROJECT, audit_result, report_results

HELPER = Path(__file__).with_name("kill_cli_writers.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("writer", ["init", "audit-json", "bench-json", "report"])
def test_sigkill_at_every_step_leaves_old_or_new_files(tmp_path: Path, writer: str):
    done = subprocess.run([sys.executable, str(HELPER), writer, str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"write", "fsync", "rename"} <= set(result["events"])
    rows = result["rows"]
    assert len(rows) == len(result["events"]) + 3
    for row in rows:
        if not row["kill"].startswith("random"):
            assert row["signal"] == 9, row  # the child really died at that step
        assert set(row["after_kill"].values()) <= {"old", "new"}, row
        assert row["rerun_exit"] == 0, row
        assert set(row["after_rerun"].values()) == {"new"}, row
        assert row["leftovers_after_rerun"] == [], row
    if writer == "report":  # report.html is renamed in last: a new one means a whole report
        for row in rows:
            if row["after_kill"]["report/report.html"] == "new":
                assert set(row["after_kill"].values()) == {"new"}, row


# --------------------------------------------------------------------------- disk full, EACCES


def enospc(*args: object, **kwargs: object) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def eacces(*args: object, **kwargs: object) -> object:
    raise OSError(errno.EACCES, "Permission denied")


def tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def init_project(root: Path) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "__init__.py").touch()
    (root / "pyproject.toml").write_text(OLD_PYPROJECT)
    return root


@pytest.mark.parametrize("fault", ["ENOSPC", "EACCES"])
def test_init_on_a_full_or_read_only_disk_exits_2_and_changes_nothing(
        tmp_path: Path, monkeypatch, capsys, fault: str):
    root = init_project(tmp_path / "project")
    before = tree(root)
    if fault == "ENOSPC":
        monkeypatch.setattr(os, "write", enospc)
    else:
        monkeypatch.setattr(tempfile, "mkstemp", eacces)
    code = cli.main(["init", "--dir", str(root)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and fault in err and str(root / "pyproject.toml") in err, err
    assert tree(root) == before  # no temp file, no .github/


def test_init_failing_on_the_workflow_leaves_no_empty_directory_and_a_rerun_finishes(
        tmp_path: Path, monkeypatch, capsys):
    root = init_project(tmp_path / "project")
    real = tempfile.mkstemp

    def refuse_workflows(*args: object, **kwargs: object) -> object:
        if Path(str(kwargs.get("dir"))).name == "workflows":
            raise OSError(errno.EACCES, "Permission denied")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_workflows)
    assert cli.main(["init", "--dir", str(root)]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(root / WORKFLOW_PATH) in err, err
    assert not (root / ".github").exists()
    assert "[tool.mlprop]" in (root / "pyproject.toml").read_text()  # complete, valid
    assert cli.main(["init", "--dir", str(root)]) == 0
    assert (root / WORKFLOW_PATH).is_file()
    assert not [p for p in root.rglob(".*.tmp")]


@pytest.fixture
def stub_audit(monkeypatch):
    monkeypatch.setattr(mutation, "run_audit", lambda options: audit_result(90.0))


@pytest.mark.parametrize("fault", ["ENOSPC", "EACCES"])
def test_audit_report_and_json_on_a_full_or_read_only_disk_exit_2(
        tmp_path: Path, monkeypatch, capsys, stub_audit, fault: str):
    (tmp_path / "mutants").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text('{"old": true}')
    before = tree(out)
    if fault == "ENOSPC":
        monkeypatch.setattr(os, "write", enospc)
    else:
        real = tempfile.mkstemp
        monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: eacces()
                            if k.get("prefix", "").startswith(".a.json") else real(*a, **k))
    code = cli.main(["audit", "--root", str(tmp_path), "--json", str(out / "a.json")])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and fault in err and str(out / "a.json") in err, err
    assert tree(out) == before


@pytest.mark.parametrize("fault", ["ENOSPC", "EACCES"])
def test_property_report_on_a_full_or_read_only_disk_keeps_the_old_report(
        tmp_path: Path, monkeypatch, fault: str):
    from mlprop.errors import WriteError

    properties.write_report(tmp_path, report_results(1.0))
    before = tree(tmp_path)
    monkeypatch.setattr(*((os, "write", enospc) if fault == "ENOSPC"
                          else (tempfile, "mkstemp", eacces)))
    with pytest.raises(WriteError, match=fault) as info:
        properties.write_report(tmp_path, report_results(2.0))
    monkeypatch.undo()
    assert info.value.path == str(tmp_path / "results.json")
    assert tree(tmp_path) == before


def test_check_report_into_an_unwritable_directory_exits_2_before_running(
        tmp_path: Path, monkeypatch, capsys):
    from mlprop.cli import check

    monkeypatch.setattr(check, "run_property_suite", lambda *a: pytest.fail("ran the suite"))
    monkeypatch.setattr(tempfile, "mkstemp", eacces)
    code = cli.main(["check", "--report", str(tmp_path / "report")])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not writable" in err, err
    assert [p.name for p in tmp_path.rglob("*")] == ["report"]


# --------------------------------------------------------------------------- two audits


AUDIT_SCRIPT = textwrap.dedent("""\
    import json, os, sys, time
    from pathlib import Path
    from mlprop import cli
    from mlprop.audit import mutation

    root = Path(sys.argv[1])

    def slow_audit(options):
        # writes the shared state in pieces, as mutmut and the audit do: two runs at once
        # would interleave their lines
        log = root / "mutants" / "runs.log"
        with open(log, "a") as handle:
            handle.write(f"start {os.getpid()}\\n")
            handle.flush()
            time.sleep(1.0)
            handle.write(f"end {os.getpid()}\\n")
        state = root / "mutants" / "state.json"
        runs = json.loads(state.read_text())["runs"] if state.exists() else 0
        state.write_text(json.dumps({"runs": runs + 1}))
        return {"mutmut": {"overall": {}, "modules": {}, "survivors": [], "equivalent": [],
                           "stale_equivalents": []},
                "timing": {}, "score": 100.0, "passed": True, "verdict": "passed"}

    mutation.run_audit = slow_audit
    (root / f"ready-{os.getpid()}").touch()  # both processes start the audit together
    while len(list(root.glob("ready-*"))) < 2:
        time.sleep(0.01)
    sys.exit(cli.main(["audit", "--root", str(root), "--json", sys.argv[2]]))
""")


def test_two_audits_at_once_run_one_after_the_other(tmp_path: Path):
    script = tmp_path / "audit.py"
    script.write_text(AUDIT_SCRIPT)
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [subprocess.Popen([sys.executable, str(script), str(project),
                               str(tmp_path / f"audit{i}.json")], cwd=project, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    lines = (project / "mutants" / "runs.log").read_text().split()
    assert lines[0::2] == ["start", "end", "start", "end"], lines  # never interleaved
    assert lines[1] == lines[3] and lines[5] == lines[7] and lines[1] != lines[5]
    assert json.loads((project / "mutants" / "state.json").read_text()) == {"runs": 2}
    for i in range(2):
        assert json.loads((tmp_path / f"audit{i}.json").read_text())["passed"] is True
    waited = [err for _, err in outputs if "another audit" in err]
    assert len(waited) == 1 and "waiting for it to finish" in waited[0]
