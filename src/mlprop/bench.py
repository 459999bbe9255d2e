"""Benchmark helpers: CUDA-correct timing, and one revision's benchmarks against another's.

Timing. CUDA work is queued asynchronously: a timed function that does not wait for the
device measures kernel launches, not the work (0.16 ms instead of 1.96 ms for the reference
CNN at batch 64 on an H100). :func:`timed_inference` therefore

- warms up outside the timing (cuDNN autotuning, the caching allocator, lazy init, graph
  capture, compilation) and waits for the device,
- times a function that calls ``torch.cuda.synchronize`` *inside*, after the work, and
- uses pytest-benchmark's pedantic mode (fixed rounds, no calibration loop that would
  run the function more often than asked);

and records ``extra_info``: batch size, images per second, latency p50, device name, dtype,
torch version.

Comparison. :func:`compare_revisions` checks BASE and HEAD out as two ``git worktree`` s and
runs HEAD's benchmark code (the ``compare``-marked set) against each revision's ``src/``:
pytest's ``pythonpath`` ini setting overrides ``PYTHONPATH``, so it is overridden with
``-o pythonpath=...``, and ``PYTHONPATH`` is set as well (older pytest versions import the
``pytest11`` entry point, hence ``mlprop``, before applying ``pythonpath``); every run
proves which ``src/`` it imported (``benchmarks/conftest.py``). The timing harness (this
module) is HEAD's on both sides.

Interleaving. On a shared machine the load changes every few seconds, so two runs made one
after the other see different machines. Each *job* therefore starts a BASE and a HEAD
pytest process together and lets them take turns round by round (:class:`Turns`: one
token passed through two FIFOs, so exactly one side is timing at any moment and BASE and
HEAD rounds alternate ABAB... milliseconds apart). One throwaway warm job (imports,
caches, model training), then ``rounds`` jobs, the side that starts alternating. Between
rounds (untimed) each side also moves its heap (:class:`LayoutJitter`: here the same
forward pass took 8 or 12 ms depending only on where its buffers landed). Both
sides of a job time on one CPU (the CPU changes from job to job); runs are
single-threaded by default (``OMP_NUM_THREADS=1``: OpenMP threads waiting for a busy core
make times several-fold noisier).

Verdict. Each job gives, per benchmark and side, the 10%-trimmed mean of its timing rounds
(``statistic``; also ``median``, ``mean`` or ``min``; with jittered placements a round's
time is bimodal, 8 or 12 ms for the forward pass, and the median of such a mixture jumps
between the modes while the mean averages them; trimming drops load spikes) and the ratio
HEAD/BASE. Over the jobs: the median ratio, its min-max and a bootstrap 95% interval of
that median. A regression is flagged only when the median ratio exceeds ``1 + threshold``
*and* the whole interval lies above 1 (the slowdown is beyond the job-to-job noise; with
the default 7 jobs the interval runs from the second-lowest to the second-highest ratio,
so one outlying job neither makes nor hides a regression).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------
# CUDA-correct timing


def synchronized(fn: Callable[[], Any], device: Any) -> Callable[[], Any]:
    """``fn`` followed by a device synchronization, as one callable: the thing to time."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return fn

    def run() -> Any:
        result = fn()
        torch.cuda.synchronize(device)
        return result

    return run


