"""pytest plugin ``mlprop-report``: ``--mlprop-report DIR`` writes the property report.

A second plugin beside :mod:`mlprop.plugin` (which decides the target, the profile and the
suite's order); this one only watches. For every property of the suite it records the
status, the examples Hypothesis tried and the time; for a failure it keeps what the final,
shrunk replay left behind (:mod:`mlprop.report.capture`: the inputs attached by
:func:`mlprop.checks.reproduction`, the compared arrays, drawn at once into PNGs) plus the
property's docstring, the replay command and the catalogue faults the property is known to
catch. At the end of the session it writes ``report.html`` (self-contained),
``summary.md`` (also appended to ``$GITHUB_STEP_SUMMARY``) and ``results.json``
(:mod:`mlprop.report.properties`).

The per-test data rides on the test report (``report.mlprop_report``), so under
pytest-xdist the workers capture and the controller writes. The report directory is
checked when pytest starts (unwritable, or holding another run's report without
``--mlprop-report-force``: a usage error before any test runs).
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlprop.report.output import ReportError, prepare_report_dir

_STATE = pytest.StashKey["Recorder"]()
_STATS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlprop")
    group.addoption("--mlprop-report", default=None, metavar="DIR",
                    help="write the property report to DIR: report.html (self-contained), "
                         "summary.md (also appended to $GITHUB_STEP_SUMMARY), results.json")
    group.addoption("--mlprop-report-force", action="store_true", default=False,
                    help="let --mlprop-report overwrite a report already in DIR")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--mlprop-report", None))


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("--mlprop-report", None)
    if not directory or _is_worker(config):
        return
    try:
        path = prepare_report_dir(directory, force=config.getoption("--mlprop-report-force"))
    except ReportError as exc:
        raise pytest.UsageError(f"mlprop: --mlprop-report: {exc}") from None
    recorder = Recorder(config, path)
    config.stash[_STATE] = recorder
    config.pluginmanager.register(recorder, "mlprop-report-recorder")


def _property_info(item: pytest.Item) -> tuple[bool, str]:
    from mlprop import plugin

    try:
        if plugin.is_property(item):
            return True, plugin.component_of(item)
    except Exception:
        pass
    return False, ""


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item):
    """Note Hypothesis's statistics of the run (examples tried, shrink steps)."""
    if not _enabled(item.config) or "hypothesis" not in sys.modules:
        yield
        return
    try:
        from hypothesis.statistics import collector
    except ImportError:  # pragma: no cover - an internal module moved
        yield
        return
    outer = collector.value

    def note(stats: dict) -> None:
        from mlprop.report.capture import hypothesis_counts

        item.stash[_STATS] = hypothesis_counts(stats)
        if outer is not None:
            outer(stats)

    with collector.with_value(note):
        yield


def _replay_command(item: pytest.Item) -> str:
    from mlprop import plugin

    session = item.config.stash.get(plugin._SESSION, None)
    parts = ["python", "-m", "pytest",
             f"'{item.path}::{item.name}'", "-p", "no:cacheprovider"]
    if session is not None:
        parts += ["--mlprop-target", session.spec, "--mlprop-profile",
                  session.profile.removeprefix("mlprop-")]
    seed = item.config.getoption("hypothesis_seed", None)
    if seed is not None:
        parts.append(f"--hypothesis-seed={seed}")
    return " ".join(parts)


def _likely_causes(name: str) -> list[dict[str, str]]:
    from mlprop.plugin import likely_causes

    return likely_causes(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if not _enabled(item.config):
        return
    report = outcome.get_result()
    is_prop, component = _property_info(item)
    data: dict[str, Any] = {"property": is_prop, "component": component,
                            "name": getattr(item, "originalname", item.name),
                            "test": item.name}
    if report.when == "call":
        data.update(item.stash.get(_STATS, {}))
    if is_prop and report.failed and call.excinfo is not None and report.when == "call":
        from mlprop.report.capture import describe_failure

        failure = describe_failure(call.excinfo.value, component=component)
        failure["doc"] = inspect.getdoc(getattr(item, "function", None)) or ""
        failure["replay"] = _replay_command(item)
        failure["likely_causes"] = _likely_causes(data["name"])
        data["failure"] = failure
    report.mlprop_report = data


_RANK = {"skipped": 0, "passed": 1, "xfailed": 2, "xpassed": 3, "failed": 4, "error": 5}


def _status(report: pytest.TestReport) -> str | None:
    """The status one phase's report gives the test (None: a setup or teardown that
    passed)."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.failed:
        return "error"
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return None


class Recorder:
    """Collects the tests' report data on the process that writes the report."""

    def __init__(self, config: pytest.Config, directory: Path) -> None:
        self.config = config
        self.directory = directory
        self.started = time.time()
        self.tests: dict[str, dict[str, Any]] = {}
        self.deselected = 0

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "mlprop_report", None)
        if data is None:
            return
        entry = self.tests.setdefault(report.nodeid, {
            "nodeid": report.nodeid, "name": data["name"], "test": data["test"],
            "component": data["component"], "property": data["property"], "status": None,
            "seconds": 0.0, "reason": ""})
        entry["seconds"] += float(report.duration or 0.0)
        status = _status(report)
        if status is not None and (entry["status"] is None
                                   or _RANK[status] > _RANK[entry["status"]]):
            entry["status"] = status
        if report.skipped:
            reason = getattr(report, "wasxfail", None) or (
                report.longrepr[2] if isinstance(report.longrepr, tuple) else "")
            entry["reason"] = str(reason).removeprefix("Skipped: ")
        for key in ("examples", "invalid", "shrinks"):
            if key in data:
                entry[key] = data[key]
        if "failure" in data:
            entry["failure"] = data["failure"]

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from mlprop import plugin
        from mlprop.report import properties

        config = self.config
        target = config.stash.get(plugin._TARGET, None)
        results = properties.build_results(
            tests=list(self.tests.values()), session=config.stash.get(plugin._SESSION, None),
            seconds=time.time() - self.started, exitstatus=int(exitstatus),
            deselected=self.deselected, target_name=getattr(target, "name", None))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        try:
            written = properties.write_report(self.directory, results)
        except (OSError, ReportError) as exc:
            if reporter is not None:
                reporter.write_line(f"mlprop: the report could not be written: {exc}",
                                    red=True)
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        if reporter is not None:
            reporter.write_line(f"mlprop report: {written[-1]}")


def report_directory(config: pytest.Config) -> Path | None:
    """The directory this run writes its report to (None: no report)."""
    recorder = config.stash.get(_STATE, None)
    return None if recorder is None else recorder.directory
