"""One revision's benchmarks against another's: lockstep jobs of a BASE and a HEAD pytest
process (:class:`~mlprop.bench.timing.Turns`), and :func:`compare_revisions`, which runs a
throwaway warm job and then ``rounds`` jobs and compares their medians.

Two kinds of run. By default (any project) the benchmark code is the target suite shipped
with mlprop (:mod:`mlprop.bench.suite`), run with ``--pyargs`` from each side's worktree:
that side's pytest configuration applies, its ``src/`` and root lead ``PYTHONPATH``, and
``--mlprop-target`` names the one target spec both sides import (its modules must come from
that side's worktree). With ``benchmarks=PATH`` it is the project's own pytest-benchmark
suite at ``PATH`` in HEAD's worktree, run from there against each side's ``src/`` (how this
repository compares itself: ``benchmarks/``, whose conftest swaps in HEAD's harness).
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlprop.bench.revisions import (
    CompareError,
    git,
    repository_root,
    resolve_revision,
    worktrees,
)
from mlprop.bench.stats import (
    STATISTICS,
    BenchmarkComparison,
    compare_medians,
    read_sources,
    read_times,
)
from mlprop.bench.timing import DONE, TURN, TURN_ENV, benchmark_environment

DEFAULT_SELECTION = "compare"
"""The marker that picks the small, quick benchmark set the comparison runs."""

SIDES = ("base", "head")


SUITE = "mlprop.bench.suite"
"""The shipped target benchmarks (``--pyargs``)."""


@dataclass(frozen=True)
class BenchmarkRun:
    """How to run the benchmarks against one revision."""

    bench_tree: Path  # the checkout whose `benchmarks` folder and pytest config are used
    src_tree: Path  # the checkout measured
    marker: str = DEFAULT_SELECTION
    keyword: str | None = None
    options: tuple[str, ...] = ()
    threads: int | None = 1  # OMP/MKL threads of the run (None: the library default)
    statistic: str = "trimmed"  # what one run reports per benchmark (see read_times)
    rounds: int = 60  # timing rounds per benchmark and side in one lockstep job
    benchmarks: str | None = "benchmarks"  # in bench_tree; None: the shipped target suite
    target: str | None = None  # --mlprop-target of a shipped-suite run

    @property
    def cwd(self) -> Path:
        """Where pytest runs: the measured worktree for the shipped suite (its pytest
        configuration applies), HEAD's for a project suite."""
        return self.src_tree if self.benchmarks is None else self.bench_tree

    @property
    def measured(self) -> Path:
        """Every recorded source must lie under this directory."""
        if self.benchmarks is None:
            return self.src_tree
        return self.src_tree / "src"

    def command(self, json_path: Path) -> list[str]:
        common = ["-q", "-p", "no:cacheprovider", "--benchmark-only",
                  f"--benchmark-json={json_path}", "--benchmark-save-data",
                  "-m", self.marker]
        if self.benchmarks is None:
            command = [sys.executable, "-m", "pytest", "--pyargs", SUITE, *common,
                       *(["--mlprop-target", self.target] if self.target else []),
                       *self.options]
        else:
            src = self.src_tree / "src"
            command = [sys.executable, "-m", "pytest", str(self.bench_tree / self.benchmarks),
                       *common[:-2],
                       "-o", f"pythonpath={shlex.join([str(src), str(self.bench_tree)])}",
                       *common[-2:], *self.options]
        if self.keyword:
            command += ["-k", self.keyword]
        return command

    def python_path(self) -> list[str]:
        if self.benchmarks is None:
            return [str(p) for p in (self.src_tree / "src", self.src_tree)
                    if p == self.src_tree or p.is_dir()]
        return [str(self.src_tree / "src"), str(self.bench_tree)]

    def environment(self, turns: tuple[Path, Path] | None = None,
                    cpu: int | None = None) -> dict[str, str]:
        env = benchmark_environment()
        env["PYTHONPATH"] = os.pathsep.join(self.python_path())
        if self.benchmarks is None:
            env.pop("MLPROP_BENCH_EXPECT_SRC", None)
            env.pop("MLPROP_TARGET", None)  # --mlprop-target names it
        else:
            env["MLPROP_BENCH_EXPECT_SRC"] = str(self.src_tree / "src")
        if self.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        for name in TURN_ENV:
            env.pop(name, None)
        if turns is not None:
            env.update(zip(TURN_ENV, (str(turns[0]), str(turns[1]), str(self.rounds),
                                      "" if cpu is None else str(cpu)), strict=True))
        return env

    def results(self, json_path: Path) -> dict[str, float]:
        """``{benchmark: seconds}`` of a finished run; checks it measured ``src_tree``."""
        times = read_times(json_path, self.statistic)
        if not times:
            raise CompareError(f"no benchmark matched -m {self.marker!r}"
                               + (f" -k {self.keyword!r}" if self.keyword else ""))
        expected = self.measured.resolve()
        for module, source in read_sources(json_path).items():
            if not Path(source).resolve().is_relative_to(expected):
                raise CompareError(f"the run meant to measure {expected} imported {module} "
                                   f"from {source}: another copy shadows it")
        return times


