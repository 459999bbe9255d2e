"""``mlprop init``: set a user's project up for mlprop, without losing anything of theirs.

Adds ``[tool.mlprop]`` (target, profile, suite, audit_shards) and ``[tool.mutmut]`` (pointed at the
project's package) to ``pyproject.toml`` and writes ``.github/workflows/mlprop.yml``.

Invariants: the user's TOML keeps its comments and layout (round-trip edit with tomlkit, not
string concatenation); an existing section or file is never replaced without ``force``;
every write is atomic (a kill leaves the old file or the new one, never half of one); any
bad input (no pyproject.toml, malformed TOML, a package that does not exist) raises
:class:`InitError` before anything is written.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlprop.atomic import atomic_write_text, write_error
from mlprop.docs_links import page_url
from mlprop.errors import MlpropError

__all__ = ["WORKFLOW_PATH", "InitError", "InitPlan", "code_lines", "estimate_shards",
           "find_package", "plan_init", "workflow", "write_plan"]

WORKFLOW_PATH = Path(".github/workflows/mlprop.yml")
NOT_PACKAGES = {"tests", "test", "docs", "doc", "examples", "benchmarks", "scripts", "build",
                "dist", "mutants"}


class InitError(MlpropError, ValueError):
    """``mlprop init`` cannot run here; nothing was written."""


@dataclass
class InitPlan:
    """What ``mlprop init`` will write (``changes``) and what it keeps (``kept``)."""

    root: Path
    package: str
    package_path: str  # relative to root, e.g. "src/mypkg"
    target: str
    pyproject_text: str | None = None  # the new pyproject.toml, None: unchanged
    workflow_text: str | None = None  # the workflow file, None: not written
    audit_shards: int = 1  # the N of the workflow's nightly audit matrix
    changes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _candidates(root: Path) -> dict[str, Path]:
    found = {}
    for base in (root / "src", root):
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (child.is_dir() and (child / "__init__.py").is_file()
                    and child.name.isidentifier() and child.name not in NOT_PACKAGES):
                found.setdefault(child.name, child)
    return found


def find_package(root: Path, document: Any, package: str | None) -> tuple[str, Path]:
    """The package to mutate and test: ``package`` if given (it must exist), else the one the
    pyproject's ``[project] name`` names, else the single top-level package found."""
    candidates = _candidates(root)
    if package is not None:
        if package not in candidates:
            known = ", ".join(candidates) or "none"
            raise InitError(f"--package: no package {package!r} in {root} or {root / 'src'} "
                            f"(a directory with __init__.py; found: {known})")
        return package, candidates[package]
    project = document.get("project") if hasattr(document, "get") else None
    name = project.get("name") if isinstance(project, dict) else None
    if isinstance(name, str):
        normalized = re.sub(r"[-.]+", "_", name).lower()
        if normalized in candidates:
            return normalized, candidates[normalized]
    if len(candidates) == 1:
        ((only, path),) = candidates.items()
        return only, path
    if not candidates:
        raise InitError(f"no Python package found in {root} or {root / 'src'}: name it with "
                        "--package")
    raise InitError(f"several packages in {root} ({', '.join(candidates)}): choose one with "
                    "--package")


MUTANTS_PER_LINE = 2
"""mutmut mutants per code line: 2062 mutants from 1021 code lines on mlprop's reference
pipeline (``src/mlprop/digits``, docstrings and comments not counted)."""
MUTANTS_PER_SHARD = 600
"""Mutants per shard of the nightly matrix: a few minutes of mutmut on a GitHub runner,
about what each shard's set-up (installing torch, mutmut's two clean runs) costs, so more
shards would mostly add set-up."""
MAX_ESTIMATED_SHARDS = 8
MAX_SHARDS = 256
"""GitHub Actions' limit on the jobs of one matrix."""


def code_lines(package: Path) -> int:
    """Non-blank lines of the package's ``.py`` files (recursively) that are neither
    comments nor docstrings: the lines mutmut can mutate. A file that does not parse is
    counted without the docstring rule (mutmut will report it; the estimate must not)."""
    total = 0
    for path in sorted(package.rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        docstrings: set[int] = set()
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            tree = None
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                          | ast.AsyncFunctionDef) and node.body:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                        and isinstance(first.value.value, str):
                    docstrings.update(range(first.lineno, (first.end_lineno or 0) + 1))
        physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # as ast counts
        total += sum(1 for number, line in enumerate(physical, 1)
                     if line.strip() and not line.lstrip().startswith("#")
                     and number not in docstrings)
    return total