def device_name(device: Any) -> str:
    """``NVIDIA H100 80GB HBM3`` for a CUDA device, the processor for the CPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def timed_inference(benchmark: Any, fn: Callable[[], Any], *, device: Any, batch: int,
                    dtype: str = "float32", rounds: int | None = None, seconds: float = 1.0,
                    iterations: int = 1, warmup: int = 3, **extra: Any) -> Any:
    """Time ``fn`` (one batch of inference) with pytest-benchmark, correctly on CUDA.

    Warm-up runs outside the timing; the timed callable synchronizes inside; pedantic mode
    with ``rounds`` x ``iterations`` (``rounds=None``: as many as fit in ``seconds``, judged
    by the fastest warm-up call, between :data:`MIN_ROUNDS` and :data:`MAX_ROUNDS`). Under
    ``mlprop bench compare`` each round first waits for this process's turn (see
    :class:`Turns`) and the rounds are the comparison's fixed number. Adds ``extra_info``
    (batch_size, device, device_name, dtype, torch, images_per_second, latency_p50_us and
    ``extra``). Returns ``fn``'s result from the last timed call.
    """
    import torch

    timed = synchronized(fn, device)
    per_call = float("inf")
    for _ in range(max(1, warmup)):  # warm-up calls, each waited for; the fastest one
        start = time.perf_counter()  # chooses the rounds
        timed()
        per_call = min(per_call, time.perf_counter() - start)
    turns = current_turns()
    if turns is not None:
        jitter = _JITTER.setdefault("current", LayoutJitter())

        def between_rounds() -> None:
            jitter()
            turns.wait()

        result = benchmark.pedantic(timed, setup=between_rounds,
                                    rounds=rounds or turns.rounds, iterations=1,
                                    warmup_rounds=0)
    else:
        if rounds is None:
            rounds = auto_rounds(per_call * iterations, seconds)
        result = benchmark.pedantic(timed, rounds=rounds, iterations=iterations,
                                    warmup_rounds=0)
    info = {"batch_size": batch, "device": str(torch.device(device)),
            "device_name": device_name(device), "dtype": dtype, "torch": torch.__version__,
            **extra}
    median = median_seconds(benchmark)
    if median:
        info["images_per_second"] = batch / median
        info["latency_p50_us"] = median * 1e6
    benchmark.extra_info.update(info)
    return result


MIN_ROUNDS, MAX_ROUNDS = 5, 10_000


def auto_rounds(seconds_per_round: float, budget: float) -> int:
    """How many rounds of ``seconds_per_round`` fit in ``budget`` (clamped)."""
    if seconds_per_round <= 0:
        return MAX_ROUNDS
    return int(min(MAX_ROUNDS, max(MIN_ROUNDS, budget / seconds_per_round)))


def median_seconds(benchmark: Any) -> float | None:
    """The median of a finished benchmark (None when benchmarking is disabled)."""
    stats = getattr(benchmark, "stats", None)
    inner = getattr(stats, "stats", None)
    return getattr(inner, "median", None)


def gpu_machine_info() -> dict[str, Any]:
    """What pytest-benchmark's machine id cannot tell: the GPU (and torch's CUDA build)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return {"cuda_available": False}
    info: dict[str, Any] = {"torch": torch.__version__, "cuda_build": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available()}
    if info["cuda_available"]:
        info["cudnn"] = torch.backends.cudnn.version()
        info["devices"] = [
            {"name": props.name, "capability": f"{props.major}.{props.minor}",
             "memory_gib": round(props.total_memory / 2**30, 1),
             "multiprocessors": props.multi_processor_count}
            for props in (torch.cuda.get_device_properties(i)
                          for i in range(torch.cuda.device_count()))]
        info["gpu"] = info["devices"][0]["name"]
    else:
        info["gpu"] = None
    return info


# ---------------------------------------------------------------------------------------
# Lockstep: two benchmark processes that take turns


TURN, DONE = b"T", b"D"
TURN_ENV = ("MLPROP_BENCH_TURN_MINE", "MLPROP_BENCH_TURN_OTHER", "MLPROP_BENCH_TURN_ROUNDS",
            "MLPROP_BENCH_TURN_CPU")


class Turns:
    """Strict alternation of timing rounds between two processes, through two FIFOs.

    One token travels between the processes: :meth:`wait` (the benchmark's untimed
    ``setup``) hands it to the other process if this one holds it, then blocks until it
    comes back, so exactly one of the two is ever timing and the rounds of BASE and HEAD
    alternate (ABAB...) within milliseconds of each other: both sides see the same load.
    :meth:`finish` (at the end of the session) tells the other to carry on alone.

    With ``cpu``, the first :meth:`wait` pins this thread to that CPU: both sides then time
    on the same core and share whatever else runs there, while their start-up still used
    every core.
    """

    def __init__(self, mine: str, other: str, rounds: int, cpu: int | None = None) -> None:
        self._mine = os.open(mine, os.O_RDWR)
        self._other = os.open(other, os.O_RDWR)
        self.rounds = rounds
        self.cpu = cpu
        self.holding = False
        self.alone = False

    def wait(self) -> None:
        if self.cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {self.cpu})
            self.cpu = None
        if self.alone:
            return
        if self.holding:
            os.write(self._other, TURN)
            self.holding = False
        if os.read(self._mine, 1) == DONE:
            self.alone = True
        else:
            self.holding = True

    def finish(self) -> None:
        if not self.alone:
            os.write(self._other, DONE)
            self.alone = True


