"""The mutation audit: mutmut over the configured sources, then the ML-fault mutants.

:func:`run_audit` is what ``mlprop audit`` runs:

1. mutmut 3 (``[tool.mutmut]`` in pyproject.toml) in a subprocess, with the model cache
   and Hypothesis profile pinned (see :func:`audit_environment`); progress goes to stderr.
   mutmut itself re-tests only mutants of changed functions, and when nothing that mutmut
   reads has changed since the last complete run the audit does not start it at all (its
   clean-test run alone costs a whole suite run).
2. the per-file ``.meta`` results, with the reviewed equivalent-mutant list applied
   (:mod:`mlprop.audit.report`), and the diff of every undetected mutant;
3. with ``ml_mutants=True``, the libcst ML-fault mutants (:mod:`mlprop.audit.ml_mutants`),
   each against the tests mutmut found covering its function
   (:mod:`mlprop.audit.ml_runner`); the tests that killed them are re-run unmutated to
   rule out a flaky kill; verdicts are cached until any input changes.

It runs in any project: mutmut is configured by the project's ``[tool.mutmut]``; the
reviewed equivalent-mutant list is the project's own (``--equivalents``, else
``[tool.mlprop] equivalents``, else :data:`DEFAULT_EQUIVALENTS` beside pyproject.toml);
every test run loads the import guard (:mod:`mlprop.audit.guard`) for the packages the
mutation paths name. With ``[tool.mlprop] suite = true`` (the setting that makes a plain
``pytest`` run mlprop's properties) the mutant runs include mlprop's property suite against
the project's target: it is linked into ``mutants/`` as :data:`SUITE_LINK` and added to
mutmut's test selection, so mutmut maps each property to the functions it covers and runs it
on their mutants. Without it, the report names, per surviving ML mutant, the properties that
catch that kind of fault (:func:`mlprop.audit.ml_mutants.properties_for`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mlprop.atomic import atomic_write_text
from mlprop.audit import report as rep
from mlprop.audit import retest
from mlprop.audit.training_path import mutmut_key
from mlprop.docs_links import page_url

DEFAULT_EQUIVALENTS = "equivalent_mutants.toml"
"""The project's reviewed equivalent-mutant list, beside its pyproject.toml (default)."""
SUITE_LINK = "mlprop_properties"
"""``mutants/<SUITE_LINK>``: a link to the installed property suite (``suite = true``)."""
EXTRA_TESTS_ENV = "MLPROP_AUDIT_EXTRA_TESTS"
"""JSON list the mutmut launcher appends to mutmut's test selection."""
NAMES_FILE_ENV = "MLPROP_AUDIT_MUTANT_NAMES"
"""A file of mutant names (whitespace-separated) the launcher passes to ``mutmut run``."""
NAMES_FILE = "mlprop-shard-mutants.txt"
GUARD_FILE = "mlprop-import-guard.txt"
STATE_FILE = "mlprop-audit-state.json"
ML_RESULTS_FILE = "mlprop-ml-mutants.json"
CACHE_DIR = "mlprop-cache"
Progress = Callable[[str], None]


class AuditError(Exception):
    """The audit could not run (no config, mutmut missing or failing); exit 2."""


@dataclass(frozen=True)
class MutmutConfig:
    """The parts of ``[tool.mutmut]`` the audit needs."""

    source_paths: tuple[str, ...]
    only_mutate: tuple[str, ...] = ()
    do_not_mutate: tuple[str, ...] = ()
    also_copy: tuple[str, ...] = ()
    pytest_add_cli_args: tuple[str, ...] = ()
    target: str | None = None  # [tool.mlprop] target (None: not set)
    test_selection: tuple[str, ...] = ()  # pytest_add_cli_args_test_selection
    suite: bool = False  # [tool.mlprop] suite: mlprop's properties run on the mutants too
    equivalents: str | None = None  # [tool.mlprop] equivalents

    def should_mutate(self, path: str) -> bool:
        """mutmut's rule (configuration.Config.should_mutate) for a relative ``.py`` path."""
        if not path.endswith(".py"):
            return False
        if self.only_mutate and not any(fnmatch.fnmatch(path, p) for p in self.only_mutate):
            return False
        return not any(fnmatch.fnmatch(path, p) for p in self.do_not_mutate)

    def mutated_files(self, root: Path) -> list[str]:
        found = []
        for source in self.source_paths:
            base = root / source
            paths = [base] if base.is_file() else sorted(base.rglob("*.py"))
            found += [p.relative_to(root).as_posix() for p in paths]
        return sorted(p for p in set(found) if self.should_mutate(p))

    def packages(self, root: Path) -> list[str]:
        """The top-level packages (or modules) the mutated files belong to."""
        return sorted({rep.module_name(p).split(".")[0] for p in self.mutated_files(root)}
                      - {""})