def estimate_shards(lines: int) -> int:
    """The N of the nightly audit matrix for a package that sets no ``audit_shards``:
    about ``MUTANTS_PER_LINE`` (2) mutmut mutants per code line (``lines``, counted by
    :func:`code_lines` over the package), one shard per ``MUTANTS_PER_SHARD`` (600) of
    them, rounded up and clamped to 1..8 (``MAX_ESTIMATED_SHARDS``); e.g.
    1021 code lines (mlprop's reference pipeline, 2062 mutants) -> 2042 / 600 -> 4 shards.
    The estimate only sizes the matrix: the shards' partition and the merged score do not
    depend on it, and ``[tool.mlprop] audit_shards`` overrides it."""
    estimate = lines * MUTANTS_PER_LINE
    return min(MAX_ESTIMATED_SHARDS, max(1, math.ceil(estimate / MUTANTS_PER_SHARD)))


def workflow(package_path: str, shards: int = 1) -> str:
    """The CI workflow: the property suite on every push and pull request, the mutation
    audit nightly as a matrix of ``shards`` jobs merged into one report, the benchmark
    comparison on pull requests.

    Nightly: shard K of N runs ``mlprop audit --shard K/N`` with its own ``mutants/`` cache
    (keyed by K, N and the commit, restored from K and N's last one: most nights are
    incremental; a changed N starts new caches, never one from another partition) and the
    last merged ``audit.json`` as ``--timings`` (one cache all shards restore, saved by the
    merge job under a key unique to the run), and uploads its shard file, which exists only
    when the shard ran. The ``audit`` job runs after every shard, whatever they did
    (``always()``): ``mlprop audit merge`` fails the run under the score, on a missing shard
    (a partial merge names it and never passes) or on shard files that do not belong
    together. One shard (N = 1) is the same shape, so the workflow never changes form.
    """
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InitError(f"audit_shards: expected an integer in [1, {MAX_SHARDS}], got "
                        f"{shards!r}")
    matrix = ", ".join(str(k) for k in range(1, shards + 1))
    nightly = "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
    shard = "${{ matrix.shard }}"
    timings = "$( [ -f audit-timings.json ] && echo --timings audit-timings.json )"
    return f"""\
# Written by `mlprop init`. mlprop's property suite, mutation audit and benchmark comparison.
name: mlprop
on:
  push:
  pull_request:
  schedule: [{{cron: "0 3 * * *"}}]
  workflow_dispatch:
jobs:
  properties:
    if: github.event_name != 'schedule'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install -e . mlprop
      # plain pytest runs your tests and mlprop's properties ([tool.mlprop] suite = true)
      - run: pytest
        env: {{CI: "true"}}
  # the mutation audit in {shards} shard(s) ([tool.mlprop] audit_shards), merged by `audit`
  audit-shard:
    if: {nightly}
    runs-on: ubuntu-latest
    timeout-minutes: 60
    strategy:
      fail-fast: false
      matrix: {{shard: [{matrix}]}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - uses: actions/cache@v4
        with:
          path: mutants
          key: "mutants-{shard}-of-{shards}-${{{{ github.sha }}}}"
          restore-keys: "mutants-{shard}-of-{shards}-"
      # the last merged audit.json: balances the shards by its seconds per mutant
      - uses: actions/cache/restore@v4
        with:
          path: audit-timings.json
          key: "audit-timings-${{{{ github.run_id }}}}"
          restore-keys: "audit-timings-"
      - run: pip install -e . "mlprop[dev]"
      # mutates {package_path} ([tool.mutmut]); the gate is applied by the merge
      - run: >-
          mlprop audit --shard {shard}/{shards} --ml-mutants
          {timings}
          --shard-output shard-{shard}.json
      - uses: actions/upload-artifact@v4
        with:
          name: "audit-shard-{shard}"
          path: "shard-{shard}.json"
          if-no-files-found: error
          retention-days: 7
  audit:
    needs: audit-shard
    if: always() && ({nightly})
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install -e . "mlprop[dev]"
      - uses: actions/download-artifact@v4
        with: {{pattern: "audit-shard-*", merge-multiple: true}}
      # exits 1 under the score or when a shard is missing, 2 on shard files that do not match
      - run: mlprop audit merge shard-*.json --fail-under 80 --json audit.json --markdown audit.md
      - if: always() && hashFiles('audit.md') != ''
        run: cat audit.md >> "$GITHUB_STEP_SUMMARY"
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: mutation-audit
          path: |
            audit.json
            audit.md
          if-no-files-found: ignore
      # the next run's --timings
      - if: always() && hashFiles('audit.json') != ''
        run: cp audit.json audit-timings.json
      - uses: actions/cache/save@v4
        if: always() && hashFiles('audit-timings.json') != ''
        with:
          path: audit-timings.json
          key: "audit-timings-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"
  bench:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with: {{fetch-depth: 0}}
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install -e . "mlprop[dev]"
      # your target's predict, preprocess, forward pass and augmentations, base vs head
      - run: mlprop bench compare origin/${{{{ github.base_ref }}}} HEAD --fail-over 10
"""


