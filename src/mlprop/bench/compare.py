"""One revision's benchmarks against another's: lockstep jobs of a BASE and a HEAD pytest
process (:class:`~mlprop.bench.timing.Turns`), and :func:`compare_revisions`, which runs a
throwaway warm job and then ``rounds`` jobs and compares their medians."""

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

from mlprop.bench.revisions import CompareError, repository_root, resolve_revision, worktrees
from mlprop.bench.stats import (
    STATISTICS,
    BenchmarkComparison,
    compare_medians,
    read_sources,
    read_times,
)
from mlprop.bench.timing import DONE, TURN, TURN_ENV

DEFAULT_SELECTION = "compare"
"""The marker that picks the small, quick benchmark set the comparison runs."""

SIDES = ("base", "head")


@dataclass(frozen=True)
class BenchmarkRun:
    """How to run HEAD's benchmarks against one revision's ``src/``."""

    bench_tree: Path  # the checkout whose benchmarks/ and pytest config are used (HEAD)
    src_tree: Path  # the checkout whose src/ is measured
    marker: str = DEFAULT_SELECTION
    keyword: str | None = None
    options: tuple[str, ...] = ()
    threads: int | None = 1  # OMP/MKL threads of the run (None: the library default)
    statistic: str = "trimmed"  # what one run reports per benchmark (see read_times)
    rounds: int = 60  # timing rounds per benchmark and side in one lockstep job

    def command(self, json_path: Path) -> list[str]:
        src = self.src_tree / "src"
        command = [sys.executable, "-m", "pytest", str(self.bench_tree / "benchmarks"), "-q",
                   "-p", "no:cacheprovider", "--benchmark-only",
                   f"--benchmark-json={json_path}", "--benchmark-save-data",
                   "-o", f"pythonpath={shlex.join([str(src), str(self.bench_tree)])}",
                   "-m", self.marker, *self.options]
        if self.keyword:
            command += ["-k", self.keyword]
        return command

    def environment(self, turns: tuple[Path, Path] | None = None,
                    cpu: int | None = None) -> dict[str, str]:
        src = self.src_tree / "src"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(src), str(self.bench_tree)])
        env["MLPROP_BENCH_EXPECT_SRC"] = str(src)
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
        expected = (self.src_tree / "src").resolve()
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
                runs[side].command(scratch / f"{side}.json"), cwd=runs[side].bench_tree,
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


def compare_revisions(repo: Path, base: str, head: str, *, rounds: int = 7,
                      threshold: float = 0.10, marker: str = DEFAULT_SELECTION,
                      keyword: str | None = None, threads: int | None = 1,
                      statistic: str = "trimmed", timing_rounds: int = 60, pin: bool = True,
                      progress: Callable[[str], None] = lambda line: None,
                      runner: Runner | None = None) -> ComparisonReport:
    """Run HEAD's benchmark set against BASE's and HEAD's ``src/``: one throwaway warm job,
    then ``rounds`` lockstep jobs (``runner``, default :func:`run_lockstep`)."""
    runner = runner or run_lockstep
    if rounds < 1:
        raise CompareError(f"rounds: expected at least 1, got {rounds}")
    if statistic not in STATISTICS:
        raise CompareError(f"statistic: expected one of {STATISTICS}, got {statistic!r}")
    if not math.isfinite(threshold) or threshold <= 0:
        raise CompareError(f"threshold: expected a positive fraction, got {threshold}")
    repo = repository_root(repo)
    commits = {"base": resolve_revision(repo, base), "head": resolve_revision(repo, head)}
    report = ComparisonReport(base=commits["base"], head=commits["head"], rounds=rounds,
                              threshold=threshold, statistic=statistic)
    with worktrees(repo, commits) as trees:
        if not (trees["head"] / "benchmarks").is_dir():
            raise CompareError(f"HEAD ({head}) has no benchmarks/ directory")
        runs = {side: BenchmarkRun(trees["head"], trees[side], marker, keyword,
                                   threads=threads, statistic=statistic, rounds=timing_rounds)
                for side in SIDES}
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