def load_config(root: Path) -> MutmutConfig:
    """``[tool.mutmut]`` (and ``[tool.mlprop]``) of ``root/pyproject.toml``; anything
    malformed is an :class:`AuditError` naming the file and the key."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise AuditError(f"no pyproject.toml in {root}: run mlprop audit from the project root")
    from mlprop.config import ConfigError, read_pyproject, validate

    try:
        tool = read_pyproject(pyproject).get("tool", {})
    except ConfigError as exc:
        raise AuditError(str(exc)) from None
    if not isinstance(tool, dict):
        raise AuditError(f"{pyproject}: tool: expected a table, got {type(tool).__name__}")
    section = tool.get("mutmut")
    if not section:
        raise AuditError(f"{pyproject} has no [tool.mutmut] section (see "
                         f"{page_url('how-to/audit')})")
    if not isinstance(section, dict):
        raise AuditError(f"{pyproject}: [tool.mutmut] must be a table, got "
                         f"{type(section).__name__}")

    def strings(key: str) -> tuple[str, ...]:
        value = section.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AuditError(f"{pyproject}: [tool.mutmut] {key}: expected a list of strings, "
                             f"got {value!r}")
        return tuple(value)

    sources = strings("source_paths") or strings("paths_to_mutate")
    if not sources:
        raise AuditError(f"{pyproject}: [tool.mutmut] needs source_paths")
    try:
        mlprop_section = validate(tool.get("mlprop", {}), str(pyproject))
    except ConfigError as exc:
        raise AuditError(str(exc)) from None
    return MutmutConfig(
        source_paths=sources, only_mutate=strings("only_mutate"),
        do_not_mutate=strings("do_not_mutate"), also_copy=strings("also_copy"),
        pytest_add_cli_args=strings("pytest_add_cli_args"),
        target=mlprop_section.get("target"),
        test_selection=strings("pytest_add_cli_args_test_selection") + strings("tests_dir"),
        suite=bool(mlprop_section.get("suite", False)),
        equivalents=mlprop_section.get("equivalents"))


def equivalents_path(root: Path, config: MutmutConfig, explicit: Path | None = None) -> Path:
    """The project's reviewed equivalent-mutant list: ``explicit`` (``--equivalents``), else
    ``[tool.mlprop] equivalents`` (relative to the project root; it must exist), else
    :data:`DEFAULT_EQUIVALENTS` beside pyproject.toml (absent: an empty list)."""
    if explicit is not None:
        return Path(explicit)
    if config.equivalents:
        path = root / config.equivalents
        if not path.is_file():
            raise AuditError(f"[tool.mlprop] equivalents: no such file: {path}")
        return path
    return root / DEFAULT_EQUIVALENTS


def suite_tests(root: Path, config: MutmutConfig) -> list[str]:
    """What the audit adds to mutmut's test selection: mlprop's property suite (linked into
    ``mutants/``) when ``suite`` is on, plus the project's test paths when its
    ``[tool.mutmut]`` selects none (mutmut would otherwise run pytest's defaults, which the
    added suite would replace)."""
    if not config.suite:
        return []
    extra = [SUITE_LINK]
    if not config.test_selection:
        extra += [t for t in _pytest_testpaths(root) or ["tests", "test"]
                  if (root / t).exists()]
    return extra


def _pytest_testpaths(root: Path) -> list[str]:
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    paths = data.get("tool", {}).get("pytest", {}).get("ini_options", {}).get("testpaths")
    return [str(p) for p in paths] if isinstance(paths, list) else []


def link_suite(root: Path) -> Path:
    """Point ``mutants/<SUITE_LINK>`` at the installed property suite (replacing a link to
    another installation); returns the suite's directory."""
    from mlprop.suite import properties_dir

    suite = properties_dir()
    link = root / "mutants" / SUITE_LINK
    if link.is_symlink() and Path(os.readlink(link)) == suite:
        return suite
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise AuditError(f"{link} exists and is not mlprop's link to its property suite: "
                         "remove it")
    temporary = link.with_name(f".{SUITE_LINK}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(suite, target_is_directory=True)
    os.replace(temporary, link)
    return suite


def audit_environment(root: Path, base: Mapping[str, str] | None = None, *,
                      packages: Sequence[str] = (), extra_tests: Sequence[str] = (),
                      ) -> dict[str, str]:
    """The environment of every test run of the audit.

    The model cache lives in ``mutants/`` (a mutant can never write into the user's cache,
    and a fresh audit starts from an empty one), and mlprop's ``mutmut`` profile is
    forced even where CI sets another. With ``packages``, every pytest run loads the import
    guard (:mod:`mlprop.audit.guard`) for them; ``extra_tests`` go to mutmut's launcher."""
    from mlprop.audit import guard

    env = dict(os.environ if base is None else base)
    if packages:
        plugins = [p for p in env.get("PYTEST_PLUGINS", "").split(",") if p]
        if "mlprop.audit.guard" not in plugins:
            plugins.append("mlprop.audit.guard")
        env["PYTEST_PLUGINS"] = ",".join(plugins)
        env[guard.PACKAGES_ENV] = ",".join(packages)
        env[guard.REPORT_ENV] = str(root / "mutants" / GUARD_FILE)
        env[guard.ROOTS_ENV] = os.pathsep.join([str(root), str(root / "mutants")])
    env[EXTRA_TESTS_ENV] = json.dumps(list(extra_tests))
    cache = root / "mutants" / CACHE_DIR
    env["MLPROP_CACHE_DIR"] = str(cache)
    env["XDG_CACHE_HOME"] = str(cache / "xdg")
    env["MLPROP_PROFILE"] = "mutmut"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _walk_files(root: Path, entries: Iterable[str]) -> Iterable[Path]:
    """The files under ``entries`` that a test run reads: not caches, build metadata
    (``*.egg-info`` left by an editable install) or hidden folders, which differ between
    working copies of one commit."""
    for entry in entries:
        path = root / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                inside = child.relative_to(path).parts[:-1]
                if child.is_file() and child.suffix not in {".pyc", ".meta"} and not any(
                        part == "__pycache__" or part.startswith(".")
                        or part.endswith(".egg-info") for part in inside):
                    yield child


def _verdict_inputs(config: MutmutConfig) -> list[str]:
    """Where the files a verdict depends on live: the sources, the copied folders, the test
    folders (mutmut's selection included) and the test configuration files."""
    selected = [entry for entry in config.test_selection
                if not entry.startswith("-") and "::" not in entry]
    return list(dict.fromkeys([
        *config.source_paths, *config.also_copy, "tests", "test", *selected,
        "pyproject.toml", "setup.cfg", "setup.py", "conftest.py", "pytest.ini", "tox.ini"]))


def fingerprint(root: Path, config: MutmutConfig, *, exclude: Iterable[str] = ()) -> str:
    """A hash of everything a mutmut verdict depends on (sources, tests, config, versions,
    and with ``suite`` the property suite's files), leaving out the files in ``exclude``
    (relative paths)."""
    digest = hashlib.sha256()
    skipped = {root / path for path in exclude}
    for path in _walk_files(root, _verdict_inputs(config)):
        if path in skipped:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    if config.suite:
        from mlprop.suite import properties_dir

        suite = properties_dir()
        for path in _walk_files(suite, ["."]):
            digest.update(b"suite:" + path.relative_to(suite).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    for package in ("mutmut", "torch", "numpy", "hypothesis", "pytest", "mlprop"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{package}={importlib.metadata.version(package)}".encode())
    # the version, not sys.version: two builds of one Python give the same verdicts
    digest.update(f"{platform.python_implementation()} {platform.python_version()}".encode())
    return digest.hexdigest()[:24]


# --------------------------------------------------------------------------- mutmut


_PROGRESS = re.compile(r"(\d+)/(\d+)\s+\S+\s+(\d+)")


@dataclass
class MutmutRun:
    skipped: bool
    seconds: float
    tested: int
    output_tail: str = ""
    outcomes: list[rep.MutantOutcome] = field(default_factory=list)  # the .meta results


def _snapshot(outcomes: Sequence[rep.MutantOutcome]) -> dict[str, tuple]:
    return {o.name: (o.exit_code, o.seconds) for o in outcomes}


_PRELUDE = f"""\
import json, os, sys
# what the audit hands this process is taken out of its environment, so that the tests'
# own subprocesses (a test that runs `mlprop audit` on a project of its own) never see it
extra = json.loads(os.environ.pop({EXTRA_TESTS_ENV!r}, None) or "[]")
if extra:  # mlprop's property suite joins the project's test selection (suite = true)
    from mutmut.configuration import config
    selection = config().pytest_add_cli_args_test_selection
    selection.extend(test for test in extra if test not in selection)
"""
"""Every mutmut process the audit starts sees the same test selection."""

_LAUNCHER = _PRELUDE + f"""\
names = os.environ.pop({NAMES_FILE_ENV!r}, None)
if names:  # a shard's mutants: read from a file (a command line has a size limit)
    with open(names, encoding="utf-8") as listed:
        sys.argv += [name for name in listed.read().split() if name]
import time
from mutmut.state import state
from mutmut.workers import isolation

submitted = {{}}


def cheapest_first(submit):
    # a mutant's tests run with -x: the quickest (by the stats run's seconds) go first, so a
    # mutant that a quick test kills never waits for the slow ones (mutmut's fork runner
    # sorts them so; its fork server, which `mlprop init` configures, sends them unsorted)
    def ordered(self, mutant_name, tests, *args, **kwargs):
        seconds = state().duration_by_test
        tests = sorted(tests, key=lambda test: (seconds.get(test, float("inf")), test))
        submitted[mutant_name] = time.monotonic()
        return submit(self, mutant_name, tests, *args, **kwargs)
    return ordered


def timed(wait):
    # the fork server reports every mutant's duration as 0.0: time it from its submission
    # (a mutant is submitted when a worker is free), so .meta keeps per-mutant seconds
    def result(self, *args, **kwargs):
        outcome = wait(self, *args, **kwargs)
        start = submitted.pop(outcome.mutant_name, None)
        if start is not None and not outcome.duration:
            outcome.duration = round(time.monotonic() - start, 3)
        return outcome
    return result


isolation.ForkServerRunner.submit = cheapest_first(isolation.ForkServerRunner.submit)
isolation.ForkServerRunner.wait_for_result = timed(isolation.ForkServerRunner.wait_for_result)
from mutmut.__main__ import cli
sys.exit(cli())
"""


_GENERATE = _PRELUDE + """\
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants,
                             setup_source_paths, store_lines_covered_by_tests)
from mutmut.mutation.trampoline import set_mutant_under_test
set_mutant_under_test("mutant_generation")
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
store_lines_covered_by_tests()
create_mutants(int(sys.argv[1]))
"""


_STATS = _PRELUDE + """\
from mutmut.__main__ import collect_or_load_stats
from mutmut.workers.isolation import get_mutant_runner
collect_or_load_stats(get_mutant_runner(int(sys.argv[1])), apply_config_invalidation=True)
"""


def _mutmut_step(root: Path, script: str, what: str, *, max_children: int,
                 env: Mapping[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", script, str(max_children)], cwd=root,
                          env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).splitlines()
        raise AuditError(f"mutmut could not {what} (exit code {done.returncode}):\n"
                         + "\n".join(_failure_summary(lines)))


def refresh_stats(root: Path, *, max_children: int, env: Mapping[str, str]) -> None:
    """mutmut's coverage run alone, as ``mutmut run`` starts it (loaded when current, new
    tests added, redone when its inputs changed): a shard whose mutmut mutants all have a
    verdict still gives its ML mutants and re-test the tests that cover them now."""
    _mutmut_step(root, _STATS, "update its test coverage", max_children=max_children, env=env)


def generate_mutants(root: Path, config: MutmutConfig, *, max_children: int,
                     env: Mapping[str, str]) -> list[rep.MutantOutcome]:
    """mutmut's generation step alone (no test runs): ``mutants/`` gets every mutant and its
    ``.meta`` entry, as ``mutmut run`` would write them; returns every mutant with the
    verdict it has so far. A shard needs the whole mutant list before it tests any."""
    _mutmut_step(root, _GENERATE, "generate the mutants", max_children=max_children, env=env)
    return rep.read_mutmut_results(root, config.mutated_files(root))


def mutmut_command(max_children: int | None) -> list[str]:
    """``mutmut run`` through this interpreter (no reliance on a console script on PATH);
    the launcher adds the tests named in :data:`EXTRA_TESTS_ENV` to mutmut's test selection
    (mutmut keeps its configuration in one object that its forked workers inherit)."""
    command = [sys.executable, "-c", _LAUNCHER, "run"]
    if max_children is not None:
        command += ["--max-children", str(max_children)]
    return command


def run_mutmut(root: Path, config: MutmutConfig, *, max_children: int | None,
               progress: Progress, env: Mapping[str, str],
               names: Sequence[str] | None = None) -> MutmutRun:
    """Run mutmut unless nothing changed since the last complete run. With ``names`` (a
    shard's part), only those of them that have no verdict yet are run."""
    state_path = root / "mutants" / STATE_FILE
    files = config.mutated_files(root)
    before = rep.read_mutmut_results(root, files)
    current = fingerprint(root, config)
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        state = {}
    unchecked = sum(o.status == "not checked" for o in before)
    if state.get("fingerprint") == current and before and not unchecked and names is None:
        progress("mutmut: nothing changed since the last complete run; reusing its results")
        return MutmutRun(skipped=True, seconds=0.0, tested=0, outcomes=before)
    inputs = test_inputs(root, config)
    if before and isinstance(state.get("inputs"), dict):
        reset = forget_verdicts(root, files, state["inputs"], inputs)
        if reset:
            progress(f"mutmut: tests or configuration changed: {reset} mutant verdicts "
                     "will be checked again")
            before = rep.read_mutmut_results(root, files)
    command = mutmut_command(max_children)
    mine = None if names is None else set(names)
    if mine is not None:
        pending = [o.name for o in before if o.name in mine and o.status == "not checked"]
        if not pending:
            progress(f"mutmut: all {len(mine)} mutants of this shard have a verdict; "
                     "reusing them (and updating the test coverage)")
            refresh_stats(root, max_children=max_children or os.cpu_count() or 2, env=env)
            atomic_write_text(state_path, json.dumps({"fingerprint": current,
                                                      "inputs": inputs}))
            return MutmutRun(skipped=True, seconds=0.0, tested=0, outcomes=before)
        names_file = root / "mutants" / NAMES_FILE
        atomic_write_text(names_file, "\n".join(pending) + "\n")
        env = {**env, NAMES_FILE_ENV: str(names_file)}
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=400)
    last_report = [0.0, ""]

    latest: list[tuple[str, ...] | None] = [None]

    def show(text: str, *, force: bool = False) -> None:
        for line in text.splitlines():
            match = _PROGRESS.search(line)
            if match:
                latest[0] = match.groups()
                continue
            line = line.strip(" \r⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
            if line and line != last_report[1] and (line.startswith(
                    ("done", "Running", "Generating", "Found", "Stopping", "Failed", "failed"))
                    or "mutations/second" in line):
                last_report[1] = line
                progress(f"mutmut: {line}")
        now = time.monotonic()
        if latest[0] and (force or now - last_report[0] >= 10):
            done, total, killed = latest[0]
            progress(f"mutmut: {done}/{total} mutants tested ({killed} killed, "
                     f"{now - start:.0f} s)")
            last_report[0] = now
            latest[0] = None

    (root / "mutants" / GUARD_FILE).unlink(missing_ok=True)
    process = subprocess.Popen(command, cwd=root, env=dict(env),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        buffer = b""
        while chunk := process.stdout.read1(4096):
            buffer += chunk
            *complete, buffer = re.split(rb"[\r\n]", buffer)
            text = b"\n".join(complete).decode("utf-8", "replace")
            if text.strip():
                tail.extend(t for t in text.splitlines() if t.strip())
                show(text)
        show(buffer.decode("utf-8", "replace"), force=True)
        process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    seconds = time.monotonic() - start
    _raise_guard_problem(root)
    if process.returncode != 0:
        raise AuditError(f"mutmut run failed (exit code {process.returncode}):\n"
                         + "\n".join(_failure_summary(list(tail))))
    after = rep.read_mutmut_results(root, files)
    old = _snapshot(before)
    tested = sum(1 for name, value in _snapshot(after).items()
                 if value[0] is not None and old.get(name) != value)
    judged = after if mine is None else [o for o in after if o.name in mine]
    if not any(o.status == "not checked" for o in judged):
        atomic_write_text(state_path, json.dumps({"fingerprint": current, "inputs": inputs}))
    return MutmutRun(skipped=False, seconds=seconds, tested=tested,
                     output_tail="\n".join(tail), outcomes=after)


def _raise_guard_problem(root: Path) -> None:
    """AuditError with the import guard's message if a test run of the audit tripped it."""
    guard_file = root / "mutants" / GUARD_FILE
    if guard_file.is_file():
        problem = guard_file.read_text(encoding="utf-8").strip()
        guard_file.unlink()
        if problem:
            raise AuditError(problem)


def test_inputs(root: Path, config: MutmutConfig) -> dict[str, str]:
    """Hash of every input of a verdict that mutmut's own change detection misses: the test
    files, configuration and copied folders (and the linked property suite, named as its
    tests are), by relative path. The mutated sources are left out: mutmut tracks those."""
    mutated = {root / path for path in config.mutated_files(root)}
    hashes = {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
              for path in _walk_files(root, _verdict_inputs(config)) if path not in mutated}
    if config.suite:
        from mlprop.suite import properties_dir

        suite = properties_dir()
        hashes.update({f"{SUITE_LINK}/{path.relative_to(suite).as_posix()}":
                       hashlib.sha256(path.read_bytes()).hexdigest()
                       for path in _walk_files(suite, ["."])})
    return hashes


def forget_verdicts(root: Path, files: Sequence[str], old: Mapping[str, str],
                    new: Mapping[str, str]) -> int:
    """mutmut re-tests a mutant only when its function changed: a weakened test would keep
    its old "killed" verdicts. Clear (in the ``.meta`` files) the verdicts of the functions
    covered by a changed test file, or every verdict when a changed file is no test file of
    mutmut's map (a conftest, a helper, the configuration). Returns how many were cleared."""
    changed = {path for path in set(old) | set(new) if old.get(path) != new.get(path)}
    if not changed:
        return 0
    tests_by_key, _ = load_stats(root)
    test_files = {t.split("::")[0] for tests in tests_by_key.values() for t in tests}
    if changed <= test_files:
        keys = {key for key, tests in tests_by_key.items()
                if any(t.split("::")[0] in changed for t in tests)}
    else:
        keys = None  # everything
    cleared = 0
    for source in files:
        meta_path = root / "mutants" / f"{source}.meta"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        codes = meta.get("exit_code_by_key")
        if not isinstance(codes, dict):
            continue
        hit = [name for name, code in codes.items() if code is not None and (
            keys is None or name.partition("__mutmut_")[0] in keys)]
        for name in hit:
            codes[name] = None
        if hit:
            atomic_write_text(meta_path, json.dumps(meta))
            cleared += len(hit)
    return cleared


_SUMMARY = re.compile(r"^(FAILED|ERROR) |failed to|Failed to|Stopping early|UsageError|"
                      r"^mlprop: |^E  |\d+ (failed|passed|error)")


def _failure_summary(lines: Sequence[str], keep: int = 8) -> list[str]:
    """The lines of mutmut's output that say what failed, then its last few lines."""
    picked = [line for line in lines if _SUMMARY.search(line)]
    tail = [line for line in lines[-keep:] if line not in picked]
    return [*picked[-30:], *tail]


def mutant_diff(root: Path, name: str, path: str) -> str:
    """mutmut's unified diff of one mutant (empty if it cannot be produced)."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant
    except ImportError:
        return ""
    try:
        with contextlib.chdir(root):
            return get_diff_for_mutant(name, path=path)
    except Exception as exc:
        return f"(no diff: {type(exc).__name__}: {exc})"


def _read_stats(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "mutants" / "mutmut-stats.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_stats(root: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """mutmut's map of function key -> covering tests, and test -> seconds."""
    data = _read_stats(root)
    return ({k: sorted(v) for k, v in data.get("tests_by_mangled_function_name", {}).items()},
            dict(data.get("duration_by_test", {})))


def load_callers(root: Path) -> dict[str, list[str]]:
    """mutmut's call graph from its coverage run: function key -> the keys that called it."""
    return {k: sorted(v) for k, v in _read_stats(root).get("function_dependencies", {}).items()}


# --------------------------------------------------------------------------- ML mutants


@dataclass
class MLOutcome:
    id: str
    operator: str
    path: str
    line: int
    function: str
    description: str
    status: str
    killed_by: str | None = None
    tests: int = 0
    seconds: float = 0.0
    detail: str = ""
    reason: str | None = None
    diff: str = field(default="", repr=False)
    would_catch: list[str] = field(default_factory=list)
    """Survivors when the property suite was not in the run: mlprop's properties that catch
    this kind of fault (the fault catalogue's ``catches``)."""


def apply_ml_equivalents(raw: Sequence[MLOutcome], equivalents: Mapping[str, str],
                         ) -> tuple[list[MLOutcome], list[str]]:
    """Mark reviewed undetected ML mutants "equivalent"; return the outcomes and the stale
    entries (naming no mutant of ``raw``, or one the tests now kill)."""
    outcomes, stale = [], []
    for outcome in raw:
        reason = equivalents.get(outcome.id)
        if reason is None:
            outcomes.append(outcome)
        elif outcome.status in {"killed", "timeout"}:
            stale.append(outcome.id)
            outcomes.append(outcome)
        else:
            outcomes.append(replace(outcome, status="equivalent", reason=reason,
                                    would_catch=[]))
    known = {o.id for o in raw}
    stale += [name for name in equivalents if name not in known]
    return outcomes, sorted(stale)


def run_ml_mutants(root: Path, config: MutmutConfig, *, max_children: int,
                   progress: Progress, env: Mapping[str, str],
                   equivalents: Mapping[str, str], only: set[str] | None = None,
                   ) -> tuple[list[MLOutcome], list[str], bool]:
    """Generate, run (or reuse) and judge every ML mutant (with ``only``, a shard's part of
    them, by id); return outcomes, stale equivalent entries and whether anything was run."""
    from mlprop.audit import ml_mutants, ml_runner

    files = config.mutated_files(root)
    mutants = [m for m in ml_mutants.generate_for_paths(root, files)
               if only is None or m.id in only]
    tests_by_key, durations = load_stats(root)
    # like mutmut, re-test a mutant when its own file or anything else it runs with changes
    current = fingerprint(root, config, exclude=files) + _runner_fingerprint()
    cache_path = root / "mutants" / ML_RESULTS_FILE
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        cache = {}
    cached = cache.get("results", {}) if cache.get("fingerprint") == current else {}
    items, results, tests_of = [], {}, {}
    for mutant in mutants:
        tests = sorted((_from_root(t) for t in tests_by_key.get(
            mutmut_key(mutant.module, mutant.function), [])),
            key=lambda t: (durations.get(_from_mutants(t), 0.0), t))
        tests_of[mutant.id] = tests
        hit = cached.get(mutant.id)
        if hit and hit.get("source_sha") == mutant.source_sha and hit.get("tests") == tests:
            results[mutant.id] = ml_runner.MLResult(**hit["result"])
            continue
        estimate = sum(durations.get(_from_mutants(t), 0.0) for t in tests)
        items.append(ml_runner.WorkItem(
            id=mutant.id, module=mutant.module, function=mutant.function, path=mutant.path,
            source=mutant.source, tests=tests, timeout=max(120.0, 60.0 + 10.0 * estimate)))
    ran = bool(items)
    if items:
        progress(f"ML mutants: running {len(items)} of {len(mutants)} "
                 f"({len(mutants) - len(items)} unchanged since the last audit)")
        done = [0]

        def on_result(result: ml_runner.MLResult) -> None:
            done[0] += 1
            progress(f"ML mutants: {done[0]}/{len(items)} {result.id}: {result.status}"
                     + (f" by {result.killed_by}" if result.killed_by else ""))

        spec = _worker_spec(root, config, items, max_children, env)
        spec["coverage"] = {  # for the training-path mutants (mlprop.audit.training_path)
            "tests_by_key": {key: [_from_root(t) for t in tests]
                             for key, tests in tests_by_key.items()},
            "callers": load_callers(root),
            "durations": {_from_root(t): seconds for t, seconds in durations.items()}}
        worker_path = root / "mutants" / "mlprop-ml-worker.json"
        try:
            for result in ml_runner.run_worker(spec, worker_path, on_result=on_result,
                                               env=dict(env)):
                results[result.id] = result
            _recheck_kills(root, config, results, {i.id for i in items}, env, progress)
        except RuntimeError as exc:
            raise AuditError(str(exc)) from None
        kept = {key: value for key, value in cached.items() if key not in results}
        atomic_write_text(cache_path, json.dumps({"fingerprint": current, "results": {
            **kept, **{m.id: {"source_sha": m.source_sha, "tests": tests_of[m.id],
                              "result": asdict(results[m.id])}
                       for m in mutants if m.id in results}}}, indent=1))
    raw = []
    for mutant in mutants:
        result = results[mutant.id]
        would = (ml_mutants.properties_for(mutant.operator)
                 if not config.suite and result.status in {"survived", "no tests"} else [])
        raw.append(MLOutcome(
            id=mutant.id, operator=mutant.operator, path=mutant.path, line=mutant.line,
            function=mutant.function, description=mutant.description, status=result.status,
            killed_by=result.killed_by, tests=result.tests, seconds=round(result.seconds, 2),
            detail=result.detail, diff=mutant.diff, would_catch=would))
    outcomes, stale = apply_ml_equivalents(raw, equivalents)
    return outcomes, stale, ran


def _runner_fingerprint() -> str:
    """A hash of the code that decides ML verdicts (generation, worker, training path): a
    changed runner re-judges every ML mutant, even within one mlprop version."""
    from mlprop.audit import ml_mutants, ml_runner, training_path

    digest = hashlib.sha256()
    for module in (ml_mutants, ml_runner, training_path):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:12]


def _from_root(test: str) -> str:
    """A test id mutmut recorded (relative to ``mutants/``) as the ML worker, which runs in
    the project root, names it: the linked property suite lives only in ``mutants/``."""
    if test.startswith(f"{SUITE_LINK}/"):
        return f"mutants/{test}"
    return test


def _from_mutants(test: str) -> str:
    return test.removeprefix("mutants/") if test.startswith(f"mutants/{SUITE_LINK}/") \
        else test


def _worker_spec(root: Path, config: MutmutConfig, items: Sequence[Any], max_children: int,
                 env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "root": str(root), "sys_path": ["src", "."], "max_children": max_children,
        "items": [asdict(i) for i in items], "warm_up": True, "prepare": config.target,
        "pytest_args": list(config.pytest_add_cli_args),
        "env": {"MUTANT_UNDER_TEST": "mlprop-ml-mutant",
                "MLPROP_PROFILE": env.get("MLPROP_PROFILE", "mutmut")},
    }


def _recheck_kills(root: Path, config: MutmutConfig, results: dict[str, Any],
                   fresh: set[str], env: Mapping[str, str], progress: Progress) -> None:
    """Re-run every test that killed an ML mutant in this run (``fresh``) without any
    mutant: a test that fails anyway proves nothing, so its kills become "suspicious"."""
    from mlprop.audit import ml_runner

    killers = sorted({r.killed_by for key, r in results.items()
                      if key in fresh and r.status == "killed" and r.killed_by})
    if not killers:
        return
    progress(f"ML mutants: re-running the {len(killers)} killing tests unmutated")
    item = ml_runner.WorkItem(id="clean", module="", function="", path="", source="",
                              tests=killers, timeout=600.0)
    spec = _worker_spec(root, config, [item], 1, env)
    spec["warm_up"] = False
    spec["prepare"] = None
    clean, = ml_runner.run_worker(spec, root / "mutants" / "mlprop-ml-clean.json",
                                  env=dict(env))
    if clean.status not in {"survived", "killed"}:
        raise AuditError(f"ML mutants: the unmutated re-run of the killing tests ended as "
                         f"{clean.status!r} {clean.detail}")
    failing = set(clean.detail.split()) if clean.status == "killed" else set()
    for key, result in results.items():
        if key in fresh and result.status == "killed" and result.killed_by in failing:
            results[key] = ml_runner.MLResult(
                result.id, "suspicious", result.killed_by, result.tests, result.seconds,
                f"{result.killed_by} also fails without the mutant")


def tally_ml(outcomes: Sequence[MLOutcome]) -> tuple[dict[str, Any], dict[str, dict]]:
    from mlprop.audit.ml_mutants import OPERATORS

    def counts(group: Sequence[MLOutcome]) -> dict[str, Any]:
        c = {s: sum(o.status == s for o in group) for s in ("killed", "timeout", "survived",
                                                           "equivalent")}
        other = len(group) - sum(c.values())
        judged = len(group) - c["equivalent"]
        rate = 100.0 * (c["killed"] + c["timeout"]) / judged if judged else None
        return {"total": len(group), **c, "other": other,
                "kill_rate": None if rate is None else round(rate, 2)}

    by_operator = {op: counts([o for o in outcomes if o.operator == op])
                   for op in OPERATORS if any(o.operator == op for o in outcomes)}
    return counts(outcomes), by_operator


# --------------------------------------------------------------------------- the audit


@dataclass
class AuditOptions:
    root: Path
    fail_under: float | None = None
    max_children: int | None = None
    ml_mutants: bool = False
    equivalents: Path | None = None  # None: the project's own list (equivalents_path)
    suite: bool | None = None  # None: [tool.mlprop] suite decides
    shard: Any = None  # mlprop.audit.shards.Shard: run only that part, return a shard result
    timings: Path | None = None  # an earlier audit's --json: balances the shards
    progress: Progress = field(default=lambda message: print(message, file=sys.stderr,
                                                             flush=True))


def run_audit(options: AuditOptions) -> dict[str, Any]:
    """Run the audit and return the report (see :func:`build_report`)."""
    root = options.root.resolve()
    config = load_config(root)
    if options.suite is not None:
        config = replace(config, suite=options.suite)
    if not config.mutated_files(root):
        raise AuditError(
            f"[tool.mutmut] in {root / 'pyproject.toml'}: source_paths "
            f"{list(config.source_paths)}"
            + (f" with only_mutate {list(config.only_mutate)}" if config.only_mutate else "")
            + (f" and do_not_mutate {list(config.do_not_mutate)}" if config.do_not_mutate
               else "") + " match no .py file")
    required = {"mutmut": "mutmut"}
    if options.ml_mutants:
        required["libcst"] = "the ML-mutant pass"
    for module, why in required.items():
        if importlib.util.find_spec(module) is None:
            raise AuditError(f"{module} is not installed ({why} needs it): "
                             "pip install 'mlprop[dev]'")
    try:
        equivalents = rep.load_equivalents(equivalents_path(root, config,
                                                            options.equivalents))
    except rep.EquivalentsError as exc:
        raise AuditError(str(exc)) from None
    (root / "mutants").mkdir(exist_ok=True)
    if config.suite:
        link_suite(root)
        options.progress("mlprop audit: mlprop's property suite runs on the mutants too "
                         "([tool.mlprop] suite = true)")
    env = audit_environment(root, packages=config.packages(root),
                            extra_tests=suite_tests(root, config))
    started = time.monotonic()
    children = options.max_children or os.cpu_count() or 2
    current = fingerprint(root, config) + _runner_fingerprint()
    forgotten = retest.forget_stale_kills(root, current)
    if forgotten:
        options.progress(f"training path: {forgotten} earlier re-test kill(s) handed back to "
                         "mutmut (something they depended on changed)")
    part = None if options.shard is None else _shard_part(root, config, options, env, children)
    run = run_mutmut(root, config, max_children=options.max_children,
                     progress=options.progress, env=env,
                     names=None if part is None else part.mutmut)
    if not run.outcomes:
        raise AuditError("mutmut left no results in mutants/ (see its output above)")
    tests_by_key, durations = load_stats(root)
    try:
        retested = retest.retest_training_path(
            root, run.outcomes if part is None else [
                o for o in run.outcomes if o.name in part.mutmut],
            target=config.target, current=current,
            coverage=retest.Coverage(tests_by_key, durations, load_callers(root)),
            pytest_args=config.pytest_add_cli_args, max_children=children, env=env,
            progress=options.progress)
    except RuntimeError as exc:
        raise AuditError(str(exc)) from None
    _raise_guard_problem(root)
    all_outcomes = rep.read_mutmut_results(root, config.mutated_files(root))
    if part is not None:
        all_outcomes = [o for o in all_outcomes if o.name in part.mutmut]
    ml = None
    ml_seconds = None
    if options.ml_mutants:
        ml_start = time.monotonic()
        ml = run_ml_mutants(root, config, max_children=children, progress=options.progress,
                            env=env, equivalents=equivalents.ml if part is None else {},
                            only=None if part is None else set(part.ml))
        ml_seconds = time.monotonic() - ml_start if ml[2] else 0.0
    timing = {
        "wall_seconds": round(time.monotonic() - started, 1),
        "mutmut_seconds": round(run.seconds, 1),
        "mutmut_skipped": run.skipped,
        "mutants_tested": run.tested,
        "mutants_per_minute": round(60.0 * run.tested / run.seconds, 1)
        if run.seconds and run.tested else None,
        "ml_seconds": None if ml_seconds is None else round(ml_seconds, 1),
        "max_children": children,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "suite_in_mutant_runs": config.suite,
        "training_path_retest": retested.as_dict(),
    }
    if part is not None:  # verdicts before the equivalent list: merge applies it once
        return _shard_result(root, config, options, part, all_outcomes, ml, timing,
                             equivalents, tests_by_key, current)
    outcomes, stale = rep.apply_equivalents(all_outcomes, equivalents.mutmut)
    return build_report(root, outcomes, stale, ml, timing, options.fail_under,
                        equivalents)


@dataclass(frozen=True)
class _Part:
    """A shard's part of the work: mutmut mutant names and ML mutant ids."""

    mutmut: frozenset[str]
    ml: frozenset[str]
    ml_order: Mapping[str, int]  # ML mutant id -> its place in the whole list (report order)
    partition: str  # digest of the whole partition
    timings: str  # digest of the per-unit seconds it was balanced with


def _shard_part(root: Path, config: MutmutConfig, options: AuditOptions,
                env: Mapping[str, str], children: int) -> _Part:
    """Generate every mutant (mutmut's and, with ``ml_mutants``, the ML ones), partition
    them the same way any machine would, and return this shard's part."""
    from mlprop.audit import shards

    names = [o.name for o in generate_mutants(root, config, max_children=children, env=env)]
    ml_ids: list[str] = []
    if options.ml_mutants:
        from mlprop.audit import ml_mutants

        ml_ids = [m.id for m in ml_mutants.generate_for_paths(root,
                                                             config.mutated_files(root))]
    seconds = shards.timings_from(options.timings) if options.timings is not None else {}
    units = shards.work_units(names, ml_ids)
    parts = shards.partition(units, options.shard.count, seconds)
    mine = parts[options.shard.index - 1]
    options.progress(f"mlprop audit: shard {options.shard}: {len(mine)} of {len(units)} "
                     f"mutants (balanced by {'recorded seconds' if seconds else 'count'})")
    return _Part(
        mutmut=frozenset(u[len(shards.MUTMUT):] for u in mine if u.startswith(shards.MUTMUT)),
        ml=frozenset(u[len(shards.ML):] for u in mine if u.startswith(shards.ML)),
        ml_order={name: place for place, name in enumerate(ml_ids)},
        partition=shards.digest(parts),
        timings=shards.digest(sorted((u, seconds[u]) for u in units if u in seconds)))


def _shard_result(root: Path, config: MutmutConfig, options: AuditOptions, part: _Part,
                  outcomes: Sequence[rep.MutantOutcome],
                  ml: tuple[list[MLOutcome], list[str], bool] | None, timing: dict[str, Any],
                  equivalents: rep.Equivalents, tests_by_key: Mapping[str, Sequence[str]],
                  current: str) -> dict[str, Any]:
    """The shard result file's content (see :mod:`mlprop.audit.shards`): verdicts before
    the equivalent list is applied (merge applies it once, to all of them), diffs of the
    undetected, the tests covering each mutated function, and the fingerprint."""
    from mlprop.audit import shards

    unjudged = [o.name for o in outcomes if o.status == "not checked"]
    if unjudged:  # mutmut stopped early: a result merge would count as complete is refused
        raise AuditError(f"shard {options.shard}: {len(unjudged)} of its mutmut mutants have "
                         f"no verdict (e.g. {unjudged[0]}); no shard result written, run it "
                         "again")
    functions = {o.name.partition("__mutmut_")[0] for o in outcomes}
    ml_rows = [{**asdict(o), "order": part.ml_order[o.id]} for o in ml[0]] if ml else None
    return {
        "format": shards.FORMAT, "version": shards.VERSION,
        "shard": {"index": options.shard.index, "count": options.shard.count},
        "fingerprint": shards.digest([current, dict(equivalents.mutmut),
                                      dict(equivalents.ml)]),
        "partition": part.partition, "timings": part.timings,
        "options": {"ml_mutants": options.ml_mutants, "suite": config.suite},
        "units": shards.work_units(part.mutmut, part.ml),
        "mutmut": [{"name": o.name, "path": o.path, "exit_code": o.exit_code,
                    "seconds": o.seconds,
                    "diff": None if o.status in rep.DETECTED else mutant_diff(root, o.name,
                                                                              o.path)}
                   for o in outcomes],
        "ml": ml_rows,
        "covering": {key: list(tests_by_key[key])
                     for key in sorted(functions) if key in tests_by_key},
        "equivalents": {"mutmut": dict(equivalents.mutmut), "ml": dict(equivalents.ml)},
        "timing": timing,
    }


def build_report(root: Path, outcomes: Sequence[rep.MutantOutcome], stale: Sequence[str],
                 ml: tuple[list[MLOutcome], list[str], bool] | None, timing: dict[str, Any],
                 fail_under: float | None, equivalents: rep.Equivalents, *,
                 diffs: Mapping[str, str] | None = None,
                 missing_shards: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON-ready report, with ``passed`` and a one-line ``verdict``. ``diffs`` (mutant
    name -> diff) replaces reading them from ``root/mutants`` (a merge of shard results);
    ``missing_shards`` makes it a partial report that never passes."""
    from mlprop.audit.shards import ML, MUTMUT

    def diff(outcome: rep.MutantOutcome) -> str:
        if diffs is not None:
            return diffs.get(outcome.name, "")
        return mutant_diff(root, outcome.name, outcome.path)

    overall, modules = rep.summarize(outcomes)
    undetected = [o for o in outcomes if o.status in rep.UNDETECTED]
    report: dict[str, Any] = {
        "format": 1,
        "mutmut": {
            "overall": overall.as_dict(),
            "modules": {m: t.as_dict() for m, t in modules.items()},
            "survivors": [{"name": o.name, "path": o.path, "status": o.status,
                           "diff": diff(o)} for o in undetected],
            "equivalent": [{"name": o.name, "reason": o.reason, "diff": diff(o)}
                           for o in outcomes if o.status == "equivalent"],
            "stale_equivalents": list(stale),
        },
        "timing": timing,
        # per mutant, for `mlprop audit --shard K/N --timings` to balance the next run
        "unit_seconds": {**{MUTMUT + o.name: o.seconds for o in outcomes
                            if o.seconds is not None},
                         **{ML + o.id: o.seconds for o in (ml[0] if ml else [])}},
    }
    problems = []
    if missing_shards:
        report["missing_shards"] = list(missing_shards)
        problems.append(f"partial merge: shard(s) {', '.join(missing_shards)} missing")
    score = overall.score
    if fail_under is not None and (score is None or score < fail_under):
        problems.append(f"mutmut score {rep.format_score(score)} is under {fail_under:g}%")
    if ml is not None:
        outcomes_ml, stale_ml, _ = ml
        ml_overall, by_operator = tally_ml(outcomes_ml)
        report["ml_mutants"] = {"overall": ml_overall, "by_operator": by_operator,
                                "mutants": [asdict(o) for o in outcomes_ml],
                                "stale_equivalents": stale_ml}
        missed = [o.id for o in outcomes_ml if o.status not in rep.ML_ACCOUNTED]
        if missed:
            problems.append(f"{len(missed)} ML mutant(s) neither killed nor listed as "
                            "equivalent")
    report["score"] = None if score is None else round(score, 2)
    report["fail_under"] = fail_under
    report["passed"] = not problems
    report["verdict"] = ("mlprop audit: FAILED: " + "; ".join(problems) if problems else
                         f"mlprop audit: passed (mutmut score {rep.format_score(score)}"
                         + (f", gate {fail_under:g}%" if fail_under is not None else "")
                         + ")")
    return report