def plan_init(root: Path, *, target: str | None = None, package: str | None = None,
              force: bool = False) -> InitPlan:
    """Work out what to write; raises :class:`InitError` (nothing written) on bad input."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    root = Path(root)
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise InitError(f"no pyproject.toml in {root}: run mlprop init in your project's root "
                        "directory")
    try:
        with open(pyproject, encoding="utf-8", newline="") as handle:  # keep CRLF as it is
            text = handle.read()
        document = tomlkit.parse(text)
        data = tomllib.loads(text)  # as pip and mutmut read it (tomlkit accepts [a] twice)
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"{pyproject}: cannot read: {exc}") from None
    except (TOMLKitError, tomllib.TOMLDecodeError) as exc:
        raise InitError(f"{pyproject}: not valid TOML: {exc}") from None
    name, path = find_package(root, data, package)
    package_path = path.relative_to(root).as_posix()
    spec = target or f"{name}.mlprop_target:target"
    if target is not None and (target.count(":") != 1 or not all(target.split(":"))):
        raise InitError(f"--target: expected 'module:attribute', got {target!r}")
    plan = InitPlan(root, name, package_path, spec)
    existing = data.get("tool", {})
    if not isinstance(existing, dict):  # tool = 3, [[tool]]
        raise InitError(f"{pyproject}: tool: expected a table, got {type(existing).__name__}")
    plan.audit_shards, shards_source = _audit_shards(pyproject, existing.get("mlprop"), path,
                                                     force)

    mlprop_table = tomlkit.table()
    mlprop_table.add(tomlkit.comment("written by `mlprop init`; keys: "
                                     + page_url("reference/configuration")))
    mlprop_table["target"] = spec
    mlprop_table["profile"] = "ci"
    mlprop_table["suite"] = True
    mlprop_table["audit_shards"] = plan.audit_shards
    mutmut_table = tomlkit.table()
    mutmut_table.add(tomlkit.comment("written by `mlprop init`: `mlprop audit` runs mutmut "
                                     "with this"))
    mutmut_table["source_paths"] = [package_path]
    tests = [t for t in ("tests", "test") if (root / t).is_dir()]
    if tests:
        mutmut_table["pytest_add_cli_args_test_selection"] = tests
    mutmut_table["pytest_add_cli_args"] = ["-p", "no:cacheprovider"]
    # each mutant forks from a server that only collected the tests: a model trained and
    # cached in memory by the clean run would hide every mutant of the training code, and
    # torch's OpenMP threads do not survive a fork
    mutmut_table["process_isolation"] = "forkserver"
    mutmut_table["forkserver_warmup"] = "collect"
    added = {}
    for key, table in (("mlprop", mlprop_table), ("mutmut", mutmut_table)):
        if key in existing and not force:
            plan.kept.append(f"[tool.{key}] in {pyproject} (exists; --force replaces it)")
        else:
            added[key] = table
            plan.changes.append(f"[tool.{key}] in {pyproject}")
    if added:
        try:
            plan.pyproject_text = _add_tables(document, added)
        except (TOMLKitError, LookupError, TypeError, ValueError) as exc:  # tomlkit's own
            raise InitError(f"{pyproject}: cannot add [tool.mlprop] and [tool.mutmut] to "
                            f"this file's layout ({type(exc).__name__}: {exc}): add them by "
                            f"hand ({page_url('how-to/ci', 'what-mlprop-init-writes')})") from None
        _check_edit(pyproject, text, plan.pyproject_text,
                    {key: table.unwrap() for key, table in added.items()})
    workflow_file = root / WORKFLOW_PATH
    if workflow_file.exists() and not force:
        plan.kept.append(f"{workflow_file} (exists; --force replaces it)")
    else:
        plan.workflow_text = workflow(package_path, plan.audit_shards)
        plan.changes.append(f"{workflow_file} (nightly mutation audit in {plan.audit_shards} "
                            f"shard{'s' if plan.audit_shards > 1 else ''}, {shards_source})")
    return plan


def _audit_shards(pyproject: Path, section: Any, package: Path,
                  force: bool) -> tuple[int, str]:
    """The N of the nightly audit matrix and where it came from: the project's valid
    ``[tool.mlprop] audit_shards`` (kept, and carried into a ``--force``-replaced table, so
    the workflow and the configuration never disagree), else :func:`estimate_shards`. A
    bad value in a section init keeps is an :class:`InitError` (the workflow would be
    written for a number the configuration refuses); ``--force`` replaces it."""
    from mlprop.config import ConfigError, validate

    if isinstance(section, dict) and "audit_shards" in section:
        value = section["audit_shards"]
        try:
            validate({"audit_shards": value}, str(pyproject))
            if value > MAX_SHARDS:
                raise ConfigError(f"{pyproject}: [tool.mlprop] audit_shards: expected at most "
                                  f"{MAX_SHARDS} (GitHub Actions' jobs per matrix), got "
                                  f"{value!r}")
        except ConfigError as exc:
            if not force:
                raise InitError(f"{exc} (fix it, or --force replaces [tool.mlprop])") from None
        else:
            return value, "[tool.mlprop] audit_shards"
    lines = code_lines(package)
    return estimate_shards(lines), (f"estimated from {lines} code lines; [tool.mlprop] "
                                    "audit_shards sets it")


def _add_tables(document: Any, tables: dict[str, Any]) -> str:
    """``document`` with ``tables`` set under ``tool``, as text (tomlkit can fail here)."""
    import tomlkit

    tool = document.get("tool")
    if isinstance(tool, tomlkit.items.InlineTable):
        raise ValueError("tool is an inline table: write it as [tool.NAME] sections")
    if tool is None:
        tool = tomlkit.table(is_super_table=True)
        document["tool"] = tool
    for key, table in tables.items():
        tool[key] = table
    return tomlkit.dumps(document)


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)  # NaN == NaN, dates as text


def _check_edit(pyproject: Path, old: str, new: str, added: dict[str, Any]) -> None:
    """The edited text must mean the old document plus ``added`` under ``tool``, read by
    the parser pip, mutmut and mlprop use (tomllib): never write a file whose meaning
    tomlkit changed (dotted ``tool.x.y = ...`` keys can end up under a new table), nor one
    whose lines it reordered (it can move a user's subtable between other tables)."""
    expected = tomllib.loads(old)  # plan_init checked it
    expected.setdefault("tool", {}).update(added)
    try:
        result = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        result = f"invalid TOML ({exc})"
    if _canonical(result) != _canonical(expected):
        raise InitError(f"{pyproject}: cannot add [tool.mlprop] and [tool.mutmut] to this "
                        "file's layout without changing what it means (dotted tool.* keys "
                        "outside a [tool.*] table?): add the sections by hand "
                        f"({page_url('how-to/ci', 'what-mlprop-init-writes')})")
    replacing = any(key in tomllib.loads(old).get("tool", {}) for key in added)  # --force
    remaining = iter(new.splitlines())
    if not replacing and not all(any(line == candidate for candidate in remaining)
                                 for line in old.splitlines()):
        raise InitError(f"{pyproject}: cannot add [tool.mlprop] and [tool.mutmut] without "
                        "reordering this file's tables: add the sections by hand "
                        f"({page_url('how-to/ci', 'what-mlprop-init-writes')})")


def write_plan(plan: InitPlan) -> None:
    """Write what :func:`plan_init` decided, each file atomically."""
    if plan.pyproject_text is not None:
        atomic_write_text(plan.root / "pyproject.toml", plan.pyproject_text)
    if plan.workflow_text is not None:
        path = plan.root / WORKFLOW_PATH
        created = [d for d in (path.parent.parent, path.parent) if not d.exists()]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, plan.workflow_text)
        except OSError as exc:  # leave no empty .github/workflows behind
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise write_error(path, exc) from exc