class LayoutJitter:
    """Move the heap between timing rounds: each call allocates a buffer of a random size
    and frees the one allocated ``keep`` calls before.

    Measured here: the reference CNN's forward pass at batch 64 took 8 ms or 12 ms per call
    depending only on where its buffers landed; a process keeps one placement for its whole
    life, so two processes differ by 50% with no code change, and a change anywhere in the
    code (which shifts the heap) can move an untouched benchmark by 15%. Jitter makes every
    round draw a new placement. The sizes come from a fresh random seed in each process
    (``seed=None``): with one fixed sequence for both sides, identical code gets identical
    placements (an A/A comparison looks better than it is) and different code keeps one
    systematic offset (an untouched benchmark looked 15% slower in 6 jobs out of 7).
    """

    def __init__(self, seed: int | None = None, keep: int = 4,
                 max_bytes: int = 1 << 22) -> None:
        import random

        self._rng = random.Random(seed)  # None: seeded from os.urandom
        self._keep, self._max = keep, max_bytes
        self._ring: list[Any] = []

    def __call__(self) -> None:
        import torch

        self._ring.append(torch.empty(self._rng.randrange(1, self._max) // 4 + 1))
        if len(self._ring) > self._keep:
            self._ring.pop(0)


_TURNS: dict[str, Turns | None] = {}
_JITTER: dict[str, LayoutJitter] = {}


def current_turns() -> Turns | None:
    """This process's :class:`Turns` when ``mlprop bench compare`` started it, else None."""
    if "current" not in _TURNS:
        mine, other, rounds, cpu = (os.environ.get(name) for name in TURN_ENV)
        _TURNS["current"] = (Turns(mine, other, int(rounds or 60), int(cpu) if cpu else None)
                             if mine and other else None)
    return _TURNS["current"]


# ---------------------------------------------------------------------------------------
# Summaries of paired rounds


def bootstrap_median_interval(values: Sequence[float], *, confidence: float = 0.95,
                              resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values`` (seeded, reproducible)."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("bootstrap_median_interval: no values")
    if data.size == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, data.size, (resamples, data.size))], axis=1)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(medians, tail)), float(np.quantile(medians, 1.0 - tail))


@dataclass(frozen=True)
class BenchmarkComparison:
    """One benchmark's BASE and HEAD medians over the rounds, and the verdict."""

    name: str
    base: tuple[float, ...]
    head: tuple[float, ...]
    ratios: tuple[float, ...]
    ratio: float
    low: float
    high: float
    verdict: str  # "regression", "improvement", "same" or "noisy"

    @property
    def base_median(self) -> float:
        return statistics.median(self.base)

    @property
    def head_median(self) -> float:
        return statistics.median(self.head)


def verdict(ratio: float, low: float, high: float, threshold: float) -> str:
    """``regression`` only if ``ratio > 1 + threshold`` and the interval lies above 1;
    ``improvement`` symmetrically; ``noisy`` if the ratio is past a threshold but the
    interval still holds 1; else ``same``."""
    if ratio > 1.0 + threshold:
        return "regression" if low > 1.0 else "noisy"
    if ratio < 1.0 / (1.0 + threshold):
        return "improvement" if high < 1.0 else "noisy"
    return "same"