def run_lockstep(runs: Mapping[str, BenchmarkRun], scratch: Path, first: str, *,
                 cpu: int | None = None,
                 timeout: float = 1800.0) -> dict[str, dict[str, float]]:
    """One job: both sides' pytest processes at once, timing rounds taking turns
    (:class:`Turns`), ``first`` side first, both timing on ``cpu`` when given.
    Returns ``{side: {benchmark: seconds}}``."""
    scratch.mkdir(parents=True, exist_ok=True)
    fifos = {side: scratch / f"turn-{side}" for side in SIDES}
    for path in fifos.values():
        os.mkfifo(path)
    ends = {side: os.open(path, os.O_RDWR) for side, path in fifos.items()}
    os.write(ends[first], TURN)
    other = {"base": "head", "head": "base"}
    procs, logs = {}, {}
    try:
        for side in SIDES:
            logs[side] = open(scratch / f"{side}.log", "w+b")  # noqa: SIM115
            procs[side] = subprocess.Popen(
                runs[side].command(scratch / f"{side}.json"), cwd=runs[side].cwd,
                env=runs[side].environment((fifos[side], fifos[other[side]]), cpu),
                stdout=logs[side], stderr=subprocess.STDOUT)
        deadline, released = time.monotonic() + timeout, set()
        while len(released) < len(SIDES):
            for side in SIDES:
                if side not in released and procs[side].poll() is not None:
                    os.write(ends[other[side]], DONE)  # never leave the other waiting
                    released.add(side)
            if time.monotonic() > deadline:
                raise CompareError(f"a benchmark job ran past {timeout:.0f} s")
            time.sleep(0.05)
        results = {}
        for side in SIDES:
            json_path = scratch / f"{side}.json"
            if procs[side].returncode != 0 or not json_path.is_file():
                logs[side].seek(0)
                tail = "\n".join(logs[side].read().decode(errors="replace").strip()
                                 .splitlines()[-15:])
                raise CompareError(f"benchmark run against {side} "
                                   f"({runs[side].src_tree.name}) exited "
                                   f"{procs[side].returncode}:\n{tail}")
            results[side] = runs[side].results(json_path)
        return results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for handle in logs.values():
            handle.close()
        for end in ends.values():
            os.close(end)


@dataclass
class ComparisonReport:
    base: str
    head: str
    rounds: int
    threshold: float
    statistic: str = "trimmed"
    comparisons: list[BenchmarkComparison] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # the side that went first, per round

    @property
    def regressions(self) -> list[BenchmarkComparison]:
        return [c for c in self.comparisons if c.verdict == "regression"]

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base, "head": self.head, "rounds": self.rounds,
                "threshold": self.threshold, "statistic": self.statistic, "order": self.order,
                "comparisons": [{**asdict(c), "base_median": c.base_median,
                                 "head_median": c.head_median} for c in self.comparisons]}


def first_side(index: int) -> str:
    """Who takes the first turn in job ``index``: BASE, HEAD, BASE, ..."""
    return SIDES[index % 2]


Runner = Callable[..., dict[str, dict[str, float]]]
"""``runner(runs, scratch, first, cpu=...) -> {side: {benchmark: seconds}}``: one job."""


def timing_cpus(pin: bool) -> list[int | None]:
    """The CPUs that jobs pin their timing to, in turn ([None]: no pinning)."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return [None]
    return sorted(os.sched_getaffinity(0))


def target_spec(repo: Path, target: str | None) -> str:
    """The spec both sides import: ``target``, else ``$MLPROP_TARGET``, else the
    ``[tool.mlprop] target`` of ``repo``'s pyproject.toml (the checkout you run from)."""
    from mlprop.config import ConfigError, read_config

    if target:
        spec = target
    elif os.environ.get("MLPROP_TARGET"):
        spec = os.environ["MLPROP_TARGET"]
    else:
        try:
            spec = read_config(repo).get("target")
        except ConfigError as exc:
            raise CompareError(str(exc)) from None
        if not spec:
            raise CompareError(f"no target to benchmark: pass --target MODULE:ATTR or set "
                               f"[tool.mlprop] target in {repo / 'pyproject.toml'}")
    if spec.count(":") != 1 or not all(spec.split(":")):
        raise CompareError(f"target: expected 'module:attribute', got {spec!r}")
    return spec


