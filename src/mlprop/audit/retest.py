"""Re-test mutmut's survivors on the training path against every test of the trained model.

mutmut picks each mutant's tests from its coverage run, where a model cached in memory
(``functools.cache`` around the user's ``train()``) is trained by the *first* test that
needs it: every later test got the cached model, so mutmut lists one test for ``train()``
(often one that looks only at shapes) and its mutants survive whatever they break. After
mutmut, the audit hands its survivors to the ML worker in ``mutants/``
(:mod:`mlprop.audit.ml_runner`, ``only_training_path``): it keeps the survivors whose
function runs while the target's model trains, forks each before training, activates the
mutant the way mutmut does (``MUTANT_UNDER_TEST``) and runs the tests of the trained model
(:mod:`mlprop.audit.training_path`). A kill is kept only if the killing test passes without
any mutant; it is written into mutmut's ``.meta`` as exit code 1, so every report and
``mutmut results`` agree.

Invariant: a kill recorded here is forgotten (handed back to mutmut, its verdict cleared)
as soon as anything it depended on changes (the fingerprint of sources, tests,
configuration, suite, versions and this runner): no stale kill survives an edit.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlprop.atomic import atomic_write_text
from mlprop.audit import ml_runner
from mlprop.audit.report import MutantOutcome
from mlprop.audit.training_path import plain_qualname

RETEST_FILE = "mlprop-training-path.json"
KILLED_EXIT_CODE = 1  # what mutmut records for a failing test


@dataclass
class RetestSummary:
    """What the re-test did: survivors handed over, those on the training path, kills."""

    survivors: int = 0
    on_training_path: int = 0
    killed: int = 0
    seconds: float = 0.0
    reused: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"survivors": self.survivors, "on_training_path": self.on_training_path,
                "killed": self.killed, "seconds": round(self.seconds, 1),
                "reused": self.reused}


@dataclass
class Coverage:
    """mutmut's coverage run: tests per function key, seconds per test, callers."""

    tests_by_key: Mapping[str, Sequence[str]]
    durations: Mapping[str, float]
    callers: Mapping[str, Sequence[str]]


def _record_path(root: Path) -> Path:
    return root / "mutants" / RETEST_FILE