def compare_medians(base_runs: Sequence[Mapping[str, float]],
                    head_runs: Sequence[Mapping[str, float]], *,
                    threshold: float) -> list[BenchmarkComparison]:
    """Pair job i of BASE with job i of HEAD; compare every benchmark both ran."""
    if len(base_runs) != len(head_runs) or not base_runs:
        raise ValueError("compare_medians: expected the same, non-zero number of rounds "
                         f"for both sides, got {len(base_runs)} and {len(head_runs)}")
    names = sorted(set.intersection(*(set(run) for run in [*base_runs, *head_runs])))
    results = []
    for name in names:
        base = tuple(run[name] for run in base_runs)
        head = tuple(run[name] for run in head_runs)
        ratios = tuple(h / b for b, h in zip(base, head, strict=True))
        ratio = statistics.median(ratios)
        low, high = bootstrap_median_interval(ratios)
        results.append(BenchmarkComparison(name, base, head, ratios, ratio, low, high,
                                           verdict(ratio, low, high, threshold)))
    return results


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_comparisons(comparisons: Sequence[BenchmarkComparison], threshold: float,
                       statistic: str = "trimmed") -> str:
    """A table: BASE and HEAD times (median over the jobs of each job's ``statistic``),
    the median ratio, its min-max over the jobs and its 95% interval."""
    header = ("benchmark", "BASE", "HEAD", "HEAD/BASE", "min-max", "95% CI", "verdict")
    rows = [header]
    for c in comparisons:
        rows.append((c.name, _duration(c.base_median), _duration(c.head_median),
                     f"{c.ratio:.3f}", f"{min(c.ratios):.3f}-{max(c.ratios):.3f}",
                     f"{c.low:.3f}-{c.high:.3f}", c.verdict.upper() if c.verdict ==
                     "regression" else c.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in rows]
    rounds = len(comparisons[0].ratios) if comparisons else 0
    name = "10%-trimmed mean" if statistic == "trimmed" else statistic
    lines.append(f"{rounds} lockstep jobs, each job's {name} of the timing rounds; "
                 f"regression: HEAD/BASE > {1 + threshold:.2f} and the 95% interval above 1")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# pytest-benchmark JSON


STATISTICS = ("trimmed", "median", "mean", "min")
TRIM = 0.1


def trimmed_mean(values: Sequence[float], trim: float = TRIM) -> float:
    """The mean of ``values`` without the lowest and highest ``trim`` fraction of them."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("trimmed_mean: no values")
    cut = int(len(ordered) * trim)
    kept = ordered[cut:len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


def read_times(path: Path, statistic: str = "median") -> dict[str, float]:
    """``{fullname: seconds}`` from a ``--benchmark-json`` file: each benchmark's
    ``statistic`` over its rounds: ``trimmed`` (the mean of the middle 80%, from the raw
    rounds that ``--benchmark-save-data`` keeps), ``median``, ``mean`` or ``min``."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic: expected one of {STATISTICS}, got {statistic!r}")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    times = {}
    for bench in data.get("benchmarks", []):
        stats = bench["stats"]
        if statistic == "trimmed":
            if not stats.get("data"):
                raise ValueError(f"{path}: no raw rounds for the trimmed mean (run with "
                                 "--benchmark-save-data)")
            value = trimmed_mean(stats["data"])
        else:
            value = stats[statistic]
        times[bench.get("fullname") or bench["name"]] = float(value)
    return times


def read_sources(path: Path) -> dict[str, str]:
    """The ``mlprop`` sources a ``--benchmark-json`` run imported (benchmarks/conftest.py
    records them under ``mlprop.sources``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return dict(data.get("mlprop", {}).get("sources", {}))


# ---------------------------------------------------------------------------------------
# Revisions


class CompareError(Exception):
    """A comparison that cannot run (bad revision, not a repository, a failed run)."""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout}")
    return done.stdout.strip()


def repository_root(directory: Path) -> Path:
    try:
        return Path(git(directory, "rev-parse", "--show-toplevel"))
    except CompareError:
        raise CompareError(f"{directory} is not inside a git repository") from None


def resolve_revision(repo: Path, revision: str) -> str:
    """The full commit hash of ``revision`` (raises :class:`CompareError` naming it)."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except CompareError:
        raise CompareError(f"unknown revision {revision!r} in {repo}") from None


@contextlib.contextmanager
def worktrees(repo: Path, commits: Mapping[str, str]) -> Iterator[dict[str, Path]]:
    """Check out each ``label: commit`` as a detached ``git worktree`` in a temporary
    directory; removes them (and prunes git's records) afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="mlprop-bench-"))
    made: dict[str, Path] = {}
    try:
        for label, commit in commits.items():
            path = parent / label
            git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
            made[label] = path
        yield made
    finally:
        for path in made.values():
            with contextlib.suppress(CompareError):
                git(repo, "worktree", "remove", "--force", str(path))
        with contextlib.suppress(CompareError):
            git(repo, "worktree", "prune")
        shutil.rmtree(parent, ignore_errors=True)


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