_IMPORT_CHECK = """\
import sys
from mlprop.errors import MlpropError
from mlprop.target import load_target
try:
    load_target(sys.argv[1])
except MlpropError as exc:
    print(str(exc).splitlines()[0])
    sys.exit(3)
"""


def check_target_imports(run: BenchmarkRun, label: str, revision: str) -> None:
    """Refuse (one line) a side where the target spec does not load."""
    done = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, run.target or ""],
                          cwd=run.cwd, env=run.environment(), capture_output=True,
                          text=True, check=False, timeout=600)
    if done.returncode != 0:
        lines = (done.stdout.strip() or done.stderr.strip() or "no output").splitlines()
        raise CompareError(f"target {run.target} does not load at {label} ({revision}): "
                           f"{lines[-1]}")


def dirty_files(repo: Path) -> list[str]:
    """Tracked files with uncommitted changes in ``repo``'s work tree."""
    return [line[3:] for line in git(repo, "status", "--porcelain",
                                     "--untracked-files=no").splitlines() if line.strip()]


def compare_revisions(repo: Path, base: str, head: str, *, rounds: int = 7,
                      threshold: float = 0.10, marker: str = DEFAULT_SELECTION,
                      keyword: str | None = None, threads: int | None = 1,
                      statistic: str = "trimmed", timing_rounds: int = 60, pin: bool = True,
                      progress: Callable[[str], None] = lambda line: None,
                      runner: Runner | None = None, benchmarks: str | None = "benchmarks",
                      target: str | None = None,
                      allow_dirty: bool = True) -> ComparisonReport:
    """Run the benchmark set against BASE and HEAD: one throwaway warm job, then ``rounds``
    lockstep jobs (``runner``, default :func:`run_lockstep`).

    ``benchmarks=None`` runs the shipped target suite on each side's worktree with the
    target spec of :func:`target_spec` (checked to load on both sides first); a path runs
    that pytest-benchmark folder of HEAD against each side's ``src/``. Without
    ``allow_dirty``, a revision that is the checked-out commit while tracked files have
    uncommitted changes is refused (the comparison measures commits, not the work tree)."""
    runner = runner or run_lockstep
    if rounds < 1:
        raise CompareError(f"rounds: expected at least 1, got {rounds}")
    if statistic not in STATISTICS:
        raise CompareError(f"statistic: expected one of {STATISTICS}, got {statistic!r}")
    if not math.isfinite(threshold) or threshold <= 0:
        raise CompareError(f"threshold: expected a positive fraction, got {threshold}")
    directory = Path(repo)
    repo = repository_root(repo)
    commits = {"base": resolve_revision(repo, base), "head": resolve_revision(repo, head)}
    spec = target_spec(directory if (directory / "pyproject.toml").is_file() else repo,
                       target) if benchmarks is None else None
    if not allow_dirty:
        current = resolve_revision(repo, "HEAD")
        changed = dirty_files(repo) if current in commits.values() else []
        if changed:
            raise CompareError(
                f"uncommitted changes in {repo} ({', '.join(changed[:3])}"
                + (", ..." if len(changed) > 3 else "") + "): the comparison measures "
                "commits; commit or stash them, or pass --allow-dirty")
    report = ComparisonReport(base=commits["base"], head=commits["head"], rounds=rounds,
                              threshold=threshold, statistic=statistic)
    with worktrees(repo, commits) as trees:
        if benchmarks is not None and not (trees["head"] / benchmarks).exists():
            raise CompareError(f"HEAD ({head}) has no {benchmarks}"
                               + ("/ directory" if benchmarks == "benchmarks" else ""))
        runs = {side: BenchmarkRun(trees["head"], trees[side], marker, keyword,
                                   threads=threads, statistic=statistic, rounds=timing_rounds,
                                   benchmarks=benchmarks, target=spec)
                for side in SIDES}
        if benchmarks is None:
            for side, name in (("base", base), ("head", head)):
                check_target_imports(runs[side], side.upper(), name)
        scratch = trees["head"].parent / "jobs"
        cpus = timing_cpus(pin)
        progress("warm-up job (thrown away): imports, caches, model training")
        runner(runs, scratch / "warm", "base", cpu=cpus[0])
        measured: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        for index in range(rounds):
            first, cpu = first_side(index), cpus[index % len(cpus)]
            where = "" if cpu is None else f" on CPU {cpu}"
            progress(f"round {index + 1}/{rounds}: BASE and HEAD in lockstep{where}, "
                     f"{first} first")
            result = runner(runs, scratch / f"round-{index}", first, cpu=cpu)
            for side in SIDES:
                measured[side].append(result[side])
            report.order.append(first)
    report.comparisons = compare_medians(measured["base"], measured["head"],
                                         threshold=threshold)
    return report