def _read_record(root: Path) -> dict[str, Any]:
    try:
        data = json.loads(_record_path(root).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _set_exit_codes(root: Path, codes_by_path: Mapping[str, Mapping[str, int | None]]) -> None:
    """Write verdicts into mutmut's ``.meta`` files (atomically; unknown names ignored)."""
    for source, codes in codes_by_path.items():
        meta_path = root / "mutants" / f"{source}.meta"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        known = meta.get("exit_code_by_key")
        if not isinstance(known, dict):
            continue
        changed = {name: code for name, code in codes.items() if name in known}
        if changed:
            known.update(changed)
            atomic_write_text(meta_path, json.dumps(meta))


def forget_stale_kills(root: Path, current: str) -> int:
    """Before mutmut runs: if the record's fingerprint is not ``current``, clear the
    verdicts of the mutants it killed (mutmut tests them again, then the re-test does)
    and drop the record. Returns how many verdicts were cleared."""
    record = _read_record(root)
    if not record or record.get("fingerprint") == current:
        return 0
    killed = record.get("killed", {})
    by_path: dict[str, dict[str, int | None]] = {}
    for name, entry in killed.items():
        by_path.setdefault(entry["path"], {})[name] = None
    _set_exit_codes(root, by_path)
    with contextlib.suppress(FileNotFoundError):
        _record_path(root).unlink()
    return len(killed)


def _work_item(outcome: MutantOutcome, coverage: Coverage) -> ml_runner.WorkItem:
    key = outcome.name.rpartition("__mutmut_")[0]
    local = key.removeprefix(f"{outcome.module}.")
    tests = sorted(coverage.tests_by_key.get(key, ()),
                   key=lambda test: (coverage.durations.get(test, 0.0), test))
    estimate = sum(coverage.durations.get(test, 0.0) for test in tests)
    return ml_runner.WorkItem(
        id=outcome.name, module=outcome.module,
        function=plain_qualname(f"{local}__mutmut_orig"), path=outcome.path, source="",
        tests=tests, timeout=max(120.0, 60.0 + 10.0 * estimate),
        mutmut_name=outcome.name)


def retest_training_path(root: Path, outcomes: Sequence[MutantOutcome], *, target: str | None,
                         current: str, coverage: Coverage, pytest_args: Sequence[str],
                         max_children: int, env: Mapping[str, str],
                         progress: Callable[[str], None]) -> RetestSummary:
    """Re-test the surviving mutants of training-path functions (see the module
    docstring); kills go into mutmut's ``.meta``. ``current`` is the audit's fingerprint
    (a record made under another one was cleared by :func:`forget_stale_kills`)."""
    record = _read_record(root)
    if record.get("fingerprint") != current:
        record = {"fingerprint": current, "killed": {}, "kept": [], "on_path": []}
    survivors = [o for o in outcomes if o.status == "survived"]
    todo = [o for o in survivors if o.name not in set(record["kept"])]
    summary = RetestSummary(survivors=len(survivors) + len(record["killed"]),
                            on_training_path=len(record["on_path"]),
                            killed=len(record["killed"]))
    if target is None or not todo:
        summary.reused = bool(record["kept"] or record["killed"])
        return summary
    started = time.monotonic()
    progress(f"training path: {len(todo)} mutmut survivor(s) handed to the re-test")
    by_name = {o.name: o for o in todo}
    mutants = root / "mutants"
    spec = {"root": str(mutants), "sys_path": ["src", "."], "max_children": max_children,
            "items": [asdict(_work_item(o, coverage)) for o in todo],
            "warm_up": True, "prepare": target, "only_training_path": True,
            "coverage": {"tests_by_key": {k: list(v) for k, v in
                                          coverage.tests_by_key.items()},
                         "callers": {k: list(v) for k, v in coverage.callers.items()},
                         "durations": dict(coverage.durations)},
            "pytest_args": list(pytest_args),
            "env": {"MUTANT_UNDER_TEST": "mlprop-ml-mutant",
                    "MLPROP_PROFILE": env.get("MLPROP_PROFILE", "mutmut")}}
    results = ml_runner.run_worker(spec, mutants / "mlprop-training-path-worker.json",
                                   env=dict(env))
    kills = {r.id: r.killed_by for r in results if r.status == "killed" and r.killed_by}
    if kills:
        failing = _failing_unmutated(mutants, sorted(set(kills.values())), pytest_args, env)
        kills = {name: test for name, test in kills.items() if test not in failing}
    for result in results:
        if result.id in kills:
            record["killed"][result.id] = {"path": by_name[result.id].path,
                                           "killed_by": kills[result.id]}
        elif result.status == "survived":
            record["kept"].append(result.id)
    # names that were not on the training path are not handed over again either
    record["kept"] = sorted(set(record["kept"]) | (set(by_name) - set(kills)))
    record["on_path"] = sorted(set(record["on_path"]) | {r.id for r in results})
    by_path: dict[str, dict[str, int | None]] = {}
    for name in kills:
        by_path.setdefault(by_name[name].path, {})[name] = KILLED_EXIT_CODE
    _set_exit_codes(root, by_path)
    atomic_write_text(_record_path(root), json.dumps(record, indent=1))
    summary.killed = len(record["killed"])
    summary.on_training_path = len(record["on_path"])
    summary.seconds = time.monotonic() - started
    progress(f"training path: {len(results)} on the training path, {len(kills)} killed by "
             "the trained model's tests")
    return summary


def _failing_unmutated(mutants: Path, tests: Sequence[str], pytest_args: Sequence[str],
                       env: Mapping[str, str]) -> set[str]:
    """The ``tests`` that fail with no mutant active (their kills prove nothing)."""
    clean = ml_runner.WorkItem(id="clean", module="", function="", path="", source="",
                               tests=list(tests), timeout=600.0)
    spec = {"root": str(mutants), "sys_path": ["src", "."], "max_children": 1,
            "items": [asdict(clean)], "warm_up": False, "prepare": None,
            "pytest_args": list(pytest_args),
            "env": {"MUTANT_UNDER_TEST": "mlprop-ml-mutant",
                    "MLPROP_PROFILE": env.get("MLPROP_PROFILE", "mutmut")}}
    result, = ml_runner.run_worker(spec, mutants / "mlprop-training-path-clean.json",
                                   env=dict(env))
    if result.status not in {"survived", "killed"}:
        raise RuntimeError(f"training path: the unmutated run of the killing tests ended as "
                           f"{result.status!r} {result.detail}")
    return set(result.detail.split()) if result.status == "killed" else set()
